"""Reliability: faults survived, bad input refused, nothing lost.

Every scenario runs the real connector (or the real CLI, in process) against the embedded AWS,
makes the endpoint misbehave through its fault controls (throttling, 5xx errors, replies lost
after the change was applied, a fresh user not yet visible), and then asserts the state of IAM
itself: nothing lost (every requested change is there) and nothing duplicated (one user, the
exact memberships asked for). Composite operations that stop halfway must say exactly which
steps were applied, and the same operation run again must finish the job.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

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

import idhub_aws_plugin
from hostsim.cli import main
from hostsim.config import KeyLines, key_paths, locate, located_errors
from hostsim.contract.errors import (
    ConfigurationError,
    Conflict,
    ConnectorError,
    NotFound,
    PermissionDenied,
    Transient,
)
from hostsim.contract.model import (
    AccessRequest,
    CreateRequest,
    DeleteRequest,
    FetchKind,
    ModifyRequest,
    Step,
)
from hostsim.embedded_aws import EmbeddedAWS
from idhub_aws_plugin import accounts
from idhub_aws_plugin.accounts import FreshUserWait
from idhub_aws_plugin.connector import AwsIamConnector
from idhub_aws_plugin.settings import load_settings

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_iam.type_defs import TagTypeDef

READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
#: IAM's own message for a user it cannot see.
MISSING_USER = "The user with name {} cannot be found."

#: Every IAM action that changes something; a refused input must send none of them.
WRITE_PREFIXES = (
    "Create",
    "Update",
    "Delete",
    "Tag",
    "Untag",
    "Add",
    "Remove",
    "Attach",
    "Detach",
    "Put",
    "Deactivate",
    "Upload",
    "Enable",
)


def tag_list(tags: dict[str, str]) -> list[TagTypeDef]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def statuses(steps: tuple[Step, ...]) -> list[tuple[str, str]]:
    return [(step.action, step.status.value) for step in steps]


def served(aws: EmbeddedAWS, action: str) -> int:
    """How many requests for ``action`` reached IAM's backend (not refused by a fault)."""
    injected = sum(1 for name, _code in aws.injected() if name == action)
    return aws.calls().count(action) - injected


def writes(aws: EmbeddedAWS) -> list[str]:
    return [call for call in aws.calls() if call.startswith(WRITE_PREFIXES)]


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The ``hostsim`` command in this process: exit code, stdout, stderr."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def failure_of(operation: Callable[[], object]) -> ConnectorError:
    with pytest.raises(ConnectorError) as caught:
        operation()
    return caught.value


@pytest.fixture
def joiner(iam: IAMClient) -> CreateRequest:
    """A joiner with three initial grants: two groups and a customer-managed policy."""
    group(iam, "dev")
    group(iam, "ops")
    arn = policy(iam, "reports")
    return CreateRequest(
        "ann@example.com", "Ann", "Lee", grants=("group:dev", "group:ops", f"policy:{arn}")
    )


def assert_joiner_complete(iam: IAMClient, aws: EmbeddedAWS) -> None:
    """Nothing lost, nothing duplicated: one user, exactly its tags and its three grants."""
    assert user_names(iam) == {"ann@example.com"}
    assert served(aws, "CreateUser") == 1
    assert tags_of(iam, "ann@example.com") == {
        "Email": "ann@example.com",
        "FirstName": "Ann",
        "LastName": "Lee",
    }
    assert groups_of(iam, "ann@example.com") == {"dev", "ops"}
    assert {arn.rsplit("/", 1)[-1] for arn in direct_policies_of(iam, "ann@example.com")} == {
        "reports"
    }


# ==========================================================================================
# Faults: throttling and transient errors, retried by botocore from the connector's settings
# ==========================================================================================


@pytest.mark.parametrize("every", [2, 3])
def test_throttling_during_create_with_grants_loses_and_doubles_nothing(
    connector: AwsIamConnector,
    aws: EmbeddedAWS,
    iam: IAMClient,
    joiner: CreateRequest,
    fast_backoff: list[float],
    every: int,
) -> None:
    aws.clear_calls()
    aws.throttle(every=every)
    result = connector.create(joiner)
    aws.reset_faults()

    assert statuses(result.steps) == [("create user", "done")] + [("grant", "done")] * 3
    assert ("CreateUser", "Throttling") in aws.injected() or every == 3
    assert len(aws.injected()) == len(fast_backoff) > 0  # each throttle retried by botocore
    assert_joiner_complete(iam, aws)


def test_throttling_during_grant_and_revoke(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient, fast_backoff: list[float]
) -> None:
    group(iam, "dev")
    iam.create_user(UserName="bo@example.com", Tags=[{"Key": "Email", "Value": "bo@example.com"}])
    aws.clear_calls()
    aws.throttle(every=2)

    granted = connector.grant(AccessRequest("bo@example.com", "group:dev"))
    attached = connector.grant(AccessRequest("bo@example.com", f"policy:{READ_ONLY}"))
    assert groups_of(iam, "bo@example.com") == {"dev"}
    assert direct_policies_of(iam, "bo@example.com") == {READ_ONLY}
    revoked = connector.revoke(AccessRequest("bo@example.com", "group:dev"))
    aws.reset_faults()

    assert [r.changed for r in (granted, attached, revoked)] == [True, True, True]
    assert groups_of(iam, "bo@example.com") == set()
    assert direct_policies_of(iam, "bo@example.com") == {READ_ONLY}
    assert served(aws, "AddUserToGroup") == served(aws, "AttachUserPolicy") == 1
    assert len(aws.injected()) == len(fast_backoff) >= 4


