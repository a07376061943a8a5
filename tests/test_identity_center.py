"""End to end: the ``aws-identity-center`` connector through the installed ``hostsim`` command,
against the embedded AWS (moto's identitystore and sso-admin, with what AWS does and moto does
not added back: UpdateUser, memberships gone with their user, duplicate memberships refused,
asynchronous account assignments)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from identity_center_seeding import ACCOUNT, OTHER_ACCOUNT, IdentityCenter
from test_cli import as_json
from test_cli import hostsim as run_hostsim

from hostsim.embedded_aws import EmbeddedAWS
from idhub_aws_plugin.identity_center import permissions


@pytest.fixture
def center(aws: EmbeddedAWS) -> IdentityCenter:
    return IdentityCenter(aws)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The connector's table with a short patience for assignments (the tests' own clock)."""
    path = tmp_path / "idhub.toml"
    path.write_text(
        "[aws-identity-center]\nassignment_poll_milliseconds = 10\nassignment_timeout_seconds = 5\n"
    )
    return path


def hostsim(
    aws: EmbeddedAWS, config: Path | None, *args: str, expect: int = 0
) -> subprocess.CompletedProcess[str]:
    """The installed command with ``--connector aws-identity-center`` (``config`` None: the
    command as given, no connector chosen)."""
    chosen = (
        [] if config is None else ["--connector", "aws-identity-center", "--config", str(config)]
    )
    return run_hostsim(aws, *args, *chosen, expect=expect)


def statuses(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(s["action"], s["target"], s["status"]) for s in result["steps"]]


def create_ada(aws: EmbeddedAWS, config: Path, *grants: str) -> dict[str, Any]:
    extra = [part for grant in grants for part in ("--grant", grant)]
    args = ("create", "ada@example.com", "--first-name", "Ada", "--last-name", "Lovelace")
    return dict(as_json(hostsim(aws, config, *args, *extra, "--json")))


# --- the default connector ----------------------------------------------------------------


def test_without_connector_every_command_is_aws_iams(
    aws: EmbeddedAWS, center: IdentityCenter
) -> None:
    names = [row["name"] for row in as_json(hostsim(aws, None, "plugins", "--json"))]
    assert names == ["aws-iam", "aws-identity-center"]
    hostsim(aws, None, "create", "bo@example.com", "--first-name", "Bo")
    assert [u["UserName"] for u in aws.iam_client().list_users()["Users"]] == ["bo@example.com"]
    assert center.user_ids() == set()
    assert [row["email"] for row in as_json(hostsim(aws, None, "fetch", "users", "--json"))] == [
        "bo@example.com"
    ]
    assert "ROLES" not in hostsim(aws, None, "fetch", "policies").stdout
    hostsim(aws, None, "fetch", "assignments", expect=2)  # not an IAM kind


# --- joiners, movers, leavers -------------------------------------------------------------


def test_create_makes_the_user_with_its_grants_and_a_rerun_changes_nothing(
    aws: EmbeddedAWS, center: IdentityCenter, config: Path
) -> None:
    devs = center.group("developers")
    read_only = center.permission_set("ReadOnly")
    grants = ("group:developers", f"assignment:ReadOnly@{ACCOUNT}")
    made = create_ada(aws, config, *grants)
    user = center.user("ada@example.com")
    assert user is not None
    assert made["account"]["id"] == user["UserId"]
    assert user["Name"] == {"GivenName": "Ada", "FamilyName": "Lovelace"}
    assert user["DisplayName"] == "Ada Lovelace"
    assert user["Emails"] == [{"Value": "ada@example.com", "Type": "work", "Primary": True}]
    assert center.members(devs) == [user["UserId"]]
    assert center.assignments(user["UserId"]) == {(read_only, ACCOUNT)}
    assert {s for _a, _t, s in statuses(made)} == {"done"}

    again = create_ada(aws, config, *grants)
    assert {s for _a, _t, s in statuses(again)} == {"unchanged"}
    assert center.members(devs) == [user["UserId"]]  # no second membership


