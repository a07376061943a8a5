"""Reconciliation: IDHub's records against what the connector fetches, account by account.

One run reads the application once (users, and what each holds directly: the well-known
``access`` read when the connector type declares it, else IAM's groups and directly attached
policies), matches each IDHub account to an application account by its native id (so a rename
is not a new account), and finds, per account:

- ``orphan-account``: in the application, no identity owns it;
- ``leaver-account``: the account of a person who left, in the application (a leaver that did
  not finish, or work that ran while they left: deleted with ``delete-orphans``, never
  restored, granted or pushed to), or only in IDHub's records (dropped). Under the leaver
  policy ``disable`` a leaver's disabled account is expected until its deletion is due
  (``delete_after_days`` after it was disabled): no finding; one still enabled (or whose
  disable IDHub never recorded) is disabled by ``delete-orphans``, and one past its due date
  deleted by it;
- ``disabled-account``: the account of a person who has not left is disabled in the
  application (``restore`` enables it);
- ``correlated``: in the application, not yet linked, and its email is an identity's: linked;
- ``missing-account``: IDHub's account is gone from the application (the stale clock starts;
  after ``stale_days`` it is ``stale-account`` and IDHub drops it and closes its grants);
- ``granted-out-of-band``: access in the application that IDHub did not grant;
- ``removed-out-of-band``: access IDHub granted that the application no longer shows;
- ``attribute-drift``: an attribute differs, with the sync direction that decides the fix.

The whole plan is made before anything changes. Removals (dropping stale accounts, deleting
orphans) are counted against the deletion threshold: a run that would remove more than that
share of all accounts is refused as a whole and changes nothing, because that is what a
misconfigured scope or an empty answer from the application looks like. Otherwise the
remedies asked for are carried out (:mod:`.remediation`), each intent and outcome recorded.
Every run is logged with its findings and counts.

A run holds its claim (:mod:`.claims`) from the moment it is logged ``running``, and the
operating system releases it when the process ends, however it ends. The next run closes every
``running`` run whose claim is free as ``interrupted``, listing the remedies whose intent was
audited but whose outcome never was; a run in progress elsewhere, however long, is left alone.

In an organization each in-scope AWS account is an application of its own, reconciled by a
run of its own through the runtime bound to it (:mod:`.applications`): its findings, its
population for the deletion threshold and its failure are that account's. An account that
could not be read fails its run; it is never read as an account whose users are all gone.

The connector finds an account by its email alone, so an account without one, or whose email
another account also answers to, is neither correlated nor changed through the connector: its
findings are reported, to be fixed by hand, rather than sent to whichever account the email
reaches.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import ExitStack, suppress

from attrs import evolve, frozen

from hostsim.contract.errors import ConnectorError
from hostsim.contract.model import AccessRow, Account, CommonFetchKind, FetchKind, PolicyAccess
from hostsim.core import accounts, grants, identities, remediation
from hostsim.core.accounts import AccountRecord
from hostsim.core.claims import run_claim
from hostsim.core.identities import Identity
from hostsim.core.leavers import deletion_due
from hostsim.core.plan import (
    BY_EMAIL,
    Action,
    Finding,
    Kind,
    Options,
    Plan,
    Remedy,
    Report,
    app_email,
    app_value,
)
from hostsim.core.settings import SyncDirection
from hostsim.core.state import State, parse_timestamp
from hostsim.core.store import transaction
from hostsim.runtime import Runtime

SECONDS_PER_DAY = 86_400


# --- reading the application --------------------------------------------------------------


@frozen
class Snapshot:
    users: tuple[Account, ...]
    #: What each account holds directly (what ``grant`` gives: its groups and directly held
    #: policies or assignments; what it holds through a group comes with the membership), by
    #: user id, as IDHub names it in this application (qualified in an organization).
    held: dict[str, frozenset[str]]
    #: The attributes the connector maps (its schema), compared with the identity's.
    attributes: tuple[str, ...]
    #: Those the target always holds, defaulted by the connector when IDHub gives none
    #: (``AttributeSpec.defaulted``): no drift while IDHub has no value to push.
    defaulted: frozenset[str] = frozenset()


def read(state: State, runtime: Runtime) -> Snapshot:
    """The application's accounts and direct access, read through a runtime bound to the
    state's account in an organization (never the unbound one: an account that could not be
    read must fail this run, not look like an account with no users).

    A connector type that declares the well-known ``access`` read is read through it (an
    account's holdings are its ``direct`` rows; ``group:NAME`` rows are provenance, not
    grants); any other through IAM's: each user's groups and ``policy-access``'s direct rows.
    """
    users = tuple(row for row in runtime.fetch(FetchKind.USERS.value) if isinstance(row, Account))
    held: dict[str, set[str]] = {}
    if CommonFetchKind.ACCESS in runtime.connector_type.fetch_kinds:
        for row in runtime.fetch(CommonFetchKind.ACCESS.value):
            if isinstance(row, AccessRow) and row.via == "direct":
                held.setdefault(row.user_id, set()).add(state.entitlement_id(row.entitlement))
    else:
        for user in users:
            groups = {state.entitlement_id(f"group:{name}") for name in user.groups}
            held.setdefault(user.id, set()).update(groups)
        for row in runtime.fetch(FetchKind.POLICY_ACCESS.value):
            if isinstance(row, PolicyAccess) and row.via == "direct":
                entitlement = state.entitlement_id(f"policy:{row.policy_arn}")
                held.setdefault(row.user_id, set()).add(entitlement)
    specs = runtime.schema().attributes
    attributes = tuple(spec.name for spec in specs)
    defaulted = frozenset(spec.name for spec in specs if spec.defaulted)
    return Snapshot(users, {k: frozenset(v) for k, v in held.items()}, attributes, defaulted)


def app_access(account: Account, snapshot: Snapshot) -> set[str]:
    return set(snapshot.held.get(account.id, ()))


# --- planning -------------------------------------------------------------------------------


def _days_missing(state: State, since: str | None) -> float:
    if since is None:
        return 0.0
    return (state.clock() - parse_timestamp(since)).total_seconds() / SECONDS_PER_DAY


def _match(
    records: list[AccountRecord], users: Iterable[Account]
) -> tuple[dict[str, Account], list[Account]]:
    """IDHub accounts to application accounts: by native id; by name only for a record that
    has no native id yet. Returns the matches and the application accounts left over."""
    by_id = {user.id: user for user in users}
    by_name = {user.user_name.lower(): user for user in by_id.values()}
    matched: dict[str, Account] = {}
    for record in records:
        found = by_id.get(record.native_id or "") if record.native_id else None
        if found is None and not record.native_id:
            found = by_name.get(record.name.lower())
        if found is not None:
            matched[record.identity] = found
    taken = {user.id for user in matched.values()}
    return matched, [user for user in by_id.values() if user.id not in taken]


def _missing(state: State, record: AccountRecord, options: Options) -> Finding:
    if Remedy.RESTORE in options.remedies:
        return Finding(record.identity, Kind.MISSING, record.name, action=Action.CREATE)
    days = _days_missing(state, record.missing_since)
    since = record.missing_since or state.now()
    if days >= options.stale_days:
        return Finding(
            record.identity,
            Kind.STALE,
            record.name,
            action=Action.DROP,
            detail=f"missing since {since} ({days:.1f} days; stale after {options.stale_days})",
        )
    return Finding(
        record.identity,
        Kind.MISSING,
        record.name,
        detail=f"missing since {since}; dropped after {options.stale_days} days",
    )


def _access(
    identity: Identity, user: Account, snapshot: Snapshot, held: set[str], options: Options
) -> list[Finding]:
    found = []
    have = app_access(user, snapshot)
    for entitlement in sorted(have - held):
        fix = Remedy.REVOKE in options.remedies
        found.append(
            Finding(
                identity.email,
                Kind.GRANTED_OUT_OF_BAND,
                entitlement,
                idhub=None,
                app="held",
                action=Action.REVOKE if fix else Action.REPORT,
            )
        )
    for entitlement in sorted(held - have):
        fix = Remedy.RESTORE in options.remedies
        found.append(
            Finding(
                identity.email,
                Kind.REMOVED_OUT_OF_BAND,
                entitlement,
                idhub="granted",
                app=None,
                action=Action.GRANT if fix else Action.REPORT,
            )
        )
    return found


def _attribute_action(
    direction: SyncDirection, idhub: str | None, app: str | None, base: str | None, known: bool
) -> tuple[Action, str]:
    """Which side a differing attribute is fixed on, and why."""
    if direction is SyncDirection.IDHUB_TO_APP:
        return Action.PUSH, ""
    if direction is SyncDirection.APP_TO_IDHUB:
        return Action.PULL, ""
    if direction is SyncDirection.NO_SYNC:
        return Action.REPORT, "not synchronised (no-sync)"
    if known and app == base:
        return Action.PUSH, "changed in IDHub since the last sync"
    if known and idhub == base:
        return Action.PULL, "changed in the application since the last sync"
    return Action.REPORT, "changed on both sides since the last sync; resolve by hand"


def _attributes(
    state: State,
    identity: Identity,
    user: Account,
    record: AccountRecord | None,
    *,
    snapshot: Snapshot,
    options: Options,
) -> list[Finding]:
    found = []
    baseline = record.synced if record is not None else {}
    for name in snapshot.attributes:
        idhub, app = identity.value(name) or None, app_value(user, name)
        if idhub == app:
            continue
        direction = state.settings.direction(name)
        if idhub is None and name in snapshot.defaulted and not direction.pulls:
            continue  # the connector's own default; pushing "none" cannot clear it
        action, detail = _attribute_action(
            direction, idhub, app, baseline.get(name), name in baseline
        )
        if Remedy.ATTRIBUTES not in options.remedies and action is not Action.REPORT:
            detail = f"would {action.value}" + (f" ({detail})" if detail else "")
            action = Action.REPORT
        found.append(
            Finding(
                identity.email,
                Kind.ATTRIBUTE,
                name,
                idhub=idhub,
                app=app,
                direction=direction.value,
                action=action,
                detail=detail,
            )
        )
    return found


def _ambiguous(users: Iterable[Account]) -> set[str]:
    """Emails more than one application account answers to (one's name, another's email).

    The connector finds the account to change by its email alone (the contract's identifier),
    so a remedy sent for such an email could reach the other account: a hand-made copy tagged
    with a person's email, asked to be deleted as an orphan, would delete the person's own.
    """
    seen: Counter[str] = Counter()
    for user in users:
        seen.update({app_email(user), user.user_name.lower()})
    return {key for key, times in seen.items() if times > 1}


def _by_hand(user: Account, ambiguous: set[str]) -> str:
    """Why the connector cannot be trusted to reach this account by its email, or ''."""
    if user.email is None:
        return f"{user.user_name} has no email the connector can find it by; fix it by hand"
    if app_email(user) in ambiguous:
        return (
            f"more than one account answers to {app_email(user)}, the connector could change "
            "the wrong one; fix it by hand"
        )
    return ""


def _reported(findings: list[Finding], why: str) -> list[Finding]:
    """The findings with every remedy through the connector turned into a report saying why."""
    return [
        evolve(f, action=Action.REPORT, detail=why) if why and f.action in BY_EMAIL else f
        for f in findings
    ]


def _unowned(
    state: State,
    identity: Identity | None,
    user: Account,
    ambiguous: set[str],
    options: Options,
    *,
    record: AccountRecord | None = None,
) -> Finding | None:
    """An application account no identity may hold: nobody's (an orphan), or the account of a
    person who left (a leaver's, which nothing should have left behind or recreated; under
    the leaver policy ``disable``, a disabled one awaiting its deletion is expected: None)."""
    fix = Remedy.DELETE_ORPHANS in options.remedies
    why = _by_hand(user, ambiguous)
    if identity is not None and identity.left_at is not None:
        action, detail = _leaver_action(state, identity, user, record)
        if action is None:
            return None
        return Finding(
            identity.email,
            Kind.LEAVER,
            user.user_name,
            app=user.id,
            action=action if fix and not why else Action.REPORT,
            detail=why or detail,
        )
    return Finding(
        app_email(user) if identity is None else identity.email,
        Kind.ORPHAN,
        user.user_name,
        app=user.id,
        action=Action.DELETE if fix and not why else Action.REPORT,
        detail=why,
    )


def _leaver_action(
    state: State, identity: Identity, user: Account, record: AccountRecord | None
) -> tuple[Action | None, str]:
    """What the leaver policy asks for a live account of a person who left, and why (None:
    nothing, it is disabled and its deletion is not due yet)."""
    left = f"{identity.email} left on {identity.left_at}"
    status = "enabled" if user.enabled else "disabled"
    settings = state.settings
    if not settings.disables:
        return Action.DELETE, (
            f"{left} and still has this account ({status}); delete it (--remediate "
            "delete-orphans, or `hostsim identity remove`)"
        )
    due = deletion_due(settings, None if record is None else record.disabled_at, identity.left_at)
    policy = f'leaver = "disable", delete_after_days = {settings.deletion_days}'
    if state.now() >= due:
        return Action.DELETE, (
            f"{left}; this {status} account was due to be deleted on {due} ({policy}); delete "
            "it (--remediate delete-orphans)"
        )
    if user.enabled:
        return Action.DISABLE, (
            f"{left} and this account is enabled ({policy}); disable it (--remediate "
            f"delete-orphans, or `hostsim identity remove`); its deletion is due on {due}"
        )
    if record is None or record.disabled_at is None:
        return Action.DISABLE, (
            f"{left}; this account is disabled but IDHub has no record of disabling it (a "
            "leave that did not finish); record it (--remediate delete-orphans, or "
            f"`hostsim identity remove`); its deletion is due on {due}"
        )
    return None, f"disabled; its deletion is due on {due}"


def _disabled(identity: Identity, user: Account, options: Options) -> list[Finding]:
    """The account of a person who has not left, disabled in the application."""
    if user.enabled:
        return []
    fix = Remedy.RESTORE in options.remedies
    return [
        Finding(
            identity.email,
            Kind.DISABLED,
            user.user_name,
            idhub="enabled",
            app="disabled",
            action=Action.ENABLE if fix else Action.REPORT,
            detail=f"{identity.email} has not left, but this account is disabled in the "
            "application; enable it (--remediate restore)",
        )
    ]


def _leavers_records(
    state: State,
    records: list[AccountRecord],
    matched: dict[str, Account],
    ambiguous: set[str],
    options: Options,
) -> list[Finding]:
    """IDHub's accounts of people who left (a leaver that did not finish, or work that ran
    while they left): never restored, granted or pushed to, so taken out of ``matched``. A
    live one is a leaver's account; the record of a gone one is dropped."""
    findings: list[Finding] = []
    for record in records:
        identity = identities.find(state.db, record.identity)
        if identity is None or identity.left_at is None:
            continue
        user = matched.pop(record.identity, None)
        if user is not None:
            finding = _unowned(state, identity, user, ambiguous, options, record=record)
            if finding is not None:
                findings.append(finding)
            continue
        findings.append(
            Finding(
                record.identity,
                Kind.LEAVER,
                record.name,
                action=Action.DROP,
                detail=f"{record.identity} left on {identity.left_at}; the account is gone from "
                "the application, IDHub forgets it",
            )
        )
    return findings


