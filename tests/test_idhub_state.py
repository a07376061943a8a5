"""IDHub's state file and what lives in it: schema migrations, the append-only audit log, the
``[idhub]`` settings, where the file is, identities, the catalog and approval chains.

Storage rules are checked in-process against :mod:`hostsim.core` (fast, exact); what an
operator sees (exit codes, one error line, the file's line) through the installed ``hostsim``
script, one fresh process per command as after a restart.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from idhub_cli import HOSTSIM, IDHub
from seeding import group, groups_of, policy, user_names

from hostsim import cli
from hostsim.contract.errors import ConfigurationError, InvalidInput, NotFound, Refused
from hostsim.contract.model import Step, StepStatus
from hostsim.core import audit, identities
from hostsim.core.catalog import Entitlement
from hostsim.core.identities import Identity
from hostsim.core.requests import resolve_chain
from hostsim.core.settings import CoreSettings, SyncDirection, load_core_settings
from hostsim.core.state import State
from hostsim.core.store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Migration,
    default_path,
    migrate,
    open_state,
    schema_version,
)
from hostsim.embedded_aws import EmbeddedAWS
from hostsim.redaction import MASK, Redactor

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

TABLES = {
    "identities",
    "accounts",
    "entitlements",
    "requests",
    "approvals",
    "grants",
    "reconciliation_runs",
    "reconciliation_findings",
    "audit",
}
SECRET = "AKIAFAKESECRET123"


# --- helpers --------------------------------------------------------------------------


def _tables(db: sqlite3.Connection) -> set[str]:
    rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {row[0] for row in rows} - {"sqlite_sequence"}


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def _state(path: Path, redact: Redactor | None = None) -> State:
    return State.open(path, actor="admin@example.com", application="aws-iam", redact=redact)


def _raw_audit(path: Path) -> list[sqlite3.Row]:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        return db.execute("SELECT * FROM audit ORDER BY seq").fetchall()
    finally:
        db.close()


def _error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The single ``hostsim: error:`` line a refused command prints."""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("hostsim: error: "), done.stderr
    return lines[0]


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "idhub.toml"
    path.write_text(text, encoding="utf-8")
    return path


# --- 1. migrations ----------------------------------------------------------------------


def test_a_new_state_file_is_at_the_newest_schema_and_reopening_applies_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.sqlite3"
    db = open_state(path)
    try:
        assert schema_version(db) == SCHEMA_VERSION == MIGRATIONS[-1].version
        assert _tables(db) >= TABLES
        assert "left_at" in _columns(db, "identities")
        triggers = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
        assert triggers == {"audit_is_append_only_update", "audit_is_append_only_delete"}
        assert migrate(db, MIGRATIONS, path) == []
    finally:
        db.close()
    again = sqlite3.connect(path, isolation_level=None)  # as the next command finds it
    try:
        assert schema_version(again) == SCHEMA_VERSION
        assert migrate(again, MIGRATIONS, path) == []
    finally:
        again.close()


