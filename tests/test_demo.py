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
    # the demo's only errors are the two it shows on purpose, in its organization part
    assert "error" not in out.split("Part three")[0].lower()
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
    # part two: IDHub's side — a request through two approvals into AWS, then reconciliation
    idhub = out.split("Part two")[1]
    assert "waiting for manager approval (grace@example.com)" in idhub
    assert "waiting for owner approval (owen@example.com)" in idhub
    assert "request 1: grant group:developers for dave@example.com: complete" in idhub
    assert re.search(r"done +create user +dave@example\.com", idhub)
    caught = idhub.split("Reconciliation catches both")[1].split("Remediate")[0]
    assert re.search(r"granted-out-of-band +group:auditors .* report", caught)
    assert re.search(r"attribute-drift +display_name +Dave Bowman +D\. B\.", caught)
    fixed = idhub.split("Remediate")[1].split("Dave leaves the team")[0]
    assert re.search(r"group:auditors .* revoke +done", fixed)
    survives = idhub.split("The directly requested policy survives")[1].split("===")[0]
    assert re.search(r"policy:reports-read +direct +2", survives)
    assert "group:developers" not in survives
    assert "reconciliation run 3: complete (no drift)" in idhub
    # part three: an organization of three accounts
    organization = out.split("Part three")[1]
    accounts = organization.split("$ hostsim accounts")[1].split("===")[0]
    for name in ("dev", "staging", "prod", r"\w+ \(management\)"):
        assert re.search(rf"\d{{12}} +{name} +yes ", accounts), name
    everyone = organization.split("each row naming its account")[1].split("===")[0]
    assert re.search(r"\d{12} +contractor@example\.com", everyone)
    refused = organization.split("refused, nothing sent")[1].split("===")[0]
    assert "choose one with --account ID" in refused
    made = organization.split("The same joiner in dev")[1].split("===")[0]
    assert re.search(r"done +grant +group:developers", made)
    alone = organization.split("prod fails alone")[1]
    assert re.search(r"\d{12} +erin@example\.com", alone)
    assert re.search(r"could not read 1 account\(s\): \d{12} \(STS AssumeRole refused", alone)
