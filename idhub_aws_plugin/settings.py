"""The connector's settings: the ``[aws-iam]`` table of the host's config file.

Structured by the host's strict converter, so an unknown or misspelled key, or a value of the
wrong type, is refused with its path (``@ $.attributes.first_name.tag``) instead of ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from attrs import field, frozen

from hostsim.converter import structure
from hostsim.errors import ConfigurationError
from idhub_aws_plugin import input_rules

#: The account attributes every connector knows by name; anything else is an extra attribute.
CORE_ATTRIBUTES = ("first_name", "last_name", "display_name", "email")

DEFAULT_TAGS = {
    "first_name": "FirstName",
    "last_name": "LastName",
    "display_name": "DisplayName",
    "email": "Email",
}

PolicySelection = Literal["all", "attached", "none"]


@frozen
class AttributeMapping:
    """Where one account attribute is stored (an IAM user tag) and when it is written."""

    tag: str
    on_create: bool = True
    on_modify: bool = True


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
    #: IAM path for users the connector creates.
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
    problems += input_rules.user_name_template_problems(settings.user_name)
    problems += input_rules.path_problems(settings.user_path, "user_path")
    if settings.max_attempts < 1:
        problems.append("must be at least 1 @ $.max_attempts")
    if settings.permissions_boundary is not None:
        problems += input_rules.policy_arn_problems(
            settings.permissions_boundary, "$.permissions_boundary"
        )
    seen: dict[str, str] = {}
    for name, mapping in settings.attributes.items():
        problems += input_rules.tag_key_problems(mapping.tag, f"$.attributes['{name}'].tag")
        if mapping.tag.lower() in seen:
            problems.append(
                f"tag {mapping.tag!r} is mapped twice ({seen[mapping.tag.lower()]} and {name}) "
                f"@ $.attributes['{name}'].tag"
            )
        seen[mapping.tag.lower()] = name
    if problems:
        raise ConfigurationError("invalid aws-iam settings: " + "; ".join(problems))
