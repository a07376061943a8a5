"""Groups: the account's IAM groups, read-only except for their members.

``id`` is the IAM ``GroupId``, ``displayName`` the group name, ``members`` the users in it
(``value`` = the user's native id, ``display`` = their email). Adding or removing members, by
``PATCH`` or ``PUT``, grants or revokes ``group:NAME`` for each user. Renaming, creating and
deleting IAM groups is outside what the connector does: the request is refused (400
``mutability`` for a rename, 501 for POST and DELETE) and nothing changes.

A PUT without ``members`` leaves the members as they are (an empty list removes them all).
Entra's dialect is understood: a POST listing its own schema URN with nothing under it, and a
member removal that names the members in its value (``{"op": "Remove", "path": "members",
"value": [{"value": ID}]}``, through :data:`~hostsim.scim.users.IDENTITY_POLICY`). A group's
``externalId`` is not stored (IAM groups carry no tags): clients match groups on
``displayName``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from scim2_models import (
    Context,
    Group,
    GroupMember,
    InvalidValueException,
    Meta,
    MutabilityException,
    NotFoundException,
    PatchOp,
    UniquenessException,
)

from hostsim.contract.model import Account, FetchKind, GroupAccess
from hostsim.contract.model import Group as IamGroup
from hostsim.runtime import Runtime
from hostsim.scim.users import normalize_patch

GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"


def without_empty_schemas(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload without the schema URNs it lists but carries nothing under: Entra's POST
    /Groups lists ``http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group``
    and no attribute of it. A URN with attributes under it is kept, and refused as unknown."""
    data = dict(payload)
    schemas = data.get("schemas")
    if isinstance(schemas, list):
        keys = {str(key).lower() for key in data}
        data["schemas"] = [
            urn
            for urn in schemas
            if not isinstance(urn, str) or urn == GROUP_URN or urn.lower() in keys
        ]
    return data


class Groups:
    """The ``/Groups`` resource type of one connector."""

    def __init__(self, runtime: Runtime, base_url: str) -> None:
        self.runtime = runtime
        self.base_url = base_url.rstrip("/")

    def _read(self) -> tuple[list[IamGroup], dict[str, list[GroupAccess]]]:
        groups = [row for row in self.runtime.fetch(FetchKind.GROUPS) if isinstance(row, IamGroup)]
        members: dict[str, list[GroupAccess]] = {}
        for row in self.runtime.fetch(FetchKind.GROUP_ACCESS):
            if isinstance(row, GroupAccess):
                members.setdefault(row.group, []).append(row)
        return groups, members

    def to_scim(self, group: IamGroup, members: Iterable[GroupAccess]) -> Group:
        return Group(
            id=group.id,
            display_name=group.name,
            members=[
                GroupMember.model_validate(
                    {
                        "value": row.user_id,
                        "display": row.email or row.user_name,
                        "type": "User",
                        "$ref": f"{self.base_url}/Users/{row.user_id}",
                    }
                )
                for row in members
            ]
            or None,
            meta=Meta(resource_type="Group", location=f"{self.base_url}/Groups/{group.id}"),
        )

    def all(self) -> Iterable[Group]:
        groups, members = self._read()
        return (self.to_scim(group, members.get(group.name, ())) for group in groups)

    def _find(self, native_id: str) -> tuple[IamGroup, Group]:
        groups, members = self._read()
        for group in groups:
            if group.id == native_id:
                return group, self.to_scim(group, members.get(group.name, ()))
        raise NotFoundException(detail=f"no group with id {native_id!r}")

    def get(self, native_id: str) -> Group:
        return self._find(native_id)[1]

    def create(self, payload: Mapping[str, Any]) -> Group:
        """POST /Groups: create the IAM group (only when the connector's ``manage_groups`` is
        on; otherwise the connector refuses, 403), then add the members asked for."""
        wanted = Group.model_validate(
            without_empty_schemas(payload), scim_ctx=Context.RESOURCE_CREATION_REQUEST
        )
        if not wanted.display_name:
            raise InvalidValueException(detail="displayName (the IAM group name) is required")
        result = self.runtime.create_group({"name": wanted.display_name})
        if not result.changed:
            raise UniquenessException(detail=f"group {wanted.display_name!r} exists already")
        groups, _members = self._read()
        created = next(group for group in groups if group.name == wanted.display_name)
        return self._apply(created.id, wanted) if wanted.members else self.get(created.id)

    def delete(self, native_id: str) -> None:
        """DELETE /Groups/{id}: members removed, policies detached, then the group."""
        group, _current = self._find(native_id)
        self.runtime.delete_group({"name": group.name})

    def replace(self, native_id: str, payload: Mapping[str, Any]) -> Group:
        wanted = Group.model_validate(
            without_empty_schemas(payload), scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST
        )
        if "members" not in {str(key).lower() for key in payload}:
            # members left out are left as they are: access changes only when asked for
            wanted.members = self.get(native_id).members
        return self._apply(native_id, wanted)

    def patch(self, native_id: str, payload: Mapping[str, Any]) -> Group:
        patch = PatchOp[Group].model_validate(
            normalize_patch(payload), scim_ctx=Context.RESOURCE_PATCH_REQUEST
        )
        current = self.get(native_id)
        patched = current.model_copy(deep=True)
        if not patch.patch(patched):
            return current
        return self._apply(native_id, patched)

    def _apply(self, native_id: str, wanted: Group) -> Group:
        group, current = self._find(native_id)
        if wanted.display_name is not None and wanted.display_name != group.name:
            raise MutabilityException(detail="IAM groups cannot be renamed through SCIM")
        have = {member.value for member in current.members or () if member.value}
        want = {member.value for member in wanted.members or () if member.value}
        if have == want:
            return current
        emails = {
            row.id: row.email
            for row in self.runtime.fetch(FetchKind.USERS)
            if isinstance(row, Account)
        }
        entitlement = f"group:{group.name}"
        for user_id in sorted(want - have):
            self.runtime.grant({"email": _email(emails, user_id), "entitlement": entitlement})
        for user_id in sorted(have - want):
            self.runtime.revoke({"email": _email(emails, user_id), "entitlement": entitlement})
        return self.get(native_id)


def _email(emails: Mapping[str, str | None], user_id: str) -> str:
    if user_id not in emails:
        raise InvalidValueException(detail=f"no user with id {user_id!r}")
    email = emails[user_id]
    if not email:
        raise MutabilityException(
            detail=f"user {user_id!r} has no email tag: it is not managed by the connector"
        )
    return email
