"""The one error hierarchy of the host contract.

Connectors translate their target system's failures into these classes at their edge (with
``raise ... from exc``) so that the host, the CLI and later the SCIM API can decide what to do
from the class alone: tell the caller their input is wrong, retry later, or give up. No
library exception (botocore's ClientError, say) crosses the contract.
"""

from __future__ import annotations

from collections.abc import Sequence

from hostsim.contract.model import Step


class ConnectorError(Exception):
    """Base class: an operation did not complete.

    ``steps`` lists what the operation had already done (and what it had still planned) when it
    stopped, so a caller of a composite operation learns exactly what was applied and can re-run
    it: every connector operation is idempotent, so the re-run finishes the job.
    """

    retryable: bool = False
    #: Whether the failure is the caller's input (the CLI exits 2 and nothing was changed).
    invalid_input: bool = False

    def __init__(self, message: str, *, steps: Sequence[Step] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.steps: tuple[Step, ...] = tuple(steps)

    def with_steps(self, steps: Sequence[Step]) -> ConnectorError:
        """Attach the step log of the operation that was under way when this was raised."""
        self.steps = tuple(steps)
        return self

    def __str__(self) -> str:
        return self.message


class InvalidInput(ConnectorError):
    """The request breaks a rule (syntax, length, unknown kind); nothing was sent to change the
    target system."""

    invalid_input = True


class NotFound(ConnectorError):
    """The account, group or policy named in the request does not exist."""

    invalid_input = True


class AlreadyExists(ConnectorError):
    """An object with that name exists already (for IAM: in any letter case)."""

    invalid_input = True


class Conflict(ConnectorError):
    """The target refused because of the state of the object (IAM's DeleteConflict, say)."""


class PermissionDenied(ConnectorError):
    """The connector's credentials may not do this."""


class Refused(ConnectorError):
    """The connector's own policy forbids this (a protected account, a user outside its scope,
    a policy that may not be granted); nothing was changed."""

    invalid_input = True


class Transient(ConnectorError):
    """Throttling, a timeout or a server error that outlasted the retries; safe to try again."""

    retryable = True


class PartialRead(ConnectorError):
    """A read of several target accounts reached only some: every row of the others was
    yielded before this is raised at the end. ``failed`` names each account not read, with
    why; a caller must not take those accounts' missing rows for "gone"."""

    retryable = True

    def __init__(
        self, message: str, *, failed: Sequence[tuple[str, str]], steps: Sequence[Step] = ()
    ) -> None:
        super().__init__(message, steps=steps)
        #: ``(account id, reason)`` of every account that could not be read, in order.
        self.failed: tuple[tuple[str, str], ...] = tuple(failed)


class ConfigurationError(ConnectorError):
    """The connector's settings are wrong or incomplete (bad TOML, unknown key, bad value)."""

    invalid_input = True


class PluginError(Exception):
    """A plugin broke the host contract (duplicate connector name, missing capability method).

    Not a ConnectorError: it is a bug in a plugin, found when plugins are loaded, never the
    result of an operation.
    """
