"""The connector's settings: the ``[aws-iam]`` table of the host's config file.

Structured by the host's strict converter, so an unknown or misspelled key, or a value of the
wrong type, is refused with its path (``@ $.attributes.first_name.tag``) instead of ignored.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any, Literal

from attrs import field, frozen

from hostsim.contract import ConfigurationError, structure
from idhub_aws_plugin import input_rules

#: The account attributes every connector knows by name; anything else is an extra attribute.
CORE_ATTRIBUTES = ("first_name", "last_name", "display_name", "email")

DEFAULT_TAGS = {
    "first_name": "FirstName",
    "last_name": "LastName",
    "display_name": "DisplayName",
    "email": "Email",
    # the attributes of IDHub's AWS account schema (and what Entra ID and Okta send over SCIM),
    # written on create and on modify; 18 tags at most, well under IAM's 50 a user
    "external_id": "ExternalId",
    "department": "Department",
    "job_title": "JobTitle",
    "employee_id": "EmployeeId",
    "employee_type": "EmployeeType",
    "company_name": "CompanyName",
    "manager": "Manager",
    "location": "Location",
    "street_address": "StreetAddress",
    "city": "City",
    "state": "State",
    "postal_code": "PostalCode",
    "country": "Country",
    "mobile_phone": "MobilePhone",
}

PolicySelection = Literal["all", "attached", "none"]

#: The inclusive range of every numeric setting, by its path: a value outside it is refused at
#: load time rather than met as a hang, a crash or an AWS error halfway through an operation.
NUMBER_RANGES: dict[str, tuple[int, int]] = {
    "$.max_attempts": (1, 20),
    "$.assume_role.duration_seconds": (900, 43200),
    "$.organization.duration_seconds": (900, 43200),
    "$.organization.max_concurrency": (1, 64),
}
#: What AWS allows a session of a role assumed with credentials that are themselves assumed
#: (role chaining), whatever the role's own maximum.
ROLE_CHAINING_MAX_SECONDS = 3600
#: The placeholders of the ``user_name`` template (plain ``{name}``, nothing else).
TEMPLATE_FIELDS = ("email", "local_part", "domain")
#: How much of a setting's value an error message shows: a huge value must not flood the line.
SHOWN_CHARS = 60

#: Policies that hand over the account: never granted unless the operator removes them from
#: ``grantable_policies.deny`` on purpose.
DEFAULT_DENIED_POLICIES = (
    "arn:aws:iam::aws:policy/AdministratorAccess",
    "arn:aws:iam::aws:policy/IAMFullAccess",
)


@frozen
class AttributeMapping:
    """Where one account attribute is stored (an IAM user tag) and when it is written."""

    tag: str
    on_create: bool = True
    on_modify: bool = True


@frozen
class AssumeRole:
    """Assume a role in the target account (the recommended deployment): the connector's own
    credentials only need sts:AssumeRole, and the external id guards against the confused
    deputy. Credentials are refreshed automatically before they expire."""

    role_arn: str
    external_id: str | None = None
    session_name: str = "idhub-aws-iam"
    duration_seconds: int = 3600


@frozen
class Organization:
    """Reach every account of an AWS organization (the ``[aws-iam.organization]`` table): the
    accounts come from Organizations ListAccounts with the base credentials, each member is
    reached through a role of one name assumed in it, and the management account through the
    base credentials themselves."""

    #: The role assumed in each member account, optionally under a path (``idhub/Connector``):
    #: what Organizations' CreateAccount makes by default.
    role_name: str = "OrganizationAccountAccessRole"
    #: Sent with every AssumeRole when the members' roles require it (never shown, not even
    #: in the settings' repr).
    external_id: str | None = field(default=None, repr=False)
    #: The accounts in scope (12-digit ids); None: every ACTIVE account of the organization.
    accounts: tuple[str, ...] | None = None
    #: Accounts never read nor changed, whatever ``accounts`` says.
    exclude: tuple[str, ...] = ()
    #: Whether the management account is in scope (its IAM, with the base credentials).
    include_management_account: bool = True
    session_name: str = "idhub-aws-iam"
    duration_seconds: int = 3600
    #: How many accounts one fetch reads at a time.
    max_concurrency: int = 16


@frozen
class Protection:
    """Accounts the connector refuses to modify, delete, grant to or revoke from: break-glass
    and service accounts that must never be touched by automation."""

    #: User names (compared case-insensitively, as IAM does).
    users: tuple[str, ...] = ()
    #: IAM path prefixes, e.g. ``/admins/``.
    paths: tuple[str, ...] = ()
    #: A user carrying this tag key (any value) is protected; empty disables the check.
    tag: str = "idhub:protected"


@frozen
class GrantablePolicies:
    """Which managed policies may be granted, directly or through a group carrying them.

    ``allow`` and ``deny`` judge policies by ARN: patterns with ``*`` wildcards; ``deny`` wins
    over ``allow``; an empty ``allow`` allows every policy not denied. Whatever their names,
    policies are also judged by what they allow (see :mod:`idhub_aws_plugin.policy_effect`):
    one allowing every action, every IAM action, everything but a list or a known privilege
    escalation is refused unless ``admit`` names it.
    """

    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = DEFAULT_DENIED_POLICIES
    #: Exact ARNs (no wildcards, which would re-open the hole) admitted despite what they
    #: allow: a managed policy's ARN, or a group's ARN for the inline policies it carries (and
    #: what its policies allow together). ``deny`` and ``allow`` still apply to policies.
    admit: tuple[str, ...] = ()


@frozen
class Settings:
    """Every setting the AWS IAM connector reads. See the README's configuration reference."""

    #: Region for the STS endpoint and request signing; IAM itself is global.
    region: str | None = None
    #: A named profile of the shared AWS config; None uses the standard credential chain.
    profile: str | None = None
    #: Overrides the IAM/STS endpoint; None lets boto3 decide (it honours AWS_ENDPOINT_URL).
    endpoint_url: str | None = None
    #: How the IAM user name derives from the account: ``{email}``, ``{local_part}``,
    #: ``{domain}`` may appear, with fixed text around them (e.g. ``ext-{local_part}``).
    user_name: str = "{email}"
    #: IAM path for users the connector creates. Other than ``/``, it is also the connector's
    #: scope: users outside it are never modified, deleted, granted to or revoked from.
    user_path: str = "/"
    #: ARN of a managed policy set as permissions boundary on every user created.
    permissions_boundary: str | None = None
    #: Which customer-managed policies ``fetch policies`` lists.
    customer_managed_policies: PolicySelection = "all"
    #: Which AWS-managed policies ``fetch policies`` lists (there are over a thousand).
    aws_managed_policies: PolicySelection = "attached"
    #: An extra attribute with no mapping: stored in a tag of its own name, or refused.
    unmapped_attributes: Literal["tag", "reject"] = "tag"
    #: botocore's retry mode and total attempts (throttling and transient errors).
    retry_mode: Literal["standard", "adaptive", "legacy"] = "standard"
    max_attempts: int = 8
    attributes: dict[str, AttributeMapping] = field(factory=dict)
    #: Whether the connector may create and delete IAM groups (SCIM POST/DELETE /Groups); off
    #: by default, and the rendered IAM policy carries the group actions only when on.
    manage_groups: bool = False
    assume_role: AssumeRole | None = None
    #: Every account of an organization instead of the one the credentials reach.
    organization: Organization | None = None
    protected: Protection = field(factory=Protection)
    grantable_policies: GrantablePolicies = field(factory=GrantablePolicies)

    def mapping(self, attribute: str) -> AttributeMapping | None:
        return self.attributes.get(attribute)


