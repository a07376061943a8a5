"""Permission sets and account assignments, which AWS provisions asynchronously.

CreateAccountAssignment and DeleteAccountAssignment answer at once with a request that is
``IN_PROGRESS``; the assignment exists (or is gone) only once
DescribeAccountAssignmentCreationStatus (DeletionStatus) says ``SUCCEEDED``. The connector
waits for that with bounded patience (``assignment_timeout_seconds``, polled every
``assignment_poll_milliseconds``): ``FAILED`` is a failure carrying AWS's ``FailureReason``;
still in progress when patience runs out is a transient failure (AWS goes on, and a re-run
finds it done).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from attrs import frozen

from hostsim.contract import ConnectorError, NotFound, Transient
from idhub_aws_plugin.identity_center.rows import PermissionSet

USER = "USER"
GROUP = "GROUP"
_STATUS = {
    "creation": ("AccountAssignmentCreationStatus", "describe_account_assignment_creation_status"),
    "deletion": ("AccountAssignmentDeletionStatus", "describe_account_assignment_deletion_status"),
}
_REQUEST_ID = {
    "creation": "AccountAssignmentCreationRequestId",
    "deletion": "AccountAssignmentDeletionRequestId",
}


@frozen
class Patience:
    """How long to await an assignment request, and how often to read its status."""

    timeout_seconds: float
    poll_seconds: float


@frozen
class Held:
    """One assignment as ListAccountAssignmentsForPrincipal lists it."""

    permission_set_arn: str
    account_id: str
    principal_type: str
    principal_id: str


class PermissionSets:
    """The instance's permission sets, read once per connector (ListPermissionSets, then one
    DescribePermissionSet each): names are what entitlement ids carry, ARNs what AWS takes."""

    def __init__(self, sso_admin: Any, instance_arn: str) -> None:
        self._client = sso_admin
        self._instance = instance_arn
        self._all: list[PermissionSet] | None = None

    def all(self) -> list[PermissionSet]:
        if self._all is None:
            self._all = list(self._read())
        return self._all

    def _read(self) -> Iterator[PermissionSet]:
        paginator = self._client.get_paginator("list_permission_sets")
        for page in paginator.paginate(InstanceArn=self._instance):
            for arn in page.get("PermissionSets", []):
                found = self._client.describe_permission_set(
                    InstanceArn=self._instance, PermissionSetArn=arn
                )["PermissionSet"]
                yield PermissionSet(
                    name=found["Name"],
                    arn=arn,
                    description=found.get("Description", "") or "",
                    session_duration=found.get("SessionDuration", "") or "",
                )

    def arn_of(self, name: str) -> str:
        """The ARN of the permission set called ``name``; NotFound (nothing changed) else."""
        for found in self.all():
            if found.name == name:
                return found.arn
        raise NotFound(f"permission set {name!r} does not exist in the Identity Center instance")

    def name_of(self, arn: str) -> str:
        return next((found.name for found in self.all() if found.arn == arn), arn)

    def accounts_of(self, arn: str) -> list[str]:
        """The AWS accounts the permission set is provisioned to
        (ListAccountsForProvisionedPermissionSet, every page): where it can be assigned."""
        paginator = self._client.get_paginator("list_accounts_for_provisioned_permission_set")
        return [
            str(account)
            for page in paginator.paginate(InstanceArn=self._instance, PermissionSetArn=arn)
            for account in page.get("AccountIds", [])
        ]


class Assignments:
    """Account assignments of one instance: listing, creating, deleting, awaiting."""

    def __init__(
        self,
        sso_admin: Any,
        instance_arn: str,
        patience: Patience,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = sso_admin
        self._instance = instance_arn
        self._patience = patience
        self._sleep = sleep
        self._clock = clock

    def held_by(self, principal_id: str, principal_type: str, account_id: str = "") -> list[Held]:
        """The assignments made to this principal itself (a user's listing may also carry
        those it holds through groups: those name the group, and are left out here)."""
        options: dict[str, Any] = {
            "InstanceArn": self._instance,
            "PrincipalId": principal_id,
            "PrincipalType": principal_type,
        }
        if account_id:
            options["Filter"] = {"AccountId": account_id}
        paginator = self._client.get_paginator("list_account_assignments_for_principal")
        return [
            Held(
                item["PermissionSetArn"],
                item["AccountId"],
                item.get("PrincipalType", principal_type),
                item.get("PrincipalId", principal_id),
            )
            for page in paginator.paginate(**options)
            for item in page.get("AccountAssignments", [])
            if item.get("PrincipalType", principal_type) == principal_type
            and item.get("PrincipalId", principal_id) == principal_id
        ]

    def has(self, user_id: str, permission_set_arn: str, account_id: str) -> bool:
        return any(
            held.permission_set_arn == permission_set_arn
            for held in self.held_by(user_id, USER, account_id)
        )

    def create(self, user_id: str, permission_set_arn: str, account_id: str) -> str:
        """Assign and await it; the detail to report (how it ended, with the request id)."""
        started = self._client.create_account_assignment(
            **self._target(user_id, permission_set_arn, account_id)
        )
        return self._await("creation", started["AccountAssignmentCreationStatus"])

    def delete(self, user_id: str, permission_set_arn: str, account_id: str) -> str:
        started = self._client.delete_account_assignment(
            **self._target(user_id, permission_set_arn, account_id)
        )
        return self._await("deletion", started["AccountAssignmentDeletionStatus"])

    def _target(self, user_id: str, permission_set_arn: str, account_id: str) -> dict[str, str]:
        return {
            "InstanceArn": self._instance,
            "TargetId": account_id,
            "TargetType": "AWS_ACCOUNT",
            "PermissionSetArn": permission_set_arn,
            "PrincipalType": USER,
            "PrincipalId": user_id,
        }

    def _await(self, kind: str, status: dict[str, Any]) -> str:
        """Poll the request until it leaves IN_PROGRESS or patience runs out."""
        key, method = _STATUS[kind]
        request_id = str(status.get("RequestId", ""))
        deadline = self._clock() + self._patience.timeout_seconds
        reads = 0
        while status.get("Status") == "IN_PROGRESS":
            if self._clock() >= deadline:
                raise Transient(
                    f"the account assignment {kind} (request {request_id}) is still in "
                    f"progress after {self._patience.timeout_seconds:g}s; AWS goes on with "
                    "it: run the same command again to see it finished"
                )
            self._sleep(self._patience.poll_seconds)
            reads += 1
            answer = getattr(self._client, method)(
                InstanceArn=self._instance, **{_REQUEST_ID[kind]: request_id}
            )
            status = answer[key]
        if status.get("Status") == "FAILED":
            raise ConnectorError(
                f"the account assignment {kind} failed (request {request_id}): "
                f"{status.get('FailureReason') or 'AWS gave no reason'}"
            )
        return f"{status.get('Status', 'SUCCEEDED')} after {reads} status read(s)"
