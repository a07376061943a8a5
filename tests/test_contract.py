"""The host/plugin contract: documented hooks, loud failures, entry-point discovery."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, cast

import pluggy
import pytest

from hostsim.contract import hookspecs
from hostsim.contract.connector import Connector, ConnectorFactory, ConnectorType
from hostsim.contract.errors import ConfigurationError, InvalidInput, PluginError
from hostsim.contract.hookspecs import hookimpl
from hostsim.contract.model import Capability
from hostsim.plugins import get_plugin_manager, load_connectors
from hostsim.registry import ConnectorRegistry
from hostsim.runtime import Runtime

ARCHITECTURE = Path(__file__).parent.parent / "docs" / "ARCHITECTURE.md"


def _hookspec_names() -> set[str]:
    return {
        name
        for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(function, "idhub_spec")
    }


def _documented_hooks() -> dict[str, str]:
    """``### hook `name(params)` `` headings of docs/ARCHITECTURE.md, name to params."""
    text = ARCHITECTURE.read_text()
    return dict(re.findall(r"^### hook `(\w+)\(([^)]*)\)`", text, flags=re.MULTILINE))


def test_every_hookspec_is_documented_with_its_signature_and_nothing_else() -> None:
    documented = _documented_hooks()
    assert set(documented) == _hookspec_names()
    for name, params in documented.items():
        spec = getattr(hookspecs, name)
        assert list(inspect.signature(spec).parameters) == [p.strip() for p in params.split(",")]
        assert spec.__doc__ and len(spec.__doc__.split()) > 10


def test_the_aws_plugin_is_found_through_its_entry_point() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="idhub")}
    assert found["aws-iam"] == "idhub_aws_plugin.plugin"
    registry = load_connectors(get_plugin_manager())
    assert registry.get("aws-iam").capabilities == frozenset(Capability)


class Misspelled:
    @hookimpl
    def register_conectors(self, register: Callable[[ConnectorType], None]) -> None:
        """A typo: no hookspec has this name."""


def test_a_misspelled_hookimpl_fails_loudly() -> None:
    with pytest.raises(pluggy.PluginValidationError, match="register_conectors"):
        get_plugin_manager([Misspelled()], load_entry_points=False)


class WrongArgument:
    @hookimpl
    def register_connectors(self, registry: Any) -> None:
        """A hookimpl asking for an argument the hookspec does not offer."""


def test_a_hookimpl_with_an_unknown_argument_fails_loudly() -> None:
    with pytest.raises(pluggy.PluginValidationError, match="registry"):
        get_plugin_manager([WrongArgument()], load_entry_points=False)


def _opens(connector: object) -> ConnectorFactory:
    """A factory handing out ``connector``, whatever it implements (the host must check)."""
    return lambda _settings: cast(Connector, connector)


def _connector_type(name: str, capabilities: frozenset[Capability]) -> ConnectorType:
    return ConnectorType(name, "test", capabilities, _opens(object()))


class Duplicate:
    @hookimpl
    def register_connectors(self, register: Callable[[ConnectorType], None]) -> None:
        register(_connector_type("aws-iam", frozenset({Capability.FETCH})))


def test_registering_a_name_twice_is_an_error_not_first_wins() -> None:
    manager = get_plugin_manager([Duplicate()])
    with pytest.raises(PluginError, match="'aws-iam' is registered twice"):
        load_connectors(manager)


def test_a_connector_type_needs_a_capability() -> None:
    with pytest.raises(PluginError):
        _connector_type("empty", frozenset())
    with pytest.raises(ValueError, match="'teleport' is not a valid Capability"):
        _connector_type("odd", frozenset({"teleport"}))  # type: ignore[arg-type]


def test_registry_chooses_the_only_connector_or_asks() -> None:
    registry = ConnectorRegistry()
    with pytest.raises(ConfigurationError, match="no connector installed"):
        registry.choose(None)
    registry.register(_connector_type("one", frozenset({Capability.FETCH})))
    assert registry.choose(None).name == "one"
    registry.register(_connector_type("two", frozenset({Capability.FETCH})))
    with pytest.raises(ConfigurationError, match="pick one with --connector"):
        registry.choose(None)
    with pytest.raises(ConfigurationError, match="unknown connector 'three'"):
        registry.choose("three")
    with pytest.raises(PluginError, match="takes a ConnectorType"):
        registry.register("four")  # type: ignore[arg-type]


def test_the_runtime_refuses_undeclared_capabilities_before_opening() -> None:
    opened: list[object] = []

    def open_connector(settings: object) -> Any:
        opened.append(settings)
        return object()

    runtime = Runtime(ConnectorType("ro", "read only", {Capability.FETCH}, open_connector), {})
    with pytest.raises(InvalidInput, match="does not support create"):
        runtime.create({"email": "a@b.co"})
    assert opened == []


def test_the_runtime_refuses_a_connector_missing_a_declared_method() -> None:
    runtime = Runtime(ConnectorType("liar", "", {Capability.DELETE}, _opens(object())), {})
    with pytest.raises(PluginError, match="declares delete but does not implement it"):
        runtime.delete({"email": "a@b.co"})


def test_the_runtime_validates_payloads_before_the_connector_sees_them() -> None:
    calls: list[object] = []

    class Recorder:
        def create(self, request: object) -> None:
            calls.append(request)

        def fetch(self, kind: object) -> None:
            calls.append(kind)

    capabilities = {Capability.CREATE, Capability.FETCH}
    runtime = Runtime(ConnectorType("rec", "", capabilities, _opens(Recorder())), {})
    with pytest.raises(InvalidInput, match="extra fields found"):
        runtime.create({"email": "a@b.co", "unknown": 1})
    with pytest.raises(InvalidInput, match="unknown fetch kind"):
        runtime.fetch("roles")
    assert calls == []
