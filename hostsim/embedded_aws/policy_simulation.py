"""SimulatePrincipalPolicy: IAM's policy simulator, reduced to identity policies.

Moto does not implement it, and the connector's connection check relies on it to tell an
operator which permissions of its shipped policy are missing without changing anything. This
evaluates what the simulator evaluates first: the principal's identity-based policies (inline and
managed, and for a user those of its groups), with an explicit Deny beating an Allow and no
statement meaning an implicit deny. Conditions, permissions boundaries, SCPs and resource
policies are not modelled; a statement with a Condition is treated as not applying.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import unquote

from hostsim.embedded_aws import moto_state
from hostsim.embedded_aws.iam_errors import IAMError, invalid_input, no_such_entity
from hostsim.embedded_aws.moto_state import IAMBackend
from hostsim.embedded_aws.query import member_list
from hostsim.embedded_aws.responses import Reply, XmlValue, result_reply

ACTION = "SimulatePrincipalPolicy"


def simulate_principal_policy(backend: IAMBackend, params: Mapping[str, str]) -> Reply:
    """Answer the whole simulation in one page (IsTruncated false)."""
    principal = params.get("PolicySourceArn", "")
    actions = member_list(params, "ActionNames")
    if not actions:
        raise invalid_input("ActionNames must name at least one action")
    resources = member_list(params, "ResourceArns") or ["*"]
    statements = list(_statements(backend, principal))
    results: list[Mapping[str, XmlValue]] = [
        {
            "EvalActionName": action,
            "EvalResourceName": resource,
            "EvalDecision": _decision(statements, action, resource),
        }
        for action in actions
        for resource in resources
    ]
    return result_reply(ACTION, {"EvaluationResults": results, "IsTruncated": "false"})


def _decision(statements: list[dict[str, Any]], action: str, resource: str) -> str:
    matching = [s for s in statements if _applies(s, action, resource)]
    if any(s.get("Effect") == "Deny" for s in matching):
        return "explicitDeny"
    if any(s.get("Effect") == "Allow" for s in matching):
        return "allowed"
    return "implicitDeny"


def _applies(statement: Mapping[str, Any], action: str, resource: str) -> bool:
    if "Condition" in statement:
        return False
    actions = _as_list(statement.get("Action", []))
    resources = _as_list(statement.get("Resource", []))
    return any(fnmatchcase(action.lower(), a.lower()) for a in actions) and any(
        r == "*" or fnmatchcase(resource, r) for r in resources
    )


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _statements(backend: IAMBackend, principal: str) -> Iterator[dict[str, Any]]:
    for document in _documents(backend, principal):
        parsed = json.loads(unquote(document)) if isinstance(document, str) else document
        statements = parsed.get("Statement", [])
        yield from [statements] if isinstance(statements, dict) else statements


def _documents(backend: IAMBackend, principal: str) -> Iterator[Any]:
    """Every identity policy document that applies to the principal."""
    resource = principal.split(":", 5)[-1]  # user/PATH/NAME or role/PATH/NAME
    kind, name = resource.split("/", 1)[0], resource.rsplit("/", 1)[-1]
    if kind == "user":
        user = moto_state.find_user(backend, name)
        if user is None:
            raise no_such_entity(f"The user with name {name} cannot be found.")
        holders = [user, *moto_state.groups_of(backend, user)]
    elif kind == "role":
        try:
            holders = [backend.get_role(name)]
        except Exception as exc:
            raise no_such_entity(f"The role with name {name} cannot be found.") from exc
    else:
        raise IAMError("InvalidInput", f"{principal} is not a user or role ARN", 400)
    for holder in holders:
        yield from holder.policies.values()
        yield from (_default_document(policy) for policy in holder.managed_policies.values())


def _default_document(policy: Any) -> Any:
    """A managed policy's document: that of its default version (moto keeps versions)."""
    return next(
        (version.document for version in policy.versions if version.is_default_version), "{}"
    )
