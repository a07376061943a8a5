"""Access requests and their approval chains: submit, approve, reject, withdraw.

A request asks for one entitlement for one identity (``grant``) or asks to take it away
(``revoke``). A grant request walks the entitlement's approval chain, resolved when it is
submitted: ``manager`` is the identity's manager, ``owner`` the entitlement's owner, an email
names a person, ``auto`` approves at once. Only the approver of the current step can decide
it, and nobody approves access for themselves. Removing access never waits for an approval.
Once the last step approves, the request is ``approved`` and :mod:`.fulfilment` carries it out.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

from attrs import frozen

from hostsim.contract.errors import AlreadyExists, InvalidInput, NotFound, Refused
from hostsim.core import catalog, grants, identities
from hostsim.core.catalog import Entitlement
from hostsim.core.identities import Identity
from hostsim.core.settings import AUTO_APPROVAL
from hostsim.core.state import State
from hostsim.core.store import transaction

#: Requests IDHub still has to act on (a failed one waits for a retry or a withdrawal).
OPEN = ("pending", "approved", "failed")
#: Why a leaver's open requests are withdrawn (by the leaver, or by a fulfilment it beat).
LEFT_REASON = "the identity left"


class Status(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    FAILED = "failed"
    COMPLETE = "complete"


class Action(StrEnum):
    GRANT = "grant"
    REVOKE = "revoke"


@frozen
class Approval:
    position: int
    role: str
    approver: str
    decision: str | None = None
    decided_at: str | None = None
    comment: str = ""


@frozen
class Request:
    id: int
    action: Action
    identity: str
    entitlement: str
    justification: str
    requested_by: str
    status: Status
    reason: str
    steps: tuple[dict[str, Any], ...]
    attempts: int
    created_at: str
    updated_at: str
    approvals: tuple[Approval, ...] = ()

    @property
    def waiting_for(self) -> Approval | None:
        """The step a pending request waits on."""
        if self.status is not Status.PENDING:
            return None
        return next((step for step in self.approvals if step.decision is None), None)

    @property
    def status_text(self) -> str:
        """The status as IDHub shows it: ``waiting for manager approval (bob@example.com)``."""
        step = self.waiting_for
        if step is not None:
            return f"waiting for {step.role} approval ({step.approver})"
        if self.status is Status.FAILED:
            return f"failed: {self.reason}"
        if self.status in (Status.REJECTED, Status.WITHDRAWN) and self.reason:
            return f"{self.status.value}: {self.reason}"
        return self.status.value


def _from_row(db: sqlite3.Connection, row: sqlite3.Row) -> Request:
    approvals = tuple(
        Approval(
            position=a["position"],
            role=a["role"],
            approver=a["approver"],
            decision=a["decision"],
            decided_at=a["decided_at"],
            comment=a["comment"],
        )
        for a in db.execute(
            "SELECT * FROM approvals WHERE request = ? ORDER BY position", (row["id"],)
        )
    )
    return Request(
        id=row["id"],
        action=Action(row["action"]),
        identity=row["identity"],
        entitlement=row["entitlement"],
        justification=row["justification"],
        requested_by=row["requested_by"],
        status=Status(row["status"]),
        reason=row["reason"],
        steps=tuple(json.loads(row["steps"])),
        attempts=row["attempts"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        approvals=approvals,
    )


def get(db: sqlite3.Connection, request_id: int) -> Request:
    row = db.execute("SELECT * FROM requests WHERE id = ?", (request_id,)).fetchone()
    if row is None:
        raise NotFound(f"no request {request_id}")
    return _from_row(db, row)


def every(
    db: sqlite3.Connection,
    *,
    status: str | None = None,
    identity: str | None = None,
    approver: str | None = None,
) -> Iterator[Request]:
    """Requests, oldest first; ``approver`` keeps those waiting on that person."""
    where, params = [], []
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if identity is not None:
        where.append("identity = ?")
        params.append(identity.lower())
    sql = "SELECT * FROM requests" + (f" WHERE {' AND '.join(where)}" if where else "")
    for row in db.execute(sql + " ORDER BY id", params).fetchall():
        request = _from_row(db, row)
        waiting = request.waiting_for
        if approver is None or (waiting is not None and waiting.approver == approver.lower()):
            yield request


# --- the approval chain -------------------------------------------------------------------


def resolve_chain(
    state: State, identity: Identity, entitlement: Entitlement
) -> list[tuple[str, str]]:
    """``(role, approver)`` per step, a person asked once (their roles joined with ``+``);
    empty for ``auto``. Refused when a step names nobody or the beneficiary."""
    chain = entitlement.approval_chain or state.settings.default_approval
    if chain == (AUTO_APPROVAL,):
        return []
    steps: list[tuple[str, str]] = []
    for role in chain:
        if role == "manager":
            approver = identity.manager
            if approver is None:
                raise InvalidInput(
                    f"{identity.email} has no manager, and the approval chain of "
                    f"{entitlement.id} starts with one (set it with `hostsim identity modify "
                    f"{identity.email} --manager EMAIL`)"
                )
        elif role == "owner":
            approver = entitlement.owner
            if approver is None:
                raise InvalidInput(
                    f"{entitlement.id} has no owner, and its approval chain needs one (set it "
                    f"with `hostsim catalog set {entitlement.id} --owner EMAIL`)"
                )
        else:
            approver = identities.get_current(state.db, role).email
            role = "named"  # noqa: PLW2901 - the role of an approver named by email
        if role != "named":
            identities.get_current(state.db, approver)  # a manager or owner who left asks nobody
        if approver == identity.email:
            raise Refused(
                f"{identity.email} would approve their own access to {entitlement.id} (as "
                f"{role}); give the entitlement another {role} or chain"
            )
        earlier = next((i for i, (_, who) in enumerate(steps) if who == approver), None)
        if earlier is None:
            steps.append((role, approver))
        else:
            steps[earlier] = (f"{steps[earlier][0]}+{role}", approver)
    return steps


# --- submit, decide, withdraw ---------------------------------------------------------


def open_requests(
    db: sqlite3.Connection, identity: str, entitlement: str | None = None
) -> list[sqlite3.Row]:
    """``id`` and ``action`` of an identity's requests still open (of one entitlement)."""
    statuses = ", ".join("?" * len(OPEN))
    sql = f"SELECT id, action FROM requests WHERE identity = ? AND status IN ({statuses})"
    params: tuple[str, ...] = (identity, *OPEN)
    if entitlement is not None:
        sql += " AND entitlement = ?"
        params += (entitlement,)
    return db.execute(sql + " ORDER BY id", params).fetchall()


