"""Reconciliation at scale: IAM-sized pages in the embedded AWS, calls that grow with pages and
not with users, and rows that stream out before the last page is asked for."""

from __future__ import annotations

import io
import math
from collections import Counter
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError
from seeding import document, group, policy

from hostsim import output
from hostsim.contract.model import FetchKind
from hostsim.embedded_aws import EmbeddedAWS
from idhub_aws_plugin import reconcile
from idhub_aws_plugin.connector import AwsIamConnector

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

GAAD = "GetAccountAuthorizationDetails"


def users(iam: IAMClient, count: int, prefix: str = "u") -> list[str]:
    names = [f"{prefix}{index:04}@example.com" for index in range(count)]
    for name in names:
        iam.create_user(UserName=name, Tags=[{"Key": "Email", "Value": name}])
    return names


def error_code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


# --- the embedded AWS pages the bulk reads like IAM ---------------------------------------


def test_authorization_details_are_paged_like_iam(aws: EmbeddedAWS, iam: IAMClient) -> None:
    names = users(iam, 101)
    first = iam.get_account_authorization_details(Filter=["User"])
    assert (len(first["UserDetailList"]), first["IsTruncated"]) == (100, True)
    rest = iam.get_account_authorization_details(Filter=["User"], Marker=first["Marker"])
    assert (len(rest["UserDetailList"]), rest["IsTruncated"]) == (1, False)
    assert "Marker" not in rest
    seen = [u["UserName"] for u in first["UserDetailList"] + rest["UserDetailList"]]
    assert sorted(seen) == names

    with pytest.raises(ClientError) as too_many:
        iam.get_account_authorization_details(Filter=["User"], MaxItems=1001)
    assert error_code(too_many) == "ValidationError"
    with pytest.raises(ClientError) as forged:
        iam.get_account_authorization_details(Filter=["User"], Marker="100")
    assert error_code(forged) == "InvalidInput"


def test_a_page_may_span_users_and_groups(aws: EmbeddedAWS, iam: IAMClient) -> None:
    users(iam, 3)
    for name in ("g1", "g2"):
        group(iam, name)
    pages = list(
        iam.get_paginator("get_account_authorization_details").paginate(
            Filter=["User", "Group"], PaginationConfig={"PageSize": 2}
        )
    )
    assert [(len(p["UserDetailList"]), len(p["GroupDetailList"])) for p in pages] == [
        (2, 0),
        (1, 1),
        (0, 1),
    ]
    assert aws.calls().count(GAAD) == 3


