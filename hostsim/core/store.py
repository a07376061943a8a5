"""The state file: one SQLite database, its schema brought up to date by versioned migrations.

SQLite because IDHub's state must survive a restart and a crash, and because a single file
needs no server. The schema version lives in ``PRAGMA user_version``; each migration runs in its
own transaction together with the version bump, so a file is always at exactly one version.
A file written by a newer hostsim (a higher version than this one knows) is refused rather than
misread. Append-only tables are enforced by triggers, not by convention.

Before anything is written (not even the switch to WAL), :func:`open_state` makes sure the file
is one it may change: a regular file it can write, in a directory it can write (SQLite keeps
its write-ahead log beside the file), holding a hostsim schema no newer than this one, not
another program's database (tables but no schema version), and not damaged (SQLite's
``quick_check``). Anything else is refused with one line naming the file and the problem, and
the file is left exactly as it was: refusing must never be what damages someone's data.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from attrs import frozen

from hostsim.contract.errors import ConfigurationError

#: Where the state lives when neither ``--state`` nor ``IDHUB_STATE`` says.
STATE_VARIABLE = "IDHUB_STATE"
#: Seconds a writer waits for another process's transaction before giving up.
BUSY_TIMEOUT_MS = 10_000


@frozen
class Migration:
    """One step of the schema; ``version`` is the schema's version once it has run."""

    version: int
    description: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "identities, accounts, catalog, requests, approvals, grants, reconciliation, audit",
        """
        CREATE TABLE identities (
            email        TEXT PRIMARY KEY,
            first_name   TEXT,
            last_name    TEXT,
            display_name TEXT,
            manager      TEXT REFERENCES identities(email) ON UPDATE CASCADE,
            attributes   TEXT NOT NULL DEFAULT '{}',
            created_at   TEXT NOT NULL,
            updated_at   TEXT NOT NULL
        );
        CREATE TABLE accounts (
            id            INTEGER PRIMARY KEY,
            application   TEXT NOT NULL,
            identity      TEXT NOT NULL REFERENCES identities(email) ON UPDATE CASCADE,
            native_id     TEXT,
            name          TEXT NOT NULL,
            missing_since TEXT,
            synced        TEXT NOT NULL DEFAULT '{}',
            created_at    TEXT NOT NULL,
            updated_at    TEXT NOT NULL,
            UNIQUE (application, identity)
        );
        CREATE TABLE entitlements (
            id             TEXT PRIMARY KEY,
            application    TEXT NOT NULL,
            kind           TEXT NOT NULL,
            name           TEXT NOT NULL,
            native_id      TEXT NOT NULL DEFAULT '',
            description    TEXT NOT NULL DEFAULT '',
            carries        TEXT NOT NULL DEFAULT '[]',
            owner          TEXT REFERENCES identities(email) ON UPDATE CASCADE,
            approval_chain TEXT,
            present        INTEGER NOT NULL DEFAULT 1,
            synced_at      TEXT NOT NULL
        );
        CREATE TABLE requests (
            id            INTEGER PRIMARY KEY AUTOINCREMENT,
            action        TEXT NOT NULL CHECK (action IN ('grant', 'revoke')),
            identity      TEXT NOT NULL REFERENCES identities(email) ON UPDATE CASCADE,
            entitlement   TEXT NOT NULL REFERENCES entitlements(id),
            justification TEXT NOT NULL,
            requested_by  TEXT NOT NULL,
            status        TEXT NOT NULL CHECK (status IN
                ('pending', 'approved', 'rejected', 'withdrawn', 'failed', 'complete')),
            reason        TEXT NOT NULL DEFAULT '',
            steps         TEXT NOT NULL DEFAULT '[]',
            attempts      INTEGER NOT NULL DEFAULT 0,
            created_at    TEXT NOT NULL,
            updated_at    TEXT NOT NULL
        );
        CREATE TABLE approvals (
            request    INTEGER NOT NULL REFERENCES requests(id),
            position   INTEGER NOT NULL,
            role       TEXT NOT NULL,
            approver   TEXT NOT NULL,
            decision   TEXT CHECK (decision IN ('approved', 'rejected', 'skipped')),
            decided_at TEXT,
            comment    TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (request, position)
        );
        CREATE TABLE grants (
            id             INTEGER PRIMARY KEY,
            identity       TEXT NOT NULL REFERENCES identities(email) ON UPDATE CASCADE,
            entitlement    TEXT NOT NULL,
            source         TEXT NOT NULL,
            request        INTEGER REFERENCES requests(id),
            granted_at     TEXT NOT NULL,
            revoked_at     TEXT,
            revoke_request INTEGER REFERENCES requests(id),
            revoke_reason  TEXT NOT NULL DEFAULT ''
        );
        CREATE UNIQUE INDEX grants_held ON grants (identity, entitlement)
            WHERE revoked_at IS NULL;
        CREATE TABLE reconciliation_runs (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            application TEXT NOT NULL,
            started_at  TEXT NOT NULL,
            finished_at TEXT,
            actor       TEXT NOT NULL,
            options     TEXT NOT NULL,
            status      TEXT NOT NULL,
            counts      TEXT NOT NULL DEFAULT '{}',
            message     TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE reconciliation_findings (
            run       INTEGER NOT NULL REFERENCES reconciliation_runs(id),
            account   TEXT NOT NULL,
            kind      TEXT NOT NULL,
            subject   TEXT NOT NULL DEFAULT '',
            idhub     TEXT,
            app       TEXT,
            direction TEXT NOT NULL DEFAULT '',
            action    TEXT NOT NULL DEFAULT '',
            outcome   TEXT NOT NULL DEFAULT ''
        );
        CREATE TABLE audit (
            seq     INTEGER PRIMARY KEY AUTOINCREMENT,
            at      TEXT NOT NULL,
            actor   TEXT NOT NULL,
            action  TEXT NOT NULL,
            subject TEXT NOT NULL,
            request INTEGER,
            result  TEXT NOT NULL,
            detail  TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        """,
    ),
    Migration(
        2,
        "leavers: an identity that left keeps its history but holds nothing",
        """
        ALTER TABLE identities ADD COLUMN left_at TEXT;
        """,
    ),
    Migration(
        3,
        "leaver policy: the account of a leaver disabled now, deleted later",
        """
        ALTER TABLE accounts ADD COLUMN disabled_at TEXT;
        """,
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version


def default_path(environ: Mapping[str, str] = os.environ) -> Path:
    """``IDHUB_STATE``, else ``$XDG_STATE_HOME/hostsim/state.sqlite3`` (``~/.local/state``)."""
    if environ.get(STATE_VARIABLE):
        return Path(environ[STATE_VARIABLE])
    base = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "hostsim" / "state.sqlite3"


def open_state(path: Path, migrations: tuple[Migration, ...] = MIGRATIONS) -> sqlite3.Connection:
    """Open (creating if need be) the state file and migrate it to the newest schema.

    Every check that can refuse the file runs before its first write; see the module's
    docstring. Raises ConfigurationError (exit 2) naming the file and the problem.
    """
    _check_place(path)
    try:
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise _refused(path, f"cannot be opened ({exc})") from exc
    db.row_factory = sqlite3.Row
    try:
        _check_contents(db, path, migrations)
        db.execute("PRAGMA foreign_keys = ON")
        _use_wal(db)
        migrate(db, migrations, path)
    except sqlite3.DatabaseError as exc:
        db.close()
        raise ConfigurationError(f"the state file {path} is not usable: {exc}") from exc
    except BaseException:
        db.close()
        raise
    return db


def _refused(path: Path, problem: str) -> ConfigurationError:
    return ConfigurationError(f"the state file {path} {problem}; it was left as it is")


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


def _check_place(path: Path) -> None:
    """The file (when it exists) is a regular file hostsim can write, and so are its WAL
    companions; its directory exists (created for a new file) and can be written. Only
    ``stat``, ``open`` for writing without writing, and ``access``: nothing is changed."""
    try:
        mode: int | None = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise _refused(path, f"cannot be read ({_reason(exc)})") from exc
    if mode is None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _refused(
                path, f"cannot be created: its directory cannot be made ({_reason(exc)})"
            ) from exc
    elif stat.S_ISDIR(mode):
        raise _refused(path, "is a directory, not a file")
    elif not stat.S_ISREG(mode):
        raise _refused(path, "is not a regular file")
    else:
        for companion in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            _check_writable(path, companion)
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise _refused(
            path,
            f"cannot be used: its directory {path.parent} is not writable (SQLite keeps its "
            "write-ahead log beside the file)",
        )


def _check_writable(path: Path, file: Path) -> None:
    """Open ``file`` for writing and close it at once (an immutable or read-only file fails
    here instead of at the first write, halfway through a command)."""
    try:
        handle = os.open(file, os.O_RDWR)
    except FileNotFoundError:
        return
    except OSError as exc:
        which = "" if file == path else f" (its companion {file.name})"
        raise _refused(path, f"cannot be written{which}: {_reason(exc)}") from exc
    os.close(handle)


def _check_contents(db: sqlite3.Connection, path: Path, migrations: tuple[Migration, ...]) -> None:
    """Reads only, in one snapshot (a deferred transaction takes no write lock, and another
    process's migration is seen whole or not at all): the version is one this hostsim knows,
    a version-0 file is empty, and SQLite finds no damage."""
    known = migrations[-1].version if migrations else 0
    db.execute("BEGIN")
    try:
        _check_version(db, path, known)
        if schema_version(db) == 0:
            _refuse_foreign(db, path)
        problems = [str(row[0]) for row in db.execute("PRAGMA quick_check")]
    finally:
        if db.in_transaction:  # SQLite may have ended it itself on a damaged page
            db.execute("ROLLBACK")
    if problems != ["ok"]:
        first = " ".join(problems[0].split())
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise _refused(path, f"is damaged: {first}{more}")


def _check_version(db: sqlite3.Connection, path: Path, known: int) -> None:
    current = schema_version(db)
    if current > known:
        raise ConfigurationError(
            f"the state file {path} has schema version {current}, newer than this hostsim "
            f"knows ({known}); use a newer hostsim"
        )


def _refuse_foreign(db: sqlite3.Connection, path: Path) -> None:
    """A file at version 0 must be empty: one with tables and no schema version is another
    program's database (or not yet a hostsim one), never to be taken over."""
    names = [
        str(row[0])
        for row in db.execute("SELECT name FROM sqlite_master ORDER BY rowid LIMIT 4").fetchall()
    ]
    if names:
        listed = ", ".join(repr(name) for name in names[:3]) + (", ..." if len(names) > 3 else "")
        raise _refused(
            path,
            f"is not a hostsim state file: it holds {listed} but no hostsim schema version",
        )


def _use_wal(db: sqlite3.Connection) -> None:
    """WAL (readers never wait for the writer); switched only when not already, since the
    switch writes the file's header.

    SQLite answers the switch "database is locked" at once, without waiting in its busy
    handler, while another connection holds a lock on the file: several processes opening a
    new state file together meet exactly that (one switches, then migrates, while another
    tries to switch). So the switch waits here, as the busy handler would, up to the same
    :data:`BUSY_TIMEOUT_MS`; by then the other process has usually switched it already.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    pause = 0.005
    while True:
        try:
            if str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _is_busy(error: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused because another connection holds a lock (SQLITE_BUSY/LOCKED)."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(error) or "busy" in str(error)


def schema_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection, migrations: tuple[Migration, ...], path: Path) -> list[int]:
    """Run the migrations the file has not had yet; returns the versions applied."""
    _check_version(db, path, migrations[-1].version if migrations else 0)
    current = schema_version(db)
    applied = []
    for migration in migrations:
        if migration.version <= current:
            continue
        with transaction(db):
            now = schema_version(db)
            if now >= migration.version:
                continue  # another process ran it while this one waited for the write lock
            if now == 0:
                _refuse_foreign(db, path)  # under the write lock: nobody can add tables now
            # executescript would COMMIT first; run the statements one by one instead.
            for statement in _statements(migration.sql):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {int(migration.version)}")
        applied.append(migration.version)
    return applied


def _statements(sql: str) -> Iterator[str]:
    """Split a script into complete statements (a trigger body holds ``;`` of its own)."""
    pending = ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip():
                yield pending.strip()
            pending = ""
    if pending.strip():
        yield pending.strip()


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken at once (``BEGIN IMMEDIATE``) so two processes never
    interleave their reads and writes; committed at the end, rolled back on any error."""
    if db.in_transaction:  # nested: part of the caller's transaction
        yield db
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
