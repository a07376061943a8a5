"""Bulk onboarding: many joiners from one CSV file, validated as a whole, provisioned concurrently.

The file has the header ``email,first_name,last_name,display_name,grants`` (columns in any
order); ``grants`` holds entitlement ids separated by ``;`` (``group:NAME``, ``policy:ARN``). An
empty name cell means "not given".

1. **Validate everything, change nothing.** Every row is structured into a
   :class:`~hostsim.contract.CreateRequest` by the runtime (the contract's converter), checked for
   what the host knows (an email in every row, no email twice, entitlement kinds the connector
   declares), then by the connector's own checks when it offers them (``check_create``: its
   input rules, its guard rails, including those of each row's account when it exists
   already (protected, outside the connector's path), and the existence and grantability of
   the groups and policies, reads only). Each distinct entitlement is checked once per
   import, with the first row that asks for it. One bad row
   refuses the whole file: every problem is reported with its line number, and nothing that
   changes anything has been sent.
2. **Provision concurrently.** Each row is the connector's ordinary create, on a bounded pool of
   worker threads. Creates are idempotent, so a row whose account already exists with the same
   email resumes: it writes only what differs, and an account that already holds everything
   costs reads only; a user of that name who is someone else's fails that row, changing
   nothing. Throttling is absorbed by the connector's retry configuration (botocore's);
   a row that still fails is reported ``failed`` with what it had done, and the other rows go on.
   Re-running the same file finishes the job. Two imports of one file at once create each
   account once between them: the one whose CreateUser IAM refused as existing reports the
   row ``unchanged`` or ``updated``, never ``created``.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from enum import StrEnum
from typing import Any, TypeVar

from attrs import frozen

from hostsim.contract.errors import ConnectorError, InvalidInput
from hostsim.contract.model import Capability, OperationResult, Step, StepStatus
from hostsim.runtime import Runtime

COLUMNS = ("email", "first_name", "last_name", "display_name", "grants")
GRANT_SEPARATOR = ";"
DEFAULT_WORKERS = 8
#: The connector's clients keep 32 connections (``max_pool_connections``); more workers than
#: that would open and drop a connection for the calls beyond it. Raise both together.
MAX_WORKERS = 32

A = TypeVar("A")
R = TypeVar("R")


class RowStatus(StrEnum):
    """How one row's create ended."""

    CREATED = "created"  #: the account did not exist and was created
    UPDATED = "updated"  #: it existed (same email); missing attributes or grants were written
    UNCHANGED = "unchanged"  #: it existed and already had everything: reads only
    FAILED = "failed"  #: the create stopped; ``steps`` tells what it had done


@frozen
class ImportRow:
    """One data row of the file: where it is, and the create payload it asks for."""

    line: int
    payload: dict[str, Any]

    @property
    def email(self) -> str:
        return str(self.payload["email"])

    @property
    def grants(self) -> list[str]:
        return list(self.payload.get("grants", []))


@frozen
class RowProblem:
    """Why a row (or the header, line 1) was refused."""

    line: int
    message: str


@frozen
class RowResult:
    """What the create of one row did."""

    line: int
    email: str
    status: RowStatus
    detail: str = ""
    account_id: str | None = None
    steps: tuple[Step, ...] = ()


class ImportRefused(InvalidInput):
    """The file (or some rows of it) is invalid; nothing was changed."""

    def __init__(self, problems: Sequence[RowProblem]) -> None:
        ordered = sorted(problems, key=lambda problem: problem.line)
        first = ordered[0]
        more = len(ordered) - 1
        others = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        super().__init__(
            f"import refused, nothing was changed: line {first.line}: {first.message}{others}"
        )
        self.problems: tuple[RowProblem, ...] = tuple(ordered)


# --- reading ------------------------------------------------------------------------------


@frozen
class ImportFile:
    """A parsed file: its well-formed rows, and what was wrong with the others."""

    rows: tuple[ImportRow, ...]
    problems: tuple[RowProblem, ...] = ()


