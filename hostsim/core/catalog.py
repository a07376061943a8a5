"""The entitlement catalog: what people can request, synced from the connector.

Every entitlement the connector fetches is requestable, by the connector's own id: from the
well-known ``entitlements`` read when its type declares it (Identity Center's ``group:NAME``
and ``assignment:PS@ACCOUNT``), else every IAM group and policy (``group:NAME``,
``policy:ARN``). An entry lists what it carries (a group's policies or assignments), so IDHub
can say why someone holds them. An administrator gives an entry an owner and an
approval chain; a sync refreshes what the application says and keeps what IDHub decided. An
entry gone from the application is kept, marked absent: requests and grants still name it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator

from attrs import frozen

from hostsim.contract.errors import ConfigurationError, InvalidInput, NotFound
from hostsim.contract.model import CommonFetchKind, EntitlementRow, FetchKind, Group, Policy
from hostsim.core import identities
from hostsim.core.settings import check_chain
from hostsim.core.state import State
from hostsim.core.store import transaction
from hostsim.runtime import Runtime


@frozen
class Entitlement:
    id: str
    kind: str
    name: str
    native_id: str = ""
    description: str = ""
    carries: tuple[str, ...] = ()
    owner: str | None = None
    #: This entry's own chain; None follows ``[idhub] default_approval``.
    approval_chain: tuple[str, ...] | None = None
    present: bool = True
    synced_at: str = ""


@frozen
class SyncSummary:
    added: tuple[str, ...]
    updated: tuple[str, ...]
    removed: tuple[str, ...]
    unchanged: int


def _from_row(row: sqlite3.Row) -> Entitlement:
    chain = row["approval_chain"]
    return Entitlement(
        id=row["id"],
        kind=row["kind"],
        name=row["name"],
        native_id=row["native_id"],
        description=row["description"],
        carries=tuple(json.loads(row["carries"])),
        owner=row["owner"],
        approval_chain=None if chain is None else tuple(json.loads(chain)),
        present=bool(row["present"]),
        synced_at=row["synced_at"],
    )


def every(state: State) -> Iterator[Entitlement]:
    for row in state.db.execute(
        "SELECT * FROM entitlements WHERE application = ? ORDER BY kind, name",
        (state.application,),
    ):
        yield _from_row(row)


def find(state: State, entitlement: str) -> Entitlement | None:
    """By id, or by ``KIND:NAME`` when exactly one entry of that kind has that name (so
    ``policy:reports-read`` finds the policy whose ARN ends in it)."""
    row = state.db.execute(
        "SELECT * FROM entitlements WHERE application = ? AND id = ?",
        (state.application, entitlement),
    ).fetchone()
    if row is not None:
        return _from_row(row)
    kind, _, name = state.native_entitlement(entitlement).partition(":")
    rows = state.db.execute(
        "SELECT * FROM entitlements WHERE application = ? AND kind = ? AND name = ?",
        (state.application, kind, name),
    ).fetchall()
    return _from_row(rows[0]) if len(rows) == 1 else None


def get(state: State, entitlement: str) -> Entitlement:
    found = find(state, entitlement)
    if found is None:
        raise NotFound(
            f"{entitlement!r} is not in the catalog (run `hostsim catalog sync`, then "
            "`hostsim catalog list`)"
        )
    return found


def _fetched(state: State, runtime: Runtime) -> list[Entitlement]:
    """The connector's requestable entitlements as catalog entries, their ids (and what each
    carries) as IDHub names them in this application (qualified in an organization): the
    well-known ``entitlements`` read when the connector type declares it, else IAM's groups
    and policies."""
    if CommonFetchKind.ENTITLEMENTS in runtime.connector_type.fetch_kinds:
        return _declared(state, runtime)
    found: list[Entitlement] = []
    for row in runtime.fetch(FetchKind.GROUPS.value):
        assert isinstance(row, Group)
        found.append(
            Entitlement(
                id=state.entitlement_id(f"group:{row.name}"),
                kind="group",
                name=row.name,
                native_id=row.id,
                description=f"IAM group {row.path}{row.name}",
                carries=tuple(state.entitlement_id(f"policy:{arn}") for arn in row.policies),
            )
        )
    for row in runtime.fetch(FetchKind.POLICIES.value):
        assert isinstance(row, Policy)
        found.append(
            Entitlement(
                id=state.entitlement_id(f"policy:{row.arn}"),
                kind="policy",
                name=row.name,
                native_id=row.id,
                description=row.description or f"{row.scope} managed policy",
            )
        )
    return found


def _declared(state: State, runtime: Runtime) -> list[Entitlement]:
    """The rows of ``fetch entitlements``, each once (a connector listing one twice is taken
    at its first row)."""
    found: dict[str, Entitlement] = {}
    for row in runtime.fetch(CommonFetchKind.ENTITLEMENTS.value):
        assert isinstance(row, EntitlementRow)
        entry = Entitlement(
            id=state.entitlement_id(row.id),
            kind=row.kind,
            name=row.name,
            native_id=row.native_id,
            description=row.description,
            carries=tuple(state.entitlement_id(carried) for carried in row.carries),
        )
        found.setdefault(entry.id, entry)
    return list(found.values())


def sync(state: State, runtime: Runtime) -> SyncSummary:
    """Fetch what can be requested and bring the catalog in line, in one transaction."""
    fetched = _fetched(state, runtime)
    now = state.now()
    added: list[str] = []
    updated: list[str] = []
    unchanged = 0
    with transaction(state.db):
        known = {entry.id: entry for entry in every(state)}
        for entry in fetched:
            old = known.get(entry.id)
            same = old is not None and (
                old.present,
                old.name,
                old.native_id,
                old.description,
                old.carries,
            ) == (True, entry.name, entry.native_id, entry.description, entry.carries)
            if same:
                unchanged += 1
                continue
            (updated if old else added).append(entry.id)
            state.db.execute(
                "INSERT INTO entitlements (id, application, kind, name, native_id, description, "
                "carries, present, synced_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?) "
                "ON CONFLICT (id) DO UPDATE SET name = excluded.name, native_id = "
                "excluded.native_id, description = excluded.description, carries = "
                "excluded.carries, present = 1, synced_at = excluded.synced_at",
                (
                    entry.id,
                    state.application,
                    entry.kind,
                    entry.name,
                    entry.native_id,
                    entry.description,
                    json.dumps(list(entry.carries)),
                    now,
                ),
            )
        seen = {entry.id for entry in fetched}
        removed = sorted(i for i, entry in known.items() if entry.present and i not in seen)
        for entitlement in removed:
            state.db.execute(
                "UPDATE entitlements SET present = 0, synced_at = ? WHERE id = ?",
                (now, entitlement),
            )
        summary = SyncSummary(tuple(added), tuple(updated), tuple(removed), unchanged)
        state.record(
            "catalog.sync",
            state.application,
            "done",
            added=summary.added,
            updated=summary.updated,
            removed=summary.removed,
            unchanged=unchanged,
        )
    return summary


def configure(
    state: State,
    entitlement: str,
    *,
    owner: str | None = None,
    approval: tuple[str, ...] | None = None,
) -> Entitlement:
    """Set an entry's owner and/or approval chain (``owner=""`` removes the owner)."""
    with transaction(state.db):
        entry = get(state, entitlement)
        new_owner = entry.owner
        if owner is not None:
            new_owner = identities.get_current(state.db, owner).email if owner else None
        chain = entry.approval_chain
        if approval is not None:
            try:
                chain = check_chain(approval, "--approval")
            except ConfigurationError as exc:
                raise InvalidInput(exc.message) from None
            for step in chain:
                if "@" in step:
                    identities.get_current(state.db, step)
        state.db.execute(
            "UPDATE entitlements SET owner = ?, approval_chain = ? WHERE id = ?",
            (new_owner, None if chain is None else json.dumps(list(chain)), entry.id),
        )
        state.record(
            "catalog.configure",
            entry.id,
            "done",
            owner={"from": entry.owner, "to": new_owner},
            approval_chain={"from": entry.approval_chain, "to": chain},
        )
    return get(state, entry.id)
