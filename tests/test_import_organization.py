"""End to end: ``hostsim import`` of a CSV file whose rows name their AWS account (issue 16).

The optional ``account`` column gives each row its target account; an empty cell takes
``--account``. Every row of every account is validated (one bulk read per account) before the
first change; a row left without an account in an organization, or naming an account out of
scope, refuses the whole file with its line, nothing sent but reads. Without the column the
import is that of one account, as before (tests/test_bulk_import.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from organization_seeding import SeededOrganization, seed_organization
from test_cli_organization import MANAGEMENT, config, error_lines, hostsim, user_names_in, writes

from hostsim.embedded_aws import EmbeddedAWS

HEADER = "email,first_name,last_name,display_name,grants,account\n"


@pytest.fixture
def org(aws: EmbeddedAWS) -> SeededOrganization:
    seeded = seed_organization(aws)
    aws.clear_calls()
    return seeded


def csv_file(tmp_path: Path, *rows: str, header: str = HEADER) -> str:
    path = tmp_path / "joiners.csv"
    path.write_text(header + "".join(f"{row}\n" for row in rows), encoding="utf-8")
    return str(path)


def test_an_import_across_two_accounts_creates_each_row_in_its_own(
    aws: EmbeddedAWS, org: SeededOrganization, tmp_path: Path
) -> None:
    dev, prod = org.member("dev").id, org.member("prod").id
    settings = config(tmp_path)
    joiners = csv_file(
        tmp_path,
        f"ann@example.com,Ann,,,,{dev}",
        f"bob@example.com,Bob,,,,{prod}",
        # one person with an account in two AWS accounts: not "the same email twice"
        f"ann@example.com,Ann,,,,{prod}",
    )
    done = hostsim(aws, "import", joiners, "--json", "--config", settings)
    rows = json.loads(done.stdout)["rows"]
    assert [(r["line"], r["account"], r["email"], r["status"]) for r in rows] == [
        (2, dev, "ann@example.com", "created"),
        (3, prod, "bob@example.com", "created"),
        (4, prod, "ann@example.com", "created"),
    ]
    assert user_names_in(aws, dev) == {"ann@example.com"}
    assert user_names_in(aws, prod) == {"ann@example.com", "bob@example.com"}
    assert user_names_in(aws, org.member("staging").id) == set()
    assert writes(aws, org.member("staging").id) == []
    assert writes(aws, MANAGEMENT) == []

    aws.clear_calls()
    again = hostsim(aws, "import", joiners, "--config", settings)
    lines = again.stdout.splitlines()
    assert lines[0].split() == ["LINE", "ACCOUNT", "EMAIL", "STATUS", "DETAIL"]
    assert [line.split()[:4] for line in lines[1:-1]] == [
        ["2", dev, "ann@example.com", "unchanged"],
        ["3", prod, "bob@example.com", "unchanged"],
        ["4", prod, "ann@example.com", "unchanged"],
    ]
    assert writes(aws) == []


def test_a_row_without_an_account_refuses_the_file_before_any_change(
    aws: EmbeddedAWS, org: SeededOrganization, tmp_path: Path
) -> None:
    dev = org.member("dev").id
    settings = config(tmp_path)
    joiners = csv_file(
        tmp_path, f"ann@example.com,,,,,{dev}", "bob@example.com,,,,,", "cat@example.com,,,,,12"
    )
    done = hostsim(aws, "import", joiners, "--json", "--config", settings, expect=2)
    problems = json.loads(done.stdout)["problems"]
    assert [p["line"] for p in problems] == [3, 4]
    assert "no account" in problems[0]["problem"]
    assert "12-digit AWS account id" in problems[1]["problem"]
    assert len(error_lines(done)) == 1
    assert writes(aws) == []
    assert user_names_in(aws, dev) == set()

    # an empty cell takes --account
    fixed = csv_file(tmp_path, f"ann@example.com,,,,,{dev}", "bob@example.com,,,,,")
    prod = org.member("prod").id
    rows = json.loads(
        hostsim(aws, "import", fixed, "--account", prod, "--json", "--config", settings).stdout
    )["rows"]
    assert [(r["email"], r["account"]) for r in rows] == [
        ("ann@example.com", dev),
        ("bob@example.com", prod),
    ]
    assert user_names_in(aws, prod) == {"bob@example.com"}


def test_an_account_out_of_scope_refuses_its_rows_and_the_file(
    aws: EmbeddedAWS, org: SeededOrganization, tmp_path: Path
) -> None:
    dev, prod = org.member("dev").id, org.member("prod").id
    settings = config(tmp_path, f'exclude = ["{prod}"]\n')
    joiners = csv_file(tmp_path, f"ann@example.com,,,,,{dev}", f"bob@example.com,,,,,{prod}")
    done = hostsim(aws, "import", joiners, "--config", settings, expect=2)
    refused = [line.split(maxsplit=1) for line in done.stdout.splitlines()[2:]]
    assert [line[0] for line in refused] == ["3"]
    assert refused[0][1].startswith(f"account {prod}: ")
    assert writes(aws) == []
    assert aws.calls(None, prod) == []
    assert user_names_in(aws, dev) == set()


def test_a_file_without_the_column_in_an_organization_needs_account(
    aws: EmbeddedAWS, org: SeededOrganization, tmp_path: Path
) -> None:
    settings = config(tmp_path)
    joiners = csv_file(
        tmp_path, "ann@example.com,,,,", header="email,first_name,last_name,display_name,grants\n"
    )
    done = hostsim(aws, "import", joiners, "--config", settings, expect=2)
    assert len(error_lines(done)) == 1
    assert "--account ID" in error_lines(done)[0]
    assert writes(aws) == []

    staging = org.member("staging").id
    planned = hostsim(aws, "import", joiners, "--account", staging, "--plan", "--config", settings)
    # the table of one account's import, as it always was: no account column
    assert planned.stdout.splitlines()[0].split() == ["LINE", "EMAIL", "STATUS", "DETAIL"]
    assert planned.stdout.splitlines()[1].split()[:3] == ["2", "ann@example.com", "would"]
    assert writes(aws) == []
    assert aws.calls("iam", staging)
    hostsim(aws, "import", joiners, "--account", staging, "--config", settings)
    assert user_names_in(aws, staging) == {"ann@example.com"}
    assert user_names_in(aws, org.member("dev").id) == set()


def test_the_account_column_without_an_organization_names_the_credentials_own_account(
    aws: EmbeddedAWS, tmp_path: Path
) -> None:
    other = "210987654321"
    refused = csv_file(
        tmp_path, f"ann@example.com,,,,,{MANAGEMENT}", f"bob@example.com,,,,,{other}"
    )
    done = hostsim(aws, "import", refused, "--json", expect=2)
    problems = json.loads(done.stdout)["problems"]
    assert [p["line"] for p in problems] == [3]
    assert problems[0]["problem"].startswith(f"account {other}: ")
    assert writes(aws) == []

    fine = csv_file(tmp_path, f"ann@example.com,,,,,{MANAGEMENT}", "bob@example.com,,,,,")
    rows = json.loads(hostsim(aws, "import", fine, "--json").stdout)["rows"]
    assert [(r["email"], r["account"], r["status"]) for r in rows] == [
        ("ann@example.com", MANAGEMENT, "created"),
        ("bob@example.com", None, "created"),
    ]
    assert {u["UserName"] for u in aws.iam_client().list_users()["Users"]} == {
        "ann@example.com",
        "bob@example.com",
    }