def _has_left(state: State, email: str) -> bool:
    identity = identities.find(state.db, email)
    return identity is not None and identity.left_at is not None


def plan(state: State, snapshot: Snapshot, options: Options) -> Plan:
    """Compare, decide, change nothing."""
    records = list(accounts.every(state))
    matched, unlinked = _match(records, snapshot.users)
    ambiguous = _ambiguous(snapshot.users)
    findings = _leavers_records(state, records, matched, ambiguous, options)
    left = {record.identity for record in records if _has_left(state, record.identity)}
    known = {record.identity: record for record in records}
    unowned = 0
    for user in sorted(unlinked, key=app_email):
        identity = identities.find(state.db, app_email(user))
        if (
            identity is not None
            and identity.left_at is None
            and identity.email not in matched
            and app_email(user) not in ambiguous
        ):
            findings.append(
                Finding(identity.email, Kind.CORRELATED, user.user_name, action=Action.LINK)
            )
            matched[identity.email] = user
            continue
        finding = _unowned(state, identity, user, ambiguous, options)
        if finding is not None:
            findings.append(finding)
        unowned += 1
    for record in records:
        if record.identity not in matched and record.identity not in left:
            findings.append(_missing(state, record, options))
    baselines: dict[str, dict[str, str | None]] = {}
    for email, user in sorted(matched.items()):
        identity = identities.get(state.db, email)
        linked = known.get(email)
        if linked is not None and linked.native_id != user.id:
            linked = evolve(linked, synced={})  # a different account now: no agreed values
        held = {g.entitlement for g in grants.held(state.db, email) if state.owns(g.entitlement)}
        found = _disabled(identity, user, options)
        found += _access(identity, user, snapshot, held, options)
        found += _attributes(state, identity, user, linked, snapshot=snapshot, options=options)
        findings += _reported(found, _by_hand(user, ambiguous))
        baselines[email] = dict(linked.synced) if linked is not None else {}
    return Plan(tuple(findings), len(records) + unowned, matched, baselines, snapshot.attributes)


