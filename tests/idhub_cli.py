"""Driving the IDHub side end to end: the installed ``hostsim`` command, one fresh process per
command (so every command reopens the state file, as after a restart), against the embedded
AWS over HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hostsim.embedded_aws import Call, EmbeddedAWS

HOSTSIM = str(Path(sys.executable).parent / "hostsim")


class IDHub:
    """``hostsim`` with one state file (and optionally a config file) against one embedded
    AWS. ``as_`` is the acting person (``--as``)."""

    def __init__(
        self,
        aws: EmbeddedAWS,
        state: Path,
        config: Path | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.aws = aws
        self.state = state
        self.config = config
        self.env = {"PATH": "/usr/bin:/bin", **aws.client_env(), **(env or {})}

    def command(self, *args: str, as_: str = "admin@example.com") -> list[str]:
        line = [HOSTSIM, *args, "--state", str(self.state), "--as", as_]
        if self.config is not None:
            line += ["--config", str(self.config)]
        return line

    def run(
        self, *args: str, as_: str = "admin@example.com", expect: int = 0
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            self.command(*args, as_=as_),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == expect, (args, done.returncode, done.stdout, done.stderr)
        return done

    def json(self, *args: str, as_: str = "admin@example.com", expect: int = 0) -> Any:
        return json.loads(self.run(*args, "--json", as_=as_, expect=expect).stdout)

    def popen(self, *args: str, as_: str = "admin@example.com") -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.command(*args, as_=as_),
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def people(self, *emails: str, manager: str | None = None) -> None:
        """Add identities (with ``manager`` when given; a manager must exist first)."""
        for email in emails:
            extra = ["--manager", manager] if manager else []
            self.run("identity", "add", email, *extra)


def killed_at_first(hub: IDHub, action: str, *args: str) -> None:
    """Run a command and SIGKILL it when the embedded AWS receives the connector's first
    ``action`` (before serving it: the server then serves it to a dead client), as a crash
    at exactly that point would."""
    target: list[int] = []

    def listener(call: Call) -> None:
        # Permanent for the session: inert once fired or once the command is over.
        if target and call.action == action and "idhub-aws-iam" in call.user_agent:
            with contextlib.suppress(ProcessLookupError):
                os.kill(target.pop(), signal.SIGKILL)

    hub.aws.listen(listener)
    process = hub.popen(*args)
    target.append(process.pid)
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        target.clear()
    assert process.returncode == -signal.SIGKILL, stderr


def email(person: str) -> str:
    return f"{person}@example.com"


def hub_for(aws: EmbeddedAWS, tmp_path: Path, config: str | None = None) -> IDHub:
    """``hostsim`` with a fresh state file and, when given, this config file's text."""
    path = None
    if config is not None:
        path = tmp_path / "hostsim.toml"
        path.write_text(config)
    return IDHub(aws, tmp_path / "state.sqlite3", config=path)


def people(hub: IDHub) -> dict[str, dict[str, Any]]:
    """``identity list`` by email: attributes, account name and missing_since."""
    return {row["email"]: row for row in hub.json("identity", "list")}


def wait_for(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll ``check`` (bounded): what the other process is doing is seen in the state file."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def finished(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=90)
    return process.returncode, stdout, stderr


def query(hub: IDHub, sql: str, *params: object) -> list[sqlite3.Row]:
    """Read the state file directly (WAL: never in the way of the processes writing it)."""
    with contextlib.closing(sqlite3.connect(hub.state)) as db:
        db.row_factory = sqlite3.Row
        return db.execute(sql, params).fetchall()


def left_at(hub: IDHub, email: str) -> str | None:
    (row,) = query(hub, "SELECT left_at FROM identities WHERE email = ?", email)
    value: str | None = row["left_at"]
    return value


def leave_while(hub: IDHub, other: subprocess.Popen[str], email: str) -> subprocess.Popen[str]:
    """Start ``identity remove EMAIL`` while ``other`` is mid-way through IAM, wait until the
    leave is recorded (the leaver's first step), then let IAM answer at full speed."""
    leaver = hub.popen("identity", "remove", email, "--json")
    wait_for(lambda: left_at(hub, email) is not None, "the leaver to record the leave")
    assert other.poll() is None, "the race was lost before it started: IAM was not slow enough"
    hub.aws.request_delay = 0.0
    return leaver


def waited_leave(leaver: subprocess.Popen[str]) -> tuple[dict[str, Any], str]:
    """A :func:`leave_while` leaver's JSON and stderr, once it ended well, having waited for
    the work in flight for its person (the race really happened)."""
    code, stdout, stderr = finished(leaver)
    assert code == 0, stderr
    left: dict[str, Any] = json.loads(stdout)
    assert left["waited"] is True
    return left, stderr
