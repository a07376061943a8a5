"""The host contract: everything a connector plugin may import, and nothing else of hostsim.

A plugin imports from this face, the way llm plugins import from ``llm`` and tox plugins from
``tox.plugin``::

    from hostsim.contract import Capability, ConnectorType, hookimpl

    @hookimpl
    def register_connectors(register):
        register(ConnectorType(name="...", capabilities=[Capability.CREATE], factory=...))

The modules behind it, one concern each: ``hookspecs`` (markers and hooks), ``connector``
(``ConnectorType`` and the ``Connector`` protocol), ``model`` (the frozen attrs types that cross
the boundary), ``converter`` (the one strict cattrs converter), ``errors`` (the one error
hierarchy) and ``steps`` (the step log of a composite operation). The package imports only the
standard library, pluggy, attrs and cattrs; tests/test_layout.py keeps it so.
"""

from __future__ import annotations

from hostsim.contract.connector import Connector, ConnectorFactory, ConnectorType
from hostsim.contract.converter import describe, structure, unstructure
from hostsim.contract.errors import (
    AlreadyExists,
    ConfigurationError,
    Conflict,
    ConnectorError,
    InvalidInput,
    NotFound,
    PartialRead,
    PermissionDenied,
    PluginError,
    Refused,
    Transient,
)
from hostsim.contract.hookspecs import PROJECT, hookimpl, hookspec
from hostsim.contract.model import (
    COMMON_ROW_TYPES,
    PLANNED_REQUESTS,
    ROW_TYPES,
    WOULD,
    AccessRequest,
    AccessRow,
    Account,
    AccountDetail,
    AccountLookup,
    AccountRef,
    AttributeSpec,
    Capability,
    CommonFetchKind,
    CommonRow,
    ConnectionStatus,
    ConnectorSchema,
    CreateRequest,
    DeleteRequest,
    DisableRequest,
    EnableRequest,
    EntitlementKind,
    EntitlementRow,
    FetchKind,
    FetchRow,
    Group,
    GroupAccess,
    GroupDetail,
    GroupRequest,
    Holding,
    ModifyRequest,
    MutatingRequest,
    OperationResult,
    Policy,
    PolicyAccess,
    Step,
    StepStatus,
    TargetAccount,
    canonical_email,
)
from hostsim.contract.steps import StepLog, StepOutcome, Translator

__all__ = [
    "COMMON_ROW_TYPES",
    "PLANNED_REQUESTS",
    "PROJECT",
    "ROW_TYPES",
    "WOULD",
    "AccessRequest",
    "AccessRow",
    "Account",
    "AccountDetail",
    "AccountLookup",
    "AccountRef",
    "AlreadyExists",
    "AttributeSpec",
    "Capability",
    "CommonFetchKind",
    "CommonRow",
    "ConfigurationError",
    "Conflict",
    "ConnectionStatus",
    "Connector",
    "ConnectorError",
    "ConnectorFactory",
    "ConnectorSchema",
    "ConnectorType",
    "CreateRequest",
    "DeleteRequest",
    "DisableRequest",
    "EnableRequest",
    "EntitlementKind",
    "EntitlementRow",
    "FetchKind",
    "FetchRow",
    "Group",
    "GroupAccess",
    "GroupDetail",
    "GroupRequest",
    "Holding",
    "InvalidInput",
    "ModifyRequest",
    "MutatingRequest",
    "NotFound",
    "OperationResult",
    "PartialRead",
    "PermissionDenied",
    "PluginError",
    "Policy",
    "PolicyAccess",
    "Refused",
    "Step",
    "StepLog",
    "StepOutcome",
    "StepStatus",
    "TargetAccount",
    "Transient",
    "Translator",
    "canonical_email",
    "describe",
    "hookimpl",
    "hookspec",
    "structure",
    "unstructure",
]
