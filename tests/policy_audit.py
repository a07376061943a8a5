"""Keeps the shipped policies honest: every action a connector sends during the test session is
recorded (told apart from the tests' own calls, and from the other connector's, by the
connector's user agent), and the session fails at its end if that connector's policy files do
not allow one of them: ``iam-policy.json`` (each account's) or ``organization-policy.json`` (an
organization's base principal: read it, assume each account's role) for aws-iam,
``identity-center-policy.json`` for aws-identity-center."""

from __future__ import annotations

import threading

from hostsim.embedded_aws import Call
from idhub_aws_plugin import permissions
from idhub_aws_plugin.client import USER_AGENT
from idhub_aws_plugin.identity_center import permissions as identity_center_permissions
from idhub_aws_plugin.identity_center.connector import USER_AGENT as IDENTITY_CENTER_AGENT
from idhub_aws_plugin.policy_file import PolicyFile

#: Each connector's user agent and its policy files (an action must be in one of them).
POLICIES: dict[str, tuple[PolicyFile, ...]] = {
    USER_AGENT: (permissions.SHIPPED, permissions.ORGANIZATION),
    IDENTITY_CENTER_AGENT: (identity_center_permissions.SHIPPED,),
}


class ActionLog:
    """Actions (``iam:CreateUser``) each connector sent, as the embedded AWS received them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: By connector user agent.
        self.sent: dict[str, set[str]] = {agent: set() for agent in POLICIES}

    @property
    def seen(self) -> set[str]:
        """What aws-iam sent."""
        return self.sent[USER_AGENT]

    def __call__(self, call: Call) -> None:
        for agent in POLICIES:
            if agent in call.user_agent:
                with self._lock:
                    self.sent[agent].add(f"{call.service}:{call.action}")

    def not_allowed(self) -> list[str]:
        """Every action sent that none of the sending connector's policy files allows."""
        with self._lock:
            return sorted(
                action
                for agent, actions in self.sent.items()
                for action in actions
                if not any(policy.allows(action) for policy in POLICIES[agent])
            )


#: The session's log, filled by the ``embedded_aws`` fixture and checked when it ends.
CONNECTOR_ACTIONS = ActionLog()