def test_throttling_during_the_delete_cascade(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient, fast_backoff: list[float]
) -> None:
    arn = policy(iam, "reports")
    group(iam, "dev")
    fully_equipped_user(iam, "cy@example.com", "dev", arn)
    aws.clear_calls()
    aws.throttle(every=2)

    result = connector.delete(DeleteRequest("cy@example.com"))
    aws.reset_faults()

    assert {status for _action, status in statuses(result.steps)} == {"done"}
    assert len(result.steps) == 10
    assert user_names(iam) == set()
    assert iam.list_virtual_mfa_devices()["VirtualMFADevices"] == []
    assert len(aws.injected()) == len(fast_backoff) >= 10


def test_throttling_during_modify_with_rename(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient, fast_backoff: list[float]
) -> None:
    connector.create(CreateRequest("di@example.com", "Di", attributes={"team": "a"}))
    user_id = iam.get_user(UserName="di@example.com")["User"]["UserId"]
    aws.throttle(every=2)

    result = connector.modify(
        ModifyRequest(
            "di@example.com", new_email="di.x@example.com", first_name="D", attributes={"team": ""}
        )
    )
    aws.reset_faults()

    assert statuses(result.steps) == [
        ("rename user", "done"),
        ("untag user", "done"),
        ("tag user", "done"),
    ]
    assert iam.get_user(UserName="di.x@example.com")["User"]["UserId"] == user_id
    assert tags_of(iam, "di.x@example.com") == {"Email": "di.x@example.com", "FirstName": "D"}
    assert fast_backoff


def test_throttling_during_fetch_streams_every_row(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient, fast_backoff: list[float]
) -> None:
    arn = policy(iam, "reports")
    group(iam, "dev", arn)
    for index in range(5):
        name = f"u{index}@example.com"
        iam.create_user(UserName=name, Tags=[{"Key": "Email", "Value": name}])
        iam.add_user_to_group(GroupName="dev", UserName=name)
    expected = {kind: list(connector.fetch(kind)) for kind in FetchKind}

    aws.throttle(every=2)
    throttled = {kind: list(connector.fetch(kind)) for kind in FetchKind}
    aws.reset_faults()

    assert throttled == expected
    assert len(expected[FetchKind.POLICY_ACCESS]) == 5
    assert len(aws.injected()) == len(fast_backoff) >= len(FetchKind)


@pytest.mark.parametrize(
    ("mode", "code", "status"),
    [
        ("standard", "Throttling", 400),
        ("standard", "ServiceUnavailable", 503),
        ("standard", "InternalFailure", 500),
        ("legacy", "Throttling", 400),
        ("legacy", "ServiceUnavailable", 503),
        # adaptive mode also slows the client's sending rate after a throttle, with real
        # sleeps of seconds: shown with server errors only, to keep the suite fast
        ("adaptive", "ServiceUnavailable", 503),
    ],
)
def test_retry_mode_and_attempts_come_from_the_settings(
    aws_env: EmbeddedAWS,
    iam: IAMClient,
    fast_backoff: list[float],
    mode: str,
    code: str,
    status: int,
) -> None:
    """max_attempts=3: two failures are retried away, three are reported (and nothing made)."""
    connector = AwsIamConnector.open({"retry_mode": mode, "max_attempts": 3})
    aws_env.fail_next("CreateUser", code=code, status=status, times=2)
    connector.create(CreateRequest("ed@example.com"))
    assert aws_env.calls().count("CreateUser") == 3
    assert len(fast_backoff) == 2

    aws_env.fail_next("CreateUser", code=code, status=status, times=3)
    error = failure_of(lambda: connector.create(CreateRequest("fi@example.com")))
    assert isinstance(error, Transient)
    assert error.retryable
    assert statuses(error.steps) == [("create user", "failed")]
    assert user_names(iam) == {"ed@example.com"}
    assert aws_env.calls().count("CreateUser") == 6


def test_the_default_retries_outlast_seven_throttles(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient, fast_backoff: list[float]
) -> None:
    aws.fail_next("CreateUser", times=7)
    connector.create(CreateRequest("gil@example.com"))
    assert user_names(iam) == {"gil@example.com"}
    assert len(fast_backoff) == 7


