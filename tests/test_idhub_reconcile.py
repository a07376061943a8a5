"""Reconciliation end to end: IDHub's records against the embedded AWS, through ``hostsim``.

Every test sets IDHub up through the CLI (identities, catalog, requests fulfilled at once), then
changes IAM behind IDHub's back with plain boto3, as an administrator would, and checks both
sides: what ``hostsim reconcile`` reports and does (its JSON, ``runs``, ``audit``, ``access``,
``identity list``) and what IAM holds afterwards. A report-only run must send IAM reads only.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idhub_cli import IDHub, email, hub_for, killed_at_first, people
from seeding import direct_policies_of, group, groups_of, policy, tags_of, user_names

from hostsim.embedded_aws import EmbeddedAWS

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

DEVELOPERS = "group:developers"
ADMINS = "group:admins"
#: IAM actions that change nothing; a report-only run may send no others.
READ_ONLY = ("Get", "List")
Finding = tuple[str, str, str, str]


# --- helpers ------------------------------------------------------------------------------


def provision(hub: IDHub, iam: IAMClient, *people: str) -> str:
    """Groups ``developers`` (carrying a policy) and ``admins`` in IAM, the catalog synced with
    ``developers`` approved automatically, and each person an identity holding it (so IDHub
    created their IAM user). Returns the ARN of a policy nobody was granted."""
    group(iam, "developers", policy(iam, "reports-read"))
    group(iam, "admins")
    spare = policy(iam, "billing-read")
    hub.run("catalog", "sync")
    hub.run("catalog", "set", DEVELOPERS, "--approval", "auto")
    for person in people:
        hub.run(
            "identity",
            "add",
            email(person),
            "--first-name",
            person.title(),
            "--last-name",
            "Lee",
            "--display-name",
            f"{person.title()} Lee",
        )
        hub.run("request", "submit", DEVELOPERS, "--for", email(person), "--justification", "team")
    return spare


def reconcile(hub: IDHub, *args: str, expect: int = 0) -> dict[str, Any]:
    report: dict[str, Any] = hub.json("reconcile", *args, expect=expect)
    return report


def found(report: dict[str, Any]) -> set[Finding]:
    """Each finding as (account, kind, subject, action)."""
    return {(f["account"], f["kind"], f["subject"], f["action"]) for f in report["findings"]}


def one(report: dict[str, Any], account: str, kind: str, subject: str = "") -> dict[str, Any]:
    matches = [
        f
        for f in report["findings"]
        if f["account"] == account
        and f["kind"] == kind
        and (not subject or f["subject"] == subject)
    ]
    assert len(matches) == 1, (account, kind, subject, report["findings"])
    finding: dict[str, Any] = matches[0]
    return finding


def holdings(hub: IDHub, person: str) -> set[str]:
    """What IDHub's records say the person was granted (grants, not policies they carry)."""
    rows = hub.json("access", email(person))
    return {row["entitlement"] for row in rows if row["via"] == "direct"}


def writes(aws: EmbeddedAWS) -> list[str]:
    return [action for action in aws.calls() if not action.startswith(READ_ONLY)]


def delete_by_hand(iam: IAMClient, name: str) -> None:
    """Delete an IAM user the way an administrator would: what IAM requires gone first."""
    for group_name in groups_of(iam, name):
        iam.remove_user_from_group(GroupName=group_name, UserName=name)
    for arn in direct_policies_of(iam, name):
        iam.detach_user_policy(UserName=name, PolicyArn=arn)
    iam.delete_user(UserName=name)


