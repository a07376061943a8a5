"""End to end: IDHub's side (catalog, requests with approvals and fulfilment, access,
reconciliation with remedies, leavers) with ``connector = "aws-identity-center"``, through the
installed ``hostsim`` command (one fresh process per command) against the embedded AWS's
Identity Center (assignments asynchronous, as in AWS).

The core reads this connector through the contract's well-known ``entitlements`` and
``access`` reads, never its own rows. Every test looks at both sides: what IDHub recorded (the
CLI's JSON) and what the identity store and sso-admin hold (an administrator's boto3 clients).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from identity_center_seeding import ACCOUNT, OTHER_ACCOUNT, IdentityCenter
from idhub_cli import IDHub, email, hub_for, people

from hostsim.embedded_aws import EmbeddedAWS

CONFIG = """connector = "aws-identity-center"

[aws-identity-center]
assignment_poll_milliseconds = 10
assignment_timeout_seconds = 5
"""
ANN = email("ann")
BOSS = email("boss")
OWNER = email("owner")
DEVELOPERS = "group:developers"
OPS = "group:ops"
ADMIN = f"assignment:Admin@{ACCOUNT}"
READ_ONLY = f"assignment:ReadOnly@{ACCOUNT}"
READ_ONLY_ELSEWHERE = f"assignment:ReadOnly@{OTHER_ACCOUNT}"
#: sso-admin and identitystore actions that only read.
READS = ("Describe", "List", "Get")

Finding = tuple[str, str, str, str]


@pytest.fixture
def center(aws: EmbeddedAWS) -> IdentityCenter:
    return IdentityCenter(aws)


@pytest.fixture
def hub(aws: EmbeddedAWS, tmp_path: Path) -> IDHub:
    """IDHub whose config names the Identity Center connector (no --connector given), with
    Ann (managed by Boss, with the names the identity store requires), Boss and an owner."""
    idhub = hub_for(aws, tmp_path, CONFIG)
    idhub.people(BOSS, OWNER)
    add_person(idhub, "ann", manager=BOSS)
    return idhub


# --- helpers --------------------------------------------------------------------------------


def add_person(hub: IDHub, person: str, manager: str | None = None) -> None:
    extra = ["--manager", manager] if manager else []
    name = person.title()
    hub.run(
        "identity",
        "add",
        email(person),
        "--first-name",
        name,
        "--last-name",
        "Lee",
        "--display-name",
        f"{name} Lee",
        *extra,
    )


def provision(center: IdentityCenter, permission_set_arn: str, account: str = ACCOUNT) -> None:
    """Provision a permission set to an account, as an administrator would."""
    center.sso.provision_permission_set(
        InstanceArn=center.instance_arn,
        PermissionSetArn=permission_set_arn,
        TargetType="AWS_ACCOUNT",
        TargetId=account,
    )


def assign_user(
    center: IdentityCenter, user_id: str, permission_set_arn: str, account: str = ACCOUNT
) -> None:
    """Assign a permission set to a user out of band, as an administrator would, and await it."""
    started = center.start_assignment("USER", user_id, permission_set_arn, account)
    status = started
    while status["Status"] == "IN_PROGRESS":
        status = center.sso.describe_account_assignment_creation_status(
            InstanceArn=center.instance_arn,
            AccountAssignmentCreationRequestId=started["RequestId"],
        )["AccountAssignmentCreationStatus"]
    assert status["Status"] == "SUCCEEDED"


def join(center: IdentityCenter, group_id: str, user_id: str) -> None:
    center.store.create_group_membership(
        IdentityStoreId=center.store_id, GroupId=group_id, MemberId={"UserId": user_id}
    )


def submit(hub: IDHub, entitlement: str, *extra: str, for_: str = ANN) -> dict[str, Any]:
    request: dict[str, Any] = hub.json(
        "request",
        "submit",
        entitlement,
        "--for",
        for_,
        "--justification",
        "on call for the platform",
        *extra,
    )
    return request


def auto(hub: IDHub, *entitlements: str) -> None:
    hub.run("catalog", "sync")
    for entitlement in entitlements:
        hub.run("catalog", "set", entitlement, "--approval", "auto")


def user_id(center: IdentityCenter, address: str) -> str:
    user = center.user(address)
    assert user is not None, f"no identity-store user {address}"
    return str(user["UserId"])


def why(hub: IDHub, person: str = ANN) -> set[tuple[str, str]]:
    """``hostsim access``: what the person holds by IDHub's records, and through what."""
    return {(row["entitlement"], row["via"]) for row in hub.json("access", person)}


