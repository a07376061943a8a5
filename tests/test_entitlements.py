"""Granting and revoking groups and managed policies; idempotence and provenance."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from seeding import direct_policies_of, group, groups_of, policy

from hostsim.contract.errors import InvalidInput, NotFound
from hostsim.contract.model import AccessRequest, CreateRequest, FetchKind, PolicyAccess
from hostsim.embedded_aws import EmbeddedAWS
from idhub_aws_plugin.connector import AwsIamConnector

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

ALICE = "alice@example.com"


@pytest.fixture
def reports(connector: AwsIamConnector, iam: IAMClient, aws: EmbeddedAWS) -> str:
    """alice exists; developers carries reports-read; returns that policy's ARN."""
    arn = policy(iam, "reports-read")
    group(iam, "developers", arn)
    connector.create(CreateRequest(ALICE))
    aws.clear_calls()
    return arn


def test_grant_group_then_again_is_unchanged(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient, reports: str
) -> None:
    first = connector.grant(AccessRequest(ALICE, "group:developers"))
    second = connector.grant(AccessRequest(ALICE, "group:developers"))
    assert (first.changed, second.changed) == (True, False)
    assert second.steps[0].detail == "already held"
    assert aws.calls().count("AddUserToGroup") == 1
    assert groups_of(iam, ALICE) == {"developers"}


def test_grant_policy_then_again_is_unchanged(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient, reports: str
) -> None:
    assert connector.grant(AccessRequest(ALICE, f"policy:{reports}")).changed
    assert not connector.grant(AccessRequest(ALICE, f"policy:{reports}")).changed
    assert aws.calls().count("AttachUserPolicy") == 1
    assert direct_policies_of(iam, ALICE) == {reports}


def test_revoking_what_is_not_held_is_unchanged(
    connector: AwsIamConnector, aws: EmbeddedAWS, reports: str
) -> None:
    group_result = connector.revoke(AccessRequest(ALICE, "group:developers"))
    policy_result = connector.revoke(AccessRequest(ALICE, f"policy:{reports}"))
    assert not group_result.changed
    assert not policy_result.changed
    assert (group_result.steps[0].detail, policy_result.steps[0].detail) == (
        "not a member",
        "not attached directly",
    )
    assert "RemoveUserFromGroup" not in aws.calls()
    assert "DetachUserPolicy" not in aws.calls()


def test_revoke_removes_group_and_policy(
    connector: AwsIamConnector, iam: IAMClient, reports: str
) -> None:
    connector.grant(AccessRequest(ALICE, "group:developers"))
    connector.grant(AccessRequest(ALICE, f"policy:{reports}"))
    assert connector.revoke(AccessRequest(ALICE, "group:developers")).changed
    assert connector.revoke(AccessRequest(ALICE, f"policy:{reports}")).changed
    assert groups_of(iam, ALICE) == set()
    assert direct_policies_of(iam, ALICE) == set()


def _policy_access(connector: AwsIamConnector) -> set[tuple[str, str]]:
    rows = [
        row for row in connector.fetch(FetchKind.POLICY_ACCESS) if isinstance(row, PolicyAccess)
    ]
    return {(row.policy_name, row.via) for row in rows if row.email == ALICE}


def test_a_directly_granted_policy_survives_revoking_a_group_that_carries_it(
    connector: AwsIamConnector, iam: IAMClient, reports: str
) -> None:
    connector.grant(AccessRequest(ALICE, "group:developers"))
    connector.grant(AccessRequest(ALICE, f"policy:{reports}"))
    assert _policy_access(connector) == {
        ("reports-read", "direct"),
        ("reports-read", "group:developers"),
    }

    connector.revoke(AccessRequest(ALICE, "group:developers"))
    assert direct_policies_of(iam, ALICE) == {reports}
    assert _policy_access(connector) == {("reports-read", "direct")}


def test_a_policy_held_only_through_a_group_is_not_revoked_directly(
    connector: AwsIamConnector, reports: str
) -> None:
    connector.grant(AccessRequest(ALICE, "group:developers"))
    result = connector.revoke(AccessRequest(ALICE, f"policy:{reports}"))
    assert not result.changed
    assert _policy_access(connector) == {("reports-read", "group:developers")}


@pytest.mark.parametrize(
    ("email", "entitlement", "error", "fragment"),
    [
        ("nobody@example.com", "group:developers", NotFound, "no account for nobody@example.com"),
        (ALICE, "group:ghosts", NotFound, "group 'ghosts' does not exist"),
        (ALICE, "policy:arn:aws:iam::123456789012:policy/ghost", NotFound, "does not exist"),
        (ALICE, "developers", InvalidInput, "expected group:NAME or policy:ARN"),
        (ALICE, "policy:reports-read", InvalidInput, "not a managed policy ARN"),
        ("not an email", "group:developers", InvalidInput, "not an email address"),
    ],
)
def test_bad_grants_are_refused_without_change(
    connector: AwsIamConnector,
    aws: EmbeddedAWS,
    reports: str,
    email: str,
    entitlement: str,
    error: type[Exception],
    fragment: str,
) -> None:
    with pytest.raises(error, match=fragment):
        connector.grant(AccessRequest(email, entitlement))
    assert "AddUserToGroup" not in aws.calls()
    assert "AttachUserPolicy" not in aws.calls()
