"""Users: the core User schema mapped onto the connector's accounts.

=====================  ================================================================
SCIM                   connector
=====================  ================================================================
``id``                 the account's native id (IAM ``UserId``), unchanged by a rename
``userName``           the email, the connector's account identifier; a new one renames
``name.givenName``     ``first_name``
``name.familyName``    ``last_name``
``displayName``        ``display_name``
``emails``             read-only: one primary ``work`` email, the ``userName``; a value
                       that is another user's email is 409 ``uniqueness``, and a PATCH
                       that sets another value is 400 ``mutability``
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

One identity per ``userName``, in any spelling. The connector finds accounts by email, lower-cased
and stripped, and SCIM declares ``userName`` ``caseExact=false``: so ``" Bob@example.com"`` *is*
``bob@example.com``. Every comparison here, and the filters (:data:`IDENTITY_POLICY`), use
:func:`normalize_user_name`, and the connector is sent the normalised value. A POST never takes
over an existing account, although the connector's ``create`` is idempotent (it resumes, and it
adopts a user a lost reply left behind): the POST checks that the userName is free and creates
while holding that userName's lock (:class:`NameLocks`), so concurrent POSTs in this server run
one at a time, and it answers 201 only when the connector's first step, creating the account,
was done by this very request; anything else (another server created it meanwhile, IAM said
``EntityAlreadyExists``) is 409 ``uniqueness``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
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
    ScimPolicy,
    UniquenessException,
    User,
    default_comparison_key,
)

from hostsim.contract.model import (
    Account,
    FetchKind,
    Group,
    OperationResult,
    PolicyAccess,
    StepStatus,
)
from hostsim.runtime import Runtime

EXTENSION_URN = "urn:idhub:params:scim:schemas:extension:connector:2.0:User"
#: Attributes the core schema carries; the others of the mapping go to the extension.
CORE_ATTRIBUTES = frozenset({"email", "first_name", "last_name", "display_name"})
#: The mapped attribute, if any, that holds SCIM's ``externalId`` (the client's own id).
EXTERNAL_ID = "external_id"
_NAMES = (("first_name", "given_name"), ("last_name", "family_name"))


def normalize_user_name(text: str) -> str:
    """The identity a ``userName`` (an email) names: without surrounding whitespace,
    lower-case. The connector stores and compares emails so (IAM user names are
    case-insensitive), and SCIM's ``userName`` is ``caseExact=false``: two spellings of one
    address must never be two users, nor a way to reach someone else's."""
    return text.strip().lower()


def _is_identity(binding: Any) -> bool:
    """Whether a filter compares ``userName`` or an ``emails`` value (of a User)."""
    if getattr(binding, "field_name", None) == "user_name":
        return not binding.sub_field_name
    return getattr(binding, "field_name", None) == "emails" and binding.sub_field_name in (
        None,
        "value",
    )


def _comparison_key(binding: Any, value: str) -> str:
    if _is_identity(binding):
        value = value.strip()
    return default_comparison_key(binding, value)


#: The policy requests run under (:class:`~hostsim.scim.app.ScimApp`): filters and PATCH value
#: selections compare ``userName`` and ``emails`` as :func:`normalize_user_name` does, the
#: rest as scim2-models does by default.
IDENTITY_POLICY = ScimPolicy(comparison_key=_comparison_key)


