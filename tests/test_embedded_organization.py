"""The embedded AWS hosts an AWS organization, and refuses AssumeRole where AWS would.

Everything goes through the HTTP server with plain boto3 clients, as a connector would: the
management account is the one the fake credentials act in; a member account is reached by
assuming its ``OrganizationAccountAccessRole``. Each refusal test fails if the trust rule is
taken out of the middleware, since moto alone would hand out credentials.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from organization_seeding import SeededOrganization, seed_organization

from hostsim.embedded_aws import EmbeddedAWS

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_sts import STSClient

MANAGEMENT = "123456789012"
ROLE = "OrganizationAccountAccessRole"
ADMINISTRATOR_ACCESS = "arn:aws:iam::aws:policy/AdministratorAccess"


# -- helpers -------------------------------------------------------------------------------


@pytest.fixture
def org(aws: EmbeddedAWS) -> SeededOrganization:
    return seed_organization(aws)


def organizations(aws: EmbeddedAWS) -> Any:
    """An Organizations client of the management account (no type stubs installed for it)."""
    return aws.session().client("organizations", endpoint_url=aws.endpoint_url)


def role_arn(account_id: str, name: str = ROLE) -> str:
    return f"arn:aws:iam::{account_id}:role/{name}"


def assume(
    sts: STSClient, arn: str, external_id: str | None = None, seconds: int = 900
) -> dict[str, Any]:
    """AssumeRole's credentials (raises ClientError when refused)."""
    if external_id is None:
        answer = sts.assume_role(
            RoleArn=arn, RoleSessionName="organization-test", DurationSeconds=seconds
        )
    else:
        answer = sts.assume_role(
            RoleArn=arn,
            RoleSessionName="organization-test",
            ExternalId=external_id,
            DurationSeconds=seconds,
        )
    return dict(answer["Credentials"])


def refusal(call: Callable[[], object]) -> tuple[str, int, str]:
    """Run a call that must fail; return the error code, HTTP status and message."""
    with pytest.raises(ClientError) as raised:
        call()
    response = raised.value.response
    error = response["Error"]
    return error["Code"], response["ResponseMetadata"]["HTTPStatusCode"], error["Message"]


def client_as(aws: EmbeddedAWS, service: str, credentials: dict[str, Any]) -> Any:
    """A client signing with assumed-role credentials."""
    return aws.session().client(
        service,  # type: ignore[call-overload]
        endpoint_url=aws.endpoint_url,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        config=Config(retries={"total_max_attempts": 1}),
    )


