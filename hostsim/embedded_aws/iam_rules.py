"""IAM's refusals that depend on state, which moto does not enforce.

Each check runs before moto sees the request and raises :class:`IAMError` when real IAM
would refuse it; when a check passes, moto performs the change. Without these, moto would
let a connector delete a user who still has access keys, create ``Alice`` next to ``alice``,
rename a user on top of another one (moto silently overwrites it) or delete a group that
still has members, and tests would pass against behaviour AWS never shows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hostsim.embedded_aws import moto_state, permissions_boundaries, validation
from hostsim.embedded_aws.iam_errors import (
    delete_conflict,
    entity_already_exists,
    group_not_found,
    limit_exceeded,
    no_such_entity,
    user_not_found,
)
from hostsim.embedded_aws.moto_state import IAMBackend, MotoUser
from hostsim.embedded_aws.user_tags import check_create_user_tags

#: IAM's default quotas (the managed-policy one can be raised to 20 on request).
GROUPS_PER_USER_MAX = 10
MANAGED_POLICIES_PER_ENTITY_MAX = 10

#: Does a user still hold service-specific credentials? (Those live outside moto.)
HasServiceCredentials = Callable[[str], bool]


@dataclass(frozen=True)
class _UserView:
    """Everything that can hold on to a user: moto's state and the credential store."""

    backend: IAMBackend
    user: MotoUser
    has_service_credentials: HasServiceCredentials


#: What blocks DeleteUser, in the order IAM checks and reports it (the DeleteUser docs list).
_USER_DEPENDENTS: tuple[tuple[str, Callable[[_UserView], bool]], ...] = (
    ("must delete login profile first", lambda v: bool(v.user.password)),
    ("must delete access keys first", lambda v: bool(v.user.access_keys)),
    ("must delete signing certificates first", lambda v: bool(v.user.signing_certificates)),
    ("must delete SSH public keys first", lambda v: bool(v.user.ssh_public_keys)),
    (
        "must delete service specific credentials first",
        lambda v: v.has_service_credentials(v.user.name),
    ),
    ("must delete MFA device first", lambda v: bool(v.user.mfa_devices)),
    ("must delete policies first", lambda v: bool(v.user.policies)),
    ("must detach all policies first", lambda v: bool(v.user.managed_policies)),
    (
        "must remove user from all groups first",
        lambda v: bool(moto_state.groups_of(v.backend, v.user)),
    ),
)


def canonical_names(backend: IAMBackend, action: str, params: dict[str, str]) -> dict[str, str]:
    """Spell ``UserName`` / ``GroupName`` the way the entity was created.

    IAM does not distinguish names by case, so ``GetUser(UserName="ALICE")`` finds ``alice``;
    moto looks names up exactly. Rewriting the request to the stored spelling gives moto's
    lookups IAM's behaviour (and moto's replies then show the stored spelling, as IAM's do).
    """
    rewritten = dict(params)
    if "UserName" in params and action != "CreateUser":
        user = moto_state.find_user(backend, params["UserName"])
        if user is not None:
            rewritten["UserName"] = user.name
    if "GroupName" in params and action != "CreateGroup":
        group = moto_state.find_group(backend, params["GroupName"])
        if group is not None:
            rewritten["GroupName"] = group.name
    return rewritten


def check_create_user(backend: IAMBackend, params: Mapping[str, str]) -> None:
    """A valid, case-insensitively unique name, valid tags and an existing boundary policy."""
    name = params.get("UserName", "")
    validation.check_name(name, "userName", validation.USER_NAME_MAX)
    check_create_user_tags(params)
    _check_user_name_free(backend, name)
    if "PermissionsBoundary" in params:
        permissions_boundaries.check_arn(backend, params["PermissionsBoundary"])


def check_update_user(backend: IAMBackend, params: Mapping[str, str]) -> None:
    """Renames need a valid new name that no user holds, in any case, the user itself included.

    IAM refuses ``alice`` -> ``ALICE`` with EntityAlreadyExists too; moto would even accept a
    rename onto another existing user and silently replace that user.
    """
    new_name = params.get("NewUserName")
    if new_name is not None:
        validation.check_name(new_name, "newUserName", validation.USER_NAME_MAX)
    _existing_user(backend, params.get("UserName", ""))
    if new_name is not None:
        _check_user_name_free(backend, new_name)


def check_delete_user(
    backend: IAMBackend, params: Mapping[str, str], has_service_credentials: HasServiceCredentials
) -> None:
    """IAM refuses to delete a user that still has anything attached, naming the first thing."""
    view = _UserView(
        backend, _existing_user(backend, params.get("UserName", "")), has_service_credentials
    )
    for message, holds in _USER_DEPENDENTS:
        if holds(view):
            raise delete_conflict(f"Cannot delete entity, {message}.")


def check_create_group(backend: IAMBackend, params: Mapping[str, str]) -> None:
    """A valid group name that no group holds in any letter case."""
    name = params.get("GroupName", "")
    validation.check_name(name, "groupName", validation.GROUP_NAME_MAX)
    _check_group_name_free(backend, name)


