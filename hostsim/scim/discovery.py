"""Discovery (RFC 7644 §4): what this server supports, and nothing it does not.

``ServiceProviderConfig`` says yes to filter and PATCH, no to bulk, sort, ETags and password
changes, and gives the body size limit as bulk's ``maxPayloadSize``. ``Schemas`` publishes the
core User schema cut down to the attributes the connector maps (with ``emails``, ``active`` and
``groups`` read-only), the core Group schema (``members`` writable, ``displayName`` read-only)
and, when the attribute mapping has extra attributes, the connector's User extension.
"""

from __future__ import annotations

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
    ResourceType,
    Schema,
    ServiceProviderConfig,
    Sort,
    User,
)

from hostsim.scim.body import DEFAULT_MAX_PAYLOAD_SIZE

#: The largest page a list returns, whatever ``count`` asks.
MAX_RESULTS = 1000

_USER_ATTRIBUTES = ("userName", "name", "displayName", "emails", "active", "groups", "entitlements")
_NAME_PARTS = ("givenName", "familyName")
_EMAIL_PARTS = ("value", "type", "primary")
_NOTES = {
    "userName": "The email: the connector's unique account identifier. A new value renames "
    "the account, which keeps its id.",
    "emails": "Read-only: one primary work email, the userName.",
    "active": "Read-only and always true: IAM users have no disabled state. A request for "
    "false is refused (400 mutability); DELETE deprovisions.",
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


def _subset(attribute: Attribute, names: tuple[str, ...]) -> list[Attribute]:
    return [sub for sub in attribute.sub_attributes or () if sub.name in names]


def user_schema(base_url: str) -> Schema:
    schema = User.to_schema()
    kept: list[Attribute] = []
    for attribute in schema.attributes or ():
        if attribute.name not in _USER_ATTRIBUTES:
            continue
        update: dict[str, Any] = {}
        if attribute.name in _NOTES:
            update["description"] = _NOTES[attribute.name]
        if attribute.name in ("emails", "active", "groups"):
            update["mutability"] = Mutability.read_only
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
            "description": "User accounts of the connector",
            "meta": _meta("Schema", f"{base_url}/Schemas/{schema.id}"),
        }
    )


def group_schema(base_url: str) -> Schema:
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
            "when the connector's manage_groups setting is on",
            "meta": _meta("Schema", f"{base_url}/Schemas/{schema.id}"),
        }
    )


def extension_schema(base_url: str, extension: type[Extension]) -> Schema:
    schema = extension.to_schema()
    return schema.model_copy(update={"meta": _meta("Schema", f"{base_url}/Schemas/{schema.id}")})


def schemas(base_url: str, extension: type[Extension] | None) -> list[Schema]:
    found = [user_schema(base_url), group_schema(base_url)]
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


def resource_types(base_url: str, extension: type[Extension] | None) -> list[ResourceType]:
    user = _resource_type("User", "User accounts of the connector", User.to_schema().id, base_url)
    if extension is not None:
        user["schemaExtensions"] = [{"schema": extension.to_schema().id, "required": False}]
    group = _resource_type(
        "Group",
        "The account's IAM groups (membership; create/delete if enabled)",
        Group.to_schema().id,
        base_url,
    )
    return [ResourceType.model_validate(user), ResourceType.model_validate(group)]
