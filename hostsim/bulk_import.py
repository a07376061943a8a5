"""Bulk onboarding: many joiners from one CSV file, validated as a whole, provisioned concurrently.

The file has the header ``email,first_name,last_name,display_name,grants`` (columns in any
order); ``grants`` holds entitlement ids separated by ``;`` (``group:NAME``, ``policy:ARN``). An
empty name cell means "not given".

1. **Validate and plan everything, change nothing.** Every row is structured into a
   :class:`~hostsim.contract.CreateRequest` by the runtime (the contract's converter), checked for
   what the host knows (an email in every row, no email twice, entitlement kinds the connector
   declares), then planned by the connector (``plan_many``): from **one bulk read of the
   account** (for IAM, the pages of GetAccountAuthorizationDetails), each row gets the same
   checks its create makes (input rules, guard rails, including those of the row's account
   when it exists already, the existence and grantability of the groups and policies) and
   the steps it would take. One bad row refuses the whole file: every problem is reported
   with its line number, and nothing that changes anything has been sent. A user of that
   name that is someone else's fails its row alone, without a call. A connector that cannot
   plan is checked with ``check_create`` per row (each distinct entitlement with the first
   row that asks for it) and every row is then created.
2. **Write only what needs it, concurrently.** A row whose plan changes nothing is reported
   ``unchanged`` without another call: a re-run of a file that holds costs the bulk read
   alone. The other rows are the connector's ordinary, idempotent create, on a bounded pool
   of worker threads; a row planned without an account says so (``checked_absent``), so its
   create starts with CreateUser instead of a lookup (a joiner with two grants: three
   calls). The plan is a moment old when a row is written, and the create does not trust
   it: a user made since is met by IAM's answer and resumed (the same person's) or refused
   (someone else's), one deleted since is created again. Throttling is absorbed by the
   connector's retry configuration (botocore's); a row that still fails is reported
   ``failed`` with what it had done, and the other rows go on. Re-running the same file
   finishes the job. Two imports of one file at once create each account once between them:
   the one whose CreateUser IAM refused as existing reports the row ``unchanged`` or
   ``updated``, never ``created``.

**Several target accounts.** The file may carry an ``account`` column: each row's target
account (a 12-digit AWS account id of an organization; empty: the ``--account`` given). The
rows are grouped by account and each group is checked and planned through the runtime bound
to its account (``Runtime.for_account``: one bulk read per account), every row of every
account before any change; then every row is created in its account. A row with no account
when the settings span several is refused with its line; an account out of scope refuses its
rows; for a connector of one account, an account other than the one its credentials reach is
refused. Without the column, the import is that of one account, as it always was.

``import --plan`` stops after step 1 and prints each row's plan (``would create``, ``would
update``, ``unchanged``, ``failed``) in the table and JSON of a real run.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from enum import StrEnum
from typing import Any, TypeVar

from attrs import evolve, frozen

from hostsim.contract.errors import AlreadyExists, ConnectorError, InvalidInput
from hostsim.contract.model import WOULD, Capability, OperationResult, Step, StepStatus
from hostsim.runtime import Runtime

COLUMNS = ("email", "first_name", "last_name", "display_name", "grants")
#: The optional column naming each row's target account (an AWS account id).
ACCOUNT_COLUMN = "account"
GRANT_SEPARATOR = ";"
DEFAULT_WORKERS = 8
#: The connector's clients keep 32 connections (``max_pool_connections``); more workers than
#: that would open and drop a connection for the calls beyond it. Raise both together.
MAX_WORKERS = 32

A = TypeVar("A")
R = TypeVar("R")


class RowStatus(StrEnum):
    """How one row's create ended (or, in a plan, would end)."""

    CREATED = "created"  #: the account did not exist and was created
    UPDATED = "updated"  #: it existed (same email); missing attributes or grants were written
    UNCHANGED = "unchanged"  #: it existed and already had everything: no write
    FAILED = "failed"  #: the create stopped; ``steps`` tells what it had done
    WOULD_CREATE = "would create"  #: a plan's row whose account does not exist
    WOULD_UPDATE = "would update"  #: a plan's row whose account misses attributes or grants


