"""Remediation: carrying out what a reconciliation plan decided, one finding at a time.

IDHub's own records change in short transactions (link a correlated account, start a stale
clock, drop a stale account and close its grants, take an attribute from the application);
the application changes through the connector (revoke, grant, modify, create, delete, disable,
enable), whose operations are idempotent. Each finding ends with its outcome (``done``,
``unchanged``, ``skipped: why``, ``undone: why`` or ``failed: why``) and an audit entry, and
one failure does not stop the others: the next run finds what is still different.

Every connector call is audited twice: its intent (``reconcile.remedy``, ``started``) before it
is sent and its outcome (``remediate.ACTION``) after it answered, both carrying the run and the
remedy's position in the plan. A run killed between the two leaves an intent without an
outcome, which the next run reports as ``interrupted`` (:func:`.reconciliation.close_interrupted`).

A leaver always wins (:mod:`.leavers`): the remedies for one person run under that person's lock,
nothing that gives (create, grant, push) is sent for a person who left, and a create or grant
that finds afterwards that its person left while it ran is undone and says so.
"""

from __future__ import annotations

from collections.abc import Callable

from attrs import evolve, frozen

from hostsim.contract.errors import ConnectorError
from hostsim.contract.model import Account, OperationResult
from hostsim.core import accounts, grants, identities
from hostsim.core.claims import Busy, acting_for
from hostsim.core.fulfilment import (
    create_payload,
    left_on,
    link_created,
    modify_payload,
    undo_for_leaver,
)
from hostsim.core.plan import GIVING, Action, Finding, Kind, Plan, app_email, app_value
from hostsim.core.state import State
from hostsim.core.store import transaction
from hostsim.runtime import Runtime

#: The audit action of a remedy's intent, written before its connector call.
INTENT = "reconcile.remedy"


@frozen
class _Run:
    """One run's remedies: what they need besides the finding at hand."""

    state: State
    runtime: Runtime
    plan: Plan
    run: int
    #: Each planned finding's position in the plan (by identity), the key of its audit entries.
    positions: dict[int, int]

    def position(self, finding: Finding) -> int:
        return self.positions[id(finding)]


def _outcome(result: OperationResult) -> str:
    return "done" if result.changed else "unchanged"


def _audited(
    ctx: _Run, finding: Finding, action: str, result: str, lost_race: str | None = None
) -> None:
    """One audit entry about a remedy (its intent or its outcome), inside the caller's
    transaction; ``lost_race`` says what a remedy undid because its person left meanwhile."""
    detail: dict[str, object] = {
        "run": ctx.run,
        "remedy": ctx.position(finding),
        "what": finding.action.value,
        "kind": finding.kind.value,
        "about": finding.subject,
        "idhub": finding.idhub,
        "app": finding.app,
    }
    if lost_race is not None:
        detail["lost_race"] = lost_race
    ctx.state.audit.append(
        ctx.state.now(), ctx.state.actor, action, finding.account, result, detail=detail
    )


def _through_connector(
    ctx: _Run,
    finding: Finding,
    call: Callable[[], OperationResult],
    on_done: Callable[[OperationResult], None] | None = None,
) -> tuple[Finding, OperationResult | None]:
    """One connector call for a finding: intent audited before, outcome after. ``on_done``
    records what the call's success means to IDHub, with the outcome. A call that gave a person
    who left meanwhile something is undone instead."""
    with transaction(ctx.state.db):
        _audited(ctx, finding, INTENT, "started")
    result: OperationResult | None = None
    try:
        result = call()
        outcome = _outcome(result)
    except ConnectorError as exc:
        outcome = f"failed: {exc.message}"
    with transaction(ctx.state.db):  # the check and the record together
        lost = finding.action in GIVING and left_on(ctx.state, finding.account) is not None
        if not lost:
            if result is not None and on_done is not None:
                on_done(result)
            _audited(ctx, finding, f"remediate.{finding.action.value}", outcome)
    if lost:
        return _undo(ctx, finding), None
    return evolve(finding, outcome=outcome), result


def _undo(ctx: _Run, finding: Finding) -> Finding:
    """The person left while the remedy ran: take back the account or access it gave."""
    email = finding.account
    created = finding.action is Action.CREATE
    try:
        if finding.action is Action.ENABLE:
            ctx.runtime.disable({"email": email})
            what = "the account it enabled was disabled again"
        else:
            native = [] if created else [ctx.state.native_entitlement(finding.subject)]
            what, _ = undo_for_leaver(ctx.runtime, email, native, created=created)
        outcome = f"undone: {email} left while this ran; {what}"
    except ConnectorError as exc:
        what = f"undoing it failed: {exc.message}"
        outcome = (
            f"failed: {email} left while this ran, and {what}; `hostsim identity remove "
            f"{email}` deletes the account"
        )
    lost_race = f"reconciliation run {ctx.run} ({finding.action.value} {finding.subject}): {what}"
    with transaction(ctx.state.db):
        _audited(ctx, finding, f"remediate.{finding.action.value}", outcome, lost_race=lost_race)
    return evolve(finding, outcome=outcome)