# --- the run --------------------------------------------------------------------------------


def counts(findings: Iterable[Finding]) -> dict[str, int]:
    """How many findings of each kind, and how the remedies ended."""
    found: Counter[str] = Counter()
    for finding in findings:
        found[finding.kind.value] += 1
        if finding.action not in (Action.REPORT, Action.LINK):
            found[f"{finding.action.value}:{finding.outcome.split(':')[0] or 'planned'}"] += 1
    return dict(sorted(found.items()))


def _start(state: State, options: Options, held: ExitStack) -> int:
    """Log the run as ``running`` and hold its claim (taken before the row is committed, so
    no other process ever sees the run unclaimed while this one lives)."""
    with transaction(state.db):
        cursor = state.db.execute(
            "INSERT INTO reconciliation_runs (application, started_at, actor, options, status) "
            "VALUES (?, ?, ?, ?, 'running')",
            (
                state.application,
                state.now(),
                state.actor,
                json.dumps(
                    {
                        "remediate": sorted(r.value for r in options.remedies),
                        "stale_days": options.stale_days,
                        "deletion_threshold": options.deletion_threshold,
                    }
                ),
            ),
        )
        run = int(cursor.lastrowid or 0)
        held.enter_context(run_claim(state.path, run))
    return run


def _log_findings(state: State, run: int, findings: Iterable[Finding]) -> None:
    state.db.executemany(
        "INSERT INTO reconciliation_findings (run, account, kind, subject, idhub, app, "
        "direction, action, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                run,
                f.account,
                f.kind.value,
                f.subject,
                f.idhub,
                f.app,
                f.direction,
                f.action.value,
                f.outcome or f.detail,
            )
            for f in findings
        ],
    )


