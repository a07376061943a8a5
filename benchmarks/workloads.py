"""The measured workloads, each run in a fresh process by ``bench.py``.

    python benchmarks/workloads.py WORKLOAD [--csv FILE] [--workers N] [--config F --account ID]

The environment points boto3 (and the connector) at the embedded AWS the parent runs. Every
workload imports what it needs first, then times its work from a warm interpreter: building its
boto3 client (or opening the connector) is part of the time, importing Python modules is not.
It prints one JSON object: ``seconds``, ``rows``, ``rss_start_mib`` and ``peak_rss_mib`` (the
process's peak resident memory; its growth during the run is ``peak - start``, measured after
one throwaway IAM client was built so that botocore's models are not counted). The IAM calls
are counted by the server, in the parent.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import httpx2
from botocore.config import Config

from hostsim.cli import main as hostsim
from hostsim.plugins import get_plugin_manager, load_connectors
from hostsim.runtime import Runtime
from hostsim.scim import BASE_PATH, Credentials, ScimApp, make_wsgi_server

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

#: How a plain script configures boto3: its defaults, plus the same retry mode the connector
#: uses, so that neither side is favoured by retries (there are no faults in the benchmark).
SCRIPT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 8})


def _client() -> IAMClient:
    return boto3.Session().client("iam", config=SCRIPT_CONFIG)


@contextlib.contextmanager
def _stdout_to_null() -> Iterator[None]:
    """Rows are written as a real run writes them, to /dev/null instead of a terminal."""
    with open(os.devnull, "w", encoding="utf-8") as null, contextlib.redirect_stdout(null):
        yield


def _rows_written(run: Callable[[], int]) -> int:
    with _stdout_to_null():
        code = run()
    if code != 0:
        raise SystemExit(f"hostsim exited {code}")
    return -1  # the CLI does not say how many; the parent knows


# --- fetch ------------------------------------------------------------------------------


def fetch_ours(kind: str) -> int:
    """``hostsim fetch KIND --jsonl``, in this process."""
    return _rows_written(lambda: hostsim(["fetch", kind, "--jsonl"]))


def fetch_organization(config: str, account: str | None) -> int:
    """``hostsim fetch users --jsonl`` with an organization's settings: every in-scope
    account, or the one ``--account`` names."""
    narrowed = ["--account", account] if account else []
    return _rows_written(
        lambda: hostsim(["fetch", "users", "--jsonl", "--config", config, *narrowed])
    )


def fetch_bulk_floor() -> int:
    """The least any reader of users' details can do: GetAccountAuthorizationDetails paginated
    with the largest page, rows counted and dropped."""
    iam = _client()
    pages = iam.get_paginator("get_account_authorization_details").paginate(
        Filter=["User"], PaginationConfig={"PageSize": 1000}
    )
    return sum(len(page["UserDetailList"]) for page in pages)


def fetch_naive() -> int:
    """A per-user reader: list the users, then ask for each one's tags, groups and attached
    policies (1 + 3N calls), writing one JSON line per user."""
    iam = _client()
    count = 0
    with open(os.devnull, "w", encoding="utf-8") as out:
        pages = iam.get_paginator("list_users").paginate(PaginationConfig={"PageSize": 1000})
        for page in pages:
            for user in page["Users"]:
                name = user["UserName"]
                tags = iam.list_user_tags(UserName=name)["Tags"]
                groups = iam.list_groups_for_user(UserName=name)["Groups"]
                policies = iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]
                row = {
                    "id": user["UserId"],
                    "user_name": name,
                    "tags": {tag["Key"]: tag["Value"] for tag in tags},
                    "groups": [group["GroupName"] for group in groups],
                    "policies": [policy["PolicyArn"] for policy in policies],
                }
                out.write(json.dumps(row) + "\n")
                count += 1
    return count


# --- import -----------------------------------------------------------------------------


def import_ours(path: str, workers: int) -> int:
    """``hostsim import FILE --workers N``, in this process."""
    return _rows_written(lambda: hostsim(["import", path, "--workers", str(workers)]))


def import_plan(path: str) -> int:
    """``hostsim import FILE --plan``, in this process: reads only."""
    return _rows_written(lambda: hostsim(["import", path, "--plan"]))


def import_sequential(path: str) -> int:
    """What an administrator's script does: for each row, CreateUser with its tags, then one
    call per grant, one row after the other. No checks, no resume, not idempotent."""
    iam = _client()
    count = 0
    with open(path, encoding="utf-8", newline="") as source:
        for row in csv.DictReader(source):
            email = row["email"].strip().lower()
            tags = {"Email": email}
            for column, tag in (
                ("first_name", "FirstName"),
                ("last_name", "LastName"),
                ("display_name", "DisplayName"),
            ):
                if row[column]:
                    tags[tag] = row[column]
            iam.create_user(
                UserName=email, Tags=[{"Key": key, "Value": value} for key, value in tags.items()]
            )
            for grant in filter(None, row["grants"].split(";")):
                kind, _sep, key = grant.partition(":")
                if kind == "group":
                    iam.add_user_to_group(GroupName=key, UserName=email)
                else:
                    iam.attach_user_policy(UserName=email, PolicyArn=key)
            count += 1
    return count


# --- scim ---------------------------------------------------------------------------------

SCIM_TOKEN = "bench-scim-token-0123456789"
SCIM_USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def _scim_joiner(index: int) -> dict[str, Any]:
    return {
        "schemas": [SCIM_USER],
        "userName": f"scim{index:05}@example.com",
        "name": {"givenName": f"First{index}", "familyName": f"Last{index}"},
        "displayName": f"Joiner {index}",
        "active": True,
    }


@dataclass
class ScimServer:
    """A running ``hostsim serve`` app on a thread of this process, its start-up reads done."""

    app: ScimApp
    server: Any
    warm_up_seconds: float

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def scim_server() -> ScimServer:
    """Start the app ``hostsim serve`` runs and wait for its start-up reads (the connector, the
    index: one bulk read of the account), as a long-running server has them before a client
    syncs. Not timed with the sync: the bench reports it beside it."""
    connector_type = load_connectors(get_plugin_manager()).choose(None)
    app = ScimApp(Runtime(connector_type, {}), Credentials(token=SCIM_TOKEN))
    server = make_wsgi_server(app, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return ScimServer(app, server, app.warm_up())


def scim_sync_ours(rows: int, running: ScimServer) -> int:
    """An initial sync the way Entra ID and Okta make it, over HTTP: for each joiner,
    ``GET /Users?filter=userName eq "..."`` (not there), then ``POST /Users``."""
    headers = {"Authorization": f"Bearer {SCIM_TOKEN}"}
    base_url = running.app.base_url + BASE_PATH
    try:
        with httpx2.Client(base_url=base_url, headers=headers, timeout=60) as http:
            for index in range(rows):
                joiner = _scim_joiner(index)
                query = {"filter": f'userName eq "{joiner["userName"]}"'}
                found = http.get("/Users", params=query)
                if found.status_code != 200 or found.json()["totalResults"]:
                    raise SystemExit(f"GET {query}: {found.status_code} {found.text}")
                created = http.post("/Users", json=joiner)
                if created.status_code != 201:
                    raise SystemExit(f"POST {joiner['userName']}: {created.text}")
    finally:
        running.stop()
    return rows


def scim_sync_floor(rows: int) -> int:
    """The least work the API allows for the same sync: GetUser (is the joiner there?), then
    CreateUser with the email and names as tags; two calls a user."""
    iam = _client()
    for index in range(rows):
        joiner = _scim_joiner(index)
        name = joiner["userName"]
        try:
            iam.get_user(UserName=name)
        except iam.exceptions.NoSuchEntityException:
            pass
        else:
            raise SystemExit(f"{name} exists already")
        tags = {
            "Email": name,
            "FirstName": joiner["name"]["givenName"],
            "LastName": joiner["name"]["familyName"],
            "DisplayName": joiner["displayName"],
        }
        iam.create_user(UserName=name, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return rows


# --- measuring --------------------------------------------------------------------------


def _memory_mib(field: str) -> float:
    """``VmRSS`` (resident now) or ``VmHWM`` (peak resident) of this process, from procfs.
    Not ``getrusage``: its ``ru_maxrss`` survives ``execve`` and so starts at the size of the
    parent that forked this process (the server, with the whole seeded account)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def _warm_up() -> None:
    """Build and drop one IAM client first: loading botocore's service models costs every
    workload the same ~60 MiB, which would hide what the workload itself holds."""
    boto3.Session().client("iam", config=SCRIPT_CONFIG)
    gc.collect()


