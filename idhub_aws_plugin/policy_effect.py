"""What a policy document allows, judged before the connector hands it out.

A guard rail that judges policies by name lets through a customer policy *named* anything
and a group carrying an inline ``Allow * on *``. So the connector reads the documents an
entitlement would give (a managed policy's default version, a group's inline policies and the
managed policies it carries) and refuses, unless the operator admitted it by ARN, a document
that allows:

- every action (``*``, ``*:*``);
- every IAM action (``iam:*`` and its equivalents);
- everything but a list (``Allow`` with ``NotAction``);
- a known privilege escalation through IAM, on any resource: writing inline policies
  (``Put{User,Group,Role}Policy``), attaching managed policies (``Attach{User,Group,Role}Policy``),
  new or switched policy versions (``CreatePolicyVersion``, ``SetDefaultPolicyVersion``),
  rewriting a role's trust policy (``UpdateAssumeRolePolicy``), adding users to groups
  (``AddUserToGroup``), changing permissions boundaries
  (``{Put,Delete}{User,Role}PermissionsBoundary``), passing roles (``PassRole``), and creating
  access keys or console passwords (``CreateAccessKey``, ``CreateLoginProfile``,
  ``UpdateLoginProfile``), reactivating their keys (``UpdateAccessKey``), adding service
  credentials, SSH keys or signing certificates, taking over their MFA, removing their inline
  or managed policies (the deny that keeps a disabled user out) and changing their tags (the
  connector's own records, tag-based access), for users other than the caller (a resource of
  ``user/${aws:username}`` only is the caller itself);
- assuming roles on a wildcard resource (``sts:AssumeRole`` on ``*``): every role whose trust
  policy trusts the account;
- any other privilege-escalation path cloudsplaining knows (its methods from Rhino Security Labs
  and pathfinding.cloud, e.g. ``lambda:UpdateFunctionCode``, CloudFormation change sets), for
  statements on every resource (``Resource: "*"``).

Action names and service prefixes are matched without regard to case, with IAM's wildcards
``*`` and ``?``, as IAM matches them. The judgement is conservative: a ``Deny`` never excuses an
``Allow`` (a deny can be scoped away by a condition, another policy or a later edit), and a
condition never makes an allow safe enough to hand out by default (``aws:MultiFactorAuthPresent``
is met by anyone who has MFA). The rule judges each entitlement on its own; what a person
already holds is not combined with it.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

#: An action no real policy names, matched only by a pattern that is all wildcards.
_ANY_ACTION = "\x00any-service\x00:\x00any-action\x00"
#: An IAM action no real policy names, matched only by a pattern covering every IAM action.
_ANY_IAM_ACTION = "iam:\x00any-action\x00"

#: The IAM actions that escalate whatever resource they name, and what they amount to.
ESCALATIONS: dict[str, str] = {
    "iam:PutUserPolicy": "writing inline policies",
    "iam:PutGroupPolicy": "writing inline policies",
    "iam:PutRolePolicy": "writing inline policies",
    "iam:AttachUserPolicy": "attaching managed policies",
    "iam:AttachGroupPolicy": "attaching managed policies",
    "iam:AttachRolePolicy": "attaching managed policies",
    "iam:CreatePolicyVersion": "writing new policy versions",
    "iam:SetDefaultPolicyVersion": "switching policy versions",
    "iam:UpdateAssumeRolePolicy": "rewriting who may assume a role",
    "iam:AddUserToGroup": "adding users to groups",
    "iam:PutUserPermissionsBoundary": "changing permissions boundaries",
    "iam:DeleteUserPermissionsBoundary": "changing permissions boundaries",
    "iam:PutRolePermissionsBoundary": "changing permissions boundaries",
    "iam:DeleteRolePermissionsBoundary": "changing permissions boundaries",
    "iam:PassRole": "passing roles to services",
}
#: The IAM actions that escalate unless they name only the caller's own user.
ESCALATIONS_ON_OTHERS: dict[str, str] = {
    "iam:CreateAccessKey": "creating access keys for other users",
    "iam:UpdateAccessKey": "reactivating access keys of other users",
    "iam:CreateLoginProfile": "setting console passwords of other users",
    "iam:UpdateLoginProfile": "setting console passwords of other users",
    "iam:CreateServiceSpecificCredential": "creating service credentials for other users",
    "iam:ResetServiceSpecificCredential": "creating service credentials for other users",
    "iam:UploadSSHPublicKey": "adding SSH keys to other users",
    "iam:UploadSigningCertificate": "adding signing certificates to other users",
    "iam:CreateVirtualMFADevice": "taking over other users' MFA",
    "iam:EnableMFADevice": "taking over other users' MFA",
    "iam:DeactivateMFADevice": "taking over other users' MFA",
    "iam:ResyncMFADevice": "taking over other users' MFA",
    "iam:DeleteUserPolicy": "removing other users' inline policies (the deny of a disabled user)",
    "iam:DetachUserPolicy": "removing other users' managed policies (a deny among them)",
    "iam:TagUser": "changing other users' tags (the connector's records, tag-based access)",
    "iam:UntagUser": "changing other users' tags (the connector's records, tag-based access)",
}
#: Actions that escalate when they name any resource by a wildcard: assuming whichever role
#: trusts the account (a role trusting ``:root`` delegates the choice to IAM policies).
ESCALATIONS_ON_WILDCARDS: dict[str, str] = {
    "sts:AssumeRole": "assuming any role that trusts the account",
}
#: A user resource naming only the caller: ``arn:aws:iam::ACCOUNT:user/[PATH/]${aws:username}``.
_SELF_ONLY = re.compile(
    r"^arn:aws[\w-]*:iam::[^:]*:user/(?:.*/)?\$\{aws:username\}$", re.IGNORECASE
)


def document_of(value: object) -> dict[str, Any]:
    """A policy document as IAM returns it: botocore decodes it to a dict, the raw API gives
    URL-encoded JSON (and the type stubs say ``str``); both are accepted."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        text = urllib.parse.unquote(value) if value.lstrip().startswith("%") else value
        loaded = json.loads(text)
        if isinstance(loaded, dict):
            return loaded
    raise ValueError(f"not a policy document: {str(value)[:80]!r}")


