"""``hostsim demo`` runs the whole lifecycle with no credentials and no network."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def test_demo_walks_the_lifecycle_without_credentials(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "hostsim"), "demo"],
        env={
            "PATH": "/usr/bin:/bin",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "error" not in out.lower()
    for expected in (
        "create alice@example.com",
        "rename user  alice@example.com -> alice.liddell@example.com",
        "delete login profile",
        "remove MFA devices",
        "(0 users)",
    ):
        assert expected in out, expected
    assert re.search(r"alice\.liddell@example\.com +reports-read +direct", out)
    # the directly granted policy survives the group revocation
    after_revoke = out.split("Revoke the group")[1].split("Revoke the direct policy")[0]
    assert "group:developers" not in after_revoke.split("$ hostsim fetch policy-access")[1]
