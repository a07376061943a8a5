"""Reconciliation reads: users, groups, policies and who holds which, from IAM's bulk reads.

GetAccountAuthorizationDetails returns users with their groups, attached and inline policies and
tags, and groups with their policies, up to 1,000 a page; ListPolicies lists managed policies the
same way. Reading through them costs a number of calls that grows with the number of pages, not
with the number of users (a per-user reader needs 1 + 3N calls). Rows are yielded page by page as
they arrive, so memory stays bounded by a page and the groups table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from hostsim.contract import Account, FetchKind, FetchRow, Group, GroupAccess, Policy, PolicyAccess
from idhub_aws_plugin import input_rules
from idhub_aws_plugin.attributes import AttributeMap
from idhub_aws_plugin.client import PAGE
from idhub_aws_plugin.scope import Scope
from idhub_aws_plugin.settings import PolicySelection, Settings
from idhub_aws_plugin.suspension import is_disabled

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient


class Reconciliation:
    """The five fetches, each a generator of contract rows."""

    def __init__(self, iam: IAMClient, settings: Settings) -> None:
        self._iam = iam
        self._settings = settings
        self._attributes = AttributeMap(settings)
        self._scope = Scope(settings)

    def fetch(self, kind: FetchKind) -> Iterator[FetchRow]:
        readers: dict[FetchKind, Callable[[], Iterator[FetchRow]]] = {
            FetchKind.USERS: self.users,
            FetchKind.GROUPS: self.groups,
            FetchKind.POLICIES: self.policies,
            FetchKind.GROUP_ACCESS: self.group_access,
            FetchKind.POLICY_ACCESS: self.policy_access,
        }
        return readers[kind]()

    def _details(self, entity: str) -> Iterator[Mapping[str, Any]]:
        """Every user or group detail of the account, page by page."""
        list_key = {"User": "UserDetailList", "Group": "GroupDetailList"}[entity]
        pages = self._iam.get_paginator("get_account_authorization_details").paginate(
            Filter=[entity],  # type: ignore[list-item]
            PaginationConfig=PAGE,
        )
        for page in pages:
            yield from page[list_key]  # type: ignore[literal-required]

    def email_of(self, user_name: str, stored: str | None) -> str | None:
        """The stored email tag; for a user made outside the connector whose name is an email
        under the default ``{email}`` naming, the name itself."""
        if stored:
            return stored
        if self._settings.user_name == "{email}" and not input_rules.email_problems(user_name):
            return user_name.lower()
        return None

    def account(self, user: Mapping[str, Any]) -> Account:
        """The contract's account of one user detail, as GetAccountAuthorizationDetails shows
        it (tags, ``GroupList`` names, ``AttachedManagedPolicies``, ``UserPolicyList``); the
        single-account read (:mod:`idhub_aws_plugin.lookup`) builds the same detail from
        per-user reads, so both agree field for field."""
        tags = {tag["Key"]: tag["Value"] for tag in user.get("Tags", [])}
        core, extra = self._attributes.read(tags)
        inline = tuple(policy["PolicyName"] for policy in user.get("UserPolicyList", []))
        return Account(
            id=user["UserId"],
            user_name=user["UserName"],
            email=self.email_of(user["UserName"], core.get("email")),
            first_name=core.get("first_name"),
            last_name=core.get("last_name"),
            display_name=core.get("display_name"),
            arn=user["Arn"],
            path=user.get("Path", "/"),
            created=str(user.get("CreateDate", "")),
            attributes=extra,
            groups=tuple(user.get("GroupList", [])),
            inline_policies=inline,
            enabled=not is_disabled(inline),
            policies=tuple(p["PolicyArn"] for p in user.get("AttachedManagedPolicies", [])),
        )

    def _users_in_scope(self) -> Iterator[Mapping[str, Any]]:
        """The users under the connector's ``user_path`` (its scope); with the default ``/``,
        every user. IAM's bulk read has no path filter, so the filter is ours."""
        for user in self._details("User"):
            if self._scope.covers(user.get("Path", "/")):
                yield user

    def users(self) -> Iterator[Account]:
        for user in self._users_in_scope():
            yield self.account(user)

    def groups(self) -> Iterator[Group]:
        for group in self._details("Group"):
            yield Group(
                name=group["GroupName"],
                id=group["GroupId"],
                arn=group["Arn"],
                path=group.get("Path", "/"),
                policies=tuple(p["PolicyArn"] for p in group.get("AttachedManagedPolicies", [])),
                inline_policies=tuple(p["PolicyName"] for p in group.get("GroupPolicyList", [])),
            )

    def _policy_listings(self) -> Iterator[tuple[str, PolicySelection]]:
        yield "Local", self._settings.customer_managed_policies
        yield "AWS", self._settings.aws_managed_policies

    def policies(self) -> Iterator[Policy]:
        for scope, selection in self._policy_listings():
            if selection == "none":
                continue
            pages = self._iam.get_paginator("list_policies").paginate(
                Scope=scope,  # type: ignore[arg-type]
                OnlyAttached=selection == "attached",
                PaginationConfig=PAGE,
            )
            for page in pages:
                for policy in page["Policies"]:
                    yield Policy(
                        name=policy["PolicyName"],
                        arn=policy["Arn"],
                        id=policy["PolicyId"],
                        path=policy.get("Path", "/"),
                        scope="aws" if scope == "AWS" else "local",
                        attachment_count=policy.get("AttachmentCount", 0),
                        description=policy.get("Description", ""),
                    )

    def group_access(self) -> Iterator[GroupAccess]:
        for account in self.users():
            for group in account.groups:
                yield GroupAccess(account.email, account.user_name, account.id, group)

    def policy_access(self) -> Iterator[PolicyAccess]:
        """Direct attachments, then each group's policies, per user. Groups are read first (an
        account has far fewer groups than users) so users can stream afterwards."""
        group_policies = {group.name: group.policies for group in self.groups()}
        for user in self._users_in_scope():
            account = self.account(user)
            for policy in user.get("AttachedManagedPolicies", []):
                yield PolicyAccess(
                    account.email,
                    account.user_name,
                    account.id,
                    policy["PolicyArn"],
                    policy["PolicyName"],
                    "direct",
                )
            for group in account.groups:
                for arn in group_policies.get(group, ()):
                    yield PolicyAccess(
                        account.email,
                        account.user_name,
                        account.id,
                        arn,
                        arn.rsplit("/", 1)[-1],
                        f"group:{group}",
                    )