def test_create_refuses_what_the_identity_store_cannot_hold_and_changes_nothing(
    aws: EmbeddedAWS, center: IdentityCenter, config: Path
) -> None:
    center.group("developers")
    named = ("create", "ann@example.com", "--first-name", "A", "--last-name", "B")
    for args, fragment in (
        (("create", "ann@example.com", "--first-name", "Ann"), "last_name"),
        ((*named, "--attr", "x=y"), "no home"),
        ((*named, "--grant", "group:ghosts"), "group 'ghosts' does not exist"),
        ((*named, "--grant", f"assignment:Nope@{ACCOUNT}"), "permission set 'Nope' does not exist"),
        (
            (*named, "--grant", "policy:arn:aws:iam::aws:policy/ReadOnlyAccess"),
            "expected group:NAME or assignment",
        ),
    ):
        done = hostsim(aws, config, *args, expect=2)
        assert fragment in done.stderr
    assert center.user_ids() == set()


def test_modify_renames_by_email_and_keeps_the_id(
    aws: EmbeddedAWS, center: IdentityCenter, config: Path
) -> None:
    made = create_ada(aws, config)
    moved = as_json(
        hostsim(
            aws,
            config,
            "modify",
            "ada@example.com",
            "--email",
            "ada.king@example.com",
            "--first-name",
            "Augusta",
            "--attr",
            "job_title=Countess",
            "--json",
        )
    )
    assert moved["account"] == {
        "id": made["account"]["id"],
        "name": "ada.king@example.com",
        "email": "ada.king@example.com",
    }
    user = center.user("ada.king@example.com")
    assert user is not None and user["UserId"] == made["account"]["id"]
    assert user["Emails"] == [{"Value": "ada.king@example.com", "Type": "work", "Primary": True}]
    assert user["Name"]["GivenName"] == "Augusta"
    assert user["Title"] == "Countess"
    assert center.user("ada@example.com") is None
    again = hostsim(
        aws, config, "modify", "ada.king@example.com", "--first-name", "Augusta", "--json"
    )
    assert statuses(as_json(again)) == [("update user", "ada.king@example.com", "unchanged")]
    hostsim(aws, config, "modify", "ada.king@example.com", "--first-name", "", expect=2)


def test_delete_removes_assignments_and_memberships_first_and_a_repeat_is_unchanged(
    aws: EmbeddedAWS, center: IdentityCenter, config: Path
) -> None:
    devs = center.group("developers")
    read_only = center.permission_set("ReadOnly")
    made = create_ada(aws, config, "group:developers", f"assignment:ReadOnly@{ACCOUNT}")
    user_id = made["account"]["id"]
    gone = as_json(hostsim(aws, config, "delete", "ada@example.com", "--json"))
    assert statuses(gone) == [
        ("delete assignment", f"assignment:ReadOnly@{ACCOUNT}", "done"),
        ("remove from group", "group:developers", "done"),
        ("delete user", "ada@example.com", "done"),
    ]
    assert center.user_ids() == set()
    assert center.members(devs) == []
    assert (read_only, ACCOUNT) not in center.assignments(user_id)
    again = as_json(hostsim(aws, config, "delete", "ada@example.com", "--json"))
    assert statuses(again) == [("delete user", "ada@example.com", "unchanged")]


# --- entitlements -------------------------------------------------------------------------


def test_grant_and_revoke_a_group_idempotently(
    aws: EmbeddedAWS, center: IdentityCenter, config: Path
) -> None:
    devs = center.group("developers")
    user_id = create_ada(aws, config)["account"]["id"]
    grant = ("grant", "ada@example.com", "group:developers", "--json")
    revoke = ("revoke", "ada@example.com", "group:developers", "--json")
    assert statuses(as_json(hostsim(aws, config, *grant)))[0][2] == "done"
    assert statuses(as_json(hostsim(aws, config, *grant)))[0][2] == "unchanged"
    assert center.members(devs) == [user_id]
    assert statuses(as_json(hostsim(aws, config, *revoke)))[0][2] == "done"
    assert statuses(as_json(hostsim(aws, config, *revoke)))[0][2] == "unchanged"
    assert center.members(devs) == []


