"""IDHub over the AWS accounts of an organization, end to end: the ``hostsim`` command (a
fresh process per command) with a config file holding ``[aws-iam.organization]``, against the
embedded AWS hosting an organization of three member accounts.

Each member account is an IDHub application (``aws-iam@ACCOUNT``): its catalog entries are
qualified with its id, a request for one of them is fulfilled in that account (creating the
person's account there first), a leaver is deleted in every account, and reconciliation runs
once per account, so a finding, a read failure and the deletion threshold each belong to one
account. What each account holds is asserted through IAM clients acting in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from idhub_cli import IDHub, finished, killed_at_first, leave_while, query, wait_for, waited_leave
from organization_seeding import SeededOrganization, seed_organization

from hostsim.embedded_aws import EmbeddedAWS

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
SECURITY_AUDIT = "arn:aws:iam::aws:policy/SecurityAudit"
ALICE = "alice@example.com"
CONFIG = (
    "[aws-iam.organization]\n"
    "include_management_account = false\n"
    "\n"
    "[idhub]\n"
    'default_approval = ["auto"]\n'
)


class Org:
    """The organization, an IDHub on it, and an IAM client acting in each member account."""

    def __init__(self, aws: EmbeddedAWS, seeded: SeededOrganization, hub: IDHub) -> None:
        self.aws = aws
        self.seeded = seeded
        self.hub = hub
        self._clients: dict[str, IAMClient] = {}

    def id(self, name: str) -> str:
        return self.seeded.member(name).id

    def iam(self, name: str) -> IAMClient:
        """An IAM client acting in the member account ``name`` (made once: AssumeRole)."""
        if name not in self._clients:
            self._clients[name] = self.aws.member_iam_client(self.id(name))
        return self._clients[name]

    def users(self, name: str) -> set[str]:
        return {user["UserName"] for user in self.iam(name).list_users()["Users"]}

    def groups_of(self, name: str, user: str) -> set[str]:
        found = self.iam(name).list_groups_for_user(UserName=user)["Groups"]
        return {group["GroupName"] for group in found}

    def grant(self, name: str, email: str = ALICE) -> dict[str, Any]:
        """Request (auto-approved) the account's Developers group for ``email``."""
        data: dict[str, Any] = self.hub.json(
            "request",
            "submit",
            f"group:Developers@{self.id(name)}",
            "--for",
            email,
            "--justification",
            "work",
        )
        assert data["status"] == "complete", data
        return data


@pytest.fixture
def org(aws: EmbeddedAWS, tmp_path: Path) -> Iterator[Org]:
    """Three member accounts (dev, staging, prod), each with a Developers group carrying
    ReadOnlyAccess; the management account is out of scope; approvals are automatic; the
    catalog is synced and alice (and admin) are identities."""
    seeded = seed_organization(aws)
    config = tmp_path / "hostsim.toml"
    config.write_text(CONFIG, encoding="utf-8")
    hub = IDHub(aws, tmp_path / "state.sqlite3", config)
    made = Org(aws, seeded, hub)
    for member in seeded.members:
        iam = made.iam(member.name)
        iam.create_group(GroupName="Developers")
        iam.attach_group_policy(GroupName="Developers", PolicyArn=READ_ONLY)
    hub.people("admin@example.com", ALICE)
    hub.run("catalog", "sync")
    yield made


def _entries(org: Org) -> dict[str, dict[str, Any]]:
    return {entry["id"]: entry for entry in org.hub.json("catalog", "list")}


