"""What the connector may touch: its path, protected accounts, grantable policies.

A connector that can create users and attach policies is one of the most powerful principals in
an account. These checks run before any change, so that even a mistaken or malicious request
through IDHub cannot modify a break-glass account, reach outside the connector's path, or hand
out administrator rights unless the operator allowed it on purpose. Policies are judged twice:
by ARN (``grantable_policies.deny`` / ``.allow``, from the settings alone) and by what their
documents allow (:mod:`idhub_aws_plugin.policy_effect`; ``grantable_policies.admit`` admits one
by exact ARN).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any

from hostsim.contract import Refused
from idhub_aws_plugin import policy_effect
from idhub_aws_plugin.settings import Settings

#: At most this many findings are named in one refusal, so the message stays one short line.
FINDINGS_SHOWN = 3


class Scope:
    """The connector's own guard rails, from its settings."""

    def __init__(self, settings: Settings) -> None:
        self._path = settings.user_path
        self._protected = settings.protected
        self._policies = settings.grantable_policies

    def covers(self, path: str) -> bool:
        """Whether a user at ``path`` is the connector's: reconciliation reads only those, so
        a break-glass user outside the path is neither an orphan nor anything to remediate."""
        return path.startswith(self._path)

    def check_user(self, name: str, path: str, tags: Mapping[str, str]) -> None:
        """Refuse to change a user outside the connector's path or protected by the settings."""
        if not self.covers(path):
            raise Refused(
                f"IAM user {name!r} is outside the connector's path {self._path} "
                f"(its path is {path}); the connector changes nothing outside it"
            )
        reason = self._protection(name, path, tags)
        if reason:
            raise Refused(
                f"IAM user {name!r} is protected ({reason}); the connector leaves it alone"
            )

    def _protection(self, name: str, path: str, tags: Mapping[str, str]) -> str:
        if name.lower() in {user.lower() for user in self._protected.users}:
            return "listed in protected.users"
        for prefix in self._protected.paths:
            if path.startswith(prefix):
                return f"under protected path {prefix}"
        tag = self._protected.tag
        if tag and tag.lower() in {key.lower() for key in tags}:
            return f"tagged {tag}"
        return ""

    def check_policy(self, arn: str, via: str = "") -> None:
        """Refuse a policy the settings do not let the connector grant."""
        how = f" (carried by {via})" if via else ""
        denied = next((p for p in self._policies.deny if fnmatchcase(arn, p)), None)
        if denied:
            raise Refused(
                f"policy {arn}{how} may not be granted: it matches grantable_policies.deny "
                f"{denied!r}"
            )
        allow = self._policies.allow
        if allow and not any(fnmatchcase(arn, pattern) for pattern in allow):
            raise Refused(
                f"policy {arn}{how} may not be granted: it matches no grantable_policies.allow "
                "pattern"
            )

    def check_group(self, group: str, policy_arns: Iterable[str]) -> None:
        """A group hands its members every policy it carries, so each must be grantable."""
        for arn in policy_arns:
            self.check_policy(arn, via=f"group {group}")

    def admits(self, arn: str) -> bool:
        """Whether ``grantable_policies.admit`` names this policy or group ARN (exactly)."""
        return arn in self._policies.admit

    def check_effect(
        self, entitlement: str, source: str, document: Mapping[str, Any], admit: str
    ) -> None:
        """Refuse ``entitlement`` when the policy ``source`` (e.g. ``policy ARN``, ``inline
        policy 'x' of group g``) allows what the connector does not hand out by default,
        unless ``admit`` (the ARN that would admit it) is in ``grantable_policies.admit``."""
        if self.admits(admit):
            return
        findings = policy_effect.judge(document)
        if not findings:
            return
        shown = "; ".join(findings[:FINDINGS_SHOWN])
        if len(findings) > FINDINGS_SHOWN:
            shown += f" and {len(findings) - FINDINGS_SHOWN} more"
        raise Refused(
            f"{entitlement} may not be granted: {source} {shown}; to grant it anyway, add "
            f"{admit!r} to grantable_policies.admit"
        )
