"""Fulfilment: an approved request carried out through the connector.

The request is ``approved`` in the state file before the connector is called and becomes
``complete`` (with the grant recorded) only after the connector answered, so a crash in
between leaves an ``approved`` request that :func:`resume` carries out on the next run. That
is safe because every connector operation is idempotent: a grant already made reads
``unchanged``, an account already created is adopted by the connector's create. A connector
failure leaves the request ``failed`` with the reason and the steps done; a retry runs it again
and repeats nothing that was done.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from hostsim.contract.converter import unstructure
from hostsim.contract.errors import AlreadyExists, ConnectorError
from hostsim.contract.model import OperationResult, Step
from hostsim.core import accounts, grants, identities
from hostsim.core import requests as requests_
from hostsim.core.claims import claim
from hostsim.core.identities import NAME_FIELDS, Identity
from hostsim.core.requests import Action, Request, Status
from hostsim.core.settings import SyncDirection
from hostsim.core.state import State
from hostsim.core.store import transaction
from hostsim.runtime import Runtime

log = logging.getLogger(__name__)


def create_payload(identity: Identity, grants_: list[str]) -> dict[str, Any]:
    """The connector's create request for an identity's account, with its first grants."""
    payload: dict[str, Any] = {"email": identity.email}
    for name in NAME_FIELDS:
        if getattr(identity, name):
            payload[name] = getattr(identity, name)
    if identity.attributes:
        payload["attributes"] = dict(identity.attributes)
    if grants_:
        payload["grants"] = grants_
    return payload


def modify_payload(email: str, values: Mapping[str, str | None]) -> dict[str, Any]:
    """The connector's modify request writing ``values`` (by attribute name) to the account
    of ``email``: ``email`` renames, a name field is a field, anything else an extra
    attribute; ``None`` (cleared in IDHub) is the empty string, which clears it."""
    payload: dict[str, Any] = {"email": email}
    extra: dict[str, str] = {}
    for name, value in values.items():
        if name == "email":
            payload["new_email"] = value or ""
        elif name in NAME_FIELDS:
            payload[name] = value or ""
        else:
            extra[name] = value or ""
    if extra:
        payload["attributes"] = extra
    return payload


def link_created(
    state: State, identity: Identity, result: OperationResult, why: str, request: int | None = None
) -> None:
    """Record the account a connector create returned; the values IDHub just wrote are the
    ones both sides agree on (the baseline of bi-directional sync)."""
    if result.account is None:
        return
    names = ["email", *NAME_FIELDS, *identity.attributes]
    with transaction(state.db):
        accounts.link(
            state,
            identity.email,
            result.account.id,
            result.account.name,
            synced={name: identity.value(name) for name in names},
            why=why,
            request=request,
        )


def _steps(steps: tuple[Step, ...]) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = unstructure(list(steps))
    return data


def _carry_out(state: State, runtime: Runtime, request: Request) -> OperationResult:
    """The connector call for one request (creating the account first when there is none)."""
    account = accounts.find(state, request.identity)
    if request.action is Action.GRANT and account is None:
        identity = identities.get(state.db, request.identity)
        result = runtime.create(create_payload(identity, [request.entitlement]))
        link_created(state, identity, result, f"created for request {request.id}", request.id)
        return result
    if account is None:  # a revocation for someone without an account: nothing to take away
        return OperationResult(operation="revoke", account=None)
    call = runtime.grant if request.action is Action.GRANT else runtime.revoke
    return call({"email": request.identity, "entitlement": request.entitlement})


def fulfil(state: State, runtime: Runtime, request: Request, *, why: str = "approved") -> Request:
    """Carry out an approved request; returns it ``complete`` or ``failed`` (or still
    ``approved`` when another live process is carrying it out, see :mod:`.claims`)."""
    with claim(state.path, request.id) as mine:
        current = requests_.get(state.db, request.id)
        if not mine or current.status is not Status.APPROVED:
            return current
        return _fulfil_claimed(state, runtime, current, why)


def _fulfil_claimed(state: State, runtime: Runtime, request: Request, why: str) -> Request:
    with transaction(state.db):
        requests_.start_attempt(state, request)
    try:
        result = _carry_out(state, runtime, request)
    except ConnectorError as exc:
        reason = exc.message
        if isinstance(exc, AlreadyExists):
            reason += (
                "; the account exists in the application but IDHub has not linked it: run "
                "`hostsim reconcile` to correlate it, then retry"
            )
        with transaction(state.db):
            requests_.mark(state, request, Status.FAILED, reason=reason, steps=_steps(exc.steps))
            state.record(
                f"fulfil.{request.action.value}",
                request.identity,
                "failed",
                request=request.id,
                entitlement=request.entitlement,
                error=reason,
                retryable=exc.retryable,
                steps=_steps(exc.steps),
                why=why,
            )
        return requests_.get(state.db, request.id)
    with transaction(state.db):
        if request.action is Action.GRANT:
            grants.open_grant(state, request.identity, request.entitlement, request.id)
        else:
            grants.close_grant(
                state,
                request.identity,
                request.entitlement,
                f"revoked by request {request.id}",
                request.id,
            )
        requests_.mark(state, request, Status.COMPLETE, steps=_steps(result.steps))
        state.record(
            f"fulfil.{request.action.value}",
            request.identity,
            "complete",
            request=request.id,
            entitlement=request.entitlement,
            changed=result.changed,
            steps=_steps(result.steps),
            why=why,
        )
    return requests_.get(state.db, request.id)


def push_attributes(
    state: State, runtime: Runtime, before: Identity, after: Identity
) -> OperationResult | None:
    """Write an identity's changed attributes to its account, as IDHub provisions a mover.

    Only attributes whose sync direction lets IDHub write them (idhub-to-app, bi-directional)
    are pushed; the connector's mapping then decides which it writes on modify. None when
    there is no account or nothing to push. On success the pushed values become the agreed
    baseline; on failure the next reconciliation finds the drift.
    """
    account = accounts.find(state, before.email)
    if account is None:
        return None
    writable = (SyncDirection.IDHUB_TO_APP, SyncDirection.BIDIRECTIONAL)
    changed = {
        name: value
        for name, value in identities.changed_attributes(before, after).items()
        if state.settings.direction(name) in writable
    }
    if not changed:
        return None
    try:
        result = runtime.modify(modify_payload(before.email, changed))
    except ConnectorError as exc:
        with transaction(state.db):
            state.record(
                "provision.modify",
                after.email,
                "failed",
                error=exc.message,
                steps=_steps(exc.steps),
            )
        raise
    with transaction(state.db):
        accounts.seen(state, account, account.name, {**account.synced, **changed})
        state.record(
            "provision.modify",
            after.email,
            "done" if result.changed else "unchanged",
            attributes=sorted(changed),
            steps=_steps(result.steps),
        )
    return result


def resume(state: State, runtime: Runtime) -> list[Request]:
    """Carry out every request left ``approved`` by a run that stopped before finishing it."""
    waiting = list(requests_.every(state.db, status=Status.APPROVED.value))
    done = []
    for request in waiting:
        log.info("resuming request %s left approved by an interrupted run", request.id)
        after = fulfil(state, runtime, request, why="resumed after an interrupted run")
        if after.status is not Status.APPROVED:  # still approved: a live process has it
            done.append(after)
    return done


def retry(state: State, runtime: Runtime, request_id: int) -> Request:
    """Run a failed request again; what the earlier attempt did is not repeated."""
    request = requests_.reopen(state, request_id)
    return fulfil(state, runtime, request, why="retried")
