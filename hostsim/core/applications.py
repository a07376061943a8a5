"""The IDHub applications of one connector: one, or one per AWS account of an organization.

A connector that reaches one account is one application, named like its type (``aws-iam``).
Settings that span the accounts of an organization (``[aws-iam.organization]``) make each
in-scope AWS account an application of its own, ``aws-iam@ACCOUNT``: its accounts, catalog
entries (ids qualified ``@ACCOUNT``), reconciliation runs and deletion threshold are its own,
and the core acts there through the runtime bound to that account (``Runtime.for_account``),
handing the connector its own (unqualified) entitlement ids.

This module says which applications a command acts on: those in scope now (one read of the
organization, for commands that must reach every account), those the state file knows (for
the reports, which need no connector), and the one an entitlement belongs to (for a request).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from attrs import frozen

from hostsim.contract.errors import InvalidInput, NotFound
from hostsim.contract.model import TargetAccount
from hostsim.core.state import QUALIFIER, State
from hostsim.runtime import Runtime

#: ``aws-iam@111111111111``: the application of one AWS account.
_QUALIFIED = re.compile(r"^(?P<base>.+)@(?P<account>\d{12})$")
#: An AWS account id, as ``--account`` takes it.
ACCOUNT_ID = re.compile(r"^\d{12}$")


@frozen
class Target:
    """One application a command acts on: its state, the runtime bound to its account, and
    the account as the connector listed it (None for a connector of one account)."""

    state: State
    runtime: Runtime
    account: TargetAccount | None = None

    @property
    def label(self) -> str:
        return self.state.application


def name(base: str, account_id: str | None) -> str:
    """The application of ``account_id`` for a connector type named ``base``."""
    return base if account_id is None else f"{base}@{account_id}"


def account_of(application: str) -> str | None:
    """The AWS account an application is (None: the one application of its connector)."""
    found = _QUALIFIED.match(application)
    return None if found is None else found["account"]


def base_of(application: str) -> str:
    found = _QUALIFIED.match(application)
    return application if found is None else found["base"]


def spans(state: State, runtime: Runtime) -> bool:
    """Whether this command acts on the applications of an organization (from the settings)."""
    return state.account_id is None and runtime.spans_accounts()


def in_scope(state: State, runtime: Runtime, only: str | None = None) -> list[Target]:
    """The applications to act on now: each in-scope account of an organization (one read of
    the organization), else the one application; ``only`` narrows to one account (out of
    scope: InvalidInput, nothing done)."""
    if not spans(state, runtime):
        return [Target(state, runtime.for_account(only))]
    found = list(runtime.target_accounts(check=False))
    if only is not None:
        found = [account for account in found if account.id == only]
        if not found:
            raise InvalidInput(
                f"account {only} is not in scope of these settings (`hostsim accounts` lists "
                "the accounts in scope)"
            )
    base = base_of(state.application)
    return [
        Target(
            state.for_application(name(base, account.id), account.id),
            runtime.for_account(account.id),
            account,
        )
        for account in found
    ]


def known(state: State) -> list[str]:
    """The applications of this connector the state file holds anything of (entitlements,
    accounts, runs), the plain one first: what the reports show, without a connector."""
    base = base_of(state.application)
    found: set[str] = {base}
    for table in ("entitlements", "accounts", "reconciliation_runs"):
        for row in state.db.execute(
            f"SELECT DISTINCT application FROM {table} WHERE application = ? OR application LIKE ?",
            (base, f"{base}@%"),
        ):
            if row[0] == base or account_of(row[0]) is not None:
                found.add(row[0])
    return sorted(found, key=lambda app: (app != base, app))


def organized(state: State) -> bool:
    """Whether the state file holds applications of an organization's accounts."""
    return any(account_of(app) is not None for app in known(state))


def states(state: State) -> Iterator[State]:
    """A state for each application the state file knows (see :func:`known`)."""
    for application in known(state):
        yield state.for_application(application, account_of(application))


def bound(state: State, runtime: Runtime, application: str) -> Target:
    """The state and the runtime bound to one application's account."""
    account = account_of(application)
    app_state = state.for_application(application, account)
    if account is None or runtime.account_id == account:
        return Target(app_state, runtime)
    return Target(app_state, runtime.for_account(account))


def of_entitlement(state: State, entitlement: str) -> str:
    """The application an entitlement is in (the catalog's record), by its id or, when just
    one entry of that kind has that name, by ``KIND:NAME`` (as :func:`.catalog.find`). An
    entitlement the catalog does not hold is looked for in the command's own application."""
    base = base_of(state.application)
    pattern = (base, f"{base}@%")
    rows = state.db.execute(
        "SELECT application FROM entitlements WHERE id = ? AND (application = ? OR "
        "application LIKE ?)",
        (entitlement, *pattern),
    ).fetchall()
    if not rows:
        kind, _, rest = entitlement.partition(":")
        qualified = QUALIFIER.search(rest)
        if qualified is not None:  # KIND:NAME@ACCOUNT: that name in that account's catalog
            rest = QUALIFIER.sub("", rest)
            pattern = (name(base, qualified[1]), name(base, qualified[1]))
        rows = state.db.execute(
            "SELECT id, application FROM entitlements WHERE kind = ? AND name = ? AND "
            "(application = ? OR application LIKE ?) ORDER BY id",
            (kind, rest, *pattern),
        ).fetchall()
        if len({row["application"] for row in rows}) > 1:  # one application's own: as before
            ids = ", ".join(row["id"] for row in rows)
            raise NotFound(
                f"{entitlement!r} names an entitlement of several AWS accounts ({ids}): name it "
                "with its account (`hostsim catalog list`)"
            )
    return str(rows[0]["application"]) if rows else state.application


def for_entitlement(state: State, runtime: Runtime, entitlement: str) -> Target:
    """The application (state and bound runtime) a request for ``entitlement`` acts on."""
    return bound(state, runtime, of_entitlement(state, entitlement))
