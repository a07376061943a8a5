"""Groups: the account's IAM groups, read-only except for their members.

A group is read by name (``read_group``: its members, one call a page of them), the name taken
from the server's index (GroupId -> name) and checked against the id; lists read the groups'
bulk read and only the page's groups' members. Members are resolved to emails through the index,
and each grant or revoke is checked to have reached that id. Without ``read-group`` the bulk
reads (``groups``, ``group-access``) serve every request.

``id`` is the IAM ``GroupId``, ``displayName`` the group name, ``members`` the users in it
(``value`` = the user's native id, ``display`` = their email). Adding or removing members, by
``PATCH`` or ``PUT``, grants or revokes ``group:NAME`` for each user. A rename is refused (400
``mutability``); POST and DELETE go to the connector's ``manage-groups`` (IAM's refuses them,
403, unless ``manage_groups`` is on) and are 501 before any call for a type without it
(Identity Center). Nothing changes when a request is refused. A group read that names no
member (Identity Center's lists ids only) is resolved through the index.

A PUT without ``members`` leaves the members as they are (an empty list removes them all).
Entra's dialect is understood: a POST listing its own schema URN with nothing under it, and a
member removal that names the members in its value (``{"op": "Remove", "path": "members",
"value": [{"value": ID}]}``, through :data:`~hostsim.scim.users.IDENTITY_POLICY`). A group's
``externalId`` is not stored (IAM groups carry no tags): clients match groups on
``displayName``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from attrs import evolve
from scim2_models import (
    Context,
    Group,
    GroupMember,
    InvalidValueException,
    Meta,
    MutabilityException,
    NotFoundException,
    NotImplementedException,
    PatchOp,
    UniquenessException,
)

from hostsim.contract.errors import NotFound
from hostsim.contract.model import (
    AccountRef,
    Capability,
    FetchKind,
    GroupAccess,
    GroupDetail,
    OperationResult,
)
from hostsim.contract.model import Group as IamGroup
from hostsim.runtime import Runtime
from hostsim.scim.index import AccountIndex
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

    def __init__(self, runtime: Runtime, base_url: str, index: AccountIndex | None = None) -> None:
        self.runtime = runtime
        self.base_url = base_url.rstrip("/")
        self.index = index if index is not None else AccountIndex(runtime)
        #: One group at a time (``read-group``); without it, every read is a bulk read.
        self.reads_groups = Capability.READ_GROUP in runtime.connector_type.capabilities
        #: Whether the type creates and deletes groups at all (IAM's, when configured to);
        #: for one that cannot, POST and DELETE are 501 before any call.
        self.manages_groups = Capability.MANAGE_GROUPS in runtime.connector_type.capabilities

    # --- reading ---------------------------------------------------------------------

    def _bulk(self) -> list[GroupDetail]:
        """Every group with its members, from the bulk reads (``groups``, ``group-access``):
        how a connector without ``read-group`` is read."""
        groups = [row for row in self.runtime.fetch(FetchKind.GROUPS) if isinstance(row, IamGroup)]
        members: dict[str, list[AccountRef]] = {}
        for row in self.runtime.fetch(FetchKind.GROUP_ACCESS):
            if isinstance(row, GroupAccess):
                ref = AccountRef(row.user_id, row.user_name, row.email)
                members.setdefault(row.group, []).append(ref)
        return [
            GroupDetail(
                group.name, group.id, group.arn, group.path, tuple(members.get(group.name, ()))
            )
            for group in groups
        ]

    def _display(self, member: AccountRef) -> str:
        """A member's email: the index's when it knows the member under the same name (the
        group read carries no tags), or under any name when the read names none (Identity
        Center's lists member ids only), else what the read shows."""
        known = self.index.user(member.id)
        if known is not None and known.name == (member.name or known.name) and known.email:
            return known.email
        return member.email or member.name or member.id

    def to_scim(self, group: GroupDetail) -> Group:
        return Group(
            id=group.id,
            display_name=group.name,
            members=[
                GroupMember.model_validate(
                    {
                        "value": member.id,
                        "display": self._display(member),
                        "type": "User",
                        "$ref": f"{self.base_url}/Users/{member.id}",
                    }
                )
                for member in group.members
            ]
            or None,
            meta=Meta(resource_type="Group", location=f"{self.base_url}/Groups/{group.id}"),
        )

    def all(self) -> Iterable[Group]:
        if not self.reads_groups:
            return (self.to_scim(group) for group in self._bulk())
        return (self.to_scim(group) for group in self._each_read())

    def _each_read(self) -> Iterator[GroupDetail]:
        self.index.refresh_groups(self.index.group_mark())
        for native_id, name in self.index.group_names().items():
            detail = self.runtime.read_group({"name": name})
            if detail is not None and detail.id == native_id:
                yield detail

    def listing(
        self, scim_filter: Any | None, start: int, count: int, *, members: bool
    ) -> tuple[int, list[Group]]:
        """The groups matching the filter, a page of them, and their number: the groups are
        listed from their bulk read (one call a page of groups), and only the page's groups
        are read with their members, one each (none when the client excluded ``members``).
        A filter on members reads every group's."""
        if not self.reads_groups or (scim_filter is not None and "members" in scim_filter.lower()):
            every = [
                group for group in self.all() if scim_filter is None or scim_filter.match(group)
            ]
            return len(every), every[start - 1 : start - 1 + count]
        self.index.refresh_groups(self.index.group_mark())
        bare = [
            self.to_scim(GroupDetail(name, native_id))
            for native_id, name in self.index.group_names().items()
        ]
        matching = [group for group in bare if scim_filter is None or scim_filter.match(group)]
        page = matching[start - 1 : start - 1 + count]
        if members:
            page = [self.to_scim(self._detail(group.id or "")) for group in page]
        return len(matching), page

    def _detail(self, native_id: str) -> GroupDetail:
        """The group of a GroupId, read by the name the index has for it; a miss, or a name
        that now has another id, reads the groups again once."""
        if not self.reads_groups:
            for group in self._bulk():
                if group.id == native_id:
                    return group
            raise NotFoundException(detail=f"no group with id {native_id!r}")
        for attempt in range(2):
            mark = self.index.group_mark()
            name = self.index.group_name(native_id)
            if name is not None:
                detail = self.runtime.read_group({"name": name})
                if detail is not None and detail.id == native_id:
                    return detail
            if attempt == 0:
                self.index.refresh_groups(mark)
        self.index.drop_group(native_id)
        raise NotFoundException(detail=f"no group with id {native_id!r}")

    def _named(self, name: str) -> GroupDetail:
        if self.reads_groups:
            detail = self.runtime.read_group({"name": name})
        else:
            detail = next((group for group in self._bulk() if group.name == name), None)
        if detail is None:
            raise NotFoundException(detail=f"no group named {name!r}")
        self.index.put_group(detail.id, detail.name)
        return detail

    def get(self, native_id: str) -> Group:
        return self.to_scim(self._detail(native_id))

    # --- writing ---------------------------------------------------------------------

    def create(self, payload: Mapping[str, Any]) -> Group:
        """POST /Groups: create the IAM group (only when the connector's ``manage_groups`` is
        on; otherwise the connector refuses, 403), then add the members asked for."""
        wanted = Group.model_validate(
            without_empty_schemas(payload), scim_ctx=Context.RESOURCE_CREATION_REQUEST
        )
        self._refuse_unmanaged("create")
        if not wanted.display_name:
            raise InvalidValueException(detail="displayName (the IAM group name) is required")
        result = self.runtime.create_group({"name": wanted.display_name})
        if not result.changed:
            raise UniquenessException(detail=f"group {wanted.display_name!r} exists already")
        created = self._named(wanted.display_name)
        return self._apply(created, wanted) if wanted.members else self.to_scim(created)

    def delete(self, native_id: str) -> None:
        """DELETE /Groups/{id}: members removed, policies detached, then the group."""
        self._refuse_unmanaged("delete")
        group = self._detail(native_id)
        self.runtime.delete_group({"name": group.name})
        self.index.drop_group(native_id)

    def _refuse_unmanaged(self, verb: str) -> None:
        """501 for a type that cannot create or delete groups at all, before any call: the
        group is made (or removed) in the target itself; its members are changed here."""
        if not self.manages_groups:
            raise NotImplementedException(
                detail=f"connector {self.runtime.connector_type.name!r} does not {verb} groups: "
                f"{verb} the group in the target, then change its members here (match it on "
                "displayName)"
            )

    def replace(self, native_id: str, payload: Mapping[str, Any]) -> Group:
        wanted = Group.model_validate(
            without_empty_schemas(payload), scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST
        )
        detail = self._detail(native_id)
        if "members" not in {str(key).lower() for key in payload}:
            # members left out are left as they are: access changes only when asked for
            wanted.members = self.to_scim(detail).members
        return self._apply(detail, wanted)

    def patch(self, native_id: str, payload: Mapping[str, Any]) -> Group:
        patch = PatchOp[Group].model_validate(
            normalize_patch(payload), scim_ctx=Context.RESOURCE_PATCH_REQUEST
        )
        detail = self._detail(native_id)
        current = self.to_scim(detail)
        patched = current.model_copy(deep=True)
        if not patch.patch(patched):
            return current
        return self._apply(detail, patched)

    def _apply(self, group: GroupDetail, wanted: Group) -> Group:
        """Grant and revoke ``group:NAME`` for the members added and removed; answered from
        the group read before and what each grant or revoke did."""
        if wanted.display_name is not None and wanted.display_name != group.name:
            raise MutabilityException(detail="IAM groups cannot be renamed through SCIM")
        members = {member.id: member for member in group.members}
        want = {member.value for member in wanted.members or () if member.value}
        if set(members) == want:
            return self.to_scim(group)
        entitlement = f"group:{group.name}"
        for user_id in sorted(want - set(members)):
            members[user_id] = self._change_member(self.runtime.grant, user_id, entitlement)
        for user_id in sorted(set(members) - want):
            self._change_member(self.runtime.revoke, user_id, entitlement, members.pop(user_id))
        if not self.reads_groups:
            return self.get(group.id)
        return self.to_scim(evolve(group, members=tuple(members.values())))

    def _change_member(
        self,
        change: Callable[[Mapping[str, Any]], OperationResult],
        user_id: str,
        entitlement: str,
        member: AccountRef | None = None,
    ) -> AccountRef:
        """Grant (or revoke) for the account of ``user_id``, found by the email the index
        has for it. An index that is behind (the name the group read shows for a member
        differs, the connector finds no account, or the account it changed has another id)
        is read again and the change tried once more; a change made to another account on
        the way is undone."""
        undo = self.runtime.revoke if change == self.runtime.grant else self.runtime.grant
        for attempt in range(2):
            mark = self.index.mark()
            known = self.index.user(user_id)
            # a member named by the group read under another name than the index's: behind
            # (a read naming no member, Identity Center's, says nothing of it)
            renamed = (
                known is not None
                and member is not None
                and bool(member.name)
                and known.name != member.name
            )
            if attempt == 0 and (known is None or renamed):
                self.index.refresh(mark)
                continue
            if known is None:
                raise InvalidValueException(detail=f"no user with id {user_id!r}")
            if not known.email:
                raise MutabilityException(
                    detail=f"user {user_id!r} has no email tag: it is not managed by the connector"
                )
            request = {"email": known.email, "entitlement": entitlement}
            try:
                result = change(request)
            except NotFound:
                if attempt:
                    raise
                self.index.refresh(mark)
                continue
            if result.account is not None and result.account.id != user_id:
                if result.changed:
                    undo(request)
                if attempt:
                    raise InvalidValueException(detail=f"no user with id {user_id!r}")
                self.index.refresh(mark)
                continue
            return AccountRef(
                user_id, result.account.name if result.account else known.name, known.email
            )
        raise InvalidValueException(detail=f"no user with id {user_id!r}")