def _refuse_duplicates(state: State, action: Action, identity: str, entitlement: str) -> None:
    open_one = next(iter(open_requests(state.db, identity, entitlement)), None)
    if open_one is not None:
        raise AlreadyExists(
            f"request {open_one['id']} ({open_one['action']} {entitlement} for {identity}) "
            "is still open; decide, retry or withdraw it first"
        )
    held = grants.find(state.db, identity, entitlement)
    if action is Action.GRANT and held is not None:
        source = f" (request {held.request})" if held.request else ""
        raise AlreadyExists(f"{identity} holds {entitlement} already{source}")
    if action is Action.REVOKE and held is None:
        raise NotFound(f"{identity} does not hold {entitlement} by IDHub's records")


def submit(
    state: State, action: Action, identity_email: str, entitlement_id: str, justification: str
) -> Request:
    """Record a request; a revocation or an ``auto`` chain is ``approved`` at once."""
    if not justification.strip():
        raise InvalidInput("a request needs a justification (--justification TEXT)")
    with transaction(state.db):
        identity = identities.get_current(state.db, identity_email)
        entitlement = catalog.get(state, entitlement_id)
        if action is Action.GRANT and not entitlement.present:
            raise InvalidInput(
                f"{entitlement.id} is no longer in {state.application} (at the last catalog "
                "sync); it cannot be requested"
            )
        _refuse_duplicates(state, action, identity.email, entitlement.id)
        chain = resolve_chain(state, identity, entitlement) if action is Action.GRANT else []
        now = state.now()
        status = Status.PENDING if chain else Status.APPROVED
        cursor = state.db.execute(
            "INSERT INTO requests (action, identity, entitlement, justification, requested_by, "
            "status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                action.value,
                identity.email,
                entitlement.id,
                justification.strip(),
                state.actor,
                status.value,
                now,
                now,
            ),
        )
        request_id = int(cursor.lastrowid or 0)
        state.db.executemany(
            "INSERT INTO approvals (request, position, role, approver) VALUES (?, ?, ?, ?)",
            [(request_id, i, role, who) for i, (role, who) in enumerate(chain, start=1)],
        )
        state.record(
            f"request.{action.value}",
            identity.email,
            status.value,
            request=request_id,
            entitlement=entitlement.id,
            justification=justification.strip(),
            approval_chain=[f"{role}: {who}" for role, who in chain] or "none (approved)",
        )
    return get(state.db, request_id)


def _set_status(state: State, request: Request, status: Status, reason: str = "") -> None:
    state.db.execute(
        "UPDATE requests SET status = ?, reason = ?, updated_at = ? WHERE id = ?",
        (status.value, state.redact(reason), state.now(), request.id),
    )


def _current_step(state: State, request_id: int, verb: str) -> tuple[Request, Approval]:
    request = get(state.db, request_id)
    step = request.waiting_for
    if step is None:
        raise InvalidInput(
            f"request {request.id} is {request.status_text}; only a request waiting for "
            f"approval can be {verb}"
        )
    approver = identities.get(state.db, step.approver)
    if approver.left_at is not None:  # a leaver neither receives nor grants access
        raise Refused(
            f"request {request.id} is waiting for {approver.email} ({step.role}), who left on "
            f"{approver.left_at}; withdraw it and ask again"
        )
    if step.approver != state.actor:
        raise Refused(
            f"request {request.id} is waiting for {step.approver} ({step.role}); "
            f"{state.actor} cannot decide it (act with --as {step.approver})"
        )
    return request, step


