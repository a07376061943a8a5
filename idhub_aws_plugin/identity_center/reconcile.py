"""The fetch kinds of Identity Center, read in bulk and streamed.

``users`` (ListUsers, plus ListGroups and one ListGroupMemberships a group for their groups),
``groups``, ``group-access``, ``permission-sets`` (ListPermissionSets, one
DescribePermissionSet each) and ``assignments``: one ListAccountAssignmentsForPrincipal per
user (``via = direct``) and per group, each group's rows repeated for its members (``via =
group:NAME``). A permission set held both ways yields both rows, so a direct assignment is
still listed after the group carrying the same one is revoked. Calls: pages of users and
groups, plus one per user and two per group (plus pages) for ``assignments``.

And the contract's two well-known reads, through which IDHub's side (catalog, reconciliation)
reads this connector without knowing its rows: ``entitlements`` (every group, ``group:NAME``,
carrying the ``assignment:PS@ACCOUNT`` it is assigned; and every permission set in every
account it can be assigned in: those it is provisioned to, ListAccountsForProvisionedPermissionSet,
and any account an existing assignment of it names) and ``access`` (each membership,
``group:NAME`` ``via direct``, and each assignment row as ``assignments`` yields it). Calls:
``entitlements`` the permission sets' reads plus one ListAccountsForProvisionedPermissionSet
each, the pages of users and groups and one ListAccountAssignmentsForPrincipal per user and per
group; ``access`` those of ``assignments``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from hostsim.contract import (
    COMMON_ROW_TYPES,
    AccessRow,
    Account,
    CommonFetchKind,
    EntitlementRow,
    FetchKind,
    Group,
    GroupAccess,
    InvalidInput,
)
from idhub_aws_plugin.identity_center.assignments import (
    GROUP,
    USER,
    Assignments,
    Held,
    PermissionSets,
)
from idhub_aws_plugin.identity_center.directory import Directory, StoreUser
from idhub_aws_plugin.identity_center.entitlements import AssignmentEntitlement, GroupEntitlement
from idhub_aws_plugin.identity_center.rows import AccountAssignment, PermissionSet

PERMISSION_SETS = "permission-sets"
ASSIGNMENTS = "assignments"
ENTITLEMENTS = CommonFetchKind.ENTITLEMENTS.value
ACCESS = CommonFetchKind.ACCESS.value

#: The kinds this connector declares, with their row types (``ConnectorType.fetch_kinds``).
FETCH_KINDS: dict[str, type] = {
    FetchKind.USERS.value: Account,
    FetchKind.GROUPS.value: Group,
    FetchKind.GROUP_ACCESS.value: GroupAccess,
    PERMISSION_SETS: PermissionSet,
    ASSIGNMENTS: AccountAssignment,
    **{kind.value: row_type for kind, row_type in COMMON_ROW_TYPES.items()},
}

Row = Account | Group | GroupAccess | PermissionSet | AccountAssignment | EntitlementRow | AccessRow
#: ``(GroupId, name, member UserIds)`` of every group.
Members = list[tuple[str, str, list[str]]]


class Reconciliation:
    """The reads of one identity store and instance."""

    def __init__(
        self, directory: Directory, permission_sets: PermissionSets, assignments: Assignments
    ) -> None:
        self._directory = directory
        self._permission_sets = permission_sets
        self._assignments = assignments

    def fetch(self, kind: str) -> Iterator[Row]:
        readers: dict[str, Callable[[], Iterator[Row]]] = {
            FetchKind.USERS.value: self.users,
            FetchKind.GROUPS.value: self.groups,
            FetchKind.GROUP_ACCESS.value: self.group_access,
            PERMISSION_SETS: self.permission_sets,
            ASSIGNMENTS: self.assignments,
            ENTITLEMENTS: self.entitlements,
            ACCESS: self.access,
        }
        if kind not in readers:
            raise InvalidInput(f"unknown fetch kind {kind!r} (one of: {', '.join(readers)})")
        yield from readers[kind]()

    def _members(self) -> Members:
        """``(GroupId, name, member UserIds)`` of every group."""
        return [
            (group_id, name, list(self._directory.members(group_id)))
            for group_id, name in self._directory.groups()
        ]

    def users(self) -> Iterator[Account]:
        groups_of: dict[str, list[str]] = {}
        for _group_id, name, members in self._members():
            for user_id in members:
                groups_of.setdefault(user_id, []).append(name)
        for user in self._directory.users():
            yield Account(
                id=user.user_id,
                user_name=user.user_name,
                email=user.email,
                first_name=user.first_name,
                last_name=user.last_name,
                display_name=user.display_name,
                arn="",
                attributes=user.attributes,
                groups=tuple(sorted(groups_of.get(user.user_id, ()))),
            )

    def groups(self) -> Iterator[Group]:
        for group_id, name in self._directory.groups():
            yield Group(name=name, id=group_id, arn="")

    def group_access(self) -> Iterator[GroupAccess]:
        users = {user.user_id: user for user in self._directory.users()}
        for _group_id, name, members in self._members():
            for user_id in members:
                user = users.get(user_id)
                if user is not None:
                    yield GroupAccess(user.email, user.user_name, user.user_id, name)

    def permission_sets(self) -> Iterator[PermissionSet]:
        yield from self._permission_sets.all()

    def assignments(self) -> Iterator[AccountAssignment]:
        users = {user.user_id: user for user in self._directory.users()}
        yield from self._assignment_rows(users, self._members())

    def _assignment_rows(
        self, users: dict[str, StoreUser], members: Members
    ) -> Iterator[AccountAssignment]:
        for user in users.values():
            for held in self._assignments.held_by(user.user_id, USER):
                yield self._row(user, held.permission_set_arn, held.account_id, "direct")
        for group_id, name, member_ids in members:
            held_by_group = self._assignments.held_by(group_id, GROUP)
            for user_id in member_ids:
                member = users.get(user_id)
                if member is None:
                    continue
                for held in held_by_group:
                    arn, account = held.permission_set_arn, held.account_id
                    yield self._row(member, arn, account, f"group:{name}")

    def access(self) -> Iterator[AccessRow]:
        """Who holds which entitlement, and why: each membership (``group:NAME``, ``via
        direct``), then each assignment (``assignment:PS@ACCOUNT``, ``via direct`` or the
        group it comes through)."""
        users = {user.user_id: user for user in self._directory.users()}
        members = self._members()
        for _group_id, name, member_ids in members:
            for user_id in member_ids:
                user = users.get(user_id)
                if user is not None:
                    group = str(GroupEntitlement(name))
                    yield AccessRow(user.user_id, user.user_name, user.email, group, "direct")
        for row in self._assignment_rows(users, members):
            entitlement = str(AssignmentEntitlement(row.permission_set, row.account_id))
            yield AccessRow(row.user_id, row.user_name, row.email, entitlement, row.via)

    def entitlements(self) -> Iterator[EntitlementRow]:
        """Every group, carrying the assignments made to it, then every permission set in each
        account it can be assigned in (provisioned there, or named by an assignment)."""
        where: dict[str, set[str]] = {
            found.arn: set(self._permission_sets.accounts_of(found.arn))
            for found in self._permission_sets.all()
        }

        def seen(held: list[Held]) -> list[Held]:
            for one in held:
                where.setdefault(one.permission_set_arn, set()).add(one.account_id)
            return held

        groups = [
            (group_id, name, seen(self._assignments.held_by(group_id, GROUP)))
            for group_id, name in self._directory.groups()
        ]
        for user in self._directory.users():
            seen(self._assignments.held_by(user.user_id, USER))
        for group_id, name, held in groups:
            carries = sorted(
                {
                    str(
                        AssignmentEntitlement(
                            self._permission_sets.name_of(one.permission_set_arn), one.account_id
                        )
                    )
                    for one in held
                }
            )
            yield EntitlementRow(
                id=str(GroupEntitlement(name)),
                kind="group",
                name=name,
                native_id=group_id,
                description=f"Identity Center group {name}",
                carries=tuple(carries),
            )
        for found in self._permission_sets.all():
            for account in sorted(where.get(found.arn, ())):
                about = f"permission set {found.name} in account {account}"
                yield EntitlementRow(
                    id=str(AssignmentEntitlement(found.name, account)),
                    kind="assignment",
                    name=f"{found.name}@{account}",
                    native_id=found.arn,
                    description=f"{about}: {found.description}" if found.description else about,
                )

    def _row(self, user: StoreUser, arn: str, account_id: str, via: str) -> AccountAssignment:
        return AccountAssignment(
            email=user.email,
            user_name=user.user_name,
            user_id=user.user_id,
            permission_set=self._permission_sets.name_of(arn),
            permission_set_arn=arn,
            account_id=account_id,
            via=via,
        )