def test_no_hand_rolled_sleeps_in_the_plugin() -> None:
    """Retries are botocore's; the one wait of our own is the bounded wait for a user the
    operation has just created (FreshUserWait), so ``sleep`` appears nowhere else."""
    package = Path(idhub_aws_plugin.__file__).parent
    found: list[str] = []
    for module in sorted(package.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            name = getattr(node, "attr", None) or getattr(node, "id", None)
            if name == "sleep" or (isinstance(node, ast.alias) and node.name == "sleep"):
                found.append(f"{module.name}:{getattr(node, 'lineno', '?')}")
    assert found
    assert {place.split(":")[0] for place in found} == {"accounts.py"}


# ==========================================================================================
# Faults: eventual consistency right after the connector created a user
# ==========================================================================================


@pytest.mark.parametrize("hidden_for", [1, 2, 4])
def test_a_fresh_user_not_yet_visible_is_waited_for(
    connector: AwsIamConnector,
    aws: EmbeddedAWS,
    iam: IAMClient,
    joiner: CreateRequest,
    fresh_user_sleeps: list[float],
    hidden_for: int,
) -> None:
    aws.clear_calls()
    aws.hide_new_users(requests=hidden_for)
    result = connector.create(joiner)

    assert statuses(result.steps) == [("create user", "done")] + [("grant", "done")] * 3
    assert "IAM showed the new user after" in result.steps[1].detail
    assert fresh_user_sleeps == list(FreshUserWait().delays[:hidden_for])
    assert [code for _action, code in aws.injected()] == ["NoSuchEntity"] * hidden_for
    assert_joiner_complete(iam, aws)


def test_a_fresh_user_hidden_for_a_while_by_the_clock(
    connector: AwsIamConnector,
    aws: EmbeddedAWS,
    iam: IAMClient,
    joiner: CreateRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(accounts, "FRESH_USER_WAIT", FreshUserWait(delays=(0.05, 0.1, 0.2, 0.4)))
    aws.clear_calls()
    aws.hide_new_users(seconds=0.2)
    connector.create(joiner)
    assert aws.injected()
    assert_joiner_complete(iam, aws)


def test_the_wait_for_a_fresh_user_is_bounded_and_a_rerun_finishes(
    connector: AwsIamConnector,
    aws: EmbeddedAWS,
    iam: IAMClient,
    joiner: CreateRequest,
    fresh_user_sleeps: list[float],
) -> None:
    aws.clear_calls()
    aws.hide_new_users(requests=1000)
    error = failure_of(lambda: connector.create(joiner))

    assert isinstance(error, Transient)
    assert "eventual consistency" in error.message
    assert fresh_user_sleeps == [0.25, 0.5, 1.0, 2.0]  # 5 tries, 3.75 s in all
    assert statuses(error.steps) == [
        ("create user", "done"),
        ("grant", "failed"),
        ("grant", "pending"),
        ("grant", "pending"),
    ]
    aws.reset_faults()
    rerun = connector.create(joiner)
    assert statuses(rerun.steps) == [
        ("create user", "unchanged"),
        ("tag user", "unchanged"),
        ("grant", "done"),
        ("grant", "done"),
        ("grant", "done"),
    ]
    assert_joiner_complete(iam, aws)


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("AddUserToGroup", "The group with name dev cannot be found."),
        ("AddUserToGroup", MISSING_USER.format("someone.else@example.com")),
        ("AddUserToGroup", "Policy is not attachable."),
    ],
    ids=["about-the-group", "about-another-user", "another-message"],
)
def test_only_no_such_entity_about_the_fresh_user_is_waited_for(
    connector: AwsIamConnector,
    aws: EmbeddedAWS,
    iam: IAMClient,
    joiner: CreateRequest,
    fresh_user_sleeps: list[float],
    action: str,
    message: str,
) -> None:
    aws.clear_calls()
    aws.fail_next(action, code="NoSuchEntity", status=404, message=message)
    error = failure_of(lambda: connector.create(joiner))

    assert isinstance(error, NotFound)
    assert fresh_user_sleeps == []
    assert statuses(error.steps)[:2] == [("create user", "done"), ("grant", "failed")]
    assert aws.calls().count(action) == 1


def test_an_account_the_operation_did_not_create_is_not_waited_for(
    connector: AwsIamConnector,
    aws: EmbeddedAWS,
    iam: IAMClient,
    joiner: CreateRequest,
    fresh_user_sleeps: list[float],
) -> None:
    """Neither a grant to an existing account nor a create that resumes one waits: there,
    IAM saying the user is missing is the truth, not a lag."""
    connector.create(CreateRequest("ann@example.com", "Ann", "Lee"))
    missing = MISSING_USER.format("ann@example.com")
    aws.clear_calls()

    aws.fail_next("ListGroupsForUser", code="NoSuchEntity", status=404, message=missing)
    assert isinstance(
        failure_of(lambda: connector.grant(AccessRequest("ann@example.com", "group:dev"))),
        NotFound,
    )
    aws.fail_next("ListGroupsForUser", code="NoSuchEntity", status=404, message=missing)
    resumed = failure_of(lambda: connector.create(joiner))
    assert statuses(resumed.steps)[:3] == [
        ("create user", "unchanged"),
        ("tag user", "unchanged"),
        ("grant", "failed"),
    ]
    assert fresh_user_sleeps == []
    assert aws.calls().count("ListGroupsForUser") == 2


def test_a_fresh_user_not_yet_visible_through_the_cli(
    aws_env: EmbeddedAWS,
    iam: IAMClient,
    capsys: pytest.CaptureFixture[str],
    fresh_user_sleeps: list[float],
) -> None:
    group(iam, "dev")
    aws_env.hide_new_users(requests=2)
    code, out, _err = cli(capsys, "create", "hu@example.com", "--grant", "group:dev", "--json")
    assert code == 0
    assert [step["status"] for step in json.loads(out)["steps"]] == ["done", "done"]
    assert groups_of(iam, "hu@example.com") == {"dev"}
    assert len(fresh_user_sleeps) == 2


