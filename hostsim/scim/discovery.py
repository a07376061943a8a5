"""Discovery (RFC 7644 §4): what this server supports, and nothing it does not.

``ServiceProviderConfig`` says yes to filter and PATCH, no to bulk, sort, ETags and password
changes, and gives the body size limit as bulk's ``maxPayloadSize``. ``Schemas`` publishes the
core User schema cut down to the attributes the connector maps (with ``emails`` and ``groups``
read-only; ``active`` is the account's enabled state), the enterprise User extension cut down
to what the mapping has, the core Group schema (``members`` writable, ``displayName``
read-only) and, when the attribute mapping has extra attributes, the connector's User
extension.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from scim2_models import (
    Attribute,
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    ETag,
    Extension,
    Filter,
    Group,
    Meta,
    Mutability,
    Patch,
    Required,
    ResourceType,
    Schema,
    ServiceProviderConfig,
    Sort,
    User,
)

from hostsim.scim.body import DEFAULT_MAX_PAYLOAD_SIZE
from hostsim.scim.users import ENTERPRISE_URN, IGNORED, Enterprise

#: The largest page a list returns, whatever ``count`` asks.
MAX_RESULTS = 1000

_USER_ATTRIBUTES = ("userName", "name", "displayName", "emails", "active", "groups", "entitlements")
_NAME_PARTS = ("givenName", "familyName")
_EMAIL_PARTS = ("value", "type", "primary")
_NOTES = {
    "userName": "The email: the connector's unique account identifier. A new value renames "
    "the account, which keeps its id.",
    "emails": "Read-only: one primary work email, the userName.",
    "active": "The account's enabled state: false disables it (the connector stops it acting "
    "at once, losing nothing), true enables it again. A disabled user can still be changed "
    "and deleted.",
    "title": "The job title (attribute job_title).",
    "userType": "The employee type (attribute employee_type).",
    "addresses": "One work address: streetAddress, locality (city), region (state), "
    "postalCode, country, formatted (the office location). Other types are refused.",
    "phoneNumbers": "One mobile phone number. Other types are refused.",
    "groups": "Read-only: the IAM groups of the user. Change membership through PATCH /Groups.",
    "entitlements": "Managed policies attached directly to the user: value is the policy ARN.",
}


def _meta(kind: str, location: str) -> Meta:
    return Meta(resource_type=kind, location=location)


def service_provider_config(
    base_url: str, schemes: tuple[str, ...], max_payload_size: int = DEFAULT_MAX_PAYLOAD_SIZE
) -> ServiceProviderConfig:
    """What the server supports. Bulk is not, but its ``maxPayloadSize`` is the one body limit
    the configuration has room for, so it carries the limit every request body is held to."""
    auth = [
        AuthenticationScheme(
            type=AuthenticationScheme.Type.oauthbearertoken,
            name="Bearer token",
            description="Authorization: Bearer <token>",
            primary=True,
        )
        if scheme == "bearer"
        else AuthenticationScheme(
            type=AuthenticationScheme.Type.httpbasic,
            name="HTTP Basic",
            description="Authorization: Basic <username:password>",
            primary=schemes[0] == "basic",
        )
        for scheme in schemes
    ]
    return ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=max_payload_size),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=False),
        authentication_schemes=auth or None,
        meta=_meta("ServiceProviderConfig", f"{base_url}/ServiceProviderConfig"),
    )


_ALWAYS_ACTIVE = (
    "Always true: this connector cannot disable an account. false is refused (400 "
    "mutability) and changes nothing; deprovision with DELETE."
)
_UNMANAGED_GROUPS = (
    "The target's groups: members change; groups are not created or deleted through SCIM "
    "(501): make them in the target and match them on displayName."
)


def _subset(attribute: Attribute, names: tuple[str, ...]) -> list[Attribute]:
    return [sub for sub in attribute.sub_attributes or () if sub.name in names]


_HOMED_ATTRIBUTES = {
    "title": ("job_title",),
    "userType": ("employee_type",),
    "addresses": ("street_address", "city", "state", "postal_code", "country", "location"),
    "phoneNumbers": ("mobile_phone",),
    "nickName": ("nick_name",),
    "profileUrl": ("profile_url",),
    "preferredLanguage": ("preferred_language",),
    "locale": ("locale",),
    "timezone": ("timezone",),
}
_ADDRESS_NAMES = {
    "street_address": "streetAddress",
    "city": "locality",
    "state": "region",
    "postal_code": "postalCode",
    "country": "country",
    "location": "formatted",
}


def user_schema(
    base_url: str, homed: Iterable[str] = (), *, policies: bool = True, disables: bool = True
) -> Schema:
    """The core User schema the connector supports; ``homed``: the mapped attributes with a
    home in SCIM (:data:`~hostsim.scim.users.SCIM_HOMES`), which add title, userType, the
    work address and the mobile phone number. ``policies``: whether ``entitlements`` (managed
    policies) are offered; ``disables``: whether ``active`` is writable (else read-only, and
    always true)."""
    schema = User.to_schema()
    homed = set(homed)
    wanted = set(_USER_ATTRIBUTES) | {
        name for name, attributes in _HOMED_ATTRIBUTES.items() if homed & set(attributes)
    }
    if not policies:
        wanted.discard("entitlements")
    kept: list[Attribute] = []
    for attribute in schema.attributes or ():
        if attribute.name not in wanted:
            continue
        update: dict[str, Any] = {}
        if attribute.name in _NOTES:
            update["description"] = _NOTES[attribute.name]
        if attribute.name in ("emails", "groups"):
            update["mutability"] = Mutability.read_only
        if attribute.name == "active":
            # every account is enabled or disabled: a POST without it creates an enabled one,
            # and a PATCH remove or a PUT without it leaves the state as it is
            update["required"] = Required.true
            if not disables:
                update["mutability"] = Mutability.read_only
                update["description"] = _ALWAYS_ACTIVE
        if attribute.name == "addresses":
            parts = {_ADDRESS_NAMES[name] for name in homed if name in _ADDRESS_NAMES}
            update["sub_attributes"] = [
                sub.model_copy(update={"canonical_values": ["work"]}) if sub.name == "type" else sub
                for sub in attribute.sub_attributes or ()
                if sub.name in parts | {"type"}
            ]
        if attribute.name == "phoneNumbers":
            update["sub_attributes"] = [
                sub.model_copy(update={"canonical_values": ["mobile"]})
                if sub.name == "type"
                else sub
                for sub in attribute.sub_attributes or ()
                if sub.name in ("value", "type")
            ]
        if attribute.name == "name":
            update["sub_attributes"] = _subset(attribute, _NAME_PARTS)
        if attribute.name == "emails":
            update["sub_attributes"] = [
                sub.model_copy(update={"mutability": Mutability.read_only})
                for sub in _subset(attribute, _EMAIL_PARTS)
            ]
        if attribute.name == "entitlements":
            update["sub_attributes"] = _subset(attribute, ("value",))  # the policy ARN only
        kept.append(attribute.model_copy(update=update))
    return schema.model_copy(
        update={
            "attributes": kept,
            "description": "User accounts of the connector. Accepted and ignored (an IAM user "
            f"has no place for them): {', '.join(n for n in IGNORED if n not in wanted)}. "
            "Refused: any other attribute.",
            "meta": _meta("Schema", f"{base_url}/Schemas/{schema.id}"),
        }
    )


def group_schema(base_url: str, *, manages_groups: bool = True) -> Schema:
    schema = Group.to_schema()
    kept = [
        # the IAM group name: given at creation (when the connector manages groups), never renamed
        attribute.model_copy(update={"mutability": Mutability.immutable})
        if attribute.name == "displayName"
        else attribute
        for attribute in schema.attributes or ()
        if attribute.name in ("displayName", "members")
    ]
    return schema.model_copy(
        update={
            "attributes": kept,
            "description": "The account's IAM groups: members change; created and deleted only "
            "when the connector's manage_groups setting is on. externalId is accepted and not "
            "stored (IAM groups carry no tags): match groups on displayName."
            if manages_groups
            else _UNMANAGED_GROUPS,
            "meta": _meta("Schema", f"{base_url}/Schemas/{schema.id}"),
        }
    )


_ENTERPRISE_NAMES = {
    "employee_id": "employeeNumber",
    "department": "department",
    "company_name": "organization",
    "manager": "manager",
}


def enterprise_schema(base_url: str, homed: Iterable[str]) -> Schema | None:
    """The enterprise User extension cut down to the mapped attributes it holds, or None."""
    names = {_ENTERPRISE_NAMES[name] for name in homed if name in _ENTERPRISE_NAMES}
    if not names:
        return None
    schema = Enterprise.to_schema()
    kept = []
    for attribute in schema.attributes or ():
        if attribute.name not in names:
            continue
        if attribute.name == "manager":
            attribute = attribute.model_copy(  # noqa: PLW2901
                update={
                    "description": "The manager's id at the client (value), stored as given",
                    "sub_attributes": _subset(attribute, ("value",)),
                }
            )
        kept.append(attribute)
    return schema.model_copy(
        update={"attributes": kept, "meta": _meta("Schema", f"{base_url}/Schemas/{schema.id}")}
    )


def extension_schema(base_url: str, extension: type[Extension]) -> Schema:
    schema = extension.to_schema()
    return schema.model_copy(update={"meta": _meta("Schema", f"{base_url}/Schemas/{schema.id}")})


def schemas(
    base_url: str,
    extension: type[Extension] | None,
    homed: Iterable[str] = (),
    *,
    policies: bool = True,
    disables: bool = True,
    manages_groups: bool = True,
) -> list[Schema]:
    homed = tuple(homed)
    found = [
        user_schema(base_url, homed, policies=policies, disables=disables),
        group_schema(base_url, manages_groups=manages_groups),
    ]
    enterprise = enterprise_schema(base_url, homed)
    if enterprise is not None:
        found.append(enterprise)
    if extension is not None:
        found.append(extension_schema(base_url, extension))
    return found


def _resource_type(
    name: str, description: str, schema: str | None, base_url: str
) -> dict[str, Any]:
    return {
        "id": name,
        "name": name,
        "description": description,
        "endpoint": f"/{name}s",
        "schema": schema,
        "meta": {"resourceType": "ResourceType", "location": f"{base_url}/ResourceTypes/{name}"},
    }


def resource_types(
    base_url: str,
    extension: type[Extension] | None,
    homed: Iterable[str] = (),
    *,
    manages_groups: bool = True,
) -> list[ResourceType]:
    user = _resource_type("User", "User accounts of the connector", User.to_schema().id, base_url)
    extensions = []
    if any(name in _ENTERPRISE_NAMES for name in homed):
        extensions.append({"schema": ENTERPRISE_URN, "required": False})
    if extension is not None:
        extensions.append({"schema": extension.to_schema().id, "required": False})
    if extensions:
        user["schemaExtensions"] = extensions
    group = _resource_type(
        "Group",
        "The account's IAM groups (membership; create/delete if enabled)"
        if manages_groups
        else "The target's groups (membership only)",
        Group.to_schema().id,
        base_url,
    )
    return [ResourceType.model_validate(user), ResourceType.model_validate(group)]
