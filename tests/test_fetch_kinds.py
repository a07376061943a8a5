"""The contract's connector-declared fetch kinds and default connector type (issue 17)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import cast

import pytest
from attrs import frozen

from hostsim import output
from hostsim.contract.connector import Connector, ConnectorType
from hostsim.contract.errors import ConfigurationError, InvalidInput, PluginError
from hostsim.contract.model import (
    ROW_TYPES,
    AccessRow,
    Account,
    Capability,
    EntitlementRow,
    FetchKind,
)
from hostsim.plugins import get_plugin_manager, load_connectors
from hostsim.registry import ConnectorRegistry
from hostsim.runtime import Runtime
from idhub_aws_plugin.identity_center.rows import AccountAssignment, PermissionSet


@frozen
class Seat:
    """A row type of a connector of its own shape."""

    room: str
    number: int


class Recorder:
    def __init__(self) -> None:
        self.kinds: list[object] = []

    def fetch(self, kind: object) -> Iterator[Seat]:
        self.kinds.append(kind)
        yield Seat("a", 1)


def _type(
    name: str,
    recorder: object,
    fetch_kinds: dict[str, type] | None = None,
    default: bool = False,
) -> ConnectorType:
    def opens(_settings: object) -> Connector:
        return cast(Connector, recorder)

    capabilities = frozenset({Capability.FETCH})
    if fetch_kinds is None:
        return ConnectorType(name, "test", capabilities, opens, default=default)
    return ConnectorType(name, "test", capabilities, opens, fetch_kinds, default)


def test_a_type_offers_iams_five_kinds_unless_it_declares_its_own() -> None:
    assert _type("plain", Recorder()).fetch_kinds == ROW_TYPES
    declared = _type("seats", Recorder(), fetch_kinds={"seats": Seat})
    assert declared.fetch_kinds == {"seats": Seat}
    with pytest.raises(PluginError, match="must name an attrs row type"):
        _type("odd", Recorder(), fetch_kinds={"seats": dict})


def test_the_runtime_fetches_only_declared_kinds_and_passes_iams_as_the_enum() -> None:
    recorder = Recorder()
    seats = Runtime(_type("seats", recorder, fetch_kinds={"seats": Seat, "users": Account}), {})
    assert list(seats.fetch("seats")) == [Seat("a", 1)]
    list(seats.fetch("users"))
    assert recorder.kinds == ["seats", FetchKind.USERS]
    assert type(recorder.kinds[0]) is str and type(recorder.kinds[1]) is FetchKind
    with pytest.raises(InvalidInput, match=r"unknown fetch kind 'policies' .*\(one of: seats"):
        seats.fetch("policies")


def test_a_declared_row_type_prints_as_a_table_of_its_fields() -> None:
    out = io.StringIO()
    assert output.write_rows("seats", iter([Seat("a", 1), Seat("b", 22)]), out, "table") == 2
    assert out.getvalue().splitlines() == ["ROOM  NUMBER", "a     1", "b     22", "(2 seats)"]
    out = io.StringIO()
    output.write_rows("seats", iter([Seat("a", 1)]), out, "jsonl")
    assert out.getvalue() == '{"number": 1, "room": "a"}\n'


def test_without_a_name_the_one_default_type_is_chosen() -> None:
    registry = ConnectorRegistry()
    registry.register(_type("one", Recorder()))
    registry.register(_type("two", Recorder(), default=True))
    assert registry.choose(None).name == "two"
    registry.register(_type("three", Recorder(), default=True))
    with pytest.raises(ConfigurationError, match="pick one with --connector"):
        registry.choose(None)


def test_the_plugin_registers_identity_center_beside_the_default_aws_iam() -> None:
    registry = load_connectors(get_plugin_manager())
    assert registry.choose(None).name == "aws-iam"
    center = registry.get("aws-identity-center")
    assert center.fetch_kinds == {
        "users": Account,
        "groups": ROW_TYPES[FetchKind.GROUPS],
        "group-access": ROW_TYPES[FetchKind.GROUP_ACCESS],
        "permission-sets": PermissionSet,
        "assignments": AccountAssignment,
        "entitlements": EntitlementRow,  # the contract's well-known reads, which IDHub reads
        "access": AccessRow,
    }
    assert center.capabilities == {
        Capability.CREATE,
        Capability.MODIFY,
        Capability.DELETE,
        Capability.GRANT,
        Capability.REVOKE,
        Capability.FETCH,
        Capability.TEST,
        Capability.SCHEMA,
        Capability.PLAN,
        Capability.READ_ACCOUNT,
        Capability.READ_GROUP,
    }
    assert registry.get("aws-iam").fetch_kinds == ROW_TYPES
