"""The SCIM 2.0 API for ``aws-identity-center``: Entra ID and Okta provisioning into IAM
Identity Center, over real HTTP, against the embedded AWS's identity store.

Every request of ``tests/fixtures/scim/`` that the type can serve is replayed (as in
``test_scim_clients.py`` for aws-iam) and each step checked in the identity store with an
administrator's boto3 client; what the type cannot do (disable, managed policies, creating
groups) is refused with the status a client understands and nothing changed. Then what each
request costs, on two store sizes: the same, whatever the size.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx2
import pytest
from identity_center_seeding import ACCOUNT, IdentityCenter
from test_cli import HOSTSIM
from test_scim import TOKEN, ok, patch, scim_error
from test_scim_clients import replay

from hostsim.embedded_aws import EmbeddedAWS
from hostsim.plugins import get_plugin_manager, load_connectors
from hostsim.runtime import Runtime
from hostsim.scim import BASE_PATH, SCIM_READS, Credentials, ScimApp, make_wsgi_server

CONNECTOR = "aws-identity-center"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
SETTINGS: Mapping[str, Any] = {
    "assignment_poll_milliseconds": 10,
    "assignment_timeout_seconds": 5,
}
OKTA_DOMAIN = {"okta.local": "example.com"}
#: What each request may cost after the first (identitystore and sso-admin calls), on any
#: store size, for a user in one group. A read of one user: DescribeUser (GetUserId first, by
#: email), ListGroupMembershipsForMember with a DescribeGroup per group it is in, and
#: ListAccountAssignmentsForPrincipal. A PATCH: that read, then the modify (GetUserId,
#: DescribeUser, UpdateUser). A member added: GetGroupId and ListGroupMemberships (the group
#: read), then the grant (GetUserId, DescribeUser, GetGroupId, GetGroupMembershipId,
#: CreateGroupMembership); one removed, the same with DeleteGroupMembership (the member's
#: id-only ref is not taken for a stale index entry: no bulk read).
CAPS = {
    "GET /Users/{id}": 4,
    "GET /Users?filter=userName eq": 5,
    "PATCH /Users/{id} (displayName)": 7,
    "PATCH /Groups/{id} (add a member)": 7,
    "PATCH /Groups/{id} (remove a member)": 7,
}


@pytest.fixture
def center(aws: EmbeddedAWS) -> IdentityCenter:
    return IdentityCenter(aws)


@contextmanager
def serving() -> Iterator[str]:
    """A SCIM server for aws-identity-center on a free port; yields its SCIM base URL."""
    connector_type = load_connectors(get_plugin_manager()).choose(CONNECTOR)
    app = ScimApp(Runtime(connector_type, SETTINGS), Credentials(token=TOKEN))
    server = make_wsgi_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{app.base_url}{BASE_PATH}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def http(aws_env: EmbeddedAWS, center: IdentityCenter) -> Iterator[httpx2.Client]:
    with (
        serving() as url,
        httpx2.Client(
            base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as client,
    ):
        yield client


def store_user(center: IdentityCenter, email: str) -> dict[str, Any]:
    """The identity store's user of this userName, read as an administrator would."""
    store = center.store
    try:
        user_id = store.get_user_id(
            IdentityStoreId=center.store_id,
            AlternateIdentifier={
                "UniqueAttribute": {"AttributePath": "userName", "AttributeValue": email}
            },
        )["UserId"]
    except store.exceptions.ResourceNotFoundException:
        raise AssertionError(f"{email} is not in the identity store") from None
    found: dict[str, Any] = store.describe_user(IdentityStoreId=center.store_id, UserId=user_id)
    return found


def memberships_of(center: IdentityCenter, user_id: str) -> set[str]:
    """The display names of the groups the user is a member of, as the store has them."""
    listed = center.store.list_group_memberships_for_member(
        IdentityStoreId=center.store_id, MemberId={"UserId": user_id}
    )["GroupMemberships"]
    return {
        center.store.describe_group(IdentityStoreId=center.store_id, GroupId=m["GroupId"])[
            "DisplayName"
        ]
        for m in listed
    }


