"""Bulk onboarding: ``hostsim import FILE`` validates every row before any change, provisions
concurrently, absorbs throttling, and changes nothing when re-run."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest
from seeding import direct_policies_of, group, groups_of, policy, tags_of, user_names

from hostsim import bulk_import
from hostsim.bulk_import import ImportRefused, ImportRow, RowStatus
from hostsim.cli import main
from hostsim.contract.connector import Connector, ConnectorType
from hostsim.contract.errors import InvalidInput
from hostsim.contract.model import (
    AccountRef,
    Capability,
    CreateRequest,
    OperationResult,
    Step,
    StepStatus,
)
from hostsim.embedded_aws import EmbeddedAWS
from hostsim.runtime import Runtime

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

HEADER = "email,first_name,last_name,display_name,grants\n"
WRITES = ("Create", "Add", "Attach", "Tag", "Untag", "Update", "Put", "Delete", "Remove", "Detach")


@pytest.fixture
def reports(aws_env: EmbeddedAWS, iam: IAMClient) -> str:
    """An account with the groups and the policy the files grant; returns the policy's ARN."""
    arn = policy(iam, "reports-read")
    group(iam, "developers", arn)
    group(iam, "auditors")
    return arn


def joiners(count: int, grants: str, prefix: str = "p") -> str:
    return "".join(
        f"{prefix}{index}@example.com,First{index},Last{index},Person {index},{grants}\n"
        for index in range(count)
    )


def run_import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, *args: str, expect: int = 0
) -> tuple[Any, str]:
    """``hostsim import FILE --json ...`` in this process; (parsed stdout, stderr)."""
    path = tmp_path / "joiners.csv"
    path.write_text(text, encoding="utf-8")
    capsys.readouterr()
    code = main(["import", str(path), "--json", *args])
    out, err = capsys.readouterr()
    assert code == expect, (code, out, err)
    return json.loads(out), err


def writes(aws: EmbeddedAWS) -> list[str]:
    return [call for call in aws.calls() if call.startswith(WRITES)]


