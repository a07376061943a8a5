"""Fault injection and call recording: the test-facing controls of the embedded AWS.

Tests need to prove two things moto alone cannot show: that the code under test made exactly
the calls it should (and no more), and that it copes when AWS fails part-way (throttling, a
5xx, a conflict). Both are decided here, before a request reaches moto, and both are shared by
the server's request threads, hence the locks.

A fault normally replaces the request: it never reaches moto, so it changes nothing, like a
call IAM throttled. A fault with ``lose_reply`` is the nastier kind a client cannot tell apart:
the request is served (its change is applied) and the client gets the error instead of the
answer, as when a server fails after committing or the answer is lost on the way back. The
client's retry then meets the consequences of its own first attempt.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hostsim.embedded_aws.responses import Reply, error_reply


@dataclass(frozen=True)
class Call:
    """One request the embedded AWS received (whether it was then faulted, refused or served).

    ``injected`` is the error code the embedded AWS injected instead of (or, for a lost reply,
    after) serving it; None when the request went its normal way.
    """

    service: str
    action: str
    injected: str | None = None
    #: The client's User-Agent header, which tells the connector's calls from a test's own.
    user_agent: str = ""
    #: The AWS account the request acted in (decided from its access key as moto decides it:
    #: an assumed role's key acts in the role's account), so a test can prove which accounts
    #: a run reached and which it never touched.
    account_id: str = ""
    #: The other account the request reaches into, if any: the role's account for an
    #: sts:AssumeRole (which acts in the caller's account); "" otherwise.
    target_account_id: str = ""

    def reaches(self, account_id: str) -> bool:
        """Whether the request acted in ``account_id`` or reached into it."""
        return account_id in (self.account_id, self.target_account_id)


@dataclass(frozen=True)
class Fault:
    """An error to return instead of serving a matching request.

    ``where`` narrows the match to requests carrying these exact parameter values (``(("GroupName",
    "ops"),)``), ``account`` to requests acting in that account; ``lose_reply`` serves the
    request first and then answers with the error.
    """

    service: str
    action: str
    code: str
    status: int
    message: str
    where: tuple[tuple[str, str], ...] = ()
    lose_reply: bool = False
    #: A body to answer with instead of IAM's XML error (a proxy's HTML page, say).
    body: str | None = None
    #: Only requests acting in this account (None: any account).
    account: str | None = None

    def matches(
        self, service: str, action: str, params: Mapping[str, str], account: str = ""
    ) -> bool:
        """Whether this fault is meant for that request."""
        return (
            self.service == service
            and self.action == action
            and (self.account is None or self.account == account)
            and all(params.get(key) == value for key, value in self.where)
        )

    def reply(self) -> Reply:
        """The IAM-style error reply this fault produces, or ``body`` as an HTML page."""
        if self.body is None:
            return error_reply(self.code, self.message, self.status)
        data = self.body.encode("utf-8")
        headers = [("Content-Type", "text/html"), ("Content-Length", str(len(data)))]
        return Reply(self.status, data, headers)


class FaultInjector:
    """Queues of armed faults, consumed one per matching request, first armed first used."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: deque[Fault] = deque()

    def arm(self, fault: Fault, times: int) -> None:
        """Make the next ``times`` requests matching ``fault`` fail with it."""
        if times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        with self._lock:
            self._armed.extend([fault] * times)

    def take(
        self,
        service: str,
        action: str,
        params: Mapping[str, str] | None = None,
        account: str = "",
    ) -> Fault | None:
        """Consume and return the oldest fault armed for this request, if any."""
        with self._lock:
            for fault in self._armed:
                if fault.matches(service, action, params or {}, account):
                    self._armed.remove(fault)
                    return fault
        return None

    def pending(self) -> int:
        """How many faults are still armed (a test can assert they were all used)."""
        with self._lock:
            return len(self._armed)

    def clear(self) -> None:
        """Disarm everything."""
        with self._lock:
            self._armed.clear()


class CallRecorder:
    """The ordered log of received requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._listeners: list[Callable[[Call], None]] = []

    def record(self, call: Call) -> None:
        """Append one received request and tell the listeners."""
        with self._lock:
            self._calls.append(call)
            listeners = list(self._listeners)
        for listener in listeners:
            listener(call)

    def listen(self, listener: Callable[[Call], None]) -> None:
        """Call ``listener`` with every request from now on. Listeners outlive :meth:`clear`
        and resets: they observe a whole test session (which actions a client ever sent)."""
        with self._lock:
            self._listeners.append(listener)

    def actions(self, service: str | None, account: str | None = None) -> list[str]:
        """Action names in arrival order, for one service or (``None``) for all, and for one
        account or (``None``) for all."""
        return [c.action for c in self.received(service, account)]

    def injected(self, service: str | None, account: str | None = None) -> list[tuple[str, str]]:
        """``(action, error code)`` of every request answered with an injected error."""
        return [
            (c.action, c.injected)
            for c in self.received(service, account)
            if c.injected is not None
        ]

    def reaching(self, account: str, service: str | None = None) -> list[str]:
        """Actions that acted in ``account`` or reached into it (an AssumeRole of its role)."""
        with self._lock:
            return [
                c.action
                for c in self._calls
                if c.reaches(account) and (service is None or c.service == service)
            ]

    def received(self, service: str | None, account: str | None = None) -> list[Call]:
        """The recorded calls themselves, filtered as for :meth:`actions`."""
        with self._lock:
            return [
                c
                for c in self._calls
                if (service is None or c.service == service)
                and (account is None or c.account_id == account)
            ]

    def clear(self) -> None:
        """Forget every recorded call."""
        with self._lock:
            self._calls.clear()
