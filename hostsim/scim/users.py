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
``active``             the account's enabled state (``Account.enabled``): ``false`` is a
                       ``disable``, ``true`` an ``enable``, in every form clients send it
                       (PATCH with or without a path, ``"False"``/``"True"``, ``Replace``,
                       PUT, a POST creating a disabled user); a PUT without it, or a PATCH
                       that does not touch it, leaves it; a PATCH removing it is 400. For a
                       type without ``disable``/``enable`` (Identity Center) every account
                       is active: ``true`` changes nothing, ``false`` is 400 ``mutability``
                       before any change (never ignored, never a delete)
``entitlements``       managed policies attached directly (``value`` = policy ARN); a change
                       is a grant or revoke of ``policy:ARN``; for a type that declares no
                       ``policy-access`` (Identity Center) any value is 400 ``invalidValue``
``groups``             read-only: the IAM groups (``value`` = group id, ``display`` = name);
                       membership changes through ``PATCH /Groups``
``externalId``         the ``external_id`` attribute, when the attribute mapping has one
``title``              ``job_title``
``userType``           ``employee_type``
``addresses``          one work address: ``streetAddress`` ``street_address``, ``locality``
                       ``city``, ``region`` ``state``, ``postalCode`` ``postal_code``,
                       ``country`` ``country``, ``formatted`` ``location`` (Entra maps the
                       office, ``physicalDeliveryOfficeName``, there); other types are 400
