"""The ``hostsim`` command line: the connector application's operator interface.

The grammar is :mod:`hostsim.arguments`, how a command ends is :mod:`hostsim.exits`; this module
dispatches. Each command turns its arguments into a contract payload and hands it to the
:class:`~hostsim.runtime.Runtime`. Errors end as one line on stderr (a traceback only with
``--debug``) and an exit code: 2 when the input was refused and nothing changed, 1 for any other
failure, in which case the steps already done are printed first.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from hostsim import bulk_import, config, output, redaction
from hostsim.arguments import build_parser
from hostsim.contract import Capability, ConnectorError, PartialRead, unstructure
from hostsim.core import commands as core_commands
from hostsim.exits import EXIT_FAILURE, UsageError, guarded
from hostsim.plugins import get_plugin_manager, load_connectors
from hostsim.progress import Progress, counted
from hostsim.registry import ConnectorRegistry
from hostsim.runtime import Runtime

#: The config file's table for `serve` (hostsim.scim.CONFIG_TABLE), not a connector's.
SCIM_TABLE = "scim"


# --- commands -------------------------------------------------------------------------


def _attributes(args: argparse.Namespace) -> dict[str, Any]:
    payload: dict[str, Any] = {"email": args.email}
    for field in ("first_name", "last_name", "display_name"):
        if getattr(args, field) is not None:
            payload[field] = getattr(args, field)
    extra: dict[str, str] = {}
    for key, value in args.attr:
        if key in extra:
            raise UsageError(f"--attr {key} given twice")
        extra[key] = value
    if extra:
        payload["attributes"] = extra
    return payload


def _operation(runtime: Runtime, args: argparse.Namespace) -> int:
    payload = _attributes(args) if args.command in ("create", "modify") else {"email": args.email}
    if args.command == "create" and args.grant:
        payload["grants"] = args.grant
    if args.command == "modify" and args.new_email is not None:
        payload["new_email"] = args.new_email
    if args.command in ("grant", "revoke"):
        payload["entitlement"] = args.entitlement
    try:
        # bound inside: a refused --account (out of scope, or a type of one target) ends like
        # any refused input, in the JSON document too
        bound = runtime.for_account(args.account)
        run: Callable[[dict[str, Any]], Any] = getattr(bound, args.command)
        if args.plan:
            run = partial(bound.plan, args.command)
        result = run(payload)
    except ConnectorError as exc:
        output.write_failure(args.command, exc.message, exc.steps, sys.stdout, args.json)
        raise
    output.write_result(result, sys.stdout, args.json, planned=args.plan)
    return 0


def _fetch(runtime: Runtime, args: argparse.Namespace) -> int:
    """Every row of one read; across an organization, an account that could not be read
    fails only itself: the others' rows are written, then it is named on stderr (exit 1)."""
    fmt = "json" if args.json else "jsonl" if args.jsonl else "table"
    # On a terminal, a progress line would tangle with rows streamed to that same terminal.
    streamed_to_terminal = fmt != "table" and _is_terminal(sys.stdout)
    progress = Progress(f"fetch {args.kind}", enabled=False if streamed_to_terminal else None)
    rows = counted(runtime.fetch(args.kind), progress)
    try:
        output.write_rows(args.kind, rows, sys.stdout, fmt)
    except PartialRead as exc:
        sys.stdout.flush()
        print(f"hostsim: error: {unread_accounts(exc)}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def unread_accounts(error: PartialRead) -> str:
    """One line naming every account a read could not reach, with why."""
    named = "; ".join(f"{account} ({reason})" for account, reason in error.failed)
    return f"could not read {len(error.failed)} account(s): {named or error.message}"


def _test(runtime: Runtime, args: argparse.Namespace) -> int:
    """The connection check, printed whole; exit 1 when it failed (a permission missing, an
    account of the organization out of reach), so a script or a deployment check can tell."""
    status = runtime.test()
    output.write_status(status, sys.stdout, args.json)
    if status.ok:
        return 0
    sys.stdout.flush()
    print(f"hostsim: error: the check failed: {status.message}", file=sys.stderr)
    return EXIT_FAILURE


def _accounts(runtime: Runtime, args: argparse.Namespace) -> int:
    """The target accounts in scope, each tried now; exit 1 (each named on stderr) when some
    cannot be reached, so a script can tell."""
    if Capability.TARGET_ACCOUNTS not in runtime.connector_type.capabilities:
        raise UsageError(
            f"connector {runtime.connector_type.name!r} has no target accounts to list "
            f"(it does not offer {Capability.TARGET_ACCOUNTS.value})"
        )
    accounts = runtime.target_accounts(check=True)
    if args.json:
        print(json.dumps([output.account_data(a) for a in accounts], indent=2, sort_keys=True))
    else:
        print(output.accounts_table(accounts))
    sys.stdout.flush()
    unreachable = [account for account in accounts if not account.reachable]
    for account in unreachable:
        print(
            f"hostsim: error: account {account.id} ({account.name}) cannot be reached: "
            f"{account.reason or 'no reason given'}",
            file=sys.stderr,
        )
    return EXIT_FAILURE if unreachable else 0


def _import(runtime: Runtime, args: argparse.Namespace) -> int:
    if args.plan and Capability.PLAN not in runtime.connector_type.capabilities:
        raise UsageError(f"connector {runtime.connector_type.name!r} cannot plan")
    targets: bulk_import.Targets = {}
    try:
        parsed = _read_import_file(args.file)
        with Progress("validate", len(parsed.rows)) as progress:
            rows = bulk_import.validate(
                runtime,
                parsed,
                args.workers,
                on_row=lambda _: progress.advance(),
                account=args.account,
                targets=targets,
            )
    except bulk_import.ImportRefused as exc:
        output.write_import_problems(exc.problems, sys.stdout, args.json)
        raise
    by_account = parsed.by_account
    if args.plan:
        plans = bulk_import.planned_results(rows)
        output.write_import_results(
            plans, sys.stdout, args.json, bulk_import.PLAN_STATUSES, by_account=by_account
        )
        return 0
    with Progress("import", len(rows)) as progress:
        results = bulk_import.provision(
            runtime, rows, args.workers, on_row=lambda _: progress.advance(), targets=targets
        )
    output.write_import_results(results, sys.stdout, args.json, by_account=by_account)
    failed = bulk_import.summary(results)[bulk_import.RowStatus.FAILED]
    if failed:
        print(
            f"hostsim: error: {failed} of {len(results)} rows failed; re-run the same file to "
            "finish them (what is done already is not repeated)",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    return 0


def _read_import_file(name: str) -> bulk_import.ImportFile:
    if name == "-":
        return bulk_import.read_rows(sys.stdin)
    try:
        with open(name, encoding="utf-8-sig", newline="") as source:
            return bulk_import.read_rows(source)
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"cannot read {name}: not UTF-8 text ({exc.reason})") from exc


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _plugins(registry: ConnectorRegistry, args: argparse.Namespace) -> int:
    rows = [
        {
            "name": found.name,
            "description": found.description,
            "capabilities": sorted(cap.value for cap in found.capabilities),
        }
        for found in registry
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(
            output.table(
                ("name", "capabilities", "description"),
                ((row["name"], ",".join(row["capabilities"]), row["description"]) for row in rows),
            )
        )
    return 0


def _show(value: Any, as_json: bool) -> int:
    data = unstructure(value)
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        for key, item in data.items():
            print(f"{key}: {item}")
    return 0


#: What ``schema`` adds when the connector can disable accounts.
ACCOUNT_STATUS = (
    "fetch users rows carry enabled: false while the account is disabled (disable), true "
    "otherwise (enable)"
)


def _schema(runtime: Runtime) -> dict[str, Any]:
    data: dict[str, Any] = unstructure(runtime.schema())
    if Capability.DISABLE in runtime.connector_type.capabilities:
        data["account_status"] = ACCOUNT_STATUS
    return data


#: The commands that change one account (``_operation``), each with ``--plan`` and ``--account``.
OPERATIONS = ("create", "modify", "delete", "disable", "enable", "grant", "revoke")

#: Tables of the config file that belong to the host, not to a connector.
HOST_TABLES = (SCIM_TABLE, core_commands.CONFIG_TABLE)


def _runtime(
    registry: ConnectorRegistry, args: argparse.Namespace, whole: dict[str, Any]
) -> Runtime:
    connector_type = registry.choose(args.connector or config.chosen_connector(whole))
    args.redact.add_settings(whole)
    tables = {name: table for name, table in whole.items() if name not in HOST_TABLES}
    settings = config.connector_settings(tables, connector_type.name, {f.name for f in registry})
    return Runtime(connector_type, settings)


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from hostsim.demo import run_demo  # the embedded AWS (moto) loads only for the demo

        return run_demo(sys.stdout, connector=args.connector)
    registry = load_connectors(get_plugin_manager())
    if args.command == "plugins":
        return _plugins(registry, args)
    whole = config.read_config(args.config)
    runtime = _runtime(registry, args, whole)
    if args.command in core_commands.CORE_COMMANDS:
        table = whole.get(core_commands.CONFIG_TABLE, {})
        return core_commands.run(
            args, runtime.connector_type.name, lambda: runtime, table, args.redact
        )
    if args.command == "accounts":
        return _accounts(runtime, args)
    if args.command == "import":
        # bound per row (the file's account column; --account for an empty cell)
        return _import(runtime, args)
    if args.command in OPERATIONS:
        return _operation(runtime, args)
    runtime = runtime.for_account(args.account)
    if args.command == "fetch":
        return _fetch(runtime, args)
    if args.command == "serve":
        from hostsim import scim  # the SCIM server (pydantic, werkzeug) loads only to serve

        table = whole.get(SCIM_TABLE, {})
        return scim.serve(
            runtime, os.environ, table, host=args.host, port=args.port, run_open=args.run_open
        )
    if args.command == "test":
        return _test(runtime, args)
    if args.command == "schema":
        return _show(_schema(runtime), args.json)
    if args.command == "permissions":
        print(runtime.schema().required_permissions)
        return 0
    raise UsageError(f"unknown command {args.command!r}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # A role that cannot be assumed is reported by the connector, one line naming the account;
    # botocore's own warning of the failed credential refresh would add a traceback to stderr.
    logging.getLogger("botocore.credentials").setLevel(logging.ERROR)
    if args.debug:
        # Only our own loggers: botocore's debug log prints request headers and signatures.
        for name in ("hostsim", "idhub_aws_plugin"):
            logging.getLogger(name).setLevel(logging.DEBUG)
    args.redact = redaction.from_environment(os.environ)
    with redaction.redacted_output(args.redact):
        return guarded(args, dispatch)


if __name__ == "__main__":
    sys.exit(main())