def _refuse_leaver(state: State, request: Request, verb: str) -> None:
    """Nothing gives a person who left access: their request is withdrawn by the leaver, and
    until it is (a leaver that is still deleting the account) it cannot be carried further."""
    person = identities.get(state.db, request.identity)
    if person.left_at is not None:
        raise InvalidInput(
            f"request {request.id} is for {person.email}, who left on {person.left_at}; it "
            f"cannot be {verb}"
        )


def _decide(state: State, request: Request, step: Approval, decision: str, comment: str) -> None:
    state.db.execute(
        "UPDATE approvals SET decision = ?, decided_at = ?, comment = ? "
        "WHERE request = ? AND position = ?",
        (decision, state.now(), comment, request.id, step.position),
    )


def approve(state: State, request_id: int, comment: str = "") -> Request:
    """The current approver approves; the last approval makes the request ``approved``."""
    with transaction(state.db):
        request, step = _current_step(state, request_id, "approved")
        _refuse_leaver(state, request, "approved")
        _decide(state, request, step, "approved", comment)
        last = step.position == len(request.approvals)
        if last:
            _set_status(state, request, Status.APPROVED)
        state.record(
            "request.approve",
            request.identity,
            "approved" if last else "pending",
            request=request.id,
            entitlement=request.entitlement,
            step=f"{step.position} of {len(request.approvals)} ({step.role})",
            comment=comment,
        )
    return get(state.db, request_id)


def _skip_rest(state: State, request: Request) -> None:
    state.db.execute(
        "UPDATE approvals SET decision = 'skipped', decided_at = ? "
        "WHERE request = ? AND decision IS NULL",
        (state.now(), request.id),
    )


def reject(state: State, request_id: int, comment: str = "") -> Request:
    """The current approver rejects; the steps after it are skipped."""
    with transaction(state.db):
        request, step = _current_step(state, request_id, "rejected")
        _decide(state, request, step, "rejected", comment)
        _skip_rest(state, request)
        reason = f"rejected by {state.actor} ({step.role})" + (f": {comment}" if comment else "")
        _set_status(state, request, Status.REJECTED, reason)
        state.record(
            "request.reject",
            request.identity,
            "rejected",
            request=request.id,
            entitlement=request.entitlement,
            step=f"{step.position} of {len(request.approvals)} ({step.role})",
            comment=comment,
        )
    return get(state.db, request_id)


def withdraw(state: State, request_id: int) -> Request:
    """The requester (or the person it is for) takes back a request not yet carried out."""
    with transaction(state.db):
        request = get(state.db, request_id)
        if request.status not in (Status.PENDING, Status.FAILED):
            raise InvalidInput(
                f"request {request.id} is {request.status_text}; only a request waiting for "
                "approval or a failed one can be withdrawn"
            )
        if state.actor not in (request.requested_by, request.identity):
            raise Refused(
                f"only {request.requested_by} (who asked) or {request.identity} can withdraw "
                f"request {request.id}, not {state.actor}"
            )
        _skip_rest(state, request)
        _set_status(state, request, Status.WITHDRAWN, f"withdrawn by {state.actor}")
        state.record(
            "request.withdraw",
            request.identity,
            "withdrawn",
            request=request.id,
            entitlement=request.entitlement,
        )
    return get(state.db, request_id)


def mark(
    state: State,
    request: Request,
    status: Status,
    *,
    reason: str = "",
    steps: list[dict[str, Any]] | None = None,
) -> None:
    """Record how fulfilment ended (inside the caller's transaction)."""
    # masked like the audit log: a connector's message may echo what it was given
    state.db.execute(
        "UPDATE requests SET status = ?, reason = ?, steps = ?, updated_at = ? WHERE id = ?",
        (
            status.value,
            state.redact(reason),
            json.dumps(state.redact.data(steps or [])),
            state.now(),
            request.id,
        ),
    )


def start_attempt(state: State, request: Request) -> None:
    state.db.execute(
        "UPDATE requests SET attempts = attempts + 1, updated_at = ? WHERE id = ?",
        (state.now(), request.id),
    )


def reopen(state: State, request_id: int) -> Request:
    """A failed request goes back to ``approved`` for another fulfilment attempt."""
    with transaction(state.db):
        request = get(state.db, request_id)
        if request.status is not Status.FAILED:
            raise InvalidInput(
                f"request {request.id} is {request.status_text}; only a failed request can be "
                "retried"
            )
        _refuse_leaver(state, request, "retried")
        _set_status(state, request, Status.APPROVED)
        state.record(
            "request.retry",
            request.identity,
            "approved",
            request=request.id,
            entitlement=request.entitlement,
            previous_failure=request.reason,
        )
    return get(state.db, request_id)