def _merged_attributes(raw: Any) -> Any:
    """The default mapping with the configured tables laid over it, key by key, so that
    ``[aws-iam.attributes.first_name] on_modify = false`` keeps the default tag."""
    if not isinstance(raw, dict):
        return raw  # the converter reports the wrong type with its path
    merged: dict[str, Any] = {name: {"tag": tag} for name, tag in DEFAULT_TAGS.items()}
    for name, table in raw.items():
        if isinstance(table, dict) and name in merged:
            merged[name] = {**merged[name], **table}
        else:
            merged[name] = table
    return merged


def load_settings(raw: Mapping[str, Any]) -> Settings:
    """Validate the raw table into :class:`Settings`; raise ConfigurationError naming the key."""
    data = dict(raw)
    data["attributes"] = _merged_attributes(data.get("attributes", {}))
    settings = structure(data, Settings, error=ConfigurationError, what="aws-iam settings")
    _check(settings)
    return settings


def _check(settings: Settings) -> None:
    """Rules the types alone cannot express."""
    problems: list[str] = []
    problems += input_rules.user_name_template_problems(settings.user_name) or (
        template_problems(settings.user_name)
    )
    problems += input_rules.path_problems(settings.user_path, "user_path")
    problems += _range_problems(settings)
    problems += _assume_role_problems(settings.assume_role)
    problems += organization_problems(
        settings.organization, chained=settings.assume_role is not None
    )
    problems += _pattern_problems(settings)
    if settings.permissions_boundary is not None:
        problems += input_rules.policy_arn_problems(
            settings.permissions_boundary, "$.permissions_boundary"
        )
    seen: dict[str, str] = {}
    for name, mapping in settings.attributes.items():
        problems += input_rules.tag_key_problems(mapping.tag, f"$.attributes[{shown(name)}].tag")
        problems += input_rules.reserved_tag_problems(
            mapping.tag, settings.protected.tag, f"$.attributes[{shown(name)}].tag"
        )
        if mapping.tag.lower() in seen:
            problems.append(
                f"tag {shown(mapping.tag)} is mapped twice ({seen[mapping.tag.lower()]} and "
                f"{name}) @ $.attributes[{shown(name)}].tag"
            )
        seen[mapping.tag.lower()] = name
    if problems:
        raise ConfigurationError("invalid aws-iam settings: " + "; ".join(problems))


