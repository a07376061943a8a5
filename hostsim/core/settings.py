"""The ``[idhub]`` table of the config file: how IDHub's side of the simulator behaves.

```toml
[idhub]
default_approval = ["manager"]   # the chain of an entitlement that has none of its own
stale_days = 7                   # days an account may be missing before IDHub drops it
deletion_threshold = 20          # refuse a reconciliation removing more than 20% of accounts

[idhub.sync]                     # per attribute: bi-directional, idhub-to-app,
display_name = "bi-directional"  # app-to-idhub or no-sync (default idhub-to-app)
```

Structured by the contract's strict converter, so a misspelled key or a wrong type is refused
with its path and the file's line, like a connector's settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from attrs import evolve, field, frozen

from hostsim.contract.converter import structure
from hostsim.contract.errors import ConfigurationError

CONFIG_TABLE = "idhub"
#: Approval steps that are not an identity's email.
APPROVAL_ROLES = ("manager", "owner")
AUTO_APPROVAL = "auto"
#: The inclusive range of each number of the table: ten years of staleness is already more
#: than any review cycle, and a larger one overflows the date arithmetic of the stale check.
NUMBER_RANGES = {"stale_days": (0, 3650), "deletion_threshold": (0, 100)}


class SyncDirection(StrEnum):
    """Which side wins when an attribute differs (IDHub's four directions)."""

    BIDIRECTIONAL = "bi-directional"
    IDHUB_TO_APP = "idhub-to-app"
    APP_TO_IDHUB = "app-to-idhub"
    NO_SYNC = "no-sync"


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

    def direction(self, attribute: str) -> SyncDirection:
        return self.sync.get(attribute, SyncDirection.IDHUB_TO_APP)


def load_core_settings(raw: Mapping[str, Any]) -> CoreSettings:
    if not isinstance(raw, Mapping):  # `idhub = 3` in the file
        raise ConfigurationError(
            f"config key {CONFIG_TABLE!r} must be a table, not {type(raw).__name__}"
        )
    settings = structure(dict(raw), CoreSettings, error=ConfigurationError, what="idhub settings")
    for name, value in (
        ("stale_days", settings.stale_days),
        ("deletion_threshold", settings.deletion_threshold),
    ):
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
    return settings


def _number(value: int) -> str:
    """A number as an error line shows it: a 4,000-digit integer is cut, not echoed whole."""
    text = str(value)
    return text if len(text) <= 20 else f"{text[:20]}…"
