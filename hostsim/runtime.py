"""The connector runtime: opens one connector and dispatches operations to it.

Everything that reaches a connector passes through here as plain JSON-able data, is structured
and validated by the contract converter, checked against the capabilities the connector type
declared, and only then handed to the connector. The CLI, the demo and (later) the SCIM API all
go through this one door, so they validate and report the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cached_property
from typing import Any

from hostsim.contract.connector import Connector, ConnectorType
from hostsim.contract.converter import structure
from hostsim.contract.errors import ConnectorError, InvalidInput, PluginError
from hostsim.contract.model import (
    PLANNED_REQUESTS,
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
    FetchKind,
    GroupDetail,
    GroupRequest,
    ModifyRequest,
    OperationResult,
    TargetAccount,
)

#: The connector methods a capability stands for, where they are not named like it.
METHODS: dict[Capability, tuple[str, ...]] = {
    Capability.MANAGE_GROUPS: ("create_group", "delete_group"),
    Capability.READ_ACCOUNT: ("read_account",),
    Capability.READ_GROUP: ("read_group",),
    Capability.TARGET_ACCOUNTS: ("spans_accounts", "target_accounts", "for_account"),
}

#: The names of :class:`FetchKind`, handed to connectors as the enum (as they always were).
IAM_FETCH_KINDS = frozenset(kind.value for kind in FetchKind)


class Runtime:
    """One opened connector of one type, with its settings."""

    def __init__(
        self,
        connector_type: ConnectorType,
        settings: Mapping[str, Any],
        account_id: str | None = None,
        parent: Runtime | None = None,
    ) -> None:
        self.connector_type = connector_type
        self._settings = settings
        #: The target account this runtime is bound to (``for_account``); None: unbound.
        self.account_id = account_id
        self._parent = parent

    @cached_property
    def connector(self) -> Connector:
        """Opened on first use, so listing or validating needs no credentials; a bound
        runtime's is its parent's bound to the account (``Connector.for_account``)."""
        if self._parent is not None:
            assert self.account_id is not None
            return self._parent.connector.for_account(self.account_id)
        opened = self.connector_type.open(self._settings)
        missing = [
            cap.value
            for cap in self.connector_type.capabilities
            if not all(hasattr(opened, method) for method in METHODS.get(cap, (cap.value,)))
        ]
        if missing:
            raise PluginError(
                f"connector {self.connector_type.name!r} declares {', '.join(sorted(missing))} "
                "but does not implement it"
            )
        return opened

    def for_account(self, account_id: str | None) -> Runtime:
        """This runtime bound to one target account (``--account``); ``None`` is this one.
        The connector is bound on first use: an account out of scope is refused then, with
        InvalidInput, before any change."""
        if account_id is None:
            return self
        if Capability.TARGET_ACCOUNTS not in self.connector_type.capabilities:
            raise InvalidInput(
                f"connector {self.connector_type.name!r} cannot choose a target account (--account)"
            )
        return Runtime(self.connector_type, self._settings, account_id, self)

    def spans_accounts(self) -> bool:
        """Whether the settings reach several target accounts and this runtime is not bound to
        one: then changes need ``for_account`` first. From the settings alone, no call."""
        if self.account_id is not None:
            return False
        if Capability.TARGET_ACCOUNTS not in self.connector_type.capabilities:
            return False
        return self.connector.spans_accounts()

    def target_accounts(self, check: bool = False) -> tuple[TargetAccount, ...]:
        """The target accounts in scope (see ``Connector.target_accounts``)."""
        self._require(Capability.TARGET_ACCOUNTS)
        return self.connector.target_accounts(check)

    def _require(self, capability: Capability) -> None:
        if capability not in self.connector_type.capabilities:
            raise InvalidInput(
                f"connector {self.connector_type.name!r} does not support {capability.value}"
            )

    def create(self, payload: Mapping[str, Any]) -> OperationResult:
        self._require(Capability.CREATE)
        return self.connector.create(structure(payload, CreateRequest, what="create request"))

    def check_create(self, payload: Mapping[str, Any]) -> CreateRequest:
        """Validate a create without changing anything, and return the structured request.

        The payload is structured by the contract's converter, then handed to the connector's
        ``check_create(request) -> None`` if it offers one: an optional method that runs, with
        reads only, the checks its ``create`` runs before its first change (input rules,
        attribute mapping, the entitlements asked for exist and may be granted, the guard rails
        of an account that exists already), raising the same errors. A connector without it is
        checked at create time instead, still before that create's first change.
        """
        self._require(Capability.CREATE)
        request = structure(payload, CreateRequest, what="create request")
        check: Callable[[CreateRequest], object] | None = getattr(
            self.connector, "check_create", None
        )
        if check is not None:
            check(request)
        return request

    def modify(self, payload: Mapping[str, Any]) -> OperationResult:
        self._require(Capability.MODIFY)
        return self.connector.modify(structure(payload, ModifyRequest, what="modify request"))

    def delete(self, payload: Mapping[str, Any]) -> OperationResult:
        self._require(Capability.DELETE)
        return self.connector.delete(structure(payload, DeleteRequest, what="delete request"))

    def grant(self, payload: Mapping[str, Any]) -> OperationResult:
        self._require(Capability.GRANT)
        return self.connector.grant(structure(payload, AccessRequest, what="grant request"))

    def revoke(self, payload: Mapping[str, Any]) -> OperationResult:
        self._require(Capability.REVOKE)
        return self.connector.revoke(structure(payload, AccessRequest, what="revoke request"))

    def disable(self, payload: Mapping[str, Any]) -> OperationResult:
        self._require(Capability.DISABLE)
        return self.connector.disable(structure(payload, DisableRequest, what="disable request"))

    def enable(self, payload: Mapping[str, Any]) -> OperationResult:
        self._require(Capability.ENABLE)
        return self.connector.enable(structure(payload, EnableRequest, what="enable request"))

    def fetch(self, kind: str) -> Iterator[Any]:
        """The rows of one read the connector type declared (``ConnectorType.fetch_kinds``);
        IAM's five reach the connector as :class:`FetchKind`, any other as its name."""
        self._require(Capability.FETCH)
        declared = self.connector_type.fetch_kinds
        if kind not in declared:
            known = ", ".join(declared)
            raise InvalidInput(
                f"unknown fetch kind {kind!r} for connector {self.connector_type.name!r} "
                f"(one of: {known})"
            )
        fetch_kind = FetchKind(kind) if kind in IAM_FETCH_KINDS else str(kind)
        return self.connector.fetch(fetch_kind)

    def read_account(self, payload: Mapping[str, Any]) -> AccountDetail | None:
        """One account by ``id`` (with an optional ``name`` hint) or by ``email``; None when
        there is none. At least one of ``id`` and ``email`` is required."""
        self._require(Capability.READ_ACCOUNT)
        lookup = structure(payload, AccountLookup, what="account lookup")
        if not lookup.id and not lookup.email:
            raise InvalidInput("an account lookup needs an id or an email")
        return self.connector.read_account(lookup)

    def read_group(self, payload: Mapping[str, Any]) -> GroupDetail | None:
        """One group by ``name`` with its members; None when there is none."""
        self._require(Capability.READ_GROUP)
        return self.connector.read_group(structure(payload, GroupRequest, what="group request"))

    def _planned(self, operation: str, payload: Mapping[str, Any]) -> tuple[Capability, Any]:
        try:
            capability = Capability(operation)
            kind = PLANNED_REQUESTS[capability]
        except (ValueError, KeyError):
            known = ", ".join(cap.value for cap in PLANNED_REQUESTS)
            raise InvalidInput(f"cannot plan {operation!r} (one of: {known})") from None
        self._require(capability)
        self._require(Capability.PLAN)
        return capability, structure(payload, kind, what=f"{capability.value} request")

    def plan(self, operation: str, payload: Mapping[str, Any]) -> OperationResult:
        """What ``operation`` would do with ``payload``, reads only (see ``Connector.plan``)."""
        capability, request = self._planned(operation, payload)
        return self.connector.plan(capability, request)

    def plan_many(
        self, operation: str, payloads: Iterable[Mapping[str, Any]]
    ) -> Iterator[OperationResult | ConnectorError]:
        """Plans of many requests of one operation, in their order, each a result or the error
        its real run would raise: from one bulk read when the connector offers ``plan_many``,
        else one ``plan`` each. Every payload is validated before the first read."""
        structured = [self._planned(operation, payload) for payload in payloads]
        if not structured:
            return iter(())
        capability = structured[0][0]
        requests = [request for _capability, request in structured]
        many: Callable[..., Iterator[OperationResult | ConnectorError]] | None = getattr(
            self.connector, "plan_many", None
        )
        if many is not None:
            return many(capability, requests)
        return (self._plan_or_error(capability, request) for request in requests)

    def _plan_or_error(
        self, capability: Capability, request: Any
    ) -> OperationResult | ConnectorError:
        try:
            return self.connector.plan(capability, request)
        except ConnectorError as exc:
            return exc

    def create_group(self, payload: Mapping[str, Any]) -> OperationResult:
        self._require(Capability.MANAGE_GROUPS)
        return self.connector.create_group(structure(payload, GroupRequest, what="group request"))

    def delete_group(self, payload: Mapping[str, Any]) -> OperationResult:
        self._require(Capability.MANAGE_GROUPS)
        return self.connector.delete_group(structure(payload, GroupRequest, what="group request"))

    def test(self) -> ConnectionStatus:
        self._require(Capability.TEST)
        return self.connector.test()

    def schema(self) -> ConnectorSchema:
        self._require(Capability.SCHEMA)
        return self.connector.schema()