def read_rows(lines: Iterable[str]) -> ImportFile:
    """Parse the CSV; a bad header raises :class:`ImportRefused` at once, a malformed row is
    kept as a problem for :func:`validate` to report along with every other."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is None:
        raise ImportRefused([RowProblem(1, f"empty file: expected the header {','.join(COLUMNS)}")])
    names = [name.strip().lower() for name in header]
    header_problems = _header_problems(names)
    if header_problems:
        raise ImportRefused(header_problems)
    rows: list[ImportRow] = []
    problems: list[RowProblem] = []
    start = reader.line_num + 1
    for record in reader:
        line, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in record):
            continue  # blank line
        if len(record) != len(names):
            problems.append(RowProblem(line, f"expected {len(names)} fields, found {len(record)}"))
        else:
            rows.append(ImportRow(line, _payload(dict(zip(names, record, strict=True)))))
    return ImportFile(tuple(rows), tuple(problems))


def _header_problems(names: list[str]) -> list[RowProblem]:
    missing = [name for name in COLUMNS if name not in names]
    unknown = [name for name in names if name not in COLUMNS]
    twice = sorted({name for name in names if names.count(name) > 1})
    problems = []
    if missing:
        problems.append(f"missing column {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column {', '.join(repr(name) for name in unknown)}")
    if twice:
        problems.append(f"column {', '.join(twice)} given twice")
    if not problems:
        return []
    return [RowProblem(1, f"header: {'; '.join(problems)} (expected {','.join(COLUMNS)})")]


def _payload(cells: dict[str, str]) -> dict[str, Any]:
    """A create payload from one row: cells trimmed, empty names left out, grants split."""
    payload: dict[str, Any] = {"email": cells["email"].strip()}
    for name in ("first_name", "last_name", "display_name"):
        value = cells[name].strip()
        if value:
            payload[name] = value
    grants = [text.strip() for text in cells["grants"].split(GRANT_SEPARATOR)]
    unique = list(dict.fromkeys(text for text in grants if text))
    if unique:
        payload["grants"] = unique
    return payload


# --- validating ---------------------------------------------------------------------------


def validate(
    runtime: Runtime,
    parsed: ImportFile,
    workers: int = DEFAULT_WORKERS,
    on_row: Callable[[ImportRow], None] | None = None,
) -> tuple[ImportRow, ...]:
    """Check every row as its create would, changing nothing, and return the rows to create;
    raise :class:`ImportRefused` listing every problem of the file. A failure that is not about
    the input (no permission, throttling beyond the retries) is raised as it is: nothing was
    changed either. ``on_row`` is called (from a worker thread) as each row's check ends."""
    if Capability.CREATE not in runtime.connector_type.capabilities:
        raise InvalidInput(f"connector {runtime.connector_type.name!r} does not support create")
    rows = parsed.rows
    problems = [*parsed.problems, *_host_problems(runtime, rows)]
    bad = {problem.line for problem in problems}
    to_check = list(_each_grant_once([row for row in rows if row.line not in bad]))

    def check(row: ImportRow) -> RowProblem | None:
        try:
            runtime.check_create(row.payload)
        except ConnectorError as exc:
            if not exc.invalid_input:
                raise
            return RowProblem(row.line, exc.message)
        finally:
            if on_row is not None:
                on_row(row)
        return None

    _ = runtime.connector  # opened once, before the threads share it
    found = _run_all(check, to_check, workers, "import-check")
    problems += [problem for problem in found if problem is not None]
    if problems:
        raise ImportRefused(problems)
    return rows


def _host_problems(runtime: Runtime, rows: Sequence[ImportRow]) -> list[RowProblem]:
    """What the host itself can tell: an email in every row, no account twice in one file,
    and entitlement kinds the connector declares."""
    kinds = _entitlement_kinds(runtime)
    first_line: dict[str, int] = {}
    problems: list[RowProblem] = []
    for row in rows:
        found = _email_problems(row.email)
        key = row.email.casefold()
        if not found and key in first_line:
            found.append(f"{row.email}: the same email as line {first_line[key]}")
        first_line.setdefault(key, row.line)
        if kinds is not None:
            found += [
                f"entitlement {grant!r}: expected {' or '.join(sorted(kinds.values()))}"
                for grant in row.grants
                if grant.partition(":")[0] not in kinds or not grant.partition(":")[2]
            ]
        problems += [RowProblem(row.line, message) for message in found]
    return problems


