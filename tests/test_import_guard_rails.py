"""``hostsim import`` checks every guard rail before its first write.

A row whose account exists already is judged by that account: protected (listed, under a
protected path, carrying the protection tag) or outside the connector's ``user_path``. Such a
row used to be found only when its create ran, after the other rows had been created, and the
import ended with exit 1 and a half-done file. Now validation looks each row's user up (reads
only) and refuses the whole file: exit 2, every problem listed, nothing written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from seeding import group, policy, user_names

from hostsim.cli import main
from hostsim.embedded_aws import EmbeddedAWS

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_iam.type_defs import TagTypeDef

HEADER = "email,first_name,last_name,display_name,grants\n"
WRITES = ("Create", "Add", "Attach", "Tag", "Untag", "Update", "Put", "Delete", "Remove", "Detach")
CONFIG = """
[aws-iam]
user_path = "/idhub/"

[aws-iam.protected]
users = ["breakglass@example.com"]
paths = ["/idhub/admins/"]
"""
ADMINISTRATOR = "arn:aws:iam::aws:policy/AdministratorAccess"


def _import(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, expect: int
) -> tuple[Any, str]:
    config = tmp_path / "idhub.toml"
    config.write_text(CONFIG)
    rows = tmp_path / "joiners.csv"
    rows.write_text(text)
    capsys.readouterr()
    code = main(["import", str(rows), "--json", "--config", str(config)])
    out, err = capsys.readouterr()
    assert code == expect, (code, out, err)
    return json.loads(out), err


def _writes(aws: EmbeddedAWS) -> list[str]:
    return [call for call in aws.calls() if call.startswith(WRITES)]


def _existing(iam: IAMClient, name: str, path: str, *, protected: bool = False) -> None:
    tags: list[TagTypeDef] = [{"Key": "Email", "Value": name}]
    if protected:
        tags.append({"Key": "idhub:protected", "Value": "yes"})
    iam.create_user(UserName=name, Path=path, Tags=tags)


def test_a_row_whose_existing_account_is_protected_or_outside_refuses_the_file(
    aws_env: EmbeddedAWS,
    iam: IAMClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _existing(iam, "tagged@example.com", "/idhub/", protected=True)
    _existing(iam, "outside@example.com", "/")
    _existing(iam, "root@example.com", "/idhub/admins/")
    text = (
        HEADER
        + "new1@example.com,New,,,\n"  # line 2
        + "tagged@example.com,Tag,,,\n"  # line 3
        + "new2@example.com,New,,,\n"  # line 4
        + "outside@example.com,Out,,,\n"  # line 5
        + "root@example.com,Root,,,\n"  # line 6
        + "breakglass@example.com,Break,,,\n"  # line 7 (listed, not there yet)
        + "new3@example.com,New,,,\n"  # line 8
    )
    before = user_names(iam)
    aws_env.clear_calls()
    report, err = _import(tmp_path, capsys, text, expect=2)
    problems = {problem["line"]: problem["problem"] for problem in report["problems"]}
    assert set(problems) == {3, 5, 6, 7}
    assert "protected (tagged idhub:protected)" in problems[3]
    assert "outside the connector's path /idhub/" in problems[5]
    assert "protected (under protected path /idhub/admins/)" in problems[6]
    assert "protected (listed in protected.users)" in problems[7]
    assert err.count("\n") == 1 and "nothing was changed" in err
    assert _writes(aws_env) == []
    assert user_names(iam) == before


def test_one_protected_account_among_new_rows_creates_none_of_them(
    aws_env: EmbeddedAWS,
    iam: IAMClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The reported case: every other row valid, so nothing but the account refuses it."""
    _existing(iam, "tagged@example.com", "/idhub/", protected=True)
    text = HEADER + "new1@example.com,,,,\n" + "tagged@example.com,,,,\n" + "new2@example.com,,,,\n"
    aws_env.clear_calls()
    report, _err = _import(tmp_path, capsys, text, expect=2)
    assert [problem["line"] for problem in report["problems"]] == [3]
    assert _writes(aws_env) == []
    assert user_names(iam) == {"tagged@example.com"}


def test_an_existing_account_inside_the_guard_rails_is_still_resumed(
    aws_env: EmbeddedAWS,
    iam: IAMClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _existing(iam, "ann@example.com", "/idhub/")
    report, _err = _import(tmp_path, capsys, HEADER + "ann@example.com,Ann,,,\n", expect=0)
    assert [row["status"] for row in report["rows"]] == ["updated"]


def test_every_grant_is_judged_by_the_guard_rails_before_any_write(
    aws_env: EmbeddedAWS,
    iam: IAMClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    reports = policy(iam, "reports-read")
    group(iam, "readers", reports)
    group(iam, "admins", ADMINISTRATOR)
    text = (
        HEADER
        + "a@example.com,,,,group:readers\n"
        + f"b@example.com,,,,policy:{ADMINISTRATOR}\n"
        + "c@example.com,,,,group:admins\n"
        + f"d@example.com,,,,policy:{reports}\n"
    )
    aws_env.clear_calls()
    report, _err = _import(tmp_path, capsys, text, expect=2)
    problems = {problem["line"]: problem["problem"] for problem in report["problems"]}
    assert set(problems) == {3, 4}
    assert "AdministratorAccess" in problems[3] and "may not be granted" in problems[3]
    assert "group admins" in problems[4]
    assert _writes(aws_env) == []
    assert user_names(iam) == set()
