"""sts:AssumeRole as AWS decides it: the role must exist and its trust policy allow the caller.

Moto hands out credentials for any role ARN, whether the role exists or not and whoever asks.
An organization connector's most common failures in the field are exactly the cases moto lets
through: a member account whose role was deleted, a trust policy naming another account, an
external id the caller does not send. Each must fail (and fail only that account), so this
module refuses them before moto sees the request, with STS's own ``AccessDenied``.

It is a small evaluator of the trust document, not a policy engine:

* a statement applies when its ``Action`` matches ``sts:AssumeRole`` (wildcards allowed) and
  its ``Principal`` names the caller: ``"*"``, the caller's account (as an id or its
  ``:root`` ARN), the caller's ARN, or, for an assumed-role session, the role's ARN;
* ``Condition`` is understood only as ``StringEquals`` on ``sts:ExternalId``; an Allow with any
  other condition grants nothing and a Deny with one applies (when unsure, refuse);
* an explicit Deny beats an Allow; no applicable Allow is a refusal.

A statement without ``Principal`` is read as naming the role's own account. AWS refuses such a
trust policy at CreateRole; moto accepts it, and tests written before these rules rely on it.
Closed (suspended) member accounts are refused too: AWS lets nobody into them. And a session
may not outlast the role's MaxSessionDuration, nor an hour when one role assumes another (role
chaining); moto checks neither.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from hostsim.embedded_aws import moto_state, organization
from hostsim.embedded_aws.responses import Reply, error_reply

ACTION = "AssumeRole"
#: The longest session a role assumed with another role's credentials may last.
CHAINED_SESSION_SECONDS = 3600

_ROLE_ARN = re.compile(
    r"arn:aws[a-z-]*:iam::(?P<account>\d{12}):role(?P<path>/(?:[^/]+/)*)(?P<name>[^/]+)"
)


@dataclass(frozen=True)
class Caller:
    """Who asks to assume the role."""

    account_id: str
    arn: str
    #: For an assumed-role session, the role it acts as (trust policies name roles, not
    #: sessions); None for a user or the account itself.
    role_arn: str | None = None

    def identities(self) -> frozenset[str]:
        """Every principal value that names this caller."""
        names = {self.account_id, f"arn:aws:iam::{self.account_id}:root", self.arn}
        if self.role_arn is not None:
            names.add(self.role_arn)
        return frozenset(names)


def target_account(params: Mapping[str, str]) -> str:
    """The account whose role an AssumeRole names ("" for any other request)."""
    if params.get("Action") != ACTION:
        return ""
    match = _ROLE_ARN.fullmatch(params.get("RoleArn", ""))
    return "" if match is None else match["account"]


def refusal(caller_account: str, access_key: str | None, params: Mapping[str, str]) -> Reply | None:
    """STS's error for an AssumeRole that AWS would refuse, None to let moto serve it.

    Must be called with moto's state locked. An ARN that is not a role's is left to moto,
    which answers its own validation error.
    """
    role_arn = params.get("RoleArn", "")
    match = _ROLE_ARN.fullmatch(role_arn)
    if match is None:
        return None
    arn, session_role = moto_state.caller(caller_account, access_key)
    caller = Caller(caller_account, arn, session_role)
    role = _trusting_role(match, caller, params.get("ExternalId"))
    if role is None:
        message = (
            f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on resource: "
            f"{role_arn}"
        )
        return error_reply("AccessDenied", message, 403)
    return _duration_refusal(role, caller, params.get("DurationSeconds"))


def _trusting_role(match: re.Match[str], caller: Caller, external_id: str | None) -> Any | None:
    """The role the ARN names, if it exists and its trust admits the caller."""
    account = match["account"]
    if organization.account_state(account) in organization.CLOSED_STATES:
        return None
    role = moto_state.find_role(moto_state.iam_backend(account), match["name"])
    if role is None or role.path != match["path"]:
        return None
    document = organization.trust_document(role)
    return role if trusts(document, caller, external_id, role_account=account) else None


def _duration_refusal(role: Any, caller: Caller, requested: str | None) -> Reply | None:
    """AWS's limits on DurationSeconds, which moto does not check: never beyond the role's
    MaxSessionDuration, and never beyond an hour when the caller is itself an assumed role
    (role chaining)."""
    if requested is None or not requested.isdigit():
        return None
    seconds = int(requested)
    if caller.role_arn is not None and seconds > CHAINED_SESSION_SECONDS:
        message = (
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed "
            "by role chaining."
        )
        return error_reply("ValidationError", message, 400)
    limit = int(role.max_session_duration or CHAINED_SESSION_SECONDS)
    if seconds > limit:
        message = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
        return error_reply("ValidationError", message, 400)
    return None


def trusts(
    document: Mapping[str, Any], caller: Caller, external_id: str | None, *, role_account: str
) -> bool:
    """Whether the trust policy lets ``caller`` assume the role (see the module's rules)."""
    statements = document.get("Statement", [])
    if isinstance(statements, Mapping):
        statements = [statements]
    applicable = [
        s
        for s in statements
        if isinstance(s, Mapping) and _names_action(s) and _names_caller(s, caller, role_account)
    ]
    denied = any(
        s.get("Effect") == "Deny" and _condition(s, external_id) is not False for s in applicable
    )
    allowed = any(
        s.get("Effect") == "Allow" and _condition(s, external_id) is True for s in applicable
    )
    return allowed and not denied


def _names_action(statement: Mapping[str, Any]) -> bool:
    return any(fnmatchcase("sts:assumerole", a.lower()) for a in _as_list(statement.get("Action")))


def _names_caller(statement: Mapping[str, Any], caller: Caller, role_account: str) -> bool:
    if "Principal" not in statement:
        principals = [role_account] if "NotPrincipal" not in statement else []
    else:
        principal = statement["Principal"]
        if principal == "*":
            return True
        principals = _as_list(principal.get("AWS")) if isinstance(principal, Mapping) else []
    return "*" in principals or bool(caller.identities() & set(principals))


def _condition(statement: Mapping[str, Any], external_id: str | None) -> bool | None:
    """True if the statement's condition holds, False if it fails, None if it says something
    this evaluator does not understand."""
    outcomes: list[bool | None] = []
    condition = statement.get("Condition", {})
    for operator, tests in condition.items() if isinstance(condition, Mapping) else []:
        for key, values in tests.items() if isinstance(tests, Mapping) else []:
            if operator == "StringEquals" and key.lower() == "sts:externalid":
                outcomes.append(external_id in _as_list(values))
            else:
                outcomes.append(None)
    if False in outcomes:
        return False
    return None if None in outcomes else True


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]
