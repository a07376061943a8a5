"""End to end: the ``hostsim`` command over an AWS organization of the embedded AWS (issue 16).

Every test runs the installed console script in its own process, pointed at the embedded AWS
by environment only, with a config file holding an ``[aws-iam.organization]`` table: the
accounts it lists, the rows of every account a fetch reads (and the account that could not be
read, named on stderr), ``--account`` narrowing a command to one account, a change refused
without it, and ``serve`` bound to one account. What reached which account is asserted on the
calls the embedded AWS saw (``aws.calls(account=...)``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from organization_seeding import SeededOrganization, seed_organization

from hostsim.embedded_aws import EmbeddedAWS

HOSTSIM = str(Path(sys.executable).parent / "hostsim")
#: The management account: the one the embedded AWS's fake credentials act in.
MANAGEMENT = "123456789012"
#: IAM actions that only read: anything else a command sends is a write.
READ_PREFIXES = ("Get", "List", "Simulate", "Describe", "AssumeRole")


def writes(aws: EmbeddedAWS, account: str | None = None) -> list[str]:
    """Every call of any service that was not a read, in ``account`` (None: any)."""
    return [call for call in aws.calls(None, account) if not call.startswith(READ_PREFIXES)]


def config(tmp_path: Path, organization: str = "") -> str:
    path = tmp_path / "hostsim.toml"
    path.write_text(f"[aws-iam.organization]\n{organization}", encoding="utf-8")
    return str(path)


def hostsim(
    aws: EmbeddedAWS, *args: str, expect: int = 0, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [HOSTSIM, *args],
        env=aws.subprocess_env({"PATH": "/usr/bin:/bin"}),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == expect, (done.returncode, done.stdout, done.stderr)
    return done


def error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr's lines (a refusal or a partial read is one line each, nothing more)."""
    return done.stderr.strip().splitlines()


def user(aws: EmbeddedAWS, account: str, email: str) -> None:
    """An IAM user of ``email`` in a member account (as the connector names and tags one)."""
    aws.member_iam_client(account).create_user(
        UserName=email, Tags=[{"Key": "Email", "Value": email}]
    )


def user_names_in(aws: EmbeddedAWS, account: str) -> set[str]:
    iam = aws.member_iam_client(account)
    return {u["UserName"] for u in iam.list_users()["Users"]}


@pytest.fixture
def org(aws: EmbeddedAWS) -> SeededOrganization:
    """dev, staging, prod under the management account; one user in each member account
    (``NAME@example.com`` in the account called NAME), and the call log emptied."""
    seeded = seed_organization(aws)
    for member in seeded.members:
        user(aws, member.id, f"{member.name}@example.com")
    aws.clear_calls()
    return seeded


# --- accounts and test --------------------------------------------------------------------


def test_accounts_lists_each_account_in_scope_and_whether_its_role_can_be_assumed(
    aws: EmbeddedAWS, org: SeededOrganization, tmp_path: Path
) -> None:
    settings = config(tmp_path)
    listed = json.loads(hostsim(aws, "accounts", "--json", "--config", settings).stdout)
    assert sorted(a["id"] for a in listed) == sorted(org.all_ids)
    by_id = {a["id"]: a for a in listed}
    assert all(a["reachable"] for a in listed)
    assert [a["id"] for a in listed if a["management"]] == [MANAGEMENT]
    assert by_id[org.member("dev").id]["name"] == "dev"
    assert org.member("dev").id in by_id[org.member("dev").id]["via"]  # the role's ARN

    staging = org.member("staging").id
    aws.break_role(staging)
    done = hostsim(aws, "accounts", "--config", settings, expect=1)
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "REACHABLE", "VIA", "REASON"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == set(org.all_ids)
    assert rows[staging].split()[1:3] == ["staging", "no"]
    assert "AccessDenied" in rows[staging]
    assert rows[org.member("prod").id].split()[1:3] == ["prod", "yes"]
    assert "(management)" in rows[MANAGEMENT]
    # the account that cannot be reached is named on stderr, one line, and nothing else
    assert len(error_lines(done)) == 1
    assert error_lines(done)[0].startswith(f"hostsim: error: account {staging} (staging)")
    assert "AccessDenied" in error_lines(done)[0]
    unreachable = json.loads(
        hostsim(aws, "accounts", "--json", "--config", settings, expect=1).stdout
    )
    assert [(a["id"], a["reachable"]) for a in unreachable if not a["reachable"]] == [
        (staging, False)
    ]
    assert "AccessDenied" in next(a["reason"] for a in unreachable if a["id"] == staging)


def test_accounts_of_a_single_account_connector_and_of_a_type_without_target_accounts(
    aws: EmbeddedAWS,
) -> None:
    listed = json.loads(hostsim(aws, "accounts", "--json").stdout)
    assert [(a["id"], a["reachable"]) for a in listed] == [(MANAGEMENT, True)]
    done = hostsim(aws, "accounts", "--connector", "aws-identity-center", expect=2)
    assert error_lines(done) == [
        "hostsim: error: connector 'aws-identity-center' has no target accounts to list "
        "(it does not offer target-accounts)"
    ]


