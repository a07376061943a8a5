"""The access IDHub granted, and why each identity holds what it holds.

A grant row is one entitlement IDHub gave one identity, with its provenance: the request that
asked for it. Grants are never deleted, only closed (``revoked_at``), so the history of who
held what stays answerable. The "why" report expands a group into what it carries (policies,
or account assignments): an entitlement held both directly and through a group appears once
per way, which is what makes a direct request survive the revocation of the group.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator

from attrs import frozen

from hostsim.core.state import State

SOURCE_REQUEST = "request"


@frozen
class Grant:
    identity: str
    entitlement: str
    source: str
    request: int | None
    granted_at: str


@frozen
class Holding:
    """One line of the "why" report: an identity holds ``entitlement`` through ``via``."""

    identity: str
    entitlement: str
    kind: str
    via: str
    request: int | None
    granted_at: str


def _from_row(row: sqlite3.Row) -> Grant:
    return Grant(
        identity=row["identity"],
        entitlement=row["entitlement"],
        source=row["source"],
        request=row["request"],
        granted_at=row["granted_at"],
    )


def held(db: sqlite3.Connection, identity: str | None = None) -> list[Grant]:
    """Open grants (of one identity, or of all), oldest first."""
    sql = "SELECT * FROM grants WHERE revoked_at IS NULL"
    params: tuple[str, ...] = ()
    if identity is not None:
        sql += " AND identity = ?"
        params = (identity,)
    return [_from_row(row) for row in db.execute(sql + " ORDER BY id", params)]


def find(db: sqlite3.Connection, identity: str, entitlement: str) -> Grant | None:
    row = db.execute(
        "SELECT * FROM grants WHERE identity = ? AND entitlement = ? AND revoked_at IS NULL",
        (identity, entitlement),
    ).fetchone()
    return None if row is None else _from_row(row)


def open_grant(state: State, identity: str, entitlement: str, request: int | None) -> bool:
    """Record access given (inside the caller's transaction); False if it was already held."""
    if find(state.db, identity, entitlement) is not None:
        return False
    state.db.execute(
        "INSERT INTO grants (identity, entitlement, source, request, granted_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (identity, entitlement, SOURCE_REQUEST, request, state.now()),
    )
    return True


def close_grant(
    state: State, identity: str, entitlement: str, reason: str, request: int | None = None
) -> bool:
    """Record access taken away; False if it was not held."""
    closed = state.db.execute(
        "UPDATE grants SET revoked_at = ?, revoke_request = ?, revoke_reason = ? "
        "WHERE identity = ? AND entitlement = ? AND revoked_at IS NULL",
        (state.now(), request, reason, identity, entitlement),
    )
    return closed.rowcount > 0


def close_all(state: State, identity: str, reason: str) -> list[str]:
    """Close every open grant of an identity whose account is gone; returns the entitlements.
    Only those of the state's application: in an organization, the account gone from one AWS
    account leaves the access held in the others."""
    entitlements = [
        grant.entitlement for grant in held(state.db, identity) if state.owns(grant.entitlement)
    ]
    for entitlement in entitlements:
        close_grant(state, identity, entitlement, reason)
    return entitlements


def _carried(db: sqlite3.Connection, group: str) -> list[str]:
    row = db.execute("SELECT carries FROM entitlements WHERE id = ?", (group,)).fetchone()
    return [] if row is None else list(json.loads(row["carries"]))


def why(db: sqlite3.Connection, identity: str | None = None) -> Iterator[Holding]:
    """Every entitlement each identity holds by IDHub's records, and through what.

    A group grant yields the group (``via direct``) and each entitlement the catalog says it
    carries (``via group:NAME``: an IAM policy, an Identity Center assignment); any other
    grant yields itself (``via direct``).
    """
    for grant in held(db, identity):
        kind = grant.entitlement.partition(":")[0]
        yield Holding(
            grant.identity, grant.entitlement, kind, "direct", grant.request, grant.granted_at
        )
        if kind == "group":
            for carried in _carried(db, grant.entitlement):
                yield Holding(
                    grant.identity,
                    carried,
                    carried.partition(":")[0],
                    grant.entitlement,
                    grant.request,
                    grant.granted_at,
                )