class NameLocks:
    """One lock per normalised userName, made on first use and dropped when nobody holds or
    waits for it: a create (or a rename onto a userName) checks that the userName is free and
    acts while holding its lock, so two requests of this server for one identity never both
    find it free; requests for other identities run in parallel."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, name: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(name, (threading.Lock(), 0))
            self._locks[name] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[name]
                if users == 1:
                    del self._locks[name]
                else:
                    self._locks[name] = (lock, users - 1)


def created_here(result: OperationResult) -> bool:
    """Whether a create made the account itself, rather than finding it there: the first step
    of a create is the account's creation (the aws-iam connector's ``create user``), ``done``
    when this call made it and ``unchanged`` when it resumed an existing account."""
    first = result.steps[0] if result.steps else None
    return (
        result.account is not None
        and first is not None
        and first.status is StepStatus.DONE
        and first.target == result.account.name
    )


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
    def read(cls, runtime: Runtime, *, policies: bool = True, groups: bool = True) -> Snapshot:
        accounts = tuple(row for row in runtime.fetch(FetchKind.USERS) if isinstance(row, Account))
        found = {
            row.name: row
            for row in (runtime.fetch(FetchKind.GROUPS) if groups else ())
            if isinstance(row, Group)
        }
        direct: dict[str, list[PolicyAccess]] = {}
        if policies:
            for row in runtime.fetch(FetchKind.POLICY_ACCESS):
                if isinstance(row, PolicyAccess) and row.via == "direct":
                    direct.setdefault(row.user_id, []).append(row)
        return cls(accounts, found, {key: tuple(rows) for key, rows in direct.items()})

    def account(self, native_id: str) -> Account:
        for account in self.accounts:
            if account.id == native_id:
                return account
        raise NotFoundException(detail=f"no user with id {native_id!r}")

    def by_email(self, email: str) -> Account | None:
        wanted = normalize_user_name(email)
        for account in self.accounts:
            if normalize_user_name(account.email or "") == wanted:
                return account
        return None


@frozen
class Wanted:
    """A user as a request wants it, in the connector's terms (``email`` normalised)."""

    email: str
    first_name: str | None
    last_name: str | None
    display_name: str | None
    attributes: dict[str, str]
    policies: frozenset[str]
    external_id: str | None = None
    #: The request's ``emails`` values, as given: read-only, they must agree with ``email``.
    emails: tuple[str, ...] = ()


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
        self._names = NameLocks()

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
        email = normalize_user_name(user.user_name or "")
        if not email:
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
            email=email,
            first_name=name.given_name if name else None,
            last_name=name.family_name if name else None,
            display_name=user.display_name,
            attributes=attributes,
            policies=frozenset(policies),
            external_id=user.external_id if self.external_id else None,
            emails=_emails(user),
        )

    @staticmethod
    def _check_emails(
        wanted: Wanted, snapshot: Snapshot, native_id: str | None, *, changed: bool
    ) -> None:
        """``emails`` is read-only: it is the userName. A value that is another user's email is
        a conflict (409 ``uniqueness``), never a way to reach that user; another value is
        ignored when a POST or PUT carries it (RFC 7643 §7: read-only values given are ignored)
        and refused when a PATCH sets it (400 ``mutability``)."""
        for value in wanted.emails:
            email = normalize_user_name(value)
            if not email or email == wanted.email:
                continue
            other = snapshot.by_email(email)
            if other is not None and other.id != native_id:
                raise UniquenessException(detail=f"{email!r} is the email of another user")
            if changed:
                raise MutabilityException(
                    detail="emails is read-only: it is always the userName; change userName "
                    "to rename the user"
                )

    def _taken(self, email: str) -> UniquenessException:
        return UniquenessException(detail=f"a user with userName {email!r} exists")

    def create(self, payload: Mapping[str, Any]) -> Any:
        user = self.model.model_validate(payload, scim_ctx=Context.RESOURCE_CREATION_REQUEST)
        wanted = self._wanted(user)
        with self._names.hold(wanted.email):
            snapshot = Snapshot.read(self.runtime, policies=False, groups=False)
            if snapshot.by_email(wanted.email) is not None:
                raise self._taken(wanted.email)
            self._check_emails(wanted, snapshot, None, changed=False)
            result = self.runtime.create(self._create_request(wanted))
        if not created_here(result) or result.account is None:
            # another server (or the CLI) created it between the check and the create
            raise self._taken(wanted.email)
        return self.get(result.account.id)

    def _create_request(self, wanted: Wanted) -> dict[str, Any]:
        # exclusive: a POST creates, never resumes an account another writer made meanwhile
        request: dict[str, Any] = {"email": wanted.email, "exclusive": True}
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
        return request

    def replace(self, native_id: str, payload: Mapping[str, Any]) -> Any:
        user = self.model.model_validate(payload, scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST)
        return self._apply(native_id, self._wanted(user), emails_changed=False)

    def patch(self, native_id: str, payload: Mapping[str, Any]) -> Any:
        model: Any = self.model
        patch = PatchOp[model].model_validate(payload, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
        current = self.get(native_id)
        patched = current.model_copy(deep=True)
        if not patch.patch(patched):
            return current
        changed = {normalize_user_name(value) for value in _emails(patched)} != {
            normalize_user_name(value) for value in _emails(current)
        }
        return self._apply(native_id, self._wanted(patched), emails_changed=changed)

    def _apply(self, native_id: str, wanted: Wanted, *, emails_changed: bool) -> Any:
        snapshot = Snapshot.read(self.runtime)
        account = snapshot.account(native_id)
        if not account.email:
            raise MutabilityException(
                detail=f"user {account.user_name!r} has no email tag: it is not managed by the "
                "connector and cannot be changed through SCIM"
            )
        self._check_emails(wanted, snapshot, native_id, changed=emails_changed)
        if wanted.email == normalize_user_name(account.email):
            return self._change(native_id, wanted, snapshot, account, rename=False)
        # a rename onto a userName: checked free and done under its lock, as a create is
        with self._names.hold(wanted.email):
            users = Snapshot.read(self.runtime, policies=False, groups=False)
            other = users.by_email(wanted.email)
            if other is not None and other.id != native_id:
                raise self._taken(wanted.email)
            return self._change(native_id, wanted, snapshot, account, rename=True)

    def _change(
        self, native_id: str, wanted: Wanted, snapshot: Snapshot, account: Account, *, rename: bool
    ) -> Any:
        assert account.email is not None
        change: dict[str, Any] = {"email": account.email}
        if rename:
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


def _emails(user: Any) -> tuple[str, ...]:
    return tuple(email.value for email in user.emails or () if email.value)
