"""A one-line progress indicator for long runs, on stderr and only on a terminal.

A fetch of a large account or an import of thousands of joiners runs for a while; an operator
at a terminal wants to see it move. Anything else reading stderr (a log collector, a test, a
pipe) must get no carriage returns and no noise, so the indicator is silent unless its stream
is a TTY (or it is forced on, as tests do). It redraws at most every ``interval`` seconds, so
it costs nothing measurable per row, and it never touches stdout, where the rows go.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Generator, Iterable
from types import TracebackType
from typing import Self, TextIO, TypeVar

T = TypeVar("T")


class Progress:
    """``label: done/total rows (pct%, rate/s)`` redrawn in place; ``label: done rows`` without
    a total. Use as a context manager, or call :meth:`close` to finish the line. Safe to advance
    from several threads (an import's workers)."""

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        unit: str = "rows",
        stream: TextIO | None = None,
        enabled: bool | None = None,
        interval: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.done = 0
        self._stream = sys.stderr if stream is None else stream
        self.enabled = _is_terminal(self._stream) if enabled is None else enabled
        self._interval = interval
        self._clock = clock
        self._started = clock()
        self._drawn_at: float | None = None
        self._width = 0
        self._closed = False
        self._lock = threading.Lock()

    def advance(self, count: int = 1) -> None:
        """Count ``count`` more items done; redraw if the last redraw is old enough."""
        with self._lock:
            self.done += count
            if not self.enabled or self._closed:
                return
            now = self._clock()
            if self._drawn_at is None or now - self._drawn_at >= self._interval:
                self._draw(now)

    def close(self) -> None:
        """Draw the final count and end the line (once)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self.enabled:
                self._draw(self._clock())
                self._stream.write("\n")
                self._stream.flush()

    def text(self, now: float | None = None) -> str:
        """The line as it would be drawn now."""
        elapsed = (self._clock() if now is None else now) - self._started
        rate = f", {self.done / elapsed:.0f}/s" if elapsed > 0 and self.done else ""
        if self.total:
            percent = 100 * self.done // self.total
            return f"{self.label}: {self.done}/{self.total} {self.unit} ({percent}%{rate})"
        return f"{self.label}: {self.done} {self.unit}" + (f" ({rate[2:]})" if rate else "")

    def _draw(self, now: float) -> None:
        line = self.text(now)
        # Pad over a longer previous line instead of relying on terminal escape codes.
        self._stream.write("\r" + line.ljust(self._width))
        self._stream.flush()
        self._width = len(line)
        self._drawn_at = now

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def counted(items: Iterable[T], progress: Progress) -> Generator[T, None, None]:
    """Pass ``items`` through unchanged, advancing ``progress`` for each; the line is finished
    when the items run out or the consumer stops early."""
    try:
        for item in items:
            progress.advance()
            yield item
    finally:
        progress.close()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or exotic stream
        return False
