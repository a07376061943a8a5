"""The connector registry: every connector type the loaded plugins offer, by name."""

from __future__ import annotations

from collections.abc import Iterator

from hostsim.contract.connector import ConnectorType
from hostsim.contract.errors import ConfigurationError, PluginError


class ConnectorRegistry:
    """Connector types by name. Registering a name twice is a plugin bug and fails loudly."""

    def __init__(self) -> None:
        self._types: dict[str, ConnectorType] = {}

    def register(self, connector_type: ConnectorType) -> None:
        """The ``register`` callback handed to every plugin's ``register_connectors`` hook."""
        if not isinstance(connector_type, ConnectorType):
            raise PluginError(
                f"register() takes a ConnectorType, got {type(connector_type).__name__}"
            )
        if connector_type.name in self._types:
            raise PluginError(f"connector type {connector_type.name!r} is registered twice")
        self._types[connector_type.name] = connector_type

    def __iter__(self) -> Iterator[ConnectorType]:
        return iter(sorted(self._types.values(), key=lambda found: found.name))

    def __len__(self) -> int:
        return len(self._types)

    def get(self, name: str) -> ConnectorType:
        try:
            return self._types[name]
        except KeyError:
            known = ", ".join(sorted(self._types)) or "none installed"
            raise ConfigurationError(f"unknown connector {name!r} (installed: {known})") from None

    def choose(self, name: str | None) -> ConnectorType:
        """The named connector; without a name, the only one installed, or else the one type
        that declares itself the ``default`` (aws-iam beside aws-identity-center, so that
        every command written before the second type existed keeps working)."""
        if name is not None:
            return self.get(name)
        if len(self._types) == 1:
            return next(iter(self._types.values()))
        defaults = [found for found in self._types.values() if found.default]
        if len(defaults) == 1:
            return defaults[0]
        if not self._types:
            raise ConfigurationError(
                "no connector installed: no plugin registers one through the 'idhub' entry point"
            )
        names = ", ".join(sorted(self._types))
        raise ConfigurationError(
            f"several connectors installed ({names}): pick one with --connector"
        )
