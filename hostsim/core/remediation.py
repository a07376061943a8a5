"""Remediation: carrying out what a reconciliation plan decided, one finding at a time.

IDHub's own records change in short transactions (link a correlated account, start a stale
clock, drop a stale account and close its grants, take an attribute from the application);
the application changes through the connector (revoke, grant, modify, create, delete), whose
operations are idempotent. Each finding ends with its outcome (``done``, ``unchanged`` or
``failed: why``) and an audit entry, and one failure does not stop the others: the next run
finds what is still different.
"""

from __future__ import annotations

from collections.abc import Callable

from attrs import evolve

from hostsim.contract.errors import ConnectorError
from hostsim.contract.model import Account, OperationResult
from hostsim.core import accounts, grants, identities
from hostsim.core.fulfilment import create_payload, link_created, modify_payload
from hostsim.core.plan import Action, Finding, Kind, Plan, app_email, app_value
from hostsim.core.state import State
from hostsim.core.store import transaction
from hostsim.runtime import Runtime


def _outcome(result: OperationResult) -> str:
    return "done" if result.changed else "unchanged"


def _through_connector(
    state: State, finding: Finding, run: int, call: Callable[[], OperationResult]
) -> tuple[Finding, OperationResult | None]:
    """Run one connector call for a finding; its outcome audited either way."""
    result: OperationResult | None = None
    try:
        result = call()
        outcome = _outcome(result)
    except ConnectorError as exc:
        outcome = f"failed: {exc.message}"
    with transaction(state.db):
        state.record(
            f"remediate.{finding.action.value}",
            finding.account,
            outcome,
            run=run,
            kind=finding.kind.value,
            about=finding.subject,
            idhub=finding.idhub,
            app=finding.app,
        )
    return evolve(finding, outcome=outcome), result


def _bookkeeping(state: State, plan: Plan, run: int) -> dict[int, Finding]:
    """IDHub-only changes that need no connector, in one transaction: links and stale
    clocks. Returns the findings it finished, by the identity of the planned finding."""
    done: dict[int, Finding] = {}
    with transaction(state.db):
        for finding in plan.findings:
            if finding.action is Action.LINK:
                user = plan.matched[finding.account]
                accounts.link(
                    state,
                    finding.account,
                    user.id,
                    user.user_name,
                    synced={},
                    why=f"correlated by email in reconciliation run {run}",
                )
                done[id(finding)] = evolve(finding, outcome="done")
            elif finding.kind is Kind.MISSING and finding.action is Action.REPORT:
                record = accounts.find(state, finding.account)
                if record is not None:
                    accounts.mark_missing(state, record)
                done[id(finding)] = finding
    return done


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


def _recreate(state: State, runtime: Runtime, finding: Finding, run: int) -> Finding:
    identity = identities.get(state.db, finding.account)
    held = [grant.entitlement for grant in grants.held(state.db, identity.email)]
    done, result = _through_connector(
        state, finding, run, lambda: runtime.create(create_payload(identity, held))
    )
    if result is not None:
        link_created(state, identity, result, f"recreated by reconciliation run {run}")
    return done


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
    finished = _bookkeeping(state, plan, run)
    by_account: dict[str, list[Finding]] = {email: [] for email in plan.matched}
    for finding in plan.findings:
        by_account.setdefault(finding.account, []).append(finding)
    for email, findings in by_account.items():
        user = plan.matched.get(email)
        pushes = [f for f in findings if f.action is Action.PUSH]
        pulls = [f for f in findings if f.action is Action.PULL]
        for finding in findings:
            if id(finding) in finished or finding.action in (Action.PUSH, Action.PULL):
                continue
            finished[id(finding)] = _one(state, runtime, finding, run, user)
        if pushes and user is not None:
            user = _push(state, runtime, user, pushes, run=run, finished=finished)
        if pulls:
            for planned, done in zip(pulls, _pull(state, pulls, run), strict=True):
                finished[id(planned)] = done
        if user is not None:
            _remember(state, plan, email, user, [finished.get(id(f), f) for f in findings])
    return tuple(finished.get(id(f), f) for f in plan.findings)


def _push(
    state: State,
    runtime: Runtime,
    user: Account,
    pushes: list[Finding],
    *,
    run: int,
    finished: dict[int, Finding],
) -> Account:
    """One modify carrying every attribute pushed to an account; returns it (renamed)."""
    payload = modify_payload(app_email(user), {f.subject: f.idhub for f in pushes})
    first, result = _through_connector(state, pushes[0], run, lambda: runtime.modify(payload))
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


def _one(
    state: State, runtime: Runtime, finding: Finding, run: int, user: Account | None
) -> Finding:
    """A finding fixed on its own (everything but attribute pushes and pulls)."""
    if finding.action is Action.REPORT:
        return finding
    if finding.action is Action.DROP:
        return _drop(state, finding, run)
    if finding.action is Action.CREATE:
        return _recreate(state, runtime, finding, run)
    if finding.action is Action.DELETE:
        return _through_connector(
            state, finding, run, lambda: runtime.delete({"email": finding.account})
        )[0]
    assert user is not None
    call = runtime.revoke if finding.action is Action.REVOKE else runtime.grant
    payload = {"email": app_email(user), "entitlement": finding.subject}
    return _through_connector(state, finding, run, lambda: call(payload))[0]