def test_catalog_sync_qualifies_every_entry_with_its_account(org: Org) -> None:
    entries = _entries(org)
    for member in org.seeded.members:
        group = entries[f"group:Developers@{member.id}"]
        assert group["application"] == f"aws-iam@{member.id}"
        assert group["account_id"] == member.id
        assert group["carries"] == [f"policy:{READ_ONLY}@{member.id}"]
        assert entries[f"policy:{READ_ONLY}@{member.id}"]["present"] is True
    assert not [entry for entry in entries if "@" not in entry], "an unqualified entry"
    assert not [entry for entry in entries if org.seeded.management_id in entry]
    table = org.hub.run("catalog", "list").stdout
    assert "AWS_ACCOUNT" in table.splitlines()[0].upper()
    assert f"group:Developers@{org.id('dev')}" in table


def test_a_request_creates_the_account_in_its_aws_account_only(org: Org) -> None:
    org.grant("dev")
    assert org.users("dev") == {ALICE}
    assert org.groups_of("dev", ALICE) == {"Developers"}
    assert org.users("staging") == set()
    assert org.users("prod") == set()

    org.grant("staging")  # a second account for the same person, in staging
    assert org.users("staging") == {ALICE}
    assert org.groups_of("staging", ALICE) == {"Developers"}
    assert org.users("dev") == {ALICE}
    assert org.users("prod") == set()

    person = next(p for p in org.hub.json("identity", "list") if p["email"] == ALICE)
    assert sorted(person["account"]) == sorted(
        [f"{ALICE}@{org.id('dev')}", f"{ALICE}@{org.id('staging')}"]
    )
    held = {(row["entitlement"], row["via"]) for row in org.hub.json("access", ALICE)}
    for name in ("dev", "staging"):
        account = org.id(name)
        assert (f"group:Developers@{account}", "direct") in held
        assert (f"policy:{READ_ONLY}@{account}", f"group:Developers@{account}") in held
    assert not [e for e, _ in held if org.id("prod") in e]


def test_a_leaver_is_deleted_in_every_account(org: Org) -> None:
    org.grant("dev")
    org.grant("staging")
    # an account IDHub never linked (a fulfilment interrupted after its create): found by email
    org.iam("prod").create_user(UserName=ALICE)

    left = org.hub.json("identity", "remove", ALICE)

    done = {place["account_id"]: place["done"] for place in left["accounts"]}
    assert done == {org.id(name): "deleted" for name in ("dev", "staging", "prod")}
    for name in ("dev", "staging", "prod"):
        assert org.users(name) == set(), name
    assert org.hub.json("access", ALICE) == []
    person = next(p for p in org.hub.json("identity", "list") if p["email"] == ALICE)
    assert person["left_at"] is not None
    assert person["account"] == []
    # done once: one leave entry, and a second run changes nothing and still succeeds
    leaves = [
        e
        for e in org.hub.json("audit", "--subject", ALICE)
        if e["action"] == "identity.leave" and e["result"] == "done"
    ]
    assert len(leaves) == 1
    again = org.hub.json("identity", "remove", ALICE)
    assert {place["done"] for place in again["accounts"]} == {"none"}


def test_a_leaver_failing_in_one_account_is_finished_by_running_it_again(org: Org) -> None:
    org.grant("dev")
    org.grant("prod")
    org.aws.break_role(org.id("prod"))

    failed = org.hub.run("identity", "remove", ALICE, expect=1)

    assert f"aws-iam@{org.id('prod')}" in failed.stderr
    assert org.users("dev") == set()  # the other account was done
    person = next(p for p in org.hub.json("identity", "list") if p["email"] == ALICE)
    assert person["left_at"] is not None  # marked as left: nothing can give them access
    assert person["account"] == [f"{ALICE}@{org.id('prod')}"]
    refused = org.hub.run(
        "request",
        "submit",
        f"group:Developers@{org.id('staging')}",
        "--for",
        ALICE,
        "--justification",
        "x",
        expect=2,
    )
    assert "left" in refused.stderr


