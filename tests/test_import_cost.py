"""What a bulk import costs in IAM calls now that it reads the account once, plans every row
from that read and writes only the rows that need it (``hostsim import``, ``--plan``).

Accounts of 1,000 users are seeded straight into moto's backend (as the connector makes them:
email and names in tags, the file's grants held), which takes a second instead of minutes.
Counts, not timings, are asserted.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from seeding import group, groups_of, policy, tags_of, user_names, writes

from hostsim import bulk_import
from hostsim.bulk_import import RowStatus
from hostsim.cli import main
from hostsim.embedded_aws import REGION, EmbeddedAWS, moto_state
from hostsim.plugins import get_plugin_manager, load_connectors
from hostsim.runtime import Runtime

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

HEADER = "email,first_name,last_name,display_name,grants\n"


@pytest.fixture
def grants(aws_env: EmbeddedAWS, iam: IAMClient) -> str:
    """Group ``developers`` carrying a policy, and a policy to attach directly: the ``grants``
    cell of every row."""
    group(iam, "developers", policy(iam, "dev-tools"))
    return f"group:developers;policy:{policy(iam, 'reports-read')}"


def email(index: int) -> str:
    return f"p{index:04}@example.com"


def rows(count: int, grants: str) -> str:
    return "".join(f"{email(i)},First{i},Last{i},,{grants}\n" for i in range(count))


def seed_holding(aws: EmbeddedAWS, count: int, grants: str) -> None:
    """``count`` users exactly as an import of :func:`rows` leaves them."""
    backend = moto_state.iam_backend(aws.account_id)
    policy_arn = grants.split("policy:", 1)[1]
    for index in range(count):
        tags = {"Email": email(index), "FirstName": f"First{index}", "LastName": f"Last{index}"}
        backend.create_user(
            REGION, email(index), "/", [{"Key": k, "Value": v} for k, v in tags.items()]
        )
        backend.add_user_to_group("developers", email(index))
        backend.attach_user_policy(policy_arn, email(index))


def run_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, *args: str
) -> dict[str, Any]:
    path = tmp_path / "joiners.csv"
    path.write_text(HEADER + text, encoding="utf-8")
    capsys.readouterr()
    code = main(["import", str(path), "--json", *args])
    out, err = capsys.readouterr()
    assert code == 0, (code, out, err)
    report: dict[str, Any] = json.loads(out)
    return report


def test_a_rerun_of_1000_rows_that_hold_costs_at_most_10_calls_and_no_write(
    aws_env: EmbeddedAWS, grants: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_holding(aws_env, 1000, grants)
    aws_env.clear_calls()
    report = run_import(tmp_path, capsys, rows(1000, grants))
    assert report["summary"] == {"created": 0, "updated": 0, "unchanged": 1000, "failed": 0}
    assert writes(aws_env) == []
    assert len(aws_env.calls()) <= 10, Counter(aws_env.calls())
    assert all(row["id"] for row in report["rows"])


def test_a_first_import_of_1000_joiners_with_2_grants_costs_at_most_3_3_calls_a_row(
    aws_env: EmbeddedAWS,
    iam: IAMClient,
    grants: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    aws_env.clear_calls()
    report = run_import(tmp_path, capsys, rows(1000, grants), "--workers", "16")
    assert report["summary"] == {"created": 1000, "updated": 0, "unchanged": 0, "failed": 0}
    calls = Counter(aws_env.calls())
    assert sum(calls.values()) <= 3300, calls
    assert calls["CreateUser"] == 1000 and calls["GetUser"] == 0  # no lookup before a create
    assert calls["AddUserToGroup"] == calls["AttachUserPolicy"] == 1000
    assert groups_of(iam, email(999)) == {"developers"}
    assert tags_of(iam, email(7)) == {"Email": email(7), "FirstName": "First7", "LastName": "Last7"}


def test_the_plan_of_a_file_shows_exactly_the_users_drifted_out_of_band(
    aws_env: EmbeddedAWS,
    iam: IAMClient,
    grants: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed_holding(aws_env, 40, grants)
    drifted = [3, 11, 17, 25, 38]
    for index in drifted:  # an administrator's boto3 changes behind IDHub's back
        iam.tag_user(UserName=email(index), Tags=[{"Key": "FirstName", "Value": "Changed"}])
    text = rows(40, grants) + "new@example.com,New,,,group:developers\n"
    aws_env.clear_calls()

    plan = run_import(tmp_path, capsys, text, "--plan")
    assert writes(aws_env) == []
    assert len(plan["rows"]) == 41
    updates = [row["email"] for row in plan["rows"] if row["status"] == "would update"]
    assert updates == [email(index) for index in drifted]
    assert plan["summary"] == {"would create": 1, "would update": 5, "unchanged": 35, "failed": 0}
    first = next(row for row in plan["rows"] if row["email"] == email(3))
    assert first["detail"] == f"tag user {email(3)}"
    assert [(s["action"], s["status"]) for s in first["steps"]][:2] == [
        ("create user", "unchanged"),
        ("tag user", "would update"),
    ]

    aws_env.clear_calls()
    report = run_import(tmp_path, capsys, text)
    assert report["summary"] == {"created": 1, "updated": 5, "unchanged": 35, "failed": 0}
    assert Counter(writes(aws_env)) == {"TagUser": 5, "CreateUser": 1, "AddUserToGroup": 1}
    assert tags_of(iam, email(11))["FirstName"] == "First11"


def _runtime() -> Runtime:
    return Runtime(load_connectors(get_plugin_manager()).choose("aws-iam"), {})


def test_a_row_changed_between_the_plan_and_its_write_still_ends_right(
    aws_env: EmbeddedAWS, iam: IAMClient, grants: str
) -> None:
    """Planned absent, then created by the same person's other writer: adopted, completed.
    Planned absent, then taken by someone else: that row fails, nothing written to it.
    Planned to be completed, then deleted: created again. Nothing else is written."""
    seed_holding(aws_env, 4, grants)
    iam.remove_user_from_group(GroupName="developers", UserName=email(2))  # p2 lacks a grant
    text = HEADER + rows(4, grants) + f"{email(4)},First4,Last4,,{grants}\n"
    text += f"{email(5)},First5,Last5,,{grants}\n"
    runtime = _runtime()
    planned = bulk_import.validate(runtime, bulk_import.read_rows(text.splitlines(True)))
    assert [row.plan.would_change for row in planned if row.plan] == [
        False, False, True, False, True, True,
    ]  # fmt: skip

    # between the read and the writes
    iam.create_user(
        UserName=email(4),
        Tags=[
            {"Key": "Email", "Value": email(4)},
            {"Key": "FirstName", "Value": "First4"},
            {"Key": "LastName", "Value": "Last4"},
        ],
    )
    iam.create_user(UserName=email(5), Tags=[{"Key": "Email", "Value": "someone@else.com"}])
    iam.detach_user_policy(UserName=email(2), PolicyArn=grants.split("policy:", 1)[1])
    iam.delete_user(UserName=email(2))
    aws_env.clear_calls()

    results = {r.email: r for r in bulk_import.provision(runtime, planned, workers=4)}
    assert results[email(4)].status is RowStatus.UPDATED  # grants added to the adopted user
    assert results[email(5)].status is RowStatus.FAILED
    assert "someone" in results[email(5)].detail or "not the account" in results[email(5)].detail
    assert results[email(2)].status is RowStatus.CREATED
    assert [results[email(i)].status for i in (0, 1, 3)] == [RowStatus.UNCHANGED] * 3
    assert groups_of(iam, email(4)) == {"developers"}
    assert groups_of(iam, email(5)) == set()
    assert tags_of(iam, email(5)) == {"Email": "someone@else.com"}
    assert groups_of(iam, email(2)) == {"developers"}
    assert user_names(iam) >= {email(i) for i in range(6)}
    assert Counter(writes(aws_env)) == {
        "CreateUser": 3,  # p2 (again), p4 (met as existing), p5 (refused as taken)
        "AddUserToGroup": 2,
        "AttachUserPolicy": 2,
    }
