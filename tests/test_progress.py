"""The progress line: on a terminal's stderr only, redrawn sparingly, finished once."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from seeding import group

from hostsim.cli import main
from hostsim.embedded_aws import EmbeddedAWS
from hostsim.progress import Progress, counted


class Terminal(io.StringIO):
    """A stream that says it is a TTY."""

    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_silent_when_the_stream_is_not_a_terminal() -> None:
    stream = io.StringIO()
    with Progress("import", 3, stream=stream) as progress:
        for _ in range(3):
            progress.advance()
    assert progress.done == 3
    assert not progress.enabled
    assert stream.getvalue() == ""


def test_on_a_terminal_it_redraws_one_line_in_place_and_ends_it() -> None:
    stream, clock = Terminal(), Clock()
    progress = Progress("import", 4, stream=stream, interval=1.0, clock=clock)
    assert progress.enabled
    clock.now = 0.5
    progress.advance()  # first draw
    progress.advance()  # too soon to redraw
    clock.now = 2.0
    progress.advance()  # redrawn
    progress.advance()
    progress.close()
    progress.close()  # once only
    frames = stream.getvalue().split("\r")[1:]
    assert frames[0] == "import: 1/4 rows (25%, 2/s)"
    assert frames[1] == "import: 3/4 rows (75%, 2/s)"
    assert frames[2] == "import: 4/4 rows (100%, 2/s)\n"
    assert len(frames) == 3


def test_without_a_total_it_counts_rows() -> None:
    stream, clock = Terminal(), Clock()
    with Progress("fetch users", stream=stream, clock=clock) as progress:
        clock.now = 1.0
        progress.advance(250)
    assert stream.getvalue().split("\r")[-1] == "fetch users: 250 rows (250/s)\n"


def test_a_shorter_line_blanks_out_the_longer_one_before_it() -> None:
    stream, clock = Terminal(), Clock()
    progress = Progress("x", stream=stream, interval=0, clock=clock)
    clock.now = 1.0
    progress.advance(1000)  # "x: 1000 rows (1000/s)"
    clock.now = 1000.0
    progress.advance()  # "x: 1001 rows (1/s)", padded to the width of the first
    first, second = stream.getvalue().split("\r")[1:]
    assert len(second) == len(first)


def test_counted_passes_items_through_and_finishes_the_line_even_when_stopped_early() -> None:
    stream = Terminal()
    progress = Progress("fetch", stream=stream)
    items = counted(iter(range(10)), progress)
    assert [next(items) for _ in range(3)] == [0, 1, 2]
    items.close()  # the consumer stops early (a broken pipe, say)
    assert progress.done == 3
    assert stream.getvalue().endswith("\n")
    assert list(counted([1, 2], Progress("x", stream=io.StringIO()))) == [1, 2]


def test_threads_may_advance_it_together() -> None:
    progress = Progress("import", 8000, stream=Terminal(), interval=0)

    def work() -> None:
        for _ in range(1000):
            progress.advance()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert progress.done == 8000


# --- in the CLI -----------------------------------------------------------------------------


def test_fetch_shows_progress_on_a_terminal_only(
    aws_env: EmbeddedAWS, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    iam = aws_env.iam_client()
    for name in ("a", "b", "c"):
        iam.create_user(UserName=f"{name}@example.com")
    assert main(["fetch", "users", "--jsonl"]) == 0
    assert capsys.readouterr().err == ""

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["fetch", "users", "--jsonl"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert terminal.getvalue().rstrip("\n").split("\r")[-1].startswith("fetch users: 3 rows")


def test_import_shows_rows_done_out_of_the_total_on_a_terminal(
    aws_env: EmbeddedAWS,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    group(aws_env.iam_client(), "developers")
    path = tmp_path / "joiners.csv"
    rows = "".join(f"j{i}@example.com,,,,group:developers\n" for i in range(5))
    path.write_text("email,first_name,last_name,display_name,grants\n" + rows)
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["import", str(path), "--workers", "2"]) == 0
    lines = terminal.getvalue().split("\n")[:-1]
    assert lines[-1].split("\r")[-1].startswith("import: 5/5 rows (100%")
    assert lines[0].split("\r")[-1].startswith("validate: 5/5 rows (100%")
    assert "5 created" in capsys.readouterr().out
