"""The SCIM server's index: native id to account name and email, and group id to group name.

SCIM addresses users and groups by id (IAM's UserId and GroupId), and IAM reads them only by
name. A long-running server therefore keeps this index, built from one bulk read (``fetch
users``, ``fetch groups``), kept current by the server's own writes (a create adds, a rename
moves, a delete drops), and refreshed when it misses or when the connector answers that a
hinted name no longer has that id (a rename or delete made behind the server's back).

The index is a hint, never the truth: every answer about a user or group is read from the
target by name (:meth:`~hostsim.runtime.Runtime.read_account` with the index's name as the
hint, which the connector checks against the id), so a stale entry costs one refresh, never a
wrong answer. What it serves on its own is the count of users, for ``totalResults``, refreshed
whenever a list shows an id it does not know.

Thread-safety: the maps change under one short lock, never held across an IAM call. A
refresh (a bulk read) runs outside it, one at a time (concurrent misses share one refresh), and
the server's writes made while it reads are replayed onto its result, so a refresh that began
before a write never undoes the write.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from attrs import frozen

from hostsim.contract.model import Account, FetchKind, Group, canonical_email
from hostsim.runtime import Runtime

T = TypeVar("T")


@frozen
class Known:
    """What the index knows of one account: its native id, its name at the target (the hint
    for a read), and its email in the contract's one spelling (None without one)."""

    id: str
    name: str
    email: str | None

    @classmethod
    def of(cls, account: Account) -> Known:
        return cls(account.id, account.user_name, canonical_email(account.email or "") or None)


class _Users:
    """One snapshot of the user maps: by id, and by email."""

    def __init__(self, known: Iterable[Known] = ()) -> None:
        self.by_id: dict[str, Known] = {}
        self.by_email: dict[str, str] = {}
        for entry in known:
            self.put(entry)

    def put(self, entry: Known) -> None:
        self.drop(entry.id)
        self.by_id[entry.id] = entry
        if entry.email:
            self.by_email[entry.email] = entry.id

    def drop(self, native_id: str) -> None:
        old = self.by_id.pop(native_id, None)
        if old is not None and old.email and self.by_email.get(old.email) == native_id:
            del self.by_email[old.email]


class _Reads:
    """One kind of bulk read of the index (users, groups): one runs at a time; each is
    numbered when it starts; ``fresh_from`` is the number of the newest that completed; the
    writes made while one runs are journaled, to be replayed onto its result."""

    def __init__(self) -> None:
        self.running = threading.Lock()
        self.started = 0
        self.fresh_from = 0
        self.journal: list[Callable[[Any], None]] | None = None


