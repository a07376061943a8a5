"""The ``[idhub]`` table of the config file: how IDHub's side of the simulator behaves.

```toml
[idhub]
default_approval = ["manager"]   # the chain of an entitlement that has none of its own
stale_days = 7                   # days an account may be missing before IDHub drops it
deletion_threshold = 20          # refuse a reconciliation removing more than 20% of accounts
leaver = "delete"                # a leaver's account: "delete" at once, or "disable" at once
delete_after_days = 30           # ... and delete it this many days later (leaver = "disable")

[idhub.sync]                     # per attribute: bi-directional, idhub-to-app,
display_name = "bi-directional"  # app-to-idhub or no-sync (default idhub-to-app)
```

Structured by the contract's strict converter, so a misspelled key or a wrong type is refused
with its path and the file's line, like a connector's settings.

The leaver policy defaults to ``delete``: a leaver's account is deleted at once, with its keys
and everything on it, so no dormant account is left behind in the application, which is what
existing deployments rely on. ``disable`` is for reversible offboarding (like Entra ID's 30-day
soft delete): the account is disabled at once (through the connector's ``disable``, which stops
it acting, keys and sessions included, losing nothing) and reconciliation deletes it
``delete_after_days`` later. It needs a connector type that can disable: with one that cannot,
the policy is refused when the config is loaded (:func:`check_connector`), rather than
falling back to deleting (irreversible, the opposite of what was asked for) or to leaving the
account live.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from attrs import evolve, field, frozen

from hostsim.contract.converter import structure
from hostsim.contract.errors import ConfigurationError
from hostsim.contract.model import Capability

CONFIG_TABLE = "idhub"
#: Approval steps that are not an identity's email.
APPROVAL_ROLES = ("manager", "owner")
AUTO_APPROVAL = "auto"
#: The inclusive range of each number of the table: ten years of staleness is already more
#: than any review cycle, and a larger one overflows the date arithmetic of the stale check.
NUMBER_RANGES = {
    "stale_days": (0, 3650),
    "deletion_threshold": (0, 100),
    "delete_after_days": (0, 3650),
}
#: Days a disabled leaver's account is kept when ``delete_after_days`` is not given.
DEFAULT_DELETE_AFTER_DAYS = 30


class LeaverPolicy(StrEnum):
    """What ``identity remove`` does to the account of a person who left."""

    DELETE = "delete"  # delete it at once (the default)
    DISABLE = "disable"  # disable it at once, delete it ``delete_after_days`` later


class SyncDirection(StrEnum):
    """Which side wins when an attribute differs (IDHub's four directions)."""

    BIDIRECTIONAL = "bi-directional"
    IDHUB_TO_APP = "idhub-to-app"
    APP_TO_IDHUB = "app-to-idhub"
    NO_SYNC = "no-sync"

    @property
    def pulls(self) -> bool:
        """Whether the application's value may be taken into IDHub."""
        return self in (SyncDirection.BIDIRECTIONAL, SyncDirection.APP_TO_IDHUB)


def check_chain(chain: tuple[str, ...], where: str) -> tuple[str, ...]:
    """An approval chain: ``auto`` alone, or steps ``manager``, ``owner`` or an email."""
    if not chain:
        raise ConfigurationError(f"{where}: an approval chain needs a step (or 'auto')")
    if AUTO_APPROVAL in chain and len(chain) > 1:
        raise ConfigurationError(f"{where}: 'auto' cannot be combined with other steps")
    for step in chain:
        if step != AUTO_APPROVAL and step not in APPROVAL_ROLES and "@" not in step:
            raise ConfigurationError(
                f"{where}: unknown approval step {step!r} (manager, owner, auto or an email)"
            )
    if len(set(chain)) != len(chain):
        raise ConfigurationError(f"{where}: a step appears twice in {', '.join(chain)}")
    return tuple(step.lower() if "@" in step else step for step in chain)


@frozen
class CoreSettings:
    default_approval: tuple[str, ...] = ("manager",)
    stale_days: int = 7
    deletion_threshold: int = 20
    sync: dict[str, SyncDirection] = field(factory=dict)
    leaver: LeaverPolicy = LeaverPolicy.DELETE
    #: Only with ``leaver = "disable"``; None there means :data:`DEFAULT_DELETE_AFTER_DAYS`.
    delete_after_days: int | None = None

    @property
    def disables(self) -> bool:
        return self.leaver is LeaverPolicy.DISABLE

    @property
    def deletion_days(self) -> int:
        """Days between disabling a leaver's account and deleting it (disable policy)."""
        if self.delete_after_days is None:
            return DEFAULT_DELETE_AFTER_DAYS
        return self.delete_after_days

    def direction(self, attribute: str) -> SyncDirection:
        return self.sync.get(attribute, SyncDirection.IDHUB_TO_APP)


def load_core_settings(raw: Mapping[str, Any]) -> CoreSettings:
    if not isinstance(raw, Mapping):  # `idhub = 3` in the file
        raise ConfigurationError(
            f"config key {CONFIG_TABLE!r} must be a table, not {type(raw).__name__}"
        )
    policy = raw.get("leaver", LeaverPolicy.DELETE.value)
    if isinstance(policy, str) and policy not in {p.value for p in LeaverPolicy}:
        raise ConfigurationError(
            f'leaver: expected "delete" or "disable", got {_number_or_text(policy)!r}'
        )
    settings = structure(dict(raw), CoreSettings, error=ConfigurationError, what="idhub settings")
    for name, value in (
        ("stale_days", settings.stale_days),
        ("deletion_threshold", settings.deletion_threshold),
        ("delete_after_days", settings.delete_after_days),
    ):
        if value is None:
            continue
        low, high = NUMBER_RANGES[name]
        if not low <= value <= high:
            raise ConfigurationError(f"{name}: expected {low} to {high}, got {_number(value)}")
    settings = evolve(
        settings, default_approval=check_chain(settings.default_approval, "default_approval")
    )
    email = settings.direction("email")
    if email not in (SyncDirection.IDHUB_TO_APP, SyncDirection.NO_SYNC):
        raise ConfigurationError(
            f"sync.email: {email.value} is not supported; the email is the identity's unique "
            "identifier, so IDHub pushes it (idhub-to-app) or leaves it (no-sync) @ $.sync.email"
        )
    if settings.delete_after_days is not None and not settings.disables:
        raise ConfigurationError(
            'delete_after_days: applies only with leaver = "disable" (with leaver = '
            f'"{settings.leaver.value}", a leaver\'s account is deleted at once)'
        )
    return settings


def check_connector(settings: CoreSettings, name: str, capabilities: Iterable[str]) -> None:
    """Refuse a leaver policy the connector type cannot carry out (at config load, before any
    command acts): ``disable`` needs the connector's ``disable``."""
    if settings.disables and Capability.DISABLE.value not in set(capabilities):
        raise ConfigurationError(
            f'leaver: "disable" needs a connector that can disable accounts, and connector '
            f'{name!r} cannot (set leaver = "delete", or remove the key, to delete a '
            "leaver's account at once)"
        )


def _number_or_text(value: str) -> str:
    """A value as an error line shows it, cut like a number."""
    return value if len(value) <= 20 else f"{value[:20]}…"


def _number(value: int) -> str:
    """A number as an error line shows it: a 4,000-digit integer is cut, not echoed whole."""
    text = str(value)
    return text if len(text) <= 20 else f"{text[:20]}…"