def check_update_group(backend: IAMBackend, params: Mapping[str, str]) -> None:
    """Group renames follow the same rules as user renames."""
    new_name = params.get("NewGroupName")
    if new_name is not None:
        validation.check_name(new_name, "newGroupName", validation.GROUP_NAME_MAX)
    if moto_state.find_group(backend, params.get("GroupName", "")) is None:
        raise group_not_found(params.get("GroupName", ""))
    if new_name is not None:
        _check_group_name_free(backend, new_name)


def check_delete_group(backend: IAMBackend, params: Mapping[str, str]) -> None:
    """A group must be empty and policy-free before IAM deletes it (moto deletes it anyway)."""
    name = params.get("GroupName", "")
    group = moto_state.find_group(backend, name)
    if group is None:
        raise group_not_found(name)
    if group.users:
        raise delete_conflict("Cannot delete entity, must remove users from group first.")
    if group.policies:
        raise delete_conflict("Cannot delete entity, must delete policies first.")
    if group.managed_policies:
        raise delete_conflict("Cannot delete entity, must detach all policies first.")


def check_create_policy(backend: IAMBackend, params: Mapping[str, str]) -> None:
    """Policy names are unique per account regardless of case (and of path)."""
    name = params.get("PolicyName", "")
    validation.check_name(name, "policyName", validation.POLICY_NAME_MAX)
    if name.lower() in moto_state.customer_policy_names(backend):
        raise entity_already_exists(
            f"A policy called {name} already exists. Duplicate names are not allowed."
        )


def check_delete_policy(backend: IAMBackend, params: Mapping[str, str]) -> None:
    """IAM keeps a policy that is attached anywhere or has non-default versions."""
    arn = params.get("PolicyArn", "")
    policy = backend.managed_policies.get(arn)
    if policy is None:
        raise no_such_entity(f"Policy {arn} was not found.")
    if moto_state.policy_attachments(backend, arn):
        raise delete_conflict("Cannot delete a policy attached to entities.")
    if len(policy.versions) > 1:
        raise delete_conflict(
            "This policy has more than one version. Before you delete a policy, you must "
            "delete the policy's versions. The default version is deleted with the policy."
        )


def check_add_user_to_group(backend: IAMBackend, params: Mapping[str, str]) -> None:
    """A user can be in at most 10 groups; moto has no limit."""
    user = moto_state.find_user(backend, params.get("UserName", ""))
    group = moto_state.find_group(backend, params.get("GroupName", ""))
    if user is None or group is None or user in group.users:
        return  # moto reports the missing entity; re-adding a member is a no-op
    if len(moto_state.groups_of(backend, user)) >= GROUPS_PER_USER_MAX:
        raise limit_exceeded(f"Cannot exceed quota for GroupsPerUser: {GROUPS_PER_USER_MAX}")


def check_attach_user_policy(backend: IAMBackend, params: Mapping[str, str]) -> None:
    """A user can have at most 10 managed policies attached (IAM's default quota)."""
    user = moto_state.find_user(backend, params.get("UserName", ""))
    _check_policy_quota(backend, user, params.get("PolicyArn", ""), "PoliciesPerUser")


def check_attach_group_policy(backend: IAMBackend, params: Mapping[str, str]) -> None:
    """A group can have at most 10 managed policies attached (IAM's default quota)."""
    group = moto_state.find_group(backend, params.get("GroupName", ""))
    _check_policy_quota(backend, group, params.get("PolicyArn", ""), "PoliciesPerGroup")


def already_attached_to_user(backend: IAMBackend, params: Mapping[str, str]) -> bool:
    """Whether AttachUserPolicy would be a no-op.

    IAM answers a repeated attach with success and changes nothing; moto re-attaches and
    counts the policy's AttachmentCount up again, so the repeat must not reach moto.
    """
    user = moto_state.find_user(backend, params.get("UserName", ""))
    return user is not None and params.get("PolicyArn", "") in user.managed_policies


def _check_policy_quota(backend: IAMBackend, holder: Any, policy_arn: str, quota: str) -> None:
    if holder is None or policy_arn not in backend.managed_policies:
        return  # moto reports the missing entity
    if policy_arn in holder.managed_policies:
        return  # attaching again changes nothing
    if len(holder.managed_policies) >= MANAGED_POLICIES_PER_ENTITY_MAX:
        raise limit_exceeded(f"Cannot exceed quota for {quota}: {MANAGED_POLICIES_PER_ENTITY_MAX}")


def _existing_user(backend: IAMBackend, name: str) -> MotoUser:
    user = moto_state.find_user(backend, name)
    if user is None:
        raise user_not_found(name)
    return user


def _check_user_name_free(backend: IAMBackend, name: str) -> None:
    if moto_state.find_user(backend, name) is not None:
        raise entity_already_exists(f"User with name {name} already exists.")


def _check_group_name_free(backend: IAMBackend, name: str) -> None:
    if moto_state.find_group(backend, name) is not None:
        raise entity_already_exists(f"Group with name {name} already exists.")
