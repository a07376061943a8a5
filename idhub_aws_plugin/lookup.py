"""Single-account and single-group reads: one user, or one group's members, at a cost that does
not grow with the account.

IAM has no "get user by UserId", so the reads go by name. An account is found by its email (the
user name derives from it through the ``user_name`` template), or by its native id together with
a name hint (the name the caller last saw for that id, from an index of its own): GetUser by
that name, answered only when the user found still has that UserId, so a stale hint (a rename
or a delete made behind the caller's back) gives None, never another person's account. A user's
groups, attached policies and inline policy names come from ListGroupsForUser,
ListAttachedUserPolicies and ListUserPolicies: four calls, whatever the account's size, and the
account they make is built by :meth:`Reconciliation.account`, the bulk read's own mapping.

An id without a hint is found by scanning ListUsers under the connector's ``user_path``: the one
read here that grows with the account, for callers that keep no index.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from hostsim.contract import (
    AccountDetail,
    AccountLookup,
    AccountRef,
    GroupDetail,
    Holding,
    canonical_email,
)
from idhub_aws_plugin import input_rules
from idhub_aws_plugin.client import PAGE
from idhub_aws_plugin.errors import is_code
from idhub_aws_plugin.reconcile import Reconciliation
from idhub_aws_plugin.scope import Scope
from idhub_aws_plugin.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

    from idhub_aws_plugin.accounts import Accounts


class Lookup:
    """One account or one group, read by name."""

    def __init__(self, iam: IAMClient, settings: Settings, accounts: Accounts) -> None:
        self._iam = iam
        self._accounts = accounts
        self._scope = Scope(settings)
        self._mapping = Reconciliation(iam, settings)
        self._path = settings.user_path

    def account(self, lookup: AccountLookup) -> AccountDetail | None:
        """The account ``lookup`` names, or None: none by that name, a hint whose user has
        another id now, an email the ``user_name`` template cannot make a name of, a user whose
        email is another, or a user outside the connector's path (which fetch does not show
        either)."""
        user = self._user(lookup)
        if user is None or (lookup.id and user["UserId"] != lookup.id):
            return None
        if not self._scope.covers(user.get("Path", "/")):
            return None
        detail = self._detail(user)
        if lookup.email and detail.account.email != canonical_email(lookup.email):
            # the name the email derives belongs to an account of another email (a template
            # such as {local_part} makes one name of two addresses): not this email's account
            return None
        return detail

    def _user(self, lookup: AccountLookup) -> Mapping[str, Any] | None:
        if lookup.id and lookup.name:
            return self._get_user(lookup.name)
        if lookup.email:
            name = self._name_for(lookup.email)
            return self._get_user(name) if name else None
        return self._scan(lookup.id or "")

    def _name_for(self, raw_email: str) -> str | None:
        """The user name an email derives, or None when it is no valid email or name."""
        email = canonical_email(raw_email)
        if input_rules.email_problems(email):
            return None
        name = self._accounts.user_name_for(email)
        return None if input_rules.user_name_problems(name, "user name") else name

    def _get_user(self, name: str) -> Mapping[str, Any] | None:
        if input_rules.user_name_problems(name, "user name"):
            return None
        try:
            return self._iam.get_user(UserName=name)["User"]
        except Exception as exc:
            if is_code(exc, "NoSuchEntity"):
                return None
            raise

    def _scan(self, native_id: str) -> Mapping[str, Any] | None:
        """The user of a bare native id: ListUsers under the connector's path, page by page
        (grows with the account), then GetUser for its tags."""
        pages = self._iam.get_paginator("list_users").paginate(
            PathPrefix=self._path, PaginationConfig=PAGE
        )
        for page in pages:
            for user in page["Users"]:
                if user["UserId"] == native_id:
                    return self._get_user(user["UserName"])
        return None

    def _pages(self, operation: str, key: str, **params: Any) -> Iterator[Mapping[str, Any]]:
        pages = self._iam.get_paginator(operation).paginate(  # type: ignore[call-overload]
            **params, PaginationConfig=PAGE
        )
        for page in pages:
            yield from page[key]

    def _detail(self, user: Mapping[str, Any]) -> AccountDetail:
        """The user with what it holds: the detail the bulk read would show, from three
        per-user listings (a user is in at most 10 groups and has at most 20 attached
        policies, so each is one page)."""
        name = user["UserName"]
        groups = list(self._pages("list_groups_for_user", "Groups", UserName=name))
        attached = list(
            self._pages("list_attached_user_policies", "AttachedPolicies", UserName=name)
        )
        inline = list(self._pages("list_user_policies", "PolicyNames", UserName=name))
        detail = {
            **user,
            "GroupList": [group["GroupName"] for group in groups],
            "AttachedManagedPolicies": attached,
            "UserPolicyList": [{"PolicyName": policy} for policy in inline],
        }
        holdings = [
            Holding(f"group:{group['GroupName']}", group["GroupId"], group["GroupName"])
            for group in groups
        ] + [
            Holding(f"policy:{policy['PolicyArn']}", "", policy["PolicyName"])
            for policy in attached
        ]
        return AccountDetail(self._mapping.account(detail), tuple(holdings))

    def group(self, name: str) -> GroupDetail | None:
        """The group called ``name`` with its members under the connector's path (GetGroup,
        one call per page of members), or None when there is no such group."""
        if input_rules.group_name_problems(name):
            return None
        pages = self._iam.get_paginator("get_group").paginate(GroupName=name, PaginationConfig=PAGE)
        found: Mapping[str, Any] | None = None
        members: list[AccountRef] = []
        try:
            for page in pages:
                found = page["Group"]
                members += [
                    AccountRef(
                        user["UserId"],
                        user["UserName"],
                        self._mapping.email_of(user["UserName"], None),
                    )
                    for user in page["Users"]
                    if self._scope.covers(user.get("Path", "/"))
                ]
        except Exception as exc:
            if is_code(exc, "NoSuchEntity"):
                return None
            raise
        if found is None:
            return None
        return GroupDetail(
            name=found["GroupName"],
            id=found["GroupId"],
            arn=found["Arn"],
            path=found.get("Path", "/"),
            members=tuple(members),
        )
