"""The connector application's SCIM 2.0 API (RFC 7643/7644) for one connector.

IDHub (or any SCIM client) talks SCIM; the server talks to the connector only through
:class:`~hostsim.runtime.Runtime`. One concern per module: :mod:`.app` (WSGI app, routing,
lifecycle endpoints), :mod:`.users` and :mod:`.groups` (the mappings), :mod:`.discovery`,
:mod:`.auth`, :mod:`.errors`, :mod:`.body` (what request bodies are read, and how much),
:mod:`.server` (the HTTP server, logging through the redactor), :mod:`.index` (UserId and
GroupId to name, so that a request reads one account, not the whole target). The protocol's
models, validation, filters and PATCH come from scim2-models.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from hostsim import redaction
from hostsim.contract.errors import ConfigurationError
from hostsim.contract.model import FetchKind
from hostsim.runtime import Runtime
from hostsim.scim.app import BASE_PATH, ScimApp, make_wsgi_server
from hostsim.scim.auth import CONFIG_TABLE, Credentials, check_startup, credentials
from hostsim.scim.body import Limits, limits
from hostsim.scim.server import ACCESS_LOG

__all__ = [
    "BASE_PATH",
    "CONFIG_TABLE",
    "Credentials",
    "Limits",
    "ScimApp",
    "credentials",
    "make_wsgi_server",
    "serve",
]

log = logging.getLogger("hostsim.scim")

#: The fetch kinds the SCIM mapping needs (users with their groups, and the groups' members).
#: ``policy-access`` is read when the type declares it: its managed policies are the Users'
#: ``entitlements``; a type without it (Identity Center) serves Users without them.
SCIM_READS = (FetchKind.USERS, FetchKind.GROUPS, FetchKind.GROUP_ACCESS)


def _warm_up(app: ScimApp, redact: redaction.Redactor) -> None:
    """The server's start-up reads, off the serving thread: a failure (AWS unreachable) is
    logged and left to the first request that needs them, which tries again."""
    try:
        seconds = app.warm_up()
    except Exception as exc:
        log.warning("%s", redact(f"start-up reads failed, retried on first use: {exc}"))
    else:
        log.info("start-up reads (connector, index) done in %.1f s", seconds)


def serve(
    runtime: Runtime,
    environ: Mapping[str, str],
    table: Mapping[str, Any],
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    run_open: bool = False,
    redact: redaction.Redactor | None = None,
) -> int:
    """Serve until interrupted. Refuses to start without credentials unless ``run_open`` on a
    loopback address, and with a ``[scim]`` table it cannot use. The server's log lines are
    masked by ``redact`` (by default one knowing the environment's secrets and the table's),
    and the access log is on (INFO) unless the logging setup says otherwise."""
    missing = sorted(set(SCIM_READS) - set(runtime.connector_type.fetch_kinds))
    if missing:
        raise ConfigurationError(
            f"the SCIM API cannot serve connector {runtime.connector_type.name!r} yet: it "
            f"needs the reads {', '.join(missing)}"
        )
    found = credentials(environ, table)
    body_limits = limits(table)
    check_startup(found, host, run_open)
    if redact is None:
        redact = redaction.from_environment(environ)
        redact.add_settings({CONFIG_TABLE: table})
    if ACCESS_LOG.level == logging.NOTSET:
        ACCESS_LOG.setLevel(logging.INFO)
    app = ScimApp(runtime, found, limits=body_limits, redact=redact)
    server = make_wsgi_server(app, host, port)
    auth = ", ".join(found.schemes) or "none (open, loopback only)"
    print(
        f"hostsim: serving {runtime.connector_type.name}"
        f"{'' if runtime.account_id is None else ' of account ' + runtime.account_id} over SCIM at "
        f"http://{host}:{server.server_port}{BASE_PATH} (authentication: {auth}); "
        "Ctrl-C stops",
        flush=True,
    )
    threading.Thread(target=_warm_up, args=(app, redact), name="warm-up", daemon=True).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
