"""People: the identities IDHub governs, each known by a unique email, with a manager.

An identity is IDHub's record of a person (the account in AWS is a separate record, see
:mod:`.accounts`). Its attributes are the ones the connector maps onto the account; the
manager is the first approver of most requests, so the manager must be a known identity and a
chain of managers may not loop.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator, Mapping

from attrs import evolve, field, frozen

from hostsim.contract.errors import AlreadyExists, InvalidInput, NotFound
from hostsim.contract.model import canonical_email
from hostsim.core.state import State
from hostsim.core.store import transaction

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: The attributes every identity has as columns; others live in ``attributes``.
NAME_FIELDS = ("first_name", "last_name", "display_name")


@frozen
class Identity:
    email: str
    first_name: str | None = None
    last_name: str | None = None
    display_name: str | None = None
    manager: str | None = None
    attributes: dict[str, str] = field(factory=dict)
    #: When the person left (:mod:`.leavers`); a leaver keeps its history, holds nothing.
    left_at: str | None = None

    def value(self, attribute: str) -> str | None:
        """One attribute by the connector's name for it (``email``, ``first_name``, extras)."""
        if attribute == "email":
            return self.email
        if attribute in NAME_FIELDS:
            value: str | None = getattr(self, attribute)
            return value
        return self.attributes.get(attribute)

    def with_value(self, attribute: str, value: str | None) -> Identity:
        if attribute == "first_name":
            return evolve(self, first_name=value)
        if attribute == "last_name":
            return evolve(self, last_name=value)
        if attribute == "display_name":
            return evolve(self, display_name=value)
        attributes = dict(self.attributes)
        if value is None:
            attributes.pop(attribute, None)
        else:
            attributes[attribute] = value
        return evolve(self, attributes=attributes)


def normal_email(text: str, what: str = "email") -> str:
    """The email as IDHub keys it (lower case, like the connector), or InvalidInput."""
    email = canonical_email(text)
    if not EMAIL.match(email):
        raise InvalidInput(f"{what} {text!r} is not an email address")
    return email


def _from_row(row: sqlite3.Row) -> Identity:
    return Identity(
        email=row["email"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        display_name=row["display_name"],
        manager=row["manager"],
        attributes=json.loads(row["attributes"]),
        left_at=row["left_at"],
    )


def find(db: sqlite3.Connection, email: str) -> Identity | None:
    row = db.execute("SELECT * FROM identities WHERE email = ?", (email.lower(),)).fetchone()
    return None if row is None else _from_row(row)


def get(db: sqlite3.Connection, email: str) -> Identity:
    found = find(db, normal_email(email, "identity"))
    if found is None:
        raise NotFound(f"no identity {email!r} in IDHub (add it with `hostsim identity add`)")
    return found


def get_current(db: sqlite3.Connection, email: str) -> Identity:
    """An identity that has not left (a leaver can neither receive nor grant access)."""
    found = get(db, email)
    if found.left_at is not None:
        raise InvalidInput(f"{found.email} left on {found.left_at}")
    return found


def every(db: sqlite3.Connection) -> Iterator[Identity]:
    for row in db.execute("SELECT * FROM identities ORDER BY email"):
        yield _from_row(row)


def _check_manager(db: sqlite3.Connection, email: str, manager: str | None) -> None:
    """The manager exists and the chain of managers above it never comes back to ``email``."""
    seen = {email}
    current = manager
    while current is not None:
        if current in seen:
            raise InvalidInput(f"{manager} cannot manage {email}: managers would form a loop")
        seen.add(current)
        found = find(db, current)
        if found is None:
            raise NotFound(f"manager {current!r} is not an identity in IDHub")
        current = found.manager


def add(state: State, identity: Identity) -> Identity:
    """Record a new person; an email already known (in any case) is refused."""
    email = normal_email(identity.email)
    manager = normal_email(identity.manager, "manager") if identity.manager else None
    identity = evolve(identity, email=email, manager=manager)
    with transaction(state.db):
        if find(state.db, email) is not None:
            raise AlreadyExists(f"identity {email} exists already (change it with modify)")
        _check_manager(state.db, email, manager)
        now = state.now()
        state.db.execute(
            "INSERT INTO identities (email, first_name, last_name, display_name, manager, "
            "attributes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                email,
                identity.first_name,
                identity.last_name,
                identity.display_name,
                manager,
                json.dumps(identity.attributes, sort_keys=True),
                now,
                now,
            ),
        )
        state.record("identity.add", email, "done", identity=_described(identity))
    return identity


def _described(identity: Identity) -> dict[str, object]:
    return {
        "first_name": identity.first_name,
        "last_name": identity.last_name,
        "display_name": identity.display_name,
        "manager": identity.manager,
        "attributes": identity.attributes,
    }


def save(state: State, before: Identity, after: Identity, why: str) -> None:
    """Store a changed identity (inside the caller's transaction) and audit what changed."""
    if after.manager:
        _check_manager(state.db, after.email, after.manager)
    state.db.execute(
        "UPDATE identities SET first_name = ?, last_name = ?, display_name = ?, manager = ?, "
        "attributes = ?, updated_at = ? WHERE email = ?",
        (
            after.first_name,
            after.last_name,
            after.display_name,
            after.manager,
            json.dumps(after.attributes, sort_keys=True),
            state.now(),
            before.email,
        ),
    )
    changed = {
        key: {"from": old, "to": new}
        for key, old in _described(before).items()
        if old != (new := _described(after)[key])
    }
    state.record("identity.modify", before.email, "done", changes=changed, why=why)


def changed_attributes(before: Identity, after: Identity) -> dict[str, str | None]:
    """The connector attributes whose value differs (``None``: cleared)."""
    names = {*NAME_FIELDS, *before.attributes, *after.attributes}
    return {
        name: after.value(name) for name in sorted(names) if before.value(name) != after.value(name)
    }


def modify(
    state: State, email: str, changes: Mapping[str, str | None]
) -> tuple[Identity, Identity]:
    """Change an identity's attributes or manager; returns it before and after.

    ``changes`` maps ``first_name``, ``last_name``, ``display_name``, ``manager`` or an extra
    attribute to its new value; an empty string clears it.
    """
    with transaction(state.db):
        before = get(state.db, email)
        after = before
        for name, value in changes.items():
            cleared = value or None
            if name == "manager":
                manager = normal_email(value, "manager") if value else None
                after = evolve(after, manager=manager)
            else:
                after = after.with_value(name, cleared)
        if after != before:
            save(state, before, after, why="identity modified")
    return before, after
