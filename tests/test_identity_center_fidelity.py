"""The embedded AWS's Identity Center: what AWS does and moto does not, proven with plain
boto3 clients (the connector's own tests, through the CLI, are in test_identity_center.py)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from identity_center_seeding import ACCOUNT, IdentityCenter

from hostsim.embedded_aws import EmbeddedAWS


@pytest.fixture
def center(aws: EmbeddedAWS) -> IdentityCenter:
    return IdentityCenter(aws)


def _user(center: IdentityCenter, name: str = "ada@example.com") -> str:
    made = center.store.create_user(
        IdentityStoreId=center.store_id,
        UserName=name,
        Name={"GivenName": "Ada", "FamilyName": "Lovelace"},
        DisplayName="Ada",
        Emails=[{"Value": name, "Type": "work", "Primary": True}],
    )
    return str(made["UserId"])


def _assign(center: IdentityCenter, user_id: str, arn: str) -> dict[str, Any]:
    return center.start_assignment("USER", user_id, arn)


def _creation_status(center: IdentityCenter, request_id: str) -> dict[str, Any]:
    status: dict[str, Any] = center.sso.describe_account_assignment_creation_status(
        InstanceArn=center.instance_arn, AccountAssignmentCreationRequestId=request_id
    )["AccountAssignmentCreationStatus"]
    return status


def test_update_user_replaces_the_attributes_it_names(center: IdentityCenter) -> None:
    user_id = _user(center)
    center.store.update_user(
        IdentityStoreId=center.store_id,
        UserId=user_id,
        Operations=[
            {"AttributePath": "userName", "AttributeValue": "ada.king@example.com"},
            {"AttributePath": "name.givenName", "AttributeValue": "Augusta"},
            {"AttributePath": "displayName", "AttributeValue": "Augusta Ada"},
            {"AttributePath": "title", "AttributeValue": "Countess"},
        ],
    )
    user = center.store.describe_user(IdentityStoreId=center.store_id, UserId=user_id)
    assert user["UserName"] == "ada.king@example.com"
    assert user["Name"] == {"GivenName": "Augusta", "FamilyName": "Lovelace"}
    assert (user["DisplayName"], user["Title"]) == ("Augusta Ada", "Countess")


def test_update_user_refuses_a_taken_user_name_and_an_unknown_path(
    center: IdentityCenter,
) -> None:
    user_id = _user(center)
    _user(center, "bo@example.com")
    for path, value, code in (
        ("userName", "bo@example.com", "ConflictException"),
        ("favouriteColour", "blue", "ValidationException"),
    ):
        with pytest.raises(ClientError) as caught:
            center.store.update_user(
                IdentityStoreId=center.store_id,
                UserId=user_id,
                Operations=[{"AttributePath": path, "AttributeValue": value}],
            )
        assert caught.value.response["Error"]["Code"] == code
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        center.store.update_user(
            IdentityStoreId=center.store_id,
            UserId="00000000-0000-0000-0000-000000000000",
            Operations=[{"AttributePath": "displayName", "AttributeValue": "X"}],
        )


def test_a_duplicate_membership_is_refused(center: IdentityCenter) -> None:
    user_id, group_id = _user(center), center.group("developers")
    member = {
        "IdentityStoreId": center.store_id,
        "GroupId": group_id,
        "MemberId": {"UserId": user_id},
    }
    center.store.create_group_membership(**member)
    with pytest.raises(ClientError, match="ConflictException"):
        center.store.create_group_membership(**member)
    assert center.members(group_id) == [user_id]


def test_a_deleted_users_memberships_go_with_it(center: IdentityCenter) -> None:
    user_id, group_id = _user(center), center.group("developers")
    center.store.create_group_membership(
        IdentityStoreId=center.store_id, GroupId=group_id, MemberId={"UserId": user_id}
    )
    center.store.delete_user(IdentityStoreId=center.store_id, UserId=user_id)
    assert center.members(group_id) == []


def test_an_assignment_is_in_progress_first_and_exists_once_it_succeeded(
    aws: EmbeddedAWS, center: IdentityCenter
) -> None:
    user_id, arn = _user(center), center.permission_set("ReadOnly")
    aws.assignment_reads_in_progress = 2
    started = _assign(center, user_id, arn)
    assert started["Status"] == "IN_PROGRESS"
    assert center.assignments(user_id) == set()
    assert _creation_status(center, started["RequestId"])["Status"] == "IN_PROGRESS"
    assert _creation_status(center, started["RequestId"])["Status"] == "IN_PROGRESS"
    assert _creation_status(center, started["RequestId"])["Status"] == "SUCCEEDED"
    assert center.assignments(user_id) == {(arn, ACCOUNT)}
    # the same assignment again succeeds without a second one
    again = _assign(center, user_id, arn)
    _creation_status(center, again["RequestId"])
    _creation_status(center, again["RequestId"])
    assert _creation_status(center, again["RequestId"])["Status"] == "SUCCEEDED"
    listed = center.sso.list_account_assignments_for_principal(
        InstanceArn=center.instance_arn, PrincipalId=user_id, PrincipalType="USER"
    )["AccountAssignments"]
    assert len(listed) == 1


def test_a_deletion_is_asynchronous_too(aws: EmbeddedAWS, center: IdentityCenter) -> None:
    user_id, arn = _user(center), center.permission_set("ReadOnly")
    started = _assign(center, user_id, arn)
    _creation_status(center, started["RequestId"])
    _creation_status(center, started["RequestId"])
    deleting = center.start_assignment("USER", user_id, arn, delete=True)
    assert deleting["Status"] == "IN_PROGRESS"
    assert center.assignments(user_id) == {(arn, ACCOUNT)}
    for expected in ("IN_PROGRESS", "SUCCEEDED"):
        status = center.sso.describe_account_assignment_deletion_status(
            InstanceArn=center.instance_arn,
            AccountAssignmentDeletionRequestId=deleting["RequestId"],
        )["AccountAssignmentDeletionStatus"]
        assert status["Status"] == expected
    assert center.assignments(user_id) == set()


def test_a_test_can_make_the_next_assignment_fail_with_a_reason(
    aws: EmbeddedAWS, center: IdentityCenter
) -> None:
    user_id, arn = _user(center), center.permission_set("ReadOnly")
    aws.fail_next_assignment("the permission set is not provisioned")
    started = _assign(center, user_id, arn)
    _creation_status(center, started["RequestId"])
    failed = _creation_status(center, started["RequestId"])
    assert (failed["Status"], failed["FailureReason"]) == (
        "FAILED",
        "the permission set is not provisioned",
    )
    assert center.assignments(user_id) == set()


def test_an_assignment_of_a_missing_permission_set_is_refused(center: IdentityCenter) -> None:
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        _assign(center, _user(center), f"{center.instance_arn}/ps-0000000000000000")


def test_the_number_of_instances_is_a_test_control(
    aws: EmbeddedAWS, center: IdentityCenter
) -> None:
    aws.set_identity_center_instances(2)
    arns = [i["InstanceArn"] for i in center.sso.list_instances()["Instances"]]
    assert len(arns) == 2 and arns[0] == center.instance_arn
    aws.set_identity_center_instances(0)
    assert center.sso.list_instances()["Instances"] == []
    aws.reset()
    assert len(center.sso.list_instances()["Instances"]) == 1


def test_an_operation_moto_lacks_is_a_json_error_botocore_can_read(center: IdentityCenter) -> None:
    group_id = center.group("developers")
    with pytest.raises(ClientError) as caught:
        center.store.update_group(
            IdentityStoreId=center.store_id,
            GroupId=group_id,
            Operations=[{"AttributePath": "description", "AttributeValue": "x"}],
        )
    assert caught.value.response["Error"]["Code"] == "NotImplemented"
