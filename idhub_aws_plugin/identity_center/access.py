"""Granting and revoking ``group:NAME`` and ``assignment:PERMISSIONSET@ACCOUNT``.

Each reads before it writes: a membership or assignment that holds already is ``unchanged``,
one that is absent is ``unchanged`` to revoke. Group and permission set are resolved before
any change, so an unknown one is refused (NotFound) with nothing done.
"""

from __future__ import annotations

from attrs import frozen

from hostsim.contract import NotFound, StepOutcome
from idhub_aws_plugin.identity_center.assignments import Assignments, PermissionSets
from idhub_aws_plugin.identity_center.directory import Directory
from idhub_aws_plugin.identity_center.entitlements import (
    AssignmentEntitlement,
    Entitlement,
    GroupEntitlement,
)


@frozen
class Resolved:
    """An entitlement with the ids AWS takes: a GroupId, or a permission set's ARN."""

    entitlement: Entitlement
    native_id: str


class Access:
    """Memberships and direct assignments of identity-store users."""

    def __init__(
        self, directory: Directory, permission_sets: PermissionSets, assignments: Assignments
    ) -> None:
        self._directory = directory
        self._permission_sets = permission_sets
        self._assignments = assignments

    def resolve(self, entitlement: Entitlement) -> Resolved:
        """The native id of the group or permission set; NotFound when there is none."""
        if isinstance(entitlement, GroupEntitlement):
            group_id = self._directory.group_id(entitlement.name)
            if group_id is None:
                raise NotFound(f"group {entitlement.name!r} does not exist in the identity store")
            return Resolved(entitlement, group_id)
        return Resolved(entitlement, self._permission_sets.arn_of(entitlement.permission_set))

    def grant(self, user_id: str, resolved: Resolved, outcome: StepOutcome) -> None:
        entitlement = resolved.entitlement
        if isinstance(entitlement, GroupEntitlement):
            member = self._directory.membership_id(resolved.native_id, user_id) is not None
            if member or not self._directory.add_member(resolved.native_id, user_id):
                outcome.unchanged("already a member")
            return
        assert isinstance(entitlement, AssignmentEntitlement)
        if self._assignments.has(user_id, resolved.native_id, entitlement.account_id):
            outcome.unchanged("already assigned")
            return
        outcome.done(self._assignments.create(user_id, resolved.native_id, entitlement.account_id))

    def revoke(self, user_id: str, resolved: Resolved, outcome: StepOutcome) -> None:
        entitlement = resolved.entitlement
        if isinstance(entitlement, GroupEntitlement):
            membership = self._directory.membership_id(resolved.native_id, user_id)
            if membership is None:
                outcome.unchanged("not a member")
            else:
                self._directory.remove_membership(membership)
            return
        assert isinstance(entitlement, AssignmentEntitlement)
        if not self._assignments.has(user_id, resolved.native_id, entitlement.account_id):
            outcome.unchanged("not assigned directly")
            return
        outcome.done(self._assignments.delete(user_id, resolved.native_id, entitlement.account_id))