``phoneNumbers``       one mobile number: ``mobile_phone``; other types are 400
enterprise extension   ``employeeNumber`` ``employee_id``, ``department`` ``department``,
                       ``organization`` ``company_name``, ``manager.value`` ``manager`` (the
                       manager's id at the client, stored as given); ``costCenter`` and
                       ``division`` are 400
``nickName`` ...       ``nick_name``, ``profile_url``, ``preferred_language``, ``locale``,
                       ``timezone``, when the mapping has them (Identity Center's does)
connector extension    the other extra attributes of the connector's attribute mapping
ignored                ``name.formatted``, ``locale``, ``preferredLanguage``, ``timezone``,
                       ``password`` (:data:`IGNORED`); any other attribute with no home is
                       400 ``invalidValue``, never dropped
=====================  ================================================================

A PUT replaces what it carries: the multi-valued attributes it leaves out (``entitlements``,
``addresses``, ``phoneNumbers``) and the extensions it does not carry are left as they are,
so a profile PUT (Okta's carries no ``entitlements``) never detaches a policy; an explicit
empty list clears. Values go to IAM tags, whose rules (256 characters; letters, digits, spaces
and ``_.:/=+-@``) the connector checks before any change: a value IAM would refuse is 400
``invalidValue`` naming the attribute.

Writes go through :class:`~hostsim.runtime.Runtime` only: POST is a ``create`` (with the
entitlements as initial grants); PUT and PATCH compute the wanted user (PATCH by applying the
operations to the current user with scim2-models), then ``modify`` what differs and ``grant`` /
``revoke`` the entitlements added or removed; DELETE is a ``delete``; each is answered from the
account read before it and what the operations did, without reading it back.

Reads go to one account at a time (``read_account``), by the name the server's index
(:mod:`hostsim.scim.index`) has for an id, checked by the connector against that id: a miss or a
stale name refreshes the index once and reads again. A ``userName eq`` / ``emails.value eq``
filter reads the account of that email; an unfiltered page reads the bulk read's pages up to it
(``fetch users`` rows carry direct policies), its total from the index; other filters read every
page. A connector without ``read-account`` is read in bulk (:class:`Snapshot`) for everything.

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
from datetime import UTC, datetime
from itertools import islice
from typing import Annotated, Any, Union

from attrs import evolve, field, frozen
from pydantic import Field
from scim2_models import (
    Address,
    Attribute,
    Context,
    Email,
    EnterpriseUser,
    Entitlement,
    Extension,
    GroupMembership,
    InvalidValueException,
    Manager,
    Meta,
    Mutability,
    MutabilityException,
    Name,
    NotFoundException,
    PatchOp,
    PhoneNumber,
    Reference,
    Required,
    Schema,
    ScimPolicy,
    UniquenessException,
    User,
    default_comparison_key,
)
from scim2_models.path import CompareOperator, Comparison, LogicalExpr, LogicalOperator

from hostsim.contract.model import (
    Account,
    AccountDetail,
    Capability,
    FetchKind,
    Group,
    Holding,
    OperationResult,
    PolicyAccess,
    StepStatus,
    canonical_email,
)
from hostsim.runtime import Runtime
from hostsim.scim.index import AccountIndex

EXTENSION_URN = "urn:idhub:params:scim:schemas:extension:connector:2.0:User"
#: Attributes the core schema carries; the others of the mapping go to the extension.
CORE_ATTRIBUTES = frozenset({"email", "first_name", "last_name", "display_name"})
#: The mapped attribute, if any, that holds SCIM's ``externalId`` (the client's own id).
EXTERNAL_ID = "external_id"
_NAMES = (("first_name", "given_name"), ("last_name", "family_name"))
#: The entitlement kinds' prefixes (``group:NAME``, ``policy:ARN``).
GROUP = "group:"
POLICY = "policy:"


#: The identity a ``userName`` (an email) names: the contract's one spelling of it.
normalize_user_name = canonical_email


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


def identity_value(scim_filter: Any) -> str | None:
    """The value a filter requires ``userName`` or an ``emails`` value to equal (``eq``, alone
    or and-ed with other conditions), or None: such a filter matches at most the accounts of
    one email, which are read one by one instead of listing every account."""
    return _identity_in(scim_filter, scim_filter.ast)


def _identity_in(scim_filter: Any, node: Any) -> str | None:
    if isinstance(node, LogicalExpr) and node.op is LogicalOperator.and_:
        for term in node.terms:
            found = _identity_in(scim_filter, term)
            if found is not None:
                return found
        return None
    if (
        isinstance(node, Comparison)
        and node.op is CompareOperator.eq
        and isinstance(node.value, str)
    ):
        binding = scim_filter.resolve_comparison(node.attr_path)
        if binding is not None and _is_identity(binding):
            return node.value
    return None


#: The policy requests run under (:class:`~hostsim.scim.app.ScimApp`): filters and PATCH value
#: selections compare ``userName`` and ``emails`` as :func:`normalize_user_name` does, the
#: rest as scim2-models does by default.
IDENTITY_POLICY = ScimPolicy(
    comparison_key=_comparison_key,
    # Entra removes members (and other values) by listing them in the remove's value
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    # Entra writes addresses[type eq "work"].locality on a user that has no work address yet
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)

#: scim2-models' own policy, for validating whole bodies (see :meth:`Users._validated`).
DEFAULT_POLICY = ScimPolicy()

ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


class ManagerReference(Manager):
    """The enterprise ``manager``, whose ``$ref`` clients leave out (Entra sends the value
    alone): the value, the manager's id at the client, is what is stored."""

    ref: Annotated[Reference[Any] | None, Required.false] = Field(
        None, serialization_alias="$ref", validation_alias="$ref"
    )


class Enterprise(EnterpriseUser):
    """RFC 7643 §4.3's enterprise User extension, with the manager's ``$ref`` optional."""

    manager: ManagerReference | None = None


#: Where each connector attribute lives in SCIM, when the attribute mapping has it: the core
#: User's ``title`` and ``userType``, the work address, the mobile phone, and the enterprise
#: extension. Attributes outside this table (and ``external_id``) go to the connector's own
#: extension.
SCIM_HOMES: dict[str, str] = {
    "job_title": "title",
    "employee_type": "userType",
    "employee_id": f"{ENTERPRISE_URN}:employeeNumber",
    "department": f"{ENTERPRISE_URN}:department",
    "company_name": f"{ENTERPRISE_URN}:organization",
    "manager": f"{ENTERPRISE_URN}:manager.value",
    "street_address": 'addresses[type eq "work"].streetAddress',
    "city": 'addresses[type eq "work"].locality',
    "state": 'addresses[type eq "work"].region',
    "postal_code": 'addresses[type eq "work"].postalCode',
    "country": 'addresses[type eq "work"].country',
    "location": 'addresses[type eq "work"].formatted',
    "mobile_phone": 'phoneNumbers[type eq "mobile"].value',
    # the core User's own attributes, for a mapping that has them (Identity Center's users
    # hold them; IAM's default mapping does not, and ignores or refuses them)
    "nick_name": "nickName",
    "profile_url": "profileUrl",
    "preferred_language": "preferredLanguage",
    "locale": "locale",
    "timezone": "timezone",
}
#: The core User's single-valued strings of :data:`SCIM_HOMES`: attribute -> model field.
_CORE_PARTS = {
    "nick_name": "nick_name",
    "profile_url": "profile_url",
    "preferred_language": "preferred_language",
    "locale": "locale",
    "timezone": "timezone",
}
_ADDRESS_PARTS = {
    "street_address": "street_address",
    "city": "locality",
    "state": "region",
    "postal_code": "postal_code",
    "country": "country",
    "location": "formatted",
}
_ENTERPRISE_PARTS = {
    "employee_id": "employee_number",
    "department": "department",
    "company_name": "organization",
}
#: What clients send by default that an IAM user has no place for, ignored (documented in
#: discovery): a derived name, language settings, and a password (the connector manages no
#: console passwords). Anything else that cannot be stored is refused, never dropped.
IGNORED = ("name.formatted", "locale", "preferredLanguage", "timezone", "password")
#: Core attributes with no home in IAM: a value for one is 400 ``invalidValue``.
_UNSTORED = {
    "nick_name": "nickName",
    "profile_url": "profileUrl",
    "ims": "ims",
    "photos": "photos",
    "roles": "roles",
    "x509_certificates": "x509Certificates",
}


def _kind(value: Any) -> str | None:
    kind = getattr(value, "value", value)
    return str(kind) if kind is not None else None


def _manager_value(value: Any) -> Any:
    if isinstance(value, str):
        return {"value": value}
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        return {key: item for key, item in value[0].items() if item is not None}
    return value


def normalize_patch(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Entra's PATCH of the enterprise ``manager`` gives the manager's id as a plain string
    (``"value": "26118915"``) or as a one-item list (``[{"$ref": null, "value": ...}]``):
    the complex value ``{"value": ...}`` it stands for. Entra's removal of members names them
    with ``"$ref": null``: a null sub-attribute selects nothing, and is left out, so that the
    value selects the members by their ``value``."""
    data = dict(payload)
    operations = data.get("Operations")
    if not isinstance(operations, list):
        return data
    fixed = []
    for operation in operations:
        if (
            isinstance(operation, dict)
            and isinstance(operation.get("path"), str)
            and operation["path"].lower() == f"{ENTERPRISE_URN}:manager".lower()
        ):
            fixed.append({**operation, "value": _manager_value(operation.get("value"))})
        elif (
            isinstance(operation, dict)
            and str(operation.get("op", "")).lower() == "remove"
            and isinstance(operation.get("value"), list)
        ):
            values = [
                {key: item for key, item in entry.items() if item is not None}
                if isinstance(entry, dict)
                else entry
                for entry in operation["value"]
            ]
            fixed.append({**operation, "value": values})
        else:
            fixed.append(operation)
    data["Operations"] = fixed
    return data


def _carried(payload: Mapping[str, Any]) -> frozenset[str]:
    """The top-level keys of a PUT body, lower-cased (attribute names ignore case)."""
    return frozenset(str(key).lower() for key in payload)


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


def _holdings(
    groups: Iterable[tuple[str, str]], policies: Iterable[tuple[str, str]]
) -> tuple[Holding, ...]:
    """Holdings of ``(group name, group id)`` and ``(policy ARN, policy name)`` pairs."""
    return tuple(Holding(f"{GROUP}{name}", native_id, name) for name, native_id in groups) + tuple(
        Holding(f"{POLICY}{arn}", "", name) for arn, name in policies
    )


def policy_holdings(arns: Iterable[str]) -> tuple[Holding, ...]:
    """Holdings of managed policies by ARN (named by the ARN's last part)."""
    return _holdings((), ((arn, arn.rsplit("/", 1)[-1]) for arn in sorted(arns)))


def bulk_detail(account: Account, group_ids: Mapping[str, str]) -> AccountDetail:
    """An account of the bulk read (``Account.groups`` names, ``Account.policies`` ARNs) as
    a read of one account shows it, the group ids from ``group_ids`` (name -> id)."""
    groups = _holdings(((name, group_ids.get(name, "")) for name in account.groups), ())
    return AccountDetail(account, groups + policy_holdings(account.policies))


def policies_of(detail: AccountDetail) -> frozenset[str]:
    """The ARNs of the managed policies an account holds directly."""
    return frozenset(
        holding.entitlement.removeprefix(POLICY)
        for holding in detail.holdings
        if holding.entitlement.startswith(POLICY)
    )


def groups_of(detail: AccountDetail) -> tuple[Holding, ...]:
    return tuple(h for h in detail.holdings if h.entitlement.startswith(GROUP))


@frozen
class Snapshot:
    """The accounts as the bulk reads show them, with groups and direct policies: how the
    users of a connector without ``read-account`` are read (the whole target each time)."""

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
        if policies and FetchKind.POLICY_ACCESS in runtime.connector_type.fetch_kinds:
            for row in runtime.fetch(FetchKind.POLICY_ACCESS):
                if isinstance(row, PolicyAccess) and row.via == "direct":
                    direct.setdefault(row.user_id, []).append(row)
        return cls(accounts, found, {key: tuple(rows) for key, rows in direct.items()})

    def find(self, native_id: str) -> Account | None:
        return next((account for account in self.accounts if account.id == native_id), None)

    def by_email(self, email: str) -> Account | None:
        wanted = normalize_user_name(email)
        for account in self.accounts:
            if normalize_user_name(account.email or "") == wanted:
                return account
        return None

    def detail(self, account: Account) -> AccountDetail:
        return AccountDetail(
            account,
            _holdings(
                (
                    (name, group.id if (group := self.groups.get(name)) else "")
                    for name in account.groups
                ),
                ((row.policy_arn, row.policy_name) for row in self.direct.get(account.id, ())),
            ),
        )


@frozen
class Wanted:
    """A user as a request wants it, in the connector's terms (``email`` normalised)."""

    email: str
    first_name: str | None
    last_name: str | None
    display_name: str | None
    #: The extra attributes the request speaks to (``""`` clears); the others are left.
    attributes: dict[str, str]
    #: The directly attached policies wanted; None when the request leaves them as they are.
    policies: frozenset[str] | None
    external_id: str | None = None
    #: The request's ``emails`` values, as given: read-only, they must agree with ``email``.
    emails: tuple[str, ...] = ()
    #: Enabled (True), disabled (False), or left as it is (None).
    active: bool | None = None


def _created(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


class Users:
    """The ``/Users`` resource type of one connector."""

    def __init__(
        self,
        runtime: Runtime,
        base_url: str,
        extra_attributes: Sequence[str],
        index: AccountIndex | None = None,
    ) -> None:
        self.runtime = runtime
        #: Reads go to one account at a time (``read-account``) through the index; without
        #: the capability, every read is a bulk read (:class:`Snapshot`).
        self.reads_accounts = Capability.READ_ACCOUNT in runtime.connector_type.capabilities
        capabilities = runtime.connector_type.capabilities
        #: ``entitlements`` are managed policies, for a type that has them (it reads
        #: ``policy-access``); a type without them (Identity Center) refuses any value.
        self.policies = FetchKind.POLICY_ACCESS in runtime.connector_type.fetch_kinds
        #: ``active`` is writable for a type that disables and enables; for one that cannot,
        #: every account is active, ``true`` changes nothing and ``false`` is refused (400
        #: ``mutability``), never ignored and never taken for a delete.
        self.disables = Capability.DISABLE in capabilities and Capability.ENABLE in capabilities
        self.index = index if index is not None else AccountIndex(runtime)
        self.base_url = base_url.rstrip("/")
        self.external_id = EXTERNAL_ID in extra_attributes
        #: The mapped attributes with a home in the core schema or the enterprise extension.
        self.homed = tuple(name for name in extra_attributes if name in SCIM_HOMES)
        #: The other extra attributes: the connector's own extension.
        self.extra_attributes = tuple(
            name for name in extra_attributes if name != EXTERNAL_ID and name not in SCIM_HOMES
        )
        self.extension = extension_model(self.extra_attributes)
        extension: Any = self.extension
        self.model: Any = (
            User[Union[Enterprise, extension]]  # noqa: UP007 (a runtime type argument)
            if extension is not None
            else User[Enterprise]
        )
        self._names = NameLocks()

    # --- reading ---------------------------------------------------------------------

    def to_scim(self, detail: AccountDetail) -> Any:
        account = detail.account
        email = account.email or account.user_name
        groups = [self._membership(holding) for holding in groups_of(detail)]
        entitlements = [Entitlement(value=arn) for arn in sorted(policies_of(detail))]
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
            active=account.enabled,
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
        self._write_homes(user, account.attributes)
        return user

    def _write_homes(self, user: Any, attributes: Mapping[str, str]) -> None:
        """Put the mapped attributes with a SCIM home into ``user`` (see :data:`SCIM_HOMES`)."""
        values = {name: attributes[name] for name in self.homed if attributes.get(name)}
        user.title = values.get("job_title")
        user.user_type = values.get("employee_type")
        address: dict[str, Any] = {
            part: values[name] for name, part in _ADDRESS_PARTS.items() if name in values
        }
        user.addresses = [Address.model_validate({**address, "type": "work"})] if address else None
        mobile = values.get("mobile_phone")
        user.phone_numbers = (
            [PhoneNumber(type=PhoneNumber.Type.mobile, value=mobile)] if mobile else None
        )
        enterprise: dict[str, Any] = {
            part: values[name] for name, part in _ENTERPRISE_PARTS.items() if name in values
        }
        if "manager" in values:
            enterprise["manager"] = {"value": values["manager"]}
        if enterprise:
            user[Enterprise] = Enterprise.model_validate(enterprise)
        for name, part in _CORE_PARTS.items():
            if name in self.homed:
                setattr(user, part, values.get(name))

    def _read_homes(self, user: Any, carried: frozenset[str] | None) -> dict[str, str]:
        """The mapped attributes with a SCIM home that ``user`` speaks to (``""`` clears).
        ``carried`` (a PUT's top-level keys) leaves alone the multi-valued attributes and the
        enterprise extension the request does not carry; None (a PATCH's whole user, a POST)
        speaks to all. A value with no home (another address or phone type, an enterprise
        attribute the mapping lacks) is refused, never dropped."""
        found: dict[str, str] = {}

        def speaks(key: str) -> bool:
            return carried is None or key.lower() in carried

        found["job_title"] = user.title or ""
        found["employee_type"] = user.user_type or ""
        for name, part in _CORE_PARTS.items():
            if name in self.homed:
                found[name] = str(getattr(user, part, None) or "")
        if speaks("addresses"):
            work = [a for a in user.addresses or () if _kind(a.type) == "work"]
            others = [a for a in user.addresses or () if _kind(a.type) != "work"]
            if others or len(work) > 1:
                raise InvalidValueException(
                    detail='only one work address is stored (addresses[type eq "work"]); '
                    f"got {len(user.addresses or ())} addresses of types "
                    f"{sorted(str(_kind(a.type)) for a in user.addresses or ())}"
                )
            for name, part in _ADDRESS_PARTS.items():
                found[name] = (getattr(work[0], part, None) or "") if work else ""
        if speaks("phoneNumbers"):
            mobiles = [p for p in user.phone_numbers or () if _kind(p.type) == "mobile"]
            others = [p for p in user.phone_numbers or () if _kind(p.type) != "mobile"]
            if others or len(mobiles) > 1:
                raise InvalidValueException(
                    detail="only one mobile phone number is stored (phoneNumbers[type eq "
                    '"mobile"]); remove the other phone numbers from the client\'s mapping'
                )
            found["mobile_phone"] = (mobiles[0].value or "") if mobiles else ""
        if speaks(ENTERPRISE_URN):
            enterprise = user[Enterprise]
            for name, part in _ENTERPRISE_PARTS.items():
                found[name] = (getattr(enterprise, part, None) or "") if enterprise else ""
            manager = enterprise.manager if enterprise else None
            found["manager"] = (manager.value or "") if manager else ""
            for part in ("cost_center", "division"):
                if enterprise is not None and getattr(enterprise, part, None):
                    raise InvalidValueException(
                        detail=f"enterprise {part} is not stored by this connector"
                    )
        unhomed = sorted(name for name, value in found.items() if value and name not in self.homed)
        if unhomed:
            where = ", ".join(SCIM_HOMES[name] for name in unhomed)
            # IAM's mapping is the operator's to extend; another type's attributes are its own
            hint = (
                " (add [aws-iam.attributes.NAME] to the config)"
                if self.runtime.connector_type.name == "aws-iam"
                else f" (connector {self.runtime.connector_type.name!r} has no home for it: "
                "remove it from the client's attribute mapping)"
            )
            raise InvalidValueException(
                detail=f"{where} cannot be stored: the connector's attribute mapping has no "
                f"{', '.join(unhomed)}{hint}"
            )
        return {name: value for name, value in found.items() if name in self.homed}

    def _membership(self, holding: Holding) -> GroupMembership:
        data: dict[str, Any] = {"value": holding.native_id or holding.name, "display": holding.name}
        if holding.native_id:
            data["$ref"] = f"{self.base_url}/Groups/{holding.native_id}"
        data["type"] = "direct"
        return GroupMembership.model_validate(data)

    def all(self) -> Iterator[Any]:
        """Every user, from one bulk read."""
        return (self.to_scim(detail) for detail in self._every())

    def _every(self) -> Iterator[AccountDetail]:
        if not self.reads_accounts:
            snapshot = Snapshot.read(self.runtime)
            yield from (snapshot.detail(account) for account in snapshot.accounts)
            return
        group_ids = GroupIds(self.index)
        for row in self.runtime.fetch(FetchKind.USERS):
            if isinstance(row, Account):
                self.index.put(row)
                yield bulk_detail(row, group_ids.of(row))

    def get(self, native_id: str) -> Any:
        return self.to_scim(self._read(native_id))

    def _read(self, native_id: str) -> AccountDetail:
        detail = self._find(native_id)
        if detail is None:
            raise NotFoundException(detail=f"no user with id {native_id!r}")
        return detail

    def _find(self, native_id: str) -> AccountDetail | None:
        """The account of a native id, read from the target by the name the index has for
        it. A miss, or a name that no longer has this id (renamed or deleted behind the
        server's back), refreshes the index once and reads again: the answer is always the
        target's, never the index's."""
        if not self.reads_accounts:
            snapshot = Snapshot.read(self.runtime)
            account = snapshot.find(native_id)
            return snapshot.detail(account) if account is not None else None
        for attempt in range(2):
            mark = self.index.mark()
            known = self.index.user(native_id)
            if known is not None:
                detail = self.runtime.read_account({"id": native_id, "name": known.name})
                if detail is not None:
                    self.index.put(detail.account)
                    return detail
            if attempt == 0:
                self.index.refresh(mark)
        self.index.drop(native_id)
        return None

    def _holder(self, email: str) -> Account | None:
        """The account whose email is ``email`` now, as the target says (the index names the
        candidate; its read confirms it), or None."""
        wanted = normalize_user_name(email)
        if not self.reads_accounts:
            return Snapshot.read(self.runtime, policies=False, groups=False).by_email(wanted)
        for _attempt in range(2):
            known = self.index.by_email(wanted)
            if known is None:
                return None
            detail = self._find(known.id)
            if detail is not None and normalize_user_name(detail.account.email or "") == wanted:
                return detail.account
        return None

    def by_identity(self, value: str) -> list[Any]:
        """The users a ``userName eq`` / ``emails.value eq`` filter can match: the account the
        email names (read by the user name it derives), and the one the index knows with
        that email when it is another (a user named otherwise that carries the email)."""
        email = normalize_user_name(value)
        if not self.reads_accounts:
            return list(self.all())
        if not email:
            return []
        found: list[AccountDetail] = []
        detail = self.runtime.read_account({"email": email})
        if detail is not None:
            self.index.put(detail.account)
            found.append(detail)
        known = self.index.by_email(email)
        if known is not None and all(item.account.id != known.id for item in found):
            other = self._find(known.id)
            if other is not None:
                found.append(other)
        return [self.to_scim(item) for item in found]

    def listing(self, scim_filter: Any | None, start: int, count: int) -> tuple[int, list[Any]]:
        """The users matching a filter (parsed already), a page of them, and their number. No
        filter reads the window's pages only; one that names a userName or email reads that
        account; any other reads every account."""
        if scim_filter is None:
            return self.window(start, count)
        value = identity_value(scim_filter)
        candidates = self.by_identity(value) if value is not None else self.all()
        matching = [user for user in candidates if scim_filter.match(user)]
        return len(matching), matching[start - 1 : start - 1 + count]

    def window(self, start: int, count: int) -> tuple[int, list[Any]]:
        """Users ``start`` to ``start + count - 1`` (1-based) of the unfiltered list and the
        total: only the bulk read's pages up to the window are read. The total is the
        index's count, refreshed when the window shows an account the index does not know,
        or exact when the read reached the end first."""
        if not self.reads_accounts:
            every = list(self.all())
            return len(every), every[start - 1 : start - 1 + count]
        self.index.ensure()
        mark = self.index.mark()
        wanted = start - 1 + count
        accounts = _first_accounts(self.runtime.fetch(FetchKind.USERS), wanted)
        unknown = [row for row in accounts if self.index.user(row.id) is None]
        for row in accounts:
            self.index.put(row)
        total = len(accounts) if len(accounts) < wanted else None
        if unknown or (total is not None and total != self.index.count()):
            self.index.refresh(mark)
        page = accounts[start - 1 :]
        group_ids = GroupIds(self.index)
        users = [self.to_scim(bulk_detail(row, group_ids.of(row))) for row in page]
        return (self.index.count() if total is None else total), users

    # --- writing ---------------------------------------------------------------------

    def _wanted(self, user: Any, carried: frozenset[str] | None = None) -> Wanted:
        """The user a request wants. ``carried``: a PUT's top-level keys, so that the
        multi-valued attributes and extensions it leaves out are left as they are (access
        changes only when asked for); None speaks to everything (a POST, a patched user)."""
        email = normalize_user_name(user.user_name or "")
        if not email:
            raise InvalidValueException(detail="userName (the email) is required")
        _refuse_unstored(user, self.homed)
        self._refuse_inactive(user)
        if user.entitlements and not self.policies:
            raise InvalidValueException(
                detail=f"entitlements cannot be stored: connector "
                f"{self.runtime.connector_type.name!r} has no managed policies (grant its own "
                "entitlements through IDHub; group memberships through PATCH /Groups)"
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
        if self.extension is not None and (
            carried is None or str(self.extension.__schema__).lower() in carried
        ):
            extension = user[self.extension]
            for name in self.extra_attributes:
                value = getattr(extension, name, None) if extension is not None else None
                attributes[name] = str(value) if value else ""
        attributes.update(self._read_homes(user, carried))
        name = user.name
        return Wanted(
            email=email,
            first_name=name.given_name if name else None,
            last_name=name.family_name if name else None,
            display_name=user.display_name,
            attributes=attributes,
            policies=frozenset(policies) if carried is None or "entitlements" in carried else None,
            external_id=user.external_id if self.external_id else None,
            emails=_emails(user),
            active=user.active,
        )

    def _refuse_inactive(self, user: Any) -> None:
        """``active: false`` on a connector that cannot disable: 400 ``mutability`` before
        any change, naming what to do instead (the request is not half applied)."""
        if user.active is False and not self.disables:
            raise MutabilityException(
                detail=f"active cannot be false: connector {self.runtime.connector_type.name!r} "
                "cannot disable an account (every account is active); nothing was changed. "
                "Deprovision with DELETE instead (in the client: remove the mapping of active, "
                "or turn off deactivation)"
            )

    def _check_emails(self, wanted: Wanted, native_id: str | None, *, changed: bool) -> None:
        """``emails`` is read-only: it is the userName. A value that is another user's email is
        a conflict (409 ``uniqueness``), never a way to reach that user; another value is
        ignored when a POST or PUT carries it (RFC 7643 §7: read-only values given are ignored)
        and refused when a PATCH sets it (400 ``mutability``)."""
        for value in wanted.emails:
            email = normalize_user_name(value)
            if not email or email == wanted.email:
                continue
            other = self._holder(email)
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
        """POST: checked free (the index names any holder, its read confirms it) and created
        under the userName's lock; answered from what was asked and what the create did,
        without reading the account back."""
        user = self._validated(payload, Context.RESOURCE_CREATION_REQUEST)
        wanted = self._wanted(user)
        with self._names.hold(wanted.email):
            if self._holder(wanted.email) is not None:
                raise self._taken(wanted.email)
            self._check_emails(wanted, None, changed=False)
            result = self.runtime.create(self._create_request(wanted))
            if not created_here(result) or result.account is None:
                # another server (or the CLI) created it between the check and the create
                raise self._taken(wanted.email)
            if wanted.active is False:  # provisioned disabled (a pre-hire, a suspension)
                self.runtime.disable({"email": wanted.email})
            if not self.reads_accounts:
                return self.get(result.account.id)
            account = _created_account(wanted, result, self.external_id)
            self.index.put(account)
        return self.to_scim(bulk_detail(account, {}))

    def _validated(self, payload: Mapping[str, Any], context: Context) -> Any:
        """A POST or PUT body as a User. Validated under scim2-models' default policy: under
        :data:`IDENTITY_POLICY` it walks every string of the body to check that the policy can
        compare it (3 ms a request), and that policy's comparison is the default one after a
        strip, so it can compare exactly what the default can: the same bodies are refused."""
        with DEFAULT_POLICY:
            return self.model.model_validate(payload, scim_ctx=context)

    def _create_request(self, wanted: Wanted) -> dict[str, Any]:
        # exclusive: a POST creates, never resumes an account another writer made meanwhile;
        # checked_absent: the check above found no holder, so CreateUser comes first (IAM's
        # answer still refuses a user made since)
        request: dict[str, Any] = {"email": wanted.email, "exclusive": True}
        if self.reads_accounts:
            request["checked_absent"] = True
        for key in ("first_name", "last_name", "display_name"):
            if getattr(wanted, key):
                request[key] = getattr(wanted, key)
        attributes = {name: value for name, value in wanted.attributes.items() if value}
        if wanted.external_id:
            attributes[EXTERNAL_ID] = wanted.external_id
        if attributes:
            request["attributes"] = attributes
        if wanted.policies:
            request["grants"] = [f"{POLICY}{arn}" for arn in sorted(wanted.policies)]
        return request

    def replace(self, native_id: str, payload: Mapping[str, Any]) -> Any:
        user = self._validated(payload, Context.RESOURCE_REPLACEMENT_REQUEST)
        wanted = self._wanted(user, _carried(payload))
        return self._apply(self._read(native_id), wanted, emails_changed=False)

    def patch(self, native_id: str, payload: Mapping[str, Any]) -> Any:
        model: Any = self.model
        patch = PatchOp[model].model_validate(
            normalize_patch(payload), scim_ctx=Context.RESOURCE_PATCH_REQUEST
        )
        detail = self._read(native_id)
        current = self.to_scim(detail)
        patched = current.model_copy(deep=True)
        if not patch.patch(patched):
            return current
        if patched.active is None:
            raise MutabilityException(
                detail="active cannot be removed: replace it with false to disable the user, "
                "true to enable it"
                if self.disables
                else "active cannot be removed: every account of this connector is active"
            )
        changed = {normalize_user_name(value) for value in _emails(patched)} != {
            normalize_user_name(value) for value in _emails(current)
        }
        return self._apply(detail, self._wanted(patched), emails_changed=changed)

    def _apply(self, detail: AccountDetail, wanted: Wanted, *, emails_changed: bool) -> Any:
        account = detail.account
        if not account.email:
            raise MutabilityException(
                detail=f"user {account.user_name!r} has no email tag: it is not managed by the "
                "connector and cannot be changed through SCIM"
            )
        self._check_emails(wanted, account.id, changed=emails_changed)
        if wanted.email == normalize_user_name(account.email):
            return self._change(detail, wanted, rename=False)
        # a rename onto a userName: checked free and done under its lock, as a create is
        with self._names.hold(wanted.email):
            other = self._holder(wanted.email)
            if other is not None and other.id != account.id:
                raise self._taken(wanted.email)
            return self._change(detail, wanted, rename=True)

    def _change(self, detail: AccountDetail, wanted: Wanted, *, rename: bool) -> Any:
        """Modify what differs, then enable, grant and revoke, then disable; answered from the
        account read before and what each call did."""
        account = detail.account
        assert account.email is not None
        change: dict[str, Any] = {"email": account.email}
        if rename:
            change["new_email"] = wanted.email
        for key in ("first_name", "last_name", "display_name"):
            if (getattr(wanted, key) or "") != (getattr(account, key) or ""):
                change[key] = getattr(wanted, key) or ""
        attributes = {
            name: value
            for name, value in wanted.attributes.items()
            if value != account.attributes.get(name, "")
        }
        if self.external_id and (wanted.external_id or "") != account.attributes.get(
            EXTERNAL_ID, ""
        ):
            attributes[EXTERNAL_ID] = wanted.external_id or ""
        if attributes:
            change["attributes"] = attributes
        result = self.runtime.modify(change) if len(change) > 1 else None
        email = wanted.email
        if wanted.active is True and not account.enabled:
            self.runtime.enable({"email": email})
        held = policies_of(detail)
        if wanted.policies is not None:
            for arn in sorted(wanted.policies - held):
                self.runtime.grant({"email": email, "entitlement": f"{POLICY}{arn}"})
            for arn in sorted(held - wanted.policies):
                self.runtime.revoke({"email": email, "entitlement": f"{POLICY}{arn}"})
            held = wanted.policies
        if wanted.active is False and account.enabled:
            self.runtime.disable({"email": email})
        if not self.reads_accounts:
            return self.get(account.id)
        changed = _changed_account(account, change, result, wanted, held)
        self.index.put(changed)
        return self.to_scim(AccountDetail(changed, groups_of(detail) + policy_holdings(held)))

    def delete(self, native_id: str) -> None:
        account = self._read(native_id).account
        if not account.email:
            raise MutabilityException(
                detail=f"user {account.user_name!r} has no email tag: it is not managed by the "
                "connector and cannot be deleted through SCIM"
            )
        self.runtime.delete({"email": account.email})
        self.index.drop(native_id)


class GroupIds:
    """Group name -> GroupId from the index, read again once when an account names a group
    the index does not know (created behind the server's back)."""

    def __init__(self, index: AccountIndex) -> None:
        self._index = index
        self._mark = index.group_mark()
        self._ids = index.group_ids()
        self._refreshed = False

    def of(self, account: Account) -> Mapping[str, str]:
        if not self._refreshed and any(name not in self._ids for name in account.groups):
            self._index.refresh_groups(self._mark)
            self._ids = self._index.group_ids()
            self._refreshed = True
        return self._ids


def _first_accounts(rows: Iterator[Any], count: int) -> list[Account]:
    """The first ``count`` accounts of a fetch; the fetch is closed after them, so no page
    past them is asked for."""
    try:
        return list(islice((row for row in rows if isinstance(row, Account)), count))
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()


def _skipped(result: OperationResult | None) -> frozenset[str]:
    """The attributes an operation did not write (the mapping writes them at other times)."""
    if result is None:
        return frozenset()
    return frozenset(
        step.target
        for step in result.steps
        if step.action == "write attribute" and step.status is StepStatus.SKIPPED
    )


def _created_account(wanted: Wanted, result: OperationResult, external_id: bool) -> Account:
    """The account a create made, from what was asked and what the create reports."""
    ref = result.account
    assert ref is not None
    skipped = _skipped(result)
    attributes = {
        name: value for name, value in wanted.attributes.items() if value and name not in skipped
    }
    if external_id and wanted.external_id and EXTERNAL_ID not in skipped:
        attributes[EXTERNAL_ID] = wanted.external_id
    names: dict[str, Any] = {
        key: (getattr(wanted, key) or None) if key not in skipped else None
        for key in ("first_name", "last_name", "display_name")
    }
    return Account(
        id=ref.id,
        user_name=ref.name,
        email=wanted.email,
        arn="",
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        attributes=attributes,
        policies=tuple(sorted(wanted.policies or ())),
        enabled=wanted.active is not False,
        **names,
    )


def _changed_account(
    account: Account,
    change: Mapping[str, Any],
    result: OperationResult | None,
    wanted: Wanted,
    policies: Iterable[str],
) -> Account:
    """The account after a modify (``change``, as far as ``result`` says it wrote it), an
    enable or disable, and grants or revokes leaving ``policies``."""
    skipped = _skipped(result)
    names: dict[str, Any] = {
        key: change[key] or None
        for key in ("first_name", "last_name", "display_name")
        if key in change and key not in skipped
    }
    attributes = dict(account.attributes)
    for name, value in change.get("attributes", {}).items():
        if name in skipped:
            continue
        if value:
            attributes[name] = value
        else:
            attributes.pop(name, None)
    if result is not None and result.account is not None:
        names["user_name"] = result.account.name
    if "new_email" in change:
        names["email"] = wanted.email
    return evolve(
        account,
        attributes=attributes,
        enabled=account.enabled if wanted.active is None else wanted.active,
        policies=tuple(sorted(policies)),
        **names,
    )


def _refuse_unstored(user: Any, homed: Iterable[str] = ()) -> None:
    """A value for a core attribute IAM has no place for is refused (400 ``invalidValue``),
    never dropped with a 200; :data:`IGNORED` lists what is ignored instead. ``homed``: the
    mapped attributes with a SCIM home, which are stored, not refused."""
    stored = set(homed)
    given = [
        scim for name, scim in _UNSTORED.items() if name not in stored and getattr(user, name, None)
    ]
    name = user.name
    if name is not None:
        for part, scim in (
            ("middle_name", "middleName"),
            ("honorific_prefix", "honorificPrefix"),
            ("honorific_suffix", "honorificSuffix"),
        ):
            if getattr(name, part, None):
                given.append(f"name.{scim}")
    if given:
        raise InvalidValueException(
            detail=f"{', '.join(given)} cannot be stored on an IAM user: remove "
            f"{'it' if len(given) == 1 else 'them'} from the client's attribute mapping"
        )


def _emails(user: Any) -> tuple[str, ...]:
    return tuple(email.value for email in user.emails or () if email.value)
