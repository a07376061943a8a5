"""Leavers: a person leaves, their account is deleted and IDHub closes everything they held.

A leaver always wins, whatever is in flight for the person in another process:

1. The leave is recorded first (``left_at``, audited as ``identity.leaving``): from then on
   nothing may give the person an account or access. Requests for them can no longer be
   submitted, approved or retried, and work already in flight (a fulfilment, a reconciliation
   remedy) reads it after acting and undoes itself (:mod:`.fulfilment`).
2. The leaver takes the person's lock (:mod:`.claims`), which that work holds while it acts,
   so it waits for work in progress to finish (saying so) and never deletes beside a create.
3. Holding it, the account goes through the connector's delete (which removes everything IAM
   requires removed before a user can be deleted), asked by email whether or not IDHub has a
   record of one: a fulfilment or remedy interrupted after its create never linked it.
4. Then IDHub records the rest in one transaction: the account record is dropped, every open
   grant closed, every open request withdrawn.

A failure (or a leaver killed while it waits) leaves the person marked as left, so nothing can
give them anything meanwhile; running the command again finishes the job (the connector's
delete is idempotent), and reconciliation reports a live account of a person who left. The
identity's history stays.
"""

from __future__ import annotations

from collections.abc import Callable

from attrs import frozen

from hostsim.contract.errors import ConnectorError
from hostsim.contract.model import OperationResult
from hostsim.core import accounts, grants, identities
from hostsim.core.audit import steps_data
from hostsim.core.claims import acting_for
from hostsim.core.identities import Identity
from hostsim.core.requests import LEFT_REASON, open_requests
from hostsim.core.state import State
from hostsim.core.store import transaction
from hostsim.runtime import Runtime

#: Why the leaver closes grants and withdraws requests.
REASON = LEFT_REASON


@frozen
class Leave:
    """What a leave did: the connector's delete, whether it had to wait for work in progress
    for the person, and what work that lost the race to it undid."""

    identity: Identity
    result: OperationResult | None
    waited: bool = False
    undone: tuple[str, ...] = ()


def _nothing() -> None:
    return None


def _record_intent(state: State, email: str) -> int:
    """Mark the person as left (once; a re-run keeps the first time), before anything else.
    Returns the audit position from which work that lost the race is looked for."""
    with transaction(state.db):
        now = state.now()
        state.db.execute(
            "UPDATE identities SET left_at = COALESCE(left_at, ?), updated_at = ? WHERE email = ?",
            (now, now, email),
        )
        state.record("identity.leaving", email, "started")
        row = state.db.execute("SELECT MAX(seq) FROM audit").fetchone()
    return int(row[0])


def _lost_races(state: State, email: str, since: int) -> tuple[str, ...]:
    """What work for the person that ran while they left undid (its ``lost_race`` entries)."""
    rows = state.db.execute(
        "SELECT json_extract(detail, '$.lost_race') AS what FROM audit "
        "WHERE subject = ? AND seq > ? AND json_extract(detail, '$.lost_race') IS NOT NULL "
        "ORDER BY seq",
        (email, since),
    ).fetchall()
    return tuple(str(row["what"]) for row in rows)


def leave(
    state: State, runtime: Runtime, email: str, *, on_wait: Callable[[], None] = _nothing
) -> Leave:
    """Offboard one identity (see the module's steps). ``on_wait`` is called once if it has to
    wait for work in progress for the person in another process."""
    identity = identities.get(state.db, email)
    since = _record_intent(state, identity.email)
    waited: list[bool] = []

    def waiting() -> None:
        waited.append(True)
        on_wait()

    busy = f"{identity.email} is marked as left, but their account is not deleted yet"
    with acting_for(state.path, identity.email, what=busy, on_wait=waiting):
        result = _delete(state, runtime, identity.email)
        _close_everything(state, identity.email, result)
    return Leave(
        identities.get(state.db, identity.email),
        result,
        waited=bool(waited),
        undone=_lost_races(state, identity.email, since),
    )


def _delete(state: State, runtime: Runtime, email: str) -> OperationResult:
    try:
        return runtime.delete({"email": email})
    except ConnectorError as exc:
        with transaction(state.db):
            state.record(
                "identity.leave", email, "failed", error=exc.message, steps=steps_data(exc.steps)
            )
        exc.message += (
            f"; {email} is marked as left, so nothing can give them access meanwhile: run "
            f"`hostsim identity remove {email}` again to finish"
        )
        raise


def _close_everything(state: State, email: str, result: OperationResult) -> None:
    """Everything IDHub holds for the person, closed in one transaction, and audited."""
    deleted = None if result.account is None else result.account.name
    with transaction(state.db):
        account = accounts.find(state, email)
        if account is not None:
            deleted = deleted or account.name
            accounts.drop(state, account, why=REASON)
        closed = grants.close_all(state, email, REASON)
        withdrawn = [row["id"] for row in open_requests(state.db, email)]
        now = state.now()
        state.db.executemany(
            "UPDATE requests SET status = 'withdrawn', reason = ?, updated_at = ? WHERE id = ?",
            [(REASON, now, request) for request in withdrawn],
        )
        state.record(
            "identity.leave",
            email,
            "done",
            account=deleted,
            closed_grants=closed,
            withdrawn_requests=withdrawn,
            steps=steps_data(result.steps),
        )
