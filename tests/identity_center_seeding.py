"""An administrator's view of the embedded Identity Center, for the tests: plain boto3
clients, the instance moto makes, and helpers to seed groups, permission sets and group
assignments and to read back users, memberships and assignments."""

from __future__ import annotations

from typing import Any

from hostsim.embedded_aws import EmbeddedAWS

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"


class IdentityCenter:
    """An administrator's boto3 clients for the embedded Identity Center, and the instance."""

    def __init__(self, aws: EmbeddedAWS) -> None:
        session = aws.session()
        options: dict[str, Any] = {"endpoint_url": aws.endpoint_url, "region_name": aws.region}
        self.sso = session.client("sso-admin", **options)
        self.store = session.client("identitystore", **options)
        [instance] = self.sso.list_instances()["Instances"]
        self.instance_arn: str = instance["InstanceArn"]
        self.store_id: str = instance["IdentityStoreId"]

    def group(self, name: str) -> str:
        made = self.store.create_group(IdentityStoreId=self.store_id, DisplayName=name)
        return str(made["GroupId"])

    def permission_set(self, name: str) -> str:
        made = self.sso.create_permission_set(InstanceArn=self.instance_arn, Name=name)
        return str(made["PermissionSet"]["PermissionSetArn"])

    def start_assignment(
        self,
        principal_type: str,
        principal_id: str,
        permission_set_arn: str,
        account: str = ACCOUNT,
        *,
        delete: bool = False,
    ) -> dict[str, Any]:
        """Create (or delete) an account assignment as an administrator would: the request's
        status as AWS first answers it (``IN_PROGRESS``), not awaited."""
        call = self.sso.delete_account_assignment if delete else self.sso.create_account_assignment
        answer = call(
            InstanceArn=self.instance_arn,
            TargetId=account,
            TargetType="AWS_ACCOUNT",
            PermissionSetArn=permission_set_arn,
            PrincipalType=principal_type,
            PrincipalId=principal_id,
        )
        key = "AccountAssignmentDeletionStatus" if delete else "AccountAssignmentCreationStatus"
        status: dict[str, Any] = answer[key]
        return status

    def assign_group(self, group_id: str, permission_set_arn: str, account: str = ACCOUNT) -> None:
        """Assign a permission set to a group, as an administrator would, and await it."""
        started = self.start_assignment("GROUP", group_id, permission_set_arn, account)
        status = started
        while status["Status"] == "IN_PROGRESS":
            status = self.sso.describe_account_assignment_creation_status(
                InstanceArn=self.instance_arn,
                AccountAssignmentCreationRequestId=started["RequestId"],
            )["AccountAssignmentCreationStatus"]
        assert status["Status"] == "SUCCEEDED"

    def user(self, email: str) -> dict[str, Any] | None:
        found = self.store.list_users(IdentityStoreId=self.store_id)["Users"]
        return next((user for user in found if user["UserName"] == email), None)

    def user_ids(self) -> set[str]:
        return {u["UserId"] for u in self.store.list_users(IdentityStoreId=self.store_id)["Users"]}

    def members(self, group_id: str) -> list[str]:
        listed = self.store.list_group_memberships(IdentityStoreId=self.store_id, GroupId=group_id)
        return [m["MemberId"]["UserId"] for m in listed["GroupMemberships"]]

    def assignments(self, principal_id: str, principal_type: str = "USER") -> set[tuple[str, str]]:
        listed = self.sso.list_account_assignments_for_principal(
            InstanceArn=self.instance_arn, PrincipalId=principal_id, PrincipalType=principal_type
        )["AccountAssignments"]
        return {(a["PermissionSetArn"], a["AccountId"]) for a in listed}
