"""Service-specific credentials (CodeCommit Git passwords, Keyspaces passwords).

Moto does not implement them at all (it answers HTTP 500), yet they matter to a connector:
IAM refuses to delete a user who still has one. So the middleware serves the five operations
itself from this store, which also answers "does this user have any?" for the DeleteUser
rule, follows users through renames and is emptied by reset.
"""

from __future__ import annotations

import secrets
import string
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from hostsim.embedded_aws import moto_state
from hostsim.embedded_aws.iam_errors import (
    limit_exceeded,
    no_such_entity,
    not_supported_service,
    user_not_found,
    validation_error,
)
from hostsim.embedded_aws.moto_state import IAMBackend
from hostsim.embedded_aws.responses import Reply, XmlValue, iso_timestamp, result_reply

#: Services that issue service-specific credentials with a user name and password.
SUPPORTED_SERVICES = frozenset({"codecommit.amazonaws.com", "cassandra.amazonaws.com"})
#: IAM's quota: credentials per user per service.
PER_USER_PER_SERVICE_MAX = 2
_STATUSES = ("Active", "Inactive")
_ID_ALPHABET = string.ascii_uppercase + string.digits
_PASSWORD_ALPHABET = string.ascii_letters + string.digits + "+/="


@dataclass(frozen=True)
class ServiceCredential:
    """One credential; the password is only ever shown by Create and Reset, as in IAM."""

    credential_id: str
    account_id: str
    user_name: str
    service_name: str
    service_user_name: str
    password: str
    status: str
    created: datetime

    def metadata(self) -> dict[str, XmlValue]:
        """The ``ServiceSpecificCredentialMetadata`` shape (what List returns)."""
        return {
            "UserName": self.user_name,
            "Status": self.status,
            "ServiceUserName": self.service_user_name,
            "CreateDate": iso_timestamp(self.created),
            "ServiceSpecificCredentialId": self.credential_id,
            "ServiceName": self.service_name,
        }

    def with_secret(self) -> dict[str, XmlValue]:
        """The ``ServiceSpecificCredential`` shape (what Create and Reset return)."""
        return {**self.metadata(), "ServicePassword": self.password}


class ServiceCredentialStore:
    """All service-specific credentials of all accounts, safe to use from many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, ServiceCredential] = {}

    def add(self, account_id: str, user_name: str, service_name: str) -> ServiceCredential:
        """Issue a new credential, enforcing IAM's per-user-per-service quota."""
        with self._lock:
            same_service = [
                c for c in self._for_user(account_id, user_name) if c.service_name == service_name
            ]
            if len(same_service) >= PER_USER_PER_SERVICE_MAX:
                raise limit_exceeded(
                    "Cannot exceed quota for ServiceSpecificCredentialsPerUserPerService: "
                    f"{PER_USER_PER_SERVICE_MAX}"
                )
            credential = ServiceCredential(
                credential_id="ACCA" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(17)),
                account_id=account_id,
                user_name=user_name,
                service_name=service_name,
                service_user_name=f"{user_name}-at-{account_id}",
                password=_new_password(),
                status="Active",
                created=datetime.now(UTC),
            )
            self._by_id[credential.credential_id] = credential
            return credential

    def for_user(self, account_id: str, user_name: str) -> list[ServiceCredential]:
        """A user's credentials, oldest first."""
        with self._lock:
            return self._for_user(account_id, user_name)

    def for_account(self, account_id: str) -> list[ServiceCredential]:
        """Every credential in an account, oldest first."""
        with self._lock:
            return [c for c in self._by_id.values() if c.account_id == account_id]

    def update(
        self,
        account_id: str,
        user_name: str | None,
        credential_id: str,
        *,
        status: str | None = None,
        password: str | None = None,
    ) -> ServiceCredential:
        """Change the status or the password of one of the user's credentials."""
        with self._lock:
            credential = self._owned(account_id, user_name, credential_id)
            updated = replace(
                credential,
                status=status or credential.status,
                password=password or credential.password,
            )
            self._by_id[credential_id] = updated
            return updated

    def delete(self, account_id: str, user_name: str | None, credential_id: str) -> None:
        """Remove one of the user's credentials."""
        with self._lock:
            self._owned(account_id, user_name, credential_id)
            del self._by_id[credential_id]

    def rename_user(self, account_id: str, old_name: str, new_name: str) -> None:
        """Keep credentials with their user when the user is renamed (IAM does)."""
        with self._lock:
            for credential in self._for_user(account_id, old_name):
                self._by_id[credential.credential_id] = replace(credential, user_name=new_name)

    def clear(self) -> None:
        """Forget everything (part of the embedded AWS's reset)."""
        with self._lock:
            self._by_id.clear()

    def _for_user(self, account_id: str, user_name: str) -> list[ServiceCredential]:
        return [
            c
            for c in self._by_id.values()
            if c.account_id == account_id and c.user_name == user_name
        ]

    def _owned(
        self, account_id: str, user_name: str | None, credential_id: str
    ) -> ServiceCredential:
        """The credential, if it belongs to that user; ``None`` (the root identity) owns none."""
        credential = self._by_id.get(credential_id)
        if credential is None or (credential.account_id, credential.user_name) != (
            account_id,
            user_name,
        ):
            raise no_such_entity(f"No such credential {credential_id} exists.")
        return credential


