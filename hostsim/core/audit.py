"""The audit log: every change IDHub makes, appended and never rewritten.

Who asked, who approved, what the connector did (its steps) and how it ended. The table refuses
UPDATE and DELETE by trigger (:mod:`.store`), so an entry once written stays as written. Every
entry passes through the CLI's :class:`~hostsim.redaction.Redactor` before it is stored: a
secret that reached an error message never reaches the file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from attrs import frozen

from hostsim.contract.converter import unstructure
from hostsim.contract.model import Step
from hostsim.redaction import Redactor

#: The keys every stored step has (the contract's :class:`~hostsim.contract.model.Step`).
STEP_KEYS = frozenset({"action", "target", "status", "detail"})


def steps_data(steps: Iterable[Step]) -> list[dict[str, Any]]:
    """Steps in the one shape they are stored in, in requests and in audit entries alike: the
    contract's ``Step`` unstructured, so every reader (the ``audit`` table, ``request show``,
    ``--json``) can rely on ``action``, ``target``, ``status`` and ``detail``."""
    data: list[dict[str, Any]] = unstructure(list(steps))
    return data


def _check_steps(detail: Mapping[str, Any]) -> None:
    """Refuse (a programming error) steps stored in any other shape than :func:`steps_data`'s:
    an entry once written stays as written, so a wrong shape would break its readers forever."""
    if "steps" not in detail:
        return
    steps = detail["steps"]
    if not isinstance(steps, list) or not all(
        isinstance(step, dict) and step.keys() >= STEP_KEYS for step in steps
    ):
        raise TypeError(f"audit steps must be stored as steps_data() gives them, not {steps!r}")


@frozen
class Entry:
    seq: int
    at: str
    actor: str
    action: str
    subject: str
    request: int | None
    result: str
    detail: dict[str, Any]


class AuditLog:
    """Appends entries to the state's ``audit`` table, secrets masked."""

    def __init__(self, db: sqlite3.Connection, redact: Redactor) -> None:
        self._db = db
        self._redact = redact

    def append(
        self,
        at: str,
        actor: str,
        action: str,
        subject: str,
        result: str,
        *,
        request: int | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Write one entry; call it inside the transaction that makes the change, so the change
        and its entry are stored together or not at all."""
        _check_steps(detail or {})
        # masked value by value: JSON escapes quotes, backslashes and non-ASCII letters, so a
        # secret holding one would no longer match in the serialised text
        plain = json.loads(json.dumps(dict(detail or {}), default=str))
        text = json.dumps(self._redact.data(plain), sort_keys=True)
        self._db.execute(
            "INSERT INTO audit (at, actor, action, subject, request, result, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                at,
                self._redact(actor),
                action,
                self._redact(subject),
                request,
                self._redact(result),
                text,
            ),
        )


def entries(
    db: sqlite3.Connection,
    *,
    request: int | None = None,
    subject: str | None = None,
    limit: int | None = None,
) -> Iterator[Entry]:
    """Entries in the order they were written (the newest ``limit`` of them when given)."""
    where: list[str] = []
    params: list[object] = []
    if request is not None:
        where.append("request = ?")
        params.append(request)
    if subject is not None:
        where.append("(subject = ? OR actor = ?)")
        params += [subject, subject]
    sql = "SELECT * FROM audit" + (f" WHERE {' AND '.join(where)}" if where else "")
    if limit is not None:
        sql = f"SELECT * FROM ({sql} ORDER BY seq DESC LIMIT {int(limit)})"
    for row in db.execute(sql + " ORDER BY seq", params):
        yield Entry(
            seq=row["seq"],
            at=row["at"],
            actor=row["actor"],
            action=row["action"],
            subject=row["subject"],
            request=row["request"],
            result=row["result"],
            detail=json.loads(row["detail"]),
        )
