"""The Identity Center connector's settings: the ``[aws-identity-center]`` table.

Structured by the host's strict converter, like ``[aws-iam]``: an unknown key or a value of the
wrong type is refused with its path. Credentials, endpoint, retries and assume-role mean what
they mean for ``aws-iam`` (one client module serves both).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from attrs import frozen

from hostsim.contract import ConfigurationError, structure
from idhub_aws_plugin.settings import AssumeRole, shown

#: The inclusive range of every numeric setting, by its path.
NUMBER_RANGES: dict[str, tuple[int, int]] = {
    "$.max_attempts": (1, 20),
    "$.assignment_timeout_seconds": (1, 3600),
    "$.assignment_poll_milliseconds": (10, 60000),
}
INSTANCE_ARN = re.compile(r"^arn:aws(?:-cn|-us-gov)?:sso:::instance/(?:sso)?ins-[a-zA-Z0-9-.]{16}$")
IDENTITY_STORE_ID = re.compile(r"^d-[0-9a-z]{10}$|^[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}$")


@frozen
class IdentityCenterSettings:
    """Every setting the Identity Center connector reads. See the README."""

    #: The region of the Identity Center instance (identitystore and sso-admin are regional).
    region: str | None = None
    profile: str | None = None
    #: Overrides the endpoint of every service; None lets boto3 decide (AWS_ENDPOINT_URL).
    endpoint_url: str | None = None
    #: The instance and its identity store; both discovered with ListInstances when absent
    #: (an account with more than one instance must name one).
    instance_arn: str | None = None
    identity_store_id: str | None = None
    retry_mode: Literal["standard", "adaptive", "legacy"] = "standard"
    max_attempts: int = 8
    assume_role: AssumeRole | None = None
    #: How long an account assignment's creation or deletion is awaited before the operation
    #: reports it still in progress (AWS goes on; a re-run finds it done), and how often its
    #: status is read meanwhile.
    assignment_timeout_seconds: int = 300
    assignment_poll_milliseconds: int = 2000


def load_settings(raw: Mapping[str, Any]) -> IdentityCenterSettings:
    """Validate the raw table; raise ConfigurationError naming the key."""
    settings = structure(
        dict(raw),
        IdentityCenterSettings,
        error=ConfigurationError,
        what="aws-identity-center settings",
    )
    problems = _range_problems(settings)
    if settings.instance_arn is not None and not INSTANCE_ARN.match(settings.instance_arn):
        problems.append(
            f"{shown(settings.instance_arn)} is not an Identity Center instance ARN "
            "(arn:aws:sso:::instance/ssoins-...) @ $.instance_arn"
        )
    store = settings.identity_store_id
    if store is not None and not IDENTITY_STORE_ID.match(store):
        problems.append(f"{shown(store)} is not an identity store id (d-...) @ $.identity_store_id")
    if problems:
        raise ConfigurationError("invalid aws-identity-center settings: " + "; ".join(problems))
    return settings


def _range_problems(settings: IdentityCenterSettings) -> list[str]:
    values = {
        "$.max_attempts": settings.max_attempts,
        "$.assignment_timeout_seconds": settings.assignment_timeout_seconds,
        "$.assignment_poll_milliseconds": settings.assignment_poll_milliseconds,
    }
    problems = []
    for where, value in values.items():
        low, high = NUMBER_RANGES[where]
        if not low <= value <= high:
            problems.append(f"must be from {low} to {high} @ {where}")
    return problems