def _email_problems(email: str) -> list[str]:
    """The host's identifier check, deliberately loose (the connector's rules are stricter)."""
    local, at, domain = email.partition("@")
    if not email:
        return ["email is required"]
    if not at or not local or not domain or any(char.isspace() for char in email):
        return [f"email: {email!r} is not an email address"]
    return []


def _entitlement_kinds(runtime: Runtime) -> dict[str, str] | None:
    """The entitlement kinds the connector declares (name -> id format), if it has a schema."""
    if Capability.SCHEMA not in runtime.connector_type.capabilities:
        return None
    schema = runtime.schema()
    return {kind.name: kind.id_format for kind in schema.entitlement_kinds}


def _each_grant_once(rows: Sequence[ImportRow]) -> Iterator[ImportRow]:
    """The rows to check, each carrying only the grants no earlier row carries: every distinct
    group or policy is looked up once per import, with the first row that asks for it."""
    seen: set[str] = set()
    for row in rows:
        own = [grant for grant in row.grants if grant not in seen]
        seen.update(own)
        payload = {key: value for key, value in row.payload.items() if key != "grants"}
        if own:
            payload["grants"] = own
        yield ImportRow(row.line, payload)


# --- provisioning -------------------------------------------------------------------------


def provision(
    runtime: Runtime,
    rows: Sequence[ImportRow],
    workers: int = DEFAULT_WORKERS,
    on_row: Callable[[RowResult], None] | None = None,
) -> list[RowResult]:
    """Create every row on a pool of ``workers`` threads; the results in line order.

    ``on_row`` is called with each result as its row ends (from a worker thread), for progress.
    On an interruption (Ctrl-C) the rows not started are cancelled and the running ones finish.
    """

    def create(row: ImportRow) -> RowResult:
        result = _create(runtime, row)
        if on_row is not None:
            on_row(result)
        return result

    _ = runtime.connector  # opened once, before the threads share it
    return sorted(_run_all(create, rows, workers, "import"), key=lambda result: result.line)


def _run_all(work: Callable[[A], R], items: Sequence[A], workers: int, name: str) -> list[R]:
    """``work`` on every item, ``workers`` at a time; the results in the order they ended. An
    error (or Ctrl-C) cancels the items not started, lets the running ones end, and propagates."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
    try:
        return [future.result() for future in as_completed([pool.submit(work, i) for i in items])]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _create(runtime: Runtime, row: ImportRow) -> RowResult:
    try:
        result = runtime.create(row.payload)
    except ConnectorError as exc:
        done = [step for step in exc.steps if step.status is StepStatus.DONE]
        detail = exc.message + (f" (done before it failed: {_summary(done)})" if done else "")
        return RowResult(row.line, row.email, RowStatus.FAILED, detail, None, exc.steps)
    status = _status(result)
    done = [step for step in result.steps if step.status is StepStatus.DONE]
    account = result.account
    return RowResult(
        row.line,
        row.email,
        status,
        _summary(done),
        account.id if account is not None else None,
        result.steps,
    )


def _status(result: OperationResult) -> RowStatus:
    done = [step for step in result.steps if step.status is StepStatus.DONE]
    if not done:
        return RowStatus.UNCHANGED
    if any(step.action.startswith("create") for step in done):
        return RowStatus.CREATED
    return RowStatus.UPDATED


def _summary(steps: Sequence[Step]) -> str:
    return "; ".join(f"{step.action} {step.target}".strip() for step in steps)


# --- the whole import ---------------------------------------------------------------------


def summary(results: Sequence[RowResult]) -> dict[str, int]:
    """How many rows ended in each status (every status present, in a fixed order)."""
    counts = {status.value: 0 for status in RowStatus}
    for result in results:
        counts[result.status.value] += 1
    return counts
