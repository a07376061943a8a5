"""The identity store: users (userName = email), groups and memberships.

Lookups go through the store's unique attributes (GetUserId by ``userName``, GetGroupId by
``displayName``, GetGroupMembershipId), so a single operation costs the same on a store of 50
users as on 50,000; only the fetches list. Reads come before writes, so a repeat changes
nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from attrs import field, frozen

from idhub_aws_plugin.errors import is_code

#: Extra attributes the identity store holds, by the contract's attribute name: the
#: UpdateUser attribute path and the field CreateUser and DescribeUser use.
EXTRA_ATTRIBUTES: dict[str, tuple[str, str]] = {
    "job_title": ("title", "Title"),
    "employee_type": ("userType", "UserType"),
    "nick_name": ("nickName", "NickName"),
    "preferred_language": ("preferredLanguage", "PreferredLanguage"),
    "locale": ("locale", "Locale"),
    "timezone": ("timezone", "Timezone"),
    "profile_url": ("profileUrl", "ProfileUrl"),
}
#: The core attributes: UpdateUser's path for each.
CORE_PATHS = {
    "first_name": "name.givenName",
    "last_name": "name.familyName",
    "display_name": "displayName",
}
NOT_FOUND = "ResourceNotFoundException"


@frozen
class StoreUser:
    """One identity-store user as the connector sees it."""

    user_id: str
    user_name: str
    email: str | None
    first_name: str | None
    last_name: str | None
    display_name: str | None
    attributes: dict[str, str] = field(factory=dict)

    def value(self, attribute: str) -> str | None:
        """The current value of a core or extra attribute, by its contract name."""
        if attribute in CORE_PATHS:
            current: str | None = getattr(self, attribute)
            return current
        return self.attributes.get(attribute)


def work_email(email: str) -> list[dict[str, Any]]:
    """The ``Emails`` of a user whose userName is ``email``: that one address, primary."""
    return [{"Value": email, "Type": "work", "Primary": True}]


def _as_user(data: Mapping[str, Any]) -> StoreUser:
    emails = data.get("Emails") or []
    primary = next((e for e in emails if e.get("Primary")), emails[0] if emails else {})
    name = data.get("Name") or {}
    return StoreUser(
        user_id=data["UserId"],
        user_name=data["UserName"],
        email=primary.get("Value"),
        first_name=name.get("GivenName"),
        last_name=name.get("FamilyName"),
        display_name=data.get("DisplayName"),
        attributes={
            attribute: str(data[key])
            for attribute, (_path, key) in EXTRA_ATTRIBUTES.items()
            if data.get(key)
        },
    )


class Directory:
    """One identity store, through one identitystore client."""

    def __init__(self, identitystore: Any, store_id: str) -> None:
        self._client = identitystore
        self._store = store_id

    # --- users ----------------------------------------------------------------------------

    def _id_of(self, kind: str, attribute: str, value: str) -> str | None:
        """The id (``UserId``/``GroupId``) of the user or group whose unique ``attribute`` is
        ``value``, None when the store has none: Get{User,Group}Id's alternate identifier."""
        call = self._client.get_user_id if kind == "User" else self._client.get_group_id
        identifier = {"UniqueAttribute": {"AttributePath": attribute, "AttributeValue": value}}
        try:
            found = call(IdentityStoreId=self._store, AlternateIdentifier=identifier)
        except Exception as exc:
            if is_code(exc, NOT_FOUND):
                return None
            raise
        return str(found[f"{kind}Id"])

    def user_id(self, user_name: str) -> str | None:
        """The UserId of ``user_name``, None when the store has no such user."""
        return self._id_of("User", "userName", user_name)

    def user(self, user_id: str) -> StoreUser:
        return _as_user(self._client.describe_user(IdentityStoreId=self._store, UserId=user_id))

    def find(self, user_name: str) -> StoreUser | None:
        user_id = self.user_id(user_name)
        return None if user_id is None else self.user(user_id)

    def create_user(self, user_name: str, fields: Mapping[str, Any]) -> str:
        """CreateUser with ``fields`` (Name, DisplayName, Emails and extras); its UserId."""
        made = self._client.create_user(IdentityStoreId=self._store, UserName=user_name, **fields)
        return str(made["UserId"])

    def update_user(self, user_id: str, operations: list[dict[str, Any]]) -> None:
        self._client.update_user(IdentityStoreId=self._store, UserId=user_id, Operations=operations)

    def delete_user(self, user_id: str) -> None:
        self._client.delete_user(IdentityStoreId=self._store, UserId=user_id)

    def users(self) -> Iterator[StoreUser]:
        for page in self._client.get_paginator("list_users").paginate(IdentityStoreId=self._store):
            for data in page.get("Users", []):
                yield _as_user(data)

    # --- groups and memberships -----------------------------------------------------------

    def group_id(self, name: str) -> str | None:
        """The GroupId of the group whose DisplayName is ``name``, None when there is none."""
        return self._id_of("Group", "displayName", name)

    def groups(self) -> Iterator[tuple[str, str]]:
        """``(GroupId, DisplayName)`` of every group."""
        paginator = self._client.get_paginator("list_groups")
        for page in paginator.paginate(IdentityStoreId=self._store):
            for data in page.get("Groups", []):
                yield data["GroupId"], data.get("DisplayName", "")

    def membership_id(self, group_id: str, user_id: str) -> str | None:
        try:
            found = self._client.get_group_membership_id(
                IdentityStoreId=self._store, GroupId=group_id, MemberId={"UserId": user_id}
            )
        except Exception as exc:
            if is_code(exc, NOT_FOUND):
                return None
            raise
        return str(found["MembershipId"])

    def add_member(self, group_id: str, user_id: str) -> bool:
        """Make the user a member; False when it was one already (AWS's ConflictException,
        met when another writer added it between our read and our write)."""
        try:
            self._client.create_group_membership(
                IdentityStoreId=self._store, GroupId=group_id, MemberId={"UserId": user_id}
            )
        except Exception as exc:
            if is_code(exc, "ConflictException"):
                return False
            raise
        return True

    def remove_membership(self, membership_id: str) -> None:
        self._client.delete_group_membership(
            IdentityStoreId=self._store, MembershipId=membership_id
        )

    def memberships_of(self, user_id: str) -> Iterator[tuple[str, str]]:
        """``(MembershipId, GroupId)`` of every group the user is a member of."""
        paginator = self._client.get_paginator("list_group_memberships_for_member")
        for page in paginator.paginate(IdentityStoreId=self._store, MemberId={"UserId": user_id}):
            for data in page.get("GroupMemberships", []):
                yield data["MembershipId"], data["GroupId"]

    def members(self, group_id: str) -> Iterator[str]:
        """The UserIds of a group's members (members that are not users are skipped)."""
        paginator = self._client.get_paginator("list_group_memberships")
        for page in paginator.paginate(IdentityStoreId=self._store, GroupId=group_id):
            for data in page.get("GroupMemberships", []):
                user_id = (data.get("MemberId") or {}).get("UserId")
                if user_id:
                    yield user_id

    def group_name(self, group_id: str) -> str:
        found = self._client.describe_group(IdentityStoreId=self._store, GroupId=group_id)
        return str(found.get("DisplayName", group_id))