def test_an_assignment_is_polled_until_it_succeeded(
    aws: EmbeddedAWS, center: IdentityCenter, config: Path
) -> None:
    read_only = center.permission_set("ReadOnly")
    user_id = create_ada(aws, config)["account"]["id"]
    aws.assignment_reads_in_progress = 3
    aws.clear_calls()
    ent = f"assignment:ReadOnly@{OTHER_ACCOUNT}"
    granted = as_json(hostsim(aws, config, "grant", "ada@example.com", ent, "--json"))
    assert granted["steps"][0]["status"] == "done"
    assert granted["steps"][0]["detail"] == "SUCCEEDED after 4 status read(s)"
    assert aws.calls("sso").count("DescribeAccountAssignmentCreationStatus") == 4
    assert center.assignments(user_id) == {(read_only, OTHER_ACCOUNT)}
    assert statuses(as_json(hostsim(aws, config, "grant", "ada@example.com", ent, "--json"))) == [
        ("grant", ent, "unchanged")
    ]
    revoked = as_json(hostsim(aws, config, "revoke", "ada@example.com", ent, "--json"))
    assert revoked["steps"][0]["detail"] == "SUCCEEDED after 4 status read(s)"
    assert center.assignments(user_id) == set()


def test_a_failed_assignment_is_a_failure_with_aws_reason(
    aws: EmbeddedAWS, center: IdentityCenter, config: Path
) -> None:
    center.permission_set("ReadOnly")
    user_id = create_ada(aws, config)["account"]["id"]
    aws.fail_next_assignment("Received a 404 status error: Not supported error code.")
    done = hostsim(
        aws, config, "grant", "ada@example.com", f"assignment:ReadOnly@{ACCOUNT}", expect=1
    )
    assert "failed" in done.stdout
    assert "Received a 404 status error: Not supported error code." in done.stderr
    assert done.stderr.count("\n") == 1
    assert center.assignments(user_id) == set()


def test_an_assignment_still_in_progress_when_patience_ends_says_so(
    aws: EmbeddedAWS, center: IdentityCenter, tmp_path: Path
) -> None:
    center.permission_set("ReadOnly")
    patient = tmp_path / "patient.toml"
    patient.write_text(
        "[aws-identity-center]\nassignment_poll_milliseconds = 50\nassignment_timeout_seconds = 1\n"
    )
    create_ada(aws, patient)
    aws.assignment_reads_in_progress = 10_000
    started = time.monotonic()
    done = hostsim(
        aws, patient, "grant", "ada@example.com", f"assignment:ReadOnly@{ACCOUNT}", expect=1
    )
    assert time.monotonic() - started < 30
    assert "still in progress after 1s" in done.stderr
    assert "run the same command again" in done.stderr


# --- reconciliation -----------------------------------------------------------------------


def test_fetch_lists_every_kind_with_provenance_and_a_direct_assignment_survives_the_group(
    aws: EmbeddedAWS, center: IdentityCenter, config: Path
) -> None:
    devs = center.group("developers")
    read_only = center.permission_set("ReadOnly")
    center.assign_group(devs, read_only)
    made = create_ada(aws, config, "group:developers", f"assignment:ReadOnly@{ACCOUNT}")
    user_id = made["account"]["id"]

    def fetched(kind: str) -> list[dict[str, Any]]:
        return list(as_json(hostsim(aws, config, "fetch", kind, "--json")))

    [user] = fetched("users")
    assert (user["id"], user["email"], user["first_name"], user["groups"]) == (
        user_id,
        "ada@example.com",
        "Ada",
        ["developers"],
    )
    assert [(g["name"], g["id"]) for g in fetched("groups")] == [("developers", devs)]
    assert [(a["email"], a["group"]) for a in fetched("group-access")] == [
        ("ada@example.com", "developers")
    ]
    assert [(p["name"], p["arn"]) for p in fetched("permission-sets")] == [("ReadOnly", read_only)]
    rows = fetched("assignments")
    assert sorted((r["email"], r["permission_set"], r["account_id"], r["via"]) for r in rows) == [
        ("ada@example.com", "ReadOnly", ACCOUNT, "direct"),
        ("ada@example.com", "ReadOnly", ACCOUNT, "group:developers"),
    ]
    assert {r["permission_set_arn"] for r in rows} == {read_only}
    table = hostsim(aws, config, "fetch", "assignments").stdout.splitlines()
    assert table[0].split()[:4] == ["EMAIL", "USER_NAME", "USER_ID", "PERMISSION_SET"]
    assert table[-1] == "(2 assignments)"
    lines = hostsim(aws, config, "fetch", "permission-sets", "--jsonl").stdout.splitlines()
    assert [json.loads(line)["name"] for line in lines] == ["ReadOnly"]

    hostsim(aws, config, "revoke", "ada@example.com", "group:developers")
    assert [(r["via"], r["permission_set"]) for r in fetched("assignments")] == [
        ("direct", "ReadOnly")
    ]
    assert center.assignments(user_id) == {(read_only, ACCOUNT)}


