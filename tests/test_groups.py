"""Creating and deleting IAM groups: off unless configured; deletion removes what IAM requires."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from seeding import document, group, policy

from hostsim.contract.errors import InvalidInput, Refused
from hostsim.contract.model import GroupRequest
from hostsim.embedded_aws import EmbeddedAWS
from idhub_aws_plugin.connector import AwsIamConnector

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient


def test_group_management_is_refused_unless_enabled(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    group(iam, "developers")
    aws.clear_calls()
    for attempt in (connector.create_group, connector.delete_group):
        with pytest.raises(Refused, match="manage_groups = true"):
            attempt(GroupRequest("developers"))
    assert not {"CreateGroup", "DeleteGroup"} & set(aws.calls())
    assert [g["GroupName"] for g in iam.list_groups()["Groups"]] == ["developers"]


def test_create_then_delete_a_group_with_members_and_policies(
    aws_env: EmbeddedAWS, iam: IAMClient
) -> None:
    connector = AwsIamConnector.open({"manage_groups": True, "user_path": "/idhub/"})
    assert connector.create_group(GroupRequest("analysts")).changed
    assert not connector.create_group(GroupRequest("analysts")).changed
    assert iam.get_group(GroupName="analysts")["Group"]["Path"] == "/idhub/"
    iam.create_user(UserName="ann@example.com")
    iam.add_user_to_group(GroupName="analysts", UserName="ann@example.com")
    iam.attach_group_policy(GroupName="analysts", PolicyArn=policy(iam, "reports-read"))
    iam.put_group_policy(GroupName="analysts", PolicyName="inline", PolicyDocument=document())
    with pytest.raises(iam.exceptions.DeleteConflictException):
        iam.delete_group(GroupName="analysts")  # IAM's rule, enforced by the embedded AWS

    result = connector.delete_group(GroupRequest("analysts"))
    assert [(s.action, s.status.value, s.detail) for s in result.steps] == [
        ("remove members", "done", "1 removed"),
        ("detach policies", "done", "1 removed"),
        ("delete inline policies", "done", "1 removed"),
        ("delete group", "done", ""),
    ]
    assert iam.list_groups()["Groups"] == []
    assert not connector.delete_group(GroupRequest("analysts")).changed


def test_group_names_follow_iam_rules(aws_env: EmbeddedAWS, aws: EmbeddedAWS) -> None:
    connector = AwsIamConnector.open({"manage_groups": True})
    with pytest.raises(InvalidInput, match="group name"):
        connector.create_group(GroupRequest("bad name"))
    assert "CreateGroup" not in aws.calls()
