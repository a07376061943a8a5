"""The hooks a plugin implements. The pluggy project name, markers and entry-point group are
all ``idhub``.

Plugins import the markers from here, the way llm plugins import ``llm.hookimpl``::

    from hostsim.contract import hookimpl

    @hookimpl
    def register_connectors(register):
        register(ConnectorType(...))

Every hookspec is listed in docs/ARCHITECTURE.md; tests/test_contract.py fails when the two
disagree.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from hostsim.contract.connector import ConnectorType

PROJECT = "idhub"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_connectors(register: Callable[[ConnectorType], None]) -> None:
    """Register the connector types this plugin provides.

    Call ``register(ConnectorType(...))`` once per type. The host lists types and their
    capabilities without opening a connector; registering a name twice (in one plugin or
    across plugins) is an error, never a silent "first one wins".
    """
