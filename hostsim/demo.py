"""``hostsim demo``: the whole joiner-mover-leaver lifecycle on an embedded AWS, narrated.

Starts moto's IAM in this process (with the IAM rules moto lacks, see
:mod:`hostsim.embedded_aws`), seeds a small realistic account, then runs each of the twelve
connector features through the same runtime the CLI uses, printing what was done and what
reconciliation shows after it. Then IDHub's side (part two), an organization (part three) and
IAM Identity Center (part four: moto's identitystore and sso-admin with the fidelity layer of
:mod:`hostsim.embedded_aws.identity_center`, on the same embedded AWS; with ``--connector
aws-identity-center`` the demo runs part four alone). Needs no credentials and no network: the
connector is pointed at the embedded endpoint with throwaway credentials, so a real account
can never be touched.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import boto3

from hostsim import output, redaction
from hostsim.arguments import build_parser
from hostsim.contract.connector import ConnectorType
from hostsim.contract.errors import ConfigurationError, ConnectorError, PartialRead
from hostsim.contract.model import FetchKind
from hostsim.core import commands as core_commands
from hostsim.embedded_aws import FOREIGN_AWS_VARIABLES, EmbeddedAWS, Organization
from hostsim.exits import guarded
from hostsim.plugins import get_plugin_manager, load_connectors
from hostsim.runtime import Runtime

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

DEMO_CONNECTOR = "aws-iam"
#: The type of part four, which runs alone with ``--connector aws-identity-center``.
IDENTITY_CENTER = "aws-identity-center"
AWS_S3_READ = "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
AWS_SECURITY_AUDIT = "arn:aws:iam::aws:policy/SecurityAudit"


def _document(action: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}],
        }
    )


def seed_account(iam: IAMClient) -> dict[str, str]:
    """A small account as an administrator left it: groups carrying customer and AWS-managed
    policies, and one user made by hand, with credentials, MFA and policies of its own."""
    arns = {}
    for name, action in (("reports-read", "s3:GetObject"), ("billing-view", "aws-portal:View*")):
        arns[name] = iam.create_policy(PolicyName=name, PolicyDocument=_document(action))["Policy"][
            "Arn"
        ]
    iam.create_group(GroupName="developers")
    iam.attach_group_policy(GroupName="developers", PolicyArn=arns["reports-read"])
    iam.attach_group_policy(GroupName="developers", PolicyArn=AWS_S3_READ)
    iam.create_group(GroupName="auditors")
    iam.attach_group_policy(GroupName="auditors", PolicyArn=AWS_SECURITY_AUDIT)

    legacy = "carol@example.com"
    iam.create_user(UserName=legacy)
    iam.create_login_profile(UserName=legacy, Password="Demo-only-Passw0rd!")
    iam.create_access_key(UserName=legacy)
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="carol")["VirtualMFADevice"][
        "SerialNumber"
    ]
    iam.enable_mfa_device(
        UserName=legacy,
        SerialNumber=serial,
        AuthenticationCode1="123456",
        AuthenticationCode2="654321",
    )
    iam.put_user_policy(
        UserName=legacy, PolicyName="ad-hoc", PolicyDocument=_document("ec2:Describe*")
    )
    iam.attach_user_policy(UserName=legacy, PolicyArn=arns["billing-view"])
    iam.add_user_to_group(GroupName="auditors", UserName=legacy)
    return arns


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Point boto3 at the embedded AWS for the demo only (dropping any profile, role or session
    token the caller's environment names), then restore the caller's environment."""
    saved = {key: os.environ.get(key) for key in (*values, *FOREIGN_AWS_VARIABLES)}
    for key in FOREIGN_AWS_VARIABLES:
        os.environ.pop(key, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Narrator:
    """Runs each step through the runtime and prints it like an operator's console."""

    def __init__(self, runtime: Runtime, out: TextIO) -> None:
        self.runtime = runtime
        self.out = out
        self.number = 0

    def say(self, title: str, command: str) -> None:
        self.number += 1
        self.out.write(f"\n=== {self.number}. {title}\n$ hostsim {command}\n")

    def operation(
        self,
        title: str,
        command: str,
        name: str,
        payload: dict[str, Any],
        runtime: Runtime | None = None,
    ) -> None:
        """One connector operation on ``runtime`` (default the narrator's), printed as the CLI
        prints it, a refusal included."""
        self.say(title, command)
        try:
            result = getattr(runtime or self.runtime, name)(payload)
        except ConnectorError as exc:
            output.write_failure(name, exc.message, exc.steps, self.out, as_json=False)
            self.out.write(f"error: {exc.message}\n")
            return
        output.write_result(result, self.out, as_json=False)

    def plan(self, title: str, command: str, name: str, payload: dict[str, Any]) -> None:
        """The plan of one operation (``--plan``), printed as the CLI prints it."""
        self.say(title, command)
        output.write_result(self.runtime.plan(name, payload), self.out, as_json=False, planned=True)

    def fetch(self, title: str, kind: str) -> None:
        """One fetch of ``kind`` (IAM's ``FetchKind``, or any kind the type declares)."""
        self.say(title, f"fetch {kind}")
        try:
            output.write_rows(kind, self.runtime.fetch(str(kind)), self.out, "table")
        except PartialRead as exc:
            named = "; ".join(f"{account} ({reason})" for account, reason in exc.failed)
            self.out.write(f"error: could not read {len(exc.failed)} account(s): {named}\n")


def _lifecycle(say: Narrator, arns: dict[str, str]) -> None:
    alice = "alice@example.com"
    reports = f"policy:{arns['reports-read']}"
    say.fetch(
        "Reconcile: the groups people can request, with the policies they carry", FetchKind.GROUPS
    )
    say.fetch(
        "Reconcile: the policies (customer-managed, and AWS-managed ones in use)",
        FetchKind.POLICIES,
    )
    say.fetch(
        "Reconcile: the accounts (carol was made by hand, outside the connector)", FetchKind.USERS
    )
    say.operation(
        "Joiner: create alice with her attributes and an initial group",
        f"create {alice} --first-name Alice --last-name Liddell --display-name 'Alice Liddell' "
        "--attr department=Research --grant group:developers",
        "create",
        {
            "email": alice,
            "first_name": "Alice",
            "last_name": "Liddell",
            "display_name": "Alice Liddell",
            "attributes": {"department": "Research"},
            "grants": ["group:developers"],
        },
    )
    say.operation(
        "Grant: attach a managed policy directly (developers carries it too)",
        f"grant {alice} {reports}",
        "grant",
        {"email": alice, "entitlement": reports},
    )
    say.operation(
        "Idempotent: granting it again changes nothing",
        f"grant {alice} {reports}",
        "grant",
        {"email": alice, "entitlement": reports},
    )
    say.fetch("Reconcile: who is in which group", FetchKind.GROUP_ACCESS)
    say.fetch("Reconcile: who holds which policy, and why", FetchKind.POLICY_ACCESS)
    say.operation(
        "Mover: a new display name; only what changed is written",
        f"modify {alice} --display-name 'Alice L.' --last-name Liddell",
        "modify",
        {"email": alice, "display_name": "Alice L.", "last_name": "Liddell"},
    )
    renamed = "alice.liddell@example.com"
    say.operation(
        "Mover: a new email renames the IAM user (same id, groups, policies, tags)",
        f"modify {alice} --email {renamed}",
        "modify",
        {"email": alice, "new_email": renamed},
    )
    say.fetch("Reconcile: the renamed account keeps its id and attributes", FetchKind.USERS)
    say.operation(
        "Revoke the group: the directly granted policy survives",
        f"revoke {renamed} group:developers",
        "revoke",
        {"email": renamed, "entitlement": "group:developers"},
    )
    say.fetch("Reconcile: reports-read is still held, directly", FetchKind.POLICY_ACCESS)
    say.operation(
        "Revoke the direct policy",
        f"revoke {renamed} {reports}",
        "revoke",
        {"email": renamed, "entitlement": reports},
    )
    say.operation(
        "Leaver: delete carol, removing first all IAM requires (password, keys, MFA, policies...)",
        "delete carol@example.com",
        "delete",
        {"email": "carol@example.com"},
    )
    say.operation("Leaver: delete alice", f"delete {renamed}", "delete", {"email": renamed})
    say.operation(
        "Idempotent: deleting an absent account is a no-op",
        f"delete {renamed}",
        "delete",
        {"email": renamed},
    )
    say.fetch("Reconcile: no accounts left", FetchKind.USERS)


def _idhub(out: TextIO, state: Path, runtime: Runtime) -> None:
    """IDHub's side on the same account: people, the catalog, a request through two approvals
    into AWS, a direct grant that survives the group's revocation, and a reconciliation that
    catches and undoes an administrator's change made behind IDHub's back. Each step is a real
    command line, parsed by the CLI's grammar and run by the function the CLI dispatches IDHub
    commands to, on one state file, so the output is exactly the CLI's."""
    parser = build_parser()
    redact = redaction.from_environment(os.environ)
    number = 0

    def run(args: argparse.Namespace) -> int:
        return core_commands.run(args, runtime.connector_type.name, lambda: runtime, {}, redact)

    def hostsim(title: str, *words: str, actor: str = "admin@example.com") -> None:
        nonlocal number
        number += 1
        shown = " ".join(f"'{a}'" if " " in a else a for a in words)
        out.write(f"\n=== IDHub {number}. {title}\n$ hostsim {shown} --as {actor}\n")
        out.flush()
        args = parser.parse_args([*words, "--state", str(state), "--as", actor])
        args.redact = redact
        with redirect_stdout(out):
            code = guarded(args, run)
        if code:
            out.write(f"(exit {code})\n")

    grace, owen, dave = "grace@example.com", "owen@example.com", "dave@example.com"
    hostsim("People: a manager", "identity", "add", grace)
    hostsim("...and the owner of the developers group", "identity", "add", owen)
    hostsim(
        "A joiner with a manager (no AWS account yet)",
        *("identity", "add", dave, "--first-name", "Dave", "--last-name", "Bowman"),
        *("--display-name", "Dave Bowman", "--manager", grace),
    )
    hostsim("The catalog: every group and policy the connector fetches", "catalog", "sync")
    hostsim(
        "developers needs the manager, then the owner",
        *("catalog", "set", "group:developers", "--owner", owen, "--approval", "manager,owner"),
    )
    hostsim("The catalog, with what each group carries", "catalog", "list")
    hostsim(
        "Dave asks for developers",
        *("request", "submit", "group:developers", "--justification", "joins the data team"),
        actor=dave,
    )
    hostsim("His manager approves: now the owner's turn", "request", "approve", "1", actor=grace)
    hostsim(
        "The owner approves: fulfilment creates the account and grants the group",
        *("request", "approve", "1"),
        actor=owen,
    )
    hostsim(
        "Dave also asks for reports-read directly (developers carries it too)",
        *("request", "submit", "policy:reports-read", "--justification", "monthly reports"),
        actor=dave,
    )
    hostsim("The default chain: the manager alone", "request", "approve", "2", actor=grace)
    hostsim("Why Dave holds each policy", "access", dave)
    out.write(
        "\n(An administrator adds Dave to auditors by hand, and edits his display name,\n"
        " behind IDHub's back.)\n"
    )
    iam = boto3.client("iam")
    iam.add_user_to_group(GroupName="auditors", UserName=dave)
    iam.tag_user(UserName=dave, Tags=[{"Key": "DisplayName", "Value": "D. B."}])
    hostsim("Reconciliation catches both (report only)", "reconcile")
    hostsim(
        "Remediate: revoke what IDHub never granted, restore the attribute",
        *("reconcile", "--remediate", "revoke,attributes"),
    )
    hostsim(
        "Dave leaves the team: revoke developers (revocations need no approval)",
        *("request", "submit", "group:developers", "--revoke", "--for", dave),
        *("--justification", "moved to finance"),
        actor=grace,
    )
    hostsim("The directly requested policy survives", "access", dave)
    hostsim("Reconciliation agrees with AWS now", "reconcile")
    hostsim("The audit trail of request 1", "audit", "--request", "1")


def seed_organization(aws: EmbeddedAWS) -> Organization:
    """Three member accounts as a company past its first account has them: the developers
    group in dev and prod, and in staging a stray IAM user someone made by hand (the classic
    audit finding an organization-wide read is for)."""
    organization = aws.create_organization(("dev", "staging", "prod"))
    for name in ("dev", "prod"):
        iam = aws.member_iam_client(organization.member(name).id)
        iam.create_group(GroupName="developers")
        iam.attach_group_policy(GroupName="developers", PolicyArn=AWS_S3_READ)
    stray = aws.member_iam_client(organization.member("staging").id)
    stray.create_user(UserName="contractor@example.com")
    stray.create_access_key(UserName="contractor@example.com")
    return organization


def _organization(out: TextIO, aws: EmbeddedAWS, opened: Callable[[], Runtime]) -> None:
    """Part three: one connector for every account of an organization. The accounts in scope,
    each role tried; a read of all of them at once; a change refused until it names its
    account, then made there; and an account whose role was removed failing only itself.
    ``opened`` opens the runtime afresh, as each command line of the CLI does (a connector
    keeps the credentials it assumed for its life)."""
    runtime = opened()
    organization = seed_organization(aws)
    dev, prod = organization.member("dev").id, organization.member("prod").id
    out.write(
        f"\n\nPart three: an organization. Account {organization.management_id} becomes the "
        "management account of three members (dev, staging, prod), each with the\n"
        "OrganizationAccountAccessRole AWS makes; the config gains [aws-iam.organization].\n"
    )
    say = Narrator(runtime, out)
    say.number = 100  # numbered apart from part one's steps
    say.say("The accounts in scope, each role assumed to check it", "accounts")
    out.write(output.accounts_table(runtime.target_accounts(check=True)) + "\n")
    say.fetch(
        "Every account's users, read concurrently, each row naming its account", FetchKind.USERS
    )
    erin = {"email": "erin@example.com", "first_name": "Erin", "grants": ["group:developers"]}
    say.operation(
        "A change must name its account: refused, nothing sent",
        "create erin@example.com --first-name Erin --grant group:developers",
        "create",
        erin,
    )
    say.operation(
        "The same joiner in dev",
        f"create erin@example.com --first-name Erin --grant group:developers --account {dev}",
        "create",
        erin,
        runtime.for_account(dev),
    )
    aws.break_role(prod)
    out.write("\n(An administrator deletes the OrganizationAccountAccessRole of prod.)\n")
    say.runtime = opened()
    say.fetch("prod fails alone: every other account is still read (exit 1)", FetchKind.USERS)


def seed_identity_center(aws: EmbeddedAWS) -> None:
    """The embedded account's Identity Center instance as an administrator set it up: a
    ``developers`` group in the identity store, the permission sets ``ReadOnly`` and
    ``Billing``, and ``developers`` assigned ``ReadOnly`` in the account (awaited, as the
    console does)."""
    sso = boto3.client("sso-admin", endpoint_url=aws.endpoint_url, region_name=aws.region)
    store = boto3.client("identitystore", endpoint_url=aws.endpoint_url, region_name=aws.region)
    [instance] = sso.list_instances()["Instances"]
    arn, store_id = instance["InstanceArn"], instance["IdentityStoreId"]
    group = store.create_group(IdentityStoreId=store_id, DisplayName="developers")["GroupId"]
    sets = {
        name: sso.create_permission_set(
            InstanceArn=arn, Name=name, Description=description, SessionDuration="PT8H"
        )["PermissionSet"]["PermissionSetArn"]
        for name, description in (
            ("ReadOnly", "Read every service, change none"),
            ("Billing", "The billing console"),
        )
    }
    status = sso.create_account_assignment(
        InstanceArn=arn,
        TargetId=aws.account_id,
        TargetType="AWS_ACCOUNT",
        PermissionSetArn=sets["ReadOnly"],
        PrincipalType="GROUP",
        PrincipalId=group,
    )["AccountAssignmentCreationStatus"]
    while status["Status"] == "IN_PROGRESS":
        status = sso.describe_account_assignment_creation_status(
            InstanceArn=arn, AccountAssignmentCreationRequestId=status["RequestId"]
        )["AccountAssignmentCreationStatus"]


def _identity_center(out: TextIO, aws: EmbeddedAWS, connector_type: ConnectorType) -> None:
    """Part four: the same lifecycle in IAM Identity Center (identity-store users, groups and
    account assignments, which AWS provisions asynchronously). A joiner's plan, then the
    joiner with a group and a direct assignment (polled until it succeeded); the assignments
    with their provenance (``direct``, ``group:NAME``); the group revoked while the direct
    assignment survives; the leaver deleted with what it still holds."""
    seed_identity_center(aws)
    settings = {"endpoint_url": aws.endpoint_url, "assignment_poll_milliseconds": 100}
    out.write(
        f"\n\nPart four: IAM Identity Center (--connector {connector_type.name}). The "
        "account's instance has a developers group,\nassigned the ReadOnly permission set, "
        "and a Billing permission set; the config's [aws-identity-center] table sets\n"
        "assignment_poll_milliseconds = 100.\n"
    )
    say = Narrator(Runtime(connector_type, settings), out)
    say.number = 200  # numbered apart from the other parts' steps
    ada, account = "ada@example.com", aws.account_id
    direct = f"assignment:ReadOnly@{account}"
    joiner = {
        "email": ada,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "grants": ["group:developers", direct],
    }
    created = (
        f"create {ada} --first-name Ada --last-name Lovelace --grant group:developers "
        f"--grant {direct}"
    )
    say.fetch("Reconcile: the permission sets of the instance", "permission-sets")
    say.plan("Plan the joiner first: reads only", f"{created} --plan", "create", joiner)
    say.operation(
        "Joiner: ada with a group and a direct assignment (asynchronous in AWS: polled)",
        created,
        "create",
        joiner,
    )
    say.fetch("Reconcile: ReadOnly held twice, directly and through developers", "assignments")
    say.operation(
        "Revoke the group: the direct assignment survives",
        f"revoke {ada} group:developers",
        "revoke",
        {"email": ada, "entitlement": "group:developers"},
    )
    say.fetch("Reconcile: ReadOnly is still held, directly", "assignments")
    say.operation(
        "Leaver: delete ada, her direct assignment first (awaited)",
        f"delete {ada}",
        "delete",
        {"email": ada},
    )
    say.fetch("Reconcile: no users left in the identity store", "users")


def run_demo(out: TextIO, connector: str | None = None) -> int:
    """Run the narrated lifecycle; returns the process exit code. IAM's parts (one to three)
    and then Identity Center's (four); with ``connector`` aws-identity-center, part four
    alone."""
    registry = load_connectors(get_plugin_manager())
    connector_type = registry.get(connector or DEMO_CONNECTOR)
    if connector_type.name not in (DEMO_CONNECTOR, IDENTITY_CENTER):
        raise ConfigurationError(
            f"the demo has parts for {DEMO_CONNECTOR} and {IDENTITY_CENTER}; none for "
            f"{connector_type.name!r}"
        )
    iam_parts = connector_type.name == DEMO_CONNECTOR
    out.write("Starting an embedded AWS (moto, in process; no credentials, no network)...\n")
    with (
        EmbeddedAWS(load_aws_managed_policies=iam_parts) as aws,
        _environment(aws.client_env()),
    ):
        if iam_parts:
            _iam_parts(out, aws, connector_type)
        else:
            out.write(
                f"The demo of {IDENTITY_CENTER}: part four alone (`hostsim demo` runs IAM's "
                "parts one to three before it).\n"
            )
        _identity_center(out, aws, registry.get(IDENTITY_CENTER))
        center = len(aws.calls("identitystore")) + len(aws.calls("sso"))
        out.write(
            f"\nDone: {len(aws.calls(None))} AWS calls ({len(aws.calls())} of them IAM, "
            f"{center} Identity Center) reached the embedded AWS.\n"
        )
    return 0


def _iam_parts(out: TextIO, aws: EmbeddedAWS, connector_type: ConnectorType) -> None:
    """Parts one to three: IAM's lifecycle, IDHub's side, an organization."""
    iam = boto3.client("iam", endpoint_url=aws.endpoint_url)
    arns = seed_account(iam)
    out.write(
        f"Embedded IAM at {aws.endpoint_url}, account {aws.account_id}, seeded with "
        "2 groups, 2 customer policies and 1 hand-made user.\n"
    )
    runtime = Runtime(connector_type, {"endpoint_url": aws.endpoint_url})
    _lifecycle(Narrator(runtime, out), arns)
    out.write(
        "\n\nPart two: IDHub's side (identities, catalog, requests and approvals, "
        "reconciliation, audit), its state in a temporary SQLite file.\n"
    )
    with tempfile.TemporaryDirectory(prefix="hostsim-demo-") as scratch:
        _idhub(out, Path(scratch) / "state.sqlite3", runtime)
    spanning = {"endpoint_url": aws.endpoint_url, "organization": {}}
    _organization(out, aws, lambda: Runtime(connector_type, spanning))