def trust(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(principal: Any, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", **extra}


def user_names(iam: IAMClient) -> list[str]:
    return [user["UserName"] for user in iam.list_users()["Users"]]


# -- the organization ----------------------------------------------------------------------


def test_list_accounts_pages_through_the_management_and_every_member(
    aws: EmbeddedAWS, org: SeededOrganization
) -> None:
    client = organizations(aws)
    first = client.list_accounts(MaxResults=2)
    assert len(first["Accounts"]) == 2
    assert "NextToken" in first
    pages = client.get_paginator("list_accounts").paginate(PaginationConfig={"PageSize": 2})
    listed = [account for page in pages for account in page["Accounts"]]
    assert len(listed) == 4
    by_id = {account["Id"]: account for account in listed}
    assert set(by_id) == {MANAGEMENT, *org.ids}
    assert [by_id[m.id]["Name"] for m in org.members] == ["dev", "staging", "prod"]
    assert {by_id[m.id]["Email"] for m in org.members} == {m.email for m in org.members}
    assert {account["Status"] for account in listed} == {"ACTIVE"}
    described = client.describe_organization()["Organization"]
    assert described["MasterAccountId"] == org.management_id == MANAGEMENT
    assert described["Id"] == org.organization_id
    assert org.member("prod").name == "prod"
    with pytest.raises(KeyError):
        org.member("qa")


def test_seeding_leaves_the_call_log_empty(aws: EmbeddedAWS, org: SeededOrganization) -> None:
    assert aws.calls(None) == []
    assert len(set(org.ids)) == 3 and MANAGEMENT not in org.ids


def test_every_member_role_trusts_the_management_account_and_is_administrator(
    aws: EmbeddedAWS, org: SeededOrganization
) -> None:
    for member in org.members:
        iam = aws.member_iam_client(member.id)
        role = iam.get_role(RoleName=ROLE)["Role"]
        document: Any = role["AssumeRolePolicyDocument"]
        [statement] = document["Statement"]
        assert statement["Principal"] == {"AWS": f"arn:aws:iam::{MANAGEMENT}:root"}
        assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRole"
        attached = iam.list_attached_role_policies(RoleName=ROLE)["AttachedPolicies"]
        assert [policy["PolicyArn"] for policy in attached] == [ADMINISTRATOR_ACCESS]


def test_an_assumed_member_role_acts_in_that_account_only(
    aws: EmbeddedAWS, org: SeededOrganization
) -> None:
    dev, staging = org.member("dev"), org.member("staging")
    dev_iam = aws.member_iam_client(dev.id)
    dev_iam.create_user(UserName="alice")
    assert user_names(dev_iam) == ["alice"]
    assert user_names(aws.iam_client()) == []
    assert user_names(aws.member_iam_client(staging.id)) == []
    created = dev_iam.get_user(UserName="alice")["User"]
    assert created["Arn"] == f"arn:aws:iam::{dev.id}:user/alice"

    credentials = assume(aws.sts_client(), role_arn(dev.id))
    identity = client_as(aws, "sts", credentials).get_caller_identity()
    assert identity["Account"] == dev.id
    assert identity["Arn"] == f"arn:aws:sts::{dev.id}:assumed-role/{ROLE}/organization-test"


def test_a_second_organization_needs_a_reset(aws: EmbeddedAWS, org: SeededOrganization) -> None:
    with pytest.raises(RuntimeError, match="reset"):
        aws.create_organization(["qa"])
    with pytest.raises(ValueError, match="twice"):
        aws.create_organization(["qa", "QA"])


def test_reset_empties_the_organization_and_a_new_one_can_be_made(
    aws: EmbeddedAWS, org: SeededOrganization
) -> None:
    dev = org.member("dev")
    aws.member_iam_client(dev.id).create_user(UserName="alice")
    aws.reset()
    code, _, _ = refusal(organizations(aws).describe_organization)
    assert code == "AWSOrganizationsNotInUseException"
    assert refusal(lambda: assume(aws.sts_client(), role_arn(dev.id)))[0] == "AccessDenied"

    again = seed_organization(aws, ["qa"])
    listed = organizations(aws).list_accounts()["Accounts"]
    assert {account["Id"] for account in listed} == {MANAGEMENT, again.member("qa").id}
    assert again.member("qa").id != dev.id
    assert user_names(aws.member_iam_client(again.member("qa").id)) == []


def test_a_closed_account_is_suspended_and_cannot_be_entered(
    aws: EmbeddedAWS, org: SeededOrganization
) -> None:
    staging = org.member("staging")
    aws.close_account(staging.id)
    listed = organizations(aws).list_accounts()["Accounts"]
    status = {account["Id"]: account["Status"] for account in listed}
    assert status[staging.id] == "SUSPENDED"
    assert status[org.member("dev").id] == "ACTIVE"
    assert refusal(lambda: assume(aws.sts_client(), role_arn(staging.id)))[:2] == (
        "AccessDenied",
        403,
    )
    assume(aws.sts_client(), role_arn(org.member("dev").id))


# -- AssumeRole refusals -------------------------------------------------------------------


def test_assume_role_is_refused_for_a_role_that_does_not_exist(
    aws: EmbeddedAWS, org: SeededOrganization
) -> None:
    missing = role_arn(org.member("dev").id, "NoSuchRole")
    code, status, message = refusal(lambda: assume(aws.sts_client(), missing))
    assert (code, status) == ("AccessDenied", 403)
    caller = aws.sts_client().get_caller_identity()["Arn"]
    assert message == (
        f"User: {caller} is not authorized to perform: sts:AssumeRole on resource: {missing}"
    )


def test_a_broken_role_fails_only_its_own_account(
    aws: EmbeddedAWS, org: SeededOrganization
) -> None:
    prod = org.member("prod")
    aws.break_role(prod.id)
    assert refusal(lambda: assume(aws.sts_client(), role_arn(prod.id)))[0] == "AccessDenied"
    for member in (org.member("dev"), org.member("staging")):
        assert assume(aws.sts_client(), role_arn(member.id))["AccessKeyId"]
    assert aws.calls("sts") == ["AssumeRole"] * 3


def test_assume_role_is_refused_when_the_trust_names_someone_else(
    aws: EmbeddedAWS, org: SeededOrganization
) -> None:
    dev, prod = org.member("dev"), org.member("prod")
    aws.member_iam_client(dev.id).create_role(
        RoleName="from-prod-only",
        AssumeRolePolicyDocument=trust(allow({"AWS": f"arn:aws:iam::{prod.id}:root"})),
    )
    target = role_arn(dev.id, "from-prod-only")
    assert refusal(lambda: assume(aws.sts_client(), target))[:2] == ("AccessDenied", 403)

    # a session in prod (an assumed role there) is trusted through prod's root
    prod_sts = client_as(aws, "sts", assume(aws.sts_client(), role_arn(prod.id)))
    credentials = assume(prod_sts, target)
    assert client_as(aws, "sts", credentials).get_caller_identity()["Account"] == dev.id


def test_a_trust_naming_a_role_admits_that_roles_sessions(
    aws: EmbeddedAWS, org: SeededOrganization
) -> None:
    dev, prod = org.member("dev"), org.member("prod")
    aws.member_iam_client(dev.id).create_role(
        RoleName="from-prod-role",
        AssumeRolePolicyDocument=trust(allow({"AWS": [role_arn(prod.id)]})),
    )
    target = role_arn(dev.id, "from-prod-role")
    prod_sts = client_as(aws, "sts", assume(aws.sts_client(), role_arn(prod.id)))
    assert assume(prod_sts, target)["AccessKeyId"]
    staging_sts = client_as(
        aws, "sts", assume(aws.sts_client(), role_arn(org.member("staging").id))
    )
    code, _, message = refusal(lambda: assume(staging_sts, target))
    assert code == "AccessDenied"
    assert message.startswith(f"User: arn:aws:sts::{org.member('staging').id}:assumed-role/")


@pytest.mark.parametrize(
    ("statements", "admitted"),
    [
        ((allow("*"),), True),
        ((allow({"AWS": "*"}),), True),
        ((allow({"AWS": MANAGEMENT}),), True),
        ((allow({"AWS": f"arn:aws:iam::{MANAGEMENT}:root"}, Action=["sts:*"]),), True),
        ((allow({"Service": "ec2.amazonaws.com"}),), False),
        (
            (allow({"AWS": f"arn:aws:iam::{MANAGEMENT}:root"}, Action="sts:AssumeRoleWithSAML"),),
            False,
        ),
        (({**allow({"AWS": f"arn:aws:iam::{MANAGEMENT}:root"}), "Effect": "Deny"},), False),
        ((allow("*"), {**allow({"AWS": MANAGEMENT}), "Effect": "Deny"}), False),
        ((allow("*", Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}}),), False),
    ],
)
def test_the_trust_policy_decides_who_may_assume_the_role(
    aws: EmbeddedAWS, statements: tuple[dict[str, Any], ...], admitted: bool
) -> None:
    aws.iam_client().create_role(RoleName="guarded", AssumeRolePolicyDocument=trust(*statements))
    target = role_arn(MANAGEMENT, "guarded")
    if admitted:
        assert assume(aws.sts_client(), target)["AccessKeyId"]
    else:
        assert refusal(lambda: assume(aws.sts_client(), target))[:2] == ("AccessDenied", 403)