def test_a_page_still_shows_permissions_boundaries(aws: EmbeddedAWS, iam: IAMClient) -> None:
    boundary = policy(iam, "boundary")
    users(iam, 2)
    iam.create_user(UserName="bounded", PermissionsBoundary=boundary)
    pages = iam.get_paginator("get_account_authorization_details").paginate(
        Filter=["User"], PaginationConfig={"PageSize": 1}
    )
    details = {u["UserName"]: u for page in pages for u in page["UserDetailList"]}
    assert details["bounded"]["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary
    assert "PermissionsBoundary" not in details["u0000@example.com"]


def test_list_policies_is_paged_like_iam(aws: EmbeddedAWS, iam: IAMClient) -> None:
    arns = [policy(iam, f"p{index}") for index in range(4)]
    aws.clear_calls()
    pages = list(
        iam.get_paginator("list_policies").paginate(Scope="Local", PaginationConfig={"PageSize": 2})
    )
    # the last page is full and says so: no extra empty page (moto's own paging asks for one)
    assert [len(page["Policies"]) for page in pages] == [2, 2]
    assert aws.calls() == ["ListPolicies", "ListPolicies"]
    assert sorted(p["Arn"] for page in pages for p in page["Policies"]) == sorted(arns)
    everything = iam.list_policies(Scope="AWS", MaxItems=1000)
    assert (len(everything["Policies"]), everything["IsTruncated"]) == (1000, True)
    with pytest.raises(ClientError) as too_many:
        iam.list_policies(Scope="Local", MaxItems=1001)
    assert error_code(too_many) == "ValidationError"


# --- the fetches: calls grow with pages, not with users -----------------------------------


def seed_account(iam: IAMClient, count: int) -> None:
    """``count`` users, each in a group and holding a policy directly, one with inline policy."""
    reports = policy(iam, "reports")
    group(iam, "developers", reports)
    group(iam, "auditors")
    for index, name in enumerate(users(iam, count)):
        iam.add_user_to_group(GroupName="developers" if index % 2 else "auditors", UserName=name)
        iam.attach_user_policy(UserName=name, PolicyArn=reports)
    iam.put_user_policy(
        UserName="u0000@example.com", PolicyName="inline", PolicyDocument=document()
    )


def fetch_counts(connector: AwsIamConnector, aws: EmbeddedAWS) -> dict[str, tuple[int, int]]:
    """Per fetch kind: (rows, IAM calls)."""
    counts = {}
    for kind in FetchKind:
        aws.clear_calls()
        rows = sum(1 for _row in connector.fetch(kind))
        counts[kind.value] = (rows, len(aws.calls()))
    return counts


def test_every_fetch_makes_a_number_of_calls_set_by_pages_not_users(
    connector: AwsIamConnector,
    aws: EmbeddedAWS,
    iam: IAMClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    page = 10
    monkeypatch.setattr(reconcile, "PAGE", {"PageSize": page})
    seed_account(iam, 21)
    few = fetch_counts(connector, aws)
    users(iam, 9, prefix="more")  # 30 users: still 3 pages
    more = fetch_counts(connector, aws)

    pages = math.ceil(30 / page)
    assert more == {
        "users": (30, pages),
        "groups": (2, 1),
        "policies": (1, 2),  # one listing per scope: customer-managed, AWS-managed attached
        "group-access": (21, pages),
        "policy-access": (21 + 10, 1 + pages),  # direct for all, via developers for 10
    }
    assert {kind: calls for kind, (_rows, calls) in few.items()} == {
        kind: calls for kind, (_rows, calls) in more.items()
    }


def test_fetching_many_users_costs_a_handful_of_calls(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    users(iam, 150)  # more than IAM's default page; within one page of the connector's 1000
    aws.clear_calls()
    assert sum(1 for _row in connector.fetch(FetchKind.USERS)) == 150
    assert Counter(aws.calls()) == {GAAD: 1}


# --- streaming: rows leave before the last page is asked for -------------------------------


def test_rows_stream_out_as_pages_arrive(
    connector: AwsIamConnector,
    aws: EmbeddedAWS,
    iam: IAMClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reconcile, "PAGE", {"PageSize": 5})
    users(iam, 12)
    aws.clear_calls()
    rows = connector.fetch(FetchKind.USERS)
    next(rows)
    assert aws.calls() == [GAAD]  # one page asked for, of three
    assert sum(1 for _row in rows) == 11
    assert aws.calls() == [GAAD] * 3


class _Sink(io.StringIO):
    """An output stream that notes how many IAM calls had been made when a row first reached
    it."""

    def __init__(self, aws: EmbeddedAWS) -> None:
        super().__init__()
        self._aws = aws
        self.calls_at_first_row: int | None = None

    def write(self, text: str) -> int:
        if self.calls_at_first_row is None and "user_name" in text:
            self.calls_at_first_row = len(self._aws.calls())
        return super().write(text)


@pytest.mark.parametrize("fmt", ["jsonl", "json"])
def test_the_cli_writes_the_first_row_before_the_last_page_is_read(
    connector: AwsIamConnector,
    aws: EmbeddedAWS,
    iam: IAMClient,
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
) -> None:
    monkeypatch.setattr(reconcile, "PAGE", {"PageSize": 5})
    users(iam, 12)
    aws.clear_calls()
    sink = _Sink(aws)
    written = output.write_rows(FetchKind.USERS, connector.fetch(FetchKind.USERS), sink, fmt)
    assert written == 12
    assert sink.calls_at_first_row == 1
    assert len(aws.calls()) == 3
