"""IAM-shaped XML responses built by the middleware itself.

Errors the middleware raises and the operations it implements must look exactly like IAM's
own replies, because botocore parses them with IAM's service model: an error body becomes a
``ClientError`` with ``Error.Code`` only if it is an ``ErrorResponse``; a result is only
found inside ``<ActionResponse><ActionResult>``.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

IAM_XMLNS = "https://iam.amazonaws.com/doc/2010-05-08/"

#: A value in a result tree: text, a nested structure, or a list of ``<member>`` structures.
XmlValue = str | Mapping[str, "XmlValue"] | Sequence[Mapping[str, "XmlValue"]]


@dataclass(frozen=True)
class Reply:
    """A complete HTTP reply, ready to hand to ``start_response``."""

    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def status_line(self) -> str:
        """The WSGI status string (``"409 Conflict"``); the reason text is cosmetic."""
        return f"{self.status} {_REASONS.get(self.status, 'Error')}"


_REASONS = {
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def new_request_id() -> str:
    """A fresh request id, as IAM puts in every reply (botocore exposes it to callers)."""
    return str(uuid.uuid4())


def iso_timestamp(moment: datetime) -> str:
    """Format a timestamp the way IAM does (ISO 8601, UTC, ``Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def error_reply(code: str, message: str, status: int) -> Reply:
    """An IAM ``ErrorResponse``; 5xx errors are the service's fault (``Receiver``)."""
    request_id = new_request_id()
    root = ET.Element("ErrorResponse", xmlns=IAM_XMLNS)
    error = ET.SubElement(root, "Error")
    ET.SubElement(error, "Type").text = "Receiver" if status >= 500 else "Sender"
    ET.SubElement(error, "Code").text = code
    ET.SubElement(error, "Message").text = message
    ET.SubElement(root, "RequestId").text = request_id
    return _xml_reply(status, root, request_id)


def result_reply(action: str, result: Mapping[str, XmlValue] | None = None) -> Reply:
    """A successful ``<ActionResponse>``; ``result`` None means the operation returns nothing."""
    request_id = new_request_id()
    root = ET.Element(f"{action}Response", xmlns=IAM_XMLNS)
    if result is not None:
        _append_fields(ET.SubElement(root, f"{action}Result"), result)
    metadata = ET.SubElement(root, "ResponseMetadata")
    ET.SubElement(metadata, "RequestId").text = request_id
    return _xml_reply(200, root, request_id)


def edit_result(reply: Reply, action: str, edit: Callable[[ET.Element], None]) -> Reply:
    """Change the ``<ActionResult>`` of a successful moto reply in place.

    Used where moto's answer is right in substance but incomplete (a missing element) or
    shaped differently from IAM's (no pagination). Error replies pass through untouched.
    """
    if reply.status != 200:
        return reply
    root = ET.fromstring(reply.body)
    result = root.find(xml_tag(f"{action}Result"))
    if result is None:
        return reply
    edit(result)
    body = ET.tostring(root, encoding="utf-8", xml_declaration=True, default_namespace=IAM_XMLNS)
    headers = [(k, v) for k, v in reply.headers if k.lower() != "content-length"]
    return Reply(reply.status, body, [*headers, ("Content-Length", str(len(body)))])


def xml_tag(name: str) -> str:
    """An element name in IAM's namespace, as ElementTree spells it."""
    return f"{{{IAM_XMLNS}}}{name}"


def _append_fields(parent: ET.Element, fields: Mapping[str, XmlValue]) -> None:
    for name, value in fields.items():
        child = ET.SubElement(parent, name)
        if isinstance(value, str):
            child.text = value
        elif isinstance(value, Mapping):
            _append_fields(child, value)
        else:
            for item in value:
                _append_fields(ET.SubElement(child, "member"), item)


def _xml_reply(status: int, root: ET.Element, request_id: str) -> Reply:
    body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    headers = [
        ("Content-Type", "text/xml"),
        ("Content-Length", str(len(body))),
        ("x-amzn-RequestId", request_id),
    ]
    return Reply(status=status, body=body, headers=headers)