def finish(
    state: State, run: int, status: str, findings: tuple[Finding, ...], message: str
) -> Report:
    """Log the run with its findings and counts, and audit it."""
    tally = counts(findings)
    with transaction(state.db):
        _log_findings(state, run, findings)
        state.db.execute(
            "UPDATE reconciliation_runs SET finished_at = ?, status = ?, counts = ?, message = ? "
            "WHERE id = ?",
            (state.now(), status, json.dumps(tally), message, run),
        )
        state.record(
            "reconcile.run", state.application, status, run=run, counts=tally, message=message
        )
    return Report(run, status, findings, tally, message)


def reconcile(state: State, runtime: Runtime, options: Options) -> Report:
    """One reconciliation run: close runs a gone process left running, then read, plan,
    check the threshold, remedy, log."""
    close_interrupted(state)
    with ExitStack() as held:
        run = _start(state, options, held)
        try:
            return _run(state, runtime, options, run)
        except BaseException as exc:  # logged now rather than by the next run (best effort)
            with suppress(Exception):
                _close(state, run, f"it stopped on {type(exc).__name__}: {exc}")
            raise


def _run(state: State, runtime: Runtime, options: Options, run: int) -> Report:
    try:
        snapshot = read(state, runtime)
    except ConnectorError as exc:
        finish(state, run, "failed", (), f"reading the application failed: {exc.message}")
        raise
    planned = plan(state, snapshot, options)
    if planned.over_threshold(options.deletion_threshold):
        message = (
            f"refused: this run would remove {planned.removals} of {planned.population} "
            f"accounts, more than the deletion threshold of {options.deletion_threshold}%; "
            "nothing was changed (check the connector's scope, or raise --deletion-threshold "
            "if this is intended)"
        )
        refused = tuple(
            evolve(f, outcome="refused") if f.action is not Action.REPORT else f
            for f in planned.findings
        )
        return finish(state, run, "refused", refused, message)
    done = remediation.carry_out(state, runtime, planned, run)
    failed = any(f.outcome.startswith("failed") for f in done)
    return finish(state, run, "partial" if failed else "complete", done, "")