#: The statuses of a real import's rows, and of a plan's (``import --plan``).
RUN_STATUSES = (RowStatus.CREATED, RowStatus.UPDATED, RowStatus.UNCHANGED, RowStatus.FAILED)
PLAN_STATUSES = (
    RowStatus.WOULD_CREATE,
    RowStatus.WOULD_UPDATE,
    RowStatus.UNCHANGED,
    RowStatus.FAILED,
)


@frozen
class ImportRow:
    """One data row of the file: where it is, and the create payload it asks for."""

    line: int
    payload: dict[str, Any]
    #: What the connector's plan says the row's create would do (from the import's one bulk
    #: read), when the connector can plan; None: create it without one.
    plan: OperationResult | None = None
    #: Why the row's create would fail on its own (a user of that name is someone else's),
    #: from its plan: the row is reported failed without a call.
    failure: str | None = None
    #: The row's target account: its ``account`` cell, or once validated the ``--account``
    #: given for an empty one; None: the runtime's own (no column, no ``--account``).
    account: str | None = None

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
    #: The target account the row was created in (``ImportRow.account``); not the IAM user id
    #: that ``account_id`` is.
    target_account: str | None = None


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
    #: Whether the header had the ``account`` column (results then name each row's account).
    by_account: bool = False


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
            continue
        cells = dict(zip(names, record, strict=True))
        account = cells.get(ACCOUNT_COLUMN, "").strip() or None
        if account is not None and not is_account_id(account):
            problems.append(RowProblem(line, f"account: {account[:30]!r} is not {ACCOUNT_ID}"))
            continue
        rows.append(ImportRow(line, _payload(cells), account=account))
    return ImportFile(tuple(rows), tuple(problems), by_account=ACCOUNT_COLUMN in names)


#: What an ``account`` cell holds.
ACCOUNT_ID = "a 12-digit AWS account id"


def is_account_id(text: str) -> bool:
    """Whether ``text`` is an AWS account id (12 ASCII digits)."""
    return len(text) == 12 and text.isascii() and text.isdigit()


def _header_problems(names: list[str]) -> list[RowProblem]:
    missing = [name for name in COLUMNS if name not in names]
    unknown = [name for name in names if name not in (*COLUMNS, ACCOUNT_COLUMN)]
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


#: The runtime bound to each target account of one import, bound once and shared by its
#: validation and its provisioning (rows without an account use the runtime itself).
Targets = dict[str, Runtime]


def validate(
    runtime: Runtime,
    parsed: ImportFile,
    workers: int = DEFAULT_WORKERS,
    on_row: Callable[[ImportRow], None] | None = None,
    *,
    account: str | None = None,
    targets: Targets | None = None,
) -> tuple[ImportRow, ...]:
    """Check every row as its create would, changing nothing, and return the rows to create;
    raise :class:`ImportRefused` listing every problem of the file. A failure that is not about
    the input (no permission, throttling beyond the retries) is raised as it is: nothing was
    changed either. ``on_row`` is called (from a worker thread) as each row's check ends.

    ``account`` is the target account of the rows whose ``account`` cell is empty (the CLI's
    ``--account``); the rows are checked per target account, each group on the runtime bound
    to it (kept in ``targets`` for :func:`provision`), every group before the file is
    accepted or refused. A connector that can plan checks and plans every row from one bulk
    read per account (:func:`_planned`); the rows come back with their plans, so
    :func:`provision` writes only those that need it."""
    if Capability.CREATE not in runtime.connector_type.capabilities:
        raise InvalidInput(f"connector {runtime.connector_type.name!r} does not support create")
    targets = {} if targets is None else targets
    rows, problems = _assigned(runtime, parsed, account)
    problems = [*parsed.problems, *problems]
    groups: list[tuple[Runtime, list[ImportRow]]] = []
    for target_account, group in _by_account(rows).items():
        try:
            target = _target(runtime, targets, target_account)
        except ConnectorError as exc:
            if not exc.invalid_input:
                raise
            problems += [
                RowProblem(row.line, f"account {target_account}: {exc.message}") for row in group
            ]
            continue
        problems += _host_problems(target, group)
        groups.append((target, group))
    if Capability.PLAN in runtime.connector_type.capabilities:
        if problems:
            raise ImportRefused(problems)
        planned: list[ImportRow] = []
        for target, group in groups:
            planned += _planned(target, group, problems, on_row)
        if problems:
            raise ImportRefused(problems)
        return tuple(sorted(planned, key=lambda row: row.line))
    bad = {problem.line for problem in problems}
    for target, group in groups:
        problems += _checked(target, [row for row in group if row.line not in bad], workers, on_row)
    if problems:
        raise ImportRefused(problems)
    return rows


