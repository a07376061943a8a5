"""The ``hostsim`` command line's grammar: every command, its arguments and options.

Kept apart from :mod:`hostsim.cli` (which dispatches) so that the demo can parse the very same
command lines and hand them to the very same functions, without going through ``cli.main``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hostsim import bulk_import
from hostsim.argtypes import PORT
from hostsim.contract import FetchKind
from hostsim.core import commands as core_commands


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


def _account_option(parser: argparse.ArgumentParser) -> None:
    """``--account ID``: run the command on one target account of the connector (an AWS
    account of an organization); required for a change when the settings span several."""
    parser.add_argument(
        "--account",
        type=core_commands.account_id,  # the one check of an id, IDHub's commands' too
        metavar="ID",
        help="the target account (12-digit AWS account id) to act in; needed for a change "
        "when the settings span an organization (`hostsim accounts` lists them)",
    )


def _common_options(suppress: bool) -> argparse.ArgumentParser:
    """Options accepted before or after the command (``hostsim --config f fetch users`` and
    ``hostsim fetch users --config f`` both work)."""
    default: Any = argparse.SUPPRESS if suppress else None
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--connector", default=default, help="connector type (default: aws-iam)")
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


def _plan_option(parser: argparse.ArgumentParser) -> None:
    """``--json``, ``--plan`` and ``--account``, the options of every command that changes an
    account."""
    _account_option(parser)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--plan",
        action="store_true",
        help="show what it would do (reads only, nothing is changed); exit 2 for input the "
        "real run would refuse",
    )


def _connection_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """The commands about the connection itself: test, schema, permissions, accounts."""
    sub = command("test", "check the connection and credentials (changes nothing)")
    sub.add_argument("--json", action="store_true")
    _account_option(sub)
    sub = command("schema", "show the account attributes and entitlement kinds on offer")
    sub.add_argument("--json", action="store_true")
    _account_option(sub)
    sub = command(
        "permissions", "print the permission policy the connector needs, for these settings"
    )
    _account_option(sub)
    sub = command(
        "accounts",
        "list the target accounts in scope (an organization's AWS accounts) and whether each "
        "can be reached now; exit 1 when some cannot",
    )
    sub.add_argument("--json", action="store_true")


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
    _connection_commands(command)

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
    _plan_option(sub)

    sub = command("modify", "change an account's attributes or email (a mover)")
    sub.add_argument("email")
    sub.add_argument("--email", dest="new_email", metavar="NEW", help="new email (renames)")
    _attribute_options(sub)
    _plan_option(sub)

    sub = command("delete", "delete an account and all IAM requires removed first (a leaver)")
    sub.add_argument("email")
    _plan_option(sub)

    sub = command(
        "disable",
        "stop an account acting at once (deny all, credentials inactive, console password "
        "removed), losing nothing",
    )
    sub.add_argument("email")
    _plan_option(sub)

    sub = command("enable", "let a disabled account act again: reactivate what disable stopped")
    sub.add_argument("email")
    _plan_option(sub)

    for name, verb in (("grant", "grant"), ("revoke", "revoke")):
        sub = command(name, f"{verb} one entitlement (group:NAME or policy:ARN)")
        sub.add_argument("email")
        sub.add_argument("entitlement", metavar="ENT")
        _plan_option(sub)

    sub = command(
        "import",
        "create many joiners from a CSV file with the header "
        f"{','.join(bulk_import.COLUMNS)} (grants separated by ';') and optionally "
        f"{bulk_import.ACCOUNT_COLUMN} (the row's target account; empty: --account); every row "
        "is validated before anything changes, and re-running the same file changes nothing",
    )
    sub.add_argument("file", metavar="FILE", help="the CSV file ('-' for standard input)")
    sub.add_argument(
        "--workers",
        type=_workers,
        default=bulk_import.DEFAULT_WORKERS,
        metavar="N",
        help=f"rows provisioned at once (default {bulk_import.DEFAULT_WORKERS})",
    )
    _plan_option(sub)

    sub = command("serve", "run the connector application: the SCIM 2.0 API at /scim/v2")
    sub.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sub.add_argument("--port", type=PORT, default=8080, help="port (default 8080; 0 picks one)")
    sub.add_argument(
        "--open",
        dest="run_open",
        action="store_true",
        help="serve without authentication (loopback addresses only; development)",
    )
    _account_option(sub)

    core_commands.add_commands(command, common, _key_value)

    sub = command(
        "fetch",
        "reconciliation read: a kind the connector declares (aws-iam: "
        + ", ".join(k.value for k in FetchKind)
        + ")",
    )
    # the connector's own kinds: checked by the runtime once the connector is chosen
    sub.add_argument("kind", metavar="KIND")
    formats = sub.add_mutually_exclusive_group()
    formats.add_argument("--json", action="store_true", help="a JSON array (streamed)")
    formats.add_argument("--jsonl", action="store_true", help="one JSON object per line")
    _account_option(sub)
    return parser