# --- interrupted runs -------------------------------------------------------------------------

#: The outcome of a remedy whose intent was audited but whose outcome never was.
INTERRUPTED = (
    "interrupted: the run's process ended while this was under way, so its outcome is "
    "unknown; the next run finds what is still different"
)


@frozen
class _Started:
    """A remedy a run audited the intent of, with its audited outcome (None: never)."""

    finding: Finding
    remedy: int
    outcome: str | None


def _started(state: State, run: int) -> list[_Started]:
    outcomes = {
        row["remedy"]: row["result"]
        for row in state.db.execute(
            "SELECT result, json_extract(detail, '$.remedy') AS remedy FROM audit "
            "WHERE action LIKE 'remediate.%' AND json_extract(detail, '$.run') = ? "
            "AND json_extract(detail, '$.remedy') IS NOT NULL",
            (run,),
        )
    }
    started = []
    for row in state.db.execute(
        "SELECT subject, detail FROM audit WHERE action = ? AND json_extract(detail, '$.run') = ? "
        "ORDER BY seq",
        (remediation.INTENT, run),
    ):
        detail = json.loads(row["detail"])
        finding = Finding(
            row["subject"],
            Kind(detail["kind"]),
            detail["about"],
            idhub=detail["idhub"],
            app=detail["app"],
            action=Action(detail["what"]),
        )
        started.append(_Started(finding, detail["remedy"], outcomes.get(detail["remedy"])))
    return started