def _assigned(
    runtime: Runtime, parsed: ImportFile, account: str | None
) -> tuple[tuple[ImportRow, ...], list[RowProblem]]:
    """The rows with their target account (an empty cell: ``account``), and a problem for each
    row left without one when the settings span several accounts. A file without the column
    is then refused as a whole: it names no account at all."""
    rows = tuple(
        row if row.account is not None or account is None else evolve(row, account=account)
        for row in parsed.rows
    )
    unassigned = [row for row in rows if row.account is None]
    if not unassigned or not runtime.spans_accounts():
        return rows, []
    if not parsed.by_account:
        raise InvalidInput(
            "these settings span several target accounts (an organization): choose one with "
            f"--account ID, or give the file an {ACCOUNT_COLUMN} column "
            "(`hostsim accounts` lists them)"
        )
    return rows, [
        RowProblem(
            row.line,
            "no account: these settings span several target accounts; fill the row's "
            f"{ACCOUNT_COLUMN} cell or give --account ID",
        )
        for row in unassigned
    ]


def _by_account(rows: Sequence[ImportRow]) -> dict[str | None, list[ImportRow]]:
    """The rows grouped by target account, the accounts in the order the file first names
    them, each group in line order."""
    groups: dict[str | None, list[ImportRow]] = {}
    for row in rows:
        groups.setdefault(row.account, []).append(row)
    return groups


def _target(runtime: Runtime, targets: Targets, account: str | None) -> Runtime:
    """The runtime of one target account, bound (and its connector opened) once per import:
    an account out of scope is refused here with InvalidInput, having sent reads only."""
    if account is None:
        return runtime
    if account not in targets:
        bound = runtime.for_account(account)
        _ = bound.connector
        targets[account] = bound
    return targets[account]


def _checked(
    runtime: Runtime,
    rows: Sequence[ImportRow],
    workers: int,
    on_row: Callable[[ImportRow], None] | None,
) -> list[RowProblem]:
    """A connector that cannot plan: ``check_create`` per row of one account, each distinct
    entitlement with the first row that asks for it."""
    to_check = list(_each_grant_once(rows))

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
    return [problem for problem in found if problem is not None]


