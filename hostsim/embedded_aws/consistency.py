"""Eventual consistency: a user IAM has just created is not yet visible everywhere.

IAM documents that a change "might not be immediately visible"; in practice a call naming a
user made right after CreateUser (AddUserToGroup, TagUser, CreateLoginProfile) can answer
``NoSuchEntity: The user with name X cannot be found.`` for a second or two. Moto is always
consistent, so a connector that trips over this would pass every test and fail at 2 a.m.

A test arms a hiding rule; every user created while it is armed (or only the one it names)
is then invisible to requests naming it in ``UserName`` for some seconds or for some requests,
whichever the rule says. The CreateUser reply itself is unaffected, as with IAM.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hostsim.embedded_aws.faults import Fault
from hostsim.embedded_aws.iam_errors import user_not_found


@dataclass(frozen=True)
class HidingRule:
    """How long a fresh user stays invisible: ``seconds`` after its creation, or for the next
    ``requests`` requests that name it (exactly one is set); only ``name`` when given."""

    seconds: float | None = None
    requests: int | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if (self.seconds is None) == (self.requests is None):
            raise ValueError("give exactly one of seconds= and requests=")
        if self.seconds is not None and self.seconds <= 0:
            raise ValueError(f"seconds must be positive, got {self.seconds}")
        if self.requests is not None and self.requests < 1:
            raise ValueError(f"requests must be at least 1, got {self.requests}")

    def covers(self, user_name: str) -> bool:
        """Whether a user of that name, just created, is hidden by this rule."""
        return self.name is None or self.name.lower() == user_name.lower()


@dataclass
class _Hidden:
    """One fresh user still invisible: until a moment, or for a number of requests."""

    until: float | None
    remaining: int | None


class FreshUsers:
    """The users created while a hiding rule was armed, and how long each stays hidden."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._rules: list[HidingRule] = []
        self._hidden: dict[str, _Hidden] = {}

    def arm(self, rule: HidingRule) -> None:
        """Hide every user created from now on that the rule covers."""
        with self._lock:
            self._rules.append(rule)

    def created(self, user_name: str) -> None:
        """A CreateUser was served: start hiding the user if a rule covers it."""
        with self._lock:
            rule = next((r for r in self._rules if r.covers(user_name)), None)
            if rule is None:
                return
            until = None if rule.seconds is None else self._clock() + rule.seconds
            self._hidden[user_name.lower()] = _Hidden(until=until, remaining=rule.requests)

    def take(self, action: str, params: Mapping[str, str]) -> Fault | None:
        """IAM's NoSuchEntity when the request names a user still hidden, else None."""
        name = params.get("UserName")
        if action == "CreateUser" or name is None:
            return None
        with self._lock:
            hidden = self._hidden.get(name.lower())
            if hidden is None or not self._still_hidden(hidden):
                self._hidden.pop(name.lower(), None)
                return None
        error = user_not_found(name)
        return Fault("iam", action, error.code, error.status, error.message)

    def _still_hidden(self, hidden: _Hidden) -> bool:
        """Counts one request against a request-bounded hiding."""
        if hidden.until is not None:
            return self._clock() < hidden.until
        assert hidden.remaining is not None
        if hidden.remaining < 1:
            return False
        hidden.remaining -= 1
        return True

    def clear(self) -> None:
        """Disarm every rule and make every user visible."""
        with self._lock:
            self._rules.clear()
            self._hidden.clear()