def test_a_version_1_file_with_data_is_migrated_keeping_the_data(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    old = open_state(path, MIGRATIONS[:1])
    assert schema_version(old) == 1
    assert "left_at" not in _columns(old, "identities")
    old.execute(
        "INSERT INTO identities (email, first_name, attributes, created_at, updated_at) "
        "VALUES ('ann@example.com', 'Ann', '{\"department\": \"Research\"}', 't0', 't0')"
    )
    old.close()

    db = sqlite3.connect(path, isolation_level=None)
    db.row_factory = sqlite3.Row
    try:
        assert migrate(db, MIGRATIONS, path) == [m.version for m in MIGRATIONS[1:]]
        assert schema_version(db) == SCHEMA_VERSION
        assert identities.get(db, "ann@example.com") == Identity(
            "ann@example.com", first_name="Ann", attributes={"department": "Research"}
        )
        row = db.execute("SELECT left_at, created_at FROM identities").fetchone()
        assert (row["left_at"], row["created_at"]) == (None, "t0")
    finally:
        db.close()


def test_a_file_from_a_newer_hostsim_is_refused_naming_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    newer = SCHEMA_VERSION + 5
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {newer}")
    db.commit()
    db.close()
    with pytest.raises(ConfigurationError) as caught:
        open_state(path)
    message = caught.value.message
    assert f"schema version {newer}" in message
    assert f"({SCHEMA_VERSION})" in message
    assert str(path) in message and "newer" in message
    check = sqlite3.connect(path)
    assert schema_version(check) == newer  # refused, not downgraded or migrated
    assert _tables(check) == set()
    check.close()


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    garbage = b"these bytes are not a SQLite database\x00\xff" * 64
    path.write_bytes(garbage)
    with pytest.raises(ConfigurationError, match=r"not usable.*not a database") as caught:
        open_state(path)
    assert str(path) in caught.value.message
    assert path.read_bytes() == garbage


@pytest.mark.parametrize("kind", ["newer", "garbage"])
def test_an_unusable_state_file_is_one_error_line_and_exit_2(
    aws: EmbeddedAWS, tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "state.sqlite3"
    if kind == "newer":
        db = sqlite3.connect(path)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        db.commit()
        db.close()
    else:
        path.write_bytes(b"not a database at all " * 100)
    line = _error_line(IDHub(aws, path).run("identity", "list", expect=2))
    assert str(path) in line
    if kind == "newer":
        assert f"version {SCHEMA_VERSION + 1}" in line and f"({SCHEMA_VERSION})" in line
    else:
        assert "not a database" in line


def test_a_failing_migration_is_rolled_back_entirely(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    open_state(path).close()
    broken = Migration(
        SCHEMA_VERSION + 1,
        "half done",
        "CREATE TABLE half_done (x INTEGER);\nINSERT INTO no_such_table VALUES (1);\n",
    )
    with pytest.raises(ConfigurationError, match="no_such_table"):
        open_state(path, (*MIGRATIONS, broken))
    db = open_state(path)
    try:
        assert schema_version(db) == SCHEMA_VERSION
        assert "half_done" not in _tables(db)
    finally:
        db.close()


def test_each_migration_is_its_own_step_so_a_later_failure_keeps_the_earlier_ones(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.sqlite3"
    broken = Migration(
        2, "bad", "ALTER TABLE identities ADD COLUMN half TEXT;\nSELECT * FROM nowhere;\n"
    )
    with pytest.raises(ConfigurationError, match="nowhere"):
        open_state(path, (MIGRATIONS[0], broken))
    db = sqlite3.connect(path)
    try:
        assert schema_version(db) == 1
        assert _tables(db) == TABLES
        assert "half" not in _columns(db, "identities")
    finally:
        db.close()


def test_a_process_that_waited_for_another_ones_migration_does_not_run_it_again(
    tmp_path: Path,
) -> None:
    """Two commands start on a new file: both read version 0, one migrates while the other
    waits for the write lock; the one that waited must find the work done."""
    path = tmp_path / "state.sqlite3"
    first = sqlite3.connect(path, isolation_level=None)
    first.execute("PRAGMA journal_mode = WAL")
    first.execute("BEGIN IMMEDIATE")
    second = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    waiting = threading.Event()
    second.set_trace_callback(lambda sql: waiting.set() if sql.startswith("BEGIN") else None)
    outcome: list[object] = []

    def second_process() -> None:
        try:
            outcome.append(migrate(second, MIGRATIONS, path))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=second_process)
    thread.start()
    try:
        assert waiting.wait(10), "the second connection never asked for the write lock"
        assert migrate(first, MIGRATIONS, path) == [m.version for m in MIGRATIONS]
        first.execute("COMMIT")
    finally:
        if first.in_transaction:
            first.execute("ROLLBACK")
        thread.join(20)
    assert outcome == [[]]
    assert schema_version(second) == SCHEMA_VERSION
    first.close()
    second.close()


# --- 2. the audit log ---------------------------------------------------------------------


def test_the_audit_log_refuses_update_and_delete_and_keeps_order(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    state = _state(path)
    try:
        for number in range(3):
            state.record(f"test.step{number}", "ann@example.com", "done", n=number)
        for sql in ("UPDATE audit SET result = 'forged'", "DELETE FROM audit"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                state.db.execute(sql)
        found = list(audit.entries(state.db))
        assert [e.action for e in found] == ["test.step0", "test.step1", "test.step2"]
        assert [e.detail for e in found] == [{"n": 0}, {"n": 1}, {"n": 2}]
        assert [e.result for e in found] == ["done"] * 3
        assert [e.seq for e in found] == sorted(e.seq for e in found)
        assert {e.actor for e in found} == {"admin@example.com"}
        newest = list(audit.entries(state.db, limit=2))
        assert [e.action for e in newest] == ["test.step1", "test.step2"]
    finally:
        state.close()


def test_audit_steps_are_stored_in_the_one_shape_or_not_at_all(tmp_path: Path) -> None:
    """Every reader of an entry relies on a step's action, target and status: an entry once
    written stays, so steps in any other shape are refused when they are written."""
    state = _state(tmp_path / "state.sqlite3")
    step = Step("delete user", "ann@example.com", StepStatus.DONE)
    try:
        state.record("identity.leave", "ann@example.com", "done", steps=audit.steps_data([step]))
        for wrong in (["delete user"], [{"action": "delete user"}], "delete user"):
            with pytest.raises(TypeError, match="steps_data"):
                state.record("identity.leave", "ann@example.com", "done", steps=wrong)
        (entry,) = audit.entries(state.db)
        assert entry.detail["steps"] == [
            {"action": "delete user", "target": "ann@example.com", "status": "done", "detail": ""}
        ]
    finally:
        state.close()


def test_a_known_secret_never_reaches_the_stored_audit_row(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    state = _state(path, redact=Redactor([SECRET]))
    try:
        state.record(
            "test.secret",
            f"subject {SECRET}",
            f"failed with {SECRET}",
            error=f"AccessDenied for key {SECRET}",
            nested={"steps": [{"detail": SECRET}]},
        )
    finally:
        state.close()
    (row,) = _raw_audit(path)
    assert SECRET not in "".join(str(value) for value in tuple(row))
    assert row["subject"] == f"subject {MASK}"
    assert row["result"] == f"failed with {MASK}"
    assert json.loads(row["detail"]) == {
        "error": f"AccessDenied for key {MASK}",
        "nested": {"steps": [{"detail": MASK}]},
    }


def test_a_secret_that_json_would_escape_is_masked_too(tmp_path: Path) -> None:
    """A password from the config may hold a quote, a backslash or a non-ASCII letter, which
    JSON writes escaped: the secret must be masked in the values, not only in the JSON text."""
    secret = 'Pässwort"mit\\Zeichen'
    path = tmp_path / "state.sqlite3"
    state = _state(path, redact=Redactor([secret]))
    try:
        state.record("test.secret", "x", "failed", error=f"login with {secret} refused")
    finally:
        state.close()
    (row,) = _raw_audit(path)
    assert secret not in row["detail"]
    assert json.dumps(secret)[1:-1] not in row["detail"]
    assert json.loads(row["detail"]) == {"error": f"login with {MASK} refused"}


def test_the_cli_audits_through_its_own_redactor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``hostsim`` knows AWS_SECRET_ACCESS_KEY as a secret; the audit writer uses that same
    redactor, so a value that happens to be the secret is masked in the stored entry."""
    path = tmp_path / "state.sqlite3"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    code = cli.main(
        [
            "identity",
            "add",
            "x@example.com",
            "--attr",
            f"department={SECRET}",
            "--state",
            str(path),
            "--as",
            "admin@example.com",
        ]
    )
    assert code == 0
    assert SECRET not in capsys.readouterr().out
    (row,) = _raw_audit(path)
    assert row["action"] == "identity.add"
    assert SECRET not in row["detail"]
    assert json.loads(row["detail"])["identity"]["attributes"] == {"department": MASK}


ECHOED = "Top#Secret#Value123"


def _request_failing_with_the_secret(
    aws: EmbeddedAWS, iam: IAMClient, path: Path
) -> subprocess.CompletedProcess[str]:
    """A request whose fulfilment fails with an error that echoes the process's AWS secret key
    (the connector refuses an attribute named like it, quoting the name)."""
    group(iam, "dev")
    hub = IDHub(aws, path, env={"AWS_SECRET_ACCESS_KEY": ECHOED})
    hub.run("identity", "add", "x@example.com", "--attr", f"{ECHOED}=yes")
    hub.run("catalog", "sync")
    hub.run("catalog", "set", "group:dev", "--approval", "auto")
    return hub.run(
        "request",
        "submit",
        "group:dev",
        "--for",
        "x@example.com",
        "--justification",
        "work",
        expect=1,
    )


def test_a_connector_error_echoing_a_secret_is_masked_in_the_audit(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    path = tmp_path / "state.sqlite3"
    done = _request_failing_with_the_secret(aws, iam, path)
    assert f"tag key '{MASK}'" in done.stdout
    assert ECHOED not in done.stdout + done.stderr
    rows = _raw_audit(path)
    assert all(ECHOED not in "".join(str(v) for v in tuple(row)) for row in rows)
    (fulfil,) = [row for row in rows if row["action"] == "fulfil.grant"]
    assert fulfil["result"] == "failed"
    assert f"tag key '{MASK}'" in json.loads(fulfil["detail"])["error"]


def test_a_connector_error_echoing_a_secret_is_masked_in_the_request_too(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    path = tmp_path / "state.sqlite3"
    _request_failing_with_the_secret(aws, iam, path)
    db = sqlite3.connect(path)
    try:
        (reason,) = db.execute("SELECT reason FROM requests").fetchone()
    finally:
        db.close()
    assert f"tag key '{MASK}'" in reason


# --- 3. the [idhub] settings --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("[idhub]\nstale_dayz = 3\n", "stale_dayz", 2),
        ('[idhub]\nstale_days = "3"\n', "stale_days", 2),
        ("[idhub]\n\ndeletion_threshold = 300\n", "deletion_threshold", 3),
        ("[idhub]\nstale_days = -1\n", "stale_days", 2),
        ('[idhub]\nstale_days = 1\n[idhub.sync]\ndisplay_name = "sideways"\n', "display_name", 4),
        ('[idhub.sync]\nfirst_name = "no-sync"\nemail = "app-to-idhub"\n', "email", 3),
        ('[idhub]\ndefault_approval = ["manager", "boss"]\n', "default_approval", 2),
        ('[idhub]\ndefault_approval = ["auto", "manager"]\n', "default_approval", 2),
    ],
    ids=[
        "unknown-key",
        "wrong-type",
        "threshold-300",
        "stale-negative",
        "bad-direction",
        "email-app-to-idhub",
        "unknown-step",
        "auto-with-steps",
    ],
)
def test_a_bad_idhub_table_is_one_line_naming_the_key_and_its_line(
    aws: EmbeddedAWS, tmp_path: Path, text: str, key: str, line: int
) -> None:
    config = _config(tmp_path, text)
    hub = IDHub(aws, tmp_path / "state.sqlite3", config=config)
    message = _error_line(hub.run("identity", "list", expect=2))
    assert key in message
    assert f"({config} line {line})" in message


def test_the_line_of_a_bad_idhub_key_is_given_once(aws: EmbeddedAWS, tmp_path: Path) -> None:
    config = _config(tmp_path, "[idhub]\nstale_days = -1\n")
    hub = IDHub(aws, tmp_path / "state.sqlite3", config=config)
    message = _error_line(hub.run("identity", "list", expect=2))
    assert message.count(f"({config} line 2)") == 1


def test_an_idhub_key_that_is_not_a_table_is_refused_not_a_crash(
    aws: EmbeddedAWS, tmp_path: Path
) -> None:
    config = _config(tmp_path, "idhub = 3\n")
    message = _error_line(
        IDHub(aws, tmp_path / "state.sqlite3", config=config).run("identity", "list", expect=2)
    )
    assert "'idhub'" in message and "table" in message


def test_settings_are_structured_with_their_defaults() -> None:
    assert load_core_settings({}) == CoreSettings()
    settings = load_core_settings(
        {
            "default_approval": ["Sec@Example.com", "owner"],
            "stale_days": 0,
            "deletion_threshold": 100,
            "sync": {"display_name": "bi-directional", "email": "no-sync"},
        }
    )
    assert settings.default_approval == ("sec@example.com", "owner")
    assert settings.direction("display_name") is SyncDirection.BIDIRECTIONAL
    assert settings.direction("first_name") is SyncDirection.IDHUB_TO_APP
    assert (settings.stale_days, settings.deletion_threshold) == (0, 100)


def test_a_valid_idhub_table_leaves_the_connectors_own_table_working(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    reports = policy(iam, "reports-read")
    group(iam, "dev", reports)
    config = _config(
        tmp_path,
        '[aws-iam]\ncustomer_managed_policies = "none"\n\n'
        '[idhub]\ndefault_approval = ["owner"]\nstale_days = 3\ndeletion_threshold = 50\n\n'
        '[idhub.sync]\ndisplay_name = "bi-directional"\n',
    )
    hub = IDHub(aws, tmp_path / "state.sqlite3", config=config)
    summary = hub.json("catalog", "sync")
    # [aws-iam] was read: customer-managed policies are not listed, so not in the catalog
    assert summary["added"] == ["group:dev"]
    (entry,) = hub.json("catalog", "list")
    assert entry["carries"] == [f"policy:{reports}"]
    # [idhub] was read too
    assert entry["effective_approval"] == ["owner"]


# --- 4. where the state file is -----------------------------------------------------------


def test_default_path_prefers_idhub_state_then_xdg_then_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    both = {"IDHUB_STATE": "/srv/idhub/s.db", "XDG_STATE_HOME": "/var/xdg"}
    assert default_path(both) == Path("/srv/idhub/s.db")
    assert default_path({"XDG_STATE_HOME": "/var/xdg"}) == Path("/var/xdg/hostsim/state.sqlite3")
    monkeypatch.setenv("HOME", str(tmp_path))
    home = tmp_path / ".local" / "state" / "hostsim" / "state.sqlite3"
    assert default_path({}) == home
    assert default_path({"IDHUB_STATE": "", "XDG_STATE_HOME": ""}) == home


def _hostsim(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HOSTSIM, *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_cli_uses_idhub_state_and_idhub_actor_when_not_given(tmp_path: Path) -> None:
    state = tmp_path / "elsewhere" / "idhub.sqlite3"
    env = {
        "HOME": str(tmp_path / "home"),
        "IDHUB_STATE": str(state),
        "IDHUB_ACTOR": "Ops.Lead@Example.com",
    }
    done = _hostsim(env, "identity", "add", "ann@example.com")
    assert done.returncode == 0, done.stderr
    assert state.exists()
    assert not (tmp_path / "home" / ".local").exists()
    (row,) = _raw_audit(state)
    assert (row["actor"], row["action"], row["subject"]) == (
        "ops.lead@example.com",
        "identity.add",
        "ann@example.com",
    )


def test_the_cli_falls_back_to_xdg_state_home_and_as_wins_over_idhub_actor(
    tmp_path: Path,
) -> None:
    env = {
        "HOME": str(tmp_path / "home"),
        "XDG_STATE_HOME": str(tmp_path / "xdg"),
        "IDHUB_ACTOR": "nobody@example.com",
    }
    done = _hostsim(env, "identity", "add", "ann@example.com", "--as", "admin@example.com")
    assert done.returncode == 0, done.stderr
    (row,) = _raw_audit(tmp_path / "xdg" / "hostsim" / "state.sqlite3")
    assert row["actor"] == "admin@example.com"


# --- 5. identities -------------------------------------------------------------------------


def test_identity_rules_through_the_cli(aws: EmbeddedAWS, tmp_path: Path) -> None:
    hub = IDHub(aws, tmp_path / "state.sqlite3")
    assert "not an email address" in _error_line(
        hub.run("identity", "add", "not-an-email", expect=2)
    )
    hub.run("identity", "add", "ann@example.com")
    assert "exists already" in _error_line(hub.run("identity", "add", "ANN@Example.COM", expect=2))
    line = _error_line(
        hub.run("identity", "add", "bob@example.com", "--manager", "ghost@example.com", expect=2)
    )
    assert "ghost@example.com" in line
    hub.run("identity", "add", "bob@example.com", "--manager", "ann@example.com")
    assert "loop" in _error_line(
        hub.run("identity", "modify", "ann@example.com", "--manager", "bob@example.com", expect=2)
    )
    assert "loop" in _error_line(
        hub.run("identity", "add", "cy@example.com", "--manager", "cy@example.com", expect=2)
    )
    people = {p["email"]: p["manager"] for p in hub.json("identity", "list")}
    assert people == {"ann@example.com": None, "bob@example.com": "ann@example.com"}


def test_modify_clears_a_value_given_as_empty(aws: EmbeddedAWS, tmp_path: Path) -> None:
    hub = IDHub(aws, tmp_path / "state.sqlite3")
    hub.people("ann@example.com")
    hub.run(
        "identity",
        "add",
        "dee@example.com",
        "--display-name",
        "Dee Dee",
        "--manager",
        "ann@example.com",
        "--attr",
        "department=Research",
        "--attr",
        "site=Paris",
    )
    changed = hub.json(
        "identity",
        "modify",
        "dee@example.com",
        "--display-name",
        "",
        "--manager",
        "",
        "--attr",
        "department=",
    )
    person = changed["identity"]
    assert person["display_name"] is None
    assert person["manager"] is None
    assert person["attributes"] == {"site": "Paris"}


def test_identity_rules_in_process(tmp_path: Path) -> None:
    state = _state(tmp_path / "state.sqlite3")
    try:
        identities.add(state, Identity("Ann@Example.com"))
        assert identities.get(state.db, "ANN@example.com").email == "ann@example.com"
        with pytest.raises(InvalidInput, match="manager 'boss' is not an email"):
            identities.add(state, Identity("bob@example.com", manager="boss"))
        with pytest.raises(NotFound, match=r"ghost@example\.com"):
            identities.modify(state, "ann@example.com", {"manager": "ghost@example.com"})
        identities.add(state, Identity("bob@example.com", manager="ann@example.com"))
        identities.add(state, Identity("cy@example.com", manager="bob@example.com"))
        with pytest.raises(InvalidInput, match="loop"):  # a -> c -> b -> a
            identities.modify(state, "ann@example.com", {"manager": "cy@example.com"})
        assert identities.get(state.db, "ann@example.com").manager is None
        # the refused changes left no audit entry; the three additions did
        assert [e.action for e in audit.entries(state.db)] == ["identity.add"] * 3
    finally:
        state.close()


# --- 6. the catalog -------------------------------------------------------------------------


def test_catalog_sync_keeps_what_idhub_decided_and_marks_what_is_gone(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    reports = policy(iam, "reports-read")
    billing = policy(iam, "billing-view")
    group(iam, "dev", reports)
    group(iam, "ops")
    hub = IDHub(aws, tmp_path / "state.sqlite3")
    hub.people("owner@example.com", "boss@example.com")
    hub.people("x@example.com", manager="boss@example.com")

    summary = hub.json("catalog", "sync")
    assert sorted(summary["added"]) == sorted(
        ["group:dev", "group:ops", f"policy:{reports}", f"policy:{billing}"]
    )
    listed = {e["id"]: e for e in hub.json("catalog", "list")}
    assert listed["group:dev"]["carries"] == [f"policy:{reports}"]
    assert listed["group:ops"]["carries"] == []
    assert listed[f"policy:{reports}"]["kind"] == "policy"
    assert listed[f"policy:{reports}"]["name"] == "reports-read"
    assert all(e["present"] for e in listed.values())

    hub.run("catalog", "set", "group:ops", "--owner", "owner@example.com", "--approval", "owner")
    # the short form finds the policy by name when exactly one has it
    entry = hub.json("catalog", "set", "policy:reports-read", "--owner", "OWNER@example.com")
    assert (entry["id"], entry["owner"]) == (f"policy:{reports}", "owner@example.com")

    iam.attach_group_policy(GroupName="ops", PolicyArn=billing)
    iam.detach_group_policy(GroupName="dev", PolicyArn=reports)
    iam.delete_group(GroupName="dev")
    summary = hub.json("catalog", "sync")
    assert summary["removed"] == ["group:dev"]
    assert summary["updated"] == ["group:ops"]
    listed = {e["id"]: e for e in hub.json("catalog", "list")}
    assert listed["group:ops"]["carries"] == [f"policy:{billing}"]
    assert listed["group:ops"]["owner"] == "owner@example.com"
    assert listed["group:ops"]["approval_chain"] == ["owner"]
    assert listed[f"policy:{reports}"]["owner"] == "owner@example.com"
    assert listed["group:dev"]["present"] is False

    line = _error_line(
        hub.run(
            "request",
            "submit",
            "group:dev",
            "--for",
            "x@example.com",
            "--justification",
            "work",
            expect=2,
        )
    )
    assert "group:dev" in line and "no longer" in line
    assert hub.json("request", "list") == []


def test_catalog_set_refuses_unknown_steps_owners_and_ambiguous_names(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    group(iam, "auditors", "arn:aws:iam::aws:policy/SecurityAudit")
    own = policy(iam, "SecurityAudit")  # a customer policy named like the AWS-managed one
    hub = IDHub(aws, tmp_path / "state.sqlite3")
    hub.people("owner@example.com")
    hub.run("catalog", "sync")

    refused = [
        (("group:auditors", "--approval", "manager,boss"), "boss"),
        (("group:auditors", "--approval", "auto,owner"), "auto"),
        (("group:auditors", "--approval", "nobody@example.com"), "nobody@example.com"),
        (("group:auditors", "--owner", "ghost@example.com"), "ghost@example.com"),
        (("policy:SecurityAudit", "--owner", "owner@example.com"), "not in the catalog"),
        (("group:nothing", "--owner", "owner@example.com"), "not in the catalog"),
    ]
    for args, fragment in refused:
        assert fragment in _error_line(hub.run("catalog", "set", *args, expect=2)), args
    listed = {e["id"]: e for e in hub.json("catalog", "list")}
    assert listed["group:auditors"]["owner"] is None
    assert listed["group:auditors"]["approval_chain"] is None
    # the full id still reaches the customer policy
    entry = hub.json("catalog", "set", f"policy:{own}", "--owner", "owner@example.com")
    assert entry["owner"] == "owner@example.com"


def test_a_missing_owner_refuses_the_request_and_auto_fulfils_it_at_once(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    group(iam, "dev")
    hub = IDHub(aws, tmp_path / "state.sqlite3")
    hub.people("boss@example.com")
    hub.people("x@example.com", manager="boss@example.com")
    hub.run("catalog", "sync")
    hub.run("catalog", "set", "group:dev", "--approval", "manager,owner")
    submit = ("request", "submit", "group:dev", "--for", "x@example.com", "--justification", "w")
    line = _error_line(hub.run(*submit, expect=2))
    assert "group:dev has no owner" in line and "catalog set group:dev --owner" in line
    assert hub.json("request", "list") == []
    assert "x@example.com" not in user_names(iam)

    hub.run("catalog", "set", "group:dev", "--approval", "auto")
    request = hub.json(*submit)
    assert request["status"] == "complete"
    assert request["approvals"] == []
    assert groups_of(iam, "x@example.com") == {"dev"}


# --- 7. approval chains -------------------------------------------------------------------


@pytest.fixture
def people(tmp_path: Path) -> State:
    """A state with boss (manages x), owner, and sec (a named approver)."""
    state = _state(tmp_path / "state.sqlite3")
    for email in ("boss@example.com", "owner@example.com", "sec@example.com"):
        identities.add(state, Identity(email))
    identities.add(state, Identity("x@example.com", manager="boss@example.com"))
    return state


def _entry(chain: tuple[str, ...] | None, owner: str | None = None) -> Entitlement:
    return Entitlement("group:dev", "group", "dev", owner=owner, approval_chain=chain)


def _chain(state: State, entitlement: Entitlement) -> list[tuple[str, str]]:
    return resolve_chain(state, identities.get(state.db, "x@example.com"), entitlement)


def test_the_same_person_in_two_steps_is_asked_once(people: State) -> None:
    both = _entry(("manager", "owner"), owner="boss@example.com")
    assert _chain(people, both) == [("manager+owner", "boss@example.com")]
    apart = _entry(("manager", "owner"), owner="owner@example.com")
    assert _chain(people, apart) == [
        ("manager", "boss@example.com"),
        ("owner", "owner@example.com"),
    ]
    people.close()


def test_auto_a_named_approver_and_the_default_chain(people: State) -> None:
    assert _chain(people, _entry(("auto",))) == []
    assert _chain(people, _entry(("sec@example.com",))) == [("named", "sec@example.com")]
    assert _chain(people, _entry(("manager", "boss@example.com"))) == [
        ("manager+named", "boss@example.com")
    ]
    # no chain of its own: [idhub] default_approval (manager)
    assert _chain(people, _entry(None)) == [("manager", "boss@example.com")]
    people.settings = CoreSettings(default_approval=("sec@example.com", "owner"))
    assert _chain(people, _entry(None, owner="owner@example.com")) == [
        ("named", "sec@example.com"),
        ("owner", "owner@example.com"),
    ]
    people.close()


def test_a_chain_that_names_nobody_or_the_beneficiary_is_refused(people: State) -> None:
    with pytest.raises(InvalidInput, match=r"group:dev has no owner.*--owner"):
        _chain(people, _entry(("manager", "owner")))
    with pytest.raises(NotFound, match=r"ghost@example\.com"):
        _chain(people, _entry(("ghost@example.com",)))
    with pytest.raises(Refused, match="approve their own access"):
        _chain(people, _entry(("owner",), owner="x@example.com"))
    boss = identities.get(people.db, "boss@example.com")
    with pytest.raises(InvalidInput, match="has no manager"):
        resolve_chain(people, boss, _entry(("manager",)))
    people.close()
