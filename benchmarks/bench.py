"""Reconciliation and bulk onboarding against IAM-like latency, side by side with the
alternatives, in one run (``make bench``).

An embedded AWS (moto's server behind the IAM fidelity layer, on a thread of this process) adds
a fixed delay to every request, standing in for the round trip to IAM's global endpoint. The
account is seeded straight into moto's backend (not measured). Each workload then runs in a
fresh Python process (``workloads.py``), so that its memory and time are its own; the server
counts the IAM calls each one makes.

Fetch, for each account size: ``hostsim fetch users --jsonl`` (ours), one bare paginated
GetAccountAuthorizationDetails read (the floor: nothing can read users' details in fewer calls)
and a naive per-user boto3 reader (ListUsers, then tags, groups and attached policies of each
user). Import, at 1,000 and 5,000 joiners by default: ``hostsim import`` of N joiners with a
group and a policy each, ours again on the same file (a re-run: one bulk read, no write), its
``--plan``, and a sequential boto3 script doing the same provisioning.

Targets (from the issue): fetch within 1.5x of the floor and at least 10x faster than the naive
reader; import at least 4x faster than the sequential script at 50 ms a call.

Organization (``--skip organization`` leaves it out): ``hostsim fetch users`` with
``[aws-iam.organization]`` over 50 member accounts of 100 users each at 20 ms a call (every
account read concurrently), beside the same settings with ``max_concurrency = 1`` (the accounts
one after another) and beside ``--account`` reading one of them; target within 2x of the one
account.

SCIM (``--skip scim`` leaves it out): the initial sync an Entra ID or Okta tenant makes of 200
users on a 5,000-user account at 20 ms a call, ``GET /Users?filter=userName eq "..."`` then
``POST /Users`` for each, against the app ``hostsim serve`` runs, beside the least work IAM's
API allows (GetUser + CreateUser a user); target within 1.5x of it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostsim.embedded_aws import EmbeddedAWS, moto_state

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

HERE = Path(__file__).resolve().parent
WORKLOADS = HERE / "workloads.py"
REGION = "us-east-1"
GROUPS = 20
POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
    }
)


@dataclass
class Measure:
    """One workload run: what ran, against how many users, at what delay, and what it cost."""

    section: str
    label: str
    size: int
    delay: float
    calls: int
    call_mix: dict[str, int]
    seconds: float
    peak_rss_mib: float
    rss_growth_mib: float
    #: What the workload started before its timer (the SCIM server's start-up reads).
    setup_seconds: float = 0.0
    #: Seconds the embedded AWS spent serving the run's requests, one at a time.
    served_seconds: float = 0.0


# --- seeding (not measured) ------------------------------------------------------------


def seed_groups_and_policies(aws: EmbeddedAWS, iam: IAMClient | None = None) -> list[str]:
    """GROUPS groups carrying one customer policy each (through ``iam``, default the
    management account's client); returns the policy ARNs."""
    iam = iam or aws.iam_client()
    arns = []
    for index in range(GROUPS):
        arn = iam.create_policy(PolicyName=f"policy-{index:02}", PolicyDocument=POLICY)["Policy"][
            "Arn"
        ]
        iam.create_group(GroupName=f"group-{index:02}")
        iam.attach_group_policy(GroupName=f"group-{index:02}", PolicyArn=arn)
        arns.append(arn)
    return arns


def seed_users(
    aws: EmbeddedAWS, start: int, end: int, arns: Sequence[str], account_id: str | None = None
) -> None:
    """Users ``start`` to ``end - 1`` as the connector makes them (email, names in tags), each
    in two groups, every fifth with a policy attached directly; straight into moto's backend
    (of ``account_id``, default the management account), for speed. The account grows from one
    measured size to the next."""
    backend = moto_state.iam_backend(account_id or aws.account_id)
    if len(backend.users) != start:
        raise RuntimeError(f"expected {start} users, found {len(backend.users)}")
    for index in range(start, end):
        email = f"user{index:05}@example.com"
        tags = {
            "Email": email,
            "FirstName": f"First{index}",
            "LastName": f"Last{index}",
            "DisplayName": f"User {index}",
        }
        backend.create_user(REGION, email, "/", [{"Key": k, "Value": v} for k, v in tags.items()])
        backend.add_user_to_group(f"group-{index % GROUPS:02}", email)
        backend.add_user_to_group(f"group-{(index * 7 + 3) % GROUPS:02}", email)
        if index % 5 == 0:
            backend.attach_user_policy(arns[index % len(arns)], email)


def write_joiners(path: Path, count: int, arns: Sequence[str]) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "first_name", "last_name", "display_name", "grants"])
        for index in range(count):
            grants = f"group:group-{index % GROUPS:02};policy:{arns[(index + 1) % len(arns)]}"
            writer.writerow(
                [f"joiner{index:05}@example.com", f"First{index}", f"Last{index}", "", grants]
            )