def seed_user(center: IdentityCenter, email: str) -> str:
    made = center.store.create_user(
        IdentityStoreId=center.store_id,
        UserName=email,
        Name={"GivenName": "First", "FamilyName": "Last"},
        DisplayName="First Last",
        Emails=[{"Value": email, "Type": "work", "Primary": True}],
    )
    return str(made["UserId"])


# --- serving at all -----------------------------------------------------------------------


def test_hostsim_serve_serves_identity_center_over_scim(
    aws: EmbeddedAWS, center: IdentityCenter, tmp_path: Any
) -> None:
    connector_type = load_connectors(get_plugin_manager()).choose(CONNECTOR)
    assert set(SCIM_READS) <= set(connector_type.fetch_kinds)
    seed_user(center, "ada@example.com")
    config = tmp_path / "idhub.toml"
    config.write_text("[aws-identity-center]\nassignment_poll_milliseconds = 10\n")
    env = {"PATH": "/usr/bin:/bin", **aws.client_env(), "IDHUB_SCIM_TOKEN": TOKEN}
    command = [HOSTSIM, "--connector", CONNECTOR, "--config", str(config), "serve", "--port", "0"]
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert f"serving {CONNECTOR} over SCIM at http://127.0.0.1:" in line, (
                line,
                process.stderr.read() if process.poll() is not None and process.stderr else "",
            )
            url = line.split(" at ", 1)[1].split(" ", 1)[0]
            with httpx2.Client(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as h:
                found = ok(
                    h.get(f"{url}/Users", params={"filter": 'userName eq "ada@example.com"'})
                )
                assert [user["userName"] for user in found["Resources"]] == ["ada@example.com"]
                assert TOKEN not in line
        finally:
            process.terminate()
            process.wait(timeout=30)


def test_read_account_and_read_group_answer_what_the_store_holds(
    aws_env: EmbeddedAWS, center: IdentityCenter
) -> None:
    runtime = Runtime(load_connectors(get_plugin_manager()).choose(CONNECTOR), SETTINGS)
    ada = seed_user(center, "ada@example.com")
    bob = seed_user(center, "bob@example.com")
    devs = center.group("developers")
    center.store.create_group_membership(
        IdentityStoreId=center.store_id, GroupId=devs, MemberId={"UserId": ada}
    )
    read_only = center.permission_set("ReadOnly")
    runtime.grant({"email": "ada@example.com", "entitlement": f"assignment:ReadOnly@{ACCOUNT}"})

    aws_env.clear_calls()
    detail = runtime.read_account({"email": " Ada@Example.com"})
    assert detail is not None
    assert (detail.account.id, detail.account.email) == (ada, "ada@example.com")
    assert detail.account.groups == ("developers",)
    assert {(h.entitlement, h.native_id, h.name) for h in detail.holdings} == {
        ("group:developers", devs, "developers"),
        (f"assignment:ReadOnly@{ACCOUNT}", read_only, "ReadOnly"),
    }
    assert aws_env.calls(None) == [
        "GetUserId",
        "DescribeUser",
        "ListGroupMembershipsForMember",
        "DescribeGroup",
        "ListAccountAssignmentsForPrincipal",
    ]
    by_id = runtime.read_account({"id": ada, "name": "stale@example.com"})
    assert by_id == detail, "read by id, the hint not needed"
    assert runtime.read_account({"id": ada, "email": "bob@example.com"}) is None
    assert runtime.read_account({"email": "nobody@example.com"}) is None
    assert runtime.read_account({"email": "not an email"}) is None
    assert runtime.read_account({"id": "00000000-0000-0000-0000-000000000000"}) is None
    aws_env.clear_calls()
    assert runtime.read_account({"id": "../etc"}) is None
    assert aws_env.calls(None) == [], "no id of the store: no call"

    group = runtime.read_group({"name": "developers"})
    assert group is not None
    assert (group.id, group.name, [m.id for m in group.members]) == (devs, "developers", [ada])
    assert runtime.read_group({"name": "nobody"}) is None
    assert bob not in [m.id for m in group.members]


# --- Microsoft Entra ID -------------------------------------------------------------------


def test_entra_sequence_into_identity_center(  # noqa: PLR0915
    http: httpx2.Client, center: IdentityCenter, aws: EmbeddedAWS
) -> None:
    upn = "test_user_ab6490ee@contoso.com"
    # the tutorial's create, with a user principal name (an email) as userName
    created = ok(
        replay(http, "entra_create_user", {"Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1": upn}),
        201,
    )
    native_id = created["id"]
    user = store_user(center, upn)
    assert native_id == user["UserId"]
    assert user["Name"] == {"GivenName": "givenName", "FamilyName": "familyName"}
    assert user["Emails"] == [{"Value": upn, "Type": "work", "Primary": True}]
    assert created["active"] is True
    assert "entitlements" not in created

    # lookup by userName (any spelling) and by id
    query = ok(
        replay(
            http,
            "entra_get_user_by_query",
            {"Test_User_dfeef4c5-5681-4387-b016-bdf221e82081": upn.upper()},
        )
    )
    assert [found["id"] for found in query["Resources"]] == [native_id]
    by_id = ok(http.get(f"/Users/{native_id}"))
    assert (by_id["userName"], by_id["name"]["familyName"]) == (upn, "familyName")

    # update, multi-valued: the work email is the userName (another one is read-only)
    ids = {"6764549bef60420686bc": native_id, "5171a35d82074e068ce2": native_id}
    assert "read-only" in scim_error(
        replay(http, "entra_update_user_multi_valued", ids), 400, "mutability"
    )
    assert store_user(center, upn)["Name"]["FamilyName"] == "familyName", "nothing half done"
    updated = ok(
        replay(http, "entra_update_user_multi_valued", {**ids, "updatedEmail@microsoft.com": upn})
    )
    assert updated["name"]["familyName"] == "updatedFamilyName"
    assert store_user(center, upn)["Name"]["FamilyName"] == "updatedFamilyName"

    # displayName
    ok(
        http.patch(
            f"/Users/{native_id}",
            json=patch({"op": "Replace", "path": "displayName", "value": "Test User"}),
        )
    )
    assert store_user(center, upn)["DisplayName"] == "Test User"

    # a new userName renames the user: userName and Emails change, the id stays
    new_upn = "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"
    renamed = ok(replay(http, "entra_update_user_single_valued", ids))
    assert (renamed["id"], renamed["userName"]) == (native_id, new_upn)
    moved = store_user(center, new_upn)
    assert moved["UserId"] == native_id
    assert moved["Emails"] == [{"Value": new_upn, "Type": "work", "Primary": True}]
    assert center.user(upn) is None
    assert ok(http.get(f"/Users/{native_id}"))["userName"] == new_upn

    # a soft delete (active "False"): Identity Center cannot disable; refused, nothing done
    detail = scim_error(replay(http, "entra_disable_user", ids), 400, "mutability")
    assert "cannot disable" in detail and "DELETE" in detail
    assert center.user_ids() == {native_id}
    assert ok(http.get(f"/Users/{native_id}"))["active"] is True
    # active true is what every user is: accepted, nothing to do
    assert ok(replay(http, "entra_enable_user", ids))["active"] is True

    # groups: Entra's create is refused (501), the group is made in Identity Center
    aws.clear_calls()
    assert "does not create groups" in scim_error(replay(http, "entra_create_group"), 501)
    assert aws.calls(None) == [], "refused before any call"
    assert center.store.list_groups(IdentityStoreId=center.store_id)["Groups"] == []
    group_id = center.group("displayName")
    members = {"a99962b9f99d4c4fac67": group_id}
    found = ok(http.get("/Groups", params={"filter": 'displayName eq "displayName"'}))
    assert [group["id"] for group in found["Resources"]] == [group_id]
    added = ok(replay(http, "entra_add_member", {**members, "f648f8d5ea4e4cd38e9c": native_id}))
    assert [(m["value"], m["display"]) for m in added["members"]] == [(native_id, new_upn)]
    assert center.members(group_id) == [native_id]
    # the user's groups reflect the membership
    groups = ok(http.get(f"/Users/{native_id}"))["groups"]
    assert [(g["value"], g["display"]) for g in groups] == [(group_id, "displayName")]
    # again: unchanged, still one membership
    ok(replay(http, "entra_add_member", {**members, "f648f8d5ea4e4cd38e9c": native_id}))
    assert center.members(group_id) == [native_id]
    removed = ok(
        replay(http, "entra_remove_member", {**members, "a2bc1e9d3f8a4f4e9f3d": native_id})
    )
    assert "members" not in removed
    assert center.members(group_id) == []
    assert "groups" not in ok(http.get(f"/Users/{native_id}"))

    # delete (Entra's hard delete): memberships removed first, then the user
    ok(replay(http, "entra_add_member", {**members, "f648f8d5ea4e4cd38e9c": native_id}))
    aws.clear_calls()
    ok(replay(http, "entra_delete_user", ids), 204)
    calls = aws.calls("identitystore")
    assert calls.index("DeleteGroupMembership") < calls.index("DeleteUser"), calls
    assert center.user_ids() == set()
    assert center.members(group_id) == []
    scim_error(http.get(f"/Users/{native_id}"), 404)
    scim_error(replay(http, "entra_delete_user", ids), 404)


def test_what_identity_center_cannot_hold_is_refused_and_nothing_changes(
    http: httpx2.Client, center: IdentityCenter, aws: EmbeddedAWS
) -> None:
    base = {"schemas": [USER], "userName": "kim@example.com", "name": {"givenName": "K"}}
    named = {**base, "name": {"givenName": "Kim", "familyName": "Lee"}}
    # no managed policies: entitlements are refused, never dropped
    assert "no managed policies" in scim_error(
        http.post("/Users", json={**named, "entitlements": [{"value": "arn:aws:iam::aws:x"}]}),
        400,
        "invalidValue",
    )
    # a user created disabled cannot be: refused before it is created
    assert "cannot disable" in scim_error(
        http.post("/Users", json={**named, "active": False}), 400, "mutability"
    )
    # the identity store requires both names
    assert "last_name" in scim_error(http.post("/Users", json=base), 400, "invalidValue")
    # the Entra enterprise attributes the store has no home for
    manager = replay(http, "entra_update_user_manager", {"5171a35d82074e068ce2": "nobody"})
    scim_error(manager, 404)
    assert center.user_ids() == set()

    native_id = ok(http.post("/Users", json=named), 201)["id"]
    ids = {"5171a35d82074e068ce2": native_id}
    detail = scim_error(replay(http, "entra_update_user_manager", ids), 400, "invalidValue")
    assert "manager" in detail and "no home for it" in detail and "aws-iam" not in detail
    assert "Title" not in store_user(center, "kim@example.com"), "nothing half done"
    # what the store does hold, the core attributes IAM has no place for, is stored
    nick = {"op": "replace", "value": {"nickName": "kimmy", "timezone": "Europe/Dublin"}}
    changed = ok(http.patch(f"/Users/{native_id}", json=patch(nick)))
    assert (changed["nickName"], changed["timezone"]) == ("kimmy", "Europe/Dublin")
    stored = store_user(center, "kim@example.com")
    assert (stored["NickName"], stored["Timezone"]) == ("kimmy", "Europe/Dublin")
    filtered = ok(http.get("/Users", params={"filter": 'nickName eq "kimmy"'}))
    assert [user["id"] for user in filtered["Resources"]] == [native_id]
    # Okta's deactivation, by PATCH and by PUT: refused, and the PUT's other changes too
    okta = {"23a35c27-23d3-4c03-b4c5-6443c09e7173": native_id}
    scim_error(replay(http, "okta_deactivate_user", okta), 400, "mutability")
    put = {**named, "name": {"givenName": "Changed", "familyName": "Lee"}, "active": False}
    aws.clear_calls()
    scim_error(http.put(f"/Users/{native_id}", json=put), 400, "mutability")
    assert aws.calls(None) == [], "refused before any call"
    assert store_user(center, "kim@example.com")["Name"]["GivenName"] == "Kim"
    assert "every account" in scim_error(
        http.patch(f"/Users/{native_id}", json=patch({"op": "remove", "path": "active"})),
        400,
        "mutability",
    )
    # an entitlement PATCH
    scim_error(
        http.patch(
            f"/Users/{native_id}",
            json=patch({"op": "add", "path": "entitlements", "value": [{"value": "x"}]}),
        ),
        400,
        "invalidValue",
    )
    # groups are neither created nor deleted here
    group_id = center.group("developers")
    aws.clear_calls()
    scim_error(http.delete(f"/Groups/{group_id}"), 501)
    assert aws.calls(None) == []
    assert center.store.describe_group(IdentityStoreId=center.store_id, GroupId=group_id)
    # never a delete: the user is still there
    assert center.user_ids() == {native_id}
    # discovery says so
    schemas = {s["id"]: s for s in ok(http.get("/Schemas"))["Resources"]}
    core = {a["name"]: a for a in schemas[USER]["attributes"]}
    assert "entitlements" not in core
    assert core["active"]["mutability"] == "readOnly"
    assert {"title", "userType", "nickName", "locale", "timezone", "profileUrl"} <= set(core)
    assert "not created or deleted" in schemas[GROUP]["description"]


# --- Okta ---------------------------------------------------------------------------------


def test_okta_sequence_into_identity_center(http: httpx2.Client, center: IdentityCenter) -> None:
    email = "test.user@example.com"
    created = ok(replay(http, "okta_create_user", OKTA_DOMAIN), 201)
    native_id = created["id"]
    assert "password" not in created
    user = store_user(center, email)
    assert (user["UserId"], user["DisplayName"]) == (native_id, "Test User")
    # locale has a home in the identity store: stored, not ignored as for IAM
    assert (created["locale"], user["Locale"]) == ("en-US", "en-US")
    assert user["Name"] == {"GivenName": "Test", "FamilyName": "User"}
    # a second POST of the same userName, in another spelling: 409, nothing made
    again = {"schemas": [USER], "userName": " Test.User@Example.com", "name": user["Name"]}
    scim_error(http.post("/Users", json=again), 409, "uniqueness")
    assert center.user_ids() == {native_id}

    found = ok(replay(http, "okta_get_user_by_username", OKTA_DOMAIN))
    assert [u["id"] for u in found["Resources"]] == [native_id]
    assert found["totalResults"] == 1

    ids = {"23a35c27-23d3-4c03-b4c5-6443c09e7173": native_id, **OKTA_DOMAIN}
    put = ok(replay(http, "okta_update_user_put", ids))
    assert put["name"]["givenName"] == "Another"
    changed = store_user(center, email)
    assert (changed["Name"]["GivenName"], changed["DisplayName"]) == ("Another", "Another User")

    # Group Push onto a group made in Identity Center (its name may have a space here)
    group_id = center.group("Test SCIMv2")
    members = {"abf4dd94-a4c0-4f67-89c9-76b03340cb9b": group_id, **ids}
    added = ok(replay(http, "okta_add_member", members))
    assert [m["value"] for m in added["members"]] == [native_id]
    assert memberships_of(center, native_id) == {"Test SCIMv2"}
    # a group PUT without members leaves them; one renaming the group is refused
    ok(http.put(f"/Groups/{group_id}", json={"schemas": [GROUP], "displayName": "Test SCIMv2"}))
    assert center.members(group_id) == [native_id]
    renaming = {"schemas": [GROUP], "displayName": "Other"}
    scim_error(http.put(f"/Groups/{group_id}", json=renaming), 400, "mutability")
    got = ok(http.get(f"/Groups/{group_id}"))
    assert [(m["value"], m["display"]) for m in got["members"]] == [(native_id, email)]
    ok(replay(http, "okta_remove_member", members))
    assert center.members(group_id) == []

    # deactivation cannot be done: refused, the user stays as it was
    scim_error(replay(http, "okta_deactivate_user", ids), 400, "mutability")
    assert store_user(center, email)["UserId"] == native_id


def test_the_list_pages_and_counts_every_user(http: httpx2.Client, center: IdentityCenter) -> None:
    emails = {f"user{index}@example.com" for index in range(7)}
    for email in sorted(emails):
        seed_user(center, email)
    seen: list[str] = []
    for start in (1, 4, 7):
        page = ok(http.get("/Users", params={"startIndex": start, "count": 3}))
        assert page["totalResults"] == 7
        assert page["startIndex"] == start
        assert page["itemsPerPage"] == len(page["Resources"]) == (3 if start < 7 else 1)
        seen += [user["userName"] for user in page["Resources"]]
    assert sorted(seen) == sorted(emails)
    assert ok(http.get("/Users", params={"startIndex": 8, "count": 3}))["Resources"] == []
    # a user made behind the server's back is found by filter and by id
    late = seed_user(center, "late@example.com")
    assert ok(http.get(f"/Users/{late}"))["userName"] == "late@example.com"
    scim_error(http.get("/Users/00000000-0000-0000-0000-000000000000"), 404)
    scim_error(http.get("/Users/not-an-id"), 404)


# --- costs ----------------------------------------------------------------------------------


def measure(center: IdentityCenter, aws: EmbeddedAWS, email: str, suffix: str) -> Meter:
    """Every capped request once for the user of ``email`` (in one group), on a fresh server
    whose first request built its index."""
    target = store_user(center, email)["UserId"]
    group_id = center.group(f"team-{suffix}")
    team = center.group(f"other-{suffix}")
    center.store.create_group_membership(
        IdentityStoreId=center.store_id, GroupId=team, MemberId={"UserId": target}
    )
    meter = Meter(aws)
    with (
        serving() as url,
        httpx2.Client(
            base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
        ) as http,
    ):
        ok(http.get("/Users", params={"count": 1}))  # builds the index
        got = meter("GET /Users/{id}", lambda: http.get(f"/Users/{target}"))
        assert [g["display"] for g in got["groups"]] == [f"other-{suffix}"]
        found = meter(
            "GET /Users?filter=userName eq",
            lambda: http.get("/Users", params={"filter": f'userName eq "{email}"'}),
        )
        assert [user["id"] for user in found["Resources"]] == [target]
        meter(
            "PATCH /Users/{id} (displayName)",
            lambda: http.patch(
                f"/Users/{target}",
                json=patch({"op": "replace", "path": "displayName", "value": "Renamed"}),
            ),
        )
        meter(
            "PATCH /Groups/{id} (add a member)",
            lambda: http.patch(
                f"/Groups/{group_id}",
                json=patch({"op": "add", "path": "members", "value": [{"value": target}]}),
            ),
        )
        assert center.members(group_id) == [target]
        meter(
            "PATCH /Groups/{id} (remove a member)",
            lambda: http.patch(
                f"/Groups/{group_id}",
                json=patch({"op": "remove", "path": f'members[value eq "{target}"]'}),
            ),
        )
    assert center.members(group_id) == []
    assert store_user(center, email)["DisplayName"] == "Renamed"
    return meter


class Meter:
    """The AWS calls (every service) of one request at a time."""

    def __init__(self, aws: EmbeddedAWS) -> None:
        self.aws = aws
        self.costs: dict[str, int] = {}
        self.mixes: dict[str, list[str]] = {}

    def __call__(self, name: str, request: Callable[[], httpx2.Response]) -> Any:
        self.aws.clear_calls()
        body = ok(request())
        self.mixes[name] = self.aws.calls(None)
        self.costs[name] = len(self.mixes[name])
        return body


def test_single_requests_cost_the_same_on_any_store_size(
    aws_env: EmbeddedAWS, center: IdentityCenter
) -> None:
    for index in range(20):
        seed_user(center, f"user{index:04}@example.com")
    small = measure(center, aws_env, "user0003@example.com", "small")
    for index in range(20, 200):
        seed_user(center, f"user{index:04}@example.com")
    large = measure(center, aws_env, "user0150@example.com", "large")
    print(f"\nidentity center SCIM costs: 20 users {small.costs}, 200 users {large.costs}")
    print(f"calls on 200 users: {large.mixes}")
    assert small.costs == large.costs, (small.mixes, large.mixes)
    for name, cap in CAPS.items():
        assert large.costs[name] <= cap, (name, large.mixes[name], cap)


@pytest.fixture(autouse=True)
def _no_foreign_token(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("IDHUB_SCIM_TOKEN", "IDHUB_SCIM_USERNAME", "IDHUB_SCIM_PASSWORD"):
        if name in os.environ:
            monkeypatch.delenv(name)