def found(report: dict[str, Any]) -> set[Finding]:
    """Each finding as (account, kind, subject, action)."""
    return {(f["account"], f["kind"], f["subject"], f["action"]) for f in report["findings"]}


def outcomes(report: dict[str, Any]) -> dict[str, str]:
    return {f["subject"]: f["outcome"] for f in report["findings"]}


def writes(aws: EmbeddedAWS) -> list[str]:
    return [action for action in aws.calls(None) if not action.startswith(READS)]


# --- the catalog ----------------------------------------------------------------------------


def test_catalog_sync_lists_groups_with_assignments_and_permission_sets_where_assignable(
    aws: EmbeddedAWS, center: IdentityCenter, hub: IDHub
) -> None:
    developers = center.group("developers")
    center.group("ops")
    admin = center.permission_set("Admin")
    read_only = center.permission_set("ReadOnly")
    center.permission_set("Unused")  # neither provisioned nor assigned: nowhere to assign it
    provision(center, admin)  # provisioned to the account, assigned to nobody yet
    center.assign_group(developers, read_only, OTHER_ACCOUNT)  # seen in an assignment only

    synced = hub.json("catalog", "sync")
    assert sorted(synced["added"]) == sorted([DEVELOPERS, OPS, ADMIN, READ_ONLY_ELSEWHERE])
    entries = {entry["id"]: entry for entry in hub.json("catalog", "list")}
    assert set(entries) == {DEVELOPERS, OPS, ADMIN, READ_ONLY_ELSEWHERE}
    assert entries[DEVELOPERS]["kind"] == "group"
    assert entries[DEVELOPERS]["native_id"] == developers
    assert entries[DEVELOPERS]["carries"] == [READ_ONLY_ELSEWHERE]
    assert entries[OPS]["carries"] == []
    assert (entries[ADMIN]["kind"], entries[ADMIN]["native_id"]) == ("assignment", admin)
    assert entries[READ_ONLY_ELSEWHERE]["native_id"] == read_only
    assert OTHER_ACCOUNT in entries[READ_ONLY_ELSEWHERE]["description"]
    assert "ListAccountsForProvisionedPermissionSet" in aws.calls(None)
    assert writes(aws) == [
        "CreateGroup",
        "CreateGroup",
        "CreatePermissionSet",
        "CreatePermissionSet",
        "CreatePermissionSet",
        "ProvisionPermissionSet",
        "CreateAccountAssignment",
    ]  # the sync itself changed nothing

    again = hub.json("catalog", "sync")
    assert (again["added"], again["updated"], again["unchanged"]) == ([], [], 4)
    table = hub.run("catalog", "list").stdout
    assert f"ReadOnly@{OTHER_ACCOUNT}" in table  # what developers carries


# --- requests -------------------------------------------------------------------------------


def test_a_request_for_an_assignment_passes_its_chain_and_creates_the_user_holding_it(
    aws: EmbeddedAWS, center: IdentityCenter, hub: IDHub
) -> None:
    admin = center.permission_set("Admin")
    provision(center, admin)
    hub.run("catalog", "sync")
    hub.run("catalog", "set", ADMIN, "--owner", OWNER, "--approval", "manager,owner")

    request = submit(hub, ADMIN)
    assert request["status_text"] == f"waiting for manager approval ({BOSS})"
    refused = hub.run("request", "approve", str(request["id"]), as_=OWNER, expect=2)
    assert "hostsim: error:" in refused.stderr  # not the owner's turn yet
    assert center.user(ANN) is None
    step = hub.json("request", "approve", str(request["id"]), as_=BOSS)
    assert step["status_text"] == f"waiting for owner approval ({OWNER})"
    assert center.user(ANN) is None  # nothing reaches AWS before the last approval

    done = hub.json("request", "approve", str(request["id"]), as_=OWNER)
    assert done["status"] == "complete"
    ann = user_id(center, ANN)
    assert center.assignments(ann) == {(admin, ACCOUNT)}
    user = center.user(ANN)
    assert user is not None
    assert user["Name"] == {"GivenName": "Ann", "FamilyName": "Lee"}
    grant = [s for s in done["steps"] if s["target"] == ADMIN]
    assert [s["status"] for s in grant] == ["done"]
    assert grant[0]["detail"].startswith("SUCCEEDED after ")  # polled until AWS finished
    assert "DescribeAccountAssignmentCreationStatus" in aws.calls(None)
    assert people(hub)[ANN]["account"] == ANN
    assert why(hub) == {(ADMIN, "direct")}

    entries = hub.json("audit", "--request", str(request["id"]))
    assert [(e["action"], e["actor"], e["result"]) for e in entries] == [
        ("request.grant", "admin@example.com", "pending"),
        ("request.approve", BOSS, "pending"),  # the owner's step still to come
        ("request.approve", OWNER, "approved"),
        ("account.link", OWNER, "done"),
        ("fulfil.grant", OWNER, "complete"),
    ]
    fulfilled = entries[-1]["detail"]
    assert fulfilled["entitlement"] == ADMIN
    assert [s["status"] for s in fulfilled["steps"]] == ["done"] * len(fulfilled["steps"])


