"""The leaver policy of ``[idhub]``: delete a leaver's account at once (the default), or
disable it at once and delete it ``delete_after_days`` later.

End to end through the installed ``hostsim`` (one process per command) against the embedded
AWS: the settings and their errors, ``identity remove`` under each policy (what IAM holds
afterwards, what IDHub's records and output say), and what reconciliation finds and does with
disabled accounts, of people who left (expected until their deletion is due, then deleted) and
of people who did not (drift). Time passes by moving the recorded disable back in the state
file, as the reconciliation tests move the stale clock.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from idhub_cli import (
    IDHub,
    email,
    finished,
    hub_for,
    killed_at_first,
    leave_while,
    people,
    query,
    wait_for,
    waited_leave,
)
from seeding import group, groups_of, policy, user_names

from hostsim import cli
from hostsim.contract import Capability, Connector, ConnectorType, hookimpl
from hostsim.contract.errors import ConfigurationError
from hostsim.core.settings import (
    DEFAULT_DELETE_AFTER_DAYS,
    CoreSettings,
    LeaverPolicy,
    check_connector,
    load_core_settings,
)
from hostsim.embedded_aws import EmbeddedAWS
from hostsim.plugins import get_plugin_manager

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

DEVELOPERS = "group:developers"
DENY = "idhub-disabled"
DISABLE = '[idhub]\nleaver = "disable"\ndelete_after_days = 30\n'
#: Every remedy, with a threshold that lets a small test population lose an account.
EVERYTHING = ("--remediate", "all", "--deletion-threshold", "100")


# --- helpers ------------------------------------------------------------------------------


def with_config(hub: IDHub, config: str) -> IDHub:
    """The same state file and AWS with another config file's text (a policy change)."""
    assert hub.config is not None
    hub.config.write_text(config, encoding="utf-8")
    return hub


def provision(hub: IDHub, iam: IAMClient, *people: str) -> None:
    """Group ``developers`` in IAM, approved automatically, and each person holding it."""
    group(iam, "developers", policy(iam, "reports-read"))
    hub.run("catalog", "sync")
    hub.run("catalog", "set", DEVELOPERS, "--approval", "auto")
    for person in people:
        hub.run("identity", "add", email(person), "--first-name", person.title())
        hub.run("request", "submit", DEVELOPERS, "--for", email(person), "--justification", "team")


def user_name(hub: IDHub, person: str) -> str:
    account: str = people(hub)[email(person)]["account"]
    return account


def inline_policies(iam: IAMClient, name: str) -> list[str]:
    return iam.list_user_policies(UserName=name)["PolicyNames"]


def fetched_users(hub: IDHub) -> dict[str, dict[str, Any]]:
    """``hostsim fetch users --json`` by user name: what reconciliation reads."""
    rows = json.loads(hub.run("fetch", "users", "--json").stdout)
    return {row["user_name"]: row for row in rows}


def findings_for(report: dict[str, Any], person: str) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["account"] == email(person)]


def writes(aws: EmbeddedAWS) -> list[str]:
    return [a for a in aws.calls() if not a.startswith(("Get", "List"))]


@contextlib.contextmanager
def state_db(hub: IDHub) -> Iterator[sqlite3.Connection]:
    db = sqlite3.connect(hub.state)
    try:
        with db:
            yield db
    finally:
        db.close()