# ==========================================================================================
# Faults: replies lost after IAM applied the change (botocore's retry meets its own work)
# ==========================================================================================


@pytest.mark.parametrize("action", ["CreateUser", "AddUserToGroup", "AttachUserPolicy"])
def test_a_lost_reply_during_create_loses_and_doubles_nothing(
    connector: AwsIamConnector,
    aws: EmbeddedAWS,
    iam: IAMClient,
    joiner: CreateRequest,
    fast_backoff: list[float],
    action: str,
) -> None:
    aws.clear_calls()
    aws.fail_next(action, code="InternalFailure", status=500, lose_reply=True)
    result = connector.create(joiner)

    assert aws.injected() == [(action, "InternalFailure")]
    assert {status for _action, status in statuses(result.steps)} == {"done"}
    assert_joiner_complete(iam, aws)
    assert connector.create(joiner).changed is False


def test_a_lost_create_reply_then_a_user_not_yet_visible(
    connector: AwsIamConnector,
    aws: EmbeddedAWS,
    iam: IAMClient,
    joiner: CreateRequest,
    fast_backoff: list[float],
    fresh_user_sleeps: list[float],
) -> None:
    aws.clear_calls()
    aws.hide_new_users(requests=2)
    aws.fail_next("CreateUser", code="ServiceUnavailable", status=503, lose_reply=True)
    result = connector.create(joiner)

    assert result.steps[0].detail.startswith("a retry of CreateUser found it created")
    assert len(fresh_user_sleeps) == 2
    assert_joiner_complete(iam, aws)


def test_a_lost_create_reply_does_not_adopt_another_account(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient, fast_backoff: list[float]
) -> None:
    """EntityAlreadyExists is adopted only for a user carrying this account's email."""
    iam.create_user(UserName="jo@example.com", Tags=[{"Key": "Email", "Value": "x@example.com"}])
    aws.fail_next("GetUser", code="NoSuchEntity", status=404, message="gone")  # race: not seen
    error = failure_of(lambda: connector.create(CreateRequest("jo@example.com")))
    assert "is not the account of jo@example.com" in error.message
    assert statuses(error.steps) == [("create user", "failed")]
    assert tags_of(iam, "jo@example.com") == {"Email": "x@example.com"}


@pytest.mark.parametrize("action", ["UpdateUser", "TagUser", "UntagUser"])
def test_a_lost_reply_during_rename_with_attributes(
    connector: AwsIamConnector,
    aws: EmbeddedAWS,
    iam: IAMClient,
    fast_backoff: list[float],
    action: str,
) -> None:
    connector.create(CreateRequest("kay@example.com", "Kay", attributes={"team": "a"}))
    user_id = iam.get_user(UserName="kay@example.com")["User"]["UserId"]
    aws.fail_next(action, code="InternalFailure", status=500, lose_reply=True)

    result = connector.modify(
        ModifyRequest("kay@example.com", new_email="kay.b@example.com", attributes={"team": ""})
    )

    assert aws.injected() == [(action, "InternalFailure")]
    assert [status for _action, status in statuses(result.steps)] == ["done"] * 3
    assert user_names(iam) == {"kay.b@example.com"}
    assert iam.get_user(UserName="kay.b@example.com")["User"]["UserId"] == user_id
    assert tags_of(iam, "kay.b@example.com") == {"Email": "kay.b@example.com", "FirstName": "Kay"}


CASCADE_WRITES = [
    "DeleteLoginProfile",
    "DeleteAccessKey",
    "DeleteSigningCertificate",
    "DeleteSSHPublicKey",
    "DeleteServiceSpecificCredential",
    "DeactivateMFADevice",
    "DeleteUserPolicy",
    "DetachUserPolicy",
    "RemoveUserFromGroup",
    "DeleteUser",
]


def test_lost_replies_all_through_the_delete_cascade(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient, fast_backoff: list[float]
) -> None:
    """Every removal of the cascade (and DeleteUser itself) is applied by IAM and its answer
    lost; each retry meets the removal already done, which the cascade takes as done."""
    arn = policy(iam, "reports")
    group(iam, "dev")
    fully_equipped_user(iam, "lu@example.com", "dev", arn)
    lost = [*CASCADE_WRITES, "DeleteVirtualMFADevice"]
    for action in lost:
        aws.fail_next(action, code="InternalFailure", status=500, lose_reply=True)

    result = connector.delete(DeleteRequest("lu@example.com"))

    assert sorted(aws.injected()) == sorted((action, "InternalFailure") for action in lost)
    # the login profile step reads "unchanged": IAM's retry answer is all it can go by
    assert [status for _action, status in statuses(result.steps)][1:] == ["done"] * 9
    assert result.steps[-1].detail.startswith("a retry of DeleteUser found it deleted")
    assert user_names(iam) == set()
    assert iam.list_virtual_mfa_devices()["VirtualMFADevices"] == []
    assert iam.get_group(GroupName="dev")["Users"] == []
    assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 0


# ==========================================================================================
# Partial failure: exactly which steps were applied, and a re-run finishes the job
# ==========================================================================================


