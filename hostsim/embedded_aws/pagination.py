"""Pagination for the IAM list operations where moto ignores ``MaxItems`` and ``Marker``.

Real IAM returns at most 100 items per page by default (``MaxItems`` up to 1000) and a
``Marker`` for the rest. Moto returns everything in one page for ListUsers, ListGroups,
GetGroup and others, so a connector that forgets to follow markers would pass every test and
then see only the first 100 users in production. Here those operations are forwarded without
the paging parameters and moto's complete answer is cut into IAM-sized pages.
"""

from __future__ import annotations

import base64
import binascii
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass

from hostsim.embedded_aws.iam_errors import invalid_input, validation_error
from hostsim.embedded_aws.responses import Reply, edit_result, xml_tag

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_MARKER_PREFIX = "embedded-aws:"

#: Operations moto does not paginate, mapped to the element that holds their list.
LIST_ELEMENTS: dict[str, str] = {
    "ListUsers": "Users",
    "ListGroups": "Groups",
    "ListGroupsForUser": "Groups",
    "GetGroup": "Users",
    "ListUserTags": "Tags",
    "ListAccessKeys": "AccessKeyMetadata",
    "ListUserPolicies": "PolicyNames",
    "ListGroupPolicies": "PolicyNames",
}


@dataclass(frozen=True)
class Page:
    """Which slice of the full list a request asked for."""

    start: int
    size: int


def split(params: Mapping[str, str]) -> tuple[dict[str, str], Page]:
    """Take the paging parameters out of a request (moto must see the whole list)."""
    remaining = {k: v for k, v in params.items() if k not in {"Marker", "MaxItems"}}
    return remaining, Page(start=_decode_marker(params.get("Marker")), size=_size(params))


def apply(reply: Reply, action: str, page: Page) -> Reply:
    """Cut moto's complete list down to the requested page and say whether more follow."""
    return edit_result(reply, action, lambda result: _cut(result, action, page))


def _cut(result: ET.Element, action: str, page: Page) -> None:
    items = result.find(xml_tag(LIST_ELEMENTS[action]))
    if items is None:
        return
    members = list(items)
    for member in members[: page.start] + members[page.start + page.size :]:
        items.remove(member)
    for name in ("IsTruncated", "Marker"):
        stale = result.find(xml_tag(name))
        if stale is not None:
            result.remove(stale)
    more = len(members) > page.start + page.size
    ET.SubElement(result, xml_tag("IsTruncated")).text = "true" if more else "false"
    if more:
        ET.SubElement(result, xml_tag("Marker")).text = _encode_marker(page.start + page.size)


def _size(params: Mapping[str, str]) -> int:
    text = params.get("MaxItems")
    if text is None:
        return DEFAULT_PAGE_SIZE
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE_SIZE:
        raise validation_error(
            f"Value '{text}' at 'maxItems' failed to satisfy constraint: "
            f"Member must have value between 1 and {MAX_PAGE_SIZE}"
        )
    return int(text)


def _encode_marker(start: int) -> str:
    """An opaque marker, as IAM's are: clients must pass it back, never build one."""
    return base64.urlsafe_b64encode(f"{_MARKER_PREFIX}{start}".encode()).decode()


def _decode_marker(marker: str | None) -> int:
    if not marker:
        return 0
    try:
        text = base64.urlsafe_b64decode(marker.encode()).decode()
    except (binascii.Error, UnicodeDecodeError):
        text = ""
    offset = text.removeprefix(_MARKER_PREFIX)
    if not text.startswith(_MARKER_PREFIX) or not offset.isdigit():
        raise invalid_input(f"Invalid Marker: {marker}")
    return int(offset)
