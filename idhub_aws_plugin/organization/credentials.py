"""The clients of each account of an organization.

A member account is reached through ``arn:PARTITION:iam::ID:role/ROLE_NAME``, assumed with the
base session's credentials (so a base ``assume_role`` chains) by botocore's assume-role fetcher:
fetched on the first call in that account, refreshed before they expire, cached for the
connector's life. The management account is read with the base clients themselves, which can
only work when the base credentials are the management account's.
"""

from __future__ import annotations

import threading

from attrs import evolve

from idhub_aws_plugin.client import AwsClients
from idhub_aws_plugin.organization.scope import Target
from idhub_aws_plugin.settings import AssumeRole, Organization, Settings

#: How ``TargetAccount.via`` names the management account's way in.
BASE_CREDENTIALS = "base credentials"


def role_arn(organization: Organization, target: Target) -> str:
    """The role assumed in a member account (the role name may carry a path)."""
    return f"arn:{target.partition}:iam::{target.id}:role/{organization.role_name}"


class AccountClients:
    """Per-account clients, built lazily and kept; safe to share between threads."""

    def __init__(self, settings: Settings, base: AwsClients) -> None:
        assert settings.organization is not None
        self._settings = settings
        self._organization = settings.organization
        self.base = base
        self._lock = threading.Lock()
        self._clients: dict[str, AwsClients] = {}
        self._base_account: str | None = None

    def via(self, target: Target) -> str:
        """How the connector reaches ``target``: its role's ARN, or the base credentials."""
        return BASE_CREDENTIALS if target.management else role_arn(self._organization, target)

    def settings_for(self, target: Target) -> Settings:
        """The settings of one account's plain connector: no organization, and for a member
        its role as ``assume_role`` (so the connector's permission check and rendered policy
        name that role)."""
        if target.management:
            return evolve(self._settings, organization=None)
        role = AssumeRole(
            role_arn=role_arn(self._organization, target),
            external_id=self._organization.external_id,
            session_name=self._organization.session_name,
            duration_seconds=self._organization.duration_seconds,
        )
        return evolve(self._settings, organization=None, assume_role=role)

    def clients(self, target: Target) -> AwsClients:
        """The account's clients: the base ones for the management account, else ones whose
        session assumes the account's role from the base session."""
        if target.management:
            return self.base
        with self._lock:
            if target.id not in self._clients:
                self._clients[target.id] = AwsClients(self.settings_for(target), source=self.base)
            return self._clients[target.id]

    def assume(self, target: Target) -> None:
        """Have a member's role assumed now, if it is not yet (botocore keeps the credentials
        and refreshes them before they expire): AssumeRole's refusal raised here."""
        credentials = self.clients(target).session().get_credentials()
        assert credentials is not None  # an assumed-role session always has them
        credentials.get_frozen_credentials()

    def base_account(self) -> str:
        """The account of the base credentials (STS GetCallerIdentity, asked once)."""
        with self._lock:
            known = self._base_account
        if known is None:
            known = self.base.sts.get_caller_identity()["Account"]
            with self._lock:
                self._base_account = known
        return known

    def management_problem(self, target: Target) -> str:
        """Why the management account cannot be read with the base credentials ("" if it
        can): they must be the management account's own."""
        base = self.base_account()
        if base == target.id:
            return ""
        return (
            f"the management account is read with the base credentials, and they are of "
            f"account {base}; set include_management_account = false, or run with the "
            "management account's credentials"
        )
