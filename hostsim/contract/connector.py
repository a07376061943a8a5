"""What a connector is to the host: a typed object per operation, declared up front.

A plugin registers a :class:`ConnectorType`: a name, the capabilities it offers and a factory
that opens a :class:`Connector` from its settings. The host can list connectors and their
capabilities without opening (or configuring) any of them, and refuses an operation the type did
not declare.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

from attrs import field, frozen

from hostsim.contract.errors import PluginError
from hostsim.contract.model import (
    AccessRequest,
    Capability,
    ConnectionStatus,
    ConnectorSchema,
    CreateRequest,
    DeleteRequest,
    DisableRequest,
    EnableRequest,
    FetchKind,
    FetchRow,
    GroupRequest,
    ModifyRequest,
    OperationResult,
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

    def fetch(self, kind: FetchKind) -> Iterator[FetchRow]:
        """Yield the rows of one reconciliation read as they arrive from the target."""
        ...

    def test(self) -> ConnectionStatus:
        """Check the connection and the credentials without changing anything."""
        ...

    def schema(self) -> ConnectorSchema:
        """Describe the account attributes and entitlement kinds on offer."""
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
