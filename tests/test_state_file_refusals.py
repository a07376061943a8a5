"""A state file hostsim must not use is refused before anything is written to it.

A damaged page, an immutable file, a read-only directory, a file from a newer hostsim and
another program's SQLite database each end in one error line naming the file and the problem,
exit 2, and the file exactly as it was (its bytes and its mtime): a refusal that modified the
file first (the switch to WAL writes its header) would be the very damage it refuses.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from idhub_cli import IDHub

from hostsim.contract.errors import ConfigurationError
from hostsim.core.store import SCHEMA_VERSION, open_state, schema_version
from hostsim.embedded_aws import EmbeddedAWS

CHATTR = shutil.which("chattr")


def _snapshot(path: Path) -> tuple[bytes, int]:
    return path.read_bytes(), path.stat().st_mtime_ns


def _error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("hostsim: error: "), done.stderr
    return lines[0]


@contextmanager
def _immutable(path: Path) -> Iterator[None]:
    """``chattr +i`` for the body: even root cannot write (or, for a directory, create in) it.
    Skips the test where the file system or the privileges do not allow it."""
    if CHATTR is None:
        pytest.skip("chattr is not available")
    done = subprocess.run([CHATTR, "+i", str(path)], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"chattr +i refused here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield
    finally:
        subprocess.run([CHATTR, "-i", str(path)], check=True)


def _state_with_people(path: Path, count: int = 50) -> None:
    db = open_state(path)
    try:
        for index in range(count):
            db.execute(
                "INSERT INTO identities (email, display_name, created_at, updated_at) "
                "VALUES (?, ?, 't', 't')",
                (f"p{index}@example.com", "someone " * 40),
            )
    finally:
        db.close()


def test_a_file_from_a_newer_hostsim_is_refused_without_being_switched_to_wal(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE future (x)")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    before = _snapshot(path)
    with pytest.raises(ConfigurationError, match="newer than this hostsim"):
        open_state(path)
    assert _snapshot(path) == before
    check = sqlite3.connect(path)
    try:
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    finally:
        check.close()


def test_another_programs_database_is_not_taken_over(aws: EmbeddedAWS, tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    db.execute("INSERT INTO invoices (total) VALUES (12.5)")
    db.commit()
    db.close()
    before = _snapshot(path)
    line = _error_line(IDHub(aws, path).run("identity", "add", "ann@example.com", expect=2))
    assert str(path) in line and "not a hostsim state file" in line and "'invoices'" in line
    assert _snapshot(path) == before
    check = sqlite3.connect(path)
    try:
        names = {row[0] for row in check.execute("SELECT name FROM sqlite_master")}
        assert names == {"invoices"}
        assert schema_version(check) == 0
    finally:
        check.close()


def test_an_empty_file_is_a_new_state_not_a_foreign_one(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    path.touch()
    db = open_state(path)
    try:
        assert schema_version(db) == SCHEMA_VERSION
    finally:
        db.close()


def test_a_damaged_page_is_refused_at_open_not_met_halfway(
    aws: EmbeddedAWS, tmp_path: Path
) -> None:
    path = tmp_path / "state.sqlite3"
    _state_with_people(path)
    db = sqlite3.connect(path)
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'identities'").fetchone()[0]
    db.close()
    data = bytearray(path.read_bytes())
    start = page_size * (root - 1)
    data[start : start + page_size] = b"\xa5" * page_size
    path.write_bytes(bytes(data))
    before = _snapshot(path)
    for command in (("identity", "list"), ("identity", "add", "ann@example.com")):
        line = _error_line(IDHub(aws, path).run(*command, expect=2))
        assert str(path) in line and ("malformed" in line or "damaged" in line), line
    assert _snapshot(path) == before


def test_an_immutable_file_is_refused_before_any_write(aws: EmbeddedAWS, tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    _state_with_people(path, 3)
    before = _snapshot(path)
    with _immutable(path):
        line = _error_line(IDHub(aws, path).run("identity", "add", "ann@example.com", expect=2))
    assert str(path) in line and "cannot be written" in line
    assert _snapshot(path) == before


def test_a_read_only_directory_is_refused_even_while_another_process_has_the_file_open(
    aws: EmbeddedAWS, tmp_path: Path
) -> None:
    """With the WAL files present (another command or ``serve`` holds the state open), SQLite
    could still write, but the directory cannot take the fulfilment locks: refuse up front."""
    folder = tmp_path / "state"
    path = folder / "state.sqlite3"
    _state_with_people(path, 3)
    held = sqlite3.connect(path)
    try:
        held.execute("SELECT count(*) FROM identities").fetchone()
        before = _snapshot(path)
        with _immutable(folder):
            line = _error_line(IDHub(aws, path).run("identity", "add", "ann@example.com", expect=2))
        assert str(path) in line and "directory" in line and "not writable" in line
        assert _snapshot(path) == before
    finally:
        held.close()


def test_a_directory_given_as_the_state_file_is_refused(aws: EmbeddedAWS, tmp_path: Path) -> None:
    line = _error_line(IDHub(aws, tmp_path).run("identity", "list", expect=2))
    assert str(tmp_path) in line and "is a directory" in line


_OPEN_AT = """
import sys, time
from pathlib import Path
from hostsim.core.store import open_state
start = float(sys.argv[2])
while time.time() < start:
    time.sleep(0.001)
open_state(Path(sys.argv[1])).close()
"""


def test_a_first_open_waits_for_another_connections_lock_to_switch_to_wal(
    tmp_path: Path,
) -> None:
    """SQLite refuses the switch to WAL at once while another connection holds a lock (its
    busy handler is not asked): the open waits for the lock instead of failing."""
    path = tmp_path / "state.sqlite3"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    released = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    released.start()
    try:
        db = open_state(path)
    finally:
        released.join()
        other.close()
    assert str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal"
    assert schema_version(db) == SCHEMA_VERSION
    db.close()


def test_processes_opening_a_new_file_at_once_all_find_it_migrated(tmp_path: Path) -> None:
    """The checks added before the first write keep the guarantee: concurrent first opens."""
    path = tmp_path / "state.sqlite3"
    start = time.time() + 1.5
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_AT, str(path), str(start)],
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ},
        )
        for _ in range(4)
    ]
    errors = [child.communicate(timeout=60)[1] for child in children]
    assert [child.returncode for child in children] == [0] * 4, errors
    db = open_state(path)
    try:
        assert schema_version(db) == SCHEMA_VERSION
    finally:
        db.close()
