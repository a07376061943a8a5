"""One open IDHub state for one command: the database, the clock, who is acting, the audit log.

Every core operation takes a :class:`State`, so the acting person and the time of a change are
decided once per command and written the same way into the records and the audit log.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from attrs import define, field

from hostsim.core.audit import AuditLog
from hostsim.core.settings import CoreSettings
from hostsim.core.store import open_state
from hostsim.redaction import Redactor


def utc_now() -> datetime:
    return datetime.now(UTC)


def timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC to the second: sortable as text, readable in a table."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@define
class State:
    db: sqlite3.Connection
    actor: str
    application: str
    settings: CoreSettings = field(factory=CoreSettings)
    redact: Redactor = field(factory=Redactor)
    clock: Callable[[], datetime] = utc_now
    #: The state file (None for a state not backed by one, as in some tests).
    path: Path | None = None
    audit: AuditLog = field(init=False)

    def __attrs_post_init__(self) -> None:
        self.audit = AuditLog(self.db, self.redact)

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        actor: str,
        application: str,
        settings: CoreSettings | None = None,
        redact: Redactor | None = None,
    ) -> State:
        return cls(
            open_state(path),
            actor=actor.strip().lower(),
            application=application,
            settings=settings or CoreSettings(),
            redact=redact or Redactor(),
            path=path,
        )

    def now(self) -> str:
        return timestamp(self.clock())

    def record(
        self,
        action: str,
        subject: str,
        result: str,
        *,
        request: int | None = None,
        actor: str | None = None,
        **detail: object,
    ) -> None:
        """Append an audit entry by the acting person (or ``actor``) at the current time."""
        self.audit.append(
            self.now(),
            actor or self.actor,
            action,
            subject,
            result,
            request=request,
            detail=detail,
        )

    def close(self) -> None:
        self.db.close()