def _skipped_for_leaver(ctx: _Run, finding: Finding, left: str) -> Finding:
    outcome = f"skipped: {finding.account} left on {left}"
    with transaction(ctx.state.db):
        _audited(ctx, finding, f"remediate.{finding.action.value}", outcome)
    return evolve(finding, outcome=outcome)


def _bookkeeping(ctx: _Run) -> dict[int, Finding]:
    """IDHub-only changes that need no connector, in one transaction: links and stale
    clocks. Returns the findings it finished, by the identity of the planned finding."""
    state, plan, run = ctx.state, ctx.plan, ctx.run
    done: dict[int, Finding] = {}
    with transaction(state.db):
        for finding in plan.findings:
            if finding.action is Action.LINK:
                done[id(finding)] = _link(state, plan, finding, run)
            elif finding.kind is Kind.MISSING and finding.action is Action.REPORT:
                record = accounts.find(state, finding.account)
                if record is not None:
                    accounts.mark_missing(state, record)
                done[id(finding)] = finding
    return done


def _link(state: State, plan: Plan, finding: Finding, run: int) -> Finding:
    left = left_on(state, finding.account)
    if left is not None:  # left since the plan was made: the account is the leaver's to delete
        return evolve(finding, outcome=f"skipped: {finding.account} left on {left}")
    user = plan.matched[finding.account]
    accounts.link(
        state,
        finding.account,
        user.id,
        user.user_name,
        synced={},
        why=f"correlated by email in reconciliation run {run}",
    )
    return evolve(finding, outcome="done")


def _drop(state: State, finding: Finding, run: int) -> Finding:
    with transaction(state.db):
        record = accounts.find(state, finding.account)
        if record is None:
            return evolve(finding, outcome="unchanged")
        reason = f"account missing, dropped by reconciliation run {run}"
        accounts.drop(state, record, why=reason)
        closed = grants.close_all(state, finding.account, reason)
        state.record("remediate.drop", finding.account, "done", run=run, closed_grants=closed)
    return evolve(finding, outcome="done")


def _pull(state: State, pulls: list[Finding], run: int) -> list[Finding]:
    with transaction(state.db):
        before = identities.get(state.db, pulls[0].account)
        after = before
        for finding in pulls:
            after = after.with_value(finding.subject, finding.app)
        identities.save(state, before, after, why=f"taken from the application, run {run}")
    return [evolve(finding, outcome="done") for finding in pulls]


def _recreate(ctx: _Run, finding: Finding) -> Finding:
    identity = identities.get(ctx.state.db, finding.account)
    held = [
        ctx.state.native_entitlement(grant.entitlement)
        for grant in grants.held(ctx.state.db, identity.email)
        if ctx.state.owns(grant.entitlement)
    ]

    def linked(result: OperationResult) -> None:
        link_created(ctx.state, identity, result, f"recreated by reconciliation run {ctx.run}")

    return _through_connector(
        ctx, finding, lambda: ctx.runtime.create(create_payload(identity, held)), linked
    )[0]


def _delete(ctx: _Run, finding: Finding) -> Finding:
    """Delete an orphan, or the account of a person who left (IDHub's record of it dropped
    and their grants closed once it is gone)."""

    def forgotten(_: OperationResult) -> None:
        record = accounts.find(ctx.state, finding.account)
        if record is not None and left_on(ctx.state, finding.account) is not None:
            reason = f"the identity left; account deleted by reconciliation run {ctx.run}"
            accounts.drop(ctx.state, record, why=reason)
            grants.close_all(ctx.state, finding.account, reason)

    call = lambda: ctx.runtime.delete({"email": finding.account})  # noqa: E731
    return _through_connector(ctx, finding, call, forgotten)[0]


def _disable(ctx: _Run, finding: Finding) -> Finding:
    """Disable the account of a person who left (leaver policy ``disable``), and record it as
    the leave does: linked (from the finding when IDHub had no record), marked disabled, their
    grants closed."""

    def recorded(result: OperationResult) -> None:
        if left_on(ctx.state, finding.account) is None:
            return
        record = accounts.find(ctx.state, finding.account)
        ref = result.account
        reason = f"the identity left; account disabled by reconciliation run {ctx.run}"
        if record is None:
            native_id, name = (
                (ref.id, ref.name) if ref is not None else (finding.app, finding.subject)
            )
            record = accounts.link(
                ctx.state, finding.account, native_id, name, synced={}, why=reason
            )
        accounts.mark_disabled(ctx.state, record, why=reason)
        grants.close_all(ctx.state, finding.account, reason)

    call = lambda: ctx.runtime.disable({"email": finding.account})  # noqa: E731
    return _through_connector(ctx, finding, call, recorded)[0]


