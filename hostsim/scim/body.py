"""Request bodies: which ones the server reads, how much of them, and how deep.

- **Media type.** A POST, PUT or PATCH body must be ``application/scim+json`` (RFC 7644 §3.1)
  or ``application/json``, optionally with ``charset=utf-8``; anything else, or a body without
  a ``Content-Type``, is ``415`` before a byte of it is read. Why so strict: a browser sends
  ``text/plain``, form and multipart bodies (and bodies with no type) to any site without a CORS
  preflight, with the HTTP Basic credentials it has cached for this server; a JSON media type
  needs a preflight, which this server never grants. So a page on another site cannot make a
  logged-in administrator's browser create users here (cross-site request forgery).
- **Size.** At most :attr:`Limits.max_payload_size` bytes (default 1 MiB, ``max_payload_size``
  in the ``[scim]`` table; the ``ServiceProviderConfig`` advertises it as ``maxPayloadSize``).
  A ``Content-Length`` above it is ``413`` before reading; a body without one (chunked) is
  counted while it is read and cut off at the limit, so a client cannot make the server hold
  200 MB in memory and parse them.
- **Shape.** UTF-8 (strictly: a malformed byte is ``400``, not replaced), JSON (no ``NaN``),
  an object, nested at most :data:`MAX_DEPTH` deep (a deeper one would only exhaust the parser's
  recursion; SCIM payloads are 3 to 6 levels deep). A body is required where the method needs
  one. All of these are ``400 invalidSyntax``.
- **A client that hangs up mid-body** gets ``400`` (which it will not read) and one quiet log
  line, not a ``500`` with a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from attrs import frozen
from scim2_models import Error
from werkzeug.exceptions import ClientDisconnected
from werkzeug.wrappers import Request

from hostsim.contract.errors import ConfigurationError

#: The default and the bounds of ``max_payload_size`` (bytes).
DEFAULT_MAX_PAYLOAD_SIZE = 1024 * 1024
MIN_PAYLOAD_SIZE = 1024
MAX_PAYLOAD_SIZE = 64 * 1024 * 1024
#: The deepest nesting of arrays and objects a body may have (the body's object is level 1).
MAX_DEPTH = 32
#: The ``[scim]`` table's keys that this module reads.
TABLE_KEYS = frozenset({"max_payload_size"})
#: The media types a body may have (RFC 7644 §3.1 and §8.1), compared lower-case.
JSON_TYPES = frozenset({"application/scim+json", "application/json"})
#: The methods whose bodies mean something here.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_READ_SIZE = 64 * 1024


@frozen
class Limits:
    """How much of a request body the server reads."""

    max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE


def limits(table: Mapping[str, Any]) -> Limits:
    """The limits set in the ``[scim]`` table (its other keys are the credentials')."""
    if "max_payload_size" not in table:
        return Limits()
    value = table["max_payload_size"]
    if (
        not isinstance(value, int)
        or isinstance(value, bool)
        or not MIN_PAYLOAD_SIZE <= value <= MAX_PAYLOAD_SIZE
    ):
        raise ConfigurationError(
            f"[scim] max_payload_size must be a whole number of bytes from {MIN_PAYLOAD_SIZE} "
            f"to {MAX_PAYLOAD_SIZE}, not {value!r}"
        )
    return Limits(max_payload_size=value)


class Refusal(Exception):
    """A request refused before it reached the resource code, with its SCIM error. ``note``,
    when set, is worth a quiet line in the server log (a client that hung up)."""

    def __init__(self, error: Error, note: str = "") -> None:
        super().__init__(error.detail)
        self.error = error
        self.note = note


def _invalid(detail: str, note: str = "") -> Refusal:
    return Refusal(Error(status=400, scim_type="invalidSyntax", detail=detail), note)


def _too_large(limit: int) -> Refusal:
    return Refusal(Error(status=413, detail=f"the body is larger than {limit} bytes"))


def _unsupported(detail: str) -> Refusal:
    return Refusal(
        Error(
            status=415,
            detail=f"{detail}: a body must be application/scim+json or application/json "
            "(charset utf-8)",
        )
    )


def _announced_length(request: Request) -> int | None:
    """The ``Content-Length`` (None when chunked or absent); one that is not a number is a
    malformed request, not an empty body (werkzeug would read it as 0)."""
    if request.headers.get("Transfer-Encoding"):
        return None
    raw = request.headers.get("Content-Length")
    if raw is None:
        return None
    if not raw.isascii() or not raw.strip().isdigit():
        raise _invalid(f"Content-Length {raw!r} is not a number of bytes")
    return int(raw)


def _has_body(request: Request) -> bool:
    length = _announced_length(request)
    return bool(request.headers.get("Transfer-Encoding")) or bool(length)


def check_headers(request: Request, limits: Limits) -> None:
    """What the headers alone decide, before any of the body is read: the media type of a
    POST, PUT or PATCH (415) and an announced length over the limit (413)."""
    if request.method not in BODY_METHODS:
        return
    content_type = request.headers.get("Content-Type")
    if content_type is not None:
        if request.mimetype not in JSON_TYPES:
            raise _unsupported(f"media type {request.mimetype or content_type!r} is not accepted")
        charset = request.mimetype_params.get("charset")
        if charset is not None and charset.lower().replace("-", "") != "utf8":
            raise _unsupported(f"charset {charset!r} is not accepted")
    elif _has_body(request):
        raise _unsupported("the body has no Content-Type")
    length = _announced_length(request)
    if length is not None and length > limits.max_payload_size:
        raise _too_large(limits.max_payload_size)


def _read(request: Request, limit: int) -> bytes:
    """At most ``limit`` bytes of the body; 413 past it. werkzeug's stream stops at the
    ``Content-Length`` (and reports a client that sent less); a chunked body is counted here."""
    stream = request.stream
    received = bytearray()
    try:
        while chunk := stream.read(min(_READ_SIZE, limit + 1 - len(received))):
            received += chunk
            if len(received) > limit:
                raise _too_large(limit)
    except (ClientDisconnected, OSError):
        raise _invalid(
            "the body ended before it was complete",
            note="the client hung up (or stalled) before its body was complete",
        ) from None
    return bytes(received)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in ``value``, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def read_json(request: Request, limits: Limits) -> dict[str, Any]:
    """The body as a JSON object, or a :class:`Refusal` saying what is wrong with it."""
    check_headers(request, limits)
    data = _read(request, limits.max_payload_size)
    if not data.strip():
        raise _invalid("a JSON body is required")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid(f"the body is not UTF-8 (byte {exc.start})") from None
    try:
        parsed = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise _invalid(f"the body is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:
        raise _invalid(f"the body is not JSON: {exc}") from None
    if _depth(parsed) > MAX_DEPTH:
        raise _invalid(f"the body is nested more than {MAX_DEPTH} levels deep")
    if not isinstance(parsed, dict):
        raise _invalid("the body must be a JSON object")
    return parsed
