"""The fault-injection harness of the embedded AWS: throttling, eventual consistency, lost
replies and targeted faults, seen by a plain boto3 client that does not retry.

Each test fails if the control it exercises is taken out of the middleware: it asserts the
error IAM would send, that the faulted request changed nothing (or, for a lost reply, that it
did), and what the call log says was injected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from hostsim.embedded_aws import EmbeddedAWS
from hostsim.embedded_aws.consistency import FreshUsers, HidingRule
from hostsim.embedded_aws.throttling import Throttler, ThrottleRule

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient


def no_retry_iam(aws: EmbeddedAWS) -> IAMClient:
    return aws.iam_client(Config(retries={"total_max_attempts": 1}))


def outcome(call: Callable[[], object]) -> str:
    """``ok`` or IAM's error code and message, for one call."""
    try:
        call()
    except ClientError as exc:
        error = exc.response["Error"]
        return f"{error['Code']}: {error['Message']}"
    return "ok"


def user_names(iam: IAMClient) -> list[str]:
    return [user["UserName"] for user in iam.list_users()["Users"]]


# -- throttling ----------------------------------------------------------------------------


def test_throttle_every_kth_call_answers_throttling_and_changes_nothing(aws: EmbeddedAWS) -> None:
    iam = no_retry_iam(aws)
    aws.throttle(every=3, actions=["CreateUser"])

    results = [outcome(partial(iam.create_user, UserName=f"u{n}")) for n in range(6)]

    assert results == ["ok", "ok", "Throttling: Rate exceeded"] * 2
    assert sorted(user_names(iam)) == ["u0", "u1", "u3", "u4"]  # ListUsers is not throttled
    assert aws.injected() == [("CreateUser", "Throttling"), ("CreateUser", "Throttling")]


def test_throttle_without_actions_covers_every_call_of_the_service(aws: EmbeddedAWS) -> None:
    iam = no_retry_iam(aws)
    sts = aws.sts_client(Config(retries={"total_max_attempts": 1}))
    aws.throttle(every=2)

    assert outcome(iam.list_users) == "ok"
    assert outcome(iam.list_groups).startswith("Throttling")
    assert outcome(sts.get_caller_identity) == "ok"  # another service
    assert outcome(sts.get_caller_identity) == "ok"
    assert aws.injected(service=None) == [("ListGroups", "Throttling")]


def test_throttle_by_rate_admits_a_burst_then_refills(aws: EmbeddedAWS) -> None:
    iam = no_retry_iam(aws)
    aws.throttle(per_second=10, burst=2)

    assert [outcome(iam.list_users) for _ in range(3)][:2] == ["ok", "ok"]
    assert aws.injected() == [("ListUsers", "Throttling")]
    time.sleep(0.15)  # one token back
    assert outcome(iam.list_users) == "ok"


def test_a_rate_refills_by_the_clock() -> None:
    now = [0.0]
    throttler = Throttler(clock=lambda: now[0])
    throttler.arm(ThrottleRule(per_second=2, burst=1))
    assert throttler.take("iam", "ListUsers") is None
    assert throttler.take("iam", "ListUsers") is not None
    now[0] = 0.49
    assert throttler.take("iam", "ListUsers") is not None
    now[0] = 1.0
    assert throttler.take("iam", "ListUsers") is None


def test_throttling_is_the_error_iam_sends(aws: EmbeddedAWS) -> None:
    iam = no_retry_iam(aws)
    aws.throttle(every=1)
    with pytest.raises(ClientError) as caught:
        iam.list_users()
    response = caught.value.response
    assert (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "Throttling",
        400,
    )
    assert response["Error"].get("Type") == "Sender"


@pytest.mark.parametrize(
    "arguments",
    [
        {},
        {"every": 2, "per_second": 1.0},
        {"every": 0},
        {"per_second": 0.0},
        {"every": 1, "burst": 0},
    ],
)
def test_throttle_refuses_nonsense(aws: EmbeddedAWS, arguments: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"every|per_second|burst"):
        aws.throttle(**arguments)  # type: ignore[arg-type]


# -- eventual consistency: a fresh user not yet visible -------------------------------------


def test_a_fresh_user_is_hidden_for_its_next_requests(aws: EmbeddedAWS) -> None:
    iam = no_retry_iam(aws)
    iam.create_group(GroupName="g")
    aws.hide_new_users(requests=2)

    created = iam.create_user(UserName="Ann")["User"]  # CreateUser answers as usual
    assert created["UserName"] == "Ann"
    missing = "NoSuchEntity: The user with name ann cannot be found."
    assert outcome(lambda: iam.get_user(UserName="ann")) == missing
    assert outcome(lambda: iam.add_user_to_group(GroupName="g", UserName="ann")) == missing
    assert outcome(lambda: iam.add_user_to_group(GroupName="g", UserName="Ann")) == "ok"
    assert [u["UserName"] for u in iam.get_group(GroupName="g")["Users"]] == ["Ann"]
    assert aws.injected() == [("GetUser", "NoSuchEntity"), ("AddUserToGroup", "NoSuchEntity")]


