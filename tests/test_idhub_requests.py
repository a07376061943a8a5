"""End to end: access requests on IDHub's side, through the installed ``hostsim`` command (one
fresh process per command, so the state file is reopened every time, as after a restart),
fulfilled through the connector against the embedded AWS over HTTP.

Every test looks at both sides: what IDHub recorded (the CLI's JSON) and what IAM holds (a
plain boto3 client).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from idhub_cli import IDHub
from seeding import ACCOUNT, direct_policies_of, group, groups_of, policy, tags_of, user_names

from hostsim.embedded_aws import Call, EmbeddedAWS

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

ADMIN = "admin@example.com"
ANN = "ann@example.com"
BOSS = "boss@example.com"
OWNER = "owner@example.com"
GROUP = "developers"
GROUP_ID = f"group:{GROUP}"
REPORTS = f"arn:aws:iam::{ACCOUNT}:policy/reports-read"
REPORTS_ID = f"policy:{REPORTS}"
#: IAM actions that only read; anything else the connector sends changes the account.
READ_PREFIXES = ("Get", "List", "Simulate")


@pytest.fixture(scope="module")
def people(embedded_aws: EmbeddedAWS, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state file with Ann (managed by Boss), Boss and an owner, made once for the module
    (adding people does not reach AWS); each test works on its own copy."""
    path = tmp_path_factory.mktemp("idhub") / "people.sqlite3"
    idhub = IDHub(embedded_aws, path)
    idhub.people(BOSS, OWNER)
    idhub.run(
        "identity",
        "add",
        ANN,
        "--manager",
        BOSS,
        "--first-name",
        "Ann",
        "--last-name",
        "Lee",
        "--attr",
        "department=Ops",
    )
    return path


@pytest.fixture
def hub(aws: EmbeddedAWS, iam: IAMClient, people: Path, tmp_path: Path) -> IDHub:
    """IDHub with its own copy of the people and a catalog synced from IAM, where group
    ``developers`` carries policy ``reports-read``."""
    state = tmp_path / "state.sqlite3"
    with (
        contextlib.closing(sqlite3.connect(people)) as source,
        contextlib.closing(sqlite3.connect(state)) as copy,
    ):
        source.backup(copy)
    group(iam, GROUP, policy(iam, "reports-read"))
    idhub = IDHub(aws, state)
    idhub.run("catalog", "sync")
    aws.clear_calls()
    return idhub


# --- helpers --------------------------------------------------------------------------------


def submit(
    hub: IDHub,
    entitlement: str,
    *extra: str,
    for_: str = ANN,
    as_: str = ADMIN,
    expect: int = 0,
) -> dict[str, Any]:
    request: dict[str, Any] = hub.json(
        "request",
        "submit",
        entitlement,
        "--for",
        for_,
        "--justification",
        "needed for the quarterly reports",
        *extra,
        as_=as_,
        expect=expect,
    )
    return request


def show(hub: IDHub, request_id: int) -> dict[str, Any]:
    request: dict[str, Any] = hub.json("request", "show", str(request_id))
    return request


def refused(hub: IDHub, *args: str, as_: str = ADMIN) -> str:
    """Run a command IDHub must refuse: exit 2, one line on stderr; returns that line."""
    done = hub.run(*args, as_=as_, expect=2)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("hostsim: error: "), done.stderr
    return lines[0]


def holdings(hub: IDHub, email: str = ANN) -> list[tuple[str, str]]:
    """``(entitlement, via)`` of everything ``email`` holds by IDHub's records, sorted."""
    rows = hub.json("access", email)
    return sorted((row["entitlement"], row["via"]) for row in rows)


def grants_held(hub: IDHub, email: str = ANN) -> list[str]:
    """The open grants (one ``direct`` line each in the access report)."""
    return sorted(entitlement for entitlement, via in holdings(hub, email) if via == "direct")


def writes(aws: EmbeddedAWS) -> list[str]:
    """The IAM actions received since the last ``clear_calls`` that change something."""
    return [action for action in aws.calls() if not action.startswith(READ_PREFIXES)]


def account_of(hub: IDHub, email: str) -> str | None:
    """The account IDHub has linked to an identity (None: none recorded)."""
    rows = hub.json("identity", "list")
    account: str | None = next(row["account"] for row in rows if row["email"] == email)
    return account


def approvals(request: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(a["role"], a["approver"], a["decision"]) for a in request["approvals"]]


