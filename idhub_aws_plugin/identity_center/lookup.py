"""Single-account and single-group reads of the identity store, at a cost that does not grow
with the store.

An account is found by its email through the store's unique ``userName`` (GetUserId, then
DescribeUser), or by its native id (DescribeUser alone: the identity store reads users by id,
so a name hint is not needed, and a user renamed meanwhile is answered as it is now). What it
holds: its memberships (ListGroupMembershipsForMember, then DescribeGroup for each group's
name) and its direct account assignments (ListAccountAssignmentsForPrincipal; the permission
sets' names from the connector's one read of them). Calls: 1 or 2 for the user, 1 a page of
memberships plus 1 a group it is in, 1 a page of assignments; none grows with the store.

A group is found by its display name (GetGroupId), its members listed with
ListGroupMemberships, one call a page: the memberships carry user ids only, so members are
``AccountRef(id, "", None)`` (``name`` empty: unknown, not read). Naming them would cost a
DescribeUser each; a caller that needs names keeps an index of its own (the SCIM face does).
"""

from __future__ import annotations

import re

from hostsim.contract import (
    Account,
    AccountDetail,
    AccountLookup,
    AccountRef,
    GroupDetail,
    Holding,
    canonical_email,
)
from idhub_aws_plugin import input_rules
from idhub_aws_plugin.errors import is_code
from idhub_aws_plugin.identity_center.assignments import USER, Assignments, PermissionSets
from idhub_aws_plugin.identity_center.directory import NOT_FOUND, Directory, StoreUser
from idhub_aws_plugin.identity_center.entitlements import (
    GROUP_NAME_MAX,
    AssignmentEntitlement,
    GroupEntitlement,
)

#: The identity store's user and group ids (AWS's documented pattern): anything else is no
#: id of it, answered None without a call.
STORE_ID = re.compile(
    r"^([0-9a-f]{10}-|)[A-Fa-f0-9]{8}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-[A-Fa-f0-9]{4}-"
    r"[A-Fa-f0-9]{12}$"
)


def as_account(user: StoreUser, groups: tuple[str, ...] = ()) -> Account:
    """An identity-store user as the contract's ``Account`` (the shape ``fetch users`` rows
    have): no ARN, no path, always enabled (the identity store has no disabled state)."""
    return Account(
        id=user.user_id,
        user_name=user.user_name,
        email=user.email,
        first_name=user.first_name,
        last_name=user.last_name,
        display_name=user.display_name,
        arn="",
        attributes=dict(user.attributes),
        groups=groups,
    )


class Lookup:
    """One user, or one group, of the identity store."""

    def __init__(
        self, directory: Directory, permission_sets: PermissionSets, assignments: Assignments
    ) -> None:
        self._directory = directory
        self._permission_sets = permission_sets
        self._assignments = assignments

    def account(self, lookup: AccountLookup) -> AccountDetail | None:
        """The user ``lookup`` names, or None: no such user, an id of another user than the
        email names, or an email that is no valid one. A ``name`` hint is not needed (users
        are read by id) and is ignored."""
        user = self._user(lookup)
        if user is None:
            return None
        if lookup.id and user.user_id != lookup.id:
            return None
        if lookup.email and canonical_email(user.user_name) != canonical_email(lookup.email):
            return None
        return self._detail(user)

    def _user(self, lookup: AccountLookup) -> StoreUser | None:
        if lookup.id:
            return self._described(lookup.id)
        email = canonical_email(lookup.email or "")
        if input_rules.email_problems(email):
            return None
        user_id = self._directory.user_id(email)
        return None if user_id is None else self._described(user_id)

    def _described(self, user_id: str) -> StoreUser | None:
        """DescribeUser, None when the store has no such user (or the id is no id of it)."""
        if not STORE_ID.match(user_id):
            return None
        try:
            return self._directory.user(user_id)
        except Exception as exc:
            if is_code(exc, NOT_FOUND):
                return None
            raise

    def _detail(self, user: StoreUser) -> AccountDetail:
        groups = [
            (group_id, self._directory.group_name(group_id))
            for _membership, group_id in self._directory.memberships_of(user.user_id)
        ]
        holdings = [
            Holding(str(GroupEntitlement(name)), group_id, name) for group_id, name in groups
        ]
        for held in self._assignments.held_by(user.user_id, USER):
            name = self._permission_sets.name_of(held.permission_set_arn)
            entitlement = AssignmentEntitlement(name, held.account_id)
            holdings.append(Holding(str(entitlement), held.permission_set_arn, name))
        account = as_account(user, tuple(sorted(name for _id, name in groups)))
        return AccountDetail(account, tuple(holdings))

    def group(self, name: str) -> GroupDetail | None:
        """The group whose display name is ``name``, with its members' ids, or None."""
        if not name.strip() or len(name) > GROUP_NAME_MAX:
            return None
        group_id = self._directory.group_id(name)
        if group_id is None:
            return None
        try:
            members = tuple(
                AccountRef(user_id, "") for user_id in self._directory.members(group_id)
            )
        except Exception as exc:
            if is_code(exc, NOT_FOUND):  # deleted between the two calls
                return None
            raise
        return GroupDetail(name=name, id=group_id, arn="", path="", members=members)