def statements(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The statements of a document, which IAM allows as one object or a list."""
    raw = document.get("Statement", [])
    listed = raw if isinstance(raw, list) else [raw]
    return [dict(statement) for statement in listed if isinstance(statement, Mapping)]


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable):
        return [str(item) for item in value]
    return [str(value)]


def _allows(statement: Mapping[str, Any]) -> bool:
    """Every statement not a ``Deny`` counts as an allow (IAM accepts only the two)."""
    return statement.get("Effect") != "Deny"


@cache
def _glob(pattern: str) -> re.Pattern[str]:
    """IAM's wildcards (``*`` any run, ``?`` one character), case-insensitive, nothing else
    special (``[`` is a literal in IAM, unlike in fnmatch)."""
    parts = (".*" if char == "*" else "." if char == "?" else re.escape(char) for char in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def matches(pattern: str, action: str) -> bool:
    return _glob(pattern).fullmatch(action) is not None


def _self_only(statement: Mapping[str, Any]) -> bool:
    resources = _as_list(statement.get("Resource"))
    return (
        "NotResource" not in statement
        and bool(resources)
        and all(_SELF_ONLY.match(resource) for resource in resources)
    )


def _names_a_wildcard(statement: Mapping[str, Any]) -> bool:
    """Whether a statement reaches resources it does not name one by one."""
    resources = _as_list(statement.get("Resource"))
    return "NotResource" in statement or any("*" in r or "?" in r for r in resources)


def _statement_findings(statement: Mapping[str, Any]) -> list[str]:
    if "NotAction" in statement:
        excluded = _as_list(statement["NotAction"])
        if any(matches(pattern, _ANY_ACTION) for pattern in excluded):
            return []  # NotAction "*": allows nothing
        return ["allows every action but those listed (NotAction)"]
    actions = _as_list(statement.get("Action"))
    if any(matches(pattern, _ANY_ACTION) for pattern in actions):
        return ["allows every action"]
    if any(matches(pattern, _ANY_IAM_ACTION) for pattern in actions):
        return ["allows every IAM action"]
    escalating = dict(ESCALATIONS)
    if not _self_only(statement):
        escalating.update(ESCALATIONS_ON_OTHERS)
    if _names_a_wildcard(statement):
        escalating.update(ESCALATIONS_ON_WILDCARDS)
    found = [
        action for action in escalating if any(matches(pattern, action) for pattern in actions)
    ]
    by_meaning: dict[str, list[str]] = {}
    for action in found:
        by_meaning.setdefault(escalating[action], []).append(action)
    return [f"allows {', '.join(names)} ({meaning})" for meaning, names in by_meaning.items()]


def _lower_service(action: str) -> str:
    """``IAM:PutUserPolicy`` -> ``iam:PutUserPolicy``: cloudsplaining knows services only by
    their lower-case prefix, and IAM ignores the case of both parts."""
    service, sep, name = action.partition(":")
    return f"{service.lower()}{sep}{name}"


def _for_cloudsplaining(document: Mapping[str, Any]) -> dict[str, Any]:
    """The allows only (a deny never excuses), service prefixes in lower case."""
    kept = []
    for statement in statements(document):
        if not _allows(statement) or not ("Action" in statement or "NotAction" in statement):
            continue
        copy = {**statement, "Effect": "Allow"}
        for key in ("Action", "NotAction"):
            if key in copy:
                copy[key] = [_lower_service(action) for action in _as_list(copy[key])]
        kept.append(copy)
    return {"Version": "2012-10-17", "Statement": kept}


def _cloudsplaining_findings(document: Mapping[str, Any], explained: set[str]) -> list[str]:
    from cloudsplaining.scan.policy_document import PolicyDocument

    judged = PolicyDocument(_for_cloudsplaining(document), flag_conditional_statements=True)
    findings = []
    for escalation in judged.allows_privilege_escalation:
        actions = [str(action) for action in escalation.get("actions", [])]
        if any(action.lower() in explained for action in actions):
            continue  # already named by one of our own findings
        findings.append(f"allows privilege escalation {escalation['type']} ({' + '.join(actions)})")
    return findings


def judge(document: Mapping[str, Any]) -> list[str]:
    """What ``document`` allows that the connector does not hand out by default, one phrase
    each (``allows every action``, ``allows iam:PassRole (passing roles to services)``);
    empty when there is nothing."""
    findings: list[str] = []
    for statement in statements(document):
        if _allows(statement):
            findings += [f for f in _statement_findings(statement) if f not in findings]
    if any(f.startswith(("allows every action", "allows every IAM")) for f in findings):
        return findings
    explained = {
        action.lower()
        for action in (*ESCALATIONS, *ESCALATIONS_ON_OTHERS, *ESCALATIONS_ON_WILDCARDS)
        if any(action in finding for finding in findings)
    }
    try:
        findings += _cloudsplaining_findings(document, explained)
    except Exception as exc:  # a document the judge cannot read is not handed out either
        findings.append(f"could not be judged ({type(exc).__name__}: {exc})")
    return findings


def merged(documents: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One document with every statement of ``documents``: what a group's members get from
    its policies together, for escalations that need actions from more than one of them."""
    return {
        "Version": "2012-10-17",
        "Statement": [statement for document in documents for statement in statements(document)],
    }
