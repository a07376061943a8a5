"""Leavers: a person leaves, their account is deleted (or disabled, to be deleted later) and
IDHub closes everything they held.

A leaver always wins, whatever is in flight for the person in another process:

1. The leave is recorded first (``left_at``, audited as ``identity.leaving``): from then on
   nothing may give the person an account or access. Requests for them can no longer be
   submitted, approved or retried, and work already in flight (a fulfilment, a reconciliation
   remedy) reads it after acting and undoes itself (:mod:`.fulfilment`).
2. The leaver takes the person's lock (:mod:`.claims`), which that work holds while it acts,
   so it waits for work in progress to finish (saying so) and never deletes beside a create.
3. Holding it, the account goes through the connector's delete (which removes everything IAM
   requires removed before a user can be deleted), asked by email whether or not IDHub has a
   record of one: a fulfilment or remedy interrupted after its create never linked it. Under
   the leaver policy ``disable`` (``[idhub] leaver``) it goes through the connector's
   ``disable`` instead: it stops acting at once and loses nothing, and is deleted
   ``delete_after_days`` later by reconciliation (``--remediate delete-orphans``).
4. Then IDHub records the rest in one transaction: the account record is dropped (a disabled
   account's record stays, linked and marked disabled, so its deletion finds it), every open
   grant closed (the person left: IDHub no longer holds that they have any access, whatever a
   disabled account still carries), every open request withdrawn.

A failure (or a leaver killed while it waits) leaves the person marked as left, so nothing can
give them anything meanwhile; running the command again finishes the job (the connector's
delete is idempotent), and reconciliation reports a live account of a person who left. The
identity's history stays.

In an organization (settings spanning several AWS accounts, :mod:`.applications`) the person
may have an account in any of them: step 3 is done in every in-scope account, by email, each
through the runtime bound to it (IDHub's record of that application's account brought in
line), and step 4's grants and requests are closed once, when every account is done. An
account that fails is named in the error after the others were done; re-running finishes it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

from attrs import evolve, frozen

from hostsim.contract.errors import ConnectorError, NotFound
from hostsim.contract.model import OperationResult
from hostsim.core import accounts, grants, identities
from hostsim.core.applications import Target
from hostsim.core.audit import steps_data
from hostsim.core.claims import acting_for
from hostsim.core.identities import Identity
from hostsim.core.requests import LEFT_REASON, open_requests
from hostsim.core.settings import CoreSettings, LeaverPolicy
from hostsim.core.state import State, parse_timestamp, timestamp
from hostsim.core.store import transaction
from hostsim.runtime import Runtime

#: Why the leaver closes grants and withdraws requests.
REASON = LEFT_REASON
#: What a leave did to the account (``Leave.done``).
DELETED = "deleted"
DISABLED = "disabled"
NO_ACCOUNT = "none"


@frozen
class Place:
    """What a leave did in one AWS account of an organization (one application): ``done`` as
    in :class:`Leave`, or ``failed`` with the ``error``."""

    application: str
    account_id: str | None
    done: str
    account: str | None = None
    delete_due: str | None = None
    result: OperationResult | None = None
    error: str = ""


FAILED = "failed"


@frozen
class Leave:
    """What a leave did: the connector's delete (or disable), whether it had to wait for work
    in progress for the person, and what work that lost the race to it undid. ``done`` is
    :data:`DELETED`, :data:`DISABLED` or :data:`NO_ACCOUNT` (there was none to act on);
    ``delete_due`` when a disabled account's deletion is due."""

    identity: Identity
    result: OperationResult | None
    waited: bool = False
    undone: tuple[str, ...] = ()
    policy: LeaverPolicy = LeaverPolicy.DELETE
    done: str = DELETED
    account: str | None = None
    delete_due: str | None = None
    #: In an organization, what it did in each in-scope account (``result`` is then None).
    places: tuple[Place, ...] = ()