# --- running ---------------------------------------------------------------------------


def run(
    aws: EmbeddedAWS,
    section: str,
    label: str,
    size: int,
    workload: str,
    *args: str,
    service: str | None = "iam",
) -> Measure:
    """Run one workload in a fresh process and collect what it cost (the calls of
    ``service``; None: of every service, STS and Organizations too)."""
    aws.clear_calls()
    served = aws.served_seconds
    env = aws.subprocess_env()
    done = subprocess.run(
        [sys.executable, str(WORKLOADS), workload, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{workload} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    calls = aws.calls(service)
    measure = Measure(
        section=section,
        label=label,
        size=size,
        delay=aws.request_delay,
        calls=len(calls),
        call_mix=dict(Counter(calls).most_common()),
        seconds=result["seconds"],
        peak_rss_mib=result["peak_rss_mib"],
        rss_growth_mib=result["peak_rss_mib"] - result["rss_start_mib"],
        setup_seconds=result.get("setup_seconds", 0.0),
        served_seconds=aws.served_seconds - served,
    )
    print(f"  {label:<46} {size:>6,} users  {measure.seconds:8.2f} s", file=sys.stderr)
    return measure


def fetch_section(aws: EmbeddedAWS, sizes: Sequence[int], delay: float) -> list[Measure]:
    measures = []
    arns = seed_groups_and_policies(aws)
    seeded = 0
    for size in sorted(sizes):
        aws.request_delay = 0
        seed_users(aws, seeded, size, arns)
        seeded = size
        aws.request_delay = delay
        print(f"fetch, {size:,} users, {delay * 1000:g} ms a call:", file=sys.stderr)
        measures += [
            run(aws, "fetch", "ours: hostsim fetch users --jsonl", size, "fetch-users"),
            run(aws, "fetch", "ours: hostsim fetch policy-access", size, "fetch-policy-access"),
            run(aws, "fetch", "floor: one paginated bulk read", size, "fetch-bulk-floor"),
            run(aws, "fetch", "naive: per-user boto3 reader", size, "fetch-naive"),
        ]
    return measures


def import_section(
    aws: EmbeddedAWS, sizes: Sequence[int], delay: float, workers: int
) -> list[Measure]:
    """For each size: ours on an empty account, ours again on the same file (a re-run: one
    bulk read, no write), its ``--plan``, and the sequential script on an empty account."""
    measures = []
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "joiners.csv"
        for rows in sorted(sizes):
            print(f"import, {rows:,} joiners, {delay * 1000:g} ms a call:", file=sys.stderr)
            for label, workload, extra in (
                (f"ours: hostsim import --workers {workers}", "import-ours", True),
                ("sequential boto3 script", "import-sequential", False),
            ):
                aws.request_delay = 0
                aws.reset()
                write_joiners(path, rows, seed_groups_and_policies(aws))
                aws.request_delay = delay
                args = ["--csv", str(path), "--workers", str(workers)]
                measures.append(run(aws, "import", label, rows, workload, *args))
                if extra:
                    again = f"ours, re-run of the same file (--workers {workers})"
                    measures.append(run(aws, "import", again, rows, workload, *args))
                    planned = "ours, import --plan of the same file"
                    measures.append(run(aws, "import", planned, rows, "import-plan", *args))
    return measures


def scim_section(aws: EmbeddedAWS, size: int, rows: int, delay: float) -> list[Measure]:
    """An initial SCIM sync of ``rows`` joiners on an account of ``size`` users, ours (the
    server ``hostsim serve`` runs, as Entra ID drives it) and the floor (a boto3 script doing
    GetUser + CreateUser a user), each on a freshly seeded account."""
    measures = []
    print(
        f"scim, initial sync of {rows:,} users on {size:,}, {delay * 1000:g} ms a call:",
        file=sys.stderr,
    )
    for label, workload in (
        (f"ours: hostsim serve (index built), sync of {rows:,}", "scim-sync-ours"),
        (f"floor: GetUser + CreateUser a user, {rows:,} users", "scim-sync-floor"),
    ):
        aws.request_delay = 0
        aws.reset()
        seed_users(aws, 0, size, seed_groups_and_policies(aws))
        aws.request_delay = delay
        measures.append(run(aws, "scim", label, size, workload, "--rows", str(rows)))
    return measures


def organization_section(
    aws: EmbeddedAWS, accounts: int, users: int, delay: float
) -> list[Measure]:
    """An organization of ``accounts`` members of ``users`` users each (the management account
    left out of scope), read by ``hostsim fetch users`` every account concurrently, one after
    another (``max_concurrency = 1``) and one account alone (``--account``); beside them, one
    account holding as many users as the whole organization (the management account, read
    without organization settings). A first read, not measured, warms moto's backend of each
    account (built on its first request)."""
    aws.request_delay = 0
    aws.reset()
    organization = aws.create_organization([f"member-{index:02}" for index in range(accounts)])
    for member in organization.members:
        arns = seed_groups_and_policies(aws, aws.member_iam_client(member.id))
        seed_users(aws, 0, users, arns, member.id)
    total = accounts * users
    seed_users(aws, 0, total, seed_groups_and_policies(aws))
    print(
        f"organization, {accounts} accounts x {users:,} users, {delay * 1000:g} ms a call:",
        file=sys.stderr,
    )
    first = organization.members[0].id
    measures = []
    with tempfile.TemporaryDirectory() as scratch:
        configs = {}
        for concurrency in (None, 1):
            config = configs[concurrency] = Path(scratch) / f"organization-{concurrency}.toml"
            extra = "" if concurrency is None else f"max_concurrency = {concurrency}\n"
            config.write_text(
                f"[aws-iam.organization]\ninclude_management_account = false\n{extra}",
                encoding="utf-8",
            )
        plain = Path(scratch) / "one-account.toml"
        plain.write_text("[aws-iam]\n", encoding="utf-8")
        run(aws, "warm-up", "warm-up", total, "fetch-organization", "--config", str(configs[None]))
        aws.request_delay = delay
        for label, config, account, size in (
            (f"ours: hostsim fetch users, {accounts} accounts", configs[None], None, total),
            (
                f"one after another: max_concurrency = 1, {accounts} accounts",
                configs[1],
                None,
                total,
            ),
            ("one account: hostsim fetch users --account", configs[None], first, users),
            (f"same users in one account: hostsim fetch users, {total:,}", plain, None, total),
        ):
            args = ["--config", str(config), *(["--account", account] if account else [])]
            measures.append(
                run(aws, "organization", label, size, "fetch-organization", *args, service=None)
            )
    return measures


# --- reporting -------------------------------------------------------------------------


def table(measures: Sequence[Measure]) -> str:
    lines = [
        "| workload | users | delay/call | AWS calls | wall time | moto busy | peak RSS (growth) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for m in measures:
        lines.append(
            f"| {m.section}: {m.label} | {m.size:,} | {m.delay * 1000:g} ms | {m.calls:,} "
            f"| {m.seconds:.2f} s | {m.served_seconds:.2f} s "
            f"| {m.peak_rss_mib:.0f} MiB (+{m.rss_growth_mib:.1f}) |"
        )
    return "\n".join(lines)


def verdicts(measures: Sequence[Measure]) -> str:
    def find(section: str, prefix: str, size: int) -> Measure | None:
        return next(
            (
                m
                for m in measures
                if (m.section, m.size) == (section, size) and m.label.startswith(prefix)
            ),
            None,
        )

    lines = []
    for size in sorted({m.size for m in measures if m.section == "fetch"}):
        ours = find("fetch", "ours: hostsim fetch users", size)
        floor = find("fetch", "floor", size)
        naive = find("fetch", "naive", size)
        if ours and floor:
            ratio = ours.seconds / floor.seconds
            lines.append(
                f"- fetch users, {size:,}: ours / floor = {ratio:.2f}x "
                f"(target <= 1.5x: {'met' if ratio <= 1.5 else 'MISSED'})"
            )
        if ours and naive:
            ratio = naive.seconds / ours.seconds
            lines.append(
                f"- fetch users, {size:,}: naive / ours = {ratio:.0f}x "
                f"(target >= 10x: {'met' if ratio >= 10 else 'MISSED'})"
            )
    for size in sorted({m.size for m in measures if m.section == "import"}):
        ours = find("import", "ours: hostsim import", size)
        script = find("import", "sequential", size)
        if ours and script:
            ratio = script.seconds / ours.seconds
            delay = ours.delay * 1000
            lines.append(
                f"- import, {size:,} joiners at {delay:g} ms: sequential / ours = {ratio:.1f}x "
                f"(target >= 4x: {'met' if ratio >= 4 else 'MISSED'})"
            )
    organization = {m.label.split(":", 1)[0]: m for m in measures if m.section == "organization"}
    if {"ours", "one account", "one after another", "same users in one account"} <= set(
        organization
    ):
        ours, one = organization["ours"], organization["one account"]
        ratio = ours.seconds / one.seconds
        same = organization["same users in one account"]
        lines.append(
            f"- organization fetch of {ours.size:,} users: ours / one account = {ratio:.2f}x "
            f"(target <= 2x: {'met' if ratio <= 2 else 'MISSED'}); one after another / ours = "
            f"{organization['one after another'].seconds / ours.seconds:.1f}x; ours / the same "
            f"users in one account = {ours.seconds / same.seconds:.2f}x; moto (serving one "
            f"request at a time) was busy {ours.served_seconds:.2f} s of ours"
        )
    scim = {m.label.split(":", 1)[0]: m for m in measures if m.section == "scim"}
    if {"ours", "floor"} <= set(scim):
        time_ratio = scim["ours"].seconds / scim["floor"].seconds
        verdict = "met" if time_ratio <= 1.5 else "MISSED"
        lines.append(
            f"- scim initial sync on {scim['ours'].size:,} users: ours / floor = "
            f"{time_ratio:.2f}x in time, {scim['ours'].calls / scim['floor'].calls:.2f}x in "
            f"calls (target <= 1.5x: {verdict}); before it, the server's start-up reads "
            f"(the connector, the index: one bulk read, in the calls) took "
            f"{scim['ours'].setup_seconds:.2f} s"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--sizes", default="1000,5000", help="account sizes for fetch (default 1000,5000)"
    )
    parser.add_argument(
        "--fetch-delay", type=float, default=0.020, help="seconds per call for fetch (0.020)"
    )
    parser.add_argument(
        "--import-rows", default="1000,5000", help="joiners imported (default 1000,5000)"
    )
    parser.add_argument(
        "--import-delay", type=float, default=0.050, help="seconds per call for import (0.050)"
    )
    parser.add_argument("--workers", type=int, default=8, help="import workers (8)")
    parser.add_argument("--scim-size", type=int, default=5000, help="users for scim (5000)")
    parser.add_argument("--scim-rows", type=int, default=200, help="users a sync creates (200)")
    parser.add_argument(
        "--scim-delay", type=float, default=0.020, help="seconds per call for scim (0.020)"
    )
    parser.add_argument(
        "--org-accounts", type=int, default=50, help="member accounts for organization (50)"
    )
    parser.add_argument(
        "--org-users", type=int, default=100, help="users in each member account (100)"
    )
    parser.add_argument(
        "--org-delay", type=float, default=0.020, help="seconds per call for organization (0.020)"
    )
    parser.add_argument(
        "--skip",
        choices=["fetch", "import", "scim", "organization"],
        action="append",
        default=[],
    )
    parser.add_argument("--json", type=Path, help="also write every measure to this file")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",") if size]

    started = time.perf_counter()
    measures: list[Measure] = []
    with EmbeddedAWS() as aws:
        if "fetch" not in args.skip:
            measures += fetch_section(aws, sizes, args.fetch_delay)
        if "import" not in args.skip:
            aws.reset()
            import_sizes = [int(size) for size in args.import_rows.split(",") if size]
            measures += import_section(aws, import_sizes, args.import_delay, args.workers)
        if "scim" not in args.skip:
            measures += scim_section(aws, args.scim_size, args.scim_rows, args.scim_delay)
        if "organization" not in args.skip:
            measures += organization_section(aws, args.org_accounts, args.org_users, args.org_delay)
    command = " ".join(["python benchmarks/bench.py", *(argv or sys.argv[1:])]).strip()
    print(f"\n`{command}` ({os.cpu_count()} CPUs, {time.perf_counter() - started:.0f} s)\n")
    print(table(measures))
    print()
    print(verdicts(measures))
    if args.json:
        args.json.write_text(json.dumps([vars(m) for m in measures], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
