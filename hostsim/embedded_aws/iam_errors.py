"""The refusals the middleware can send, named after IAM's own error codes.

Rules raise :class:`IAMError`; the middleware turns it into an IAM ``ErrorResponse`` so the
client sees exactly what real IAM would have sent (code, HTTP status, sender fault). Status
codes follow botocore's IAM service model, because that is what clients key retries on.
"""

from __future__ import annotations

from hostsim.embedded_aws.responses import Reply, error_reply


class IAMError(Exception):
    """A request refused the way IAM refuses it."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def reply(self) -> Reply:
        """The ``ErrorResponse`` that carries this refusal to the client."""
        return error_reply(self.code, self.message, self.status)


def validation_error(message: str) -> IAMError:
    """A parameter breaks a constraint of the API model (length, pattern, list size).

    Real IAM reports these as ``ValidationError`` ("1 validation error detected: ...") before
    it looks at any state.
    """
    return IAMError("ValidationError", f"1 validation error detected: {message}", 400)


def invalid_input(message: str) -> IAMError:
    """A value is well-formed but IAM's business rules refuse it (reserved prefix, duplicates)."""
    return IAMError("InvalidInput", message, 400)


def no_such_entity(message: str) -> IAMError:
    """The named user, group, policy, credential or membership does not exist."""
    return IAMError("NoSuchEntity", message, 404)


def entity_already_exists(message: str) -> IAMError:
    """The name is taken (IAM compares names without regard to letter case)."""
    return IAMError("EntityAlreadyExists", message, 409)


def delete_conflict(message: str) -> IAMError:
    """The entity still has dependents that must be removed first."""
    return IAMError("DeleteConflict", message, 409)


def limit_exceeded(message: str) -> IAMError:
    """A quota would be exceeded (tags per user, credentials per service)."""
    return IAMError("LimitExceeded", message, 409)


def not_supported_service(service_name: str) -> IAMError:
    """Service-specific credentials were asked for a service that has none."""
    return IAMError("NotSupportedService", f"Service {service_name} is not supported.", 404)


def user_not_found(user_name: str) -> IAMError:
    """The exact message IAM uses for a missing user."""
    return no_such_entity(f"The user with name {user_name} cannot be found.")


def group_not_found(group_name: str) -> IAMError:
    """The exact message IAM uses for a missing group."""
    return no_such_entity(f"The group with name {group_name} cannot be found.")
