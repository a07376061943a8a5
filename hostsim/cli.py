"""The ``hostsim`` command line: the connector application's operator interface.

Each command turns its arguments into a contract payload and hands it to the
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
from pathlib import Path
from typing import Any

from hostsim import bulk_import, config, output, redaction
from hostsim.converter import unstructure
from hostsim.core import commands as core_commands
from hostsim.errors import ConnectorError, PluginError
from hostsim.model import FetchKind, StepStatus
from hostsim.plugins import get_plugin_manager, load_connectors
from hostsim.progress import Progress, counted
from hostsim.registry import ConnectorRegistry
from hostsim.runtime import Runtime

EXIT_FAILURE = 1
EXIT_INVALID = 2
#: The config file's table for `serve` (hostsim.scim.CONFIG_TABLE), not a connector's.
SCIM_TABLE = "scim"

log = logging.getLogger("hostsim")


class UsageError(Exception):
    """A command line the parser accepted but that makes no sense (exit 2)."""


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _workers(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= bulk_import.MAX_WORKERS:
        raise argparse.ArgumentTypeError(
            f"expected a number of workers from 1 to {bulk_import.MAX_WORKERS}, got {text!r}"
        )
    return int(text)


def _common_options(suppress: bool) -> argparse.ArgumentParser:
    """Options accepted before or after the command (``hostsim --config f fetch users`` and
    ``hostsim fetch users --config f`` both work)."""
    default: Any = argparse.SUPPRESS if suppress else None
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--connector", default=default, help="connector type (default: the only one)"
    )
    common.add_argument(
        "--config", type=Path, default=default, help="TOML file of connector settings"
    )
    core_commands.core_options(common, suppress)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="show tracebacks and debug logs",
    )
    return common


def _attribute_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--first-name")
    parser.add_argument("--last-name")
    parser.add_argument("--display-name")
    parser.add_argument(
        "--attr",
        action="append",
        type=_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="an extra attribute (repeatable); an empty VALUE clears it on modify",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hostsim",
        description="IDHub host simulator: runs connector plugins as IDHub would.",
        parents=[_common_options(suppress=False)],
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = [_common_options(suppress=True)]

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, description=help_text, parents=common)

    sub = command("plugins", "list the connectors found through the 'idhub' entry point")
    sub.add_argument("--json", action="store_true")
    command("demo", "run the joiner-mover-leaver lifecycle on an embedded AWS (no credentials)")
    sub = command("test", "check the connection and credentials (changes nothing)")
    sub.add_argument("--json", action="store_true")
    sub = command("schema", "show the account attributes and entitlement kinds on offer")
    sub.add_argument("--json", action="store_true")
    command("permissions", "print the permission policy the connector needs, for these settings")

    sub = command("create", "create an account (a joiner), optionally with initial grants")
    sub.add_argument("email")
    _attribute_options(sub)
    sub.add_argument(
        "--grant",
        action="append",
        default=[],
        metavar="ENT",
        help="group:NAME or policy:ARN to grant at once (repeatable)",
    )
    sub.add_argument("--json", action="store_true")

    sub = command("modify", "change an account's attributes or email (a mover)")
    sub.add_argument("email")
    sub.add_argument("--email", dest="new_email", metavar="NEW", help="new email (renames)")
    _attribute_options(sub)
    sub.add_argument("--json", action="store_true")

    sub = command("delete", "delete an account and all IAM requires removed first (a leaver)")
    sub.add_argument("email")
    sub.add_argument("--json", action="store_true")

    for name, verb in (("grant", "grant"), ("revoke", "revoke")):
        sub = command(name, f"{verb} one entitlement (group:NAME or policy:ARN)")
        sub.add_argument("email")
        sub.add_argument("entitlement", metavar="ENT")
        sub.add_argument("--json", action="store_true")

    sub = command(
        "import",
        "create many joiners from a CSV file with the header "
        f"{','.join(bulk_import.COLUMNS)} (grants separated by ';'); every row is validated "
        "before anything changes, and re-running the same file changes nothing",
    )
    sub.add_argument("file", metavar="FILE", help="the CSV file ('-' for standard input)")
    sub.add_argument(
        "--workers",
        type=_workers,
        default=bulk_import.DEFAULT_WORKERS,
        metavar="N",
        help=f"rows provisioned at once (default {bulk_import.DEFAULT_WORKERS})",
    )
    sub.add_argument("--json", action="store_true")

    sub = command("serve", "run the connector application: the SCIM 2.0 API at /scim/v2")
    sub.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sub.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks one)")
    sub.add_argument(
        "--open",
        dest="run_open",
        action="store_true",
        help="serve without authentication (loopback addresses only; development)",
    )

    core_commands.add_commands(command, common, _key_value)

    sub = command("fetch", "reconciliation read: " + ", ".join(k.value for k in FetchKind))
    sub.add_argument("kind", choices=[k.value for k in FetchKind])
    formats = sub.add_mutually_exclusive_group()
    formats.add_argument("--json", action="store_true", help="a JSON array (streamed)")
    formats.add_argument("--jsonl", action="store_true", help="one JSON object per line")
    return parser


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
    run: Callable[[dict[str, Any]], Any] = getattr(runtime, args.command)
    try:
        result = run(payload)
    except ConnectorError as exc:
        output.write_failure(args.command, exc.message, exc.steps, sys.stdout, args.json)
        raise
    output.write_result(result, sys.stdout, args.json)
    return 0


def _fetch(runtime: Runtime, args: argparse.Namespace) -> int:
    fmt = "json" if args.json else "jsonl" if args.jsonl else "table"
    # On a terminal, a progress line would tangle with rows streamed to that same terminal.
    streamed_to_terminal = fmt != "table" and _is_terminal(sys.stdout)
    progress = Progress(f"fetch {args.kind}", enabled=False if streamed_to_terminal else None)
    rows = counted(runtime.fetch(args.kind), progress)
    output.write_rows(FetchKind(args.kind), rows, sys.stdout, fmt)
    return 0


def _import(runtime: Runtime, args: argparse.Namespace) -> int:
    try:
        parsed = _read_import_file(args.file)
        with Progress("validate", len(parsed.rows)) as progress:
            rows = bulk_import.validate(
                runtime, parsed, args.workers, on_row=lambda _: progress.advance()
            )
    except bulk_import.ImportRefused as exc:
        output.write_import_problems(exc.problems, sys.stdout, args.json)
        raise
    with Progress("import", len(rows)) as progress:
        results = bulk_import.provision(
            runtime, rows, args.workers, on_row=lambda _: progress.advance()
        )
    output.write_import_results(results, sys.stdout, args.json)
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


#: Tables of the config file that belong to the host, not to a connector.
HOST_TABLES = (SCIM_TABLE, core_commands.CONFIG_TABLE)


def _runtime(
    registry: ConnectorRegistry, args: argparse.Namespace, whole: dict[str, Any]
) -> Runtime:
    connector_type = registry.choose(args.connector)
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
    if args.command == "fetch":
        return _fetch(runtime, args)
    if args.command == "import":
        return _import(runtime, args)
    if args.command == "serve":
        from hostsim import scim  # the SCIM server (pydantic, werkzeug) loads only to serve

        table = whole.get(SCIM_TABLE, {})
        return scim.serve(
            runtime, os.environ, table, host=args.host, port=args.port, run_open=args.run_open
        )
    if args.command == "test":
        return _show(runtime.test(), args.json)
    if args.command == "schema":
        return _show(runtime.schema(), args.json)
    if args.command == "permissions":
        print(runtime.schema().required_permissions)
        return 0
    return _operation(runtime, args)


def _exit_code(error: ConnectorError) -> int:
    changed = any(step.status is StepStatus.DONE for step in error.steps)
    return EXIT_INVALID if error.invalid_input and not changed else EXIT_FAILURE


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.debug:
        # Only our own loggers: botocore's debug log prints request headers and signatures.
        for name in ("hostsim", "idhub_aws_plugin"):
            logging.getLogger(name).setLevel(logging.DEBUG)
    args.redact = redaction.from_environment(os.environ)
    with redaction.redacted_output(args.redact):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """Dispatch, turning every failure into one line on stderr and an exit code."""
    try:
        with config.located_errors(args.config):
            return dispatch(args)
    except ConnectorError as exc:
        if args.debug:
            log.exception("%s failed", args.command)
        print(f"hostsim: error: {exc.message}", file=sys.stderr)
        return _exit_code(exc)
    except (UsageError, PluginError) as exc:
        if args.debug:
            log.exception("%s failed", args.command)
        print(f"hostsim: error: {exc}", file=sys.stderr)
        return EXIT_INVALID if isinstance(exc, UsageError) else EXIT_FAILURE
    except BrokenPipeError:
        return EXIT_FAILURE
    except Exception as exc:
        if args.debug:
            raise
        print(
            f"hostsim: internal error: {type(exc).__name__}: {exc} (rerun with --debug)",
            file=sys.stderr,
        )
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