@pytest.mark.parametrize(
    ("action", "where", "failed_at"),
    [
        ("CreateUser", {}, 0),
        ("AddUserToGroup", {"GroupName": "dev"}, 1),
        ("AddUserToGroup", {"GroupName": "ops"}, 2),
        ("AttachUserPolicy", {}, 3),
    ],
    ids=["create", "first-grant", "second-grant", "third-grant"],
)
def test_an_interrupted_create_with_grants_reports_its_steps_and_a_rerun_finishes(
    connector: AwsIamConnector,
    aws: EmbeddedAWS,
    iam: IAMClient,
    joiner: CreateRequest,
    fast_backoff: list[float],
    action: str,
    where: dict[str, str],
    failed_at: int,
) -> None:
    aws.clear_calls()
    aws.fail_next(action, code="ServiceUnavailable", status=503, times=99, where=where)
    error = failure_of(lambda: connector.create(joiner))
    aws.reset_faults()

    planned = ["create user", "grant", "grant", "grant"]
    expected = [
        (step, "done" if index < failed_at else "failed" if index == failed_at else "pending")
        for index, step in enumerate(planned)
    ]
    assert isinstance(error, Transient)
    assert statuses(error.steps) == expected
    applied = {step.target for step in error.steps if step.status.value == "done"}
    if failed_at == 0:
        assert user_names(iam) == set()
    else:  # what the steps say was applied is applied, and nothing else
        held = {f"group:{g}" for g in groups_of(iam, "ann@example.com")} | {
            f"policy:{arn}" for arn in direct_policies_of(iam, "ann@example.com")
        }
        assert held == applied - {"ann@example.com"}

    rerun = connector.create(joiner)
    assert [status for _action, status in statuses(rerun.steps) if _action == "grant"] == [
        "unchanged" if index < failed_at else "done" for index in range(1, 4)
    ]
    assert_joiner_complete(iam, aws)
    assert not connector.create(joiner).changed


def cascade_remains(iam: IAMClient, user: str) -> list[bool]:
    """For each kind the cascade removes, in its order: is any still there?"""
    return [
        _has_login_profile(iam, user),
        bool(iam.list_access_keys(UserName=user)["AccessKeyMetadata"]),
        bool(iam.list_signing_certificates(UserName=user)["Certificates"]),
        bool(iam.list_ssh_public_keys(UserName=user)["SSHPublicKeys"]),
        bool(iam.list_service_specific_credentials(UserName=user)["ServiceSpecificCredentials"]),
        bool(iam.list_mfa_devices(UserName=user)["MFADevices"]),
        bool(iam.list_user_policies(UserName=user)["PolicyNames"]),
        bool(iam.list_attached_user_policies(UserName=user)["AttachedPolicies"]),
        bool(iam.list_groups_for_user(UserName=user)["Groups"]),
    ]


def _has_login_profile(iam: IAMClient, user: str) -> bool:
    try:
        iam.get_login_profile(UserName=user)
    except iam.exceptions.NoSuchEntityException:
        return False
    return True


@pytest.mark.parametrize("failed_at", range(len(CASCADE_WRITES)), ids=CASCADE_WRITES)
def test_a_delete_cascade_failing_midway_reports_its_steps_and_a_rerun_finishes(
    connector: AwsIamConnector,
    aws: EmbeddedAWS,
    iam: IAMClient,
    failed_at: int,
) -> None:
    arn = policy(iam, "reports")
    group(iam, "dev")
    fully_equipped_user(iam, "mo@example.com", "dev", arn)
    aws.fail_next(CASCADE_WRITES[failed_at], code="AccessDenied", status=403, message="no")

    error = failure_of(lambda: connector.delete(DeleteRequest("mo@example.com")))

    assert isinstance(error, PermissionDenied)
    assert [status for _action, status in statuses(error.steps)] == (
        ["done"] * failed_at + ["failed"] + ["pending"] * (len(CASCADE_WRITES) - failed_at - 1)
    )
    remains = cascade_remains(iam, "mo@example.com")  # the steps told the truth
    assert remains == [index >= failed_at for index in range(len(remains))]

    rerun = connector.delete(DeleteRequest("mo@example.com"))
    assert [status for _action, status in statuses(rerun.steps)] == (
        ["unchanged"] * failed_at + ["done"] * (len(CASCADE_WRITES) - failed_at)
    )
    assert user_names(iam) == set()
    assert iam.list_virtual_mfa_devices()["VirtualMFADevices"] == []
    again = connector.delete(DeleteRequest("mo@example.com"))
    assert statuses(again.steps) == [("delete user", "unchanged")]


MODIFY_WRITES = ["UpdateUser", "UntagUser", "TagUser"]