class ServiceCredentialOperations:
    """The IAM operations on service-specific credentials, served from a store.

    ``caller`` is the IAM user whose access key signed the request, or None for the account's
    root identity; IAM uses it when a request omits ``UserName``.
    """

    ACTIONS = frozenset(
        {
            "CreateServiceSpecificCredential",
            "ListServiceSpecificCredentials",
            "DeleteServiceSpecificCredential",
            "UpdateServiceSpecificCredential",
            "ResetServiceSpecificCredential",
        }
    )

    def __init__(self, store: ServiceCredentialStore) -> None:
        self.store = store

    def serve(
        self,
        action: str,
        backend: IAMBackend,
        account_id: str,
        params: Mapping[str, str],
        caller: str | None,
    ) -> Reply:
        """Answer one of :attr:`ACTIONS`."""
        handler = {
            "CreateServiceSpecificCredential": self._create,
            "ListServiceSpecificCredentials": self._list,
            "DeleteServiceSpecificCredential": self._delete,
            "UpdateServiceSpecificCredential": self._update,
            "ResetServiceSpecificCredential": self._reset,
        }[action]
        return handler(backend, account_id, params, caller)

    def _create(
        self, backend: IAMBackend, account_id: str, params: Mapping[str, str], _: str | None
    ) -> Reply:
        user_name = _existing_user(backend, params["UserName"])
        service_name = params["ServiceName"]
        if service_name not in SUPPORTED_SERVICES:
            raise not_supported_service(service_name)
        credential = self.store.add(account_id, user_name, service_name)
        return result_reply(
            "CreateServiceSpecificCredential",
            {"ServiceSpecificCredential": credential.with_secret()},
        )

    def _list(
        self, backend: IAMBackend, account_id: str, params: Mapping[str, str], caller: str | None
    ) -> Reply:
        if params.get("AllUsers", "").lower() == "true":
            credentials = self.store.for_account(account_id)
        else:
            user_name = _target_user(backend, params, caller)
            credentials = self.store.for_user(account_id, user_name) if user_name else []
        service_name = params.get("ServiceName")
        if service_name:
            credentials = [c for c in credentials if c.service_name == service_name]
        return result_reply(
            "ListServiceSpecificCredentials",
            {
                "ServiceSpecificCredentials": [c.metadata() for c in credentials],
                "IsTruncated": "false",
            },
        )

    def _delete(
        self, backend: IAMBackend, account_id: str, params: Mapping[str, str], caller: str | None
    ) -> Reply:
        user_name = _target_user(backend, params, caller)
        self.store.delete(account_id, user_name, params["ServiceSpecificCredentialId"])
        return result_reply("DeleteServiceSpecificCredential")

    def _update(
        self, backend: IAMBackend, account_id: str, params: Mapping[str, str], caller: str | None
    ) -> Reply:
        status = params["Status"]
        if status not in _STATUSES:
            raise validation_error(
                f"Value '{status}' at 'status' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(_STATUSES)}]"
            )
        user_name = _target_user(backend, params, caller)
        self.store.update(
            account_id, user_name, params["ServiceSpecificCredentialId"], status=status
        )
        return result_reply("UpdateServiceSpecificCredential")

    def _reset(
        self, backend: IAMBackend, account_id: str, params: Mapping[str, str], caller: str | None
    ) -> Reply:
        user_name = _target_user(backend, params, caller)
        credential = self.store.update(
            account_id, user_name, params["ServiceSpecificCredentialId"], password=_new_password()
        )
        return result_reply(
            "ResetServiceSpecificCredential",
            {"ServiceSpecificCredential": credential.with_secret()},
        )


def _existing_user(backend: IAMBackend, name: str) -> str:
    user = moto_state.find_user(backend, name)
    if user is None:
        raise user_not_found(name)
    return str(user.name)


def _target_user(backend: IAMBackend, params: Mapping[str, str], caller: str | None) -> str | None:
    """The named user (who must exist), else the calling user, else None for root."""
    if "UserName" in params:
        return _existing_user(backend, params["UserName"])
    return caller


def _new_password() -> str:
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(44))