def days_pass(hub: IDHub, person: str, days: float) -> None:
    """As if ``days`` had passed since the person left and their account was disabled."""

    def back(text: str) -> str:
        moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        return (moment - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")

    with state_db(hub) as db:
        (left,) = db.execute("SELECT left_at FROM identities WHERE email = ?", (email(person),))
        db.execute(
            "UPDATE identities SET left_at = ? WHERE email = ?", (back(left[0]), email(person))
        )
        row = db.execute(
            "SELECT disabled_at FROM accounts WHERE identity = ?", (email(person),)
        ).fetchone()
        if row is not None and row[0] is not None:
            db.execute(
                "UPDATE accounts SET disabled_at = ? WHERE identity = ?",
                (back(row[0]), email(person)),
            )


def error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("hostsim: error: "), done.stderr
    return lines[0]


# --- 1. the settings ----------------------------------------------------------------------


def test_the_default_policy_deletes_and_disable_keeps_the_account_thirty_days() -> None:
    assert load_core_settings({}) == CoreSettings()
    assert CoreSettings().leaver is LeaverPolicy.DELETE
    assert not CoreSettings().disables
    settings = load_core_settings({"leaver": "disable"})
    assert settings.disables
    assert settings.deletion_days == DEFAULT_DELETE_AFTER_DAYS == 30
    for days in (0, 3650):
        chosen = load_core_settings({"leaver": "disable", "delete_after_days": days})
        assert chosen.deletion_days == days
    # the policy needs the connector's disable; the default needs nothing more
    check_connector(settings, "aws-iam", ["delete", "disable"])
    check_connector(CoreSettings(), "other", ["delete"])
    with pytest.raises(ConfigurationError, match=r"^leaver: .*connector 'other' cannot"):
        check_connector(settings, "other", ["delete", "enable"])


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ('[idhub]\nleaver = "suspend"\n', "leaver", 2),
        ("[idhub]\nstale_days = 3\nleaver = 1\n", "leaver", 3),
        ('[idhub]\nleaver = "disable"\ndelete_after_days = 3651\n', "delete_after_days", 3),
        ('[idhub]\nleaver = "disable"\n\ndelete_after_days = -1\n', "delete_after_days", 4),
        ('[idhub]\nleaver = "disable"\ndelete_after_days = "30"\n', "delete_after_days", 3),
        ('[idhub]\nleaver = "disable"\ndelete_after_days = true\n', "delete_after_days", 3),
        ("[idhub]\ndelete_after_days = 30\n", "delete_after_days", 2),
        ('[idhub]\nleaver = "delete"\ndelete_after_days = 30\n', "delete_after_days", 3),
    ],
    ids=[
        "unknown-policy",
        "policy-a-number",
        "days-too-many",
        "days-negative",
        "days-a-string",
        "days-a-bool",
        "days-without-disable",
        "days-with-delete",
    ],
)
def test_a_bad_leaver_policy_is_one_line_naming_the_key_and_its_line(
    aws: EmbeddedAWS, tmp_path: Path, text: str, key: str, line: int
) -> None:
    hub = hub_for(aws, tmp_path, text)
    message = error_line(hub.run("identity", "list", expect=2))
    assert key in message
    assert f"({hub.config} line {line})" in message
    assert message.count(" line ") == 1


def _never_opened(settings: Mapping[str, Any]) -> Connector:
    raise AssertionError("the policy is refused before any connector is opened")


class _NoDisable:
    """A plugin whose connector type cannot disable accounts."""

    @hookimpl
    def register_connectors(self, register: Any) -> None:
        register(
            ConnectorType(
                name="no-disable",
                description="cannot disable",
                capabilities=frozenset(Capability) - {Capability.DISABLE, Capability.ENABLE},
                open=_never_opened,
            )
        )


def test_the_disable_policy_is_refused_at_load_for_a_connector_that_cannot_disable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "get_plugin_manager", lambda: get_plugin_manager([_NoDisable()]))
    config = tmp_path / "hostsim.toml"
    config.write_text('[idhub]\nstale_days = 3\nleaver = "disable"\n', encoding="utf-8")
    state = tmp_path / "state.sqlite3"
    line = ["--connector", "no-disable", "--config", str(config), "--state", str(state)]
    code = cli.main(["identity", "list", *line, "--as", "admin@example.com"])
    assert code == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("hostsim: error: leaver: ")
    assert "connector 'no-disable' cannot" in message and 'set leaver = "delete"' in message
    assert message.endswith(f"({config} line 3)")
    assert message.count(" line ") == 1
    assert not state.exists()  # refused before the state file was touched
    # the default policy needs nothing more than delete
    config.write_text("[idhub]\nstale_days = 3\n", encoding="utf-8")
    assert cli.main(["identity", "list", *line, "--as", "admin@example.com"]) == 0


# --- 2. identity remove -------------------------------------------------------------------


