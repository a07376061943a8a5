"""The Identity Center connector when AWS misbehaves: throttled (botocore's retries, with the
connector's retry settings, absorb it) and a reply lost after the change was made (the retry
meets the user and the create resumes it). In process, with botocore's backoff shortened."""

from __future__ import annotations

import pytest
from identity_center_seeding import IdentityCenter

from hostsim.contract import CreateRequest
from hostsim.embedded_aws import EmbeddedAWS
from idhub_aws_plugin.identity_center.connector import IdentityCenterConnector


@pytest.fixture
def center(aws: EmbeddedAWS) -> IdentityCenter:
    return IdentityCenter(aws)


def test_injected_faults_speak_json_and_the_connector_retries_throttling(
    aws_env: EmbeddedAWS, center: IdentityCenter, fast_backoff: list[float]
) -> None:
    aws_env.fail_next(
        "CreateUser", service="identitystore", code="ThrottlingException", message="Rate exceeded"
    )
    connector = IdentityCenterConnector.open({})
    made = connector.create(CreateRequest("ada@example.com", first_name="Ada", last_name="L"))
    assert made.account is not None and center.user("ada@example.com") is not None
    assert aws_env.injected("identitystore") == [("CreateUser", "ThrottlingException")]
    assert len(fast_backoff) == 1  # botocore's retry, with the connector's retry settings


def test_a_create_whose_reply_was_lost_resumes_the_user_its_retry_met(
    aws_env: EmbeddedAWS, center: IdentityCenter, fast_backoff: list[float]
) -> None:
    aws_env.fail_next(
        "CreateUser",
        service="identitystore",
        code="InternalServerException",
        status=500,
        message="lost",
        lose_reply=True,
    )
    connector = IdentityCenterConnector.open({})
    made = connector.create(CreateRequest("ada@example.com", first_name="Ada", last_name="L"))
    user = center.user("ada@example.com")
    assert user is not None and made.account is not None
    assert made.account.id == user["UserId"]
    assert [(s.action, s.status.value) for s in made.steps] == [
        ("create user", "done"),
        ("update user", "unchanged"),
    ]
    assert aws_env.calls("identitystore").count("CreateUser") == 2  # the retry met the user
    assert center.user_ids() == {user["UserId"]}
