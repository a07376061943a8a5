"""A permission document shipped in the package (``iam-policy.json``,
``identity-center-policy.json``): each connector type's single statement of the privileges it
needs, read once, and the question the test suite's action audit asks of it."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from functools import cached_property
from importlib import resources
from typing import Any


def as_list(value: str | list[str]) -> list[str]:
    """An ``Action`` or ``Resource``, which IAM allows as one string or a list."""
    return [value] if isinstance(value, str) else list(value)


class PolicyFile:
    """One shipped document, by its file name in the ``idhub_aws_plugin`` package."""

    def __init__(self, name: str) -> None:
        self.name = name

    @cached_property
    def document(self) -> dict[str, Any]:
        """The document as shipped; callers that change it copy it first."""
        text = resources.files("idhub_aws_plugin").joinpath(self.name).read_text()
        policy: dict[str, Any] = json.loads(text)
        return policy

    @cached_property
    def actions(self) -> frozenset[str]:
        """Every action the document allows, e.g. ``iam:CreateUser``."""
        return frozenset(
            action
            for statement in self.document["Statement"]
            for action in as_list(statement["Action"])
        )

    def allows(self, action: str) -> bool:
        """Whether the document allows ``action`` (case-insensitive, as IAM compares)."""
        return any(fnmatchcase(action.lower(), allowed.lower()) for allowed in self.actions)