def _planned(
    runtime: Runtime,
    rows: Sequence[ImportRow],
    problems: list[RowProblem],
    on_row: Callable[[ImportRow], None] | None,
) -> list[ImportRow]:
    """The rows of one account planned from the connector's one bulk read (``plan_many``),
    reads only: the plan's errors are added to ``problems``, except a user of that name being
    someone else's, which fails that row alone (as its create would, changing nothing)."""
    planned: list[ImportRow] = []
    plans = runtime.plan_many(Capability.CREATE.value, [row.payload for row in rows])
    for row, plan in zip(rows, plans, strict=True):
        if isinstance(plan, ConnectorError):
            if not plan.invalid_input:
                raise plan
            if isinstance(plan, AlreadyExists):
                planned.append(evolve(row, failure=plan.message))
            else:
                problems.append(RowProblem(row.line, plan.message))
        else:
            planned.append(evolve(row, plan=plan))
        if on_row is not None:
            on_row(row)
    return planned


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
    targets: Targets | None = None,
) -> list[RowResult]:
    """Create every row, each in its target account (on the runtimes :func:`validate` bound,
    passed as ``targets``), on one pool of ``workers`` threads; the results in line order.

    ``on_row`` is called with each result as its row ends (from a worker thread), for progress.
    On an interruption (Ctrl-C) the rows not started are cancelled and the running ones finish.
    """
    targets = {} if targets is None else targets

    def create(row: ImportRow) -> RowResult:
        result = _create(_target(runtime, targets, row.account), row)
        if on_row is not None:
            on_row(result)
        return result

    settled = [_settled(row) for row in rows]
    to_write = [row for row, result in zip(rows, settled, strict=True) if result is None]
    for result in settled:
        if result is not None and on_row is not None:
            on_row(result)
    for account in dict.fromkeys(row.account for row in to_write):
        _ = _target(runtime, targets, account).connector  # opened before the threads share it
    written = _run_all(create, to_write, workers, "import")
    ended = [*written, *(result for result in settled if result is not None)]
    return sorted(ended, key=lambda result: result.line)


def _settled(row: ImportRow) -> RowResult | None:
    """The result of a row its plan settles without a call (it holds already, or would fail),
    or None for a row to write."""
    if row.failure is not None:
        return RowResult(
            row.line, row.email, RowStatus.FAILED, row.failure, target_account=row.account
        )
    if row.plan is None or row.plan.would_change:
        return None
    account = row.plan.account
    return RowResult(
        row.line,
        row.email,
        RowStatus.UNCHANGED,
        "",
        account.id if account is not None else None,
        row.plan.steps,
        row.account,
    )


def _payload_to_write(row: ImportRow) -> dict[str, Any]:
    """The create payload; a row whose plan found no account says so (``checked_absent``), so
    its create sends CreateUser first instead of reading again. An account created since the
    plan is met by IAM's answer and resumed, as without the hint."""
    if row.plan is not None and _plans_new_account(row.plan):
        return {**row.payload, "checked_absent": True}
    return row.payload


def _plans_new_account(plan: OperationResult) -> bool:
    return any(
        step.action == "create user" and step.status is StepStatus.WOULD_CREATE
        for step in plan.steps
    )


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
        result = runtime.create(_payload_to_write(row))
    except ConnectorError as exc:
        done = [step for step in exc.steps if step.status is StepStatus.DONE]
        detail = exc.message + (f" (done before it failed: {_summary(done)})" if done else "")
        return RowResult(
            row.line, row.email, RowStatus.FAILED, detail, None, exc.steps, row.account
        )
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
        row.account,
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


def planned_results(rows: Sequence[ImportRow]) -> list[RowResult]:
    """What ``import --plan`` prints: each row as its plan says it would end."""
    return [_planned_result(row) for row in rows]


def _planned_result(row: ImportRow) -> RowResult:
    if row.failure is not None or row.plan is None:
        return RowResult(
            row.line, row.email, RowStatus.FAILED, row.failure or "", target_account=row.account
        )
    plan = row.plan
    changes = [step for step in plan.steps if step.status in WOULD]
    status = RowStatus.UNCHANGED
    if _plans_new_account(plan):
        status = RowStatus.WOULD_CREATE
    elif changes:
        status = RowStatus.WOULD_UPDATE
    account = plan.account
    account_id = account.id if account is not None and account.id else None
    return RowResult(
        row.line, row.email, status, _summary(changes), account_id, plan.steps, row.account
    )


def summary(
    results: Sequence[RowResult], statuses: Sequence[RowStatus] = RUN_STATUSES
) -> dict[str, int]:
    """How many rows ended in each status (every status present, in a fixed order)."""
    counts = {status.value: 0 for status in statuses}
    for result in results:
        counts[result.status.value] += 1
    return counts
