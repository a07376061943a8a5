"""The policy the Identity Center connector needs, shipped as ``identity-center-policy.json``.

Exactly the identitystore and sso actions the connector sends (and sts:GetCallerIdentity for
its connection check); the test suite fails when it sends one the document lacks, as it does
for ``iam-policy.json``.
"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from functools import cache
from importlib import resources
from typing import Any

POLICY_FILE = "identity-center-policy.json"


@cache
def shipped_policy() -> dict[str, Any]:
    text = resources.files("idhub_aws_plugin").joinpath(POLICY_FILE).read_text()
    policy: dict[str, Any] = json.loads(text)
    return policy


def required_actions() -> frozenset[str]:
    """Every action the document allows, e.g. ``identitystore:CreateUser``."""
    found: set[str] = set()
    for statement in shipped_policy()["Statement"]:
        actions = statement["Action"]
        found.update([actions] if isinstance(actions, str) else actions)
    return frozenset(found)


def allows(action: str) -> bool:
    """Whether the shipped document allows ``action`` (case-insensitive, as IAM compares)."""
    return any(fnmatchcase(action.lower(), allowed.lower()) for allowed in required_actions())
