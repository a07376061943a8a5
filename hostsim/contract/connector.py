"""What a connector is to the host: a typed object per operation, declared up front.

A plugin registers a :class:`ConnectorType`: a name, the capabilities it offers and a factory
that opens a :class:`Connector` from its settings. The host can list connectors and their
capabilities without opening (or configuring) any of them, and refuses an operation the type did
not declare.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

import attrs
from attrs import field, frozen

from hostsim.contract.errors import PluginError
from hostsim.contract.model import (
    ROW_TYPES,
    AccessRequest,
    AccountDetail,
    AccountLookup,
    Capability,
    ConnectionStatus,
    ConnectorSchema,
    CreateRequest,
    DeleteRequest,
    DisableRequest,
    EnableRequest,
    GroupDetail,
    GroupRequest,
    ModifyRequest,
    MutatingRequest,
    OperationResult,
    TargetAccount,
)


class Connector(Protocol):
    """The operations a connector may implement; each maps to one :class:`Capability`.

    Every operation is idempotent: asking for a state that already holds reports ``unchanged``
    steps and changes nothing, so the host may retry any of them.
    """

    def create(self, request: CreateRequest) -> OperationResult:
        """Create the account, write the mapped attributes, grant the initial entitlements."""
        ...

    def modify(self, request: ModifyRequest) -> OperationResult:
        """Change what differs from the account's current state, nothing else."""
        ...

    def delete(self, request: DeleteRequest) -> OperationResult:
        """Remove the account; an absent account is a no-op."""
        ...

    def grant(self, request: AccessRequest) -> OperationResult:
        """Give the account one entitlement."""
        ...

    def revoke(self, request: AccessRequest) -> OperationResult:
        """Take one entitlement from the account."""
        ...

    def disable(self, request: DisableRequest) -> OperationResult:
        """Stop the account acting at once, reversibly; an already disabled one is unchanged."""
        ...

    def enable(self, request: EnableRequest) -> OperationResult:
        """Reactivate exactly what ``disable`` deactivated; an enabled one is unchanged."""
        ...

    def fetch(self, kind: str) -> Iterator[Any]:
        """Yield the rows of one reconciliation read as they arrive from the target: ``kind``
        is one the connector type declared in ``fetch_kinds`` (the host refuses any other),
        each row an instance of the row type declared for it."""
        ...

    def read_account(self, lookup: AccountLookup) -> AccountDetail | None:
        """One account with its attributes, state and direct holdings, or None when there is
        none (or, for a lookup with an id and a name hint, when that name no longer has that
        id). Costs the same on a target of 300 accounts as on 5,000."""
        ...

    def read_group(self, request: GroupRequest) -> GroupDetail | None:
        """One group by name with its members (those in the connector's scope), or None when
        there is none. Costs a number of calls that grows with the group's members, not with
        the target's accounts."""
        ...

    def plan(self, operation: Capability, request: MutatingRequest) -> OperationResult:
        """What ``operation`` (create, modify, delete, grant, revoke, disable, enable) would do
        with ``request``, with reads only: the steps the real run would take, with the
        statuses ``would create``/``would update``/``would delete`` for its changes and
        ``unchanged``/``skipped`` for the rest; the same errors the real run raises before its
        first change for input it would refuse."""
        ...

    # Optional: ``plan_many(operation, requests) -> Iterator[OperationResult | ConnectorError]``
    # plans many requests of one operation from one bulk read of the target (a bulk import),
    # in their order; a request the real run would refuse yields that error instead of a plan,
    # so one bad row does not hide the plans of the others. The host falls back to ``plan``
    # per request when a connector does not offer it.

    def test(self) -> ConnectionStatus:
        """Check the connection and the credentials without changing anything."""
        ...

    def schema(self) -> ConnectorSchema:
        """Describe the account attributes and entitlement kinds on offer."""
        ...

    def spans_accounts(self) -> bool:
        """Whether these settings reach several target accounts (an organization), decided
        from the settings alone, without a call. Then every change, single read and plan
        needs a connector bound to one account (``for_account``): the unbound one refuses
        them with :class:`~hostsim.contract.errors.InvalidInput` before any call, and its
        ``fetch`` reads every account in scope, each row carrying ``account_id``, raising
        :class:`~hostsim.contract.errors.PartialRead` at the end when some could not be read."""
        ...

    def target_accounts(self, check: bool = False) -> tuple[TargetAccount, ...]:
        """Every target account in scope, in a stable order; with ``check``, whether each can
        be reached now (tried concurrently, a failure reported, never raised)."""
        ...

    def for_account(self, account_id: str) -> Connector:
        """This connector bound to one target account: its operations act there, its rows
        carry that ``account_id``. An account out of scope (or, for a connector of one
        account, not the one its credentials reach) is refused with InvalidInput, having sent
        reads only."""
        ...

    def create_group(self, request: GroupRequest) -> OperationResult:
        """Create a group (an entitlement people can then request); existing is unchanged."""
        ...

    def delete_group(self, request: GroupRequest) -> OperationResult:
        """Delete a group and what the target requires removed first; absent is a no-op."""
        ...

    # Optional: ``check_create(request: CreateRequest) -> None`` runs, with reads only, the
    # checks ``create`` makes before its first change (input rules, guard rails, including
    # those of an account that exists already), raising the same errors.
    # ``Runtime.check_create`` calls it when present; ``hostsim import`` validates every row
    # with it before any change.


ConnectorFactory = Callable[[Mapping[str, Any]], Connector]


def _as_capabilities(values: Iterable[Capability | str]) -> frozenset[Capability]:
    return frozenset(Capability(value) for value in values)


def _known_capabilities(
    _instance: object, _attribute: object, value: frozenset[Capability]
) -> None:
    if not value:
        raise PluginError("a connector type must declare at least one capability")


def _as_fetch_kinds(kinds: Mapping[str, type]) -> dict[str, type]:
    """The declared kinds as a plain dict of names (a :class:`FetchKind` is its value) to
    row types; a kind without a name, or whose rows are not attrs classes the host can
    unstructure, is a plugin bug and fails at registration."""
    declared = {str(name): row_type for name, row_type in kinds.items()}
    for name, row_type in declared.items():
        if not name or not attrs.has(row_type):
            raise PluginError(f"fetch kind {name!r} must name an attrs row type")
    return declared


@frozen
class ConnectorType:
    """A kind of connector a plugin offers, registered through ``register_connectors``."""

    name: str
    description: str
    capabilities: frozenset[Capability] = field(
        converter=_as_capabilities, validator=_known_capabilities
    )
    #: Opens a connector from its raw settings (the connector's table of the config file);
    #: raises :class:`hostsim.contract.errors.ConfigurationError` for bad settings.
    open: ConnectorFactory
    #: The reads ``fetch`` offers, each with the frozen attrs class of its rows: by default
    #: IAM's five (:data:`~hostsim.contract.model.ROW_TYPES`). A target of another shape
    #: declares its own (Identity Center's ``assignments``); the host validates a fetch
    #: against them and prints any declared row type.
    fetch_kinds: Mapping[str, type] = field(
        factory=lambda: dict(ROW_TYPES), converter=_as_fetch_kinds, hash=False
    )
    #: The type chosen when several are installed and none is named (``--connector``): at
    #: most one installed type may claim it, or the host asks.
    default: bool = False
