"""Plugin discovery: the pluggy manager that finds connectors through the ``idhub`` entry point.

Shaped like pluggy's eggsample host and llm's ``plugins.py``: add the hookspecs, load the
entry points, register built-ins, then ``check_pending()`` so that a hookimpl whose name matches
no hookspec (a misspelling) stops the host at start-up instead of being ignored.
"""

from __future__ import annotations

from collections.abc import Iterable

import pluggy

from hostsim.contract import hookspecs
from hostsim.registry import ConnectorRegistry

ENTRY_POINT_GROUP = hookspecs.PROJECT


def get_plugin_manager(
    extra_plugins: Iterable[object] = (), *, load_entry_points: bool = True
) -> pluggy.PluginManager:
    """A plugin manager with every installed plugin loaded and validated.

    ``extra_plugins`` are registered as well (tests and embedders use it to add a plugin object
    without installing a distribution).
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    if load_entry_points:
        manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    for plugin in extra_plugins:
        manager.register(plugin)
    manager.check_pending()
    return manager


def load_connectors(manager: pluggy.PluginManager | None = None) -> ConnectorRegistry:
    """Ask every plugin to register its connector types and return the filled registry."""
    registry = ConnectorRegistry()
    (manager or get_plugin_manager()).hook.register_connectors(register=registry.register)
    return registry