def test_reconcile_finds_an_out_of_band_grant_in_its_account_run_only(org: Org) -> None:
    org.grant("dev")
    org.grant("staging")
    org.iam("dev").attach_user_policy(UserName=ALICE, PolicyArn=SECURITY_AUDIT)

    report = org.hub.json("reconcile")

    runs = {run["account_id"]: run for run in report["runs"]}
    assert set(runs) == set(org.seeded.ids)
    dev = runs[org.id("dev")]
    assert dev["application"] == f"aws-iam@{org.id('dev')}"
    assert [(f["kind"], f["subject"]) for f in dev["findings"]] == [
        ("granted-out-of-band", f"policy:{SECURITY_AUDIT}@{org.id('dev')}")
    ]
    for name in ("staging", "prod"):
        assert runs[org.id(name)]["findings"] == [], name
        assert runs[org.id(name)]["status"] == "complete"
    table = org.hub.run("reconcile").stdout
    assert f"of aws-iam@{org.id('dev')}: complete" in table
    assert "SecurityAudit@" + org.id("dev") in table

    fixed = org.hub.json("reconcile", "--account", org.id("dev"), "--remediate", "revoke")
    assert [run["account_id"] for run in fixed["runs"]] == [org.id("dev")]
    assert [f["outcome"] for f in fixed["runs"][0]["findings"]] == ["done"]
    assert org.iam("dev").list_attached_user_policies(UserName=ALICE)["AttachedPolicies"] == []
    assert org.groups_of("dev", ALICE) == {"Developers"}  # what IDHub granted stays

    listed = org.hub.json("runs")
    assert {run["application"] for run in listed} == {f"aws-iam@{i}" for i in org.seeded.ids}
    org.hub.run("reconcile", "--account", "12345", expect=2)  # not an account id
    outside = org.hub.run("reconcile", "--account", org.seeded.management_id, expect=2)
    assert "not in scope" in outside.stderr  # the management account is excluded
    assert len(org.hub.json("runs")) == len(listed)  # and no run was logged for it


def test_an_unreadable_account_fails_only_its_run_and_loses_nobody(org: Org) -> None:
    org.grant("dev")
    org.grant("staging")
    org.aws.break_role(org.id("staging"))

    report = org.hub.json("reconcile", "--remediate", "all", "--stale-days", "0", expect=1)

    runs = {run["account_id"]: run for run in report["runs"]}
    assert runs[org.id("staging")]["status"] == "failed"
    assert runs[org.id("staging")]["findings"] == []
    assert runs[org.id("dev")]["status"] == "complete"
    assert runs[org.id("prod")]["status"] == "complete"
    every = [f for run in report["runs"] for f in run["findings"]]
    assert not [f for f in every if f["kind"] in ("missing-account", "stale-account")]
    assert not [f for f in every if f["action"] in ("drop", "delete")]
    person = next(p for p in org.hub.json("identity", "list") if p["email"] == ALICE)
    assert sorted(person["account"]) == sorted(
        [f"{ALICE}@{org.id('dev')}", f"{ALICE}@{org.id('staging')}"]
    )
    held = {row["entitlement"] for row in org.hub.json("access", ALICE)}
    assert f"group:Developers@{org.id('staging')}" in held
    # nor dropped as stale when nothing would recreate them
    failed = org.hub.run(
        "reconcile", "--remediate", "delete-orphans", "--stale-days", "0", expect=1
    )
    assert f"aws-iam@{org.id('staging')}" in failed.stderr
    assert "stale-account" not in failed.stdout
    assert org.hub.json("access", ALICE) != []


