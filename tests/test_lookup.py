"""The single-account and single-group reads (``read_account``, ``read_group``): what the bulk
read shows of one account, for four calls by email or by id with a name hint; None for a
stale hint, an account outside the connector's path, or an email with no account."""

from __future__ import annotations

from typing import TYPE_CHECKING

from seeding import document, group, policy

from hostsim.contract.model import (
    Account,
    AccountLookup,
    AccountRef,
    CreateRequest,
    DisableRequest,
    FetchKind,
    GroupRequest,
    Holding,
)
from hostsim.embedded_aws import EmbeddedAWS
from idhub_aws_plugin.connector import AwsIamConnector

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

READS = ["GetUser", "ListGroupsForUser", "ListAttachedUserPolicies", "ListUserPolicies"]


def fetched(connector: AwsIamConnector, native_id: str) -> Account:
    return next(
        row
        for row in connector.fetch(FetchKind.USERS)
        if isinstance(row, Account) and row.id == native_id
    )


def ada(connector: AwsIamConnector, iam: IAMClient) -> tuple[str, str]:
    """Ada, in a group, with a policy of her own, disabled, and an inline policy; returns
    her id and the policy's ARN."""
    arn = policy(iam, "reports-read")
    group(iam, "developers")
    grants = ("group:developers", f"policy:{arn}")
    request = CreateRequest("ada@example.com", "Ada", attributes={"department": "R"}, grants=grants)
    created = connector.create(request)
    iam.put_user_policy(UserName="ada@example.com", PolicyName="own", PolicyDocument=document())
    connector.disable(DisableRequest("ada@example.com"))
    assert created.account is not None
    return created.account.id, arn


def test_an_account_read_by_email_is_what_fetch_shows_for_four_calls(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    native_id, arn = ada(connector, iam)
    aws.clear_calls()
    detail = connector.read_account(AccountLookup(email=" Ada@Example.com"))
    assert aws.calls() == READS
    assert detail is not None
    assert detail.account == fetched(connector, native_id)
    assert detail.account.enabled is False
    assert detail.account.policies == (arn,)
    assert not any(key.lower().startswith("idhub:") for key in detail.account.attributes)
    group_id = iam.get_group(GroupName="developers")["Group"]["GroupId"]
    assert detail.holdings == (
        Holding("group:developers", group_id, "developers"),
        Holding(f"policy:{arn}", "", "reports-read"),
    )


def test_an_account_read_by_id_and_name_hint_is_checked_against_the_id(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    native_id, _arn = ada(connector, iam)
    found = connector.read_account(AccountLookup(id=native_id, name="ada@example.com"))
    assert found is not None and found.account.id == native_id
    # renamed behind the reader's back, and another user made under the old name
    iam.update_user(UserName="ada@example.com", NewUserName="ada.l@example.com")
    iam.create_user(UserName="ada@example.com")
    assert connector.read_account(AccountLookup(id=native_id, name="ada@example.com")) is None
    # deleted: None too
    assert connector.read_account(AccountLookup(id=native_id, name="gone@example.com")) is None
    renamed = connector.read_account(AccountLookup(id=native_id, name="ada.l@example.com"))
    assert renamed is not None and renamed.account.user_name == "ada.l@example.com"


def test_an_id_alone_is_found_by_listing_the_users_of_the_path(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    native_id, _arn = ada(connector, iam)
    aws.clear_calls()
    found = connector.read_account(AccountLookup(id=native_id))
    assert found is not None and found.account.user_name == "ada@example.com"
    assert aws.calls()[0] == "ListUsers"
    assert connector.read_account(AccountLookup(id="AIDANOSUCHUSER000000")) is None


def test_no_account_no_email_or_out_of_scope_is_none(aws_env: EmbeddedAWS, iam: IAMClient) -> None:
    scoped = AwsIamConnector.open({"user_path": "/idhub/"})
    iam.create_user(UserName="bob@example.com", Tags=[{"Key": "Email", "Value": "bob@example.com"}])
    bob = iam.get_user(UserName="bob@example.com")["User"]["UserId"]
    assert scoped.read_account(AccountLookup(email="bob@example.com")) is None
    assert scoped.read_account(AccountLookup(id=bob, name="bob@example.com")) is None
    assert scoped.read_account(AccountLookup(email="nobody@example.com")) is None
    assert scoped.read_account(AccountLookup(email="not an email")) is None


def test_an_email_whose_name_holds_another_email_has_no_account(aws_env: EmbeddedAWS) -> None:
    """Under ``{local_part}`` two addresses make one IAM name: the user ``ann`` of
    ann@example.com is not the account of ann@other.example."""
    local = AwsIamConnector.open({"user_name": "{local_part}"})
    local.create(CreateRequest("ann@example.com", "Ann"))
    found = local.read_account(AccountLookup(email="ann@example.com"))
    assert found is not None and found.account.user_name == "ann"
    assert local.read_account(AccountLookup(email="ann@other.example")) is None


def test_a_group_read_lists_its_members_in_scope(aws_env: EmbeddedAWS, iam: IAMClient) -> None:
    scoped = AwsIamConnector.open({"user_path": "/idhub/"})
    group(iam, "developers")
    for name, path in (("a@example.com", "/idhub/"), ("b@example.com", "/"), ("c", "/idhub/")):
        iam.create_user(UserName=name, Path=path)
        iam.add_user_to_group(GroupName="developers", UserName=name)
    ids = {u["UserName"]: u["UserId"] for u in iam.list_users()["Users"]}
    aws_env.clear_calls()
    found = scoped.read_group(GroupRequest("developers"))
    assert aws_env.calls() == ["GetGroup"]
    assert found is not None
    assert found.id == iam.get_group(GroupName="developers")["Group"]["GroupId"]
    assert found.members == (
        AccountRef(ids["a@example.com"], "a@example.com", "a@example.com"),
        AccountRef(ids["c"], "c", None),
    )
    assert scoped.read_group(GroupRequest("ghosts")) is None