def deletion_due(settings: CoreSettings, disabled_at: str | None, left_at: str | None) -> str:
    """When a leaver's disabled account is due to be deleted: ``delete_after_days`` after it
    was disabled (after the leave when IDHub has no record of disabling it)."""
    since = disabled_at or left_at
    assert since is not None, "a leaver's account has a leave or a disable time"
    return timestamp(parse_timestamp(since) + timedelta(days=settings.deletion_days))


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
    state: State,
    runtime: Runtime,
    email: str,
    *,
    on_wait: Callable[[], None] = _nothing,
    scope: Callable[[], Sequence[Target] | None] | None = None,
) -> Leave:
    """Offboard one identity (see the module's steps). ``on_wait`` is called once if it has to
    wait for work in progress for the person in another process. ``scope`` gives, once the
    person is marked left, every in-scope AWS account of an organization (None: the connector
    reaches one), each an application with its bound runtime: the person is locked once, their
    account deleted (or disabled) by email in each, and their grants and requests closed once,
    when every account is done."""
    identity = identities.get(state.db, email)
    since = _record_intent(state, identity.email)
    try:
        targets = None if scope is None else scope()
    except ConnectorError as exc:  # the organization could not be read: left, to re-run
        _failed(state, identity.email, exc)
        raise
    waited: list[bool] = []

    def waiting() -> None:
        waited.append(True)
        on_wait()

    disable = state.settings.disables
    verb = "disabled" if disable else "deleted"
    busy = f"{identity.email} is marked as left, but their account is not {verb} yet"
    with acting_for(state.path, identity.email, what=busy, on_wait=waiting):
        if targets is not None:
            done = _everywhere(state, targets, identity.email)
        elif disable:
            result = _disable(state, runtime, identity.email)
            done = _close_disabled(state, identity.email, result)
        else:
            result = _delete(state, runtime, identity.email)
            done = _close_everything(state, identity.email, result)
    return evolve(
        done,
        identity=identities.get(state.db, identity.email),
        waited=bool(waited),
        undone=_lost_races(state, identity.email, since),
    )


def _failed(state: State, email: str, exc: ConnectorError) -> None:
    with transaction(state.db):
        state.record(
            "identity.leave", email, "failed", error=exc.message, steps=steps_data(exc.steps)
        )
    exc.message += (
        f"; {email} is marked as left, so nothing can give them access meanwhile: run "
        f"`hostsim identity remove {email}` again to finish"
    )


def _delete(state: State, runtime: Runtime, email: str) -> OperationResult:
    try:
        return runtime.delete({"email": email})
    except ConnectorError as exc:
        _failed(state, email, exc)
        raise


def _disable(state: State, runtime: Runtime, email: str) -> OperationResult | None:
    """The connector's disable; None when there is no account to disable (the connector found
    none by the email: never created, or deleted, e.g. by work that undid itself)."""
    try:
        return runtime.disable({"email": email})
    except NotFound:
        return None
    except ConnectorError as exc:
        _failed(state, email, exc)
        raise


def _close_requests(state: State, email: str) -> tuple[list[str], list[int]]:
    """Every open grant closed and open request withdrawn, in the caller's transaction."""
    closed = grants.close_all(state, email, REASON)
    withdrawn = [row["id"] for row in open_requests(state.db, email)]
    now = state.now()
    state.db.executemany(
        "UPDATE requests SET status = 'withdrawn', reason = ?, updated_at = ? WHERE id = ?",
        [(REASON, now, request) for request in withdrawn],
    )
    return closed, withdrawn


def _deleted_record(state: State, email: str, result: OperationResult) -> str | None:
    """The account deleted: IDHub's record of it dropped (in the caller's transaction);
    returns its name (None: there was none)."""
    deleted = None if result.account is None else result.account.name
    account = accounts.find(state, email)
    if account is not None:
        deleted = deleted or account.name
        accounts.drop(state, account, why=REASON)
    return deleted


def _close_everything(state: State, email: str, result: OperationResult) -> Leave:
    """Everything IDHub holds for the person, closed in one transaction, and audited."""
    with transaction(state.db):
        deleted = _deleted_record(state, email, result)
        closed, withdrawn = _close_requests(state, email)
        state.record(
            "identity.leave",
            email,
            "done",
            policy=LeaverPolicy.DELETE.value,
            account=deleted,
            closed_grants=closed,
            withdrawn_requests=withdrawn,
            steps=steps_data(result.steps),
        )
    return Leave(
        identities.get(state.db, email),
        result,
        policy=LeaverPolicy.DELETE,
        done=NO_ACCOUNT if deleted is None else DELETED,
        account=deleted,
    )