def _close(state: State, run: int, why: str) -> None:
    """Log a run that never finished as ``interrupted``, with the remedies it started: their
    outcome where one was audited, ``interrupted`` (and now audited as such) where none was.
    Nothing happens if the run is no longer ``running`` (another process closed it)."""
    with transaction(state.db):
        row = state.db.execute(
            "SELECT status FROM reconciliation_runs WHERE id = ?", (run,)
        ).fetchone()
        if row is None or row["status"] != "running":
            return
        started = _started(state, run)
        dangling = [s for s in started if s.outcome is None]
        for one in dangling:
            state.record(
                f"remediate.{one.finding.action.value}",
                one.finding.account,
                INTERRUPTED,
                run=run,
                remedy=one.remedy,
                what=one.finding.action.value,
                kind=one.finding.kind.value,
                about=one.finding.subject,
            )
        message = f"interrupted: {why}"
        if dangling:
            count = "1 remedy was" if len(dangling) == 1 else f"{len(dangling)} remedies were"
            message += f"; {count} under way with no recorded outcome: "
            message += ", ".join(
                f"{s.finding.action.value} {s.finding.subject} ({s.finding.kind.value} of "
                f"{s.finding.account})"
                for s in dangling
            )
        message += "; the next run finds what is still different"
        findings = tuple(evolve(s.finding, outcome=s.outcome or INTERRUPTED) for s in started)
        finish(state, run, "interrupted", findings, message)


def close_interrupted(state: State) -> list[int]:
    """Close every run left ``running`` whose process is gone (its claim is free: the claim
    is released by the operating system when the process ends, however it ends, so a run in
    progress elsewhere, however long, is left alone). Returns the runs closed."""
    running = state.db.execute(
        "SELECT id FROM reconciliation_runs WHERE application = ? AND status = 'running' "
        "ORDER BY id",
        (state.application,),
    ).fetchall()
    closed = []
    for row in running:
        with run_claim(state.path, row["id"]) as gone:
            if gone:
                _close(state, row["id"], "the process running it ended before it finished")
                closed.append(row["id"])
    return closed


def runs(
    state: State, limit: int = 20, applications: Sequence[str] | None = None
) -> list[dict[str, object]]:
    """The latest runs, newest first, with their options and counts; of several
    ``applications`` (the accounts of an organization), each run naming its application."""
    chosen = [state.application] if applications is None else list(applications)
    marks = ", ".join("?" * len(chosen))
    rows = state.db.execute(
        f"SELECT * FROM reconciliation_runs WHERE application IN ({marks}) "
        "ORDER BY id DESC LIMIT ?",
        (*chosen, limit),
    ).fetchall()
    named = {} if applications is None else {"application": None}
    return [
        {
            **{key: row[key] for key in named},
            "run": row["id"],
            "started_at": row["started_at"],
            "finished_at": row["finished_at"],
            "actor": row["actor"],
            "status": row["status"],
            "options": json.loads(row["options"]),
            "counts": json.loads(row["counts"]),
            "message": row["message"],
        }
        for row in rows
    ]
