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
from botocore.parsers import ResponseParserError

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
    # the JSON-protocol services of IAM Identity Center (identitystore, sso-admin)
    "ResourceNotFoundException": NotFound,
    "ConflictException": Conflict,
    "ValidationException": InvalidInput,
    "ServiceQuotaExceededException": Conflict,
    "InternalServerException": Transient,
}


#: IAM's message for a user it cannot see (absent, or not yet visible after CreateUser).
_MISSING_USER = re.compile(r"The user with name (?P<name>\S+) cannot be found\.")


#: The statuses of a server error botocore retries (and so, once spent, a transient one).
SERVER_ERRORS = frozenset({500, 502, 503, 504})


def http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def retries(exc: BaseException) -> int:
    """How many times botocore retried the call that ended in ``exc`` (0: its first answer, or
    not an answer of AWS at all)."""
    if not isinstance(exc, ClientError):
        return 0
    return int(exc.response.get("ResponseMetadata", {}).get("RetryAttempts") or 0)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def translate(exc: Exception, service: str = "IAM") -> ConnectorError | None:
    """The contract error for an AWS failure, or None for anything that is not one.
    ``service`` names the target in the message (``Identity Center`` for its connector)."""
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "") or code
        operation = exc.operation_name
        if code not in _BY_CODE and http_status(exc) in SERVER_ERRORS:
            return Transient(
                f"{service} {operation} failed: HTTP {http_status(exc)} {message} (no AWS error "
                f"in the reply, as from a proxy; {retries(exc)} retries spent); safe to run again"
            )
        error = _BY_CODE.get(code, ConnectorError)
        return error(f"{service} {operation} refused: {code}: {message}")
    if isinstance(exc, ResponseParserError):
        # botocore's message carries the whole body; a proxy's page is no message for a user
        return ConnectorError(
            f"AWS's reply could not be read: it is not {service}'s XML or JSON (a proxy, or an "
            f"endpoint_url that is not {service}, in the way?)"
        )
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
def aws_errors(service: str = "IAM") -> Iterator[None]:
    """Translate AWS failures raised in the body (the edge of every public operation)."""
    try:
        yield
    except ConnectorError:
        raise
    except Exception as exc:
        error = translate(exc, service)
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