def test_a_group_request_shows_what_it_carries_and_a_direct_assignment_survives_its_revocation(
    center: IdentityCenter, hub: IDHub
) -> None:
    developers = center.group("developers")
    read_only = center.permission_set("ReadOnly")
    center.assign_group(developers, read_only)
    auto(hub, DEVELOPERS, READ_ONLY)

    assert submit(hub, DEVELOPERS)["status"] == "complete"
    assert submit(hub, READ_ONLY)["status"] == "complete"
    ann = user_id(center, ANN)
    assert center.members(developers) == [ann]
    assert center.assignments(ann) == {(read_only, ACCOUNT)}  # the direct one
    assert why(hub) == {
        (DEVELOPERS, "direct"),
        (READ_ONLY, DEVELOPERS),  # provenance: what the group carries
        (READ_ONLY, "direct"),
    }
    clean = hub.json("reconcile")
    assert found(clean) == set()  # IDHub's grants and AWS agree

    revoked = submit(hub, DEVELOPERS, "--revoke")
    assert revoked["status"] == "complete"
    assert center.members(developers) == []
    assert center.assignments(ann) == {(read_only, ACCOUNT)}  # the direct one survives
    assert center.assignments(developers, "GROUP") == {(read_only, ACCOUNT)}  # group untouched
    assert why(hub) == {(READ_ONLY, "direct")}
    assert found(hub.json("reconcile")) == set()


def test_a_mover_is_pushed_to_the_identity_store_and_drift_made_there_is_found(
    center: IdentityCenter, hub: IDHub
) -> None:
    center.group("developers")
    auto(hub, DEVELOPERS)
    assert submit(hub, DEVELOPERS)["status"] == "complete"
    ann = user_id(center, ANN)

    hub.run("identity", "modify", ANN, "--display-name", "Ann B. Lee")
    user = center.user(ANN)
    assert user is not None
    assert (user["UserId"], user["DisplayName"]) == (ann, "Ann B. Lee")
    assert hub.json("reconcile")["findings"] == []

    center.store.update_user(
        IdentityStoreId=center.store_id,
        UserId=ann,
        Operations=[{"AttributePath": "displayName", "AttributeValue": "Annie"}],
    )
    report = hub.json("reconcile")
    assert found(report) == {(ANN, "attribute-drift", "display_name", "report")}
    [drift] = report["findings"]
    assert (drift["idhub"], drift["app"], drift["detail"]) == ("Ann B. Lee", "Annie", "would push")
    pushed = hub.json("reconcile", "--remediate", "attributes")
    assert outcomes(pushed) == {"display_name": "done"}
    user = center.user(ANN)
    assert user is not None
    assert user["DisplayName"] == "Ann B. Lee"


# --- reconciliation -------------------------------------------------------------------------


def test_reconcile_finds_a_membership_and_an_assignment_made_out_of_band_and_revokes_them(
    aws: EmbeddedAWS, center: IdentityCenter, hub: IDHub
) -> None:
    developers = center.group("developers")
    ops = center.group("ops")
    admin = center.permission_set("Admin")
    read_only = center.permission_set("ReadOnly")
    provision(center, admin)
    center.assign_group(developers, read_only)
    auto(hub, DEVELOPERS)
    assert submit(hub, DEVELOPERS)["status"] == "complete"
    ann = user_id(center, ANN)

    join(center, ops, ann)  # behind IDHub's back
    assign_user(center, ann, admin)

    aws.clear_calls()
    report = hub.json("reconcile")
    assert writes(aws) == []  # a report changes nothing
    assert report["status"] == "complete"
    assert found(report) == {
        (ANN, "granted-out-of-band", OPS, "report"),
        (ANN, "granted-out-of-band", ADMIN, "report"),
    }  # ReadOnly, held through developers, is no finding

    fixed = hub.json("reconcile", "--remediate", "revoke")
    assert found(fixed) == {
        (ANN, "granted-out-of-band", OPS, "revoke"),
        (ANN, "granted-out-of-band", ADMIN, "revoke"),
    }
    assert outcomes(fixed) == {OPS: "done", ADMIN: "done"}
    assert center.members(ops) == []
    assert center.members(developers) == [ann]  # what IDHub granted stays
    assert center.assignments(ann) == set()
    assert found(hub.json("reconcile")) == set()


