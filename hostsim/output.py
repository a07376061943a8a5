"""How the CLI shows results and rows: readable tables for people, JSON for machines.

Rows are written as they come from the connector. ``--json`` streams a JSON array and
``--jsonl`` one object a line, so a fetch of a large account never holds it all in memory; the
human table needs every row to size its columns and so buffers them. An import is summarised
one line per row of its file, or refused with one line per problem.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TextIO

import attrs

from hostsim.bulk_import import RUN_STATUSES, RowProblem, RowResult, RowStatus, summary
from hostsim.contract.converter import unstructure
from hostsim.contract.errors import PartialRead
from hostsim.contract.model import (
    ConnectionStatus,
    FetchKind,
    FetchRow,
    OperationResult,
    Step,
    TargetAccount,
)

#: The columns of the human table per fetch kind (JSON carries every field).
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    FetchKind.USERS: (
        "email",
        "user_name",
        "first_name",
        "last_name",
        "display_name",
        "enabled",
        "id",
    ),
    FetchKind.GROUPS: ("name", "policies", "arn"),
    FetchKind.POLICIES: ("name", "scope", "attachment_count", "arn"),
    FetchKind.GROUP_ACCESS: ("email", "user_name", "group"),
    FetchKind.POLICY_ACCESS: ("email", "user_name", "policy_name", "via", "policy_arn"),
}


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(str(item).rsplit("/", 1)[-1] for item in value) or "-"
    return str(value)


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Left-aligned columns sized to their widest cell, with a header line."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(columns)]
    lines = [
        "  ".join(name.upper().ljust(width) for name, width in zip(columns, widths, strict=True))
    ]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


#: The table column of the target account a row was read in, first when rows carry one.
ACCOUNT_COLUMN = "account"
#: The row field it shows.
ACCOUNT_FIELD = "account_id"


class _UntilPartial:
    """The rows of a read, up to a :class:`PartialRead` at their end, which is kept (in
    ``partial``) instead of raised, so that every row read is written in full before it is."""

    def __init__(self, rows: Iterable[Any]) -> None:
        self._rows = rows
        self.partial: PartialRead | None = None

    def __iter__(self) -> Iterator[Any]:
        try:
            yield from self._rows
        except PartialRead as exc:
            self.partial = exc


def write_rows(kind: str, rows: Iterable[Any], out: TextIO, fmt: str) -> int:
    """Write fetch rows in ``fmt`` (table, json, jsonl); returns how many were written.

    ``kind`` is any read the connector declared: one without columns of its own here is
    shown with every field of its rows, in their declared order; rows read in a target
    account (``account_id`` set: a connector spanning an organization, or bound to one of its
    accounts) get an ACCOUNT column first. A :class:`PartialRead` ending the rows (some
    accounts could not be read) is raised once every row before it is written, the JSON
    array closed: what was read is complete and valid."""
    read = _UntilPartial(rows)
    count = _write_rows(kind, read, out, fmt)
    if read.partial is not None:
        raise read.partial
    return count


def _write_rows(kind: str, rows: Iterable[Any], out: TextIO, fmt: str) -> int:
    count = 0
    if fmt == "table":
        listed = list(rows)
        data = [unstructure(row) for row in listed]
        columns = _with_account(TABLE_COLUMNS.get(kind) or _fields_of(listed), listed)
        cells = (
            [item.get(ACCOUNT_FIELD) if c == ACCOUNT_COLUMN else item[c] for c in columns]
            for item in data
        )
        out.write(table(columns, cells) + "\n")
        out.write(f"({len(data)} {kind})\n")
        return len(data)
    if fmt == "json":
        out.write("[")
    for row in rows:
        text = json.dumps(unstructure(row), sort_keys=True)
        if fmt == "json":
            out.write(("\n  " if count == 0 else ",\n  ") + text)
        else:
            out.write(text + "\n")
        count += 1
    if fmt == "json":
        out.write("\n]\n" if count else "]\n")
    return count


def _with_account(columns: Sequence[str], rows: Sequence[Any]) -> tuple[str, ...]:
    """The table's columns, led by ACCOUNT when the rows carry the target account they were
    read in (the contract's rows' ``account_id``; a connector's own row type may have a field
    of that name meaning something else, like an Identity Center assignment's account)."""
    if not any(isinstance(row, FetchRow) and row.account_id for row in rows):
        return tuple(columns)
    return (ACCOUNT_COLUMN, *(column for column in columns if column != ACCOUNT_FIELD))


def _fields_of(rows: Sequence[Any]) -> tuple[str, ...]:
    """The columns of a declared row type the table knows nothing of: its attrs fields."""
    return tuple(field.name for field in attrs.fields(type(rows[0]))) if rows else ()


def steps_table(steps: Sequence[Step]) -> str:
    return table(
        ("status", "step", "target", "detail"),
        ((step.status.value, step.action, step.target, step.detail) for step in steps),
    )


def result_data(result: OperationResult) -> dict[str, Any]:
    """A result as JSON-able data, with its ``changed`` verdict."""
    data: dict[str, Any] = unstructure(result)
    data["changed"] = result.changed
    return data


def write_result(
    result: OperationResult, out: TextIO, as_json: bool, planned: bool = False
) -> None:
    """A result, or with ``planned`` a plan: the same table and JSON, the plan's statuses
    (``would create``...), and JSON's ``plan`` and ``would_change`` besides ``changed``."""
    if as_json:
        data = result_data(result)
        if planned:
            data.update(plan=True, would_change=result.would_change)
        out.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        return
    account = result.account
    who = f" {account.name} (id {account.id or 'not yet known'})" if account else ""
    verdict = "changed" if result.changed else "unchanged"
    if planned:
        verdict = "plan, nothing changed: " + ("would change" if result.would_change else verdict)
    out.write(f"{result.operation}{who}: {verdict}\n")
    out.write(steps_table(result.steps) + "\n")


def write_failure(
    operation: str, error_message: str, steps: Sequence[Step], out: TextIO, as_json: bool
) -> None:
    """What a failed operation had done (and not done), for the caller to act on."""
    if as_json:
        payload = {
            "operation": operation,
            "error": error_message,
            "steps": unstructure(list(steps)),
        }
        out.write(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    elif steps:
        out.write(f"{operation} stopped partway; what was done and what was not:\n")
        out.write(steps_table(steps) + "\n")


def write_import_results(
    results: Sequence[RowResult],
    out: TextIO,
    as_json: bool,
    statuses: Sequence[RowStatus] = RUN_STATUSES,
    by_account: bool = False,
) -> None:
    """One line per row (line, email, status, detail; with ``by_account``, a file with an
    ``account`` column, the row's target account after its line), then the count of each
    status (of a run's, or with ``PLAN_STATUSES`` a plan's)."""
    counts = summary(results, statuses)
    if as_json:
        rows = [_import_row_data(result, by_account) for result in results]
        out.write(json.dumps({"rows": rows, "summary": counts}, indent=2, sort_keys=True) + "\n")
        return
    if results and by_account:
        out.write(
            table(
                ("line", ACCOUNT_COLUMN, "email", "status", "detail"),
                (
                    (r.line, r.target_account, r.email, r.status.value, r.detail or "")
                    for r in results
                ),
            )
            + "\n"
        )
    elif results:
        out.write(
            table(
                ("line", "email", "status", "detail"),
                ((r.line, r.email, r.status.value, r.detail or "") for r in results),
            )
            + "\n"
        )
    totals = ", ".join(f"{count} {status}" for status, count in counts.items())
    out.write(f"({len(results)} rows: {totals})\n")


def _import_row_data(result: RowResult, by_account: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "line": result.line,
        "email": result.email,
        "status": result.status.value,
        "detail": result.detail,
        "id": result.account_id,
        "steps": unstructure(list(result.steps)),
    }
    if by_account:
        data[ACCOUNT_COLUMN] = result.target_account
    return data


def write_import_problems(problems: Sequence[RowProblem], out: TextIO, as_json: bool) -> None:
    """Every reason a file was refused, by line."""
    if as_json:
        payload = {
            "refused": True,
            "problems": [{"line": p.line, "problem": p.message} for p in problems],
        }
        out.write(json.dumps(payload, indent=2, sort_keys=True) + "\n")
        return
    out.write("import refused, nothing was changed; fix these lines and run it again:\n")
    out.write(table(("line", "problem"), ((p.line, p.message) for p in problems)) + "\n")


# --- target accounts ----------------------------------------------------------------------


def account_data(account: TargetAccount) -> dict[str, Any]:
    """A target account as JSON-able data (``hostsim accounts --json``, ``test --json``)."""
    data: dict[str, Any] = unstructure(account)
    return data


def accounts_table(accounts: Sequence[TargetAccount]) -> str:
    """The target accounts, one a line: id, name (the management account marked), whether it
    can be reached, how, and why not."""
    return table(
        ("id", "name", "reachable", "via", "reason"),
        (
            (
                account.id,
                f"{account.name} (management)" if account.management else account.name,
                "yes" if account.reachable else "no",
                account.via or "-",
                account.reason or "-",
            )
            for account in accounts
        ),
    )


def write_status(status: ConnectionStatus, out: TextIO, as_json: bool) -> None:
    """``hostsim test``: one ``key: value`` line per field, and, for a connector reaching
    several target accounts, each account under ``accounts:``; JSON carries every field."""
    data = unstructure(status)
    if as_json:
        out.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        return
    for key, item in data.items():
        if key != "accounts":
            out.write(f"{key}: {item}\n")
    if status.accounts:
        out.write(f"accounts: {len(status.accounts)}\n")
        for line in accounts_table(status.accounts).splitlines():
            out.write(f"  {line}\n")
