"""Finding, resetting and repairing moto's in-process backends.

The middleware's rules need to see what moto holds (a user's keys, a group's members) and a
few must repair it (tags lost on rename). Moto runs in this same process, so its backends are
plain Python objects. Where they live, how they are reset, how names are looked up and how
tags are stored is moto's internal business, so all of that goes through this module; the
rules only read the attributes of moto's model objects (``user.access_keys``, ``group.users``),
which ``tests/test_embedded_aws.py`` exercises one by one, so a moto upgrade that moves any
of it fails loudly there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.core.base_backend import BackendDict, BaseBackend, backend_lock
from moto.core.model_instances import reset_model_data
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.iam.models import get_account_id_from, iam_backends

MANAGED_POLICIES_ENV = "MOTO_IAM_LOAD_MANAGED_POLICIES"
ACCOUNT_ENV = "MOTO_ACCOUNT_ID"

#: Moto's IAM backend for one account. Typed loosely: moto ships no usable annotations for it.
IAMBackend = Any

#: Moto's User model (``backend.users[name]``).
MotoUser = Any


def default_account_id() -> str:
    """The account moto serves when the caller's key belongs to no known account."""
    return str(DEFAULT_ACCOUNT_ID)


def account_for(access_key: str | None, account_header: str | None) -> str:
    """Decide the account a request acts on, by the same precedence moto itself uses
    (``BaseResponse.get_current_account``): a pinned ``MOTO_ACCOUNT_ID``, then the
    ``x-moto-account-id`` header, then moto's own mapping of access keys to accounts (an
    assumed role's key belongs to the role's account, a user's key to the user's).

    Rules must inspect the backend moto is about to change; guessing a different account
    would check one account and let moto modify another. The middleware hands the answer to
    moto in the header, so moto cannot decide otherwise.
    """
    if ACCOUNT_ENV in os.environ:
        return os.environ[ACCOUNT_ENV]
    if account_header:
        return account_header
    if access_key:
        return str(get_account_id_from(access_key))
    return default_account_id()


def iam_backend(account_id: str) -> IAMBackend:
    """Moto's IAM state for one account (IAM is global: one backend per partition)."""
    return iam_backends[account_id]["global"]


def find_role(backend: IAMBackend, name: str) -> Any | None:
    """The role called ``name``, ignoring letter case (IAM role names are unique that way)."""
    folded = name.lower()
    return next((r for r in backend.roles.values() if r.name.lower() == folded), None)


def caller(account_id: str, access_key: str | None) -> tuple[str, str | None]:
    """Who signed a request, as moto's GetCallerIdentity would answer: the caller's ARN and,
    for an assumed-role session, the ARN of the role it assumed (None otherwise)."""
    from moto.sts.models import sts_backends

    backend = sts_backends[account_id]["aws"]
    session = backend.get_assumed_role_from_access_key(access_key) if access_key else None
    _, arn, _ = backend.get_caller_identity(access_key or "", "us-east-1")  # its partition
    return str(arn), None if session is None else str(session.role_arn)


def organizations_backend(account_id: str) -> Any:
    """Moto's Organizations state seen from one account (the organization lives in the
    management account's backend; a member's backend holds none)."""
    from moto.organizations.models import organizations_backends

    return organizations_backends[account_id]["aws"]


def management_account_of(account_id: str) -> str | None:
    """The management account of the organization ``account_id`` is a member of, if any."""
    from moto.organizations.models import organizations_backends

    owner = organizations_backends.master_accounts.get(account_id)
    return None if owner is None else str(owner[0])


def identitystore_backend(account_id: str, region: str) -> Any:
    """Moto's identitystore state for one account and region."""
    from moto.identitystore.models import identitystore_backends

    return identitystore_backends[account_id][region]


def identitystore_name() -> Any:
    """An empty identity-store ``Name`` (moto's NamedTuple), for a user created without one."""
    from moto.identitystore.models import Name

    return Name(None, None, None, None, None, None)


def ssoadmin_backend(account_id: str, region: str) -> Any:
    """Moto's sso-admin state for one account and region (moto makes one instance in it)."""
    from moto.ssoadmin.models import ssoadmin_backends

    return ssoadmin_backends[account_id][region]


def set_identity_center_instances(account_id: str, region: str, count: int) -> None:
    """Keep ``count`` Identity Center instances in the account: none (Identity Center not
    enabled), the one moto makes, or more (AWS allows one organization instance and any
    number of account instances)."""
    from moto.ssoadmin.models import Instance

    backend = ssoadmin_backend(account_id, region)
    del backend.instances[count:]
    while len(backend.instances) < count:
        backend.instances.append(Instance(account_id, region))


def find_user(backend: IAMBackend, name: str) -> MotoUser | None:
    """The user called ``name``, compared as IAM compares names: ignoring letter case."""
    exact = backend.users.get(name)
    if exact is not None:
        return exact
    folded = name.lower()
    return next((u for n, u in backend.users.items() if n.lower() == folded), None)


