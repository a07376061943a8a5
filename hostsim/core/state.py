"""One open IDHub state for one command: the database, the clock, who is acting, the audit log.

Every core operation takes a :class:`State`, so the acting person and the time of a change are
decided once per command and written the same way into the records and the audit log.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from attrs import define, evolve, field

from hostsim.core.audit import AuditLog
from hostsim.core.settings import CoreSettings
from hostsim.core.store import open_state
from hostsim.redaction import Redactor

#: The ``@ACCOUNT`` an entitlement id of one AWS account of an organization ends with.
QUALIFIER = re.compile(r"@(\d{12})$")


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
    #: The target account (an AWS account of an organization) this state's application is;
    #: None for the one application of a connector that reaches one account.
    account_id: str | None = None
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

    def for_application(self, application: str, account_id: str | None) -> State:
        """The same command's state (database, clock, actor) acting on another application:
        one AWS account of an organization is one IDHub application."""
        if (application, account_id) == (self.application, self.account_id):
            return self
        return evolve(self, application=application, account_id=account_id)

    def entitlement_id(self, native: str) -> str:
        """IDHub's id of the connector's entitlement ``native`` in this application: qualified
        with ``@ACCOUNT`` in an organization (``group:Dev@111111111111``), so that the same
        group in two accounts is two entitlements; the connector's own id otherwise."""
        return native if self.account_id is None else f"{native}@{self.account_id}"

    def native_entitlement(self, entitlement: str) -> str:
        """The connector's id of IDHub's ``entitlement`` (the reverse of
        :meth:`entitlement_id`): what a connector bound to this account is handed."""
        if self.account_id is None:
            return entitlement
        return QUALIFIER.sub("", entitlement)

    def owns(self, entitlement: str) -> bool:
        """Whether IDHub's ``entitlement`` is one of this application's (every one is, for a
        connector of one account; grants are kept per person, not per application)."""
        if self.account_id is None:
            return True
        return entitlement.endswith(f"@{self.account_id}")

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
