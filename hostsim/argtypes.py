"""Value types for the command line's numbers: each names its range, so that a number out of it
is argparse's one-line usage error (exit 2) instead of a crash further in (SQLite stores no
integer past 2**63 - 1, a port stops at 65535) or a silently odd result (``--limit -5``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

#: The largest integer SQLite stores: ids and counts past it cannot name anything stored.
SQLITE_MAX = 2**63 - 1


def bounded(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type`` accepting the integers from ``low`` to ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text[:30]!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"expected an integer from {low} to {high:,}, got {text[:30]}"
            )
        return value

    parse.__name__ = "integer"  # argparse names the type in its messages
    return parse


#: A stored row's id (requests, runs).
ROW_ID = bounded(1, SQLITE_MAX)
#: How many rows to show.
LIMIT = bounded(1, 1_000_000)
#: A TCP port (0: the system picks a free one).
PORT = bounded(0, 65535)