class AccountIndex:
    """UserId -> (name, email) and GroupId -> name for one runtime (see the module doc)."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._lock = threading.Lock()
        self._users: _Users | None = None
        self._user_reads = _Reads()
        self._groups: dict[str, str] | None = None
        self._group_reads = _Reads()

    def _refresh(self, reads: _Reads, mark: int, read: Callable[[], T]) -> T | None:
        """Run ``read`` as a refresh of ``reads``, unless one that started after ``mark``
        completed meanwhile (then None): concurrent misses cost one read, and a miss is
        never answered from a read older than itself. The result has the writes made
        meanwhile replayed onto it; the caller installs it with :meth:`_install`."""
        with self._lock:
            if reads.fresh_from > mark:
                return None
            reads.started += 1
            reads.journal = []
        try:
            fresh = read()
        except BaseException:
            with self._lock:
                reads.journal = None
            raise
        return fresh

    def _install(self, reads: _Reads, fresh: Any, put: Callable[[Any], None]) -> None:
        with self._lock:
            for write in reads.journal or ():
                write(fresh)
            reads.journal = None
            put(fresh)
            reads.fresh_from = reads.started

    def _write(
        self, reads: _Reads, current: Callable[[], Any], change: Callable[[Any], None]
    ) -> None:
        """Apply a write to the current maps (``current()``, read under the lock: a refresh
        may just have replaced them), and journal it while a refresh reads."""
        with self._lock:
            maps = current()
            if maps is not None:
                change(maps)
            if reads.journal is not None:
                reads.journal.append(change)

    # --- users -------------------------------------------------------------------------

    def mark(self) -> int:
        """The point a caller's read is judged from: take it before the read, hand it to
        :meth:`refresh` when the read missed."""
        with self._lock:
            return self._user_reads.started

    def ensure(self) -> None:
        """Build the index from one bulk read, if it was never built."""
        with self._lock:
            built = self._users is not None
        if not built:
            self.refresh(0)

    def refresh(self, mark: int) -> None:
        """Read every account again (one call a page of the bulk read), unless a refresh that
        started after ``mark`` (see :meth:`mark`) has completed meanwhile."""
        with self._user_reads.running:
            fresh = self._refresh(self._user_reads, mark, self._read_users)
            if fresh is not None:
                self._install(self._user_reads, fresh, self._put_users)

    def _read_users(self) -> _Users:
        rows = self._runtime.fetch(FetchKind.USERS)
        return _Users(Known.of(row) for row in rows if isinstance(row, Account))

    def _put_users(self, fresh: _Users) -> None:
        self._users = fresh

    def _change_users(self, change: Callable[[_Users], None]) -> None:
        self._write(self._user_reads, lambda: self._users, change)

    def user(self, native_id: str) -> Known | None:
        """The entry of a native id (the index built first if need be), or None."""
        self.ensure()
        with self._lock:
            return self._users.by_id.get(native_id) if self._users else None

    def by_email(self, email: str) -> Known | None:
        """The entry of the account carrying this email (any spelling), or None."""
        self.ensure()
        wanted = canonical_email(email)
        with self._lock:
            if self._users is None:
                return None
            native_id = self._users.by_email.get(wanted)
            return self._users.by_id.get(native_id) if native_id else None

    def count(self) -> int:
        """How many accounts the index knows."""
        self.ensure()
        with self._lock:
            return len(self._users.by_id) if self._users else 0

    def put(self, account: Account) -> None:
        """Record an account as just read or written (a create, a rename, a fresh read)."""
        entry = Known.of(account)
        self._change_users(lambda users: users.put(entry))

    def drop(self, native_id: str) -> None:
        """Forget an account (deleted, or found gone)."""
        self._change_users(lambda users: users.drop(native_id))

    # --- groups ------------------------------------------------------------------------

    def group_mark(self) -> int:
        """As :meth:`mark`, for the groups."""
        with self._lock:
            return self._group_reads.started

    def refresh_groups(self, mark: int) -> None:
        """Read the groups again (one call a page of groups), unless a refresh that started
        after ``mark`` has completed meanwhile."""
        with self._group_reads.running:
            fresh = self._refresh(self._group_reads, mark, self._read_groups)
            if fresh is not None:
                self._install(self._group_reads, fresh, self._put_groups)

    def _read_groups(self) -> dict[str, str]:
        rows = self._runtime.fetch(FetchKind.GROUPS)
        return {row.id: row.name for row in rows if isinstance(row, Group)}

    def _put_groups(self, fresh: dict[str, str]) -> None:
        self._groups = fresh

    def group_names(self) -> dict[str, str]:
        """GroupId -> name, as last read (read first if never)."""
        with self._lock:
            built = self._groups is not None
        if not built:
            self.refresh_groups(0)
        with self._lock:
            return dict(self._groups or {})

    def group_name(self, native_id: str) -> str | None:
        return self.group_names().get(native_id)

    def group_ids(self) -> dict[str, str]:
        """Group name -> GroupId, as last read."""
        return {name: native_id for native_id, name in self.group_names().items()}

    def put_group(self, native_id: str, name: str) -> None:
        self._write(self._group_reads, lambda: self._groups, lambda g: g.update({native_id: name}))

    def drop_group(self, native_id: str) -> None:
        self._write(self._group_reads, lambda: self._groups, lambda g: g.pop(native_id, None))
