"""The ``hostsim`` commands of the IDHub side: identities, catalog, requests, access,
reconciliation and the audit log.

Each command opens the state file, acts as the person ``--as`` names, and prints a table for
people or JSON (``--json``) for scripts. Commands that reach the application first resume any
request a crashed run left ``approved`` (see :mod:`.fulfilment`). Errors are the contract's, so
the CLI's exit codes hold: 2 when the input was refused and nothing changed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from attrs import asdict, evolve

from hostsim import output
from hostsim.argtypes import LIMIT, ROW_ID, bounded
from hostsim.contract.converter import structure
from hostsim.contract.errors import ConnectorError, InvalidInput, Refused
from hostsim.contract.model import OperationResult, Step
from hostsim.core import (
    accounts,
    applications,
    audit,
    catalog,
    claims,
    fulfilment,
    grants,
    identities,
    leavers,
    reconciliation,
    requests,
)
from hostsim.core.identities import Identity
from hostsim.core.plan import Options, Remedy, Report
from hostsim.core.requests import Action, Request, Status
from hostsim.core.settings import (
    CONFIG_TABLE,
    NUMBER_RANGES,
    LeaverPolicy,
    check_connector,
    load_core_settings,
)
from hostsim.core.state import State
from hostsim.core.store import default_path, transaction
from hostsim.redaction import Redactor
from hostsim.runtime import Runtime

CORE_COMMANDS = ("identity", "catalog", "request", "access", "reconcile", "runs", "audit")
ACTOR_VARIABLE = "IDHUB_ACTOR"
EXIT_FAILURE = 1
EXIT_REFUSED = 2

Command = Callable[[str, str], argparse.ArgumentParser]
#: The columns of ``identity list``.
IDENTITY_COLUMNS = (
    "email",
    "display_name",
    "manager",
    "account",
    "missing_since",
    "left_at",
    "delete_due",
)


def account_id(text: str) -> str:
    """An argparse ``type``: a 12-digit AWS account id (``--account``)."""
    value = text.strip()
    if not applications.ACCOUNT_ID.match(value):
        raise argparse.ArgumentTypeError(f"expected a 12-digit AWS account id, got {text[:30]!r}")
    return value


# --- the parsers ------------------------------------------------------------------------


def core_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """``--state`` and ``--as``, accepted before or after the command like ``--config``."""
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--state",
        type=Path,
        default=default,
        metavar="FILE",
        help="IDHub's state file (default: $IDHUB_STATE, else "
        "~/.local/state/hostsim/state.sqlite3)",
    )
    parser.add_argument(
        "--as",
        dest="actor",
        default=default,
        metavar="WHO",
        help=f"who is acting, for approvals and the audit log (default: ${ACTOR_VARIABLE}, "
        "else your login name)",
    )


def _identity_fields(parser: argparse.ArgumentParser, key_value: Any) -> None:
    parser.add_argument("--first-name")
    parser.add_argument("--last-name")
    parser.add_argument("--display-name")
    parser.add_argument("--manager", metavar="EMAIL")
    parser.add_argument(
        "--attr",
        action="append",
        type=key_value,
        default=[],
        metavar="KEY=VALUE",
        help="an extra attribute the connector maps (repeatable); an empty VALUE clears it",
    )


def _nested(
    parent: argparse.ArgumentParser, common: list[argparse.ArgumentParser], dest: str
) -> Command:
    subs = parent.add_subparsers(dest=dest, required=True, metavar="ACTION")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = subs.add_parser(name, help=help_text, description=help_text, parents=common)
        sub.add_argument("--json", action="store_true")
        return sub

    return command


def add_commands(command: Command, common: list[argparse.ArgumentParser], key_value: Any) -> None:
    """Add the IDHub-side commands to the ``hostsim`` parser."""
    _people_and_catalog(command, common, key_value)
    _request_commands(command, common)
    _report_commands(command)


def _people_and_catalog(
    command: Command, common: list[argparse.ArgumentParser], key_value: Any
) -> None:
    identity = _nested(command("identity", "the people IDHub governs"), common, "action")
    sub = identity("add", "record a person (email is the unique id)")
    sub.add_argument("email")
    _identity_fields(sub, key_value)
    sub = identity("modify", "change a person; their account follows (idhub-to-app attributes)")
    sub.add_argument("email")
    _identity_fields(sub, key_value)
    sub = identity(
        "remove",
        "a leaver: delete their account (or disable it, to be deleted later: [idhub] leaver), "
        "close their access and requests",
    )
    sub.add_argument("email")
    identity("list", "every identity, with manager and account")

    cat = _nested(command("catalog", "the entitlements people can request"), common, "action")
    cat("sync", "fetch what can be requested (groups, policies, assignments) into the catalog")
    cat("list", "the catalog: each entitlement, what a group carries, owner, approval chain")
    sub = cat("set", "give an entitlement an owner and/or an approval chain")
    sub.add_argument("entitlement", metavar="ENT")
    sub.add_argument("--owner", metavar="EMAIL", help="the owner ('' removes it)")
    sub.add_argument(
        "--approval",
        metavar="STEPS",
        help="comma-separated steps: manager, owner, an email, or auto (no approval)",
    )


def _request_commands(command: Command, common: list[argparse.ArgumentParser]) -> None:
    req = _nested(command("request", "access requests and their approvals"), common, "action")
    sub = req("submit", "ask for an entitlement (or, with --revoke, to remove it)")
    sub.add_argument("entitlement", metavar="ENT")
    sub.add_argument("--for", dest="identity", metavar="EMAIL", help="whose access (default: --as)")
    sub.add_argument("--justification", required=True, metavar="TEXT")
    sub.add_argument("--revoke", action="store_true", help="a revocation (never waits)")
    for name, help_text in (
        ("approve", "approve the step waiting for you; the last one fulfils the request"),
        ("reject", "reject the step waiting for you"),
    ):
        sub = req(name, help_text)
        sub.add_argument("id", type=ROW_ID)
        sub.add_argument("--comment", default="")
    sub = req("withdraw", "take back your request while it is open")
    sub.add_argument("id", type=ROW_ID)
    sub = req("retry", "run a failed request again (what was done is not repeated)")
    sub.add_argument("id", type=ROW_ID)
    req("resume", "carry out requests an interrupted run left approved")
    sub = req("list", "requests, oldest first")
    sub.add_argument("--status", choices=[s.value for s in Status])
    sub.add_argument("--for", dest="identity", metavar="EMAIL")
    sub.add_argument("--waiting-for", metavar="EMAIL", help="only those waiting on this approver")
    sub = req("show", "one request with its approval chain and the connector's steps")
    sub.add_argument("id", type=ROW_ID)
    sub.add_argument(
        "--plan",
        action="store_true",
        help="also show what fulfilling it now would do (the connector's plan, reads only)",
    )


def _report_commands(command: Command) -> None:
    sub = command("access", "who holds what by IDHub's records, and why (direct or via group)")
    sub.add_argument("identity", nargs="?", metavar="EMAIL")
    sub.add_argument("--json", action="store_true")

    sub = command(
        "reconcile",
        "compare IDHub's records with the application: orphan and missing accounts, access "
        "granted or removed out of band, attribute drift; remediate what you ask for",
    )
    sub.add_argument(
        "--remediate",
        action="append",
        default=[],
        metavar="WHAT",
        help="fix (repeatable or comma-separated): "
        + ", ".join(r.value for r in Remedy)
        + ", or all",
    )
    sub.add_argument(
        "--stale-days",
        type=bounded(*NUMBER_RANGES["stale_days"]),
        metavar="N",
        help="days before a missing account is dropped (default: [idhub] stale_days, 7)",
    )
    sub.add_argument(
        "--deletion-threshold",
        type=bounded(*NUMBER_RANGES["deletion_threshold"]),
        metavar="PCT",
        help="refuse a run "
        "removing more than PCT%% of accounts (default: [idhub] deletion_threshold, "
        "20)",
    )
    sub.add_argument(
        "--account",
        type=account_id,
        metavar="ID",
        help="in an organization, reconcile only this AWS account (default: every one in "
        "scope, a run each)",
    )
    sub.add_argument("--json", action="store_true")

    sub = command("runs", "the reconciliation runs, newest first, with their counts")
    sub.add_argument("--limit", type=LIMIT, default=20)
    sub.add_argument("--json", action="store_true")

    sub = command("audit", "the append-only audit log, oldest first")
    sub.add_argument("--request", type=ROW_ID, metavar="ID")
    sub.add_argument("--subject", metavar="WHO", help="entries about or by this person")
    sub.add_argument("--limit", type=LIMIT, metavar="N", help="only the newest N")
    sub.add_argument("--json", action="store_true")


# --- running them ---------------------------------------------------------------------


def actor_of(args: argparse.Namespace, environ: Mapping[str, str]) -> str:
    chosen = getattr(args, "actor", None) or environ.get(ACTOR_VARIABLE) or getpass.getuser()
    return str(chosen)


def open_core(
    args: argparse.Namespace,
    application: str,
    table: Mapping[str, Any],
    redact: Redactor,
    runtime: Callable[[], Runtime] | None = None,
) -> State:
    """The settings loaded (and, given the runtime, checked against what its connector type
    can do: the leaver policy), then the state file opened."""
    settings = load_core_settings(table)
    if runtime is not None:  # the type only: nothing is opened or configured
        kind = runtime().connector_type
        check_connector(settings, kind.name, (c.value for c in kind.capabilities))
    path = getattr(args, "state", None) or default_path(os.environ)
    return State.open(
        path,
        actor=actor_of(args, os.environ),
        application=application,
        settings=settings,
        redact=redact,
    )


def short(entitlement: str) -> str:
    """``policy:arn:aws:iam::aws:policy/SecurityAudit`` as ``policy:SecurityAudit`` (tables)."""
    kind, _, rest = entitlement.partition(":")
    return f"{kind}:{rest.rsplit('/', 1)[-1]}" if rest.startswith("arn:") else entitlement


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def _print_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], what: str) -> None:
    if rows:
        print(output.table(columns, rows))
    print(f"({len(rows)} {what})")


class CoreCommands:
    """One command of the IDHub side, with its state and (opened lazily) the runtime."""

    def __init__(self, args: argparse.Namespace, state: State, runtime: Callable[[], Runtime]):
        self.args = args
        self.state = state
        self._runtime = runtime

    @property
    def runtime(self) -> Runtime:
        return self._runtime()

    def run(self) -> int:
        action = getattr(self.args, "action", None)
        name = f"{self.args.command}_{action}" if action else self.args.command
        handler: Callable[[], int] = getattr(self, name.replace("-", "_"))
        return handler()

    def resume(self) -> None:
        """Finish what an interrupted run left approved, before anything else."""
        for request in fulfilment.resume(self.state, self.runtime):
            print(
                f"hostsim: resumed request {request.id} left approved by an interrupted run: "
                f"{request.status_text}",
                file=sys.stderr,
            )

    # --- identities

    def _fields(self) -> dict[str, str]:
        args = self.args
        given = {
            name: getattr(args, name)
            for name in ("first_name", "last_name", "display_name", "manager")
            if getattr(args, name) is not None
        }
        for key, value in args.attr:
            if key in given or key in ("email", "manager"):
                raise InvalidInput(f"--attr {key} given twice or names a field of its own")
            given[key] = value
        return given

    def identity_add(self) -> int:
        fields = self._fields()
        names = {k: fields.pop(k) or None for k in list(fields) if k in identities.NAME_FIELDS}
        manager = fields.pop("manager", None) or None
        added = identities.add(
            self.state,
            Identity(self.args.email, manager=manager, attributes=fields, **names),
        )
        return self._identity_out(added)

    def _identity_out(self, identity: Identity) -> int:
        if self.args.json:
            _print_json(asdict(identity))
        else:
            print(f"identity {identity.email}: manager {identity.manager or '-'}")
        return 0

    def identity_modify(self) -> int:
        """Change the identity and push it to its account in one transaction: when the
        connector refuses the change (invalid input, a guard rail, e.g. an attribute writing
        its protection tag; nothing sent), IDHub keeps the identity as it was (exit 2). Any
        other failure keeps the change, for the next reconciliation to push."""
        failure: ConnectorError | None = None
        linked = self._linked(self.args.email)
        if any(applications.account_of(app) is not None for app in linked):
            return self._modify_everywhere(linked)
        # the person's lock before the write transaction, as everywhere: waiting for it while
        # holding the state file's write lock would stall the work that holds it
        busy = f"{self.args.email} is not changed"
        with (
            claims.acting_for(self.state.path, self.args.email, what=busy),
            transaction(self.state.db),
        ):
            before, after = identities.modify(self.state, self.args.email, self._fields())
            try:
                pushed = fulfilment.push_attributes(self.state, self.runtime, before, after)
            except (InvalidInput, Refused):
                raise  # rolls the identity's change back
            except ConnectorError as exc:
                failure = exc
        if failure is not None:
            raise failure
        verdict = "changed" if after != before else "unchanged"
        return self._identity_and_account(after, pushed, verdict)

    def _linked(self, email: str) -> list[str]:
        """The applications in which IDHub records an account of the person."""
        person = identities.find(self.state.db, email)
        if person is None:
            return []
        return [
            app.application
            for app in applications.states(self.state)
            if accounts.find(app, person.email) is not None
        ]

    def _modify_everywhere(self, linked: list[str]) -> int:
        """In an organization: the identity changed, and pushed to each AWS account where the
        person has an account. A failure in one is reported (exit 1) without losing the
        others; only when every push was refused (nothing sent) is the change rolled back."""
        done: list[tuple[str, OperationResult | None, ConnectorError | None]] = []
        busy = f"{self.args.email} is not changed"
        with (
            claims.acting_for(self.state.path, self.args.email, what=busy),
            transaction(self.state.db),
        ):
            before, after = identities.modify(self.state, self.args.email, self._fields())
            for app in linked:
                target = applications.bound(self.state, self.runtime, app)
                try:
                    pushed = fulfilment.push_attributes(target.state, target.runtime, before, after)
                except ConnectorError as failed:
                    done.append((app, None, failed))
                    continue
                done.append((app, pushed, None))
            errors = [error for _, _, error in done if error is not None]
            refused = all(isinstance(error, InvalidInput | Refused) for error in errors)
            if errors and len(errors) == len(done) and refused:
                raise errors[0]  # rolls the identity's change back
        verdict = "changed" if after != before else "unchanged"
        if self.args.json:
            _print_json(
                {
                    "identity": asdict(after),
                    "accounts": [
                        {
                            "application": app,
                            "account_id": applications.account_of(app),
                            "account": None if result is None else output.result_data(result),
                            "error": None if error is None else error.message,
                        }
                        for app, result, error in done
                    ],
                }
            )
        else:
            print(f"identity {after.email}: {verdict}")
            for app, result, _ in done:
                if result is not None:
                    print(f"in {app}:")
                    output.write_result(result, sys.stdout, as_json=False)
        for app, _, error in done:
            if error is not None:
                print(f"hostsim: error: in {app}: {error.message}", file=sys.stderr)
        return EXIT_FAILURE if errors else 0

    def _leaver_scope(self) -> list[applications.Target] | None:
        """Every in-scope AWS account of an organization (None: a connector of one)."""
        if not applications.spans(self.state, self.runtime):
            return None
        return applications.in_scope(self.state, self.runtime)

    def identity_remove(self) -> int:
        email = self.args.email

        def waiting() -> None:
            print(
                f"hostsim: {email} is marked as left; waiting for work in progress for them in "
                "another process (a fulfilment or a reconciliation remedy) to finish, which "
                "undoes whatever it gave them",
                file=sys.stderr,
            )

        done = leavers.leave(
            self.state, self.runtime, email, on_wait=waiting, scope=self._leaver_scope
        )
        person = done.identity
        if done.places:
            return self._left_everywhere(done)
        if self.args.json:
            account = None if done.result is None else output.result_data(done.result)
            _print_json(
                {
                    "identity": asdict(person),
                    "account": account,
                    "leaver": {
                        "policy": done.policy.value,
                        "done": done.done,
                        "account": done.account,
                        "delete_due": done.delete_due,
                    },
                    "waited": done.waited,
                    "undone": list(done.undone),
                }
            )
            return 0
        _print_left(done)
        print(_leave_line(done))
        if done.result is not None:
            output.write_result(done.result, sys.stdout, as_json=False)
        return 0

    def _left_everywhere(self, done: leavers.Leave) -> int:
        """A leave in every AWS account of an organization: what it did in each."""
        person = done.identity
        if self.args.json:
            _print_json(
                {
                    "identity": asdict(person),
                    "leaver": {"policy": done.policy.value},
                    "accounts": [
                        {
                            "application": place.application,
                            "account_id": place.account_id,
                            "done": place.done,
                            "account": place.account,
                            "delete_due": place.delete_due,
                            "result": None
                            if place.result is None
                            else output.result_data(place.result),
                        }
                        for place in done.places
                    ],
                    "waited": done.waited,
                    "undone": list(done.undone),
                }
            )
            return 0
        _print_left(done)
        for place in done.places:
            line = _leave_line(
                evolve(done, done=place.done, account=place.account, delete_due=place.delete_due)
            )
            print(f"in {place.application}: {line}")
        return 0

    def _identity_and_account(
        self, person: Identity, result: OperationResult | None, verdict: str
    ) -> int:
        """An identity, and what the connector did to its account (None: nothing)."""
        if self.args.json:
            account = None if result is None else output.result_data(result)
            _print_json({"identity": asdict(person), "account": account})
            return 0
        print(f"identity {person.email}: {verdict}")
        if result is not None:
            output.write_result(result, sys.stdout, as_json=False)
        return 0

    def _delete_due(self, disabled_at: str | None, left_at: str | None) -> str | None:
        """When the disabled account of a leaver is due to be deleted (leaver policy
        ``disable``); None for an account IDHub has not disabled, or under ``delete`` (where
        the next ``reconcile --remediate delete-orphans`` deletes it)."""
        if disabled_at is None or not self.state.settings.disables:
            return None
        return leavers.deletion_due(self.state.settings, disabled_at, left_at)

    def identity_list(self) -> int:
        if applications.organized(self.state):
            return self._identities_everywhere()
        rows = []
        held = {record.identity: record for record in accounts.every(self.state)}
        for person in identities.every(self.state.db):
            record = held.get(person.email)
            disabled = None if record is None else record.disabled_at
            rows.append(
                {
                    **asdict(person),
                    "account": None if record is None else record.name,
                    "missing_since": None if record is None else record.missing_since,
                    "disabled_at": disabled,
                    "delete_due": self._delete_due(disabled, person.left_at),
                }
            )
        if self.args.json:
            _print_json(rows)
            return 0
        columns = IDENTITY_COLUMNS
        _print_table(columns, [[row[c] for c in columns] for row in rows], "identities")
        return 0

    def _identities_everywhere(self) -> int:
        """Every identity with its accounts in every AWS account of an organization: the
        ``account`` column lists them as ``NAME@ACCOUNT`` (a list in JSON)."""
        held: dict[str, list[tuple[str, accounts.AccountRecord]]] = {}
        for app in applications.states(self.state):
            for record in accounts.every(app):
                held.setdefault(record.identity, []).append((app.application, record))
        rows = []
        for person in identities.every(self.state.db):
            records = held.get(person.email, [])
            missing = sorted(r.missing_since for _, r in records if r.missing_since)
            disabled = sorted(r.disabled_at for _, r in records if r.disabled_at)
            first_disabled = disabled[0] if disabled else None
            rows.append(
                {
                    **asdict(person),
                    "account": [
                        f"{r.name}@{applications.account_of(app) or app}" for app, r in records
                    ],
                    "accounts": [
                        {
                            "application": app,
                            "account_id": applications.account_of(app),
                            "name": r.name,
                            "missing_since": r.missing_since,
                            "disabled_at": r.disabled_at,
                        }
                        for app, r in records
                    ],
                    "missing_since": missing[0] if missing else None,
                    "disabled_at": first_disabled,
                    "delete_due": self._delete_due(first_disabled, person.left_at),
                }
            )
        if self.args.json:
            _print_json(rows)
            return 0
        columns = IDENTITY_COLUMNS
        table = [
            [(",".join(row[c]) or None) if c == "account" else row[c] for c in columns]
            for row in rows
        ]
        _print_table(columns, table, "identities")
        return 0

    # --- catalog

    def catalog_sync(self) -> int:
        self.resume()
        if applications.spans(self.state, self.runtime):
            return self._sync_everywhere()
        summary = catalog.sync(self.state, self.runtime)
        if self.args.json:
            _print_json(asdict(summary))
            return 0
        _print_sync(summary, "catalog synced")
        return 0

    def _sync_everywhere(self) -> int:
        """Each in-scope AWS account synced into its own application, through the runtime
        bound to it. An account that cannot be read is named on stderr and its entries are
        kept as they were (not taken as gone); the others are synced; exit 1."""
        synced: list[tuple[str, catalog.SyncSummary]] = []
        failed: list[tuple[str, str]] = []
        for target in applications.in_scope(self.state, self.runtime):
            try:
                synced.append((target.label, catalog.sync(target.state, target.runtime)))
            except ConnectorError as exc:
                failed.append((target.label, exc.message))
        if self.args.json:
            _print_json(
                [
                    {
                        "application": app,
                        "account_id": applications.account_of(app),
                        **asdict(summary),
                    }
                    for app, summary in synced
                ]
                + [
                    {"application": app, "account_id": applications.account_of(app), "error": why}
                    for app, why in failed
                ]
            )
        else:
            for app, summary in synced:
                _print_sync(summary, f"catalog of {app} synced")
        for app, why in failed:
            print(
                f"hostsim: error: {app} could not be read, its catalog entries are kept as they "
                f"were: {why}",
                file=sys.stderr,
            )
        return EXIT_FAILURE if failed else 0

    def catalog_list(self) -> int:
        default = self.state.settings.default_approval
        if applications.organized(self.state):
            return self._catalog_everywhere()
        entries = list(catalog.every(self.state))
        if self.args.json:
            _print_json(
                [
                    {**asdict(e), "effective_approval": list(e.approval_chain or default)}
                    for e in entries
                ]
            )
            return 0
        rows = [
            [
                short(e.id),
                ",".join(short(p).partition(":")[2] for p in e.carries) or "-",
                e.owner,
                ",".join(e.approval_chain or default) + ("" if e.approval_chain else " (default)"),
                "yes" if e.present else "gone",
            ]
            for e in entries
        ]
        _print_table(
            ("entitlement", "carries", "owner", "approval", "present"), rows, "entitlements"
        )
        return 0

    def _catalog_everywhere(self) -> int:
        """The catalog of every AWS account of an organization, each entry naming its account."""
        default = self.state.settings.default_approval
        entries = [
            (app, entry) for app in applications.states(self.state) for entry in catalog.every(app)
        ]
        if self.args.json:
            _print_json(
                [
                    {
                        **asdict(e),
                        "application": app.application,
                        "account_id": app.account_id,
                        "effective_approval": list(e.approval_chain or default),
                    }
                    for app, e in entries
                ]
            )
            return 0
        rows = [
            [
                app.account_id or app.application,
                short(e.id),
                ",".join(short(p).partition(":")[2] for p in e.carries) or "-",
                e.owner,
                ",".join(e.approval_chain or default) + ("" if e.approval_chain else " (default)"),
                "yes" if e.present else "gone",
            ]
            for app, e in entries
        ]
        _print_table(
            ("aws_account", "entitlement", "carries", "owner", "approval", "present"),
            rows,
            "entitlements",
        )
        return 0

    def _of(self, entitlement: str) -> State:
        """The state of the application an entitlement named on the command line is in."""
        application = applications.of_entitlement(self.state, entitlement)
        return self.state.for_application(application, applications.account_of(application))

    def catalog_set(self) -> int:
        approval = None
        if self.args.approval is not None:
            approval = tuple(s.strip() for s in self.args.approval.split(",") if s.strip())
        entry = catalog.configure(
            self._of(self.args.entitlement),
            self.args.entitlement,
            owner=self.args.owner,
            approval=approval,
        )
        if self.args.json:
            _print_json(asdict(entry))
        else:
            chain = ",".join(entry.approval_chain or self.state.settings.default_approval)
            print(f"{entry.id}: owner {entry.owner or '-'}, approval {chain}")
        return 0

    # --- requests

    def _request_out(self, request: Request) -> int:
        if self.args.json:
            _print_json(request_data(request))
        else:
            print(
                f"request {request.id}: {request.action.value} {short(request.entitlement)} for "
                f"{request.identity}: {request.status_text}"
            )
            if request.steps and request.status in (Status.COMPLETE, Status.FAILED):
                print(output.steps_table(steps_of(request)))
        if request.status is Status.FAILED:
            print(
                f"hostsim: error: request {request.id} failed: {request.reason} (retry with "
                f"`hostsim request retry {request.id}`)",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        return 0

    def _fulfilled(self, request: Request) -> int:
        if request.status is Status.APPROVED:
            request = fulfilment.fulfil(self.state, self.runtime, request)
        return self._carried_out(request)

    def _carried_out(self, request: Request) -> int:
        """A request after fulfilment; one withdrawn meanwhile (its person left) failed."""
        code = self._request_out(request)
        if request.status is Status.WITHDRAWN:
            print(
                f"hostsim: error: request {request.id} was not carried out: {request.reason}",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        return code

    def request_submit(self) -> int:
        self.resume()
        action = Action.REVOKE if self.args.revoke else Action.GRANT
        identity = self.args.identity or self.state.actor
        request = requests.submit(
            self._of(self.args.entitlement),
            action,
            identity,
            self.args.entitlement,
            self.args.justification,
        )
        return self._fulfilled(request)

    def request_approve(self) -> int:
        self.resume()
        return self._fulfilled(requests.approve(self.state, self.args.id, self.args.comment))

    def request_reject(self) -> int:
        return self._request_out(requests.reject(self.state, self.args.id, self.args.comment))

    def request_withdraw(self) -> int:
        return self._request_out(requests.withdraw(self.state, self.args.id))

    def request_retry(self) -> int:
        self.resume()
        return self._carried_out(fulfilment.retry(self.state, self.runtime, self.args.id))

    def request_resume(self) -> int:
        done = fulfilment.resume(self.state, self.runtime)
        if self.args.json:
            _print_json([request_data(r) for r in done])
        else:
            for request in done:
                print(f"request {request.id}: {request.status_text}")
            print(f"({len(done)} requests resumed)")
        failed = any(r.status is Status.FAILED for r in done)
        return EXIT_FAILURE if failed else 0

    def request_list(self) -> int:
        found = list(
            requests.every(
                self.state.db,
                status=self.args.status,
                identity=self.args.identity,
                approver=self.args.waiting_for,
            )
        )
        if self.args.json:
            _print_json([request_data(r) for r in found])
            return 0
        rows = [
            [r.id, r.action.value, r.identity, short(r.entitlement), r.status_text, r.requested_by]
            for r in found
        ]
        columns = ("id", "action", "identity", "entitlement", "status", "requested_by")
        _print_table(columns, rows, "requests")
        return 0

    def request_show(self) -> int:
        request = requests.get(self.state.db, self.args.id)
        planned = fulfilment.plan(self.state, self.runtime, request) if self.args.plan else None
        if self.args.json:
            data = request_data(request)
            if planned is not None:
                data["plan"] = {**output.result_data(planned), "would_change": planned.would_change}
            _print_json(data)
            return 0
        print(
            f"request {request.id}: {request.action.value} {request.entitlement} for "
            f"{request.identity}\n  asked by {request.requested_by} at {request.created_at}: "
            f"{request.justification}\n  status: {request.status_text} (attempts: "
            f"{request.attempts})"
        )
        if request.approvals:
            print(
                output.table(
                    ("step", "role", "approver", "decision", "at", "comment"),
                    [
                        [a.position, a.role, a.approver, a.decision, a.decided_at, a.comment]
                        for a in request.approvals
                    ],
                )
            )
        if request.steps:
            print(output.steps_table(steps_of(request)))
        if planned is not None:
            verdict = "would change" if planned.would_change else "would change nothing"
            print(f"fulfilling it now {verdict} (plan, reads only):")
            print(output.steps_table(planned.steps))
        return 0

    # --- access, reconciliation, audit

    def access(self) -> int:
        email = (
            identities.get(self.state.db, self.args.identity).email
            if (self.args.identity)
            else None
        )
        rows = list(grants.why(self.state.db, email))
        if self.args.json:
            _print_json([asdict(row) for row in rows])
            return 0
        _print_table(
            ("identity", "entitlement", "via", "request", "granted_at"),
            [
                [r.identity, short(r.entitlement), short(r.via), r.request, r.granted_at]
                for r in rows
            ],
            "holdings",
        )
        return 0

    def _options(self) -> Options:
        remedies: set[Remedy] = set()
        for text in self.args.remediate:
            for name in (part.strip() for part in text.split(",")):
                if name == "all":
                    remedies.update(Remedy)
                    continue
                try:
                    remedies.add(Remedy(name))
                except ValueError:
                    known = ", ".join(r.value for r in Remedy)
                    raise InvalidInput(
                        f"--remediate: unknown remedy {name!r} (one of: {known}, all)"
                    ) from None
        settings = self.state.settings
        stale = settings.stale_days if self.args.stale_days is None else self.args.stale_days
        threshold = self.args.deletion_threshold
        threshold = settings.deletion_threshold if threshold is None else threshold
        if stale < 0:
            raise InvalidInput(f"--stale-days: expected 0 or more, got {stale}")
        if not 0 <= threshold <= 100:
            raise InvalidInput(f"--deletion-threshold: expected 0 to 100, got {threshold}")
        return Options(frozenset(remedies), stale, threshold)

    def reconcile(self) -> int:
        options = self._options()
        self.resume()
        if applications.spans(self.state, self.runtime):
            return self._reconcile_everywhere(options)
        runtime = self.runtime.for_account(self.args.account)
        report = reconciliation.reconcile(self.state, runtime, options)
        if self.args.json:
            _print_json(
                {
                    "run": report.run,
                    "status": report.status,
                    "counts": report.counts,
                    "message": report.message,
                    "findings": [asdict(f) for f in report.findings],
                }
            )
        else:
            _print_table(
                ("account", "finding", "subject", "idhub", "app", "direction", "action", "outcome"),
                [
                    [
                        f.account,
                        f.kind.value,
                        short(f.subject),
                        f.idhub,
                        f.app,
                        f.direction,
                        f.action.value,
                        f.outcome or f.detail,
                    ]
                    for f in report.findings
                ],
                "findings",
            )
            tally = ", ".join(f"{count} {kind}" for kind, count in report.counts.items())
            print(f"reconciliation run {report.run}: {report.status} ({tally or 'no drift'})")
        if report.status == "refused":
            print(f"hostsim: error: {report.message}", file=sys.stderr)
            return EXIT_REFUSED
        if report.status == "partial":
            print(
                f"hostsim: error: some remedies of run {report.run} failed (see the outcome "
                "column); run reconcile again once the cause is fixed",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        return 0

    def _reconcile_everywhere(self, options: Options) -> int:
        """One run per in-scope AWS account of an organization (or the one ``--account``
        names), each with its own findings and deletion threshold; an account that could
        not be read fails its own run only. Exit 1 if any run failed or a remedy did, else
        2 if any was refused (the threshold), else 0."""
        done: list[tuple[applications.Target, Report]] = []
        for target in applications.in_scope(self.state, self.runtime, self.args.account):
            try:
                report = reconciliation.reconcile(target.state, target.runtime, options)
            except ConnectorError as exc:
                report = _failed_run(target.state, exc)
            done.append((target, report))
        if self.args.json:
            _print_json(
                {
                    "runs": [
                        {
                            "application": target.label,
                            "account_id": target.state.account_id,
                            "run": report.run,
                            "status": report.status,
                            "counts": report.counts,
                            "message": report.message,
                            "findings": [asdict(f) for f in report.findings],
                        }
                        for target, report in done
                    ]
                }
            )
        else:
            _print_table(
                (
                    "aws_account",
                    "account",
                    "finding",
                    "subject",
                    "idhub",
                    "app",
                    "direction",
                    "action",
                    "outcome",
                ),
                [
                    [
                        target.state.account_id,
                        f.account,
                        f.kind.value,
                        short(f.subject),
                        f.idhub,
                        f.app,
                        f.direction,
                        f.action.value,
                        f.outcome or f.detail,
                    ]
                    for target, report in done
                    for f in report.findings
                ],
                "findings",
            )
            for target, report in done:
                tally = ", ".join(f"{count} {kind}" for kind, count in report.counts.items())
                print(
                    f"reconciliation run {report.run} of {target.label}: {report.status} "
                    f"({tally or 'no drift'})"
                )
        return self._runs_exit(done)

    def _runs_exit(self, done: list[tuple[applications.Target, Report]]) -> int:
        code = 0
        for target, report in done:
            if report.status == "refused":
                print(f"hostsim: error: {target.label}: {report.message}", file=sys.stderr)
                code = code or EXIT_REFUSED
            elif report.status == "failed":
                print(f"hostsim: error: {target.label}: {report.message}", file=sys.stderr)
                code = EXIT_FAILURE
            elif report.status == "partial":
                print(
                    f"hostsim: error: some remedies of run {report.run} ({target.label}) failed "
                    "(see the outcome column); run reconcile again once the cause is fixed",
                    file=sys.stderr,
                )
                code = EXIT_FAILURE
        return code

    def runs(self) -> int:
        """The newest runs; in an organization those of every AWS account, each naming its
        application."""
        organized = applications.organized(self.state)
        among = applications.known(self.state) if organized else None
        found = reconciliation.runs(self.state, self.args.limit, among)
        if self.args.json:
            _print_json(found)
            return 0
        columns: tuple[str, ...] = ("run", "application", "started_at", "actor", "status", "counts")
        if not organized:
            columns = tuple(column for column in columns if column != "application")
        rows = [
            [_counts(run["counts"]) if column == "counts" else run[column] for column in columns]
            for run in found
        ]
        _print_table(columns, rows, "runs")
        return 0

    def audit(self) -> int:
        entries = list(
            audit.entries(
                self.state.db,
                request=self.args.request,
                subject=self.args.subject.lower() if self.args.subject else None,
                limit=self.args.limit,
            )
        )
        if self.args.json:
            _print_json([asdict(entry) for entry in entries])
            return 0
        rows = [
            [e.seq, e.at, e.actor, e.action, e.subject, e.request, e.result, _summary(e.detail)]
            for e in entries
        ]
        _print_table(
            ("seq", "at", "actor", "action", "subject", "request", "result", "detail"),
            rows,
            "entries",
        )
        return 0


def _failed_run(state: State, exc: ConnectorError) -> Report:
    """The run a read failure ended (it logged itself ``failed``), as a report."""
    latest = reconciliation.runs(state, 1)
    if not latest:  # it failed before its run was logged
        return Report(0, "failed", (), {}, f"reading it failed: {exc.message}")
    return Report(int(str(latest[0]["run"])), "failed", (), {}, str(latest[0]["message"]))


def _counts(counts: object) -> str:
    """A run's counts in one cell: ``2 orphan-account, 1 attribute-drift``."""
    assert isinstance(counts, Mapping)
    return ", ".join(f"{kind} {count}" for kind, count in counts.items())


