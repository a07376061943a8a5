"""Which accounts of an organization the connector reaches, and why any other is out of scope.

The organization is read once with the base credentials (Organizations DescribeOrganization
for the management account, ListAccounts through botocore's paginator for the accounts) and
kept: a connector lives for one command or one server. The settings then narrow it: ACTIVE
accounts only, the ``accounts`` include list, ``exclude``, and the management account per
``include_management_account``. An id of the include list that is no ACTIVE account of the
organization stays a target, one that cannot be reached: a fetch fails it alone, with why.
"""

from __future__ import annotations

from typing import Any

from attrs import frozen

from idhub_aws_plugin.settings import Organization

ACTIVE = "ACTIVE"


@frozen
class MemberAccount:
    """One account as ListAccounts shows it."""

    id: str
    name: str
    email: str
    status: str
    arn: str

    @property
    def partition(self) -> str:
        """``aws``, ``aws-cn`` or ``aws-us-gov``: the partition its role ARN is in."""
        return self.arn.split(":")[1] if self.arn.startswith("arn:") else "aws"


@frozen
class OrganizationMap:
    """The organization as the base credentials see it, read once."""

    management_id: str
    #: Every account, whatever its status, sorted by id.
    accounts: tuple[MemberAccount, ...]

    @classmethod
    def read(cls, organizations: Any) -> OrganizationMap:
        """DescribeOrganization, then every page of ListAccounts (two calls for up to 20
        accounts, one more a further 20). ``organizations`` is a boto3 Organizations client
        (untyped: the project carries stubs for IAM and STS only)."""
        management = organizations.describe_organization()["Organization"]["MasterAccountId"]
        pages = organizations.get_paginator("list_accounts").paginate()
        accounts = [
            MemberAccount(
                id=account["Id"],
                name=account.get("Name", ""),
                email=account.get("Email", ""),
                # State replaces the deprecated Status; an SDK or endpoint may send either
                status=str(account.get("State") or account.get("Status", "")),
                arn=account.get("Arn", ""),
            )
            for page in pages
            for account in page["Accounts"]
        ]
        return cls(management, tuple(sorted(accounts, key=lambda account: account.id)))

    def get(self, account_id: str) -> MemberAccount | None:
        return next((account for account in self.accounts if account.id == account_id), None)


@frozen
class Target:
    """One account in scope: read by a fetch, listed by ``target_accounts``."""

    id: str
    name: str
    #: The organization's management account (reached with the base credentials).
    management: bool
    #: None: an id of the include list that is no ACTIVE account of the organization.
    account: MemberAccount | None
    #: Why it cannot be reached, known without a call ("" when it may be).
    unreachable: str = ""

    @property
    def partition(self) -> str:
        return self.account.partition if self.account is not None else "aws"


class AccountScope:
    """The organization narrowed by the ``[organization]`` settings."""

    def __init__(self, settings: Organization, organization: OrganizationMap) -> None:
        self._settings = settings
        self.organization = organization
        self.targets: tuple[Target, ...] = tuple(self._targets())

    def _targets(self) -> list[Target]:
        ids = self._settings.accounts
        wanted = sorted(set(ids)) if ids is not None else [a.id for a in self.organization.accounts]
        targets = []
        for account_id in wanted:
            reason = self.out_of_scope(account_id)
            if reason is None:
                targets.append(self._target(account_id))
            elif self._settings.accounts is not None and self._unreachable(account_id):
                # asked for by id: reported (and failed in a fetch), never silently dropped
                targets.append(
                    Target(account_id, "", management=False, account=None, unreachable=reason)
                )
        return targets

    def _target(self, account_id: str) -> Target:
        account = self.organization.get(account_id)
        assert account is not None
        management = account_id == self.organization.management_id
        return Target(account_id, account.name, management, account)

    def _unreachable(self, account_id: str) -> bool:
        """An include-listed id that is not an ACTIVE account (rather than one the settings
        leave out on purpose: excluded, or the management account not included)."""
        account = self.organization.get(account_id)
        return (account is None or account.status != ACTIVE) and (
            account_id not in self._settings.exclude
        )

    def out_of_scope(self, account_id: str) -> str | None:
        """Why the connector may not act in ``account_id``; None when it may."""
        if account_id in self._settings.exclude:
            return "it is excluded (organization.exclude)"
        if self._settings.accounts is not None and account_id not in self._settings.accounts:
            return "it is not in organization.accounts"
        account = self.organization.get(account_id)
        if account is None:
            return "it is not an account of the organization"
        if account.status != ACTIVE:
            return f"it is not ACTIVE ({account.status or 'no status'})"
        if (
            account_id == self.organization.management_id
            and not self._settings.include_management_account
        ):
            return "it is the management account, and include_management_account is false"
        return None

    def target(self, account_id: str) -> Target | None:
        """The target of that id, reachable or not; None when out of scope."""
        return next((target for target in self.targets if target.id == account_id), None)
