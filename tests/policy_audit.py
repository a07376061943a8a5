"""Keeps iam-policy.json honest: every action the connector sends during the test session is
recorded (told apart from the tests' own calls by the connector's user agent), and the session
fails at its end if the shipped policy does not allow one of them."""

from __future__ import annotations

import threading

from hostsim.embedded_aws import Call
from idhub_aws_plugin import permissions
from idhub_aws_plugin.client import USER_AGENT


class ActionLog:
    """Actions (``iam:CreateUser``) the connector sent, as the embedded AWS received them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seen: set[str] = set()

    def __call__(self, call: Call) -> None:
        if USER_AGENT in call.user_agent:
            with self._lock:
                self.seen.add(f"{call.service}:{call.action}")

    def not_allowed(self) -> list[str]:
        with self._lock:
            return sorted(action for action in self.seen if not permissions.allows(action))


#: The session's log, filled by the ``embedded_aws`` fixture and checked when it ends.
CONNECTOR_ACTIONS = ActionLog()