def _disabled_record(
    state: State, email: str, result: OperationResult | None
) -> tuple[str | None, str | None]:
    """The account disabled: linked (now, if no record had it) and marked disabled since the
    first time, in the caller's transaction; with no account, a record of one is dropped.
    Returns its name and when its deletion is due (None, None: there was none)."""
    ref = None if result is None else result.account
    record = accounts.find(state, email)
    if ref is not None and (record is None or record.native_id != ref.id):
        record = accounts.link(state, email, ref.id, ref.name, synced={}, why=f"{REASON}; disabled")
    elif ref is None and record is not None:
        accounts.drop(state, record, why=f"{REASON}; no account to disable")
        record = None
    if record is None:
        return None, None
    since = accounts.mark_disabled(state, record, why=REASON)
    left = identities.get(state.db, email).left_at
    name = ref.name if ref is not None else record.name
    return name, deletion_due(state.settings, since, left)


def _close_disabled(state: State, email: str, result: OperationResult | None) -> Leave:
    """The disable recorded with everything else, in one transaction, and audited: the
    account stays linked (linked now if no record had it), marked disabled since the first
    time; with no account, a record of one is dropped."""
    with transaction(state.db):
        name, due = _disabled_record(state, email, result)
        closed, withdrawn = _close_requests(state, email)
        state.record(
            "identity.leave",
            email,
            "done",
            policy=LeaverPolicy.DISABLE.value,
            account=name,
            disabled=name is not None,
            delete_due=due,
            closed_grants=closed,
            withdrawn_requests=withdrawn,
            steps=steps_data(() if result is None else result.steps),
        )
    return Leave(
        identities.get(state.db, email),
        result,
        policy=LeaverPolicy.DISABLE,
        done=NO_ACCOUNT if name is None else DISABLED,
        account=name,
        delete_due=due,
    )


# --- a leaver in every AWS account of an organization ----------------------------------------


def _in_one(target: Target, email: str) -> Place:
    """The person's account deleted (or disabled) in one application, by email whether or
    not IDHub has a record of it there, and IDHub's record of it brought in line."""
    state, runtime = target.state, target.runtime
    account_id = state.account_id
    try:
        if state.settings.disables:
            try:
                maybe: OperationResult | None = runtime.disable({"email": email})
            except NotFound:
                maybe = None
            with transaction(state.db):
                name, due = _disabled_record(state, email, maybe)
            done = NO_ACCOUNT if name is None else DISABLED
            return Place(state.application, account_id, done, name, due, maybe)
        result = runtime.delete({"email": email})
        with transaction(state.db):
            deleted = _deleted_record(state, email, result)
        done = NO_ACCOUNT if deleted is None else DELETED
        return Place(state.application, account_id, done, deleted, None, result)
    except ConnectorError as exc:
        return Place(state.application, account_id, FAILED, error=exc.message)


def _everywhere(state: State, targets: Sequence[Target], email: str) -> Leave:
    """The leave in every application; grants and requests closed once every account is
    done. An account that failed is reported (the error names it) after the others were
    done: the person stays marked as left, and running the leave again finishes the job."""
    places = tuple(_in_one(target, email) for target in targets)
    failed = [place for place in places if place.done == FAILED]
    policy = LeaverPolicy.DISABLE if state.settings.disables else LeaverPolicy.DELETE
    if failed:
        error = ConnectorError(
            "; ".join(f"in {place.application}: {place.error}" for place in failed)
        )
        _failed(state, email, error)
        raise error
    with transaction(state.db):
        closed, withdrawn = _close_requests(state, email)
        state.record(
            "identity.leave",
            email,
            "done",
            policy=policy.value,
            accounts={place.application: place.account for place in places},
            closed_grants=closed,
            withdrawn_requests=withdrawn,
        )
    acted = [place for place in places if place.done != NO_ACCOUNT]
    return Leave(
        identities.get(state.db, email),
        None,
        policy=policy,
        done=acted[0].done if acted else NO_ACCOUNT,
        account=", ".join(f"{p.account}@{p.account_id}" for p in acted) or None,
        places=places,
    )
