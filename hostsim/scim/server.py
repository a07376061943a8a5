"""The HTTP server around :class:`~hostsim.scim.app.ScimApp`: werkzeug's threaded server, with
every line it logs passing through the app's redactor.

werkzeug writes its access log and its own errors to the ``werkzeug`` logger, straight from the
request line: a secret in a query string (a token a client put in a URL by mistake) would be
logged as sent, and werkzeug decodes some percent-escapes of a target and not others
(``tok/en%2Bwith``), a spelling no redactor looking for the secret or its encoded form finds.
Here the server logs through :data:`ACCESS_LOG` (``hostsim.scim.access``) and
``hostsim.scim`` instead; the request target is logged fully percent-decoded (control
characters escaped, so a client cannot forge log lines), which puts a secret in its plain
spelling, and the whole line is then masked by the redactor: the app's, which knows the
server's own credentials and whatever the host gave it. ``hostsim serve`` adds the host's
logging filter on top.

A connection that says nothing for :data:`READ_TIMEOUT` seconds, mid-headers or mid-body, is
closed (a body cut short that way is a ``400``, see :mod:`.body`), so a stalled client cannot
hold a thread forever.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

ACCESS_LOG = logging.getLogger("hostsim.scim.access")
log = logging.getLogger("hostsim.scim")

#: Seconds a client may leave the connection idle while sending its request.
READ_TIMEOUT = 60.0
#: Control characters (C0, DEL, C1) shown escaped, as werkzeug does, so a decoded ``%0A``
#: cannot start a forged log line.
_CONTROL = str.maketrans({code: f"\\x{code:02x}" for code in [*range(0x20), *range(0x7F, 0xA0)]})


def _no_redaction(text: str) -> str:
    return text


class _RequestHandler(WSGIRequestHandler):
    """werkzeug's handler, logging through our loggers and the server's redactor."""

    protocol_version = "HTTP/1.1"
    timeout = READ_TIMEOUT

    def _redact(self, text: str) -> str:
        server = self.server
        redact = server.redact if isinstance(server, ScimServer) else _no_redaction
        return redact(text)

    def _request_line(self) -> str:
        command = getattr(self, "command", None)
        path = getattr(self, "path", None)
        if command and path:
            return f"{command} {unquote(path)} {self.request_version}"
        return str(getattr(self, "requestline", ""))

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """The access log line: the client, the time, the request decoded, status, size."""
        self.log("info", '"%s" %s %s', self._request_line(), code, size)

    def log(self, type: str, message: str, *args: Any) -> None:
        # werkzeug's handler logs "info" (requests) and "error" (a request it could not parse,
        # a timeout): both are about a client, so neither is a server error.
        text = (message % args if args else message).strip().translate(_CONTROL)
        line = f"{self.address_string()} - - [{self.log_date_time_string()}] {text}"
        level = logging.INFO if type == "info" else logging.WARNING
        ACCESS_LOG.log(level, "%s", self._redact(line))


class ScimServer(ThreadedWSGIServer):
    """werkzeug's threaded server; its own messages (an error outside the app, which the app
    turns into SCIM errors itself) are logged redacted too."""

    def __init__(
        self, host: str, port: int, app: Any, redact: Callable[[str], str] = _no_redaction
    ) -> None:
        self.redact = redact
        super().__init__(host, port, app, handler=_RequestHandler)

    def log(self, type: str, message: str, *args: Any) -> None:
        text = message % args if args else message
        level = logging.INFO if type == "info" else logging.ERROR
        log.log(level, "%s", self.redact(text.rstrip()))

    def handle_error(self, request: Any, client_address: Any) -> None:
        """socketserver prints a failed request's traceback to stderr; log it redacted."""
        log.error(
            "%s", self.redact(f"request from {client_address} failed:\n{traceback.format_exc()}")
        )
