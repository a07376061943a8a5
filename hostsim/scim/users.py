"""Users: the core User schema mapped onto the connector's accounts.

=====================  ================================================================
SCIM                   connector
=====================  ================================================================
``id``                 the account's native id (IAM ``UserId``), unchanged by a rename
``userName``           the email, the connector's account identifier; a new one renames
``name.givenName``     ``first_name``
``name.familyName``    ``last_name``
``displayName``        ``display_name``
``emails``             read-only: one primary ``work`` email, the ``userName``
``active``             read-only, always true: IAM users have no disabled state; a request
                       for ``false`` is refused (400 ``mutability``): DELETE deprovisions
``entitlements``       managed policies attached directly (``value`` = policy ARN); a change
                       is a grant or revoke of ``policy:ARN``
``groups``             read-only: the IAM groups (``value`` = group id, ``display`` = name);
                       membership changes through ``PATCH /Groups``
``externalId``         the ``external_id`` attribute, when the attribute mapping has one
extension              the other extra attributes of the connector's attribute mapping
=====================  ================================================================

Writes go through :class:`~hostsim.runtime.Runtime` only: POST is a ``create`` (with the
entitlements as initial grants); PUT and PATCH compute the wanted user (PATCH by applying the
operations to the current user with scim2-models), then ``modify`` what differs and ``grant`` /
``revoke`` the entitlements added or removed; DELETE is a ``delete``. Reads come from the bulk
fetches (``users``, ``groups``, ``policy-access``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from attrs import field, frozen
from scim2_models import (
    Attribute,
    Context,
    Email,
    Entitlement,
    Extension,
    GroupMembership,
    InvalidValueException,
    Meta,
    Mutability,
    MutabilityException,
    Name,
    NotFoundException,
    PatchOp,
    Required,
    Schema,
    UniquenessException,
    User,
)

from hostsim.contract.model import Account, FetchKind, Group, PolicyAccess
from hostsim.runtime import Runtime

EXTENSION_URN = "urn:idhub:params:scim:schemas:extension:connector:2.0:User"
#: Attributes the core schema carries; the others of the mapping go to the extension.
CORE_ATTRIBUTES = frozenset({"email", "first_name", "last_name", "display_name"})
#: The mapped attribute, if any, that holds SCIM's ``externalId`` (the client's own id).
EXTERNAL_ID = "external_id"
_NAMES = (("first_name", "given_name"), ("last_name", "family_name"))


def extension_model(attributes: Sequence[str]) -> type[Extension] | None:
    """The extension for the mapping's extra attributes (strings), or None when there are none."""
    if not attributes:
        return None
    schema = Schema(
        id=EXTENSION_URN,
        name="ConnectorUser",
        description="Extra account attributes of the connector's attribute mapping",
        attributes=[
            Attribute(
                name=name,
                type=Attribute.Type.string,
                multi_valued=False,
                required=Required.false,
                mutability=Mutability.read_write,
                description=f"the connector's {name!r} attribute",
            )
            for name in attributes
        ],
    )
    return Extension.from_schema(schema)


@frozen
class Snapshot:
    """The accounts as the bulk reads show them, with groups and direct policies."""

    accounts: tuple[Account, ...]
    groups: Mapping[str, Group]
    direct: Mapping[str, tuple[PolicyAccess, ...]] = field(factory=dict)

    @classmethod
    def read(cls, runtime: Runtime, *, policies: bool = True) -> Snapshot:
        accounts = tuple(row for row in runtime.fetch(FetchKind.USERS) if isinstance(row, Account))
        groups = {
            row.name: row for row in runtime.fetch(FetchKind.GROUPS) if isinstance(row, Group)
        }
        direct: dict[str, list[PolicyAccess]] = {}
        if policies:
            for row in runtime.fetch(FetchKind.POLICY_ACCESS):
                if isinstance(row, PolicyAccess) and row.via == "direct":
                    direct.setdefault(row.user_id, []).append(row)
        return cls(accounts, groups, {key: tuple(rows) for key, rows in direct.items()})

    def account(self, native_id: str) -> Account:
        for account in self.accounts:
            if account.id == native_id:
                return account
        raise NotFoundException(detail=f"no user with id {native_id!r}")

    def by_email(self, email: str) -> Account | None:
        wanted = email.casefold()
        for account in self.accounts:
            if (account.email or "").casefold() == wanted:
                return account
        return None