def _enable(ctx: _Run, finding: Finding) -> Finding:
    """Enable the disabled account of a person who has not left (``restore``)."""

    def recorded(_: OperationResult) -> None:
        record = accounts.find(ctx.state, finding.account)
        if record is not None and record.disabled_at is not None:
            why = f"enabled by reconciliation run {ctx.run}"
            accounts.mark_enabled(ctx.state, record, why=why)

    call = lambda: ctx.runtime.enable({"email": finding.account})  # noqa: E731
    return _through_connector(ctx, finding, call, recorded)[0]


def _agreed(
    plan: Plan, identity: str, user: Account, findings: list[Finding]
) -> dict[str, str | None]:
    """The values both sides hold after the run: the baseline of bi-directional sync."""
    agreed = dict(plan.baselines.get(identity, {}))
    drifted = {f.subject: f for f in findings if f.kind is Kind.ATTRIBUTE}
    for name in plan.attributes:
        finding = drifted.get(name)
        if finding is None:  # no drift: both sides hold the application's value
            agreed[name] = app_value(user, name)
        elif finding.outcome == "done":
            agreed[name] = finding.idhub if finding.action is Action.PUSH else finding.app
    return agreed


def carry_out(state: State, runtime: Runtime, plan: Plan, run: int) -> tuple[Finding, ...]:
    """Every finding with its outcome, in the plan's order. Every account found is
    remembered (its current name, the agreed values, no stale clock), drift or not."""
    ctx = _Run(state, runtime, plan, run, {id(f): i for i, f in enumerate(plan.findings)})
    finished = _bookkeeping(ctx)
    by_account: dict[str, list[Finding]] = {email: [] for email in plan.matched}
    for finding in plan.findings:
        by_account.setdefault(finding.account, []).append(finding)
    for email, findings in by_account.items():
        try:
            with acting_for(state.path, email, what=f"not remedied by run {run}"):
                _for_account(ctx, email, findings, finished)
        except Busy as exc:  # a live process acts for the person: the next run retries
            for finding in findings:
                if id(finding) not in finished and finding.action is not Action.REPORT:
                    finished[id(finding)] = evolve(finding, outcome=f"failed: {exc.message}")
    return tuple(finished.get(id(f), f) for f in plan.findings)


def _for_account(
    ctx: _Run, email: str, findings: list[Finding], finished: dict[int, Finding]
) -> None:
    """The remedies of one account, under its person's lock."""
    user = ctx.plan.matched.get(email)
    pushes = [f for f in findings if f.action is Action.PUSH]
    pulls = [f for f in findings if f.action is Action.PULL]
    for finding in findings:
        if id(finding) in finished or finding.action in (Action.PUSH, Action.PULL):
            continue
        finished[id(finding)] = _one(ctx, finding, user)
    if pushes and user is not None:
        user = _push(ctx, user, pushes, finished=finished)
    if pulls:
        for planned, done in zip(pulls, _pull(ctx.state, pulls, ctx.run), strict=True):
            finished[id(planned)] = done
    if user is not None:
        _remember(ctx.state, ctx.plan, email, user, [finished.get(id(f), f) for f in findings])


def _push(
    ctx: _Run, user: Account, pushes: list[Finding], *, finished: dict[int, Finding]
) -> Account:
    """One modify carrying every attribute pushed to an account; returns it (renamed)."""
    left = left_on(ctx.state, pushes[0].account)
    if left is not None:
        first, result = _skipped_for_leaver(ctx, pushes[0], left), None
    else:
        payload = modify_payload(app_email(user), {f.subject: f.idhub for f in pushes})
        first, result = _through_connector(ctx, pushes[0], lambda: ctx.runtime.modify(payload))
    for finding in pushes:
        finished[id(finding)] = evolve(finding, outcome=first.outcome)
    if result is not None and result.account is not None:
        return evolve(user, user_name=result.account.name)
    return user


def _remember(state: State, plan: Plan, email: str, user: Account, findings: list[Finding]) -> None:
    with transaction(state.db):
        record = accounts.find(state, email)
        if record is not None:
            accounts.seen(state, record, user.user_name, _agreed(plan, email, user, findings))


def _one(ctx: _Run, finding: Finding, user: Account | None) -> Finding:
    """A finding fixed on its own (everything but attribute pushes and pulls)."""
    if finding.action is Action.REPORT:
        return finding
    if finding.action is Action.DROP:
        return _drop(ctx.state, finding, ctx.run)
    left = left_on(ctx.state, finding.account)
    if finding.action in GIVING and left is not None:
        return _skipped_for_leaver(ctx, finding, left)
    if finding.action is Action.CREATE:
        return _recreate(ctx, finding)
    if finding.action is Action.DELETE:
        return _delete(ctx, finding)
    if finding.action is Action.DISABLE:
        return _disable(ctx, finding)
    if finding.action is Action.ENABLE:
        return _enable(ctx, finding)
    assert user is not None
    call = ctx.runtime.revoke if finding.action is Action.REVOKE else ctx.runtime.grant
    native = ctx.state.native_entitlement(finding.subject)
    payload = {"email": app_email(user), "entitlement": native}
    return _through_connector(ctx, finding, lambda: call(payload))[0]
