"""Create, modify and delete accounts against the embedded AWS (moto + IAM's rules)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from seeding import (
    direct_policies_of,
    fully_equipped_user,
    group,
    groups_of,
    policy,
    tags_of,
    user_names,
)

from hostsim.contract.errors import AlreadyExists, Conflict, InvalidInput, NotFound, Transient
from hostsim.contract.model import CreateRequest, DeleteRequest, ModifyRequest, StepStatus
from hostsim.embedded_aws import EmbeddedAWS
from idhub_aws_plugin.client import AwsClients
from idhub_aws_plugin.connector import AwsIamConnector
from idhub_aws_plugin.settings import load_settings

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

WRITES = {
    "CreateUser",
    "TagUser",
    "UntagUser",
    "UpdateUser",
    "AddUserToGroup",
    "AttachUserPolicy",
    "DeleteUser",
}


def writes(aws: EmbeddedAWS) -> list[str]:
    return [call for call in aws.calls() if call in WRITES or call.startswith(("Delete", "Detach"))]


def statuses(steps: tuple[object, ...]) -> list[tuple[str, str]]:
    return [(step.action, step.status.value) for step in steps]  # type: ignore[attr-defined]


# --- create -------------------------------------------------------------------------------


def test_create_writes_the_mapped_tags_and_returns_the_native_id(
    connector: AwsIamConnector, iam: IAMClient
) -> None:
    result = connector.create(
        CreateRequest(
            "Ada@Example.com", "Ada", "Lovelace", "Ada L.", attributes={"department": "R+D"}
        )
    )
    user = iam.get_user(UserName="ada@example.com")["User"]
    assert result.account is not None
    assert (result.account.id, result.account.name) == (user["UserId"], "ada@example.com")
    assert tags_of(iam, "ada@example.com") == {
        "Email": "ada@example.com",
        "FirstName": "Ada",
        "LastName": "Lovelace",
        "DisplayName": "Ada L.",
        "Department": "R+D",
    }
    assert result.changed


def test_create_with_grants_provisions_a_joiner_in_one_operation(
    connector: AwsIamConnector, iam: IAMClient
) -> None:
    arn = policy(iam, "reports-read")
    group(iam, "developers")
    result = connector.create(
        CreateRequest("bo@example.com", grants=("group:developers", f"policy:{arn}"))
    )
    assert statuses(result.steps) == [("create user", "done"), ("grant", "done"), ("grant", "done")]
    assert groups_of(iam, "bo@example.com") == {"developers"}
    assert direct_policies_of(iam, "bo@example.com") == {arn}


@pytest.mark.parametrize(
    ("request_", "fragment"),
    [
        (CreateRequest("not-an-email"), "is not an email address"),
        (CreateRequest("a!b@example.com"), "user name derived from email"),
        (CreateRequest("c@example.com", first_name="semi;colon"), "first_name: character"),
        (CreateRequest("c@example.com", attributes={"aws:x": "1"}), "reserved prefix"),
        (CreateRequest("c@example.com", grants=("role:admin",)), "expected group:NAME"),
        (CreateRequest("c@example.com", grants=("policy:ReadOnly",)), "not a managed policy ARN"),
        (CreateRequest("c@example.com", attributes={"email": "x@y.z"}), "as its own field"),
        (
            CreateRequest("c@example.com", attributes={f"k{i}": "v" for i in range(50)}),
            "would carry 51 tags",
        ),
    ],
)
def test_bad_create_input_changes_nothing(
    connector: AwsIamConnector,
    aws: EmbeddedAWS,
    iam: IAMClient,
    request_: CreateRequest,
    fragment: str,
) -> None:
    with pytest.raises(InvalidInput, match=fragment.replace("+", r"\+")):
        connector.create(request_)
    assert writes(aws) == []
    assert user_names(iam) == set()


def test_fifty_tags_are_allowed(connector: AwsIamConnector, iam: IAMClient) -> None:
    connector.create(CreateRequest("c@example.com", attributes={f"k{i}": "v" for i in range(49)}))
    assert len(tags_of(iam, "c@example.com")) == 50


@pytest.mark.parametrize(
    "entitlement", ["group:nobody", "policy:arn:aws:iam::123456789012:policy/none"]
)
def test_create_granting_what_does_not_exist_creates_nothing(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient, entitlement: str
) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        connector.create(CreateRequest("d@example.com", grants=(entitlement,)))
    assert user_names(iam) == set()
    assert writes(aws) == []


def test_create_refuses_a_name_taken_in_another_letter_case(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    iam.create_user(UserName="Eve@Example.com")
    aws.clear_calls()
    with pytest.raises(AlreadyExists, match=r"'Eve@Example\.com' exists already"):
        connector.create(CreateRequest("eve@example.com", first_name="Eve"))
    assert writes(aws) == []
    assert user_names(iam) == {"Eve@Example.com"}


def test_create_refuses_an_existing_user_that_is_not_this_account(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    iam.create_user(UserName="fay@example.com", Tags=[{"Key": "Email", "Value": "other@x.com"}])
    aws.clear_calls()
    with pytest.raises(AlreadyExists, match=r"is not the account of fay@example\.com"):
        connector.create(CreateRequest("fay@example.com", first_name="Fay"))
    assert writes(aws) == []


def test_create_resumes_an_interrupted_create_without_duplicating(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient, fast_backoff: list[float]
) -> None:
    group(iam, "developers")
    group(iam, "ops")
    request = CreateRequest("gus@example.com", "Gus", grants=("group:developers", "group:ops"))
    aws.fail_next("AddUserToGroup", code="ServiceUnavailable", status=503, times=99)
    with pytest.raises(Transient) as caught:
        connector.create(request)
    assert statuses(caught.value.steps) == [
        ("create user", "done"),
        ("grant", "failed"),
        ("grant", "pending"),
    ]
    assert groups_of(iam, "gus@example.com") == set()
    aws.reset_faults()

    result = connector.create(request)
    assert statuses(result.steps) == [
        ("create user", "unchanged"),
        ("tag user", "unchanged"),
        ("grant", "done"),
        ("grant", "done"),
    ]
    assert groups_of(iam, "gus@example.com") == {"developers", "ops"}
    again = connector.create(request)
    assert not again.changed
    assert aws.calls().count("CreateUser") == 1


def test_create_skips_attributes_the_mapping_does_not_write_on_create(
    aws_env: EmbeddedAWS, iam: IAMClient
) -> None:
    connector = AwsIamConnector.open({"attributes": {"display_name": {"on_create": False}}})
    result = connector.create(CreateRequest("hal@example.com", display_name="Hal 9000"))
    assert "DisplayName" not in tags_of(iam, "hal@example.com")
    assert ("write attribute", "skipped") in statuses(result.steps)


def test_unmapped_attributes_can_be_refused(aws_env: EmbeddedAWS, iam: IAMClient) -> None:
    connector = AwsIamConnector.open({"unmapped_attributes": "reject"})
    with pytest.raises(InvalidInput, match="attribute 'team' has no mapping"):
        connector.create(CreateRequest("ian@example.com", attributes={"team": "x"}))
    assert user_names(iam) == set()


def test_user_name_template_path_and_boundary(aws_env: EmbeddedAWS, iam: IAMClient) -> None:
    boundary = policy(iam, "boundary")
    settings = load_settings(
        {"user_name": "ext-{local_part}", "user_path": "/idhub/", "permissions_boundary": boundary}
    )
    clients = AwsClients(settings)
    sent: list[dict[str, Any]] = []
    # moto does not store a user's permissions boundary, so observe what goes on the wire
    clients.iam.meta.events.register(
        "provide-client-params.iam.CreateUser", lambda params, **_: sent.append(dict(params))
    )
    AwsIamConnector(settings, clients).create(CreateRequest("jo@example.com"))
    user = iam.get_user(UserName="ext-jo")["User"]
    assert user["Path"] == "/idhub/"
    assert sent[0]["PermissionsBoundary"] == boundary
    assert tags_of(iam, "ext-jo")["Email"] == "jo@example.com"


# --- modify -------------------------------------------------------------------------------


@pytest.fixture
def kim(connector: AwsIamConnector, iam: IAMClient, aws: EmbeddedAWS) -> str:
    arn = policy(iam, "reports-read")
    group(iam, "developers", arn)
    connector.create(
        CreateRequest(
            "kim@example.com",
            "Kim",
            "Lee",
            "Kim Lee",
            attributes={"department": "Ops"},
            grants=("group:developers", f"policy:{arn}"),
        )
    )
    aws.clear_calls()
    return iam.get_user(UserName="kim@example.com")["User"]["UserId"]


def test_modify_writes_only_what_changed(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient, kim: str
) -> None:
    result = connector.modify(ModifyRequest("kim@example.com", first_name="Kim", last_name="Park"))
    assert writes(aws) == ["TagUser"]
    assert [step.detail for step in result.steps] == ["LastName"]
    assert tags_of(iam, "kim@example.com")["LastName"] == "Park"


def test_modify_with_nothing_different_changes_nothing(
    connector: AwsIamConnector, aws: EmbeddedAWS, kim: str
) -> None:
    result = connector.modify(ModifyRequest("kim@example.com", display_name="Kim Lee"))
    assert not result.changed
    assert writes(aws) == []


def test_modify_clears_an_attribute_given_empty(
    connector: AwsIamConnector, iam: IAMClient, kim: str
) -> None:
    connector.modify(ModifyRequest("kim@example.com", attributes={"department": ""}))
    assert "Department" not in tags_of(iam, "kim@example.com")


def test_a_new_email_renames_and_keeps_id_groups_policies_and_tags(
    connector: AwsIamConnector, iam: IAMClient, kim: str
) -> None:
    result = connector.modify(ModifyRequest("kim@example.com", new_email="kim.park@example.com"))
    assert result.account is not None
    assert (result.account.id, result.account.name) == (kim, "kim.park@example.com")
    assert user_names(iam) == {"kim.park@example.com"}
    assert groups_of(iam, "kim.park@example.com") == {"developers"}
    assert len(direct_policies_of(iam, "kim.park@example.com")) == 1
    assert tags_of(iam, "kim.park@example.com") == {
        "Email": "kim.park@example.com",
        "FirstName": "Kim",
        "LastName": "Lee",
        "DisplayName": "Kim Lee",
        "Department": "Ops",
    }


def test_an_interrupted_rename_finishes_on_rerun(
    connector: AwsIamConnector,
    aws: EmbeddedAWS,
    iam: IAMClient,
    kim: str,
    fast_backoff: list[float],
) -> None:
    request = ModifyRequest("kim@example.com", new_email="kp@example.com", first_name="K")
    aws.fail_next("TagUser", code="ServiceUnavailable", status=503, times=99)
    with pytest.raises(Transient) as caught:
        connector.modify(request)
    assert statuses(caught.value.steps) == [("rename user", "done"), ("tag user", "failed")]
    aws.reset_faults()
    result = connector.modify(request)
    assert statuses(result.steps) == [("tag user", "done")]
    assert tags_of(iam, "kp@example.com")["Email"] == "kp@example.com"
    assert tags_of(iam, "kp@example.com")["FirstName"] == "K"


def test_renaming_onto_another_account_is_refused_and_changes_nothing(
    connector: AwsIamConnector, iam: IAMClient, kim: str
) -> None:
    connector.create(CreateRequest("lou@example.com"))
    with pytest.raises(AlreadyExists):
        connector.modify(ModifyRequest("kim@example.com", new_email="LOU@example.com"))
    assert user_names(iam) == {"kim@example.com", "lou@example.com"}
    assert tags_of(iam, "kim@example.com")["Email"] == "kim@example.com"


def test_modify_of_an_unknown_account(connector: AwsIamConnector, aws: EmbeddedAWS) -> None:
    with pytest.raises(NotFound, match=r"no account for max@example\.com"):
        connector.modify(ModifyRequest("max@example.com", first_name="Max"))
    assert writes(aws) == []


def test_modify_counts_existing_tags_against_the_limit(
    connector: AwsIamConnector, aws: EmbeddedAWS, kim: str
) -> None:
    extra = {f"k{i}": "v" for i in range(46)}
    with pytest.raises(InvalidInput, match="would carry 51 tags"):
        connector.modify(ModifyRequest("kim@example.com", attributes=extra))
    assert writes(aws) == []


def test_modify_skips_attributes_not_written_on_modify(
    aws_env: EmbeddedAWS, iam: IAMClient, kim: str
) -> None:
    connector = AwsIamConnector.open({"attributes": {"first_name": {"on_modify": False}}})
    result = connector.modify(ModifyRequest("kim@example.com", first_name="Kimberly"))
    assert tags_of(iam, "kim@example.com")["FirstName"] == "Kim"
    assert statuses(result.steps) == [("write attribute", "skipped")]


# --- delete -------------------------------------------------------------------------------


def test_delete_removes_everything_iam_requires_then_the_user(
    connector: AwsIamConnector, iam: IAMClient
) -> None:
    arn = policy(iam, "billing")
    group(iam, "auditors")
    fully_equipped_user(iam, "ned@example.com", "auditors", arn)
    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_user(UserName="ned@example.com")  # the harness enforces IAM's rule

    result = connector.delete(DeleteRequest("ned@example.com"))
    assert [(s.action, s.status.value, s.detail) for s in result.steps] == [
        ("delete login profile", "done", ""),
        ("delete access keys", "done", "2 removed"),
        ("delete signing certificates", "done", "1 removed"),
        ("delete SSH public keys", "done", "1 removed"),
        ("delete service-specific credentials", "done", "1 removed"),
        ("remove MFA devices", "done", "1 removed"),
        ("delete inline policies", "done", "1 removed"),
        ("detach managed policies", "done", "1 removed"),
        ("remove from groups", "done", "1 removed"),
        ("delete user", "done", ""),
    ]
    assert user_names(iam) == set()
    assert iam.list_virtual_mfa_devices()["VirtualMFADevices"] == []
    assert iam.get_group(GroupName="auditors")["Users"] == []


def test_deleting_an_absent_account_is_a_no_op(
    connector: AwsIamConnector, aws: EmbeddedAWS
) -> None:
    result = connector.delete(DeleteRequest("nobody@example.com"))
    assert result.account is None
    assert not result.changed
    assert writes(aws) == []


def test_a_failed_cascade_reports_what_was_done_and_a_rerun_finishes(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient, fast_backoff: list[float]
) -> None:
    arn = policy(iam, "billing")
    group(iam, "auditors")
    fully_equipped_user(iam, "oz@example.com", "auditors", arn)
    aws.fail_next("DetachUserPolicy", code="ServiceUnavailable", status=503, times=99)
    with pytest.raises(Transient) as caught:
        connector.delete(DeleteRequest("oz@example.com"))
    done = [s.action for s in caught.value.steps if s.status is StepStatus.DONE]
    assert done[0] == "delete login profile"
    assert [s.action for s in caught.value.steps if s.status is not StepStatus.DONE] == [
        "detach managed policies",
        "remove from groups",
        "delete user",
    ]
    assert [s.status.value for s in caught.value.steps[-3:]] == ["failed", "pending", "pending"]
    assert user_names(iam) == {"oz@example.com"}
    aws.reset_faults()

    result = connector.delete(DeleteRequest("oz@example.com"))
    assert [s.action for s in result.steps if s.status is StepStatus.DONE] == [
        "detach managed policies",
        "remove from groups",
        "delete user",
    ]
    assert user_names(iam) == set()


def test_a_delete_conflict_the_cascade_did_not_know_is_reported(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    iam.create_user(UserName="pat@example.com")
    aws.fail_next(
        "DeleteUser",
        code="DeleteConflict",
        status=409,
        message="Cannot delete entity, must remove the new thing first.",
    )
    with pytest.raises(Conflict, match="must remove the new thing first"):
        connector.delete(DeleteRequest("pat@example.com"))
    assert user_names(iam) == {"pat@example.com"}