def shown(value: str) -> str:
    """``value`` quoted for an error message, cut to its first :data:`SHOWN_CHARS` characters."""
    if len(value) <= SHOWN_CHARS:
        return repr(value)
    return f"{value[:SHOWN_CHARS]!r}…"


def template_problems(template: str) -> list[str]:
    """The ``user_name`` template may only name its fields plainly, ``{email}``: a conversion
    (``!r``) or a format spec (``:.3``, ``:>999999999``) would silently change the name (the
    first three letters of every email become one user) or cost minutes and gigabytes, and a
    positional ``{}`` has nothing to fill it. Its fixed text must leave room for the email in
    IAM's 64 characters. Unknown names and attribute or index access are refused by
    :func:`input_rules.user_name_template_problems`, called first."""
    problems = []
    fixed = 0
    for text, name, spec, conversion in string.Formatter().parse(template):
        fixed += len(text)
        if name is None:
            continue
        if name not in TEMPLATE_FIELDS:
            problems.append(
                f"user_name: {{{name}}} names no field; use {{email}}, {{local_part}} or "
                "{domain} @ $.user_name"
            )
        elif conversion or spec:
            problems.append(
                f"user_name: {shown(template)} may only use {{{name}}} plainly, without a "
                "conversion (!r) or a format spec (:...) @ $.user_name"
            )
    if fixed >= input_rules.USER_NAME_MAX:
        problems.append(
            f"user_name: its fixed text has {fixed} characters, leaving no room for the email "
            f"in IAM's {input_rules.USER_NAME_MAX} @ $.user_name"
        )
    return problems


def _range_problems(settings: Settings) -> list[str]:
    values = {"$.max_attempts": settings.max_attempts}
    if settings.assume_role is not None:
        values["$.assume_role.duration_seconds"] = settings.assume_role.duration_seconds
    if settings.organization is not None:
        values["$.organization.duration_seconds"] = settings.organization.duration_seconds
        values["$.organization.max_concurrency"] = settings.organization.max_concurrency
    problems = []
    for where, value in values.items():
        low, high = NUMBER_RANGES[where]
        if value < low:
            problems.append(f"must be at least {low} @ {where}")
        elif value > high:
            problems.append(f"must be at most {high} @ {where}")
    return problems


ROLE_ARN = re.compile(
    r"^arn:aws(?:-cn|-us-gov)?:iam::\d{12}:role/(?:[\x21-\x7e]+/)?[\w+=,.@-]{1,64}$"
)
#: A role name, optionally after a path (``idhub/Connector``): what follows ``:role/`` in an ARN.
ROLE_NAME = re.compile(r"^(?:[\x21-\x7e]{1,510}/)?[\w+=,.@-]{1,64}$", re.ASCII)
ACCOUNT_ID = re.compile(r"^\d{12}$", re.ASCII)
SESSION_NAME = re.compile(r"^[\w+=,.@-]{2,64}$", re.ASCII)
EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$", re.ASCII)


def _assume_role_problems(role: AssumeRole | None) -> list[str]:
    if role is None:
        return []
    problems = []
    if not ROLE_ARN.match(role.role_arn):
        problems.append(f"{shown(role.role_arn)} is not an IAM role ARN @ $.assume_role.role_arn")
    if not SESSION_NAME.match(role.session_name):
        problems.append(
            "must be 2-64 characters of letters, digits and _+=,.@- @ $.assume_role.session_name"
        )
    if role.external_id is not None and not EXTERNAL_ID.match(role.external_id):
        # the value itself is not echoed: operators treat it as a shared secret
        problems.append(
            "must be 2-1224 characters of letters, digits and _+=,.@:/- @ $.assume_role.external_id"
        )
    return problems