@frozen
class Wanted:
    """A user as a request wants it, in the connector's terms."""

    email: str
    first_name: str | None
    last_name: str | None
    display_name: str | None
    attributes: dict[str, str]
    policies: frozenset[str]
    external_id: str | None = None


def _created(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


class Users:
    """The ``/Users`` resource type of one connector."""

    def __init__(self, runtime: Runtime, base_url: str, extra_attributes: Sequence[str]) -> None:
        self.runtime = runtime
        self.base_url = base_url.rstrip("/")
        self.external_id = EXTERNAL_ID in extra_attributes
        self.extra_attributes = tuple(name for name in extra_attributes if name != EXTERNAL_ID)
        self.extension = extension_model(self.extra_attributes)
        extension: Any = self.extension
        self.model: Any = User[extension] if extension is not None else User

    # --- reading ---------------------------------------------------------------------

    def to_scim(self, account: Account, snapshot: Snapshot) -> Any:
        email = account.email or account.user_name
        groups = [self._membership(name, snapshot) for name in account.groups]
        entitlements = [
            Entitlement(value=row.policy_arn) for row in snapshot.direct.get(account.id, ())
        ]
        user = self.model(
            id=account.id,
            external_id=account.attributes.get(EXTERNAL_ID) or None if self.external_id else None,
            user_name=email,
            name=Name(given_name=account.first_name, family_name=account.last_name)
            if account.first_name or account.last_name
            else None,
            display_name=account.display_name,
            emails=[Email(value=account.email, primary=True, type=Email.Type.work)]
            if account.email
            else None,
            active=True,
            groups=groups or None,
            entitlements=entitlements or None,
            meta=Meta(
                resource_type="User",
                created=_created(account.created),
                location=f"{self.base_url}/Users/{account.id}",
            ),
        )
        if self.extension is not None:
            extra = {
                name: account.attributes[name]
                for name in self.extra_attributes
                if account.attributes.get(name)
            }
            if extra:
                user[self.extension] = self.extension.model_validate(extra)
        return user

    def _membership(self, name: str, snapshot: Snapshot) -> GroupMembership:
        group = snapshot.groups.get(name)
        data: dict[str, Any] = {"value": group.id if group else name, "display": name}
        if group is not None:
            data["$ref"] = f"{self.base_url}/Groups/{group.id}"
        data["type"] = "direct"
        return GroupMembership.model_validate(data)

    def all(self, snapshot: Snapshot | None = None) -> Iterable[Any]:
        snapshot = snapshot or Snapshot.read(self.runtime)
        return (self.to_scim(account, snapshot) for account in snapshot.accounts)

    def get(self, native_id: str) -> Any:
        snapshot = Snapshot.read(self.runtime)
        return self.to_scim(snapshot.account(native_id), snapshot)

    # --- writing ---------------------------------------------------------------------

    def _wanted(self, user: Any) -> Wanted:
        if not user.user_name:
            raise InvalidValueException(detail="userName (the email) is required")
        if user.active is False:
            raise MutabilityException(
                detail="IAM users have no disabled state (active is always true): "
                "DELETE the user to deprovision it"
            )
        policies: set[str] = set()
        for entitlement in user.entitlements or ():
            value = entitlement.value or ""
            if not value.startswith("arn:"):
                raise InvalidValueException(
                    detail=f"entitlement {value!r} is not a managed policy ARN"
                )
            policies.add(value)
        attributes: dict[str, str] = {}
        if self.extension is not None:
            extension = user[self.extension]
            for name in self.extra_attributes:
                value = getattr(extension, name, None) if extension is not None else None
                if value:
                    attributes[name] = str(value)
        name = user.name
        return Wanted(
            email=user.user_name,
            first_name=name.given_name if name else None,
            last_name=name.family_name if name else None,
            display_name=user.display_name,
            attributes=attributes,
            policies=frozenset(policies),
            external_id=user.external_id if self.external_id else None,
        )

    def create(self, payload: Mapping[str, Any]) -> Any:
        user = self.model.model_validate(payload, scim_ctx=Context.RESOURCE_CREATION_REQUEST)
        wanted = self._wanted(user)
        snapshot = Snapshot.read(self.runtime, policies=False)
        if snapshot.by_email(wanted.email) is not None:
            raise UniquenessException(detail=f"a user with userName {wanted.email!r} exists")
        request: dict[str, Any] = {"email": wanted.email}
        for key in ("first_name", "last_name", "display_name"):
            if getattr(wanted, key):
                request[key] = getattr(wanted, key)
        attributes = dict(wanted.attributes)
        if wanted.external_id:
            attributes[EXTERNAL_ID] = wanted.external_id
        if attributes:
            request["attributes"] = attributes
        if wanted.policies:
            request["grants"] = [f"policy:{arn}" for arn in sorted(wanted.policies)]
        result = self.runtime.create(request)
        assert result.account is not None
        return self.get(result.account.id)

    def replace(self, native_id: str, payload: Mapping[str, Any]) -> Any:
        user = self.model.model_validate(payload, scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST)
        return self._apply(native_id, self._wanted(user))

    def patch(self, native_id: str, payload: Mapping[str, Any]) -> Any:
        model: Any = self.model
        patch = PatchOp[model].model_validate(payload, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
        current = self.get(native_id)
        patched = current.model_copy(deep=True)
        if not patch.patch(patched):
            return current
        return self._apply(native_id, self._wanted(patched))

    def _apply(self, native_id: str, wanted: Wanted) -> Any:
        snapshot = Snapshot.read(self.runtime)
        account = snapshot.account(native_id)
        if not account.email:
            raise MutabilityException(
                detail=f"user {account.user_name!r} has no email tag: it is not managed by the "
                "connector and cannot be changed through SCIM"
            )
        change: dict[str, Any] = {"email": account.email}
        if wanted.email.casefold() != account.email.casefold():
            other = snapshot.by_email(wanted.email)
            if other is not None and other.id != native_id:
                raise UniquenessException(detail=f"a user with userName {wanted.email!r} exists")
            change["new_email"] = wanted.email
        for key in ("first_name", "last_name", "display_name"):
            if (getattr(wanted, key) or "") != (getattr(account, key) or ""):
                change[key] = getattr(wanted, key) or ""
        attributes = {
            name: wanted.attributes.get(name, "")
            for name in self.extra_attributes
            if wanted.attributes.get(name, "") != account.attributes.get(name, "")
        }
        if self.external_id and (wanted.external_id or "") != account.attributes.get(
            EXTERNAL_ID, ""
        ):
            attributes[EXTERNAL_ID] = wanted.external_id or ""
        if attributes:
            change["attributes"] = attributes
        if len(change) > 1:
            self.runtime.modify(change)
        email = wanted.email
        held = {row.policy_arn for row in snapshot.direct.get(native_id, ())}
        for arn in sorted(wanted.policies - held):
            self.runtime.grant({"email": email, "entitlement": f"policy:{arn}"})
        for arn in sorted(held - wanted.policies):
            self.runtime.revoke({"email": email, "entitlement": f"policy:{arn}"})
        return self.get(native_id)

    def delete(self, native_id: str) -> None:
        account = Snapshot.read(self.runtime, policies=False).account(native_id)
        if not account.email:
            raise MutabilityException(
                detail=f"user {account.user_name!r} has no email tag: it is not managed by the "
                "connector and cannot be deleted through SCIM"
            )
        self.runtime.delete({"email": account.email})
