"""Pagination for the IAM list operations where moto ignores ``MaxItems`` and ``Marker``.

Real IAM returns at most 100 items per page by default (``MaxItems`` up to 1000) and a
``Marker`` for the rest. Moto returns everything in one page for ListUsers, ListGroups,
GetGroup and others, so a connector that forgets to follow markers would pass every test and
then see only the first 100 users in production. Here those operations are forwarded without
the paging parameters and moto's complete answer is cut into IAM-sized pages.

The two bulk reads reconciliation is built on get the same treatment, so that the number of
calls a fetch makes here is the number it makes against IAM (see :func:`forward_page`):

* GetAccountAuthorizationDetails: moto always answers with everything. Rendering a whole
  account for every page would make each page cost as much as the account, so moto is shown
  only the page's window of entities (users, then groups, roles and policies, as the
  ``Filter`` selects them) and renders just that.
* ListPolicies: moto pages it, but with a plain index for marker, no bounds on ``MaxItems``
  and a spurious empty last page when the list fills the previous one exactly. Moto is asked
  for one item more than the page, which tells whether another page follows.
"""

from __future__ import annotations

import base64
import binascii
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from hostsim.embedded_aws.iam_errors import invalid_input, validation_error
from hostsim.embedded_aws.moto_state import IAMBackend
from hostsim.embedded_aws.responses import Reply, edit_result, xml_tag

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_MARKER_PREFIX = "embedded-aws:"

#: Sends (possibly rewritten) parameters to moto and returns its reply.
Forward = Callable[[dict[str, str]], Reply]

#: The bulk reads :func:`forward_page` pages.
BULK_READS = frozenset({"GetAccountAuthorizationDetails", "ListPolicies"})

#: The entity lists of moto's ``get_account_authorization_details`` answer, in the order
#: GetAccountAuthorizationDetails pages walk through them.
_DETAIL_LISTS = ("users", "groups", "roles", "managed_policies")

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


def forward_page(
    backend: IAMBackend, action: str, params: dict[str, str], forward: Forward
) -> Reply:
    """Forward one request to moto; the bulk reads come back in IAM's pages, anything else
    exactly as moto answers it. Must run with moto's state locked (it is, in the middleware)."""
    if action == "GetAccountAuthorizationDetails":
        return _authorization_details(backend, params, forward)
    if action == "ListPolicies":
        return _policies(params, forward)
    return forward(params)


def _authorization_details(backend: IAMBackend, params: dict[str, str], forward: Forward) -> Reply:
    unpaged, page = split(params)
    with _window(backend, page) as more:
        reply = forward(unpaged)
    return edit_result(
        reply,
        "GetAccountAuthorizationDetails",
        lambda result: _set_truncation(result, page, more=more()),
    )


@contextmanager
def _window(backend: IAMBackend, page: Page) -> Iterator[Callable[[], bool]]:
    """Have moto's backend hand its GetAccountAuthorizationDetails renderer only the page's
    entities; yields a function telling whether more entities follow the page."""
    everything = backend.get_account_authorization_details
    more = False

    def windowed(policy_filter: list[str]) -> dict[str, Any]:
        nonlocal more
        details = dict(everything(policy_filter))
        entities = [(key, entity) for key in _DETAIL_LISTS for entity in details[key]]
        more = len(entities) > page.start + page.size
        window: dict[str, list[Any]] = {key: [] for key in _DETAIL_LISTS}
        for key, entity in entities[page.start : page.start + page.size]:
            window[key].append(entity)
        return {**details, **window}

    backend.get_account_authorization_details = windowed
    try:
        yield lambda: more
    finally:
        del backend.get_account_authorization_details  # the class's own method again


def _policies(params: dict[str, str], forward: Forward) -> Reply:
    unpaged, page = split(params)
    # Moto's marker is the index of the first item; one item more says whether a page follows.
    reply = forward({**unpaged, "Marker": str(page.start), "MaxItems": str(page.size + 1)})

    def cut(result: ET.Element) -> None:
        items = result.find(xml_tag("Policies"))
        members = [] if items is None else list(items)
        if items is not None:
            for extra in members[page.size :]:
                items.remove(extra)
        _set_truncation(result, page, more=len(members) > page.size)

    return edit_result(reply, "ListPolicies", cut)


def _cut(result: ET.Element, action: str, page: Page) -> None:
    items = result.find(xml_tag(LIST_ELEMENTS[action]))
    if items is None:
        return
    members = list(items)
    for member in members[: page.start] + members[page.start + page.size :]:
        items.remove(member)
    _set_truncation(result, page, more=len(members) > page.start + page.size)


def _set_truncation(result: ET.Element, page: Page, *, more: bool) -> None:
    """Replace whatever moto said about further pages with IAM's answer for ``page``."""
    for name in ("IsTruncated", "Marker"):
        stale = result.find(xml_tag(name))
        if stale is not None:
            result.remove(stale)
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