@pytest.mark.parametrize("failed_at", range(3), ids=MODIFY_WRITES)
def test_an_interrupted_rename_with_attribute_changes_reports_and_finishes(
    connector: AwsIamConnector,
    aws: EmbeddedAWS,
    iam: IAMClient,
    fast_backoff: list[float],
    failed_at: int,
) -> None:
    connector.create(CreateRequest("ned@example.com", "Ned", attributes={"team": "a"}))
    user_id = iam.get_user(UserName="ned@example.com")["User"]["UserId"]
    request = ModifyRequest(
        "ned@example.com", new_email="ned.b@example.com", first_name="N", attributes={"team": ""}
    )
    aws.fail_next(MODIFY_WRITES[failed_at], code="ServiceUnavailable", status=503, times=99)

    error = failure_of(lambda: connector.modify(request))
    aws.reset_faults()

    assert statuses(error.steps) == [
        (step, "done" if index < failed_at else "failed" if index == failed_at else "pending")
        for index, step in enumerate(["rename user", "untag user", "tag user"])
    ]
    assert user_names(iam) == {"ned.b@example.com" if failed_at else "ned@example.com"}
    rerun = connector.modify(request)
    assert [action for action, _status in statuses(rerun.steps)] == [
        "rename user",
        "untag user",
        "tag user",
    ][max(failed_at, 1) if failed_at else 0 :]
    assert iam.get_user(UserName="ned.b@example.com")["User"]["UserId"] == user_id
    assert tags_of(iam, "ned.b@example.com") == {"Email": "ned.b@example.com", "FirstName": "N"}
    assert not connector.modify(request).changed