def test_test_reports_every_account_of_the_organization(
    aws: EmbeddedAWS, org: SeededOrganization, tmp_path: Path
) -> None:
    settings = config(tmp_path, "include_management_account = false\n")
    aws.break_role(org.member("prod").id)
    checked = hostsim(aws, "test", "--json", "--config", settings, expect=1)
    status = json.loads(checked.stdout)
    assert status["ok"] is False
    assert error_lines(checked) == [f"hostsim: error: the check failed: {status['message']}"]
    assert org.member("prod").id in status["message"]
    reached = {a["id"]: a["reachable"] for a in status["accounts"]}
    assert reached == {
        org.member("dev").id: True,
        org.member("staging").id: True,
        org.member("prod").id: False,
    }
    shown = hostsim(aws, "test", "--config", settings, expect=1).stdout
    assert "accounts: 3" in shown
    listed = [line.split() for line in shown.split("accounts: 3\n")[1].splitlines()]
    assert listed[0][:3] == ["ID", "NAME", "REACHABLE"]
    assert [row[:3] for row in listed[1:]] == sorted(
        [m.id, m.name, "no" if m.name == "prod" else "yes"] for m in org.members
    )
    # a connector of one account says nothing of accounts in its table
    assert "accounts:" not in hostsim(aws, "test").stdout


# --- fetch --------------------------------------------------------------------------------


def test_fetch_reads_every_account_each_row_naming_its_own(
    aws: EmbeddedAWS, org: SeededOrganization, tmp_path: Path
) -> None:
    settings = config(tmp_path, "include_management_account = false\n")
    rows = json.loads(hostsim(aws, "fetch", "users", "--json", "--config", settings).stdout)
    assert sorted((r["account_id"], r["email"]) for r in rows) == sorted(
        (m.id, f"{m.name}@example.com") for m in org.members
    )
    lines = [
        json.loads(line)
        for line in hostsim(aws, "fetch", "users", "--jsonl", "--config", settings).stdout.split(
            "\n"
        )
        if line
    ]
    assert sorted(r["account_id"] for r in lines) == sorted(org.ids)
    table = hostsim(aws, "fetch", "users", "--config", settings).stdout.splitlines()
    assert table[0].split()[:2] == ["ACCOUNT", "EMAIL"]
    assert sorted(line.split()[:2] for line in table[1:-1]) == sorted(
        [m.id, f"{m.name}@example.com"] for m in org.members
    )
    assert table[-1] == "(3 users)"


def test_fetch_with_account_reads_that_account_only(
    aws: EmbeddedAWS, org: SeededOrganization, tmp_path: Path
) -> None:
    settings = config(tmp_path)
    dev = org.member("dev").id
    rows = json.loads(
        hostsim(aws, "fetch", "users", "--json", "--account", dev, "--config", settings).stdout
    )
    assert [(r["account_id"], r["email"]) for r in rows] == [(dev, "dev@example.com")]
    assert aws.calls("iam", dev)
    for other in (org.member("staging").id, org.member("prod").id):
        assert aws.calls(None, other) == [], other
    # the management account was asked which accounts there are, never for its users
    assert aws.calls("iam", MANAGEMENT) == []


def test_an_account_that_cannot_be_read_fails_only_itself(
    aws: EmbeddedAWS, org: SeededOrganization, tmp_path: Path
) -> None:
    settings = config(tmp_path, "include_management_account = false\n")
    staging = org.member("staging").id
    aws.break_role(staging)
    done = hostsim(aws, "fetch", "users", "--json", "--config", settings, expect=1)
    rows = json.loads(done.stdout)  # complete and valid: the array is closed
    assert sorted(r["email"] for r in rows) == ["dev@example.com", "prod@example.com"]
    assert len(error_lines(done)) == 1
    assert error_lines(done)[0].startswith(
        f"hostsim: error: could not read 1 account(s): {staging} ("
    )
    assert "AccessDenied" in error_lines(done)[0]
    table = hostsim(aws, "fetch", "users", "--config", settings, expect=1)
    assert table.stdout.splitlines()[-1] == "(2 users)"
    assert staging not in table.stdout
    assert error_lines(table) == error_lines(done)


# --- changes ------------------------------------------------------------------------------


def test_create_with_account_lands_in_that_account_only(
    aws: EmbeddedAWS, org: SeededOrganization, tmp_path: Path
) -> None:
    settings = config(tmp_path)
    prod = org.member("prod").id
    created = json.loads(
        hostsim(
            aws, "create", "ann@example.com", "--account", prod, "--json", "--config", settings
        ).stdout
    )
    assert created["changed"] is True
    assert "CreateUser" in writes(aws, prod)
    assert writes(aws) == writes(aws, prod)
    assert "ann@example.com" in user_names_in(aws, prod)
    for other in (org.member("dev").id, org.member("staging").id):
        assert "ann@example.com" not in user_names_in(aws, other)
    aws.clear_calls()
    # the same account, a second time: nothing to do, and the other accounts untouched
    again = hostsim(aws, "create", "ann@example.com", "--account", prod, "--config", settings)
    assert "unchanged" in again.stdout.splitlines()[0]
    assert writes(aws) == []