def test_the_deletion_threshold_counts_per_account(org: Org) -> None:
    dev = [f"dev{i}@example.com" for i in range(5)]
    org.hub.people(*dev, "bob@example.com")
    for email in dev:
        org.iam("dev").create_user(UserName=email)
    org.iam("prod").create_user(UserName="bob@example.com")
    linked = org.hub.json("reconcile")
    kinds = [(run["account_id"], f["kind"]) for run in linked["runs"] for f in run["findings"]]
    assert kinds.count((org.id("dev"), "correlated")) == 5
    assert kinds.count((org.id("prod"), "correlated")) == 1

    org.iam("prod").delete_user(UserName="bob@example.com")  # all of prod's one account
    # org-wide 1 of 6 accounts (17%) would pass a 20% threshold; prod's own 1 of 1 does not
    report = org.hub.json(
        "reconcile",
        "--remediate",
        "delete-orphans",
        "--stale-days",
        "0",
        "--deletion-threshold",
        "20",
        expect=2,
    )

    runs = {run["account_id"]: run for run in report["runs"]}
    assert [(f["kind"], f["outcome"]) for f in runs[org.id("prod")]["findings"]] == [
        ("stale-account", "refused")
    ]
    assert runs[org.id("prod")]["status"] == "refused"
    assert "1 of 1" in runs[org.id("prod")]["message"]
    assert runs[org.id("dev")]["status"] == "complete"
    assert runs[org.id("staging")]["status"] == "complete"
    bob = next(p for p in org.hub.json("identity", "list") if p["email"] == "bob@example.com")
    assert bob["account"] == [f"bob@example.com@{org.id('prod')}"]  # not dropped


def test_catalog_sync_keeps_the_entries_of_an_unreadable_account(org: Org) -> None:
    org.iam("dev").create_group(GroupName="Temporary")
    org.iam("prod").create_group(GroupName="Temporary")
    org.hub.run("catalog", "sync")
    org.iam("dev").delete_group(GroupName="Temporary")
    org.iam("prod").delete_group(GroupName="Temporary")
    org.aws.break_role(org.id("prod"))

    failed = org.hub.run("catalog", "sync", expect=1)

    assert f"aws-iam@{org.id('prod')}" in failed.stderr
    entries = _entries(org)
    assert entries[f"group:Temporary@{org.id('dev')}"]["present"] is False  # dev was synced
    assert entries[f"group:Temporary@{org.id('prod')}"]["present"] is True  # prod kept
    assert entries[f"group:Developers@{org.id('prod')}"]["present"] is True


def _tags(org: Org, name: str, user: str) -> dict[str, str]:
    found = org.iam(name).list_user_tags(UserName=user)["Tags"]
    return {tag["Key"]: tag["Value"] for tag in found}


def test_a_change_is_pushed_to_every_account_and_one_failure_loses_no_other(org: Org) -> None:
    org.grant("dev")
    org.grant("staging")
    org.hub.run("identity", "modify", ALICE, "--display-name", "Alice One")
    assert _tags(org, "dev", ALICE)["DisplayName"] == "Alice One"
    assert _tags(org, "staging", ALICE)["DisplayName"] == "Alice One"

    org.aws.break_role(org.id("staging"))
    failed = org.hub.run("identity", "modify", ALICE, "--display-name", "Alice Two", expect=1)

    assert f"aws-iam@{org.id('staging')}" in failed.stderr
    assert _tags(org, "dev", ALICE)["DisplayName"] == "Alice Two"
    person = next(p for p in org.hub.json("identity", "list") if p["email"] == ALICE)
    assert person["display_name"] == "Alice Two"  # kept, for reconciliation to push


def test_a_request_names_its_account_and_plans_there(org: Org) -> None:
    org.grant("dev")
    ambiguous = org.hub.run(
        "request", "submit", "group:Developers", "--for", ALICE, "--justification", "x", expect=2
    )
    assert "several AWS accounts" in ambiguous.stderr
    org.hub.run("catalog", "set", f"group:Developers@{org.id('prod')}", "--approval", "manager")
    org.hub.run("identity", "modify", ALICE, "--manager", "admin@example.com")
    pending = org.hub.json(
        "request",
        "submit",
        f"group:Developers@{org.id('prod')}",
        "--for",
        ALICE,
        "--justification",
        "on call",
    )
    assert pending["status"] == "pending"
    org.aws.clear_calls()
    shown = org.hub.json("request", "show", str(pending["id"]), "--plan")
    assert shown["plan"]["operation"] == "create"  # no account in prod yet: one is created
    assert org.aws.calls("iam", account=org.id("dev")) == []
    assert org.users("prod") == set()
    done = org.hub.json("request", "approve", str(pending["id"]))
    assert done["status"] == "complete"
    assert org.users("prod") == {ALICE}
    assert org.groups_of("prod", ALICE) == {"Developers"}


