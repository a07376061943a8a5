"""Reading and rewriting AWS query-protocol requests (IAM, STS) at the WSGI level.

IAM speaks the "query" protocol: a form-encoded POST whose ``Action`` names the operation and
whose lists are flattened into ``Name.member.N`` keys. The middleware has to look inside those
bodies before moto does, and sometimes hand moto a rewritten body, so both directions live here.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode
from wsgiref.types import WSGIEnvironment

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

# "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/iam/aws4_request, SignedHeaders=..."
_CREDENTIAL_SCOPE = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


@dataclass(frozen=True)
class Signature:
    """What the SigV4 Authorization header says about the caller and the target service."""

    access_key: str | None = None
    region: str | None = None
    service: str | None = None


@dataclass
class QueryRequest:
    """One decoded request: the service it targets, its Action and its flat parameters.

    ``params`` keeps the order the client sent, so a rewritten body differs from the original
    only where a rule changed a value.
    """

    signature: Signature
    params: dict[str, str] = field(default_factory=dict)

    @property
    def service(self) -> str | None:
        """The SigV4 service name (``"iam"``, ``"sts"``), or None for unsigned requests."""
        return self.signature.service

    @property
    def action(self) -> str | None:
        """The operation name (``"CreateUser"``), or None when the request names none."""
        return self.params.get("Action")


def parse_signature(environ: WSGIEnvironment) -> Signature:
    """Read the access key, region and service from the SigV4 credential scope.

    Moto routes on the same header, so what we infer here is what moto will act on.
    """
    match = _CREDENTIAL_SCOPE.search(str(environ.get("HTTP_AUTHORIZATION", "")))
    if match is None:
        return Signature()
    return Signature(access_key=match[1], region=match[2], service=match[3].lower())


def is_form_request(environ: WSGIEnvironment) -> bool:
    """Whether the body is form-encoded, i.e. safe and useful to decode as query parameters."""
    content_type = str(environ.get("CONTENT_TYPE", ""))
    return content_type.split(";", 1)[0].strip().lower() == FORM_CONTENT_TYPE


def read_body(environ: WSGIEnvironment) -> bytes:
    """Read the whole request body and put an identical, rewound copy back for moto.

    ``wsgi.input`` is a one-shot stream; once we have read it, moto would see an empty body
    unless it gets a fresh stream with the same bytes and a matching CONTENT_LENGTH.
    """
    stream = environ["wsgi.input"]
    length_header = str(environ.get("CONTENT_LENGTH") or "").strip()
    if length_header.isdigit():
        body: bytes = stream.read(int(length_header))
    elif environ.get("wsgi.input_terminated"):
        body = stream.read()
    else:
        body = b""
    replace_body(environ, body)
    return body


def replace_body(environ: WSGIEnvironment, body: bytes) -> None:
    """Give the downstream app ``body`` as its request body."""
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))


def decode_params(environ: WSGIEnvironment, body: bytes) -> dict[str, str]:
    """Merge the query string and a form body into one flat parameter dict.

    The query protocol allows both places; botocore uses the body, but a hand-written GET
    (``?Action=ListUsers``) is just as valid.
    """
    params = dict(parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True))
    params.update(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    return params


def encode_params(params: Mapping[str, str]) -> bytes:
    """Encode parameters back into a form body (the inverse of :func:`decode_params`)."""
    return urlencode(list(params.items())).encode("utf-8")


def member_list(params: Mapping[str, str], prefix: str) -> list[str]:
    """Collect a flattened list ``Prefix.member.1``, ``Prefix.member.2``, ... in index order."""
    pattern = re.compile(rf"{re.escape(prefix)}\.member\.(\d+)")
    found = sorted((int(m[1]), key) for key in params if (m := pattern.fullmatch(key)))
    return [params[key] for _, key in found]


def member_structs(
    params: Mapping[str, str], prefix: str, fields: tuple[str, ...]
) -> list[dict[str, str]]:
    """Collect a flattened list of structures (``Tags.member.N.Key`` / ``.Value``).

    A member that lacks a field gets "" for it, which is what an omitted tag value means.
    """
    indexes = sorted({int(m[1]) for key in params if (m := _member_index(prefix, key)) is not None})
    return [
        {name: params.get(f"{prefix}.member.{index}.{name}", "") for name in fields}
        for index in indexes
    ]


def _member_index(prefix: str, key: str) -> re.Match[str] | None:
    return re.fullmatch(rf"{re.escape(prefix)}\.member\.(\d+)\.\w+", key)