def eventually(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll ``check`` (bounded): for the request a killed client sent, which the server keeps
    serving after the client is gone."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def killed_at(hub: IDHub, aws: EmbeddedAWS, actions: set[str], *args: str, as_: str) -> str:
    """Run a command and SIGKILL it when the embedded AWS receives the connector's first call
    of one of ``actions`` (before serving it: the server then serves it to a dead client).
    Returns the action it was killed at."""
    target: list[int] = []
    fired: list[str] = []

    def listener(call: Call) -> None:
        # Permanent for the session: inert once fired or once the command is over.
        if not target or call.action not in actions or "idhub-aws-iam" not in call.user_agent:
            return
        fired.append(call.action)
        with contextlib.suppress(ProcessLookupError):
            os.kill(target.pop(), signal.SIGKILL)

    aws.listen(listener)
    process = hub.popen(*args, as_=as_)
    target.append(process.pid)
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        target.clear()
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL, (process.returncode, stderr)
    assert len(fired) == 1
    return fired[0]


# --- the tests ------------------------------------------------------------------------------


def test_two_approvers_in_order_then_fulfilment_creates_the_user_with_the_group(
    hub: IDHub, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    hub.run("catalog", "set", GROUP_ID, "--owner", OWNER, "--approval", "manager,owner")
    request = submit(hub, GROUP_ID)
    number = str(request["id"])
    assert request["status"] == "pending"
    assert request["status_text"] == f"waiting for manager approval ({BOSS})"
    assert [r["id"] for r in hub.json("request", "list", "--waiting-for", BOSS)] == [request["id"]]

    # The owner is the second step, not the first; the beneficiary is never an approver.
    line = refused(hub, "request", "approve", number, as_=OWNER)
    assert f"waiting for {BOSS} (manager)" in line
    refused(hub, "request", "approve", number, as_=ANN)
    unchanged = show(hub, request["id"])
    assert unchanged["status_text"] == f"waiting for manager approval ({BOSS})"
    assert approvals(unchanged) == [("manager", BOSS, None), ("owner", OWNER, None)]

    after_manager = hub.json("request", "approve", number, "--comment", "fine by me", as_=BOSS)
    assert after_manager["status_text"] == f"waiting for owner approval ({OWNER})"
    assert hub.json("request", "list", "--waiting-for", BOSS) == []
    assert user_names(iam) == set()  # nothing reaches AWS before the last approval
    assert writes(aws) == []

    done = hub.json("request", "approve", number, as_=OWNER)
    assert done["status"] == "complete"
    assert user_names(iam) == {ANN}
    assert groups_of(iam, ANN) == {GROUP}
    assert tags_of(iam, ANN) == {
        "Email": ANN,
        "FirstName": "Ann",
        "LastName": "Lee",
        "Department": "Ops",
    }
    assert [(s["action"], s["status"]) for s in done["steps"]] == [
        ("create user", "done"),
        ("grant", "done"),
    ]

    shown = show(hub, request["id"])
    assert shown["status"] == "complete"
    assert approvals(shown) == [("manager", BOSS, "approved"), ("owner", OWNER, "approved")]
    assert [a["comment"] for a in shown["approvals"]] == ["fine by me", ""]
    assert all(a["decided_at"] for a in shown["approvals"])
    decided = [
        (e["actor"], e["detail"]["step"])
        for e in hub.json("audit", "--request", number)
        if e["action"] == "request.approve"
    ]
    assert decided == [(BOSS, "1 of 2 (manager)"), (OWNER, "2 of 2 (owner)")]
    assert holdings(hub) == [(GROUP_ID, "direct"), (REPORTS_ID, GROUP_ID)]
    assert account_of(hub, ANN) == ANN


def test_a_rejection_ends_the_request_and_skips_the_later_steps(
    hub: IDHub, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    hub.run("catalog", "set", GROUP_ID, "--owner", OWNER, "--approval", "manager,owner")
    request = submit(hub, GROUP_ID)
    number = str(request["id"])

    rejected = hub.json("request", "reject", number, "--comment", "not in your role", as_=BOSS)
    assert rejected["status"] == "rejected"
    assert rejected["reason"] == f"rejected by {BOSS} (manager): not in your role"
    assert rejected["status_text"] == f"rejected: rejected by {BOSS} (manager): not in your role"
    assert approvals(rejected) == [("manager", BOSS, "rejected"), ("owner", OWNER, "skipped")]

    refused(hub, "request", "approve", number, as_=OWNER)
    assert show(hub, request["id"])["status"] == "rejected"
    assert user_names(iam) == set()
    assert writes(aws) == []
    assert holdings(hub) == []

    # A rejected request is closed: asking again is a new request, not a duplicate.
    again = submit(hub, GROUP_ID)
    assert again["id"] != request["id"]
    assert again["status_text"] == f"waiting for manager approval ({BOSS})"


def test_only_the_requester_or_the_beneficiary_withdraws_and_withdrawn_cannot_be_approved(
    hub: IDHub, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    request = submit(hub, GROUP_ID)  # asked by the admin for Ann; Boss approves
    number = str(request["id"])

    line = refused(hub, "request", "withdraw", number, as_=BOSS)
    assert f"only {ADMIN} (who asked) or {ANN} can withdraw" in line
    assert show(hub, request["id"])["status_text"] == f"waiting for manager approval ({BOSS})"

    withdrawn = hub.json("request", "withdraw", number, as_=ADMIN)
    assert withdrawn["status"] == "withdrawn"
    assert withdrawn["reason"] == f"withdrawn by {ADMIN}"
    assert approvals(withdrawn) == [("manager", BOSS, "skipped")]

    line = refused(hub, "request", "approve", number, as_=BOSS)
    assert "only a request waiting for approval can be approved" in line
    refused(hub, "request", "withdraw", number, as_=ADMIN)  # once is enough
    assert show(hub, request["id"])["status"] == "withdrawn"
    assert user_names(iam) == set()
    assert writes(aws) == []

    # The beneficiary may take back a request someone else made for them.
    second = submit(hub, GROUP_ID)
    assert hub.json("request", "withdraw", str(second["id"]), as_=ANN)["status"] == "withdrawn"


def test_a_failed_fulfilment_is_retried_without_doing_anything_twice(
    hub: IDHub, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    request = submit(hub, GROUP_ID)
    number = str(request["id"])
    aws.fail_next("AddUserToGroup", code="AccessDenied", status=403, message="not allowed")

    done = hub.run("request", "approve", number, "--json", as_=BOSS, expect=1)
    assert "failed" in done.stderr and f"hostsim request retry {number}" in done.stderr
    failed = show(hub, request["id"])
    assert failed["status"] == "failed"
    assert "not allowed" in failed["reason"]
    assert failed["status_text"] == f"failed: {failed['reason']}"
    assert failed["attempts"] == 1
    assert [(s["action"], s["status"]) for s in failed["steps"]] == [
        ("create user", "done"),
        ("grant", "failed"),
    ]
    assert user_names(iam) == {ANN}  # the user was created; the grant was refused
    assert groups_of(iam, ANN) == set()
    assert holdings(hub) == []
    (entry,) = [e for e in hub.json("audit", "--request", number) if e["action"] == "fulfil.grant"]
    assert entry["result"] == "failed" and entry["detail"]["retryable"] is False

    retried = hub.json("request", "retry", number)
    assert retried["status"] == "complete"
    assert retried["attempts"] == 2
    assert groups_of(iam, ANN) == {GROUP}
    assert aws.calls().count("CreateUser") == 1
    assert aws.calls().count("AddUserToGroup") == 2  # the refused one, then the retry's
    assert len(iam.get_group(GroupName=GROUP)["Users"]) == 1
    assert grants_held(hub) == [GROUP_ID]
    assert account_of(hub, ANN) == ANN
    line = refused(hub, "request", "retry", number)
    assert "only a failed request can be retried" in line


def test_a_policy_granted_directly_survives_the_revocation_of_a_group_carrying_it(
    hub: IDHub, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    hub.run("catalog", "set", GROUP_ID, "--approval", "auto")
    hub.run("catalog", "set", "policy:reports-read", "--approval", "auto")
    assert submit(hub, GROUP_ID)["status"] == "complete"
    direct = submit(hub, "policy:reports-read")  # the catalog resolves the name
    assert direct["status"] == "complete"
    assert direct["entitlement"] == REPORTS_ID
    assert holdings(hub) == [(GROUP_ID, "direct"), (REPORTS_ID, "direct"), (REPORTS_ID, GROUP_ID)]
    assert groups_of(iam, ANN) == {GROUP}
    assert direct_policies_of(iam, ANN) == {REPORTS}

    # A revocation never waits for an approval, whatever the chain says.
    hub.run("catalog", "set", GROUP_ID, "--owner", OWNER, "--approval", "manager,owner")
    revoked = submit(hub, GROUP_ID, "--revoke")
    assert revoked["action"] == "revoke"
    assert revoked["status"] == "complete"
    assert revoked["approvals"] == []
    assert groups_of(iam, ANN) == set()
    assert direct_policies_of(iam, ANN) == {REPORTS}
    assert holdings(hub) == [(REPORTS_ID, "direct")]
    line = refused(
        hub,
        "request",
        "submit",
        GROUP_ID,
        "--for",
        ANN,
        "--justification",
        "again",
        "--revoke",
    )
    assert "does not hold" in line


def test_state_survives_a_restart_and_the_audit_tells_who_asked_approved_and_what_was_done(
    aws: EmbeddedAWS, iam: IAMClient, hub: IDHub
) -> None:
    # Three separate processes, and three separate drivers over the same file: nothing of
    # a request lives anywhere but in the state file.
    first = IDHub(aws, hub.state)
    request = submit(first, GROUP_ID, as_=ANN)
    number = str(request["id"])
    second = IDHub(aws, hub.state)
    second.json("request", "approve", number, "--comment", "ok", as_=BOSS)
    third = IDHub(aws, hub.state)
    (listed,) = third.json("request", "list", "--for", ANN)
    assert listed["id"] == request["id"]
    assert listed["status"] == "complete"
    shown = show(third, request["id"])
    assert shown["requested_by"] == ANN
    assert approvals(shown) == [("manager", BOSS, "approved")]
    assert groups_of(iam, ANN) == {GROUP}

    entries = third.json("audit", "--request", number)
    assert [(e["action"], e["actor"], e["result"]) for e in entries] == [
        ("request.grant", ANN, "pending"),
        ("request.approve", BOSS, "approved"),
        ("account.link", BOSS, "done"),
        ("fulfil.grant", BOSS, "complete"),
    ]
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
    asked, approved, linked, fulfilled = (e["detail"] for e in entries)
    assert linked["why"] == f"created for request {number}"
    assert asked["justification"] == "needed for the quarterly reports"
    assert asked["approval_chain"] == [f"manager: {BOSS}"]
    assert approved["comment"] == "ok"
    assert fulfilled["why"] == "approved"
    assert [(s["action"], s["target"], s["status"]) for s in fulfilled["steps"]] == [
        ("create user", ANN, "done"),
        ("grant", GROUP_ID, "done"),
    ]
    about_ann = [e["action"] for e in third.json("audit", "--subject", ANN)]
    assert about_ann[-4:] == ["request.grant", "request.approve", "account.link", "fulfil.grant"]


def test_a_crash_after_the_grant_was_sent_is_finished_by_request_resume(
    hub: IDHub, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    request = submit(hub, GROUP_ID)
    number = str(request["id"])

    action = killed_at(
        hub, aws, {"AddUserToGroup", "AttachUserPolicy"}, "request", "approve", number, as_=BOSS
    )
    assert action == "AddUserToGroup"
    eventually(lambda: groups_of(iam, ANN) == {GROUP}, "the grant sent before the crash")
    interrupted = show(hub, request["id"])
    assert interrupted["status"] == "approved"  # AWS has the grant, IDHub does not know
    assert approvals(interrupted) == [("manager", BOSS, "approved")]
    assert holdings(hub) == []
    assert account_of(hub, ANN) is None

    (resumed,) = hub.json("request", "resume")
    assert resumed["id"] == request["id"]
    assert resumed["status"] == "complete"
    assert show(hub, request["id"])["status"] == "complete"
    assert grants_held(hub) == [GROUP_ID]
    assert account_of(hub, ANN) == ANN
    assert groups_of(iam, ANN) == {GROUP}
    assert user_names(iam) == {ANN}
    assert aws.calls().count("CreateUser") == 1  # the account was adopted, not made again
    fulfilled = [e for e in hub.json("audit", "--request", number) if e["action"] == "fulfil.grant"]
    assert [(e["result"], e["detail"]["why"]) for e in fulfilled] == [
        ("complete", "resumed after an interrupted run")
    ]
    assert hub.json("request", "resume") == []  # nothing is left to finish


def test_a_crash_after_create_user_is_finished_by_the_next_command_that_reaches_aws(
    hub: IDHub, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    request = submit(hub, GROUP_ID)
    number = str(request["id"])

    killed_at(hub, aws, {"CreateUser"}, "request", "approve", number, as_=BOSS)
    eventually(lambda: user_names(iam) == {ANN}, "the CreateUser sent before the crash")
    assert show(hub, request["id"])["status"] == "approved"
    assert groups_of(iam, ANN) == set()  # the crash came before the grant was sent

    synced = hub.run("catalog", "sync")
    assert f"resumed request {number} left approved by an interrupted run: complete" in (
        synced.stderr
    )
    assert show(hub, request["id"])["status"] == "complete"
    assert groups_of(iam, ANN) == {GROUP}
    assert aws.calls().count("CreateUser") == 1
    assert grants_held(hub) == [GROUP_ID]
    assert account_of(hub, ANN) == ANN
    (entry,) = [e for e in hub.json("audit", "--request", number) if e["action"] == "fulfil.grant"]
    assert entry["detail"]["why"] == "resumed after an interrupted run"


def test_requests_idhub_refuses_change_nothing(
    hub: IDHub, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    hub.run("catalog", "set", "policy:reports-read", "--approval", "auto")
    assert submit(hub, "policy:reports-read")["status"] == "complete"
    pending = submit(hub, GROUP_ID)
    aws.clear_calls()
    before = hub.json("request", "list")
    audit_before = len(hub.json("audit"))

    def ask(entitlement: str, for_: str, *extra: str) -> str:
        return refused(
            hub,
            "request",
            "submit",
            entitlement,
            "--for",
            for_,
            "--justification",
            "because",
            *extra,
        )

    assert f"request {pending['id']} (grant {GROUP_ID} for {ANN}) is still open" in ask(
        GROUP_ID, ANN
    )
    assert f"{ANN} holds {REPORTS_ID} already" in ask("policy:reports-read", ANN)
    assert "no identity 'nobody@example.com'" in ask(GROUP_ID, "nobody@example.com")
    assert "'group:nope' is not in the catalog" in ask("group:nope", ANN)
    assert f"{BOSS} has no manager" in ask(GROUP_ID, BOSS)
    assert "needs a justification" in ask(GROUP_ID, OWNER, "--justification", " ")

    hub.run("catalog", "set", GROUP_ID, "--owner", OWNER, "--approval", "owner")
    assert f"{OWNER} would approve their own access to {GROUP_ID}" in ask(GROUP_ID, OWNER)

    assert hub.json("request", "list") == before
    audit_after = hub.json("audit")
    assert [e["action"] for e in audit_after[audit_before:]] == ["catalog.configure"]
    assert aws.calls() == []  # refused before anything was sent, not even a read
    assert user_names(iam) == {ANN}


def test_a_leaver_loses_the_account_the_grants_and_the_open_requests(
    hub: IDHub, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    hub.run("catalog", "set", "policy:reports-read", "--approval", "auto")
    granted = submit(hub, "policy:reports-read")
    assert granted["status"] == "complete"
    pending = submit(hub, GROUP_ID)
    assert user_names(iam) == {ANN}

    left = hub.json("identity", "remove", ANN)
    assert left["identity"]["left_at"]
    assert user_names(iam) == set()
    assert holdings(hub) == []
    assert account_of(hub, ANN) is None
    gone = show(hub, pending["id"])
    assert gone["status"] == "withdrawn"
    assert gone["reason"] == "the identity left"
    assert show(hub, granted["id"])["status"] == "complete"  # history stays
    assert hub.json("request", "list", "--waiting-for", BOSS) == []
    (entry,) = [e for e in hub.json("audit", "--subject", ANN) if e["action"] == "identity.leave"]
    assert entry["detail"]["closed_grants"] == [REPORTS_ID]
    assert entry["detail"]["withdrawn_requests"] == [pending["id"]]

    aws.clear_calls()
    line = refused(
        hub, "request", "submit", GROUP_ID, "--for", ANN, "--justification", "back again"
    )
    assert f"{ANN} left on" in line
    refused(hub, "request", "approve", str(pending["id"]), as_=BOSS)
    assert writes(aws) == []
    assert user_names(iam) == set()


def test_a_leaver_loses_an_account_a_failed_fulfilment_created_but_never_linked(
    hub: IDHub, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    request = submit(hub, GROUP_ID)
    aws.fail_next("AddUserToGroup", code="AccessDenied", status=403, message="not allowed")
    hub.run("request", "approve", str(request["id"]), as_=BOSS, expect=1)
    assert user_names(iam) == {ANN}  # created before the grant failed
    assert account_of(hub, ANN) is None  # IDHub links an account only once fulfilment is done

    left = hub.json("identity", "remove", ANN)
    assert left["account"]["account"]["name"] == ANN
    assert user_names(iam) == set()
    assert show(hub, request["id"])["status"] == "withdrawn"
    (entry,) = [e for e in hub.json("audit", "--subject", ANN) if e["action"] == "identity.leave"]
    assert entry["detail"]["account"] == ANN
    last = entry["detail"]["steps"][-1]
    assert (last["action"], last["target"], last["status"]) == ("delete user", ANN, "done")


def test_the_audit_of_a_leaver_who_had_an_account_renders_as_a_table_and_as_json(
    hub: IDHub, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    hub.run("catalog", "set", GROUP_ID, "--approval", "auto")
    submit(hub, GROUP_ID)
    hub.run("identity", "remove", ANN)

    (entry,) = [e for e in hub.json("audit") if e["action"] == "identity.leave"]
    steps = entry["detail"]["steps"]
    assert all(set(step) == {"action", "target", "status", "detail"} for step in steps)
    assert (steps[-1]["action"], steps[-1]["status"]) == ("delete user", "done")
    done = sum(1 for step in steps if step["status"] == "done")
    table = hub.run("audit").stdout
    (line,) = [row for row in table.splitlines() if " identity.leave " in row]
    assert f"steps={done}/{len(steps)} done" in line

    # an entry written before steps had one shape (bare names), and details of other shapes
    with contextlib.closing(sqlite3.connect(hub.state)) as db, db:
        db.executemany(
            "INSERT INTO audit (at, actor, action, subject, result, detail) "
            "VALUES ('2020-01-01T00:00:00Z', 'admin@example.com', ?, ?, 'done', ?)",
            [
                ("identity.leave", "old@example.com", '{"steps": ["delete user"], "why": 7}'),
                ("legacy.odd", "odd@example.com", '["not", "a", "mapping"]'),
            ],
        )
    table = hub.run("audit").stdout
    (old,) = [row for row in table.splitlines() if "old@example.com" in row]
    assert "why=7; steps=0/1 done (1 recorded without a status)" in old
    assert hub.json("audit")[-1]["detail"] == ["not", "a", "mapping"]


def test_an_approver_who_left_can_no_longer_decide(
    hub: IDHub, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    request = submit(hub, GROUP_ID)
    number = str(request["id"])
    hub.run("identity", "remove", BOSS)

    line = refused(hub, "request", "approve", number, as_=BOSS)
    assert f"waiting for {BOSS} (manager), who left on" in line
    refused(hub, "request", "reject", number, as_=BOSS)
    assert show(hub, request["id"])["status_text"] == f"waiting for manager approval ({BOSS})"
    assert user_names(iam) == set()
    assert hub.json("request", "withdraw", number)["status"] == "withdrawn"


def test_a_request_a_live_process_is_fulfilling_is_not_resumed_by_another(
    hub: IDHub, aws: EmbeddedAWS, iam: IAMClient
) -> None:
    """``approved`` is both "left by a crash" and "being carried out right now": only the
    first may be resumed. A live process holding the request's claim keeps others off it;
    once that process is gone (killed, here), the request resumes."""
    request = submit(hub, GROUP_ID)
    with contextlib.closing(sqlite3.connect(hub.state)) as db, db:
        db.execute("UPDATE requests SET status = 'approved' WHERE id = ?", (request["id"],))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from pathlib import Path\n"
            "from hostsim.core.claims import claim\n"
            "with claim(Path(sys.argv[1]), int(sys.argv[2])) as mine:\n"
            "    print('held' if mine else 'not held', flush=True)\n"
            "    time.sleep(120)\n",
            str(hub.state),
            str(request["id"]),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        aws.clear_calls()
        assert hub.json("request", "resume") == []
        assert show(hub, request["id"])["status"] == "approved"
        assert "CreateUser" not in aws.calls()
    finally:
        holder.kill()
        holder.wait()
    resumed = hub.json("request", "resume")
    assert [(r["id"], r["status"]) for r in resumed] == [(request["id"], "complete")]
    assert groups_of(iam, ANN) == {GROUP}
    assert aws.calls().count("CreateUser") == 1