def test_a_request_left_approved_by_a_crash_is_resumed_in_its_account(org: Org) -> None:
    entitlement = f"group:Developers@{org.id('staging')}"
    submit = ("request", "submit", entitlement, "--for", ALICE, "--justification", "x")
    killed_at_first(org.hub, "CreateUser", *submit)
    assert [r["status"] for r in org.hub.json("request", "list")] == ["approved"]

    resumed = org.hub.json("request", "resume")

    assert [r["status"] for r in resumed] == ["complete"]
    assert org.users("staging") == {ALICE}
    assert org.groups_of("staging", ALICE) == {"Developers"}
    assert org.users("dev") == set()
    person = next(p for p in org.hub.json("identity", "list") if p["email"] == ALICE)
    assert person["account"] == [f"{ALICE}@{org.id('staging')}"]


def test_a_leaver_wins_over_a_fulfilment_in_flight_in_one_account(org: Org) -> None:
    entitlement = f"group:Developers@{org.id('staging')}"
    org.hub.run("catalog", "set", entitlement, "--approval", "manager")
    org.hub.run("identity", "modify", ALICE, "--manager", "admin@example.com")
    number = org.hub.json(
        "request", "submit", entitlement, "--for", ALICE, "--justification", "team"
    )["id"]
    org.aws.request_delay = 1.0
    approve = org.hub.popen("request", "approve", str(number))
    wait_for(
        lambda: query(org.hub, "SELECT attempts FROM requests WHERE id = ?", number)[0][0] > 0,
        "the fulfilment to start",
    )
    leaver = leave_while(org.hub, approve, ALICE)

    code, _, stderr = finished(approve)
    assert code == 1, stderr
    assert "the account it created was deleted" in stderr
    left, _ = waited_leave(leaver)
    assert left["undone"] == [
        f"request {number} (grant {entitlement}): the account it created was deleted"
    ]
    for name in ("dev", "staging", "prod"):
        assert org.users(name) == set(), name
    assert org.hub.json("request", "show", str(number))["status"] == "withdrawn"


def test_under_the_disable_policy_a_leaver_is_disabled_in_every_account(org: Org) -> None:
    org.grant("dev")
    org.grant("prod")
    assert org.hub.config is not None
    org.hub.config.write_text(
        CONFIG.replace("[idhub]\n", '[idhub]\nleaver = "disable"\ndelete_after_days = 30\n'),
        encoding="utf-8",
    )

    left = org.hub.json("identity", "remove", ALICE)

    done = {place["account_id"]: place["done"] for place in left["accounts"]}
    assert done == {
        org.id("dev"): "disabled",
        org.id("staging"): "none",
        org.id("prod"): "disabled",
    }
    for name in ("dev", "prod"):
        assert org.users(name) == {ALICE}, name  # kept, until its deletion is due
        assert "idhub-disabled" in org.iam(name).list_user_policies(UserName=ALICE)["PolicyNames"]
    person = next(p for p in org.hub.json("identity", "list") if p["email"] == ALICE)
    assert sorted(person["account"]) == sorted(
        [f"{ALICE}@{org.id('dev')}", f"{ALICE}@{org.id('prod')}"]
    )
    assert person["delete_due"] is not None
    assert org.hub.json("access", ALICE) == []
    report = org.hub.json("reconcile")  # disabled, not due yet: expected, no finding
    assert [f for run in report["runs"] for f in run["findings"]] == []