def test_by_default_a_leaver_is_deleted_at_once_as_before(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    hub = hub_for(aws, tmp_path)
    provision(hub, iam, "ann")
    name = user_name(hub, "ann")
    left = hub.json("identity", "remove", email("ann"))
    assert left["leaver"] == {
        "policy": "delete",
        "done": "deleted",
        "account": name,
        "delete_due": None,
    }
    assert left["account"]["operation"] == "delete"
    assert name not in user_names(iam)
    assert people(hub)[email("ann")]["account"] is None
    assert hub.json("access", email("ann")) == []


def test_under_disable_a_leaver_is_disabled_kept_linked_and_their_grants_closed(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    hub = hub_for(aws, tmp_path, DISABLE)
    provision(hub, iam, "ann")
    name = user_name(hub, "ann")
    group(iam, "admins")
    hub.run("catalog", "sync")
    hub.people(email("boss"))
    hub.run("identity", "modify", email("ann"), "--manager", email("boss"))
    waiting = hub.json(
        "request", "submit", "group:admins", "--justification", "x", as_=email("ann")
    )
    assert waiting["status"] == "pending"
    aws.clear_calls()

    left = hub.json("identity", "remove", email("ann"))

    person = left["identity"]
    assert person["left_at"]
    assert left["leaver"]["policy"] == "disable"
    assert left["leaver"]["done"] == "disabled"
    assert left["leaver"]["account"] == name
    due = datetime.strptime(left["leaver"]["delete_due"], "%Y-%m-%dT%H:%M:%SZ")
    left_at = datetime.strptime(person["left_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert timedelta(days=30) <= due - left_at <= timedelta(days=30, seconds=5)
    assert left["account"]["operation"] == "disable"
    # IAM: the user is still there, denied everything, and lost nothing
    assert name in user_names(iam)
    assert DENY in inline_policies(iam, name)
    assert groups_of(iam, name) == {"developers"}
    assert fetched_users(hub)[name]["enabled"] is False
    assert "DeleteUser" not in writes(aws)
    # IDHub: the account stays linked and marked disabled; access and requests are closed
    row = people(hub)[email("ann")]
    assert row["account"] == name
    assert row["disabled_at"] is not None
    assert row["delete_due"] == left["leaver"]["delete_due"]
    assert hub.json("access", email("ann")) == []
    assert hub.json("request", "show", str(waiting["id"]))["status"] == "withdrawn"
    (entry,) = [e for e in hub.json("audit") if e["action"] == "identity.leave"]
    assert entry["result"] == "done"
    assert entry["detail"]["policy"] == "disable"
    assert entry["detail"]["delete_due"] == left["leaver"]["delete_due"]

    # a re-run changes nothing and keeps the deletion's due date
    again = hub.json("identity", "remove", email("ann"))
    assert again["leaver"]["done"] == "disabled"
    assert again["leaver"]["delete_due"] == left["leaver"]["delete_due"]
    assert all(step["status"] == "unchanged" for step in again["account"]["steps"])


def test_the_table_output_says_what_was_done_and_when_the_deletion_is_due(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    hub = hub_for(aws, tmp_path, DISABLE)
    provision(hub, iam, "ann")
    hub.people(email("bob"))  # no account
    name = user_name(hub, "ann")
    out = hub.run("identity", "remove", email("ann")).stdout
    due = people(hub)[email("ann")]["delete_due"]
    assert (
        f"account {name}: disabled (leaver policy disable); deletion due on {due}, by "
        "`hostsim reconcile --remediate delete-orphans`"
    ) in out
    assert "account: none to disable" in hub.run("identity", "remove", email("bob")).stdout
    deleted = with_config(hub, "")
    hub.people(email("cat"))
    assert "account: none to delete" in deleted.run("identity", "remove", email("cat")).stdout


# --- 3. reconciliation ----------------------------------------------------------------------


def test_a_disabled_leaver_is_no_drift_until_due_then_delete_orphans_deletes_it(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    hub = hub_for(aws, tmp_path, DISABLE)
    provision(hub, iam, "ann", "bob")
    name = user_name(hub, "ann")
    hub.run("identity", "remove", email("ann"))

    # within the grace period: expected, not drift, and nothing is changed whatever is asked
    days_pass(hub, "ann", 29)
    aws.clear_calls()
    report = hub.json("reconcile", *EVERYTHING)
    assert report["status"] == "complete"
    assert report["findings"] == []
    assert writes(aws) == []
    assert name in user_names(iam)

    # due: a leaver's account, reported, then deleted by delete-orphans
    days_pass(hub, "ann", 1.1)
    (finding,) = findings_for(hub.json("reconcile"), "ann")
    assert (finding["kind"], finding["subject"], finding["action"]) == (
        "leaver-account",
        name,
        "report",
    )
    assert "was due to be deleted on" in finding["detail"]
    refused = hub.json("reconcile", "--remediate", "delete-orphans", expect=2)
    assert refused["status"] == "refused"  # one of two accounts: over the 20% threshold
    assert name in user_names(iam)
    report = hub.json("reconcile", "--remediate", "delete-orphans", "--deletion-threshold", "50")
    (finding,) = findings_for(report, "ann")
    assert (finding["action"], finding["outcome"]) == ("delete", "done")
    assert name not in user_names(iam)
    assert people(hub)[email("ann")]["account"] is None
    assert hub.json("reconcile")["findings"] == []


def test_delete_after_zero_days_deletes_at_the_next_reconciliation(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    hub = hub_for(aws, tmp_path, '[idhub]\nleaver = "disable"\ndelete_after_days = 0\n')
    provision(hub, iam, "ann")
    name = user_name(hub, "ann")
    left = hub.json("identity", "remove", email("ann"))
    assert left["leaver"]["delete_due"] == people(hub)[email("ann")]["disabled_at"]
    assert name in user_names(iam)
    (finding,) = findings_for(hub.json("reconcile", *EVERYTHING), "ann")
    assert (finding["kind"], finding["action"], finding["outcome"]) == (
        "leaver-account",
        "delete",
        "done",
    )
    assert name not in user_names(iam)


def test_an_enabled_account_of_a_leaver_is_drift_re_disabled_under_disable(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    hub = hub_for(aws, tmp_path, DISABLE)
    provision(hub, iam, "ann")
    name = user_name(hub, "ann")
    hub.run("identity", "remove", email("ann"))
    iam.delete_user_policy(UserName=name, PolicyName=DENY)  # re-enabled behind IDHub's back
    assert fetched_users(hub)[name]["enabled"] is True

    (finding,) = findings_for(hub.json("reconcile"), "ann")
    assert (finding["kind"], finding["subject"], finding["action"]) == (
        "leaver-account",
        name,
        "report",
    )
    assert "is enabled" in finding["detail"] and "disable it" in finding["detail"]
    report = hub.json("reconcile", "--remediate", "delete-orphans")
    (finding,) = findings_for(report, "ann")
    assert (finding["action"], finding["outcome"]) == ("disable", "done")
    assert DENY in inline_policies(iam, name)
    assert name in user_names(iam)  # disabled again, not deleted: not due yet
    assert hub.json("reconcile")["findings"] == []


def test_under_the_delete_policy_a_leavers_account_is_drift_deleted(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    """A policy change: accounts left disabled under ``disable`` are leavers' accounts to
    delete once the policy is ``delete``, enabled or disabled."""
    hub = hub_for(aws, tmp_path, DISABLE)
    provision(hub, iam, "ann", "bob")
    ann, bob = user_name(hub, "ann"), user_name(hub, "bob")
    hub.run("identity", "remove", email("ann"))
    hub.run("identity", "remove", email("bob"))
    iam.delete_user_policy(UserName=bob, PolicyName=DENY)
    hub = with_config(hub, "[idhub]\ndeletion_threshold = 100\n")

    report = hub.json("reconcile")
    kinds = {(f["account"], f["kind"], f["action"]) for f in report["findings"]}
    assert kinds == {
        (email("ann"), "leaver-account", "report"),
        (email("bob"), "leaver-account", "report"),
    }
    (finding,) = findings_for(report, "bob")
    assert "(enabled)" in finding["detail"]
    report = hub.json("reconcile", "--remediate", "delete-orphans")
    assert {(f["action"], f["outcome"]) for f in report["findings"]} == {("delete", "done")}
    assert {ann, bob}.isdisjoint(user_names(iam))


def test_a_disabled_account_of_a_current_identity_is_drift_restore_enables_it(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    hub = hub_for(aws, tmp_path)
    provision(hub, iam, "ann")
    name = user_name(hub, "ann")
    hub.run("disable", email("ann"))  # the connector's disable, outside IDHub
    assert fetched_users(hub)[name]["enabled"] is False

    (finding,) = findings_for(hub.json("reconcile"), "ann")
    assert (finding["kind"], finding["subject"], finding["idhub"], finding["app"]) == (
        "disabled-account",
        name,
        "enabled",
        "disabled",
    )
    assert finding["action"] == "report"
    report = hub.json("reconcile", "--remediate", "restore")
    (finding,) = findings_for(report, "ann")
    assert (finding["action"], finding["outcome"]) == ("enable", "done")
    assert DENY not in inline_policies(iam, name)
    assert fetched_users(hub)[name]["enabled"] is True
    assert hub.json("reconcile")["findings"] == []


def test_a_leave_killed_after_its_intent_is_finished_by_reconciliation_or_a_re_run(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    hub = hub_for(aws, tmp_path, DISABLE)
    provision(hub, iam, "ann")
    name = user_name(hub, "ann")
    killed_at_first(hub, "PutUserPolicy", "identity", "remove", email("ann"))
    row = people(hub)[email("ann")]
    assert row["left_at"] is not None  # the intent came first
    assert row["disabled_at"] is None
    # whatever IAM did with the dead client's request, the leave is unfinished: drift
    (finding,) = findings_for(hub.json("reconcile"), "ann")
    assert (finding["kind"], finding["action"]) == ("leaver-account", "report")
    report = hub.json("reconcile", "--remediate", "delete-orphans")
    (finding,) = findings_for(report, "ann")
    assert finding["action"] == "disable"
    assert finding["outcome"] in ("done", "unchanged")
    assert DENY in inline_policies(iam, name)
    row = people(hub)[email("ann")]
    assert row["disabled_at"] is not None and row["account"] == name
    assert hub.json("access", email("ann")) == []
    assert hub.json("reconcile")["findings"] == []
    # and a re-run of the leave agrees
    assert hub.json("identity", "remove", email("ann"))["leaver"]["done"] == "disabled"


# --- 4. a leaver always wins, under disable too ---------------------------------------------

#: The round trip of every IAM request while a race is set up (as in test_leaver_races).
SLOW = 1.5


def scalar(hub: IDHub, sql: str, *params: object) -> Any:
    rows = query(hub, sql, *params)
    return rows[0][0] if rows else None


def test_a_leaver_during_a_create_in_flight_wins_and_there_is_nothing_left_to_disable(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    hub = hub_for(aws, tmp_path, DISABLE)
    group(iam, "developers", policy(iam, "reports-read"))
    hub.run("catalog", "sync")
    hub.people(email("boss"))
    hub.people(email("ann"), manager=email("boss"))
    request = hub.json("request", "submit", DEVELOPERS, "--justification", "team", as_=email("ann"))
    aws.request_delay = SLOW
    approve = hub.popen("request", "approve", str(request["id"]), as_=email("boss"))
    wait_for(
        lambda: scalar(hub, "SELECT attempts FROM requests WHERE id = ?", request["id"]) > 0,
        "the fulfilment to start",
    )
    leaver = leave_while(hub, approve, email("ann"))

    code, _, stderr = finished(approve)
    assert code == 1, stderr
    assert "the account it created was deleted" in stderr
    left, stderr = waited_leave(leaver)
    assert left["leaver"] == {
        "policy": "disable",
        "done": "none",
        "account": None,
        "delete_due": None,
    }
    assert email("ann") not in {n.lower() for n in user_names(iam)}
    assert people(hub)[email("ann")]["account"] is None
    assert findings_for(hub.json("reconcile"), "ann") == []


def test_a_leaver_during_a_grant_in_flight_wins_and_the_account_is_disabled(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    hub = hub_for(aws, tmp_path, DISABLE)
    provision(hub, iam, "ann")
    name = user_name(hub, "ann")
    group(iam, "admins")
    hub.run("catalog", "sync")
    hub.run("catalog", "set", "group:admins", "--approval", "auto")
    aws.request_delay = SLOW
    grant = hub.popen("request", "submit", "group:admins", "--for", email("ann"),
                      "--justification", "ops")  # fmt: skip
    wait_for(
        lambda: (scalar(hub, "SELECT MAX(attempts) FROM requests WHERE entitlement = ?",
                        "group:admins") or 0) > 0,
        "the fulfilment to start",
    )  # fmt: skip
    leaver = leave_while(hub, grant, email("ann"))

    code, _, stderr = finished(grant)
    assert code == 1, stderr
    assert "the access it granted was revoked" in stderr
    left, stderr = waited_leave(leaver)
    assert left["undone"] and "the access it granted was revoked" in left["undone"][0]
    assert left["leaver"]["done"] == "disabled"
    assert groups_of(iam, name) == {"developers"}  # kept by the disable; admins taken back
    assert DENY in inline_policies(iam, name)
    assert hub.json("access", email("ann")) == []
    assert findings_for(hub.json("reconcile"), "ann") == []
