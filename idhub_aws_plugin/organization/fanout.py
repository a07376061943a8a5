"""Work on every account of an organization at once, a bounded number at a time.

Each account's outcome comes back in the order the accounts were given, as soon as that one
is done (the first account's rows are out while the last is still being read); a failure of
the host's hierarchy is that account's outcome, never the whole run's. Stopping early cancels
the accounts not yet started.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from hostsim.contract import ConnectorError

Item = TypeVar("Item")
Result = TypeVar("Result")


def one_line(error: ConnectorError) -> str:
    """An error's message on one line (a reason shown beside an account id)."""
    return " ".join(str(error).split()) or type(error).__name__


def fan_out(
    items: Sequence[Item], work: Callable[[Item], Result], max_workers: int
) -> Iterator[tuple[Item, Result | ConnectorError]]:
    """``(item, work(item))`` for every item, in order; ``work``'s ConnectorError is its
    outcome. At most ``max_workers`` items are worked on at a time."""
    if not items:
        return
    executor = ThreadPoolExecutor(
        max_workers=max(1, min(max_workers, len(items))), thread_name_prefix="idhub-account"
    )
    try:
        futures = [executor.submit(_outcome, work, item) for item in items]
        for item, future in zip(items, futures, strict=True):
            yield item, future.result()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _outcome(work: Callable[[Item], Result], item: Item) -> Result | ConnectorError:
    try:
        return work(item)
    except ConnectorError as error:
        return error
