"""The step log a connector keeps while it runs a composite operation.

A create with initial grants, a delete with its cascade, a rename with attribute changes: each is
several calls to the target, and any of them can fail. The log records every step as it ends and
every step still planned, so that a failure halfway reports exactly what was applied and what was
not (the error carries the log), and a success reports what changed and what already held.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from hostsim.contract.errors import ConnectorError
from hostsim.contract.model import AccountRef, OperationResult, Step, StepStatus

#: Turns a foreign exception (botocore's, say) into a contract error, or returns None to let it
#: propagate unchanged (a programming error should keep its traceback).
Translator = Callable[[Exception], ConnectorError | None]


class StepOutcome:
    """Handed to the body of a step so it can say the step found nothing to do."""

    def __init__(self) -> None:
        self.status = StepStatus.DONE
        self.detail = ""

    def unchanged(self, detail: str = "") -> None:
        self.status = StepStatus.UNCHANGED
        self.detail = detail

    def done(self, detail: str = "") -> None:
        self.status = StepStatus.DONE
        self.detail = detail


class StepLog:
    """Ordered record of an operation's steps, planned and finished."""

    def __init__(self, operation: str, translate: Translator | None = None) -> None:
        self.operation = operation
        self._translate = translate
        self._finished: list[Step] = []
        self._planned: list[tuple[str, str]] = []

    def plan(self, action: str, target: str) -> None:
        """Announce a step, so a failure before it lists it as ``pending``."""
        self._planned.append((action, target))

    def record(self, action: str, target: str, status: StepStatus, detail: str = "") -> None:
        if (action, target) in self._planned:
            self._planned.remove((action, target))
        self._finished.append(Step(action, target, status, detail))

    @contextmanager
    def step(self, action: str, target: str) -> Iterator[StepOutcome]:
        """Run the body as one step; on failure record it ``failed`` and attach the log to the
        error, translated to a contract error when it is a foreign one."""
        outcome = StepOutcome()
        try:
            yield outcome
        except Exception as exc:
            error = self._as_connector_error(exc)
            if error is None:
                raise
            self.record(action, target, StepStatus.FAILED, error.message)
            error.with_steps(self.steps)
            if error is exc:
                raise
            raise error from exc
        self.record(action, target, outcome.status, outcome.detail)

    def _as_connector_error(self, exc: Exception) -> ConnectorError | None:
        if isinstance(exc, ConnectorError):
            return exc
        return self._translate(exc) if self._translate else None

    @property
    def steps(self) -> tuple[Step, ...]:
        """Finished steps in order, then the planned ones never reached, as ``pending``."""
        pending = tuple(
            Step(action, target, StepStatus.PENDING) for action, target in self._planned
        )
        return (*self._finished, *pending)

    def result(self, account: AccountRef | None) -> OperationResult:
        return OperationResult(operation=self.operation, account=account, steps=self.steps)
