"""Entitlements: the IAM groups and managed policies people request, granted and revoked.

An entitlement id is ``group:NAME`` or ``policy:ARN``. Before a grant, the group or policy must
exist and be grantable under the connector's settings (see :mod:`idhub_aws_plugin.scope`): by
ARN, and by what the documents it gives allow (a managed policy's default version; a group's
inline policies and the managed policies it carries), read here and judged by
:mod:`idhub_aws_plugin.policy_effect`.
Granting and revoking read first and write only when the state differs, so each says
``unchanged`` instead of sending a call that would change nothing, and a host that retries
never duplicates work. Group grants and direct
policy attachments are independent in IAM: revoking a group never detaches a policy that was
attached to the user directly, even when the group carries the same policy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Literal

from attrs import frozen

from hostsim.contract import NotFound, StepOutcome
from idhub_aws_plugin import input_rules, policy_effect
from idhub_aws_plugin.client import PAGE
from idhub_aws_plugin.errors import is_code
from idhub_aws_plugin.scope import Scope

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient


@frozen
class Entitlement:
    """A parsed entitlement id."""

    kind: Literal["group", "policy"]
    key: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.key}"


def entitlement_problems(text: str) -> list[str]:
    kind, sep, key = text.partition(":")
    if not sep or kind not in ("group", "policy"):
        return [f"entitlement {text!r}: expected group:NAME or policy:ARN"]
    if kind == "group":
        return input_rules.group_name_problems(key)
    return input_rules.policy_arn_problems(key, f"entitlement {text!r}")


def parse_entitlement(text: str) -> Entitlement:
    """Parse ``group:NAME`` / ``policy:ARN``; raise InvalidInput naming the rule broken."""
    input_rules.require(entitlement_problems(text))
    kind, _sep, key = text.partition(":")
    return Entitlement("group" if kind == "group" else "policy", key)


def attached_group_policies(iam: IAMClient, group: str) -> list[str]:
    """ARNs of the managed policies a group carries (all pages)."""
    pages = iam.get_paginator("list_attached_group_policies").paginate(
        GroupName=group, PaginationConfig=PAGE
    )
    return [policy["PolicyArn"] for page in pages for policy in page["AttachedPolicies"]]


class GrantableCache:
    """Entitlements found grantable lately, shared by the operations of one connector: a bulk
    import of N joiners into the same groups looks each group up once every ``ttl`` seconds,
    not N times. Only successes are kept. A group deleted meanwhile makes its grant fail
    (NotFound); a policy attached to a group meanwhile is noticed ``ttl`` seconds late at most,
    hence a short ``ttl``."""

    def __init__(self, ttl: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._until: dict[Entitlement, float] = {}

    def holds(self, entitlement: Entitlement) -> bool:
        with self._lock:
            return self._until.get(entitlement, 0.0) > self._clock()

    def add(self, entitlement: Entitlement) -> None:
        with self._lock:
            self._until[entitlement] = self._clock() + self._ttl


class Entitlements:
    """Grant, revoke and look up entitlements of IAM users."""

    def __init__(
        self, iam: IAMClient, scope: Scope, grantable: GrantableCache | None = None
    ) -> None:
        self._iam = iam
        self._scope = scope
        self._grantable = GrantableCache(ttl=0) if grantable is None else grantable

    def check_grantable(self, entitlement: Entitlement) -> None:
        """Reads only: NotFound for a group or policy that does not exist, Refused for a policy
        the settings do not allow or whose document allows too much, or a group carrying one.
        Every channel (grant, create with grants, bulk import's check, SCIM, IDHub's
        fulfilment) comes through here. Remembered for a while when the connector shares a
        :class:`GrantableCache`."""
        if self._grantable.holds(entitlement):
            return
        self._check_grantable(entitlement)
        self._grantable.add(entitlement)

    def _check_grantable(self, entitlement: Entitlement) -> None:
        try:
            if entitlement.kind == "group":
                self._check_group(entitlement)
            else:
                policy = self._iam.get_policy(PolicyArn=entitlement.key)["Policy"]
                self._scope.check_policy(entitlement.key)
                if not self._scope.admits(entitlement.key):
                    document = self._default_document(
                        entitlement.key, policy.get("DefaultVersionId")
                    )
                    self._scope.check_effect(
                        str(entitlement), f"policy {entitlement.key}", document, entitlement.key
                    )
        except Exception as exc:
            if is_code(exc, "NoSuchEntity"):
                raise NotFound(f"{entitlement.kind} {entitlement.key!r} does not exist") from exc
            raise

    def _check_group(self, entitlement: Entitlement) -> None:
        """Every policy a group carries, managed or inline, is judged by ARN and by what it
        allows; then all of them together, for escalations that need actions from several."""
        name = entitlement.key
        # listing a missing group's policies is NoSuchEntity (NotFound); the group's ARN, the
        # resource its inline policies are judged on, is read only when it has some
        policies = attached_group_policies(self._iam, name)
        self._scope.check_group(name, policies)
        judged = []
        for arn in policies:
            if self._scope.admits(arn):
                continue
            document = self._default_document(arn)
            self._scope.check_effect(
                str(entitlement), f"policy {arn} (carried by group {name})", document, arn
            )
            judged.append(document)
        inline = list(self._inline_group_policies(name))
        if not inline and len(judged) < 2:
            return
        group_arn = self._iam.get_group(GroupName=name, MaxItems=1)["Group"]["Arn"]
        for policy_name, document in inline:
            self._scope.check_effect(
                str(entitlement),
                f"inline policy {policy_name!r} of group {name}",
                document,
                group_arn,
            )
            judged.append(document)
        if len(judged) > 1:
            self._scope.check_effect(
                str(entitlement),
                f"group {name} (its policies together)",
                policy_effect.merged(judged),
                group_arn,
            )

    def _default_document(self, arn: str, version: str | None = None) -> dict[str, Any]:
        """The document of a managed policy's default version (what a holder gets)."""
        if version is None:
            version = self._iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        answer = self._iam.get_policy_version(PolicyArn=arn, VersionId=version)
        return policy_effect.document_of(answer["PolicyVersion"].get("Document"))

    def _inline_group_policies(self, group: str) -> Iterator[tuple[str, dict[str, Any]]]:
        pages = self._iam.get_paginator("list_group_policies").paginate(
            GroupName=group, PaginationConfig=PAGE
        )
        for page in pages:
            for policy_name in page["PolicyNames"]:
                answer = self._iam.get_group_policy(GroupName=group, PolicyName=policy_name)
                yield policy_name, policy_effect.document_of(answer["PolicyDocument"])

    def groups_of(self, user_name: str) -> set[str]:
        pages = self._iam.get_paginator("list_groups_for_user").paginate(
            UserName=user_name, PaginationConfig=PAGE
        )
        return {group["GroupName"] for page in pages for group in page["Groups"]}

    def direct_policies_of(self, user_name: str) -> set[str]:
        pages = self._iam.get_paginator("list_attached_user_policies").paginate(
            UserName=user_name, PaginationConfig=PAGE
        )
        return {policy["PolicyArn"] for page in pages for policy in page["AttachedPolicies"]}

    def holds(self, user_name: str, entitlement: Entitlement) -> bool:
        if entitlement.kind == "group":
            return entitlement.key in self.groups_of(user_name)
        return entitlement.key in self.direct_policies_of(user_name)

    def grant(
        self, user_name: str, entitlement: Entitlement, outcome: StepOutcome, fresh: bool = False
    ) -> None:
        """``fresh``: the user was created by this operation and holds nothing yet, so there is
        nothing to read first (both writes are idempotent in IAM anyway)."""
        if not fresh and self.holds(user_name, entitlement):
            outcome.unchanged("already held")
        elif entitlement.kind == "group":
            self._iam.add_user_to_group(GroupName=entitlement.key, UserName=user_name)
        else:
            self._iam.attach_user_policy(UserName=user_name, PolicyArn=entitlement.key)

    def revoke(self, user_name: str, entitlement: Entitlement, outcome: StepOutcome) -> None:
        if not self.holds(user_name, entitlement):
            outcome.unchanged(
                "not a member" if entitlement.kind == "group" else "not attached directly"
            )
            return
        try:
            if entitlement.kind == "group":
                self._iam.remove_user_from_group(GroupName=entitlement.key, UserName=user_name)
            else:
                self._iam.detach_user_policy(UserName=user_name, PolicyArn=entitlement.key)
        except Exception as exc:
            # A retry by botocore after IAM applied the first attempt (whose answer was lost)
            # meets NoSuchEntity: if the access is gone, the revoke is done.
            if not is_code(exc, "NoSuchEntity") or self.holds(user_name, entitlement):
                raise
