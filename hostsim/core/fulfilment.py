"""Fulfilment: an approved request carried out through the connector.

The request is ``approved`` in the state file before the connector is called and becomes
``complete`` (with the grant recorded) only after the connector answered, so a crash in
between leaves an ``approved`` request that :func:`resume` carries out on the next run. That
is safe because every connector operation is idempotent: a grant already made reads
``unchanged``, an account already created is adopted by the connector's create. A connector
failure leaves the request ``failed`` with the reason and the steps done; a retry runs it again
and repeats nothing that was done.

A leaver always wins. Work for a person holds the person's lock (:mod:`.claims`) while it acts,
and reads whether they left both before it starts and, in the transaction that records its end,
after the connector answered. A leaver records that the person left first and only then waits
for that lock, so a fulfilment that finds, after acting, that its person left while it ran
undoes what it did (deletes the account it created, or revokes the access it granted) and
withdraws the request saying so; one that finds it before acting does nothing. Taking access
away (a revocation) is carried out whoever left.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from hostsim.contract.errors import AlreadyExists, ConnectorError
from hostsim.contract.model import OperationResult, Step
from hostsim.core import accounts, applications, grants, identities
from hostsim.core import requests as requests_
from hostsim.core.audit import steps_data
from hostsim.core.claims import Busy, acting_for, claim
from hostsim.core.identities import NAME_FIELDS, Identity
from hostsim.core.requests import LEFT_REASON, Action, Request, Status
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
    return steps_data(steps)


def left_on(state: State, email: str) -> str | None:
    """When the person left (None: they have not). A leaver records it first, before it waits
    for work in progress for them, so work that reads it after acting knows it lost the race."""
    found = identities.find(state.db, email)
    return None if found is None else found.left_at


def connector_call(state: State, request: Request) -> tuple[str, dict[str, Any]] | None:
    """The connector operation and payload that carry out one request (a create with the
    grant when the person has no account yet), or None when there is nothing to do (a
    revocation for someone without an account). Fulfilment runs it; ``request show --plan``
    asks the connector for its plan, so both see the same call."""
    account = accounts.find(state, request.identity)
    native = state.native_entitlement(request.entitlement)
    if request.action is Action.GRANT and account is None:
        identity = identities.get(state.db, request.identity)
        return "create", create_payload(identity, [native])
    if account is None:
        return None
    operation = "grant" if request.action is Action.GRANT else "revoke"
    return operation, {"email": request.identity, "entitlement": native}


def routed(state: State, runtime: Runtime, request: Request) -> tuple[State, Runtime]:
    """The application a request acts on (its entitlement's, in the catalog) and the runtime
    bound to that application's account (an AWS account of an organization); the command's
    own for a connector of one account."""
    target = applications.for_entitlement(state, runtime, request.entitlement)
    return target.state, target.runtime


def plan(state: State, runtime: Runtime, request: Request) -> OperationResult:
    """What fulfilling ``request`` now would do, with reads only (the connector's plan)."""
    state, runtime = routed(state, runtime, request)
    call = connector_call(state, request)
    if call is None:
        return OperationResult(operation="revoke", account=None)
    return runtime.plan(*call)


def _carry_out(state: State, runtime: Runtime, request: Request) -> OperationResult:
    """The connector call for one request (creating the account first when there is none)."""
    call = connector_call(state, request)
    if call is None:  # a revocation for someone without an account: nothing to take away
        return OperationResult(operation="revoke", account=None)
    operation, payload = call
    run: Callable[[Mapping[str, Any]], OperationResult] = getattr(runtime, operation)
    return run(payload)


def fulfil(state: State, runtime: Runtime, request: Request, *, why: str = "approved") -> Request:
    """Carry out an approved request; returns it ``complete`` or ``failed`` (or still
    ``approved`` when another live process is carrying it out, see :mod:`.claims`), or
    ``withdrawn`` when the person left before or while it ran (what it did is undone).

    It acts for the person under their lock (:func:`.claims.acting_for`), which a leaver takes
    too, so a leaver waits for it and it never runs beside a leaver's delete. It acts in the
    application of the request's entitlement (:func:`routed`)."""
    state, runtime = routed(state, runtime, request)
    with claim(state.path, request.id) as mine:
        current = requests_.get(state.db, request.id)
        if not mine or current.status is not Status.APPROVED:
            return current
        busy = f"request {current.id} is approved but not carried out yet"
        with acting_for(state.path, current.identity, what=busy):
            current = requests_.get(state.db, request.id)  # a leaver may have withdrawn it
            if current.status is not Status.APPROVED:
                return current
            return _fulfil_claimed(state, runtime, current, why)


def _fulfil_claimed(state: State, runtime: Runtime, request: Request, why: str) -> Request:
    gives = request.action is Action.GRANT  # taking access away is allowed whoever left
    left = left_on(state, request.identity)
    if gives and left is not None:
        return _withdrawn_for_leaver(state, request, left, why)
    with transaction(state.db):
        requests_.start_attempt(state, request)
    had_account = accounts.find(state, request.identity) is not None
    result: OperationResult | None = None
    error: ConnectorError | None = None
    try:
        result = _carry_out(state, runtime, request)
    except ConnectorError as exc:
        error = exc
    with transaction(state.db):  # the check and the record together: a leaver is before or after
        lost = gives and left_on(state, request.identity) is not None
        if not lost and result is not None:
            _complete(state, request, result, why)
        elif not lost and error is not None:
            _failed(state, request, error, why)
    if lost:
        done = result.steps if result is not None else (error.steps if error else ())
        return _undo(state, runtime, request, done, had_account=had_account, why=why)
    return requests_.get(state.db, request.id)


def _failed(state: State, request: Request, exc: ConnectorError, why: str) -> None:
    reason = exc.message
    if isinstance(exc, AlreadyExists):
        reason += (
            "; the account exists in the application but IDHub has not linked it: run "
            "`hostsim reconcile` to correlate it, then retry"
        )
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


def _complete(state: State, request: Request, result: OperationResult, why: str) -> None:
    """Record a fulfilment done: the account it created (if it did), the grant, the request."""
    if result.operation == "create":
        identity = identities.get(state.db, request.identity)
        link_created(state, identity, result, f"created for request {request.id}", request.id)
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


def _withdrawn_for_leaver(state: State, request: Request, left: str, why: str) -> Request:
    """The person left before this started: nothing is done, the request is withdrawn (as the
    leaver withdraws every open request)."""
    with transaction(state.db):
        requests_.mark(state, request, Status.WITHDRAWN, reason=LEFT_REASON)
        state.record(
            f"fulfil.{request.action.value}",
            request.identity,
            "withdrawn",
            request=request.id,
            entitlement=request.entitlement,
            left_at=left,
            why=why,
        )
    return requests_.get(state.db, request.id)


def undo_for_leaver(
    runtime: Runtime, email: str, entitlements: list[str], *, created: bool
) -> tuple[str, OperationResult]:
    """Take back what work for a person who left meanwhile gave them: the account it created
    (deleted, with everything on it), else the access it granted (revoked: ``entitlements``
    are the connector's own ids, on a runtime bound to the account). Returns what was undone,
    in words, and the connector's result; raises the connector's error."""
    if created:
        return "the account it created was deleted", runtime.delete({"email": email})
    steps: list[Step] = []
    for entitlement in entitlements:
        result = runtime.revoke({"email": email, "entitlement": entitlement})
        steps += result.steps
    return "the access it granted was revoked", OperationResult("revoke", None, tuple(steps))


def _undo(
    state: State,
    runtime: Runtime,
    request: Request,
    done: tuple[Step, ...],
    *,
    had_account: bool,
    why: str,
) -> Request:
    """The person left while this ran: undo it, withdraw the request and say so."""
    try:
        native = state.native_entitlement(request.entitlement)
        what, undo = undo_for_leaver(runtime, request.identity, [native], created=not had_account)
        steps, outcome = done + undo.steps, "undone"
        reason = f"undone: {request.identity} left while this ran; {what}"
    except ConnectorError as exc:
        steps, outcome, what = done + exc.steps, f"undo failed: {exc.message}", "nothing"
        reason = (
            f"{request.identity} left while this ran, and undoing it failed: {exc.message}; "
            f"`hostsim identity remove {request.identity}` deletes the account"
        )
    with transaction(state.db):
        requests_.mark(state, request, Status.WITHDRAWN, reason=reason, steps=_steps(steps))
        state.record(
            f"fulfil.{request.action.value}",
            request.identity,
            outcome,
            request=request.id,
            entitlement=request.entitlement,
            steps=_steps(steps),
            why=why,
            lost_race=f"request {request.id} ({request.action.value} {request.entitlement}): "
            + (what if outcome == "undone" else outcome),
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
    busy = f"{before.email} is changed in IDHub, but not yet in {state.application}"
    with acting_for(state.path, before.email, what=busy):
        if left_on(state, before.email) is not None:  # the leaver deletes the account
            return None
        return _push(state, runtime, before, after)


def _push(
    state: State, runtime: Runtime, before: Identity, after: Identity
) -> OperationResult | None:
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
        try:
            after = fulfil(state, runtime, request, why="resumed after an interrupted run")
        except Busy as exc:  # still approved: the next command resumes it
            log.warning("request %s not resumed: %s", request.id, exc.message)
            continue
        if after.status is not Status.APPROVED:  # still approved: a live process has it
            done.append(after)
    return done


def retry(state: State, runtime: Runtime, request_id: int) -> Request:
    """Run a failed request again; what the earlier attempt did is not repeated."""
    request = requests_.reopen(state, request_id)
    return fulfil(state, runtime, request, why="retried")
