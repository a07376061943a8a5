"""Leavers always win: a person who left gets no account and no access, whatever was in flight.

The races are between two ``hostsim`` processes, as an operator would start them, against an
embedded AWS slowed down (``request_delay``) so that one command is still talking to IAM while
the other starts: no sleeps in the code under test. Once the leaver has recorded the leave
(its first step), the delay is lifted so the rest finishes quickly; the outcome no longer
depends on timing from there on, only on the locks and on who reads what when.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from idhub_cli import (
    IDHub,
    finished,
    killed_at_first,
    leave_while,
    left_at,
    query,
    wait_for,
    waited_leave,
)
from seeding import group, groups_of, policy, user_names

from hostsim.core import claims
from hostsim.embedded_aws import EmbeddedAWS

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

BOSS = "boss@example.com"
U7 = "u7@example.com"
GROUP = "developers"
GROUP_ID = f"group:{GROUP}"
#: The round trip of every IAM request while a race is set up.
SLOW = 1.5


@pytest.fixture
def hub(aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path) -> IDHub:
    """U7 (managed by Boss) and a catalog synced from IAM with group ``developers``."""
    idhub = IDHub(aws, tmp_path / "state.sqlite3")
    idhub.people(BOSS)
    idhub.people(U7, manager=BOSS)
    group(iam, GROUP, policy(iam, "reports-read"))
    idhub.run("catalog", "sync")
    return idhub


# --- helpers --------------------------------------------------------------------------------


def request_of(hub: IDHub, number: int) -> dict[str, Any]:
    request: dict[str, Any] = hub.json("request", "show", str(number))
    return request


def account_of(hub: IDHub, email: str) -> str | None:
    rows = hub.json("identity", "list")
    account: str | None = next(row["account"] for row in rows if row["email"] == email)
    return account


def nothing_left_for_u7(hub: IDHub, iam: IAMClient) -> None:
    """U7 left: no IAM user, no account record, no access, and reconciliation agrees."""
    assert U7 not in user_names(iam)
    assert account_of(hub, U7) is None
    assert hub.json("access", U7) == []
    report = hub.json("reconcile")
    assert [f for f in report["findings"] if f["account"] == U7] == []


# --- the races ------------------------------------------------------------------------------


def test_a_leaver_during_a_fulfilment_in_flight_wins_and_the_fulfilment_undoes_itself(
    hub: IDHub, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    request = hub.json(
        "request", "submit", GROUP_ID, "--for", U7, "--justification", "team", as_=U7
    )
    number = request["id"]
    aws.request_delay = SLOW
    approve = hub.popen("request", "approve", str(number), as_=BOSS)
    wait_for(
        lambda: query(hub, "SELECT attempts FROM requests WHERE id = ?", number)[0][0] > 0,
        "the fulfilment to start",
    )
    leaver = leave_while(hub, approve, U7)

    code, _, stderr = finished(approve)
    assert code == 1, stderr
    undone = "the account it created was deleted"
    assert (
        f"hostsim: error: request {number} was not carried out: undone: {U7} left while this "
        f"ran; {undone}" in stderr
    )
    left, stderr = waited_leave(leaver)
    assert "waiting for work in progress for them in another process" in stderr
    assert left["undone"] == [f"request {number} (grant {GROUP_ID}): {undone}"]
    assert left["identity"]["left_at"]

    shown = request_of(hub, number)
    assert shown["status"] == "withdrawn"
    assert shown["reason"] == f"undone: {U7} left while this ran; {undone}"
    assert [s["action"] for s in shown["steps"]][-1] == "delete user"
    (entry,) = [
        e for e in hub.json("audit", "--request", str(number)) if e["action"] == "fulfil.grant"
    ]
    assert entry["result"] == "undone"
    assert "account.link" not in [e["action"] for e in hub.json("audit", "--subject", U7)]
    nothing_left_for_u7(hub, iam)


def test_a_leaver_during_a_restoring_reconciliation_wins_and_the_remedy_undoes_itself(
    hub: IDHub, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    hub.run("catalog", "set", GROUP_ID, "--approval", "auto")
    granted = hub.json("request", "submit", GROUP_ID, "--for", U7, "--justification", "team")
    assert granted["status"] == "complete"
    iam.remove_user_from_group(GroupName=GROUP, UserName=U7)  # deleted out of band
    iam.delete_user(UserName=U7)

    aws.clear_calls()
    aws.request_delay = SLOW
    run = hub.popen("reconcile", "--remediate", "restore", "--json")
    wait_for(
        lambda: bool(query(hub, "SELECT 1 FROM audit WHERE action = 'reconcile.remedy'")),
        "the remedy to record its intent",
    )
    leaver = leave_while(hub, run, U7)

    code, stdout, stderr = finished(run)
    assert code == 0, stderr
    report = json.loads(stdout)
    (finding,) = [f for f in report["findings"] if f["account"] == U7]
    undone = "the account it created was deleted"
    assert (finding["kind"], finding["action"]) == ("missing-account", "create")
    assert finding["outcome"] == f"undone: {U7} left while this ran; {undone}"
    assert report["counts"] == {"create:undone": 1, "missing-account": 1}
    left, stderr = waited_leave(leaver)
    assert left["undone"] == [f"reconciliation run {report['run']} (create {U7}): {undone}"]
    nothing_left_for_u7(hub, iam)
    assert aws.calls().count("CreateUser") == 1  # the remedy's, undone; nothing made it again


# --- what a race (or a leaver killed halfway) can leave, and who finds it --------------------


def test_the_live_account_of_a_person_who_left_is_drift_and_a_rerun_of_the_leave_ends_it(
    hub: IDHub, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    hub.run("catalog", "set", GROUP_ID, "--approval", "auto")
    hub.run("request", "submit", GROUP_ID, "--for", U7, "--justification", "team")
    killed_at_first(hub, "GetUser", "identity", "remove", U7)  # after the leave's record
    assert left_at(hub, U7) is not None
    assert groups_of(iam, U7) == {GROUP}  # the account is still there

    report = hub.json("reconcile", "--remediate", "restore")
    (finding,) = report["findings"]
    assert (finding["account"], finding["kind"], finding["action"]) == (
        U7,
        "leaver-account",
        "report",
    )
    assert f"{U7} left on {left_at(hub, U7)}" in finding["detail"]
    aws.clear_calls()
    deleted = hub.json("reconcile", "--remediate", "delete-orphans", "--deletion-threshold", "100")
    assert deleted["counts"] == {"delete:done": 1, "leaver-account": 1}
    assert "CreateUser" not in aws.calls() and "AddUserToGroup" not in aws.calls()
    assert U7 not in user_names(iam)
    assert account_of(hub, U7) is None
    assert hub.json("access", U7) == []

    again = hub.json("identity", "remove", U7)  # finishes what the killed one began
    assert (again["waited"], again["undone"]) == (False, [])
    nothing_left_for_u7(hub, iam)


def test_work_that_finds_its_person_gone_before_it_starts_does_nothing(
    hub: IDHub, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    """A leaver killed after recording the leave: the approved request it never withdrew is
    withdrawn by the next resume without a call to IAM, and nothing can be approved for U7."""
    request = hub.json("request", "submit", GROUP_ID, "--for", U7, "--justification", "team")
    pending = hub.json(
        "request", "submit", "policy:reports-read", "--for", U7, "--justification", "reports"
    )
    with contextlib.closing(sqlite3.connect(hub.state)) as db, db:
        db.execute("UPDATE requests SET status = 'approved' WHERE id = ?", (request["id"],))
        db.execute("UPDATE identities SET left_at = '2030-01-01T00:00:00Z' WHERE email = ?", (U7,))
    aws.clear_calls()

    (resumed,) = hub.json("request", "resume")
    assert (resumed["id"], resumed["status"], resumed["reason"]) == (
        request["id"],
        "withdrawn",
        "the identity left",
    )
    done = hub.run("request", "approve", str(pending["id"]), as_=BOSS, expect=2)
    assert done.stderr.splitlines() == [
        f"hostsim: error: request {pending['id']} is for {U7}, who left on "
        "2030-01-01T00:00:00Z; it cannot be approved"
    ]
    assert request_of(hub, pending["id"])["status"] == "pending"
    with contextlib.closing(sqlite3.connect(hub.state)) as db, db:
        db.execute("UPDATE requests SET status = 'failed' WHERE id = ?", (pending["id"],))
    done = hub.run("request", "retry", str(pending["id"]), expect=2)
    assert done.stderr.splitlines()[-1].endswith("it cannot be retried")
    assert request_of(hub, pending["id"])["status"] == "failed"
    assert [a for a in aws.calls() if not a.startswith(("Get", "List"))] == []
    assert U7 not in user_names(iam)


# --- the locks themselves --------------------------------------------------------------------

HOLDS = """\
import sys
from pathlib import Path
from hostsim.core import claims
with claims.claim(Path(sys.argv[1]), 7) as mine:
    print("free" if mine else "held", flush=True)
"""


def test_a_lock_released_inside_another_keeps_the_outer_one_held(tmp_path: Path) -> None:
    """POSIX record locks belong to the process and closing any descriptor of the file drops
    them all: a person's lock ending inside a request's claim must not drop the claim."""
    state = tmp_path / "state.sqlite3"

    def seen_from_another_process() -> str:
        done = subprocess.run(
            [sys.executable, "-c", HOLDS, str(state)], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    with claims.claim(state, 7) as mine:
        assert mine
        with claims.person(state, U7, wait=0) as acting:
            assert acting
            with claims.person(state, U7, wait=0) as again:  # the same thread: re-entrant
                assert again
        assert seen_from_another_process() == "held"
    assert seen_from_another_process() == "free"