def find_group(backend: IAMBackend, name: str) -> Any | None:
    """The group called ``name``, ignoring letter case (as IAM does)."""
    exact = backend.groups.get(name)
    if exact is not None:
        return exact
    folded = name.lower()
    return next((g for n, g in backend.groups.items() if n.lower() == folded), None)


def groups_of(backend: IAMBackend, user: MotoUser) -> list[Any]:
    """Groups whose member list holds this user object."""
    return [group for group in backend.groups.values() if user in group.users]


def policy_attachments(backend: IAMBackend, policy_arn: str) -> int:
    """How many users, groups and roles really have the policy attached.

    Counted from the entities rather than moto's ``attachment_count``, which moto inflates
    when the same policy is attached to the same role twice.
    """
    holders = [*backend.users.values(), *backend.groups.values(), *backend.roles.values()]
    return sum(1 for holder in holders if policy_arn in holder.managed_policies)


def customer_policy_names(backend: IAMBackend) -> dict[str, str]:
    """Customer-managed policy names (lower-cased) mapped to their ARNs."""
    aws_managed = {p.arn for p in backend.aws_managed_policies}
    return {
        policy.name.lower(): arn
        for arn, policy in backend.managed_policies.items()
        if arn not in aws_managed
    }


def user_tags(backend: IAMBackend, user: MotoUser) -> dict[str, str]:
    """A user's tags as moto stores them (keyed by the user's current ARN)."""
    return dict(backend.tagger.get_tag_dict_for_resource(user.arn))


def replace_user_tags(backend: IAMBackend, user: MotoUser, tags: dict[str, str]) -> None:
    """Overwrite a user's whole tag set."""
    backend.tagger.delete_all_tags_for_resource(user.arn)
    backend.tagger.tag_resource(user.arn, [{"Key": k, "Value": v} for k, v in tags.items()])


def move_tags(backend: IAMBackend, old_arn: str, new_arn: str) -> None:
    """Re-key stored tags from one ARN to another (moto keys tags by ARN, IAM by user)."""
    if old_arn == new_arn:
        return
    tags = backend.tagger.get_tag_dict_for_resource(old_arn)
    backend.tagger.delete_all_tags_for_resource(old_arn)
    backend.tagger.delete_all_tags_for_resource(new_arn)
    backend.tagger.tag_resource(new_arn, [{"Key": k, "Value": v} for k, v in tags.items()])


def reset_all() -> None:
    """Drop every moto backend in the process, so the next request starts from empty.

    Moto's own reset (``POST /moto-api/reset``) first re-initialises every backend and then
    throws it away; with AWS-managed policies on, that re-initialisation parses ~1,500 policies
    for nothing (about 50 ms). Here backends are simply dropped and rebuilt lazily on next use;
    only backends that define their own ``reset`` (S3, Batch: they hold files or threads) get it
    called. If moto's internals ever change shape, fall back to its public reset.
    """
    instances = getattr(BackendDict, "_instances", None)
    if not isinstance(instances, list):
        _public_reset()
        _forget_organization_members()
        return
    with backend_lock:
        for backend_dict in list(instances):
            _release_backends(backend_dict)
            backend_dict.clear()
        instances.clear()
    _forget_organization_members()
    reset_model_data()


def _forget_organization_members() -> None:
    """Forget which account belongs to which organization: moto keeps that map beside its
    backends and neither its reset nor dropping the backends empties it."""
    from moto.organizations.models import organizations_backends

    organizations_backends.master_accounts.clear()


def _release_backends(backend_dict: BackendDict[Any]) -> None:
    for account_backends in backend_dict.values():
        for region_backend in account_backends.values():
            if type(region_backend).reset is not BaseBackend.reset:
                region_backend.reset()


def _public_reset() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


@contextmanager
def server_settings(moto_loads_managed_policies: bool) -> Iterator[None]:
    """Set moto's process-wide switch for as long as the embedded server runs.

    ``MOTO_IAM_LOAD_MANAGED_POLICIES`` is read lazily (whenever moto creates an IAM backend,
    after a reset or for a new account), so it must stay set for the server's whole life:
    whether moto builds the ~1,500 AWS-managed policies (``arn:aws:iam::aws:policy/...``) into
    every IAM backend it creates. Normally off: ``aws_policies`` adds them on demand, which is
    much cheaper per reset and per account.

    ``MOTO_ACCOUNT_ID`` is deliberately *not* pinned: an organization needs moto to tell
    accounts apart by access key (an assumed role's key acts in the role's account). Finding
    the account costs moto one look-up per known account and partition (tens of microseconds
    for fifty accounts with the policies on demand; the fallback that loads them eagerly pays
    for building them in every partition of every account once). A value the user set is
    still obeyed, by moto and by :func:`account_for` alike, and pins every request.
    """
    previous = os.environ.get(MANAGED_POLICIES_ENV)
    os.environ[MANAGED_POLICIES_ENV] = "true" if moto_loads_managed_policies else "false"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(MANAGED_POLICIES_ENV, None)
        else:
            os.environ[MANAGED_POLICIES_ENV] = previous
