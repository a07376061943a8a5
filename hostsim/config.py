"""The host's config file: one TOML table of settings per connector type.

```toml
[aws-iam]
region = "us-east-1"

[aws-iam.attributes.department]
tag = "Department"
```

The host only reads the file and picks the connector's table; the connector validates its own
settings (and names the offending key).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from hostsim.errors import ConfigurationError


def read_config(path: Path | None) -> dict[str, Any]:
    """The whole file as a dict; an absent ``path`` means no settings at all."""
    if path is None:
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigurationError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"config file {path} is not valid TOML: {exc}") from None


def connector_settings(config: dict[str, Any], connector: str, known: set[str]) -> dict[str, Any]:
    """The table for ``connector``. A table for a connector that is not installed is refused,
    since it most often is a misspelled name whose settings would otherwise be ignored."""
    unknown = sorted(set(config) - known)
    if unknown:
        raise ConfigurationError(
            f"config has a table for unknown connector(s) {', '.join(unknown)} "
            f"(installed: {', '.join(sorted(known))})"
        )
    table = config.get(connector, {})
    if not isinstance(table, dict):
        raise ConfigurationError(f"config key {connector!r} must be a table")
    return table