@pytest.mark.parametrize(
    "command",
    [
        ("create", "ann@example.com"),
        ("create", "ann@example.com", "--json"),
        ("create", "ann@example.com", "--plan"),
        ("delete", "dev@example.com"),
        ("grant", "dev@example.com", "group:developers", "--json"),
        ("disable", "dev@example.com", "--plan", "--json"),
    ],
)
def test_a_change_without_account_in_an_organization_is_refused_and_sends_nothing(
    aws: EmbeddedAWS, org: SeededOrganization, tmp_path: Path, command: Sequence[str]
) -> None:
    done = hostsim(aws, *command, "--config", config(tmp_path), expect=2)
    assert len(error_lines(done)) == 1
    assert error_lines(done)[0].startswith("hostsim: error: these settings span")
    assert "--account ID" in error_lines(done)[0]
    assert aws.calls(None) == []
    if "--json" in command:
        assert "--account" in json.loads(done.stdout)["error"]


def test_an_account_out_of_scope_or_malformed_is_refused_before_any_change(
    aws: EmbeddedAWS, org: SeededOrganization, tmp_path: Path
) -> None:
    prod = org.member("prod").id
    settings = config(tmp_path, f'exclude = ["{prod}"]\n')
    done = hostsim(
        aws, "create", "ann@example.com", "--account", prod, "--config", settings, expect=2
    )
    assert len(error_lines(done)) == 1
    assert prod in error_lines(done)[0]
    assert writes(aws) == []
    assert aws.calls(None, prod) == []  # an excluded account is never even read
    assert "ann@example.com" not in user_names_in(aws, prod)

    aws.clear_calls()
    for bad in ("12345", "1234567890123", "12345678901x"):
        refused = hostsim(aws, "fetch", "users", "--account", bad, "--config", settings, expect=2)
        assert "12-digit AWS account id" in refused.stderr
        assert refused.stderr.startswith("usage:")
    assert aws.calls(None) == []


def test_plan_with_account_reads_that_account_and_changes_nothing(
    aws: EmbeddedAWS, org: SeededOrganization, tmp_path: Path
) -> None:
    dev = org.member("dev").id
    planned = json.loads(
        hostsim(
            aws,
            "create",
            "ann@example.com",
            "--account",
            dev,
            "--plan",
            "--json",
            "--config",
            config(tmp_path),
        ).stdout
    )
    assert planned["plan"] is True
    assert planned["would_change"] is True
    assert ("create user", "would create") in [(s["action"], s["status"]) for s in planned["steps"]]
    assert writes(aws) == []
    assert aws.calls("iam", dev)
    assert "ann@example.com" not in user_names_in(aws, dev)


# --- serve --------------------------------------------------------------------------------


@contextmanager
def serving(aws: EmbeddedAWS, *args: str) -> Iterator[str]:
    """``hostsim serve --open --port 0 ARGS`` as its own process; yields its SCIM base URL."""
    with subprocess.Popen(
        [HOSTSIM, "serve", "--open", "--port", "0", *args],
        env=aws.subprocess_env({"PATH": "/usr/bin:/bin"}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            assert server.stdout is not None
            banner = server.stdout.readline()
            assert " at " in banner, (banner, server.stderr.read() if server.stderr else "")
            if "--account" in args:  # the banner says which account it serves
                account = args[args.index("--account") + 1]
                assert f"of account {account} over SCIM" in banner, banner
            yield banner.split(" at ")[1].split()[0]
        finally:
            server.terminate()
            server.communicate(timeout=30)


def test_serve_refuses_to_start_across_an_organization(
    aws: EmbeddedAWS, org: SeededOrganization, tmp_path: Path
) -> None:
    done = hostsim(aws, "serve", "--open", "--port", "0", "--config", config(tmp_path), expect=2)
    assert error_lines(done) == [
        "hostsim: error: these settings span 4 accounts of an organization: serve one with "
        "--account ID; IDHub configures one SCIM application per AWS account "
        "(`hostsim accounts` lists them)"
    ]
    assert "serving" not in done.stdout
    assert writes(aws) == []
    prod = org.member("prod").id
    excluded = config(tmp_path, f'exclude = ["{prod}"]\n')
    out_of_scope = hostsim(
        aws, "serve", "--open", "--port", "0", "--account", prod, "--config", excluded, expect=2
    )
    assert len(error_lines(out_of_scope)) == 1
    assert prod in error_lines(out_of_scope)[0]
    assert "serving" not in out_of_scope.stdout
    assert aws.calls(None, prod) == []


def test_serve_with_account_serves_that_accounts_users_only(
    aws: EmbeddedAWS, org: SeededOrganization, tmp_path: Path
) -> None:
    staging = org.member("staging").id
    with serving(aws, "--account", staging, "--config", config(tmp_path)) as url:
        answer: Any = httpx2.get(f"{url}/Users", timeout=30).json()
    assert [u["userName"] for u in answer["Resources"]] == ["staging@example.com"]
    for other in (org.member("dev").id, org.member("prod").id):
        assert aws.calls(None, other) == [], other
    assert aws.calls("iam", MANAGEMENT) == []
