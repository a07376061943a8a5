"""What each SCIM request costs in IAM calls, and that the cost does not grow with the account.

A server over real HTTP (as in ``test_scim.py``) on accounts of 300 and 3,000 users, seeded
straight into moto's backend. The bulk read's page is forced down to 100 users, so a request
that reads the whole account shows it (3 calls on 300 users, 30 on 3,000). Each request is
measured after the first (which builds the server's index), and must cost at most its cap and
no more on 3,000 users than on 300. Then the index's promises: what changes behind the
server's back is read as it is, never served from the index; an invalid request costs no
call; concurrent requests are not serialised and stay consistent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import httpx2
import pytest
from attrs import evolve
from seeding import document
from test_scim import PATCH, SETTINGS, TOKEN, USER, ok, scim_error, serving

from hostsim.contract.model import Account, Capability
from hostsim.embedded_aws import EmbeddedAWS, moto_state
from hostsim.plugins import get_plugin_manager, load_connectors
from hostsim.runtime import Runtime
from hostsim.scim.index import AccountIndex, Known
from idhub_aws_plugin import reconcile

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

REGION = "us-east-1"
#: The four calls of one account's read.
READS = ["GetUser", "ListGroupsForUser", "ListAttachedUserPolicies", "ListUserPolicies"]
#: The bulk read's page in these tests (IAM's largest is 1,000): small, so a leak shows.
PAGE_SIZE = 100
#: The most IAM calls each request may cost after the first, on any account size (issue 14).
CAPS = {
    "GET /Users/{id}": 4,
    "GET /Users?filter=userName eq": 4,
    "GET /Users?count=100": 6,
    "POST /Users": 5,
    "PATCH /Users/{id} (an attribute)": 7,
    "PATCH /Groups/{id} (add a member)": 8,
    "PATCH /Groups/{id} (add a member, the group carrying a policy)": 8,
}


@pytest.fixture(autouse=True)
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reconcile, "PAGE", {"PageSize": PAGE_SIZE})


def email(index: int) -> str:
    return f"user{index:05}@example.com"


def seed(aws: EmbeddedAWS, start: int, end: int) -> None:
    """Users ``start`` to ``end - 1`` as the connector makes them, straight into moto."""
    backend = moto_state.iam_backend(aws.account_id)
    for index in range(start, end):
        tags = {"Email": email(index), "FirstName": f"First{index}", "LastName": f"Last{index}"}
        backend.create_user(
            REGION, email(index), "/", [{"Key": k, "Value": v} for k, v in tags.items()]
        )


@pytest.fixture
def account(aws_env: EmbeddedAWS, iam: IAMClient) -> dict[str, str]:
    """Two groups (one carrying a policy) and a policy to grant; returns their ids."""
    arn = iam.create_policy(PolicyName="reports-read", PolicyDocument=document())["Policy"]["Arn"]
    iam.create_group(GroupName="developers")
    iam.attach_group_policy(GroupName="developers", PolicyArn=arn)
    iam.create_group(GroupName="auditors")
    ids = {g["GroupName"]: g["GroupId"] for g in iam.list_groups()["Groups"]}
    return {"policy": arn, **ids}


@contextmanager
def client(url: str) -> Iterator[httpx2.Client]:
    with httpx2.Client(
        base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
    ) as http:
        yield http


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": list(operations)}


class Meter:
    """The IAM calls of one request at a time."""

    def __init__(self, aws: EmbeddedAWS) -> None:
        self.aws = aws
        self.costs: dict[str, int] = {}
        self.mixes: dict[str, list[str]] = {}

    def __call__(self, name: str, request: Callable[[], httpx2.Response]) -> httpx2.Response:
        self.aws.clear_calls()
        response = request()
        calls = self.aws.calls()
        self.costs[name] = len(calls)
        self.mixes[name] = calls
        return response


def user_ids(iam: IAMClient, *names: str) -> list[str]:
    return [iam.get_user(UserName=name)["User"]["UserId"] for name in names]


def measure(aws: EmbeddedAWS, iam: IAMClient, ids: Mapping[str, str], size: int) -> Meter:
    """Every capped request once, on a fresh server whose first request built its index."""
    meter = Meter(aws)
    target, member = user_ids(iam, email(size // 2), email(size // 3))
    total = len(moto_state.iam_backend(aws.account_id).users)
    with serving(SETTINGS) as url, client(url) as http:
        ok(http.get("/Users", params={"count": 1}))  # the first request: the index is built
        got = ok(meter("GET /Users/{id}", lambda: http.get(f"/Users/{target}")))
        assert got["userName"] == email(size // 2)
        found = ok(
            meter(
                "GET /Users?filter=userName eq",
                lambda: http.get(
                    "/Users", params={"filter": f'userName eq "{email(size // 2).upper()}"'}
                ),
            )
        )
        assert [user["id"] for user in found["Resources"]] == [target]
        page = ok(meter("GET /Users?count=100", lambda: http.get("/Users", params={"count": 100})))
        assert (page["totalResults"], len(page["Resources"])) == (total, 100)
        created = ok(
            meter(
                "POST /Users",
                lambda: http.post(
                    "/Users",
                    json={
                        "schemas": [USER],
                        "userName": f"joiner{size}@example.com",
                        "name": {"givenName": "Jo"},
                        "entitlements": [{"value": ids["policy"]}],
                    },
                ),
            ),
            201,
        )
        assert created["entitlements"] == [{"value": ids["policy"]}]
        patched = ok(
            meter(
                "PATCH /Users/{id} (an attribute)",
                lambda: http.patch(
                    f"/Users/{target}",
                    json=patch({"op": "replace", "path": "displayName", "value": "Renamed"}),
                ),
            )
        )
        assert (patched["displayName"], patched["name"]["givenName"]) == (
            "Renamed",
            f"First{size // 2}",
        )
        for name, group_name in (
            ("PATCH /Groups/{id} (add a member)", "auditors"),
            ("PATCH /Groups/{id} (add a member, the group carrying a policy)", "developers"),
        ):
            group = ok(
                meter(
                    name,
                    lambda group_name=group_name: http.patch(  # type: ignore[misc]
                        f"/Groups/{ids[group_name]}",
                        json=patch({"op": "add", "path": "members", "value": [{"value": member}]}),
                    ),
                )
            )
            assert [(m["value"], m["display"]) for m in group["members"]] == [
                (member, email(size // 3))
            ]
    return meter


def test_each_request_costs_at_most_its_cap_and_the_same_on_300_and_3000_users(
    account: dict[str, str], aws_env: EmbeddedAWS, iam: IAMClient
) -> None:
    seed(aws_env, 0, 300)
    small = measure(aws_env, iam, account, 300)
    seed(aws_env, 300, 3000)
    for group_name in ("auditors", "developers"):  # each run adds its own member
        iam.remove_user_from_group(GroupName=group_name, UserName=email(100))
    large = measure(aws_env, iam, account, 3000)
    for name, cost in large.costs.items():
        assert cost <= CAPS.get(name, cost), (name, large.mixes[name])
        assert cost <= small.costs[name], (name, small.mixes[name], large.mixes[name])
    # the writes are answered from what they did: nothing is read back after them
    assert "GetUser" not in large.mixes["POST /Users"]
    # only the list page reads the bulk read's pages, and only the one it shows
    assert large.mixes["GET /Users?count=100"] == ["GetAccountAuthorizationDetails"]
    for name, calls in large.mixes.items():
        if name != "GET /Users?count=100":
            assert "GetAccountAuthorizationDetails" not in calls, name


def test_the_cost_of_each_request(
    account: dict[str, str], aws_env: EmbeddedAWS, iam: IAMClient
) -> None:
    """The calls each request sends, as the README quotes them."""
    seed(aws_env, 0, 300)
    meter = measure(aws_env, iam, account, 300)
    assert meter.mixes == {
        "GET /Users/{id}": [
            "GetUser",
            "ListGroupsForUser",
            "ListAttachedUserPolicies",
            "ListUserPolicies",
        ],
        "GET /Users?filter=userName eq": [
            "GetUser",
            "ListGroupsForUser",
            "ListAttachedUserPolicies",
            "ListUserPolicies",
        ],
        "GET /Users?count=100": ["GetAccountAuthorizationDetails"],
        # the policy is judged before anything changes; CreateUser is the uniqueness check
        "POST /Users": ["GetPolicy", "GetPolicyVersion", "CreateUser", "AttachUserPolicy"],
        "PATCH /Users/{id} (an attribute)": [
            "GetUser",
            "ListGroupsForUser",
            "ListAttachedUserPolicies",
            "ListUserPolicies",
            "GetUser",
            "TagUser",
        ],
        "PATCH /Groups/{id} (add a member)": [
            "GetGroup",  # the group and its members, for the response
            "GetUser",  # the connector's grant: the user, in scope?
            "ListAttachedGroupPolicies",  # the group may be granted: its policies judged
            "ListGroupPolicies",
            "ListGroupsForUser",  # read before write
            "AddUserToGroup",
        ],
        # a group carrying a policy costs its document's reads once every 10 s (the
        # connector's GrantableCache)
        "PATCH /Groups/{id} (add a member, the group carrying a policy)": [
            "GetGroup",
            "GetUser",
            "ListAttachedGroupPolicies",
            "GetPolicy",
            "GetPolicyVersion",
            "ListGroupPolicies",
            "ListGroupsForUser",
            "AddUserToGroup",
        ],
    }


# --- the index is a hint, never the truth ----------------------------------------------


@pytest.fixture
def http(account: dict[str, str], aws_env: EmbeddedAWS) -> Iterator[httpx2.Client]:
    """A server on an account of 300 users whose index is built."""
    seed(aws_env, 0, 300)
    with serving(SETTINGS) as url, client(url) as http:
        ok(http.get("/Users", params={"count": 1}))
        yield http


def test_a_rename_behind_the_servers_back_is_read_as_it_is(
    http: httpx2.Client, aws_env: EmbeddedAWS, iam: IAMClient
) -> None:
    [native_id] = user_ids(iam, email(7))
    assert ok(http.get(f"/Users/{native_id}"))["userName"] == email(7)
    iam.update_user(UserName=email(7), NewUserName="seven@example.com")
    iam.tag_user(
        UserName="seven@example.com", Tags=[{"Key": "Email", "Value": "seven@example.com"}]
    )
    # another user now has the old name: the index's hint must not be taken for the truth
    iam.create_user(UserName=email(7), Tags=[{"Key": "Email", "Value": email(7)}])
    aws_env.clear_calls()
    assert ok(http.get(f"/Users/{native_id}"))["userName"] == "seven@example.com"
    # the hint missed (the old name has another id now), the index was read again (301
    # users: 4 pages), and the user read by its new name
    assert aws_env.calls() == ["GetUser"] + ["GetAccountAuthorizationDetails"] * 4 + READS
    found = ok(http.get("/Users", params={"filter": 'userName eq "seven@example.com"'}))
    assert [user["id"] for user in found["Resources"]] == [native_id]
    # a PATCH goes to the renamed user, not to the new holder of the old name
    ok(
        http.patch(
            f"/Users/{native_id}",
            json=patch({"op": "replace", "path": "displayName", "value": "Seven"}),
        )
    )
    tags = {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName="seven@example.com")["Tags"]}
    assert tags["DisplayName"] == "Seven"
    assert "DisplayName" not in {t["Key"] for t in iam.list_user_tags(UserName=email(7))["Tags"]}


def test_a_delete_behind_the_servers_back_is_a_404(
    http: httpx2.Client, aws_env: EmbeddedAWS, iam: IAMClient
) -> None:
    [native_id] = user_ids(iam, email(8))
    assert ok(http.get(f"/Users/{native_id}"))["userName"] == email(8)
    iam.delete_user(UserName=email(8))
    aws_env.clear_calls()
    scim_error(http.get(f"/Users/{native_id}"), 404)
    assert aws_env.calls() == ["GetUser"] + ["GetAccountAuthorizationDetails"] * 3
    found = ok(http.get("/Users", params={"filter": f'userName eq "{email(8)}"'}))
    assert found["totalResults"] == 0


def test_a_user_created_behind_the_servers_back_is_found_and_counted(
    http: httpx2.Client, aws_env: EmbeddedAWS, iam: IAMClient
) -> None:
    iam.create_user(
        UserName="late@example.com", Tags=[{"Key": "Email", "Value": "late@example.com"}]
    )
    [native_id] = user_ids(iam, "late@example.com")
    aws_env.clear_calls()
    assert ok(http.get(f"/Users/{native_id}"))["userName"] == "late@example.com"
    assert aws_env.calls() == ["GetAccountAuthorizationDetails"] * 4 + READS  # a miss: refresh
    iam.create_user(UserName="later@example.com")
    # the list's last page shows an id the index does not know: the total is read again
    page = ok(http.get("/Users", params={"startIndex": 250, "count": 100}))
    assert page["totalResults"] == 302
    assert page["Resources"][-1]["userName"] == "later@example.com"


def test_a_group_deleted_and_made_again_behind_the_servers_back(
    http: httpx2.Client, aws_env: EmbeddedAWS, iam: IAMClient, account: dict[str, str]
) -> None:
    aws_env.clear_calls()
    assert ok(http.get(f"/Groups/{account['auditors']}"))["displayName"] == "auditors"
    assert aws_env.calls() == ["GetGroup"]  # the group's name from the index
    iam.delete_group(GroupName="auditors")
    iam.create_group(GroupName="auditors")
    scim_error(http.get(f"/Groups/{account['auditors']}"), 404)
    again = iam.get_group(GroupName="auditors")["Group"]["GroupId"]
    assert ok(http.get(f"/Groups/{again}"))["displayName"] == "auditors"


@pytest.mark.parametrize(
    ("method", "path", "body", "params"),
    [
        ("GET", "/Users", None, {"filter": 'userName eq "a@example.com" and'}),
        ("GET", "/Users", None, {"filter": 'userName xx "a"'}),
        ("GET", "/Groups", None, {"filter": "displayName zz 1"}),
        ("POST", "/Users", {"schemas": [USER], "userName": 7}, None),
        ("POST", "/Users", {"schemas": [USER], "userName": "a@example.com", "nickName": "A"}, None),
        ("PATCH", "/Users/{id}", {"schemas": [PATCH], "Operations": [{"op": "jump"}]}, None),
        ("PUT", "/Users/{id}", {"schemas": [USER]}, None),
        ("PATCH", "/Groups/{group}", {"schemas": [PATCH], "Operations": "no"}, None),
    ],
)
def test_an_invalid_filter_or_body_is_refused_before_any_call(
    http: httpx2.Client,
    aws_env: EmbeddedAWS,
    iam: IAMClient,
    account: dict[str, str],
    method: str,
    path: str,
    body: dict[str, Any] | None,
    params: dict[str, str] | None,
) -> None:
    [native_id] = user_ids(iam, email(9))
    path = path.format(id=native_id, group=account["developers"])
    aws_env.clear_calls()
    response = http.request(method, path, json=body, params=params)
    assert response.status_code == 400, response.text
    assert aws_env.calls() == []


# --- concurrency -----------------------------------------------------------------------


def test_concurrent_requests_are_not_serialised_and_stay_consistent(
    account: dict[str, str], aws_env: EmbeddedAWS, iam: IAMClient
) -> None:
    """Eight reads wait for each other inside the connector (a barrier): a server that ran
    its IAM round trips one at a time would never let them meet. Then concurrent PATCHes of
    different users and GETs of them agree with IAM."""
    seed(aws_env, 0, 300)
    ids = user_ids(iam, *(email(index) for index in range(8)))
    with serving(SETTINGS) as url, client(url) as http:
        ok(http.get("/Users", params={"count": 1}))
        barrier = threading.Barrier(len(ids), timeout=20)
        original = Runtime.read_account

        met: list[str] = []

        def meeting(self: Runtime, payload: Mapping[str, Any]) -> Any:
            barrier.wait()
            met.append(str(payload["id"]))
            return original(self, payload)

        with pytest.MonkeyPatch.context() as patcher:
            patcher.setattr(Runtime, "read_account", meeting)
            with ThreadPoolExecutor(len(ids)) as pool:
                names = list(
                    pool.map(lambda native_id: ok(http.get(f"/Users/{native_id}"))["userName"], ids)
                )
        assert names == [email(index) for index in range(8)]
        assert sorted(met) == sorted(ids)

        def rename(index: int) -> str:
            body = patch({"op": "replace", "path": "displayName", "value": f"D{index}"})
            return str(ok(http.patch(f"/Users/{ids[index]}", json=body))["displayName"])

        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(rename, range(8))) == [f"D{index}" for index in range(8)]
        with ThreadPoolExecutor(8) as pool:
            shown = list(
                pool.map(lambda i: ok(http.get(f"/Users/{ids[i]}"))["displayName"], range(8))
            )
        assert shown == [f"D{index}" for index in range(8)]
        for index in range(8):
            tags = {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName=email(index))["Tags"]}
            assert tags["DisplayName"] == f"D{index}"


# --- a connector without the single reads ----------------------------------------------


def test_a_connector_without_single_reads_is_served_from_its_bulk_reads(
    account: dict[str, str], aws_env: EmbeddedAWS, iam: IAMClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(aws_env, 0, 30)
    real = load_connectors(get_plugin_manager()).choose(None)
    bulk_only = evolve(
        real,
        capabilities=frozenset(real.capabilities)
        - {Capability.READ_ACCOUNT, Capability.READ_GROUP},
    )
    monkeypatch.setattr("hostsim.registry.ConnectorRegistry.choose", lambda _self, _name: bulk_only)
    [native_id] = user_ids(iam, email(3))
    with serving(SETTINGS) as url, client(url) as http:
        aws_env.clear_calls()
        assert ok(http.get(f"/Users/{native_id}"))["userName"] == email(3)
        assert "GetAccountAuthorizationDetails" in aws_env.calls()
        assert "ListGroupsForUser" not in aws_env.calls()
        found = ok(http.get("/Users", params={"filter": f'userName eq "{email(3)}"'}))
        assert [user["id"] for user in found["Resources"]] == [native_id]
        body = patch({"op": "replace", "path": "displayName", "value": "Three"})
        assert ok(http.patch(f"/Users/{native_id}", json=body))["displayName"] == "Three"
        body = patch({"op": "add", "path": "members", "value": [{"value": native_id}]})
        added = ok(http.patch(f"/Groups/{account['auditors']}", json=body))
        assert [m["value"] for m in added["members"]] == [native_id]
        created = ok(
            http.post("/Users", json={"schemas": [USER], "userName": "new@example.com"}), 201
        )
        assert ok(http.get(f"/Users/{created['id']}"))["userName"] == "new@example.com"


# --- the index under concurrency ---------------------------------------------------------


class SlowTarget:
    """A runtime whose bulk read of users waits until released, and counts its reads."""

    def __init__(self, *accounts: Account) -> None:
        self.accounts = accounts
        self.started = threading.Event()
        self.release = threading.Event()
        self.reads = 0

    def fetch(self, kind: str) -> Iterator[Account]:
        self.reads += 1
        self.started.set()
        assert self.release.wait(10)
        yield from self.accounts


ADA = Account("A1", "ada@example.com", "ada@example.com", None, None, None, "arn:a")


def test_a_write_made_while_the_index_reads_is_not_undone_by_the_read() -> None:
    target = SlowTarget(ADA)
    index = AccountIndex(target)  # type: ignore[arg-type]
    reading = threading.Thread(target=index.refresh, args=(0,))
    reading.start()
    assert target.started.wait(10)
    index.put(evolve(ADA, user_name="ada.l@example.com", email="ada.l@example.com"))
    target.release.set()
    reading.join(10)
    assert index.user("A1") == Known("A1", "ada.l@example.com", "ada.l@example.com")
    assert index.by_email("ada@example.com") is None


def test_concurrent_misses_share_one_read_and_a_later_miss_reads_again() -> None:
    target = SlowTarget(ADA)
    index = AccountIndex(target)  # type: ignore[arg-type]
    mark = index.mark()
    threads = [threading.Thread(target=index.refresh, args=(mark,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    assert target.started.wait(10)
    target.release.set()
    for thread in threads:
        thread.join(10)
    assert target.reads == 1
    index.refresh(index.mark())  # a miss judged after that read needs a read of its own
    assert target.reads == 2
