"""The IAM policy the connector needs, shipped as ``iam-policy.json``, and a check of it.

The document is the single statement of the connector's privileges: the README shows it,
``hostsim permissions`` prints it narrowed to the configured path (and role), the connection
check simulates it against the connector's own principal, and the test suite fails when the
connector sends an action the document does not allow. It never grants ``*`` or ``iam:*``.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from attrs import evolve, frozen

from idhub_aws_plugin.client import PAGE
from idhub_aws_plugin.errors import is_code
from idhub_aws_plugin.policy_file import PolicyFile, as_list
from idhub_aws_plugin.settings import AssumeRole, Settings

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

POLICY_FILE = "iam-policy.json"
SAMPLE_NAME = "idhub-permission-check"
#: Present in the rendered policy only when ``manage_groups`` is on.
GROUP_MANAGEMENT_STATEMENT = "ManageGroupsWhenEnabled"


SHIPPED = PolicyFile(POLICY_FILE)
#: What the base principal of an organization needs: read the organization, assume the role of
#: each account (whose own policy is iam-policy.json).
ORGANIZATION = PolicyFile("organization-policy.json")
#: The role name of the shipped organization policy, replaced by the configured one.
SHIPPED_ROLE_NAME = "OrganizationAccountAccessRole"


def shipped_policy() -> dict[str, Any]:
    """The document as shipped in the package (path ``/``, any account)."""
    return SHIPPED.document


def required_actions() -> frozenset[str]:
    """Every action the document allows, e.g. ``iam:CreateUser``."""
    return SHIPPED.actions


def allows(action: str) -> bool:
    """Whether the shipped document allows ``action`` (case-insensitive, as IAM compares)."""
    return SHIPPED.allows(action)


def render_policy(settings: Settings, account: str = "*") -> dict[str, Any]:
    """The document for these settings: users narrowed to ``user_path``, the account filled in
    when known, the permission self-check narrowed to the assumed role when there is one, and
    the group-management actions only when ``manage_groups`` is on."""
    policy = copy.deepcopy(shipped_policy())
    if not settings.manage_groups:
        policy["Statement"] = [
            s for s in policy["Statement"] if s["Sid"] != GROUP_MANAGEMENT_STATEMENT
        ]
    for statement in policy["Statement"]:
        resources_ = [
            resource.replace(":iam::*:", f":iam::{account}:").replace(
                ":user/*", f":user{settings.user_path}*"
            )
            for resource in as_list(statement["Resource"])
        ]
        if statement["Sid"] == "CheckTheConnectorsOwnPermissions" and settings.assume_role:
            resources_ = [settings.assume_role.role_arn]
        statement["Resource"] = resources_[0] if len(resources_) == 1 else resources_
    return policy


def render_organization_policies(settings: Settings) -> dict[str, dict[str, Any]]:
    """An organization's two documents: ``base_principal`` (the credentials the connector
    starts from: read the organization, assume the configured role in any account) and
    ``account_role`` (that role in each account: iam-policy.json, its self-check narrowed to
    the role). With ``include_management_account``, the base principal needs ``account_role``'s
    document in the management account as well (its IAM is read with the base credentials)."""
    assert settings.organization is not None
    role_name = settings.organization.role_name
    base = copy.deepcopy(ORGANIZATION.document)
    for statement in base["Statement"]:
        resources_ = [
            resource.replace(f":role/{SHIPPED_ROLE_NAME}", f":role/{role_name}")
            for resource in as_list(statement["Resource"])
        ]
        statement["Resource"] = resources_[0] if len(resources_) == 1 else resources_
    role = AssumeRole(role_arn=f"arn:aws:iam::*:role/{role_name}")
    return {
        "base_principal": base,
        "account_role": render_policy(evolve(settings, assume_role=role, organization=None)),
    }


@frozen
class PermissionReport:
    """The outcome of simulating the document against the connector's own principal."""

    checked: bool
    missing: tuple[str, ...] = ()
    note: str = ""


def _sample_resource(pattern: str) -> str:
    """A concrete ARN inside a resource pattern, so the simulation asks about a real case."""
    return pattern if pattern == "*" else pattern.replace("*", SAMPLE_NAME)


def check_permissions(iam: IAMClient, principal_arn: str, settings: Settings) -> PermissionReport:
    """Simulate every action of the document, each against a sample of its own resources, for
    the connector's principal. Reads only (iam:SimulatePrincipalPolicy)."""
    account = principal_arn.split(":")[4]
    missing: list[str] = []
    try:
        for statement in render_policy(settings, account)["Statement"]:
            resource = _sample_resource(as_list(statement["Resource"])[0])
            pages = iam.get_paginator("simulate_principal_policy").paginate(
                PolicySourceArn=principal_arn,
                ActionNames=as_list(statement["Action"]),
                ResourceArns=[resource],
                PaginationConfig=PAGE,
            )
            missing += [
                result["EvalActionName"]
                for page in pages
                for result in page["EvaluationResults"]
                if result["EvalDecision"] != "allowed"
            ]
    except Exception as exc:
        if is_code(exc, "AccessDenied", "NoSuchEntity", "NotImplemented", "InvalidInput"):
            return PermissionReport(checked=False, note=f"could not simulate permissions: {exc}")
        raise
    return PermissionReport(checked=True, missing=tuple(sorted(set(missing))))


def principal_arn(caller_arn: str, settings: Settings) -> str:
    """The IAM principal behind an STS caller ARN: the assumed role (from the settings, which
    know its path) or the user."""
    if ":assumed-role/" in caller_arn and settings.assume_role is not None:
        return settings.assume_role.role_arn
    if ":assumed-role/" in caller_arn:
        # the role's path is not in the STS ARN; a role under a path needs assume_role set
        role = caller_arn.rsplit(":assumed-role/", maxsplit=1)[-1].split("/", maxsplit=1)[0]
        account = caller_arn.split(":")[4]
        return f"arn:aws:iam::{account}:role/{role}"
    return caller_arn.replace(":sts::", ":iam::")