def _print_sync(summary: catalog.SyncSummary, synced: str) -> None:
    """A catalog sync's changes, one line each, then ``synced`` with its counts."""
    for label, ids in (
        ("added", summary.added),
        ("updated", summary.updated),
        ("gone from the application", summary.removed),
    ):
        for entitlement in ids:
            print(f"{label}: {entitlement}")
    print(
        f"{synced}: {len(summary.added)} added, {len(summary.updated)} updated, "
        f"{len(summary.removed)} gone, {summary.unchanged} unchanged"
    )


def _print_left(done: leavers.Leave) -> None:
    """When the person left, whether the leave waited for work in flight, and what that work
    undid (the lines every leave prints first, in one account or in many)."""
    person = done.identity
    print(f"identity {person.email}: left on {person.left_at}")
    if done.waited:
        print(f"waited for work in progress for {person.email} in another process")
    for what in done.undone:
        print(f"undone, as {person.email} left while it ran: {what}")


def _leave_line(done: leavers.Leave) -> str:
    """What a leave did to the account, in one line."""
    if done.done == leavers.NO_ACCOUNT:
        verb = "disable" if done.policy is LeaverPolicy.DISABLE else "delete"
        return f"account: none to {verb}"
    if done.done == leavers.DISABLED:
        return (
            f"account {done.account}: disabled (leaver policy disable); deletion due on "
            f"{done.delete_due}, by `hostsim reconcile --remediate delete-orphans`"
        )
    return f"account {done.account}: deleted"