# --- the instance -------------------------------------------------------------------------


def test_the_instance_is_discovered_and_none_or_several_is_a_clear_error(
    aws: EmbeddedAWS, center: IdentityCenter, config: Path, tmp_path: Path
) -> None:
    status = hostsim(aws, config, "test", "--json")
    assert center.instance_arn in as_json(status)["message"]
    aws.set_identity_center_instances(2)  # the one found above, and an account instance
    done = hostsim(aws, config, "fetch", "users", expect=2)
    assert "2 IAM Identity Center instances" in done.stderr
    assert "set instance_arn" in done.stderr
    chosen = tmp_path / "chosen.toml"
    chosen.write_text(f'[aws-identity-center]\ninstance_arn = "{center.instance_arn}"\n')
    assert center.instance_arn in as_json(hostsim(aws, chosen, "test", "--json"))["message"]
    aws.set_identity_center_instances(0)
    done = hostsim(aws, config, "fetch", "users", expect=2)
    assert "no IAM Identity Center instance in this account" in done.stderr


def test_unknown_settings_are_refused_with_their_key(aws: EmbeddedAWS, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[aws-identity-center]\nassignment_timeout = 5\n")
    done = hostsim(aws, bad, "fetch", "users", expect=2)
    assert "assignment_timeout" in done.stderr


# --- the policy ---------------------------------------------------------------------------


def test_the_readme_shows_the_shipped_identity_center_policy(
    aws: EmbeddedAWS, config: Path
) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## IAM Identity Center", 1)[1]
    block = section.split("```json\n", 1)[1].split("```", 1)[0]
    assert json.loads(block) == permissions.SHIPPED.document
    printed = hostsim(aws, config, "permissions").stdout
    assert json.loads(printed) == permissions.SHIPPED.document


def test_the_config_file_can_pick_the_connector_and_the_option_wins(
    aws: EmbeddedAWS, center: IdentityCenter, tmp_path: Path
) -> None:
    picked = tmp_path / "picked.toml"
    picked.write_text(
        'connector = "aws-identity-center"\n'
        "[aws-identity-center]\nassignment_poll_milliseconds = 10\n"
    )
    common = ("--config", str(picked))
    hostsim(
        aws, None, "create", "ada@example.com", "--first-name", "A", "--last-name", "L", *common
    )
    assert center.user("ada@example.com") is not None
    assert aws.iam_client().list_users()["Users"] == []
    hostsim(aws, None, "create", "bo@example.com", "--connector", "aws-iam", *common)
    assert [u["UserName"] for u in aws.iam_client().list_users()["Users"]] == ["bo@example.com"]
    picked.write_text("connector = 7\n")
    assert "'connector' must be" in hostsim(aws, None, "fetch", "users", *common, expect=2).stderr


# The SCIM API serves this type: tests/test_identity_center_scim.py.


def test_a_bulk_import_creates_each_row_with_its_grants_and_a_rerun_changes_nothing(
    aws_env: EmbeddedAWS, center: IdentityCenter, config: Path, tmp_path: Path
) -> None:
    developers = center.group("developers")
    rows = tmp_path / "joiners.csv"
    rows.write_text(
        "email,first_name,last_name,display_name,grants\n"
        "ann@example.com,Ann,Lee,,group:developers\n"
        "bo@example.com,Bo,Ng,,group:developers\n"
    )
    first = as_json(hostsim(aws_env, config, "import", str(rows), "--json"))
    assert [row["status"] for row in first["rows"]] == ["created", "created"]
    users = [center.user(email) for email in ("ann@example.com", "bo@example.com")]
    ids = {user["UserId"] for user in users if user is not None}
    assert len(ids) == 2
    assert set(center.members(developers)) == ids
    aws_env.clear_calls()
    again = as_json(hostsim(aws_env, config, "import", str(rows), "--json"))
    assert [row["status"] for row in again["rows"]] == ["unchanged", "unchanged"]
    # each row planned first (tests/test_identity_center_plan.py): a re-run costs reads alone
    reads = ("Describe", "List", "Get")
    assert [call for call in aws_env.calls(None) if not call.startswith(reads)] == []
