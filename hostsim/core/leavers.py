"""Leavers: a person leaves, their account is deleted and IDHub closes everything they held.

The account goes first, through the connector's delete (which removes everything IAM requires
removed before a user can be deleted), also when IDHub has no record of one but a fulfilment
may have created it (failed or interrupted before the account was linked). Only when that
succeeded does IDHub record the leave: the account record is dropped, every open grant closed,
every open request withdrawn and the identity marked as left. A failure changes nothing in
IDHub, and running the command again finishes the job (the connector's delete is idempotent).
The identity's history stays.
"""

from __future__ import annotations

from hostsim.contract.errors import ConnectorError
from hostsim.contract.model import OperationResult
from hostsim.core import accounts, grants, identities
from hostsim.core.requests import open_requests
from hostsim.core.state import State
from hostsim.core.store import transaction
from hostsim.runtime import Runtime


def _created_unlinked(state: State, email: str) -> bool:
    """Whether a fulfilment may have created an account IDHub never linked: one that failed
    or was interrupted after the connector's create and before IDHub recorded the account."""
    row = state.db.execute(
        "SELECT 1 FROM requests WHERE identity = ? AND action = 'grant' AND attempts > 0 LIMIT 1",
        (email,),
    ).fetchone()
    return row is not None


def leave(state: State, runtime: Runtime, email: str) -> OperationResult | None:
    """Offboard one identity; returns what the connector did (None: no account)."""
    identity = identities.get(state.db, email)
    account = accounts.find(state, identity.email)
    result = None
    if account is not None or _created_unlinked(state, identity.email):
        try:
            result = runtime.delete({"email": identity.email})
        except ConnectorError as exc:
            with transaction(state.db):
                state.record("identity.leave", identity.email, "failed", error=exc.message)
            raise
    deleted = None if result is None or result.account is None else result.account.name
    with transaction(state.db):
        if account is not None:
            deleted = account.name
            accounts.drop(state, account, why="the identity left")
        closed = grants.close_all(state, identity.email, "the identity left")
        withdrawn = [row["id"] for row in open_requests(state.db, identity.email)]
        now = state.now()
        state.db.executemany(
            "UPDATE requests SET status = 'withdrawn', reason = 'the identity left', "
            "updated_at = ? WHERE id = ?",
            [(now, request) for request in withdrawn],
        )
        state.db.execute(
            "UPDATE identities SET left_at = COALESCE(left_at, ?), updated_at = ? WHERE email = ?",
            (now, now, identity.email),
        )
        state.record(
            "identity.leave",
            identity.email,
            "done",
            account=deleted,
            closed_grants=closed,
            withdrawn_requests=withdrawn,
            steps=[] if result is None else [step.action for step in result.steps],
        )
    return result