def _summary(detail: Any) -> str:
    """The detail of an audit entry in one short cell (``--json`` has it whole). Any detail
    renders, also one written before steps were stored in one shape (as bare step names)."""
    if not isinstance(detail, Mapping):
        return str(detail)
    parts = []
    for key in ("entitlement", "error", "comment", "why", "message", "lost_race"):
        if detail.get(key):
            value = str(detail[key])
            parts.append(f"{key}={short(value) if key == 'entitlement' else value}")
    steps = detail.get("steps")
    if isinstance(steps, list) and steps:
        parts.append(_steps_summary(steps))
    return "; ".join(parts)


def _steps_summary(steps: list[Any]) -> str:
    """``steps=2/3 done``; steps stored without a status (bare names) are counted apart."""
    known = [step for step in steps if isinstance(step, Mapping)]
    done = sum(1 for step in known if step.get("status") == "done")
    text = f"steps={done}/{len(steps)} done"
    if len(known) < len(steps):
        text += f" ({len(steps) - len(known)} recorded without a status)"
    return text


def steps_of(request: Request) -> tuple[Step, ...]:
    """The connector's steps stored with a request, as contract objects again."""
    return structure(list(request.steps), tuple[Step, ...], what="stored steps")


def request_data(request: Request) -> dict[str, Any]:
    data = asdict(request)
    data["status_text"] = request.status_text
    return data


def run(
    args: argparse.Namespace,
    application: str,
    runtime: Callable[[], Runtime],
    table: Mapping[str, Any],
    redact: Redactor,
) -> int:
    """Run one IDHub-side command; the state file is closed whatever happens."""
    state = open_core(args, application, table, redact, runtime)
    try:
        return CoreCommands(args, state, runtime).run()
    finally:
        state.close()


__all__ = ["CONFIG_TABLE", "CORE_COMMANDS", "add_commands", "core_options", "run"]
