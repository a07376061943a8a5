"""Throttling as IAM does it: some requests answered ``Throttling`` (HTTP 400), unserved.

IAM publishes no request rate; under load it refuses calls with ``Throttling: Rate exceeded``
and the client is expected to back off and retry. A connector proves it copes only against an
endpoint that does the same, so a test can arm a throttle here: every k-th matching request,
or a token-bucket rate (``per_second`` with a ``burst``). A throttled request never reaches
moto, so it changes nothing, as with IAM.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from hostsim.embedded_aws.faults import Fault


@dataclass(frozen=True)
class ThrottleRule:
    """Which requests a throttle watches and how it refuses them.

    Exactly one of ``every`` (each k-th matching request is refused) and ``per_second`` (a
    token bucket holding at most ``burst`` requests, refilled at that rate) is set.
    """

    service: str = "iam"
    actions: frozenset[str] | None = None
    every: int | None = None
    per_second: float | None = None
    burst: int = 1
    code: str = "Throttling"
    status: int = 400
    message: str = "Rate exceeded"

    def __post_init__(self) -> None:
        if (self.every is None) == (self.per_second is None):
            raise ValueError("give exactly one of every= and per_second=")
        if self.every is not None and self.every < 1:
            raise ValueError(f"every must be at least 1, got {self.every}")
        if self.per_second is not None and self.per_second <= 0:
            raise ValueError(f"per_second must be positive, got {self.per_second}")
        if self.burst < 1:
            raise ValueError(f"burst must be at least 1, got {self.burst}")

    def watches(self, service: str, action: str) -> bool:
        """Whether a request counts against this throttle."""
        return self.service == service and (self.actions is None or action in self.actions)


@dataclass
class _Armed:
    """A rule and its running state (requests seen, tokens left)."""

    rule: ThrottleRule
    seen: int = 0
    tokens: float = 0.0
    refilled_at: float = 0.0


class Throttler:
    """The armed throttles; a request is refused when any of them refuses it."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._armed: list[_Armed] = []

    def arm(self, rule: ThrottleRule) -> None:
        """Start throttling; the bucket of a rate starts full."""
        with self._lock:
            self._armed.append(_Armed(rule, tokens=float(rule.burst), refilled_at=self._clock()))

    def take(self, service: str, action: str) -> Fault | None:
        """The Throttling fault for this request, or None to let it through."""
        with self._lock:
            refusing = [armed for armed in self._armed if self._refuses(armed, service, action)]
        if not refusing:
            return None
        rule = refusing[0].rule
        return Fault(service, action, rule.code, rule.status, rule.message)

    def _refuses(self, armed: _Armed, service: str, action: str) -> bool:
        rule = armed.rule
        if not rule.watches(service, action):
            return False
        if rule.every is not None:
            armed.seen += 1
            return armed.seen % rule.every == 0
        assert rule.per_second is not None
        now = self._clock()
        armed.tokens = min(rule.burst, armed.tokens + (now - armed.refilled_at) * rule.per_second)
        armed.refilled_at = now
        if armed.tokens >= 1:
            armed.tokens -= 1
            return False
        return True

    def clear(self) -> None:
        """Stop every throttle."""
        with self._lock:
            self._armed.clear()