def set_missing_since(state: Path, person: str, days_ago: float) -> str:
    """Move an account's stale clock back, as if that many days had passed since a run first
    found it missing. Returns the new timestamp."""
    since = (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")
    db = sqlite3.connect(state)
    try:
        with db:
            db.execute(
                "UPDATE accounts SET missing_since = ? WHERE identity = ?", (since, email(person))
            )
    finally:
        db.close()
    return since


def audit_of(hub: IDHub, prefix: str) -> list[dict[str, Any]]:
    return [entry for entry in hub.json("audit") if entry["action"].startswith(prefix)]


def latest_run(hub: IDHub) -> dict[str, Any]:
    run: dict[str, Any] = hub.json("runs")[0]
    return run


# --- every drift kind -----------------------------------------------------------------------


def drift_behind_idhubs_back(iam: IAMClient, spare: str) -> None:
    """An orphan with credentials, an account made by hand for eve (an identity without
    one), dan's account deleted, access given to ann and taken from bob, cat's display name
    tag overwritten."""
    iam.create_user(UserName=email("mallory"))
    iam.create_login_profile(UserName=email("mallory"), Password="Test-only-Passw0rd!")
    iam.create_access_key(UserName=email("mallory"))
    iam.add_user_to_group(GroupName="admins", UserName=email("mallory"))
    iam.create_user(UserName=email("eve"))
    delete_by_hand(iam, email("dan"))
    iam.add_user_to_group(GroupName="admins", UserName=email("ann"))
    iam.attach_user_policy(UserName=email("ann"), PolicyArn=spare)
    iam.remove_user_from_group(GroupName="developers", UserName=email("bob"))
    iam.tag_user(UserName=email("cat"), Tags=[{"Key": "DisplayName", "Value": "Kitty"}])


def test_every_drift_kind_is_reported_without_a_change_then_remediated(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    hub = hub_for(aws, tmp_path)
    spare = provision(hub, iam, "ann", "bob", "cat", "dan")
    hub.run("identity", "add", email("eve"), "--display-name", "Eve Lee")
    dan_id = iam.get_user(UserName=email("dan"))["User"]["UserId"]

    drift_behind_idhubs_back(iam, spare)

    aws.clear_calls()
    report = reconcile(hub)
    assert writes(aws) == []  # a report changes nothing in AWS
    assert report["status"] == "complete"
    assert found(report) == {
        (email("mallory"), "orphan-account", email("mallory"), "report"),
        (email("eve"), "correlated", email("eve"), "link"),
        (email("dan"), "missing-account", email("dan"), "report"),
        (email("ann"), "granted-out-of-band", ADMINS, "report"),
        (email("ann"), "granted-out-of-band", f"policy:{spare}", "report"),
        (email("bob"), "removed-out-of-band", DEVELOPERS, "report"),
        (email("cat"), "attribute-drift", "display_name", "report"),
        (email("eve"), "attribute-drift", "display_name", "report"),
    }
    drift = one(report, email("cat"), "attribute-drift")
    assert (drift["idhub"], drift["app"], drift["direction"]) == (
        "Cat Lee",
        "Kitty",
        "idhub-to-app",
    )
    assert drift["detail"] == "would push"
    listed = people(hub)
    assert listed[email("eve")]["account"] == email("eve")  # correlated: linked in IDHub
    missing_since = listed[email("dan")]["missing_since"]
    assert missing_since is not None
    assert (
        f"missing since {missing_since}" in one(report, email("dan"), "missing-account")["detail"]
    )
    assert holdings(hub, "ann") == {DEVELOPERS}  # out-of-band access is never recorded
    assert groups_of(iam, email("ann")) == {"developers", "admins"}
    assert email("mallory") in user_names(iam)

    aws.clear_calls()
    fixed = reconcile(hub, "--remediate", "all")
    assert fixed["status"] == "complete"
    assert found(fixed) == {
        (email("mallory"), "orphan-account", email("mallory"), "delete"),
        (email("dan"), "missing-account", email("dan"), "create"),
        (email("ann"), "granted-out-of-band", ADMINS, "revoke"),
        (email("ann"), "granted-out-of-band", f"policy:{spare}", "revoke"),
        (email("bob"), "removed-out-of-band", DEVELOPERS, "grant"),
        (email("cat"), "attribute-drift", "display_name", "push"),
        (email("eve"), "attribute-drift", "display_name", "push"),
    }
    assert {f["outcome"] for f in fixed["findings"]} == {"done"}
    # the orphan went with everything IAM requires removed first (the connector's cascade)
    assert {"DeleteLoginProfile", "DeleteAccessKey", "RemoveUserFromGroup", "DeleteUser"} <= set(
        aws.calls()
    )
    assert email("mallory") not in user_names(iam)
    # dan's account is back, a new IAM user with the access IDHub approved and his attributes
    recreated = iam.get_user(UserName=email("dan"))["User"]["UserId"]
    assert recreated != dan_id
    assert groups_of(iam, email("dan")) == {"developers"}
    assert tags_of(iam, email("dan"))["DisplayName"] == "Dan Lee"
    assert people(hub)[email("dan")]["missing_since"] is None
    assert holdings(hub, "dan") == {DEVELOPERS}
    assert groups_of(iam, email("ann")) == {"developers"}
    assert direct_policies_of(iam, email("ann")) == set()
    assert groups_of(iam, email("bob")) == {"developers"}
    assert tags_of(iam, email("cat"))["DisplayName"] == "Cat Lee"
    assert tags_of(iam, email("eve"))["DisplayName"] == "Eve Lee"

    settled = reconcile(hub, "--remediate", "all")
    assert settled["findings"] == []
    assert settled["counts"] == {}

    check_logged(hub)


def check_logged(hub: IDHub) -> None:
    """The three runs of the test above in ``runs`` with their counts, and each remedy of the
    second in the audit log with its run."""
    # Every run is logged with its counts, newest first.
    runs = hub.json("runs")
    assert [(run["run"], run["status"]) for run in runs] == [
        (3, "complete"),
        (2, "complete"),
        (1, "complete"),
    ]
    assert runs[2]["counts"] == {
        "attribute-drift": 2,
        "correlated": 1,
        "granted-out-of-band": 2,
        "missing-account": 1,
        "orphan-account": 1,
        "removed-out-of-band": 1,
    }
    assert runs[2]["options"]["remediate"] == []
    assert runs[1]["counts"] == {
        "attribute-drift": 2,
        "create:done": 1,
        "delete:done": 1,
        "grant:done": 1,
        "granted-out-of-band": 2,
        "missing-account": 1,
        "orphan-account": 1,
        "push:done": 2,
        "removed-out-of-band": 1,
        "revoke:done": 2,
    }
    assert runs[1]["options"]["remediate"] == sorted(
        ["revoke", "restore", "attributes", "delete-orphans"]
    )
    # ... and every remedy is audited with the run that carried it out.
    remedies = audit_of(hub, "remediate.")
    assert sorted((e["action"], e["subject"], e["result"]) for e in remedies) == [
        ("remediate.create", email("dan"), "done"),
        ("remediate.delete", email("mallory"), "done"),
        ("remediate.grant", email("bob"), "done"),
        ("remediate.push", email("cat"), "done"),
        ("remediate.push", email("eve"), "done"),
        ("remediate.revoke", email("ann"), "done"),
        ("remediate.revoke", email("ann"), "done"),
    ]
    assert {e["detail"]["run"] for e in remedies} == {2}
    (link,) = [e for e in audit_of(hub, "account.link") if e["subject"] == email("eve")]
    assert "run 1" in link["detail"]["why"]
    assert [e["result"] for e in audit_of(hub, "reconcile.run")] == ["complete"] * 3


# --- the stale clock --------------------------------------------------------------------------


def test_a_missing_account_is_dropped_with_its_grants_only_once_stale(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    # Two accounts: dropping one is half of them, so the threshold is raised to let it through.
    hub = hub_for(aws, tmp_path, "[idhub]\ndeletion_threshold = 50\n")
    provision(hub, iam, "ann", "bob")
    delete_by_hand(iam, email("bob"))

    first = reconcile(hub)
    started = people(hub)[email("bob")]["missing_since"]
    assert started is not None
    assert one(first, email("bob"), "missing-account")["action"] == "report"

    six_days = set_missing_since(hub.state, "bob", 6)
    younger = reconcile(hub)
    finding = one(younger, email("bob"), "missing-account")
    assert finding["action"] == "report"
    assert finding["detail"] == f"missing since {six_days}; dropped after 7 days"
    assert people(hub)[email("bob")]["missing_since"] == six_days  # the clock is not restarted
    assert holdings(hub, "bob") == {DEVELOPERS}

    eight_days = set_missing_since(hub.state, "bob", 8)
    longer_wait = reconcile(hub, "--stale-days", "9")
    assert one(longer_wait, email("bob"), "missing-account")["action"] == "report"
    assert people(hub)[email("bob")]["account"] == email("bob")

    stale = reconcile(hub)
    dropped = one(stale, email("bob"), "stale-account")
    assert (dropped["action"], dropped["outcome"]) == ("drop", "done")
    assert dropped["detail"] == f"missing since {eight_days} (8.0 days; stale after 7)"
    assert stale["counts"] == {"drop:done": 1, "stale-account": 1}
    bob = people(hub)[email("bob")]
    assert (bob["account"], bob["missing_since"]) == (None, None)
    assert holdings(hub, "bob") == set()
    assert holdings(hub, "ann") == {DEVELOPERS}
    (drop,) = [e for e in audit_of(hub, "remediate.drop")]
    assert drop["subject"] == email("bob")
    assert drop["detail"] == {"run": stale["run"], "closed_grants": [DEVELOPERS]}

    assert reconcile(hub)["findings"] == []  # IDHub has forgotten the account


# --- attribute sync directions ----------------------------------------------------------------

SYNC = """
[idhub.sync]
first_name = "no-sync"
last_name = "app-to-idhub"
display_name = "bi-directional"
"""


def test_attribute_drift_is_fixed_on_the_side_its_sync_direction_says(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    hub = hub_for(aws, tmp_path, SYNC)
    provision(hub, iam, "ann", "bob", "cat")
    # ann, in IAM only: display name (bi-directional), last name (app-to-idhub), first name
    # (no-sync) and the email tag (email is always idhub-to-app).
    iam.tag_user(
        UserName=email("ann"),
        Tags=[
            {"Key": "DisplayName", "Value": "Annie"},
            {"Key": "LastName", "Value": "Lee-Smith"},
            {"Key": "FirstName", "Value": "Anna"},
            {"Key": "Email", "Value": "ann@elsewhere.example.com"},
        ],
    )
    # bob, in IDHub only: the push of the change fails, so only IDHub has it.
    aws.fail_next("TagUser", code="AccessDenied", status=403, message="denied by a test")
    failed = hub.run("identity", "modify", email("bob"), "--display-name", "Robert Lee", expect=1)
    assert "AccessDenied" in failed.stderr
    # cat, on both sides: IDHub's push fails and IAM is changed by hand as well.
    aws.fail_next("TagUser", code="AccessDenied", status=403, message="denied by a test")
    hub.run("identity", "modify", email("cat"), "--display-name", "Cathy Lee", expect=1)
    iam.tag_user(UserName=email("cat"), Tags=[{"Key": "DisplayName", "Value": "Cat L."}])
    assert tags_of(iam, email("bob"))["DisplayName"] == "Bob Lee"

    aws.clear_calls()
    report = reconcile(hub)
    assert writes(aws) == []
    described = {
        (f["account"], f["subject"]): (f["idhub"], f["app"], f["direction"], f["detail"])
        for f in report["findings"]
    }
    assert described == {
        (email("ann"), "display_name"): (
            "Ann Lee",
            "Annie",
            "bi-directional",
            "would pull (changed in the application since the last sync)",
        ),
        (email("ann"), "last_name"): ("Lee", "Lee-Smith", "app-to-idhub", "would pull"),
        (email("ann"), "first_name"): ("Ann", "Anna", "no-sync", "not synchronised (no-sync)"),
        (email("ann"), "email"): (
            email("ann"),
            "ann@elsewhere.example.com",
            "idhub-to-app",
            "would push",
        ),
        (email("bob"), "display_name"): (
            "Robert Lee",
            "Bob Lee",
            "bi-directional",
            "would push (changed in IDHub since the last sync)",
        ),
        (email("cat"), "display_name"): (
            "Cathy Lee",
            "Cat L.",
            "bi-directional",
            "changed on both sides since the last sync; resolve by hand",
        ),
    }
    assert {f["action"] for f in report["findings"]} == {"report"}
    assert people(hub)[email("ann")]["display_name"] == "Ann Lee"

    fixed = reconcile(hub, "--remediate", "attributes")
    assert {
        (f["account"], f["subject"]): (f["action"], f["outcome"] or f["detail"])
        for f in fixed["findings"]
    } == {
        (email("ann"), "display_name"): ("pull", "done"),
        (email("ann"), "last_name"): ("pull", "done"),
        (email("ann"), "first_name"): ("report", "not synchronised (no-sync)"),
        (email("ann"), "email"): ("push", "done"),
        (email("bob"), "display_name"): ("push", "done"),
        (email("cat"), "display_name"): (
            "report",
            "changed on both sides since the last sync; resolve by hand",
        ),
    }
    assert fixed["counts"] == {"attribute-drift": 6, "pull:done": 2, "push:done": 2}
    listed = people(hub)
    ann_tags = tags_of(iam, email("ann"))
    # pulled into IDHub; the email tag pushed back; the no-sync first name left alone
    assert (listed[email("ann")]["display_name"], listed[email("ann")]["last_name"]) == (
        "Annie",
        "Lee-Smith",
    )
    assert (ann_tags["Email"], ann_tags["FirstName"]) == (email("ann"), "Anna")
    assert listed[email("ann")]["first_name"] == "Ann"
    assert tags_of(iam, email("bob"))["DisplayName"] == "Robert Lee"
    # changed on both sides: neither side touched
    assert listed[email("cat")]["display_name"] == "Cathy Lee"
    assert tags_of(iam, email("cat"))["DisplayName"] == "Cat L."

    # The pulled value is now the agreed one: a new change in IAM is pulled again, not taken
    # for a change on both sides; what was reported stays reported.
    iam.tag_user(UserName=email("ann"), Tags=[{"Key": "DisplayName", "Value": "Ann L."}])
    again = reconcile(hub, "--remediate", "attributes")
    assert {(f["account"], f["subject"], f["action"]) for f in again["findings"]} == {
        (email("ann"), "display_name", "pull"),
        (email("ann"), "first_name", "report"),
        (email("cat"), "display_name", "report"),
    }
    assert people(hub)[email("ann")]["display_name"] == "Ann L."


# --- matching by native id ------------------------------------------------------------------


def test_accounts_are_matched_by_their_user_id_not_their_name(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    hub = hub_for(aws, tmp_path)
    provision(hub, iam, "ann", "bob")
    ann_id = iam.get_user(UserName=email("ann"))["User"]["UserId"]
    # as if an earlier run had not found ann's account: finding it again stops the clock
    set_missing_since(hub.state, "ann", 3)
    iam.update_user(UserName=email("ann"), NewUserName="ann.lee@example.com")
    # bob's user deleted and made again under the same name: a different account (new UserId)
    delete_by_hand(iam, email("bob"))
    iam.create_user(UserName=email("bob"))

    report = reconcile(hub)
    # the renamed user is ann's account still: neither missing nor an orphan
    assert found(report) == {
        (email("bob"), "correlated", email("bob"), "link"),
        (email("bob"), "removed-out-of-band", DEVELOPERS, "report"),
        (email("bob"), "attribute-drift", "first_name", "report"),
        (email("bob"), "attribute-drift", "last_name", "report"),
        (email("bob"), "attribute-drift", "display_name", "report"),
    }
    assert iam.get_user(UserName="ann.lee@example.com")["User"]["UserId"] == ann_id
    listed = people(hub)
    assert listed[email("ann")]["account"] == "ann.lee@example.com"  # IDHub follows the rename
    assert listed[email("ann")]["missing_since"] is None
    assert listed[email("bob")]["missing_since"] is None

    restored = reconcile(hub, "--remediate", "restore,attributes")
    assert {f["outcome"] for f in restored["findings"]} == {"done"}
    assert groups_of(iam, email("bob")) == {"developers"}
    assert tags_of(iam, email("bob"))["DisplayName"] == "Bob Lee"
    assert reconcile(hub)["findings"] == []


# --- the deletion threshold -------------------------------------------------------------------


def test_the_deletion_threshold_refuses_a_wipe_and_lets_small_removals_through(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    hub = hub_for(aws, tmp_path)
    provision(hub, iam, "ann", "bob", "cat", "dan", "eve")

    # One account of five gone (20%, the default threshold is "more than 20%"): dropped.
    delete_by_hand(iam, email("eve"))
    small = reconcile(hub, "--stale-days", "0")
    assert (small["status"], found(small)) == (
        "complete",
        {(email("eve"), "stale-account", email("eve"), "drop")},
    )
    assert people(hub)[email("eve")]["account"] is None
    assert holdings(hub, "eve") == set()

    # Three orphans next to four accounts: deleting them all would remove 3 of 7.
    strays = [email(f"temp{n}") for n in range(3)]
    for name in strays:
        iam.create_user(UserName=name)
    aws.clear_calls()
    done = hub.run("reconcile", "--remediate", "delete-orphans", expect=2)
    assert "deletion threshold of 20%" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "reconciliation run 2: refused" in done.stdout
    assert writes(aws) == []
    assert set(strays) <= user_names(iam)
    assert latest_run(hub)["counts"] == {"delete:refused": 3, "orphan-account": 3}
    # raised on purpose for this run, the same removals go through
    allowed = reconcile(hub, "--remediate", "delete-orphans", "--deletion-threshold", "50")
    assert allowed["counts"] == {"delete:done": 3, "orphan-account": 3}
    assert user_names(iam) == {email(p) for p in ("ann", "bob", "cat", "dan")}

    # Every account gone from IAM at once, as an empty answer from a wrong scope or account
    # would look: with --stale-days 0 every account would be dropped. Refused, nothing changed.
    for person in ("ann", "bob", "cat", "dan"):
        delete_by_hand(iam, email(person))
    aws.clear_calls()
    wipe = hub.run("reconcile", "--stale-days", "0", expect=2)
    (error,) = wipe.stderr.strip().splitlines()
    assert error.startswith("hostsim: error: refused: this run would remove 4 of 4 accounts")
    assert "deletion threshold of 20%" in error
    assert writes(aws) == []
    listed = people(hub)
    for person in ("ann", "bob", "cat", "dan"):
        assert listed[email(person)]["account"] == email(person)
        assert listed[email(person)]["missing_since"] is None  # not even the stale clock ran
        assert holdings(hub, person) == {DEVELOPERS}
    refused = latest_run(hub)
    assert refused["status"] == "refused"
    assert refused["counts"] == {"drop:refused": 4, "stale-account": 4}
    assert refused["message"] == error.removeprefix("hostsim: error: ")
    assert audit_of(hub, "account.drop")[-1]["subject"] == email("eve")  # only the first drop

    # What the refusal kept lets IDHub put everything back.
    restored = reconcile(hub, "--remediate", "restore")
    assert restored["counts"] == {"create:done": 4, "missing-account": 4}
    for person in ("ann", "bob", "cat", "dan"):
        assert groups_of(iam, email(person)) == {"developers"}


# --- remedies that must not reach the wrong account -----------------------------------------


def test_an_orphan_the_connector_cannot_tell_apart_is_reported_not_deleted(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    hub = hub_for(aws, tmp_path, "[idhub]\ndeletion_threshold = 100\n")
    provision(hub, iam, "ann")
    ann_id = iam.get_user(UserName=email("ann"))["User"]["UserId"]
    # a copy of ann's account made by hand, carrying her email; and a user with no email
    iam.create_user(UserName="ann-admin", Tags=[{"Key": "Email", "Value": email("ann")}])
    iam.create_user(UserName="build-robot")

    aws.clear_calls()
    report = reconcile(hub, "--remediate", "delete-orphans")
    assert report["status"] == "complete"
    assert found(report) == {
        (email("ann"), "orphan-account", "ann-admin", "report"),
        ("build-robot", "orphan-account", "build-robot", "report"),
    }
    assert (
        "more than one account answers to ann@example.com"
        in (one(report, email("ann"), "orphan-account")["detail"])
    )
    assert "has no email" in one(report, "build-robot", "orphan-account")["detail"]
    assert "DeleteUser" not in aws.calls()
    # ann's own account (found by her email) is untouched, and still hers
    assert iam.get_user(UserName=email("ann"))["User"]["UserId"] == ann_id
    assert groups_of(iam, email("ann")) == {"developers"}
    assert user_names(iam) == {email("ann"), "ann-admin", "build-robot"}
    assert people(hub)[email("ann")]["account"] == email("ann")


# --- a remedy that fails ----------------------------------------------------------------------


def test_a_failed_remedy_leaves_the_run_partial_and_the_next_run_finishes(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    hub = hub_for(aws, tmp_path)
    provision(hub, iam, "ann", "bob")
    iam.add_user_to_group(GroupName="admins", UserName=email("ann"))
    iam.remove_user_from_group(GroupName="developers", UserName=email("bob"))

    aws.fail_next("RemoveUserFromGroup", code="AccessDenied", status=403, message="not today")
    partial = reconcile(hub, "--remediate", "revoke,restore", expect=1)
    assert partial["status"] == "partial"
    revoke = one(partial, email("ann"), "granted-out-of-band")
    assert revoke["action"] == "revoke"
    assert revoke["outcome"].startswith("failed: ")
    assert "AccessDenied" in revoke["outcome"]
    assert one(partial, email("bob"), "removed-out-of-band")["outcome"] == "done"
    assert groups_of(iam, email("ann")) == {"developers", "admins"}
    assert groups_of(iam, email("bob")) == {"developers"}  # the other remedy was still done
    run = latest_run(hub)
    assert (run["status"], run["counts"]) == (
        "partial",
        {
            "grant:done": 1,
            "granted-out-of-band": 1,
            "removed-out-of-band": 1,
            "revoke:failed": 1,
        },
    )
    (failed,) = audit_of(hub, "remediate.revoke")
    assert (failed["result"], failed["detail"]["run"]) == (revoke["outcome"], partial["run"])

    finished = reconcile(hub, "--remediate", "revoke", "--remediate", "restore")
    assert finished["status"] == "complete"
    assert found(finished) == {(email("ann"), "granted-out-of-band", ADMINS, "revoke")}
    assert one(finished, email("ann"), "granted-out-of-band")["outcome"] == "done"
    assert groups_of(iam, email("ann")) == {"developers"}
    assert [r["status"] for r in hub.json("runs")] == ["complete", "partial"]


def test_a_wrong_scope_in_the_config_is_refused_before_it_wipes_idhub(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    """The misconfiguration the threshold exists for: an operator points the connector at a
    path where none of IDHub's accounts live, so the application answers with nobody."""
    hub = hub_for(aws, tmp_path)
    provision(hub, iam, "ann", "bob", "cat")
    config = tmp_path / "wrong-scope.toml"
    config.write_text('[aws-iam]\nuser_path = "/other/"\n')
    wrong = IDHub(aws, hub.state, config=config)
    aws.clear_calls()
    done = wrong.run("reconcile", "--stale-days", "0", expect=2)
    assert "would remove 3 of 3 accounts" in done.stderr
    assert writes(aws) == []
    assert user_names(iam) == {email(p) for p in ("ann", "bob", "cat")}
    listed = people(hub)
    assert all(listed[email(p)]["account"] == email(p) for p in ("ann", "bob", "cat"))
    assert latest_run(hub)["status"] == "refused"
    # with the right scope again, nothing is amiss
    assert found(reconcile(hub)) == set()


# --- a run that never finished ------------------------------------------------------------------


def test_a_run_killed_mid_remedy_is_closed_by_the_next_one_showing_the_remedy_interrupted(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    hub = hub_for(aws, tmp_path, "[idhub]\ndeletion_threshold = 100\n")
    provision(hub, iam, "ann")
    mallory = email("mallory")
    iam.create_user(UserName=mallory)
    killed_at_first(hub, "DeleteUser", "reconcile", "--remediate", "delete-orphans")
    deadline = time.monotonic() + 10
    while mallory in user_names(iam):  # served to the dead client: IDHub never heard back
        assert time.monotonic() < deadline, "the DeleteUser sent before the kill never ran"
        time.sleep(0.02)
    (intent,) = audit_of(hub, "reconcile.remedy")  # written before the call was sent
    assert (intent["subject"], intent["result"]) == (mallory, "started")
    assert (intent["detail"]["run"], intent["detail"]["what"]) == (1, "delete")
    assert audit_of(hub, "remediate.") == []
    assert latest_run(hub)["status"] == "running"

    later = reconcile(hub)
    assert (later["run"], later["status"], later["findings"]) == (2, "complete", [])
    runs = hub.json("runs")
    assert [(run["run"], run["status"]) for run in runs] == [(2, "complete"), (1, "interrupted")]
    interrupted = runs[1]
    assert interrupted["finished_at"] is not None
    assert interrupted["counts"] == {"delete:interrupted": 1, "orphan-account": 1}
    assert (
        f"1 remedy was under way with no recorded outcome: delete {mallory} "
        f"(orphan-account of {mallory})" in interrupted["message"]
    )
    (outcome,) = audit_of(hub, "remediate.delete")
    assert outcome["result"].startswith("interrupted: the run's process ended")
    assert (outcome["subject"], outcome["detail"]["run"]) == (mallory, 1)
    assert [e["result"] for e in audit_of(hub, "reconcile.run")] == ["interrupted", "complete"]


CLAIM_HOLDER = """\
import sys, time
from pathlib import Path
from hostsim.core.claims import run_claim
with run_claim(Path(sys.argv[1]), int(sys.argv[2])) as mine:
    print("held" if mine else "not held", flush=True)
    time.sleep(120)
"""


def test_a_run_whose_process_is_alive_is_left_running_however_old(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    hub = hub_for(aws, tmp_path)
    provision(hub, iam)
    with contextlib.closing(sqlite3.connect(hub.state)) as db, db:
        db.execute(
            "INSERT INTO reconciliation_runs (id, application, started_at, actor, options, "
            "status) VALUES (99, 'aws-iam', '2020-01-01T00:00:00Z', 'x', '{}', 'running')"
        )
    holder = subprocess.Popen(
        [sys.executable, "-c", CLAIM_HOLDER, str(hub.state), "99"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        reconcile(hub)
        assert {r["run"]: r["status"] for r in hub.json("runs")}[99] == "running"
    finally:
        holder.kill()
        holder.wait()
    reconcile(hub)
    gone = {r["run"]: r for r in hub.json("runs")}[99]
    assert gone["status"] == "interrupted"
    assert gone["message"] == (
        "interrupted: the process running it ended before it finished; the next run finds "
        "what is still different"
    )
