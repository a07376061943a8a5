"""Translation of AWS failures into the host's error hierarchy, at the plugin's edge.

Nothing else in the plugin catches botocore exceptions for reporting; everything that leaves the
plugin is a :class:`hostsim.contract.ConnectorError`, raised ``from`` the original so ``--debug``
still shows the AWS detail. Messages carry IAM's error code and message, which name the entity
but never a credential.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)

from hostsim.contract import (
    AlreadyExists,
    ConfigurationError,
    Conflict,
    ConnectorError,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Transient,
)

_BY_CODE: dict[str, type[ConnectorError]] = {
    "NoSuchEntity": NotFound,
    "EntityAlreadyExists": AlreadyExists,
    "DeleteConflict": Conflict,
    "LimitExceeded": Conflict,
    "ConcurrentModification": Transient,
    "EntityTemporarilyUnmodifiable": Transient,
    "ValidationError": InvalidInput,
    "InvalidInput": InvalidInput,
    "MalformedPolicyDocument": InvalidInput,
    "AccessDenied": PermissionDenied,
    "AccessDeniedException": PermissionDenied,
    "InvalidClientTokenId": PermissionDenied,
    "SignatureDoesNotMatch": PermissionDenied,
    "ExpiredToken": PermissionDenied,
    "UnrecognizedClientException": PermissionDenied,
    "Throttling": Transient,
    "ThrottlingException": Transient,
    "RequestLimitExceeded": Transient,
    "ServiceFailure": Transient,
    "ServiceUnavailable": Transient,
    "InternalFailure": Transient,
    "RequestTimeout": Transient,
}


#: IAM's message for a user it cannot see (absent, or not yet visible after CreateUser).
_MISSING_USER = re.compile(r"The user with name (?P<name>\S+) cannot be found\.")


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def translate(exc: Exception) -> ConnectorError | None:
    """The contract error for an AWS failure, or None for anything that is not one."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "") or code
        operation = exc.operation_name
        return _BY_CODE.get(code, ConnectorError)(f"IAM {operation} refused: {code}: {message}")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return PermissionDenied(
            "no usable AWS credentials: set a profile, environment credentials or a role "
            "(the standard AWS credential chain)"
        )
    if isinstance(exc, ProfileNotFound | NoRegionError):
        return ConfigurationError(str(exc))
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError):
        return Transient(f"AWS endpoint unreachable: {exc}")
    if isinstance(exc, BotoCoreError):
        return ConnectorError(f"AWS client error: {exc}")
    return None


@contextmanager
def aws_errors() -> Iterator[None]:
    """Translate AWS failures raised in the body (the edge of every public operation)."""
    try:
        yield
    except ConnectorError:
        raise
    except Exception as exc:
        error = translate(exc)
        if error is None:
            raise
        raise error from exc


def is_code(exc: BaseException, *codes: str) -> bool:
    """Whether ``exc`` is an AWS ClientError with one of ``codes``."""
    return isinstance(exc, ClientError) and error_code(exc) in codes


def is_missing_user(exc: BaseException, user_name: str) -> bool:
    """Whether ``exc`` is IAM's NoSuchEntity about the user ``user_name`` itself (and not about
    a group, policy, key or membership named in the same call). IAM names are
    case-insensitive, so is the comparison."""
    if not (isinstance(exc, ClientError) and error_code(exc) == "NoSuchEntity"):
        return False
    found = _MISSING_USER.search(error_message(exc))
    return found is not None and found["name"].lower() == user_name.lower()
