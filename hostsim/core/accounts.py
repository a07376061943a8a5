"""IDHub's record of the account each identity holds in the application.

The record keeps the account's stable native id (for IAM the UserId, which survives a rename)
and its current name, so reconciliation matches an account even after it was renamed. It also
keeps the attribute values both sides last agreed on (``synced``): the baseline that tells,
for a bi-directional attribute, which side changed since. ``missing_since`` starts the stale
clock when reconciliation no longer finds the account. ``disabled_at`` is when IDHub disabled
it for a leaver (leaver policy ``disable``): the record stays, so the deletion due
``delete_after_days`` later finds it (:mod:`.leavers`, :mod:`.reconciliation`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping

from attrs import field, frozen

from hostsim.core.state import State


@frozen
class AccountRecord:
    identity: str
    native_id: str | None
    name: str
    missing_since: str | None = None
    synced: dict[str, str | None] = field(factory=dict)
    disabled_at: str | None = None


def _from_row(row: sqlite3.Row) -> AccountRecord:
    return AccountRecord(
        identity=row["identity"],
        native_id=row["native_id"],
        name=row["name"],
        missing_since=row["missing_since"],
        synced=json.loads(row["synced"]),
        disabled_at=row["disabled_at"],
    )


def find(state: State, identity: str) -> AccountRecord | None:
    row = state.db.execute(
        "SELECT * FROM accounts WHERE application = ? AND identity = ?",
        (state.application, identity),
    ).fetchone()
    return None if row is None else _from_row(row)


def every(state: State) -> Iterator[AccountRecord]:
    for row in state.db.execute(
        "SELECT * FROM accounts WHERE application = ? ORDER BY identity", (state.application,)
    ):
        yield _from_row(row)


def link(
    state: State,
    identity: str,
    native_id: str | None,
    name: str,
    *,
    synced: Mapping[str, str | None],
    why: str,
    request: int | None = None,
) -> AccountRecord:
    """Record (or re-point) the identity's account; inside the caller's transaction."""
    now = state.now()
    state.db.execute(
        "INSERT INTO accounts (application, identity, native_id, name, synced, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (application, identity) DO UPDATE "
        "SET native_id = excluded.native_id, name = excluded.name, synced = excluded.synced, "
        "missing_since = NULL, disabled_at = NULL, updated_at = excluded.updated_at",
        (state.application, identity, native_id, name, json.dumps(dict(synced)), now, now),
    )
    state.record(
        "account.link",
        identity,
        "done",
        request=request,
        account=name,
        native_id=native_id,
        why=why,
    )
    return AccountRecord(identity, native_id, name, None, dict(synced))


def seen(state: State, record: AccountRecord, name: str, synced: Mapping[str, str | None]) -> None:
    """The account was found: its current name, the agreed values, and no stale clock."""
    state.db.execute(
        "UPDATE accounts SET name = ?, synced = ?, missing_since = NULL, updated_at = ? "
        "WHERE application = ? AND identity = ?",
        (name, json.dumps(dict(synced)), state.now(), state.application, record.identity),
    )


def mark_missing(state: State, record: AccountRecord) -> str:
    """Start the stale clock (once); returns when the account was first found missing."""
    if record.missing_since is not None:
        return record.missing_since
    since = state.now()
    state.db.execute(
        "UPDATE accounts SET missing_since = ?, updated_at = ? "
        "WHERE application = ? AND identity = ?",
        (since, since, state.application, record.identity),
    )
    return since


def mark_disabled(state: State, record: AccountRecord, why: str) -> str:
    """IDHub disabled the account (once: a re-run keeps the first time), inside the caller's
    transaction; returns since when it is disabled."""
    since = record.disabled_at or state.now()
    state.db.execute(
        "UPDATE accounts SET disabled_at = ?, updated_at = ? "
        "WHERE application = ? AND identity = ?",
        (since, state.now(), state.application, record.identity),
    )
    if record.disabled_at is None:
        state.record("account.disable", record.identity, "done", account=record.name, why=why)
    return since


def mark_enabled(state: State, record: AccountRecord, why: str) -> None:
    """The account acts again (enabled), inside the caller's transaction."""
    state.db.execute(
        "UPDATE accounts SET disabled_at = NULL, updated_at = ? "
        "WHERE application = ? AND identity = ?",
        (state.now(), state.application, record.identity),
    )
    state.record("account.enable", record.identity, "done", account=record.name, why=why)


def drop(state: State, record: AccountRecord, why: str) -> None:
    """Forget the account (it is gone from the application), inside the caller's transaction."""
    state.db.execute(
        "DELETE FROM accounts WHERE application = ? AND identity = ?",
        (state.application, record.identity),
    )
    state.record("account.drop", record.identity, "done", account=record.name, why=why)