def test_a_role_under_a_path_is_found_only_by_its_full_arn(aws: EmbeddedAWS) -> None:
    aws.iam_client().create_role(
        RoleName="pathed", Path="/team/", AssumeRolePolicyDocument=trust(allow({"AWS": MANAGEMENT}))
    )
    assert assume(aws.sts_client(), f"arn:aws:iam::{MANAGEMENT}:role/team/pathed")
    assert refusal(lambda: assume(aws.sts_client(), role_arn(MANAGEMENT, "pathed")))[0] == (
        "AccessDenied"
    )


def test_an_external_id_condition_admits_only_the_right_id(
    aws: EmbeddedAWS, org: SeededOrganization
) -> None:
    prod = org.member("prod")
    secret = "tenant-4242-external"
    aws.require_external_id(prod.id, secret)
    target = role_arn(prod.id)
    for wrong in (None, "tenant-0000-external"):
        code, status, message = refusal(functools.partial(assume, aws.sts_client(), target, wrong))
        assert (code, status) == ("AccessDenied", 403)
        assert secret not in message
    assert assume(aws.sts_client(), target, secret)["AccessKeyId"]
    # the other members are untouched, with or without an external id sent
    assert assume(aws.sts_client(), role_arn(org.member("dev").id), "anything")["AccessKeyId"]
    with pytest.raises(ClientError):
        aws.member_iam_client(prod.id)  # sends no external id
    # the rewritten trust is what an administrator reading the role would see
    condition = _trust_of(aws, prod.id, secret)["Statement"][0]["Condition"]
    assert condition == {"StringEquals": {"sts:ExternalId": secret}}