def test_a_modify_never_writes_to_the_account_of_its_new_email(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    """No account for the old email, an account for the new one: that is someone else's
    account (or this one, renamed by an earlier run that finished); it is never changed."""
    connector.create(CreateRequest("uma@example.com", "Uma"))
    aws.clear_calls()
    error = failure_of(
        lambda: connector.modify(
            ModifyRequest("vic@example.com", new_email="uma@example.com", first_name="Vic")
        )
    )
    assert isinstance(error, NotFound)
    assert writes(aws) == []
    assert tags_of(iam, "uma@example.com")["FirstName"] == "Uma"
    rerun_of_a_finished_rename = connector.modify(
        ModifyRequest("vic@example.com", new_email="uma@example.com", first_name="Uma")
    )
    assert not rerun_of_a_finished_rename.changed


def test_a_delete_conflict_the_cascade_does_not_know_is_reported_not_swallowed(
    aws_env: EmbeddedAWS, iam: IAMClient, capsys: pytest.CaptureFixture[str]
) -> None:
    iam.create_user(UserName="ola@example.com")
    aws_env.fail_next(
        "DeleteUser",
        code="DeleteConflict",
        status=409,
        message="Cannot delete entity, must remove the new kind of thing first.",
    )
    code, out, err = cli(capsys, "delete", "ola@example.com", "--json")

    assert code == 1
    report = json.loads(out)
    assert [step["status"] for step in report["steps"]] == ["unchanged"] * 9 + ["failed"]
    assert "must remove the new kind of thing first" in err
    assert err.count("\n") == 1
    assert user_names(iam) == {"ola@example.com"}


def test_a_delete_conflict_is_a_conflict_carrying_the_cascade(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    iam.create_user(UserName="oz@example.com")
    iam.create_access_key(UserName="oz@example.com")
    aws.fail_next("DeleteUser", code="DeleteConflict", status=409, message="a new thing")
    error = failure_of(lambda: connector.delete(DeleteRequest("oz@example.com")))
    assert isinstance(error, Conflict)
    assert "a new thing" in error.message
    assert ("delete access keys", "done") in statuses(error.steps)
    assert statuses(error.steps)[-1] == ("delete user", "failed")
    assert connector.delete(DeleteRequest("oz@example.com")).changed
    assert user_names(iam) == set()


def test_a_partial_failure_through_the_cli_prints_the_steps_and_exits_1_then_finishes(
    aws_env: EmbeddedAWS,
    iam: IAMClient,
    capsys: pytest.CaptureFixture[str],
    fast_backoff: list[float],
) -> None:
    group(iam, "dev")
    group(iam, "ops")
    args = ("create", "pia@example.com", "--grant", "group:dev", "--grant", "group:ops")
    aws_env.fail_next(
        "AddUserToGroup",
        code="ServiceUnavailable",
        status=503,
        times=99,
        where={"GroupName": "ops"},
    )

    code, out, err = cli(capsys, *args)
    assert code == 1
    assert "create stopped partway; what was done and what was not:" in out
    rows = [line.split()[:2] for line in out.splitlines()[2:]]
    assert rows == [["done", "create"], ["done", "grant"], ["failed", "grant"]]
    assert err.startswith("hostsim: error: IAM AddUserToGroup refused: ServiceUnavailable")
    assert err.count("\n") == 1

    aws_env.reset_faults()
    code, out, _err = cli(capsys, *args, "--json")
    assert code == 0
    assert [(s["action"], s["status"]) for s in json.loads(out)["steps"]] == [
        ("create user", "unchanged"),
        ("tag user", "unchanged"),
        ("grant", "unchanged"),
        ("grant", "done"),
    ]
    assert groups_of(iam, "pia@example.com") == {"dev", "ops"}
    assert aws_env.calls().count("CreateUser") == 1
    code, out, _err = cli(capsys, *args)
    assert code == 0
    assert out.splitlines()[0].endswith(": unchanged")


def test_a_failed_delete_through_the_cli_then_a_rerun(
    aws_env: EmbeddedAWS,
    iam: IAMClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    arn = policy(iam, "reports")
    group(iam, "dev")
    fully_equipped_user(iam, "qi@example.com", "dev", arn)
    aws_env.fail_next("DetachUserPolicy", code="AccessDenied", status=403, message="not allowed")

    code, out, err = cli(capsys, "delete", "qi@example.com", "--json")
    assert code == 1
    assert [s["status"] for s in json.loads(out)["steps"]] == ["done"] * 7 + [
        "failed",
        "pending",
        "pending",
    ]
    assert "AccessDenied" in err
    code, _out, _err = cli(capsys, "delete", "qi@example.com")
    assert code == 0
    assert user_names(iam) == set()


# ==========================================================================================
# Bad input: refused before any change, one line naming the field and the rule, exit 2
# ==========================================================================================

BAD_INPUT: list[tuple[tuple[str, ...], str]] = [
    # email syntax
    (("create", "not-an-email"), "email: 'not-an-email' is not an email address"),
    (("create", "a@b"), "is not an email address"),
    (("create", "a b@example.com"), "is not an email address"),
    (("create", "a" * 250 + "@example.com"), "email: longer than 254 characters"),
    (("modify", "kim@example.com", "--email", "nope"), "new email: 'nope' is not an email"),
    # IAM user-name rules, on the name derived from the email
    (("create", "a!b@example.com"), "user name derived from email: 'a!b@example.com' may only"),
    (("create", "x" * 60 + "@example.com"), "must be 1-64 characters, has 72"),
    # attribute values against IAM's tag rules
    (("create", "c@example.com", "--first-name", "a;b"), "first_name: character(s) ';'"),
    (("create", "c@example.com", "--last-name", "a\x07b"), "last_name: character(s) '\\x07'"),
    (("create", "c@example.com", "--display-name", "a\nb"), "display_name: character(s) '\\n'"),
    (("create", "c@example.com", "--first-name", "x" * 257), "first_name: longer than 256"),
    (("create", "c@example.com", "--attr", "aws:team=x"), "reserved prefix 'aws:'"),
    (("create", "c@example.com", "--attr", "te%am=x"), "tag key 'te%am' may only contain"),
    (("create", "c@example.com", "--attr", "EMAIL=x@y.io"), "same IAM tag key as 'email'"),
    (("create", "c@example.com", "--attr", "Dept=a", "--attr", "dept=b"), "same IAM tag key"),
    (("modify", "kim@example.com", "--attr", "Firstname=K"), "same IAM tag key as 'first_name'"),
    (("create", "c@example.com", *[f"--attr=k{i}=v" for i in range(50)]), "would carry 51 tags"),
    (("modify", "kim@example.com", *[f"--attr=k{i}=v" for i in range(49)]), "would carry 51"),
    # entitlement ids
    (("create", "c@example.com", "--grant", "role:admin"), "expected group:NAME or policy:ARN"),
    (("grant", "kim@example.com", "admins"), "expected group:NAME or policy:ARN"),
    (("create", "c@example.com", "--grant", "policy:ReadOnly"), "not a managed policy ARN"),
    (("grant", "kim@example.com", "policy:arn:aws:iam::12:policy/x"), "not a managed policy"),
    (("create", "c@example.com", "--grant", "group:a b"), "group name 'a b' must be 1-128"),
    (("create", "c@example.com", "--grant", "group:ghosts"), "group 'ghosts' does not exist"),
    (("grant", "kim@example.com", "group:ghosts"), "group 'ghosts' does not exist"),
    (
        ("grant", "kim@example.com", "policy:arn:aws:iam::123456789012:policy/none"),
        "does not exist",
    ),
    (("create", "c@example.com", "--grant", f"policy:{READ_ONLY}x"), "does not exist"),
    # the account must exist for modify and grant, must not for create
    (("modify", "nobody@example.com", "--first-name", "N"), "no account for nobody@example.com"),
    (("grant", "nobody@example.com", "group:dev"), "no account for nobody@example.com"),
    (("create", "Eve@Example.COM"), "'Eve@Example.com' exists already"),
    (("create", "taken@example.com"), "is not the account of taken@example.com"),
    (("modify", "kim@example.com", "--email", "EVE@example.com"), "'Eve@Example.com' exists"),
]


@pytest.mark.parametrize(
    ("args", "fragment"), BAD_INPUT, ids=[f"{i}-{a[0]}" for i, (a, _f) in enumerate(BAD_INPUT)]
)
def test_bad_input_is_refused_before_any_change_with_one_line_and_exit_2(
    aws_env: EmbeddedAWS,
    iam: IAMClient,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
    fragment: str,
) -> None:
    group(iam, "dev")
    iam.create_user(UserName="Eve@Example.com")
    iam.create_user(UserName="taken@example.com", Tags=[{"Key": "Email", "Value": "t@x.io"}])
    kim = {"Email": "kim@example.com", "FirstName": "Kim"}
    iam.create_user(UserName="kim@example.com", Tags=tag_list(kim))
    before = {name: tags_of(iam, name) for name in user_names(iam)}
    aws_env.clear_calls()

    code, out, err = cli(capsys, *args)

    assert code == 2, (out, err)
    assert err.count("\n") == 1, err
    assert err.startswith("hostsim: error: ")
    assert fragment in err
    assert writes(aws_env) == []
    assert {name: tags_of(iam, name) for name in user_names(iam)} == before
    assert groups_of(iam, "kim@example.com") == set()


def test_the_tag_limit_counts_tags_already_on_a_user_whose_create_resumes(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    tags = {"Email": "rex@example.com"} | {f"k{i}": "v" for i in range(48)}
    iam.create_user(UserName="rex@example.com", Tags=tag_list(tags))
    aws.clear_calls()
    error = failure_of(lambda: connector.create(CreateRequest("rex@example.com", "Rex", "Ray")))
    assert "would carry 51 tags" in error.message
    assert error.invalid_input
    assert writes(aws) == []


def test_a_tag_key_differing_only_in_case_is_replaced_not_added(
    connector: AwsIamConnector, iam: IAMClient
) -> None:
    """IAM tag keys ignore case: a modify of ``Team`` updates the user's ``team`` tag, and the
    limit counts it once."""
    tags = {"Email": "sal@example.com", "team": "a"} | {f"k{i}": "v" for i in range(48)}
    iam.create_user(UserName="sal@example.com", Tags=tag_list(tags))
    connector.modify(ModifyRequest("sal@example.com", attributes={"Team": "b"}))
    assert tags_of(iam, "sal@example.com")["Team"] == "b"
    assert "team" not in tags_of(iam, "sal@example.com")
    connector.modify(ModifyRequest("sal@example.com", attributes={"TEAM": ""}))
    assert len(tags_of(iam, "sal@example.com")) == 49


# ==========================================================================================
# Bad input: malformed config files name the key, the line and what was expected
# ==========================================================================================


CONFIGS: list[tuple[str, str, str]] = [
    ('[aws-iam]\nregion = "x"\nmax_attempts = "8"\n', "expected int @ $.max_attempts", "line 3"),
    ('[aws-iam]\n\nregoin = "us-east-1"\n', "extra fields found (regoin) @ $", "line 3"),
    (
        '[aws-iam]\n[aws-iam.attributes.first_name]\ntag = "aws:first"\n',
        "$.attributes['first_name'].tag: tag key 'aws:first' uses the reserved prefix",
        "line 3",
    ),
    (
        '[aws-iam]\nregion = "x"\n\n[aws-iam.attributes.cost_center]\non_create = true\n',
        "required field missing @ $.attributes['cost_center'].tag",
        "line 4",
    ),
    ('[aws-iam]\nuser_path = "idhub"\n', "user_path: 'idhub' is not an IAM path", "line 2"),
    (
        '"aws-iam".max_attempts = 0\n',
        "must be at least 1 @ $.max_attempts",
        "line 1",
    ),
    (
        '[aws-iam]\nnote = """\nmax_attempts = 3\n"""\nattributes = { x = { tag = "" } }\n',
        "extra fields found (note) @ $",
        "line 2",
    ),
    ('[aws-iom]\nregion = "x"\n', "unknown connector(s) aws-iom", "line 1"),
]


@pytest.mark.parametrize(("text", "fragment", "line"), CONFIGS)
def test_a_bad_config_file_names_the_key_the_rule_and_the_line(
    tmp_path: Path, text: str, fragment: str, line: str
) -> None:
    from hostsim.config import connector_settings, read_config

    path = tmp_path / "idhub.toml"
    path.write_text(text)
    with pytest.raises(ConfigurationError) as caught, located_errors(path, "aws-iam"):
        load_settings(connector_settings(read_config(path), "aws-iam", {"aws-iam"}))
    message = caught.value.message
    assert fragment in message
    assert f"({path} {line}" in message
    assert "\n" not in message


def test_the_line_is_found_without_knowing_the_table(tmp_path: Path) -> None:
    path = tmp_path / "idhub.toml"
    path.write_text('[aws-iam]\n# a comment\nmax_attempts = "8"\n')
    error = ConfigurationError("invalid aws-iam settings: expected int @ $.max_attempts")
    assert locate(error, path, None).message.endswith(f"({path} line 3)")
    assert locate(error, None, None) is error
    assert locate(ConfigurationError("no path in here"), path, None).message == "no path in here"


def test_key_lines_reads_headers_dotted_quoted_and_inline_keys() -> None:
    lines = KeyLines(
        "[a]\n"
        "x.y = 1\n"
        "'q.r' = 2\n"
        'arr = [\n  "[not]",\n]\n'
        "inline = { p = { q = 1 } }\n"
        "[[b]]\n"
        "z = 3\n"
    ).lines
    assert lines[("a", "x", "y")] == 2
    assert lines[("a", "q.r")] == 3
    assert lines[("a", "arr")] == 4
    assert lines[("a", "inline", "p", "q")] == 7
    assert lines[("b", "z")] == 9
    assert ("a", "not") not in lines


def test_key_paths_read_every_way_a_message_names_a_key() -> None:
    assert key_paths("expected int @ $.max_attempts") == [("max_attempts",)]
    assert key_paths("x @ $.attributes['first_name'].tag") == [("attributes", "first_name", "tag")]
    assert key_paths("extra fields found (a, b) @ $.attributes") == [
        ("attributes", "a"),
        ("attributes", "b"),
    ]
    assert key_paths("invalid aws-iam settings: user_path: bad") == [("user_path",)]


def test_a_bad_config_through_the_cli_exits_2_naming_the_key(
    aws_env: EmbeddedAWS, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "idhub.toml"
    path.write_text('[aws-iam]\nmax_attempts = "eight"\n')
    code, _out, err = cli(capsys, "--config", str(path), "create", "tu@example.com")
    assert code == 2
    assert "@ $.max_attempts" in err
    assert err.count("\n") == 1
    assert aws_env.calls() == []
