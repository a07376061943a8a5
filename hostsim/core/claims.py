"""Which process is carrying out which request, so two never fulfil the same one at once.

A request left ``approved`` by a crashed run must be resumed by the next command, but the same
status also describes a request another process is fulfilling right now. A claim tells them
apart: the process fulfilling a request holds an exclusive POSIX record lock on one byte (at
the request's id) of a file next to the state file. The operating system releases the lock
when that process ends, however it ends, so a crashed run's requests are free to resume and a
live one's are skipped. No row is written, so nothing is left to clean up after a crash.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CLAIMS_SUFFIX = ".claims"


def claims_file(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + CLAIMS_SUFFIX)


@contextmanager
def claim(state_path: Path | None, request_id: int) -> Iterator[bool]:
    """Hold the request's claim for the body: yields True, or False (holding nothing) when a
    live process has it. A state without a file (``None``) has one process: always True."""
    if state_path is None:
        yield True
        return
    with claims_file(state_path).open("a+b") as handle:
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, request_id)
        except OSError:  # held by another process
            yield False
            return
        try:
            yield True
        finally:
            fcntl.lockf(handle, fcntl.LOCK_UN, 1, request_id)