def test_a_session_may_not_outlast_the_role_or_an_hour_of_role_chaining(
    aws: EmbeddedAWS, org: SeededOrganization
) -> None:
    dev = org.member("dev")
    sts = aws.sts_client()
    code, status, message = refusal(lambda: assume(sts, role_arn(dev.id), seconds=7200))
    assert (code, status) == ("ValidationError", 400)
    assert "MaxSessionDuration" in message
    assert assume(sts, role_arn(dev.id), seconds=3600)["AccessKeyId"]

    aws.member_iam_client(dev.id).create_role(
        RoleName="long",
        MaxSessionDuration=43200,
        AssumeRolePolicyDocument=trust(allow({"AWS": dev.id})),
    )
    dev_sts = client_as(aws, "sts", assume(sts, role_arn(dev.id)))
    code, status, message = refusal(lambda: assume(dev_sts, role_arn(dev.id, "long"), seconds=7200))
    assert (code, status) == ("ValidationError", 400)
    assert "role chaining" in message
    assert assume(dev_sts, role_arn(dev.id, "long"), seconds=3600)["AccessKeyId"]


def _trust_of(aws: EmbeddedAWS, account_id: str, external_id: str) -> dict[str, Any]:
    credentials = assume(aws.sts_client(), role_arn(account_id), external_id)
    iam = client_as(aws, "iam", credentials)
    document: dict[str, Any] = iam.get_role(RoleName=ROLE)["Role"]["AssumeRolePolicyDocument"]
    return document


# -- the call log, faults and delay per account --------------------------------------------


def test_every_call_records_the_account_it_acted_in(
    aws: EmbeddedAWS, org: SeededOrganization
) -> None:
    dev, prod = org.member("dev"), org.member("prod")
    dev_iam = aws.member_iam_client(dev.id)
    aws.clear_calls()
    dev_iam.create_user(UserName="alice")
    aws.iam_client().list_users()
    assume(aws.sts_client(), role_arn(prod.id))
    assert aws.calls() == ["CreateUser", "ListUsers"]
    assert aws.calls("iam", account=dev.id) == ["CreateUser"]
    assert aws.calls("iam", account=MANAGEMENT) == ["ListUsers"]
    assert aws.calls("sts", account=MANAGEMENT) == ["AssumeRole"]
    assert aws.calls(None, account=prod.id) == []
    assert [(c.action, c.account_id, c.target_account_id) for c in aws.received(None)] == [
        ("CreateUser", dev.id, ""),
        ("ListUsers", MANAGEMENT, ""),
        ("AssumeRole", MANAGEMENT, prod.id),
    ]
    assert aws.reached(prod.id) == ["AssumeRole"]
    assert aws.reached(dev.id) == ["CreateUser"]
    assert aws.reached(org.member("staging").id) == []


def test_a_fault_can_be_aimed_at_one_account(aws: EmbeddedAWS, org: SeededOrganization) -> None:
    dev = org.member("dev")
    dev_iam = client_as(aws, "iam", assume(aws.sts_client(), role_arn(dev.id)))
    aws.fail_next("ListUsers", code="ServiceFailure", status=500, account=dev.id)
    assert user_names(aws.iam_client(Config(retries={"total_max_attempts": 1}))) == []
    assert aws.pending_faults() == 1
    assert refusal(dev_iam.list_users)[:2] == ("ServiceFailure", 500)
    assert aws.pending_faults() == 0
    assert aws.injected(account=dev.id) == [("ListUsers", "ServiceFailure")]
    assert aws.injected(account=MANAGEMENT) == []


def test_the_request_delay_applies_in_member_accounts(
    aws: EmbeddedAWS, org: SeededOrganization
) -> None:
    dev_iam = aws.member_iam_client(org.member("dev").id)
    aws.request_delay = 0.2
    started = time.perf_counter()
    dev_iam.list_users()
    assert time.perf_counter() - started >= 0.2
