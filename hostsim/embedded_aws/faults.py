"""Fault injection and call recording: the test-facing controls of the embedded AWS.

Tests need to prove two things moto alone cannot show: that the code under test made exactly
the calls it should (and no more), and that it copes when AWS fails part-way (throttling, a
5xx, a conflict). Both are decided here, before a request reaches moto, and both are shared by
the server's request threads, hence the locks.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from hostsim.embedded_aws.responses import Reply, error_reply


@dataclass(frozen=True)
class Call:
    """One request the embedded AWS received (whether it was then faulted, refused or served)."""

    service: str
    action: str


@dataclass(frozen=True)
class Fault:
    """An error to return instead of serving a matching request."""

    service: str
    action: str
    code: str
    status: int
    message: str

    def reply(self) -> Reply:
        """The IAM-style error reply this fault produces."""
        return error_reply(self.code, self.message, self.status)


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

    def take(self, service: str, action: str) -> Fault | None:
        """Consume and return the oldest fault armed for this request, if any."""
        with self._lock:
            for fault in self._armed:
                if fault.service == service and fault.action == action:
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

    def record(self, call: Call) -> None:
        """Append one received request."""
        with self._lock:
            self._calls.append(call)

    def actions(self, service: str | None) -> list[str]:
        """Action names in arrival order, for one service or (``None``) for all."""
        with self._lock:
            return [c.action for c in self._calls if service is None or c.service == service]

    def clear(self) -> None:
        """Forget every recorded call."""
        with self._lock:
            self._calls.clear()