WORKLOADS: dict[str, Callable[[argparse.Namespace], int]] = {
    "fetch-users": lambda _args: fetch_ours("users"),
    "fetch-policy-access": lambda _args: fetch_ours("policy-access"),
    "fetch-bulk-floor": lambda _args: fetch_bulk_floor(),
    "fetch-naive": lambda _args: fetch_naive(),
    "fetch-organization": lambda args: fetch_organization(args.config, args.account),
    "import-ours": lambda args: import_ours(args.csv, args.workers),
    "import-plan": lambda args: import_plan(args.csv),
    "import-sequential": lambda args: import_sequential(args.csv),
    "scim-sync-ours": lambda args: scim_sync_ours(args.rows, args.prepared),
    "scim-sync-floor": lambda args: scim_sync_floor(args.rows),
}


#: What a workload starts before its timer (its start-up cost is reported on its own).
SETUPS: dict[str, Callable[[], Any]] = {"scim-sync-ours": scim_server}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--csv")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rows", type=int, default=200, help="users a SCIM sync creates")
    parser.add_argument("--config", help="a hostsim config file (fetch-organization)")
    parser.add_argument("--account", help="the one account to read (fetch-organization)")
    args = parser.parse_args(argv)
    _warm_up()
    start_rss = _memory_mib("VmRSS")
    prepare = SETUPS.get(args.workload)
    setup_started = time.perf_counter()
    args.prepared = prepare() if prepare else None
    setup_seconds = time.perf_counter() - setup_started
    started = time.perf_counter()
    rows = WORKLOADS[args.workload](args)
    seconds = time.perf_counter() - started
    result: dict[str, Any] = {
        "workload": args.workload,
        "seconds": seconds,
        "setup_seconds": setup_seconds,
        "rows": rows,
        "rss_start_mib": start_rss,
        "peak_rss_mib": _memory_mib("VmHWM"),
    }
    print(json.dumps(result), file=sys.__stdout__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
