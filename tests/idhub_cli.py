"""Driving the IDHub side end to end: the installed ``hostsim`` command, one fresh process per
command (so every command reopens the state file, as after a restart), against the embedded
AWS over HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
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
