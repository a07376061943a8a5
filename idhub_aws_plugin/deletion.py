"""Deleting an IAM user: first everything IAM requires gone, then the user.

IAM's DeleteUser fails with DeleteConflict while the user still has a console password, access
keys, signing certificates, SSH keys, service-specific credentials, MFA devices, inline policies,
attached policies or group memberships. Each kind is one step of the cascade, in that order, and
each step lists what is there before removing it, so a re-run after a failure finds less to do
and finishes. A DeleteConflict for anything the cascade did not know about surfaces as a
Conflict naming what IAM says is still attached.

Removing something that is already gone is not a failure: between the listing and the removal
another actor may have removed it, or botocore retried a removal whose first answer was lost
(IAM had done it) and got ``NoSuchEntity``. Either way the goal of the step holds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from hostsim.contract import Conflict, StepLog, StepOutcome
from idhub_aws_plugin.client import PAGE
from idhub_aws_plugin.errors import is_code, is_missing_user

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient


class UserDeletion:
    """The cascade for one user; every step is idempotent."""

    def __init__(self, iam: IAMClient, user_name: str) -> None:
        self._iam = iam
        self._user = user_name

    def steps(self) -> list[tuple[str, Callable[[StepOutcome], None]]]:
        """The cascade in IAM's order, ending with the user itself."""
        return [
            ("delete login profile", self.login_profile),
            ("delete access keys", self.access_keys),
            ("delete signing certificates", self.signing_certificates),
            ("delete SSH public keys", self.ssh_public_keys),
            ("delete service-specific credentials", self.service_credentials),
            ("remove MFA devices", self.mfa_devices),
            ("delete inline policies", self.inline_policies),
            ("detach managed policies", self.attached_policies),
            ("remove from groups", self.group_memberships),
            ("delete user", self.user),
        ]

    def run(self, log: StepLog) -> None:
        cascade = self.steps()
        for action, _run in cascade:
            log.plan(action, self._user)
        for action, run in cascade:
            with log.step(action, self._user) as outcome:
                run(outcome)

    def login_profile(self, outcome: StepOutcome) -> None:
        """Deleted without a read first (which would need one more IAM permission): when IAM
        says there is none, the step is ``unchanged``, also in the rare case that a retry of
        this very call met the removal its lost first attempt had made."""
        try:
            self._iam.delete_login_profile(UserName=self._user)
        except Exception as exc:
            if not is_code(exc, "NoSuchEntity"):
                raise
            outcome.unchanged("none")

    def _listed(self, operation: str, list_key: str, id_key: str | None) -> list[str]:
        """Every id a paginated ``List*`` call returns for the user (all pages)."""
        pages = self._iam.get_paginator(operation).paginate(  # type: ignore[call-overload]
            UserName=self._user, PaginationConfig=PAGE
        )
        items = [item for page in pages for item in page[list_key]]
        return [item if id_key is None else item[id_key] for item in items]

    def access_keys(self, outcome: StepOutcome) -> None:
        keys = self._listed("list_access_keys", "AccessKeyMetadata", "AccessKeyId")
        remove_each(
            outcome,
            keys,
            lambda key: self._iam.delete_access_key(UserName=self._user, AccessKeyId=key),
        )

    def signing_certificates(self, outcome: StepOutcome) -> None:
        certs = self._listed("list_signing_certificates", "Certificates", "CertificateId")
        remove_each(
            outcome,
            certs,
            lambda cert: self._iam.delete_signing_certificate(
                UserName=self._user, CertificateId=cert
            ),
        )

    def ssh_public_keys(self, outcome: StepOutcome) -> None:
        keys = self._listed("list_ssh_public_keys", "SSHPublicKeys", "SSHPublicKeyId")
        remove_each(
            outcome,
            keys,
            lambda key: self._iam.delete_ssh_public_key(UserName=self._user, SSHPublicKeyId=key),
        )

    def service_credentials(self, outcome: StepOutcome) -> None:
        # Not paginated in IAM: a user has at most two per service.
        listed = self._iam.list_service_specific_credentials(UserName=self._user)
        ids = [cred["ServiceSpecificCredentialId"] for cred in listed["ServiceSpecificCredentials"]]
        remove_each(
            outcome,
            ids,
            lambda cred: self._iam.delete_service_specific_credential(
                UserName=self._user, ServiceSpecificCredentialId=cred
            ),
        )

    def mfa_devices(self, outcome: StepOutcome) -> None:
        """Deactivate every MFA device; delete the virtual ones, which would otherwise linger
        unassigned in the account (hardware and U2F devices belong to the person)."""

        def deactivate(serial: str) -> None:
            self._iam.deactivate_mfa_device(UserName=self._user, SerialNumber=serial)

        def remove(serial: str) -> None:
            _removed(deactivate, serial)  # deactivated already: the virtual device may remain
            if ":mfa/" in serial:
                self._iam.delete_virtual_mfa_device(SerialNumber=serial)

        serials = self._listed("list_mfa_devices", "MFADevices", "SerialNumber")
        remove_each(outcome, serials, remove)

    def inline_policies(self, outcome: StepOutcome) -> None:
        names = self._listed("list_user_policies", "PolicyNames", None)
        remove_each(
            outcome,
            names,
            lambda name: self._iam.delete_user_policy(UserName=self._user, PolicyName=name),
        )

    def attached_policies(self, outcome: StepOutcome) -> None:
        arns = self._listed("list_attached_user_policies", "AttachedPolicies", "PolicyArn")
        remove_each(
            outcome,
            arns,
            lambda arn: self._iam.detach_user_policy(UserName=self._user, PolicyArn=arn),
        )

    def group_memberships(self, outcome: StepOutcome) -> None:
        groups = self._listed("list_groups_for_user", "Groups", "GroupName")
        remove_each(
            outcome,
            groups,
            lambda group: self._iam.remove_user_from_group(GroupName=group, UserName=self._user),
        )

    def user(self, outcome: StepOutcome) -> None:
        try:
            self._iam.delete_user(UserName=self._user)
        except Exception as exc:
            if is_missing_user(exc, self._user):
                outcome.done("a retry of DeleteUser found it deleted (the first answer was lost)")
                return
            if is_code(exc, "DeleteConflict"):
                raise Conflict(
                    f"IAM still refuses to delete {self._user!r} after the cascade: {exc}; "
                    "remove what it names and run delete again"
                ) from exc
            raise
        outcome.done()


def remove_each(outcome: StepOutcome, ids: list[str], remove: Callable[[str], object]) -> None:
    """Remove every listed item and say how many; an item IAM no longer has (a retry that met
    its own lost first attempt, or someone else's removal) counts as gone already."""
    removed = sum(1 for item in ids if _removed(remove, item))
    if ids:
        gone = f" ({len(ids) - removed} gone already)" if removed < len(ids) else ""
        outcome.done(f"{len(ids)} removed{gone}")
    else:
        outcome.unchanged("none")


def _removed(remove: Callable[[str], object], item: str) -> bool:
    """Remove one item; False when IAM says it is not there any more (gone already)."""
    try:
        remove(item)
    except Exception as exc:
        if is_code(exc, "NoSuchEntity"):
            return False
        raise
    return True