def organization_problems(organization: Organization | None, *, chained: bool) -> list[str]:
    """The ``[organization]`` table's rules; ``chained``: the base credentials are themselves
    assumed (``assume_role``), so each account's role is assumed by role chaining."""
    if organization is None:
        return []
    problems = []
    if organization.role_name.startswith("/") or not ROLE_NAME.match(organization.role_name):
        problems.append(
            f"{shown(organization.role_name)} is not an IAM role name (NAME or PATH/NAME, "
            "the part of the role ARN after role/) @ $.organization.role_name"
        )
    if not SESSION_NAME.match(organization.session_name):
        problems.append(
            "must be 2-64 characters of letters, digits and _+=,.@- @ $.organization.session_name"
        )
    if organization.external_id is not None and not EXTERNAL_ID.match(organization.external_id):
        # the value itself is not echoed: operators treat it as a shared secret
        problems.append(
            "must be 2-1224 characters of letters, digits and _+=,.@:/- "
            "@ $.organization.external_id"
        )
    problems += _account_id_problems(organization)
    if chained and organization.duration_seconds > ROLE_CHAINING_MAX_SECONDS:
        problems.append(
            f"must be at most {ROLE_CHAINING_MAX_SECONDS} when assume_role is set: the base "
            "credentials are assumed, and role chaining caps sessions at one hour "
            "@ $.organization.duration_seconds"
        )
    return problems


def _account_id_problems(organization: Organization) -> list[str]:
    problems = []
    lists = {"accounts": organization.accounts or (), "exclude": organization.exclude}
    for name, ids in lists.items():
        for index, account in enumerate(ids):
            if not ACCOUNT_ID.match(account):
                problems.append(
                    f"{shown(account)} is not an AWS account id (12 digits) "
                    f"@ $.organization.{name}[{index}]"
                )
    if organization.accounts == ():
        problems.append(
            "is empty, so no account is in scope; leave it out for every ACTIVE account of "
            "the organization @ $.organization.accounts"
        )
    for account in sorted(set(organization.accounts or ()) & set(organization.exclude)):
        problems.append(
            f"{account} is both in accounts and in exclude; keep it in one @ $.organization.exclude"
        )
    return problems


def _pattern_problems(settings: Settings) -> list[str]:
    problems = []
    for field_name, patterns in (
        ("allow", settings.grantable_policies.allow),
        ("deny", settings.grantable_policies.deny),
    ):
        for index, pattern in enumerate(patterns):
            if not pattern.startswith("arn:"):
                problems.append(
                    f"{shown(pattern)} is not a policy ARN pattern "
                    f"@ $.grantable_policies.{field_name}[{index}]"
                )
    problems += _admit_problems(settings.grantable_policies)
    for index, path in enumerate(settings.protected.paths):
        problems += input_rules.path_problems(path, f"$.protected.paths[{index}]")
    if settings.protected.tag:
        problems += input_rules.tag_key_problems(settings.protected.tag, "$.protected.tag")
    return problems


def _admit_problems(policies: GrantablePolicies) -> list[str]:
    """Exact policy or group ARNs; a policy admitted but refused by name is a contradiction the
    operator should resolve in the config, not find out at the first grant."""
    problems = []
    for index, arn in enumerate(policies.admit):
        where = f"$.grantable_policies.admit[{index}]"
        if "*" in arn or "?" in arn:
            problems.append(f"{shown(arn)} has a wildcard; admit takes exact ARNs only @ {where}")
        elif ":group/" in arn:
            if input_rules.group_arn_problems(arn, where):
                problems.append(
                    f"{shown(arn)} is not a group ARN "
                    f"(expected arn:aws:iam::ACCOUNT:group/[PATH/]NAME) @ {where}"
                )
        elif input_rules.policy_arn_problems(arn, where):
            problems.append(
                f"{shown(arn)} is neither a managed policy ARN nor a group ARN "
                f"(arn:aws:iam::ACCOUNT:group/[PATH/]NAME) @ {where}"
            )
        elif denied := next((p for p in policies.deny if fnmatchcase(arn, p)), None):
            problems.append(
                f"{shown(arn)} is admitted but matches grantable_policies.deny "
                f"{shown(denied)}; remove it from deny to grant it @ {where}"
            )
        elif policies.allow and not any(fnmatchcase(arn, p) for p in policies.allow):
            problems.append(
                f"{shown(arn)} is admitted but matches no grantable_policies.allow pattern "
                f"@ {where}"
            )
    return problems
