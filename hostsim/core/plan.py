"""What a reconciliation run finds and means to do: the plan's types, shared by the planner
(:mod:`.reconciliation`) and the one who carries it out (:mod:`.remediation`).

Kept in a module of its own so that neither of the two imports the other for its vocabulary:
reconciliation reads and plans, then hands the plan to remediation; remediation knows the plan,
never the planner.
"""

from __future__ import annotations

from enum import StrEnum

from attrs import field, frozen

from hostsim.contract import Account
from hostsim.core import identities


class Remedy(StrEnum):
    """What a run may fix, each asked for by name (``--remediate``)."""

    REVOKE = "revoke"  # take away access granted out of band
    RESTORE = "restore"  # give back approved access removed out of band; recreate missing;
    # enable the disabled account of a person who has not left
    ATTRIBUTES = "attributes"  # apply each attribute's sync direction
    # delete accounts no identity owns, or whose person left; under the leaver policy
    # `disable`, a leaver's account is disabled, and deleted once its deletion is due
    DELETE_ORPHANS = "delete-orphans"


class Kind(StrEnum):
    ORPHAN = "orphan-account"
    LEAVER = "leaver-account"  # an account (or IDHub's record of one) of a person who left
    DISABLED = "disabled-account"  # disabled in the application, its person has not left
    CORRELATED = "correlated"
    MISSING = "missing-account"
    STALE = "stale-account"
    GRANTED_OUT_OF_BAND = "granted-out-of-band"
    REMOVED_OUT_OF_BAND = "removed-out-of-band"
    ATTRIBUTE = "attribute-drift"


class Action(StrEnum):
    REPORT = "report"  # found, not fixed (no remedy asked, or none applies)
    LINK = "link"
    REVOKE = "revoke"
    GRANT = "grant"
    PUSH = "push"  # IDHub's value written to the application
    PULL = "pull"  # the application's value written to IDHub
    CREATE = "create"
    DROP = "drop"  # IDHub forgets the account
    DELETE = "delete"  # the account is deleted from the application
    DISABLE = "disable"  # the account is disabled in the application (a leaver's, reversibly)
    ENABLE = "enable"  # the disabled account acts again


#: Actions that remove an account (from IDHub's records or from the application); a disable
#: is reversible and removes nothing, so it is not counted against the deletion threshold.
REMOVALS = (Action.DROP, Action.DELETE)
#: Actions the connector carries out on an account it looks up by its email alone.
BY_EMAIL = (Action.DELETE, Action.REVOKE, Action.GRANT, Action.PUSH, Action.DISABLE, Action.ENABLE)
#: Actions that give a person something: never carried out for a person who left.
GIVING = (Action.CREATE, Action.GRANT, Action.PUSH, Action.ENABLE)


@frozen
class Options:
    remedies: frozenset[Remedy] = frozenset()
    stale_days: int = 7
    deletion_threshold: int = 20


@frozen
class Finding:
    account: str
    kind: Kind
    subject: str = ""
    idhub: str | None = None
    app: str | None = None
    direction: str = ""
    action: Action = Action.REPORT
    outcome: str = ""
    detail: str = ""


@frozen
class Plan:
    """What a run found and means to do, before anything changes."""

    findings: tuple[Finding, ...]
    #: Accounts either side knows: IDHub's accounts plus the application's unlinked ones.
    population: int
    #: App accounts by the IDHub account (identity) they match, for the remedies.
    matched: dict[str, Account] = field(factory=dict)
    #: Agreed attribute values per identity, before remedies change any.
    baselines: dict[str, dict[str, str | None]] = field(factory=dict)
    #: The attributes compared (the connector's schema).
    attributes: tuple[str, ...] = ()

    @property
    def removals(self) -> int:
        return sum(1 for finding in self.findings if finding.action in REMOVALS)

    def over_threshold(self, threshold: int) -> bool:
        return self.population > 0 and self.removals * 100 > threshold * self.population


@frozen
class Report:
    run: int
    status: str  # complete, partial (a remedy failed), refused, failed (reading failed)
    findings: tuple[Finding, ...]
    counts: dict[str, int]
    message: str = ""


# --- the application's side of an account -------------------------------------------------


def app_email(account: Account) -> str:
    return (account.email or account.user_name).lower()


def app_value(account: Account, attribute: str) -> str | None:
    if attribute == "email":
        return app_email(account)
    if attribute in identities.NAME_FIELDS:
        value: str | None = getattr(account, attribute)
    else:
        value = account.attributes.get(attribute)
    return value or None