def test_import_provisions_every_row_with_its_attributes_and_grants(
    aws_env: EmbeddedAWS,
    iam: IAMClient,
    reports: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = HEADER + joiners(10, f"group:developers;policy:{reports}")
    text += "solo@example.com,,,,\n"  # no names, no grants
    report, err = run_import(tmp_path, capsys, text, "--workers", "4")

    assert report["summary"] == {"created": 11, "updated": 0, "unchanged": 0, "failed": 0}
    assert [row["line"] for row in report["rows"]] == list(range(2, 13))
    assert err == ""
    first = report["rows"][0]
    assert (first["email"], first["status"]) == ("p0@example.com", "created")
    assert first["id"] == iam.get_user(UserName="p0@example.com")["User"]["UserId"]
    assert user_names(iam) == {f"p{i}@example.com" for i in range(10)} | {"solo@example.com"}
    assert tags_of(iam, "p3@example.com") == {
        "Email": "p3@example.com",
        "FirstName": "First3",
        "LastName": "Last3",
        "DisplayName": "Person 3",
    }
    assert groups_of(iam, "p9@example.com") == {"developers"}
    assert direct_policies_of(iam, "p9@example.com") == {reports}
    assert groups_of(iam, "solo@example.com") == set()


def test_rerunning_the_same_file_changes_nothing_and_costs_reads_only(
    aws_env: EmbeddedAWS,
    iam: IAMClient,
    reports: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = HEADER + joiners(6, f"group:developers;policy:{reports}")
    run_import(tmp_path, capsys, text)
    aws_env.clear_calls()
    report, _err = run_import(tmp_path, capsys, text)
    assert report["summary"] == {"created": 0, "updated": 0, "unchanged": 6, "failed": 0}
    assert writes(aws_env) == []
    assert aws_env.calls()  # it did look


def test_an_existing_account_is_completed_not_duplicated(
    aws_env: EmbeddedAWS,
    iam: IAMClient,
    reports: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = HEADER + joiners(2, "group:developers")
    run_import(tmp_path, capsys, text)
    more = HEADER + joiners(2, "group:developers;group:auditors")
    report, _err = run_import(tmp_path, capsys, more)
    assert [row["status"] for row in report["rows"]] == ["updated", "updated"]
    assert "grant group:auditors" in report["rows"][0]["detail"]
    assert groups_of(iam, "p1@example.com") == {"developers", "auditors"}
    assert Counter(writes(aws_env))["CreateUser"] == 2  # the first run's only


def test_a_bad_row_refuses_the_whole_file_before_any_change(
    aws_env: EmbeddedAWS,
    iam: IAMClient,
    reports: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = HEADER + joiners(5, "group:developers") + "zed@example.com,Zed,,,team:ops\n"
    text += joiners(3, "group:auditors", prefix="q")
    aws_env.clear_calls()
    report, err = run_import(tmp_path, capsys, text, expect=2)

    assert report["problems"] == [
        {"line": 7, "problem": "entitlement 'team:ops': expected group:NAME or policy:ARN"}
    ]
    assert err.count("\n") == 1
    assert "nothing was changed" in err
    assert "line 7" in err
    assert "CreateUser" not in aws_env.calls()
    assert writes(aws_env) == []
    assert user_names(iam) == set()


def test_every_problem_is_reported_with_its_line(
    aws_env: EmbeddedAWS,
    iam: IAMClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = (
        HEADER
        + "ok@example.com,,,,\n"
        + "\n"  # blank lines are skipped, but still counted
        + "not-an-email,,,,\n"
        + ",Nobody,,,\n"
        + "OK@Example.com,,,,\n"
        + "extra@example.com,,,,,surplus\n"
    )
    report, _err = run_import(tmp_path, capsys, text, expect=2)
    assert [(p["line"], p["problem"]) for p in report["problems"]] == [
        (4, "email: 'not-an-email' is not an email address"),
        (5, "email is required"),
        (6, "OK@Example.com: the same email as line 2"),
        (7, "expected 5 fields, found 6"),
    ]
    assert user_names(iam) == set()


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("", "empty file"),
        ("email,first_name,grants\n", "missing column last_name, display_name"),
        (HEADER.replace("grants", "roles"), "unknown column 'roles'"),
    ],
)
def test_a_bad_header_is_refused(
    aws_env: EmbeddedAWS,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    header: str,
    fragment: str,
) -> None:
    report, err = run_import(tmp_path, capsys, header, expect=2)
    assert report["problems"][0]["line"] == 1
    assert fragment in report["problems"][0]["problem"]
    assert "line 1" in err


def test_columns_may_come_in_any_order(
    aws_env: EmbeddedAWS,
    iam: IAMClient,
    reports: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = "grants,display_name,email,last_name,first_name\ngroup:auditors,,ann@example.com,,Ann\n"
    report, _err = run_import(tmp_path, capsys, text)
    assert report["summary"]["created"] == 1
    assert tags_of(iam, "ann@example.com")["FirstName"] == "Ann"
    assert groups_of(iam, "ann@example.com") == {"auditors"}


def test_the_connectors_own_rules_refuse_the_file_before_any_change(
    aws_env: EmbeddedAWS,
    iam: IAMClient,
    reports: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = (
        HEADER
        + joiners(3, "group:developers")
        + "x@example.com,,,,group:ghosts\n"
        + "y@example.com,a;b,,,\n"
        + joiners(3, "group:developers", prefix="q")
    )
    aws_env.clear_calls()
    report, _err = run_import(tmp_path, capsys, text, expect=2)
    problems = {p["line"]: p["problem"] for p in report["problems"]}
    assert set(problems) == {5, 6}
    assert "group 'ghosts' does not exist" in problems[5]
    assert "first_name" in problems[6]
    assert writes(aws_env) == []
    # each group is looked up once per import at most, not once per row (a group the
    # import's bulk read holds costs no GetGroup at all)
    assert aws_env.calls().count("GetGroup") <= 2


def test_throttling_under_concurrency_fails_no_row(
    aws_env: EmbeddedAWS,
    iam: IAMClient,
    reports: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    aws_env.fail_next("CreateUser", code="Throttling", status=400, times=3)
    aws_env.fail_next("AddUserToGroup", code="Throttling", status=400, times=2)
    text = HEADER + joiners(8, "group:developers")
    report, _err = run_import(tmp_path, capsys, text, "--workers", "8")
    assert report["summary"] == {"created": 8, "updated": 0, "unchanged": 0, "failed": 0}
    assert aws_env.pending_faults() == 0
    assert Counter(aws_env.calls())["CreateUser"] == 8 + 3
    assert len(user_names(iam)) == 8


def test_a_failed_row_is_reported_the_others_go_on_and_a_rerun_finishes(
    aws_env: EmbeddedAWS,
    iam: IAMClient,
    reports: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    aws_env.fail_next("AddUserToGroup", code="AccessDenied", status=403, message="not allowed")
    text = HEADER + joiners(4, "group:developers")
    report, err = run_import(tmp_path, capsys, text, expect=1)
    assert report["summary"] == {"created": 3, "updated": 0, "unchanged": 0, "failed": 1}
    failed = next(row for row in report["rows"] if row["status"] == "failed")
    assert "AccessDenied" in failed["detail"]
    assert "done before it failed: create user" in failed["detail"]
    assert [(s["action"], s["status"]) for s in failed["steps"]] == [
        ("create user", "done"),
        ("grant", "failed"),
    ]
    assert "1 of 4 rows failed" in err

    again, _err = run_import(tmp_path, capsys, text)
    statuses = {row["email"]: row["status"] for row in again["rows"]}
    assert statuses.pop(failed["email"]) == "updated"
    assert set(statuses.values()) == {"unchanged"}
    assert all(groups_of(iam, f"p{i}@example.com") == {"developers"} for i in range(4))


def test_the_human_summary_has_one_line_per_row(
    aws_env: EmbeddedAWS,
    reports: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "joiners.csv"
    path.write_text(HEADER + joiners(2, "group:auditors"), encoding="utf-8")
    assert main(["import", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["LINE", "EMAIL", "STATUS", "DETAIL"]
    assert lines[1].split()[:3] == ["2", "p0@example.com", "created"]
    assert lines[-1] == "(2 rows: 2 created, 0 updated, 0 unchanged, 0 failed)"


def test_an_unreadable_file_or_a_bad_worker_count_exits_2(
    aws_env: EmbeddedAWS, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", str(tmp_path / "missing.csv")]) == 2
    assert "cannot read" in capsys.readouterr().err
    for workers in ("0", "33"):  # at most the connector's 32 pooled connections
        with pytest.raises(SystemExit) as exited:
            main(["import", str(tmp_path / "missing.csv"), "--workers", workers])
        assert exited.value.code == 2


# --- the worker pool, without AWS ---------------------------------------------------------


class _SlowConnector:
    """Stands in for an opened connector: counts creates running at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def create(self, payload: dict[str, Any]) -> OperationResult:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.02)
        with self.lock:
            self.running -= 1
        step = Step("create user", payload["email"], StepStatus.DONE)
        return OperationResult("create", AccountRef("id", payload["email"]), (step,))


def test_the_pool_runs_rows_concurrently_but_never_more_than_the_workers() -> None:
    fake = _SlowConnector()
    runtime = cast(Runtime, fake)
    fake.connector = fake  # type: ignore[attr-defined]
    rows = [ImportRow(line, {"email": f"r{line}@example.com"}) for line in range(2, 26)]
    results = bulk_import.provision(runtime, rows, workers=4)
    assert fake.most == 4
    assert [r.line for r in results] == list(range(2, 26))
    assert {r.status for r in results} == {RowStatus.CREATED}


def test_a_refusal_lists_problems_in_line_order() -> None:
    refused = ImportRefused([bulk_import.RowProblem(9, "b"), bulk_import.RowProblem(3, "a")])
    assert [p.line for p in refused.problems] == [3, 9]
    assert refused.message.endswith("line 3: a (and 1 more problem)")
    assert refused.invalid_input


class _CheckingConnector:
    """A connector offering the optional ``check_create``: refuses emails starting with "bad"
    and notes every grant it was asked to check."""

    def __init__(self) -> None:
        self.checked: list[str] = []
        self.created: list[str] = []
        self.lock = threading.Lock()

    def check_create(self, request: CreateRequest) -> None:
        with self.lock:
            self.checked += request.grants
        if request.email.startswith("bad"):
            raise InvalidInput(f"email: {request.email!r} is refused by the connector")

    def create(self, request: CreateRequest) -> OperationResult:
        with self.lock:
            self.created.append(request.email)
        return OperationResult("create", AccountRef("id", request.email), ())


def _runtime_of(fake: _CheckingConnector) -> Runtime:
    kind = ConnectorType("fake", "a fake", [Capability.CREATE], lambda _: cast(Connector, fake))
    return Runtime(kind, {})


def test_the_connectors_check_create_runs_for_every_row_before_any_create() -> None:
    fake = _CheckingConnector()
    text = HEADER + "a@x.io,,,,group:g;policy:p\nbad@x.io,,,,group:g\nc@x.io,,,,policy:p;group:h\n"
    parsed = bulk_import.read_rows(text.splitlines(keepends=True))
    with pytest.raises(ImportRefused) as refused:
        bulk_import.validate(_runtime_of(fake), parsed, workers=3)
    assert [(p.line, p.message) for p in refused.value.problems] == [
        (3, "email: 'bad@x.io' is refused by the connector")
    ]
    assert sorted(fake.checked) == ["group:g", "group:h", "policy:p"]  # each one once
    assert fake.created == []

    fine = bulk_import.read_rows([HEADER, "a@x.io,,,,group:g\n", "c@x.io,,,,\n"])
    rows = bulk_import.validate(_runtime_of(fake), fine)
    results = bulk_import.provision(_runtime_of(fake), rows)
    assert [(r.line, r.status) for r in results] == [
        (2, RowStatus.UNCHANGED),
        (3, RowStatus.UNCHANGED),
    ]
