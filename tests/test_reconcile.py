"""The five reconciliation reads, from IAM's bulk interfaces."""

from __future__ import annotations

from typing import TYPE_CHECKING

from seeding import document, group, policy

from hostsim.contract.model import (
    AccessRequest,
    Account,
    CreateRequest,
    FetchKind,
    Group,
    GroupAccess,
    Policy,
    PolicyAccess,
)
from hostsim.embedded_aws import EmbeddedAWS
from idhub_aws_plugin.connector import AwsIamConnector

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

AWS_READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
AWS_SECURITY_AUDIT = "arn:aws:iam::aws:policy/SecurityAudit"


def test_users_carry_their_attributes_read_back_from_tags(
    connector: AwsIamConnector, iam: IAMClient
) -> None:
    group(iam, "developers")
    created = connector.create(
        CreateRequest(
            "ada@example.com",
            "Ada",
            "Lovelace",
            "Ada L.",
            {"department": "R"},
            ("group:developers",),
        )
    )
    iam.create_user(UserName="Hand.Made@Example.com")
    iam.create_user(UserName="svc-backup")
    iam.put_user_policy(UserName="svc-backup", PolicyName="inline", PolicyDocument=document())
    rows = {
        row.user_name: row for row in connector.fetch(FetchKind.USERS) if isinstance(row, Account)
    }
    assert created.account is not None
    ada = rows["ada@example.com"]
    assert (ada.id, ada.email, ada.first_name, ada.last_name, ada.display_name) == (
        created.account.id,
        "ada@example.com",
        "Ada",
        "Lovelace",
        "Ada L.",
    )
    assert ada.attributes == {"department": "R"}
    assert ada.groups == ("developers",)
    assert ada.arn.endswith(":user/ada@example.com")
    # made outside the connector: an email-like name stands in for the missing email tag
    assert rows["Hand.Made@Example.com"].email == "hand.made@example.com"
    svc = rows["svc-backup"]
    assert (svc.email, svc.inline_policies) == (None, ("inline",))


def test_groups_carry_their_policies(connector: AwsIamConnector, iam: IAMClient) -> None:
    arn = policy(iam, "reports-read")
    group(iam, "developers", arn, AWS_READ_ONLY)
    group(iam, "empty")
    rows = {row.name: row for row in connector.fetch(FetchKind.GROUPS) if isinstance(row, Group)}
    assert set(rows["developers"].policies) == {arn, AWS_READ_ONLY}
    assert rows["empty"].policies == ()


def test_policies_list_customer_managed_and_aws_managed_in_use(
    connector: AwsIamConnector, iam: IAMClient
) -> None:
    unused = policy(iam, "unused")
    group(iam, "auditors", AWS_SECURITY_AUDIT)
    rows = {row.arn: row for row in connector.fetch(FetchKind.POLICIES) if isinstance(row, Policy)}
    assert set(rows) == {unused, AWS_SECURITY_AUDIT}
    assert (rows[unused].scope, rows[AWS_SECURITY_AUDIT].scope) == ("local", "aws")
    assert rows[AWS_SECURITY_AUDIT].attachment_count == 1


def test_policy_scope_is_configurable(aws_env: EmbeddedAWS, iam: IAMClient) -> None:
    policy(iam, "unused")
    only_aws = AwsIamConnector.open(
        {"customer_managed_policies": "none", "aws_managed_policies": "all"}
    )
    rows = [row for row in only_aws.fetch(FetchKind.POLICIES) if isinstance(row, Policy)]
    assert len(rows) > 500  # every AWS-managed policy, used or not
    assert {row.scope for row in rows} == {"aws"}


def test_the_user_reads_stay_inside_the_connectors_path(
    aws_env: EmbeddedAWS, iam: IAMClient
) -> None:
    """With ``user_path`` set, a user elsewhere (a break-glass admin at ``/``) is outside the
    connector's scope: not read, so reconciliation never calls it an orphan."""
    reports = policy(iam, "reports-read")
    group(iam, "developers", reports)
    scoped = AwsIamConnector.open({"user_path": "/idhub/"})
    scoped.create(CreateRequest("in@example.com", grants=("group:developers",)))
    iam.create_user(UserName="break-glass", Path="/")
    iam.add_user_to_group(GroupName="developers", UserName="break-glass")
    iam.attach_user_policy(UserName="break-glass", PolicyArn=reports)

    for kind in (FetchKind.USERS, FetchKind.GROUP_ACCESS, FetchKind.POLICY_ACCESS):
        names = {getattr(row, "user_name", None) for row in scoped.fetch(kind)}
        assert names == {"in@example.com"}, kind
    everyone = AwsIamConnector.open({})
    assert {row.user_name for row in everyone.fetch(FetchKind.USERS)} == {  # type: ignore[union-attr]
        "in@example.com",
        "break-glass",
    }


def test_group_access_and_policy_access_with_provenance(
    connector: AwsIamConnector, iam: IAMClient
) -> None:
    reports = policy(iam, "reports-read")
    group(iam, "developers", reports, AWS_READ_ONLY)
    group(iam, "auditors", AWS_SECURITY_AUDIT)
    connector.create(CreateRequest("bo@example.com", grants=("group:developers", "group:auditors")))
    connector.grant(AccessRequest("bo@example.com", f"policy:{reports}"))
    connector.create(CreateRequest("cy@example.com"))

    group_rows = [r for r in connector.fetch(FetchKind.GROUP_ACCESS) if isinstance(r, GroupAccess)]
    assert {(r.email, r.group) for r in group_rows} == {
        ("bo@example.com", "developers"),
        ("bo@example.com", "auditors"),
    }
    policy_rows = [
        r for r in connector.fetch(FetchKind.POLICY_ACCESS) if isinstance(r, PolicyAccess)
    ]
    assert {(r.email, r.policy_arn, r.via) for r in policy_rows} == {
        ("bo@example.com", reports, "direct"),
        ("bo@example.com", reports, "group:developers"),
        ("bo@example.com", AWS_READ_ONLY, "group:developers"),
        ("bo@example.com", AWS_SECURITY_AUDIT, "group:auditors"),
    }


def test_fetch_reads_through_bulk_calls_not_per_user(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    group(iam, "developers", policy(iam, "p"))

    def calls_for(users: int) -> dict[str, int]:
        for index in range(users):
            iam.create_user(UserName=f"u{users}-{index}@example.com")
            iam.add_user_to_group(GroupName="developers", UserName=f"u{users}-{index}@example.com")
        counts = {}
        for kind in FetchKind:
            aws.clear_calls()
            assert sum(1 for _row in connector.fetch(kind)) >= 1
            counts[kind.value] = len(aws.calls())
        return counts

    assert calls_for(2) == calls_for(40)