def test_access_removed_out_of_band_is_reported_and_restored(
    center: IdentityCenter, hub: IDHub
) -> None:
    developers = center.group("developers")
    auto(hub, DEVELOPERS)
    assert submit(hub, DEVELOPERS)["status"] == "complete"
    ann = user_id(center, ANN)
    [membership] = center.store.list_group_memberships(
        IdentityStoreId=center.store_id, GroupId=developers
    )["GroupMemberships"]
    center.store.delete_group_membership(
        IdentityStoreId=center.store_id, MembershipId=membership["MembershipId"]
    )

    assert found(hub.json("reconcile")) == {(ANN, "removed-out-of-band", DEVELOPERS, "report")}
    restored = hub.json("reconcile", "--remediate", "restore")
    assert outcomes(restored) == {DEVELOPERS: "done"}
    assert center.members(developers) == [ann]


def test_an_identity_store_user_nobody_owns_is_an_orphan_and_delete_orphans_deletes_it(
    center: IdentityCenter, hub: IDHub
) -> None:
    auto(hub)
    made = center.store.create_user(
        IdentityStoreId=center.store_id,
        UserName="mallory@example.com",
        DisplayName="Mallory",
        Name={"GivenName": "Mallory", "FamilyName": "M"},
        Emails=[{"Value": "mallory@example.com", "Type": "work", "Primary": True}],
    )
    report = hub.json("reconcile")
    assert found(report) == {
        ("mallory@example.com", "orphan-account", "mallory@example.com", "report")
    }
    assert made["UserId"] in center.user_ids()

    removed = hub.json("reconcile", "--remediate", "delete-orphans", "--deletion-threshold", "100")
    assert outcomes(removed) == {"mallory@example.com": "done"}
    assert center.user_ids() == set()


# --- leavers --------------------------------------------------------------------------------


def test_a_leaver_loses_the_user_after_its_assignments_and_memberships(
    aws: EmbeddedAWS, center: IdentityCenter, hub: IDHub
) -> None:
    developers = center.group("developers")
    read_only = center.permission_set("ReadOnly")
    center.assign_group(developers, read_only)
    auto(hub, DEVELOPERS, READ_ONLY)
    submit(hub, DEVELOPERS)
    submit(hub, READ_ONLY)
    ann = user_id(center, ANN)

    aws.clear_calls()
    left = hub.json("identity", "remove", ANN)
    assert left["leaver"]["done"] == "deleted"
    assert center.user(ANN) is None
    assert center.members(developers) == []
    assert center.assignments(ann) == set()
    changes = writes(aws)
    assert changes[-1] == "DeleteUser"
    assert {"DeleteAccountAssignment", "DeleteGroupMembership"} <= set(changes[:-1])
    assert why(hub) == set()  # every grant closed
    assert people(hub)[ANN]["account"] is None
    assert found(hub.json("reconcile")) == set()  # nothing left behind


def test_the_display_name_the_store_derives_is_no_drift_while_idhub_has_none(
    center: IdentityCenter, hub: IDHub
) -> None:
    center.group("developers")
    auto(hub, DEVELOPERS)
    bo = email("bo")
    hub.run("identity", "add", bo, "--first-name", "Bo", "--last-name", "Nix")
    assert submit(hub, DEVELOPERS, for_=bo)["status"] == "complete"
    user = center.user(bo)
    assert user is not None and user["DisplayName"] == "Bo Nix"  # the connector's default
    assert hub.json("reconcile")["findings"] == []
    # once IDHub has a display name, a different one in the store is drift as before
    hub.run("identity", "modify", bo, "--display-name", "Bo N.")
    center.store.update_user(
        IdentityStoreId=center.store_id,
        UserId=user["UserId"],
        Operations=[{"AttributePath": "displayName", "AttributeValue": "Bobby"}],
    )
    assert found(hub.json("reconcile")) == {(bo, "attribute-drift", "display_name", "report")}
