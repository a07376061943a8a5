"""Which live process is acting on what: a request, a reconciliation run, a person.

A request left ``approved`` by a crashed run must be resumed by the next command, but the same
status also describes a request another process is fulfilling right now; a run left
``running`` may be one a killed process never finished, or one in progress. A claim tells them
apart: the process acting holds an exclusive POSIX record lock on one byte of a file next to
the state file (at the request's id, the run's id, or the person's key). The operating system
releases the lock when that process ends, however it ends, so a crashed run's work is free to
resume and a live one's is left alone. No row is written, so nothing is left to clean up.

The person lock is what makes a leaver win a race: everything that creates an account or gives
access for a person (fulfilment, remedies) holds it while it acts for them, and the leaver takes
it before it deletes the account, so the two never act on the same account at once (see
:mod:`.leavers`).

POSIX record locks belong to a process, not to an open file, and closing *any* descriptor of the
file drops *all* of the process's locks on it. So a process keeps one descriptor of the file
open while it holds any lock in it, and counts nested holds of one lock (a lock taken again by
the thread holding it is held until the outer hold ends). Threads of one process are kept apart
by an in-process lock per key, since the operating system would let them all in.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from attrs import define, field

from hostsim.contract.errors import Conflict
from hostsim.contract.model import canonical_email

CLAIMS_SUFFIX = ".claims"
#: Where each kind of key lives in the claims file (a request's byte is its id).
RUNS_BASE = 1 << 40
PEOPLE_BASE = 1 << 41
PEOPLE_SPAN = 1 << 40
#: How often a waiting process tries a lock again.
POLL_SECONDS = 0.05
#: How long work for a person waits for another process acting for them (a leaver's delete
#: cascade or a fulfilment against a slow or throttling IAM takes a while, never this long).
PERSON_WAIT_SECONDS = 300.0


class Busy(Conflict):
    """Another live process kept acting for the person for longer than one waits."""


def claims_file(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + CLAIMS_SUFFIX)


def person_key(email: str) -> int:
    """A person's byte: a stable hash of the (lower-case) email. Two people sharing one only
    wait for each other; nobody is ever let in twice."""
    digest = hashlib.sha256(canonical_email(email).encode()).digest()
    return PEOPLE_BASE + int.from_bytes(digest[:8], "big") % PEOPLE_SPAN


@define
class _Slot:
    guard: threading.RLock = field(factory=threading.RLock)
    depth: int = 0


@define
class _OpenFile:
    handle: BinaryIO
    users: int = 0


_mutex = threading.Lock()
_slots: dict[tuple[Path, int], _Slot] = {}
_files: dict[Path, _OpenFile] = {}


def _slot(path: Path, offset: int) -> _Slot:
    with _mutex:
        return _slots.setdefault((path, offset), _Slot())


def _open(path: Path) -> BinaryIO:
    with _mutex:
        opened = _files.get(path)
        if opened is None:
            opened = _files[path] = _OpenFile(path.open("a+b"))
        opened.users += 1
        return opened.handle


def _close(path: Path) -> None:
    with _mutex:
        opened = _files[path]
        opened.users -= 1
        if opened.users == 0:
            del _files[path]
            opened.handle.close()


def _try_lock(handle: BinaryIO, offset: int) -> bool:
    try:
        fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN):  # another process holds it
            return False
        raise
    return True


def _lock_file(path: Path, offset: int, deadline: float, on_wait: Callable[[], None]) -> bool:
    """The OS lock, tried until ``deadline`` (``on_wait`` called once if it has to wait)."""
    handle = _open(path)
    waited = False
    while not _try_lock(handle, offset):
        if time.monotonic() >= deadline:
            _close(path)
            return False
        if not waited:
            on_wait()
            waited = True
        time.sleep(POLL_SECONDS)
    return True


def _nothing() -> None:
    return None


@contextmanager
def _held(
    path: Path, offset: int, wait: float = 0.0, on_wait: Callable[[], None] = _nothing
) -> Iterator[bool]:
    """Hold one byte's lock for the body (yields True), waiting up to ``wait`` seconds for a
    process or thread holding it; yields False, holding nothing, when it stayed taken."""
    deadline = time.monotonic() + wait
    slot = _slot(path, offset)
    acquired = slot.guard.acquire(timeout=wait) if wait > 0 else slot.guard.acquire(False)
    if not acquired:
        yield False
        return
    try:
        if slot.depth == 0 and not _lock_file(path, offset, deadline, on_wait):
            yield False
            return
        slot.depth += 1
        try:
            yield True
        finally:
            slot.depth -= 1
            if slot.depth == 0:
                fcntl.lockf(_files[path].handle, fcntl.LOCK_UN, 1, offset)
                _close(path)
    finally:
        slot.guard.release()


@contextmanager
def claim(state_path: Path | None, request_id: int) -> Iterator[bool]:
    """Hold the request's claim for the body: yields True, or False (holding nothing) when a
    live process has it. A state without a file (``None``) has one process: always True."""
    if state_path is None:
        yield True
        return
    with _held(claims_file(state_path), request_id) as mine:
        yield mine


@contextmanager
def run_claim(state_path: Path | None, run_id: int) -> Iterator[bool]:
    """Hold a reconciliation run's claim: its process is alive while the claim is held, so a
    ``running`` run whose claim is free was interrupted (see :mod:`.reconciliation`)."""
    if state_path is None:
        yield True
        return
    with _held(claims_file(state_path), RUNS_BASE + run_id) as mine:
        yield mine


@contextmanager
def person(
    state_path: Path | None,
    email: str,
    *,
    wait: float,
    on_wait: Callable[[], None] = _nothing,
) -> Iterator[bool]:
    """Act for one person, alone: waits up to ``wait`` seconds for whoever acts for them now
    (``on_wait`` is called once when it has to wait); yields False if they still do."""
    if state_path is None:
        yield True
        return
    with _held(claims_file(state_path), person_key(email), wait, on_wait) as mine:
        yield mine


@contextmanager
def acting_for(
    state_path: Path | None,
    email: str,
    *,
    what: str,
    wait: float = PERSON_WAIT_SECONDS,
    on_wait: Callable[[], None] = _nothing,
) -> Iterator[None]:
    """:func:`person`, or :class:`Busy` (nothing done) when it stays taken."""
    with person(state_path, email, wait=wait, on_wait=on_wait) as mine:
        if not mine:
            raise Busy(
                f"{what}: another process (a fulfilment, a reconciliation remedy or a leaver) "
                f"has been acting for {email} for over {wait:.0f} seconds; run it again once "
                "that has finished"
            )
        yield
