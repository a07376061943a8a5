"""``hostsim demo`` runs the whole lifecycle with no credentials and no network."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path


def demo(*args: str) -> str:
    """``hostsim demo`` in a fresh process with no AWS configuration at all; its output."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "hostsim"), "demo", *args],
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
    return done.stdout


def section(text: str, title: str) -> str:
    """The output of the step whose title contains ``title``, up to the next step."""
    return text.split(title, 1)[1].split("\n=== ", 1)[0]


def check_identity_center_part(out: str) -> None:
    """Part four: a joiner planned, then made with a group and a polled assignment; both
    provenances reconciled; the group revoked and the direct assignment kept; the leaver."""
    part = out.split("Part four: IAM Identity Center")[1]
    assert "error" not in part.lower()
    planned = section(part, "Plan the joiner first")
    assert "plan, nothing changed: would change" in planned
    assert re.search(r"would create +create user +ada@example\.com", planned)
    assert re.search(r"would create +grant +group:developers", planned)
    assert re.search(r"would create +grant +assignment:ReadOnly@\d{12} +asynchronous", planned)
    made = section(part, "Joiner: ada")
    assert re.search(r"done +create user +ada@example\.com", made)
    # asynchronous in AWS: the create polled the request until it succeeded
    assert re.search(r"done +grant +assignment:ReadOnly@\d{12} +SUCCEEDED after [1-9]", made)
    held = section(part, "ReadOnly held twice")
    assert re.search(r"^ada@example\.com .* ReadOnly .* \d{12} +direct$", held, re.M)
    assert re.search(r"^ada@example\.com .* ReadOnly .* \d{12} +group:developers$", held, re.M)
    assert "(2 assignments)" in held
    assert re.search(r"done +revoke +group:developers", section(part, "Revoke the group"))
    survives = section(part, "ReadOnly is still held")
    assert re.search(r"^ada@example\.com .* ReadOnly .* \d{12} +direct$", survives, re.M)
    assert "group:developers" not in survives
    gone = section(part, "Leaver: delete ada")
    assert re.search(r"done +delete assignment +assignment:ReadOnly@\d{12} +SUCCEEDED", gone)
    assert re.search(r"done +delete user +ada@example\.com", gone)
    assert "remove from group" not in gone  # the revoke took the membership already
    assert "(0 users)" in section(part, "no users left")
    assert re.search(r"of them IAM, [1-9]\d* Identity Center\) reached", part)


def test_demo_walks_the_lifecycle_without_credentials() -> None:
    out = demo()
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
    # part four: IAM Identity Center, after the organization, on the same embedded AWS
    assert out.index("Part three") < out.index("Part four")
    check_identity_center_part(out)


def test_demo_of_identity_center_runs_its_part_alone() -> None:
    out = demo("--connector", "aws-identity-center")
    assert "part four alone" in out
    assert "Part two" not in out and "Part three" not in out
    assert "(0 of them IAM," in out  # IAM's parts did not run
    check_identity_center_part(out)
