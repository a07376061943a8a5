"""SCIM error responses (RFC 7644 §3.12) from the host's errors and the library's.

Every failure of a request ends here: a SCIM exception from scim2-models keeps its own status and
``scimType``; a connector error is mapped from its class alone, as the contract intends; a
payload that does not validate is a 400 ``invalidValue`` (or ``invalidSyntax``).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from scim2_models import Error, SCIMException

from hostsim.contract import errors as host
from hostsim.contract.model import Step, StepStatus

#: The host's error classes, most specific first: (HTTP status, scimType or None).
_STATUS: tuple[tuple[type[host.ConnectorError], int, str | None], ...] = (
    (host.AlreadyExists, 409, "uniqueness"),
    (host.NotFound, 404, None),
    (host.ConfigurationError, 503, None),
    (host.InvalidInput, 400, "invalidValue"),
    (host.Refused, 403, None),
    (host.PermissionDenied, 403, None),
    (host.Conflict, 409, None),
    (host.Transient, 503, None),
)


def _steps_done(steps: tuple[Step, ...]) -> str:
    done = [f"{step.action} {step.target}" for step in steps if step.status is StepStatus.DONE]
    return f" (already done: {'; '.join(done)}; the same request finishes the job)" if done else ""


def from_connector(exc: host.ConnectorError, *, not_found: int = 404) -> Error:
    """A connector error as a SCIM error. ``not_found`` is 400 where the missing object is one
    the request refers to (a group or policy to grant), not the resource addressed."""
    detail = exc.message + _steps_done(exc.steps)
    if isinstance(exc, host.NotFound) and not_found != 404:
        return Error(status=not_found, scim_type="invalidValue", detail=detail)
    for kind, status, scim_type in _STATUS:
        if isinstance(exc, kind):
            return Error(status=status, scim_type=scim_type, detail=detail)
    return Error(status=500, detail=detail)


def from_scim(exc: SCIMException) -> Error:
    return exc.to_error()


def from_validation(exc: ValidationError) -> Error:
    found = Error.from_validation_errors(exc)
    error = found[0] if found else Error(status=400, scim_type="invalidValue")
    if error.status is None:
        error.status = 400
    if not error.detail:
        error.detail = str(exc.errors()[0].get("msg", "invalid payload"))
    return error


def error(status: int, detail: str, scim_type: str | None = None) -> Error:
    return Error(status=status, scim_type=scim_type, detail=detail)


def body(error: Error) -> dict[str, Any]:
    dumped: dict[str, Any] = error.model_dump()  # the status as a string, as §3.12 writes it
    return dumped