def test_a_fresh_user_is_hidden_for_some_seconds(aws: EmbeddedAWS) -> None:
    iam = no_retry_iam(aws)
    aws.hide_new_users(seconds=0.3)
    iam.create_user(UserName="bea")

    assert outcome(lambda: iam.get_user(UserName="bea")).startswith("NoSuchEntity")
    assert outcome(lambda: iam.get_user(UserName="bea")).startswith("NoSuchEntity")
    time.sleep(0.35)
    assert outcome(lambda: iam.get_user(UserName="bea")) == "ok"


def test_hiding_can_target_one_user_and_spares_users_made_before(aws: EmbeddedAWS) -> None:
    iam = no_retry_iam(aws)
    iam.create_user(UserName="old")
    aws.hide_new_users(requests=5, name="NEW")
    iam.create_user(UserName="new")
    iam.create_user(UserName="other")

    assert outcome(lambda: iam.get_user(UserName="old")) == "ok"
    assert outcome(lambda: iam.get_user(UserName="other")) == "ok"
    assert outcome(lambda: iam.get_user(UserName="new")).startswith("NoSuchEntity")
    aws.reset_faults()  # makes every hidden user visible
    assert outcome(lambda: iam.get_user(UserName="new")) == "ok"


def test_a_hidden_user_still_blocks_its_name(aws: EmbeddedAWS) -> None:
    """Hiding is about visibility, not existence: IAM refuses a second CreateUser at once."""
    iam = no_retry_iam(aws)
    aws.hide_new_users(requests=5)
    iam.create_user(UserName="cal")
    assert outcome(lambda: iam.create_user(UserName="CAL")).startswith("EntityAlreadyExists")


def test_hiding_counts_requests_by_the_clock_or_by_count() -> None:
    now = [100.0]
    fresh = FreshUsers(clock=lambda: now[0])
    fresh.arm(HidingRule(seconds=2))
    fresh.created("dan")
    assert fresh.take("GetUser", {"UserName": "DAN"}) is not None
    assert fresh.take("ListUsers", {}) is None
    now[0] = 102.0
    assert fresh.take("GetUser", {"UserName": "dan"}) is None


@pytest.mark.parametrize(
    "arguments", [{}, {"seconds": 1.0, "requests": 1}, {"seconds": 0.0}, {"requests": 0}]
)
def test_hide_new_users_refuses_nonsense(aws: EmbeddedAWS, arguments: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"seconds|requests"):
        aws.hide_new_users(**arguments)  # type: ignore[arg-type]


# -- targeted faults and lost replies ------------------------------------------------------


def test_fail_next_where_targets_one_call_by_its_parameters(aws: EmbeddedAWS) -> None:
    iam = no_retry_iam(aws)
    iam.create_user(UserName="eve")
    for name in ("dev", "ops"):
        iam.create_group(GroupName=name)
    aws.fail_next(
        "AddUserToGroup", code="ServiceUnavailable", status=503, where={"GroupName": "ops"}
    )

    assert outcome(lambda: iam.add_user_to_group(GroupName="dev", UserName="eve")) == "ok"
    assert outcome(lambda: iam.add_user_to_group(GroupName="ops", UserName="eve")).startswith(
        "ServiceUnavailable"
    )
    groups = iam.list_groups_for_user(UserName="eve")["Groups"]
    assert [g["GroupName"] for g in groups] == ["dev"]
    assert aws.pending_faults() == 0


def test_a_lost_reply_applies_the_change_and_answers_the_error(aws: EmbeddedAWS) -> None:
    iam = no_retry_iam(aws)
    aws.fail_next("CreateUser", code="InternalFailure", status=500, message="lost", lose_reply=True)

    assert outcome(lambda: iam.create_user(UserName="fay")) == "InternalFailure: lost"
    assert user_names(iam) == ["fay"]  # applied all the same
    assert outcome(lambda: iam.create_user(UserName="fay")).startswith("EntityAlreadyExists")
    assert aws.injected() == [("CreateUser", "InternalFailure")]
    assert aws.calls() == ["CreateUser", "ListUsers", "CreateUser"]


def test_botocore_retries_a_lost_reply_into_the_consequence(aws: EmbeddedAWS) -> None:
    """What the connector has to cope with: botocore retries the 5xx, and the retry of a
    create meets the user its own first attempt created."""
    iam = aws.iam_client(Config(retries={"mode": "standard", "total_max_attempts": 3}))
    aws.fail_next("CreateUser", code="InternalFailure", status=500, lose_reply=True)
    assert outcome(lambda: iam.create_user(UserName="gus")).startswith("EntityAlreadyExists")
    assert aws.calls() == ["CreateUser", "CreateUser"]


def test_reset_faults_disarms_every_kind(aws: EmbeddedAWS) -> None:
    iam = no_retry_iam(aws)
    aws.throttle(every=1)
    aws.hide_new_users(requests=9)
    aws.fail_next("GetUser")
    aws.reset_faults()

    iam.create_user(UserName="hal")
    assert outcome(lambda: iam.get_user(UserName="hal")) == "ok"
    assert aws.injected() == []


def test_reset_disarms_every_kind_and_forgets_injections(aws: EmbeddedAWS) -> None:
    iam = no_retry_iam(aws)
    aws.throttle(every=1, actions=["GetUser"])
    aws.hide_new_users(requests=9)
    outcome(lambda: iam.get_user(UserName="x"))
    aws.reset()

    iam.create_user(UserName="ida")
    assert outcome(lambda: iam.get_user(UserName="ida")) == "ok"
    assert aws.injected() == []
