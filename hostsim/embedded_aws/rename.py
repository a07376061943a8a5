"""Keep what belongs to a user attached to it across UpdateUser (new name or new path).

In IAM a user is one entity whatever its name. Moto keys some of its data by name or ARN and
so loses or corrupts it on rename: tags stay behind under the old ARN (and would reappear on
the next user created with the old name); access keys, SSH keys and signing certificates keep
the old user name, so ListAccessKeys shows the old name and DeleteAccessKey silently does
nothing. Groups, attached and inline policies, the login profile and MFA devices survive a
moto rename unharmed and need no help.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hostsim.embedded_aws import moto_state
from hostsim.embedded_aws.moto_state import IAMBackend
from hostsim.embedded_aws.service_credentials import ServiceCredentialStore


@dataclass(frozen=True)
class UserBeforeRename:
    """What identified the user before moto applied the UpdateUser."""

    name: str
    arn: str
    user_id: str


def capture(backend: IAMBackend, params: Mapping[str, str]) -> UserBeforeRename | None:
    """Remember the user's identity before moto renames it (None if there is no such user)."""
    user = moto_state.find_user(backend, params.get("UserName", ""))
    if user is None:
        return None
    return UserBeforeRename(name=user.name, arn=user.arn, user_id=user.id)


def repair(
    backend: IAMBackend,
    account_id: str,
    before: UserBeforeRename,
    store: ServiceCredentialStore,
) -> None:
    """After a successful UpdateUser, re-attach everything moto left under the old identity."""
    user = next((u for u in backend.users.values() if u.id == before.user_id), None)
    if user is None:
        return
    moto_state.move_tags(backend, before.arn, user.arn)
    if user.name == before.name:
        return
    for access_key in user.access_keys:
        access_key.user_name = user.name
    for ssh_key in user.ssh_public_keys:
        ssh_key.user_name = user.name
    for certificate in user.signing_certificates.values():
        certificate.user_name = user.name
    store.rename_user(account_id, before.name, user.name)
