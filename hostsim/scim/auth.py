"""Who may call the connector application: HTTP Basic and/or a bearer token.

Credentials come from the environment (``IDHUB_SCIM_TOKEN``, ``IDHUB_SCIM_USERNAME`` and
``IDHUB_SCIM_PASSWORD``), which wins, or from the ``[scim]`` table of the config file
(``token``, ``username``, ``password``). Without any, the server refuses to start unless told to
run open, and then only on a loopback address. Secrets are compared in constant time and never
logged: the CLI's redactor knows the environment variables and every config key named like a
secret.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from collections.abc import Mapping
from typing import Any

from attrs import frozen

from hostsim.contract.errors import ConfigurationError

#: The config file's table for the SCIM server (not a connector's table).
CONFIG_TABLE = "scim"
_KEYS = {
    "token": "IDHUB_SCIM_TOKEN",
    "username": "IDHUB_SCIM_USERNAME",
    "password": "IDHUB_SCIM_PASSWORD",
}


@frozen(repr=False)
class Credentials:
    """What a caller must present. ``repr`` never shows the secrets."""

    token: str | None = None
    username: str | None = None
    password: str | None = None

    @property
    def basic(self) -> bool:
        return self.username is not None and self.password is not None

    @property
    def configured(self) -> bool:
        return self.token is not None or self.basic

    @property
    def schemes(self) -> tuple[str, ...]:
        """``bearer`` and/or ``basic``, in the order the server accepts them."""
        return (("bearer",) if self.token else ()) + (("basic",) if self.basic else ())

    def __repr__(self) -> str:
        return f"Credentials(schemes={self.schemes!r})"

    def allows(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header carries these credentials."""
        if not self.configured:
            return True  # running open (loopback only, checked at start-up)
        if not authorization:
            return False
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer" and self.token:
            return hmac.compare_digest(value.encode(), self.token.encode())
        if scheme.lower() == "basic" and self.basic:
            try:
                decoded = base64.b64decode(value, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return False
            user, sep, password = decoded.partition(":")
            assert self.username is not None and self.password is not None
            return bool(sep) & (
                hmac.compare_digest(user.encode(), self.username.encode())
                & hmac.compare_digest(password.encode(), self.password.encode())
            )
        return False

    def challenge(self) -> str:
        """The ``WWW-Authenticate`` header of a 401."""
        return ", ".join(
            'Bearer realm="scim"' if scheme == "bearer" else 'Basic realm="scim"'
            for scheme in self.schemes
        )


def credentials(environ: Mapping[str, str], table: Mapping[str, Any]) -> Credentials:
    """The credentials in force: each from the environment if set there, else the config."""
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise ConfigurationError(
            f"unknown key(s) in [{CONFIG_TABLE}]: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_KEYS))})"
        )
    values: dict[str, str | None] = {}
    for key, variable in _KEYS.items():
        value = environ.get(variable) or table.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigurationError(f"[{CONFIG_TABLE}] {key} must be a non-empty string")
        values[key] = value
    found = Credentials(**values)
    if (found.username is None) != (found.password is None):
        raise ConfigurationError(
            "HTTP Basic needs both a username and a password "
            "(IDHUB_SCIM_USERNAME / IDHUB_SCIM_PASSWORD or [scim] username / password)"
        )
    return found


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_startup(found: Credentials, host: str, run_open: bool) -> None:
    """Refuse to serve without credentials, unless asked to run open on a loopback address."""
    if found.configured:
        return
    if not run_open:
        raise ConfigurationError(
            "no SCIM credentials: set IDHUB_SCIM_TOKEN (bearer) and/or IDHUB_SCIM_USERNAME and "
            "IDHUB_SCIM_PASSWORD (Basic), or the [scim] table of the config; --open runs without "
            "authentication on a loopback address, for development only"
        )
    if not is_loopback(host):
        raise ConfigurationError(f"--open serves only on a loopback address, not {host!r}")
