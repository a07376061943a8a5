"""Permissions boundaries on users, which moto does not implement.

A connector that places users under a boundary (CreateUser ``PermissionsBoundary``,
PutUserPermissionsBoundary) needs to read it back (GetUser, GetAccountAuthorizationDetails).
Moto ignores the parameter, lacks the Put/Delete operations (HTTP 500) and never reports a
boundary. The boundary is kept on moto's user object itself, so it follows renames and
disappears with the user and with every reset, exactly as IAM's would.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from hostsim.embedded_aws import moto_state
from hostsim.embedded_aws.iam_errors import no_such_entity, user_not_found
from hostsim.embedded_aws.moto_state import IAMBackend, MotoUser
from hostsim.embedded_aws.responses import Reply, edit_result, result_reply, xml_tag

#: Where the boundary ARN is kept on moto's User object (moto has no attribute for it).
_ATTRIBUTE = "_embedded_aws_permissions_boundary"


def check_arn(backend: IAMBackend, arn: str) -> None:
    """A boundary must be an existing managed policy (customer or AWS-managed)."""
    if arn not in backend.managed_policies:
        raise no_such_entity(f"Policy {arn} does not exist or is not attachable.")


def put(backend: IAMBackend, params: Mapping[str, str]) -> Reply:
    """Serve PutUserPermissionsBoundary: set or replace the user's boundary."""
    user = _user(backend, params.get("UserName", ""))
    arn = params.get("PermissionsBoundary", "")
    check_arn(backend, arn)
    setattr(user, _ATTRIBUTE, arn)
    return result_reply("PutUserPermissionsBoundary")


def delete(backend: IAMBackend, params: Mapping[str, str]) -> Reply:
    """Serve DeleteUserPermissionsBoundary: remove the boundary (none set is fine)."""
    user = _user(backend, params.get("UserName", ""))
    if hasattr(user, _ATTRIBUTE):
        delattr(user, _ATTRIBUTE)
    return result_reply("DeleteUserPermissionsBoundary")


def after_create_user(backend: IAMBackend, params: Mapping[str, str], reply: Reply) -> Reply:
    """Record the boundary CreateUser asked for (moto ignored it) and show it in the reply."""
    arn = params.get("PermissionsBoundary")
    user = backend.users.get(params.get("UserName", ""))
    if reply.status == 200 and arn and user is not None:
        setattr(user, _ATTRIBUTE, arn)
    return show_in_reply(backend, params, reply)


def show_in_reply(backend: IAMBackend, params: Mapping[str, str], reply: Reply) -> Reply:
    """Add ``PermissionsBoundary`` to every user in a moto reply, as IAM includes it."""
    action = params.get("Action", "")
    return edit_result(reply, action, lambda result: _annotate_users(backend, result))


def _annotate_users(backend: IAMBackend, result: ET.Element) -> None:
    users = [result.find(xml_tag("User"))]
    details = result.find(xml_tag("UserDetailList"))
    if details is not None:
        users.extend(details)
    for element in users:
        if element is not None:
            _annotate(backend, element)


def _annotate(backend: IAMBackend, element: ET.Element) -> None:
    user = backend.users.get(element.findtext(xml_tag("UserName"), ""))
    arn = _boundary(user)
    if arn is None or element.find(xml_tag("PermissionsBoundary")) is not None:
        return
    boundary = ET.SubElement(element, xml_tag("PermissionsBoundary"))
    ET.SubElement(boundary, xml_tag("PermissionsBoundaryType")).text = "Policy"
    ET.SubElement(boundary, xml_tag("PermissionsBoundaryArn")).text = arn


def _boundary(user: Any) -> str | None:
    arn = getattr(user, _ATTRIBUTE, None) if user is not None else None
    return str(arn) if arn else None


def _user(backend: IAMBackend, name: str) -> MotoUser:
    user = moto_state.find_user(backend, name)
    if user is None:
        raise user_not_found(name)
    return user
