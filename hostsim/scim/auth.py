"""Who may call the connector application: HTTP Basic and/or a bearer token.

Credentials come from the environment (``IDHUB_SCIM_TOKEN``, ``IDHUB_SCIM_USERNAME`` and
``IDHUB_SCIM_PASSWORD``), which wins, or from the ``[scim]`` table of the config file
(``token``, ``username``, ``password``; the table's other keys are :mod:`.body`'s limits).
Without any, the server refuses to start unless told to run open, and then only on a loopback
address; a credential no client could present (blank, say) refuses to start too. Secrets are
compared in constant time and never logged: every line the server logs, the access log
included, passes through a redactor that knows them (:mod:`.server`).
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
from hostsim.scim.body import TABLE_KEYS as OTHER_KEYS

#: The config file's table for the SCIM server (not a connector's table).
CONFIG_TABLE = "scim"
_KEYS = {
    "token": "IDHUB_SCIM_TOKEN",
    "username": "IDHUB_SCIM_USERNAME",
    "password": "IDHUB_SCIM_PASSWORD",
}

#: The shortest secrets served: a client's secret token is generated, not typed, and a short
#: one would be guessed; they are also masked wherever they appear, which a secret of a few
#: characters (a common word) cannot be.
MIN_LENGTH = {"token": 16, "password": 12}


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
    """The credentials in force: each from the environment if set there (an empty variable
    counts as unset), else the config. A value no client could present is refused here, at
    start-up, rather than serving an API nobody can use: a blank one, a token with whitespace
    around it (an ``Authorization`` header cannot carry it), a username with a colon (HTTP Basic
    splits at the first one, RFC 7617), a token under 16 or a password under 12 characters."""
    unknown = sorted(set(table) - set(_KEYS) - OTHER_KEYS)
    if unknown:
        raise ConfigurationError(
            f"unknown key(s) in [{CONFIG_TABLE}]: {', '.join(unknown)} "
            f"(known: {', '.join(sorted({*_KEYS, *OTHER_KEYS}))})"
        )
    values: dict[str, str | None] = {}
    for key, variable in _KEYS.items():
        value: object = environ.get(variable) or None
        where = variable
        if value is None and key in table:
            value, where = table[key], f"[{CONFIG_TABLE}] {key}"
        if value is not None:
            _check(key, where, value)
        values[key] = value if isinstance(value, str) else None
    found = Credentials(**values)
    if (found.username is None) != (found.password is None):
        raise ConfigurationError(
            "HTTP Basic needs both a username and a password "
            "(IDHUB_SCIM_USERNAME / IDHUB_SCIM_PASSWORD or [scim] username / password)"
        )
    return found


def _check(key: str, where: str, value: object) -> None:
    """Refuse a credential no client could present (see :func:`credentials`)."""
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{where} must be a non-empty string")
    if not value.strip():
        raise ConfigurationError(
            f"{where} is blank (only whitespace): no client could present it; set a real "
            f"{key} or unset it"
        )
    if key == "token" and value != value.strip():
        raise ConfigurationError(
            f"{where} begins or ends with whitespace, which no Authorization header can carry"
        )
    if key == "username" and ":" in value:
        raise ConfigurationError(
            f"{where} contains a colon, which HTTP Basic cannot carry in a username"
        )
    shortest = MIN_LENGTH.get(key, 0)
    if len(value) < shortest:
        raise ConfigurationError(
            f"{where} has {len(value)} characters: a {key} this short can be guessed, and is "
            f"too short to mask in logs; use at least {shortest} (e.g. `openssl rand -hex 32`)"
        )


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
