"""The config file: every way it can be unusable is a config error, and every value is bounded.

An unreadable file (a directory, a FIFO, no permission, not UTF-8, not TOML, missing) is the
operator's to fix: one line, exit 2, never an internal error. A setting is refused unless it
is one the connector can use as written: the ``user_name`` template names its fields plainly
(a format spec would silently turn every ``fmt...@`` email into the user ``fmt``), each number
has a range, and an error line shows at most the start of a value, however large.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hostsim.cli import main
from hostsim.contract.errors import ConfigurationError
from hostsim.core.settings import load_core_settings
from idhub_aws_plugin.settings import NUMBER_RANGES, SHOWN_CHARS, load_settings

HOSTSIM = str(Path(sys.executable).parent / "hostsim")
HUGE = 2_000_000


def _config_error(capsys: pytest.CaptureFixture[str], config: Path, *command: str) -> str:
    """Run ``hostsim COMMAND --config CONFIG`` in this process; its one error line (exit 2)."""
    capsys.readouterr()
    code = main([*(command or ("schema",)), "--config", str(config)])
    out, err = capsys.readouterr()
    assert code == 2, (code, out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hostsim: error: "), err
    return lines[0]


# --- item: an unusable file is a config error ---------------------------------------------


def test_a_directory_given_as_the_config_file_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _config_error(capsys, tmp_path)
    assert f"config file {tmp_path} is a directory" in line


def test_a_config_file_that_is_not_utf8_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "idhub.toml"
    path.write_bytes(b'[aws-iam]\nregion = "eu-west-1"\nuser_path = "/\xff/"\n')
    line = _config_error(capsys, path)
    assert f"config file {path} is not UTF-8 text" in line and "line 3" in line


def test_a_config_file_that_cannot_be_read_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "idhub.toml"
    path.write_text("[aws-iam]\n")
    real = Path.read_bytes

    def denied(self: Path) -> bytes:
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    # as root, chmod 000 would not stop the read; the OS's answer is what matters here
    monkeypatch.setattr(Path, "read_bytes", denied)
    line = _config_error(capsys, path)
    assert f"config file {path} cannot be read: permission denied" in line


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('[aws-iam]\nregion = "x"\nuser_name = \n', "is not valid TOML"),
        ("[aws-iam]\nmax_attempts = " + "9" * 5000 + "\n", "is not valid TOML"),
        ("[aws-iam]\nregion = " + "[" * 50_000 + "]" * 50_000 + "\n", "nests"),
    ],
    ids=["syntax", "5000-digit-integer", "deep-nesting"],
)
def test_a_file_tomllib_cannot_load_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, fragment: str
) -> None:
    path = tmp_path / "idhub.toml"
    path.write_text(text)
    line = _config_error(capsys, path)
    assert f"config file {path}" in line and fragment in line


def test_a_missing_config_file_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _config_error(capsys, tmp_path / "absent.toml")
    assert "does not exist" in line


def test_a_fifo_as_config_file_is_refused_instead_of_waiting_forever(tmp_path: Path) -> None:
    fifo = tmp_path / "idhub.toml"
    os.mkfifo(fifo)
    started = time.monotonic()
    done = subprocess.run(
        [HOSTSIM, "schema", "--config", str(fifo)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "is not a regular file" in done.stderr
    assert time.monotonic() - started < 30


# --- item: the user_name template names its fields plainly ---------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "{email:.3}",  # fmt@example.com -> "fmt", and so for everyone starting with fmt
        "{email!r:>999999999}",  # minutes and gigabytes per name
        "{email!s}",
        "{local_part:>10}",
        "{email:{domain}}",
        "{email}{}",
        "{email}{0}",
        "{email.__class__}",
        "{email[0]}",
        "x" * 64 + "{email}",
    ],
)
def test_a_template_with_anything_but_plain_fields_is_refused(template: str) -> None:
    started = time.monotonic()
    with pytest.raises(ConfigurationError, match=r"@ \$\.user_name"):
        load_settings({"user_name": template})
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    "template", ["{email}", "{local_part}", "ext-{local_part}", "{local_part}.{domain}"]
)
def test_plain_templates_are_accepted(template: str) -> None:
    assert load_settings({"user_name": template}).user_name == template


# --- item: every number has a range ------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"max_attempts": 21}, "must be at most 20 @ $.max_attempts"),
        ({"max_attempts": 10**30}, "must be at most 20 @ $.max_attempts"),
        ({"max_attempts": -5}, "must be at least 1 @ $.max_attempts"),
        (
            {
                "assume_role": {
                    "role_arn": "arn:aws:iam::123456789012:role/r",
                    "duration_seconds": 5,
                }
            },
            "must be at least 900 @ $.assume_role.duration_seconds",
        ),
        (
            {
                "assume_role": {
                    "role_arn": "arn:aws:iam::123456789012:role/r",
                    "duration_seconds": 10**12,
                }
            },
            "must be at most 43200 @ $.assume_role.duration_seconds",
        ),
    ],
)
def test_connector_numbers_out_of_range_are_refused(raw: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(raw)
    assert fragment in caught.value.message


def test_connector_numbers_at_their_bounds_are_accepted() -> None:
    low, high = NUMBER_RANGES["$.max_attempts"]
    assert load_settings({"max_attempts": low}).max_attempts == low
    assert load_settings({"max_attempts": high}).max_attempts == high


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"stale_days": 3651}, "stale_days: expected 0 to 3650"),
        ({"stale_days": 10**40}, "stale_days: expected 0 to 3650"),
        ({"deletion_threshold": 101}, "deletion_threshold: expected 0 to 100"),
    ],
)
def test_idhub_numbers_out_of_range_are_refused(raw: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_core_settings(raw)
    assert fragment in caught.value.message
    assert len(caught.value.message) < 100


def test_idhub_numbers_at_their_bounds_are_accepted() -> None:
    settings = load_core_settings({"stale_days": 3650, "deletion_threshold": 0})
    assert (settings.stale_days, settings.deletion_threshold) == (3650, 0)


# --- item: an error line shows the start of a value, not all of it --------------------------


@pytest.mark.parametrize(
    ("text", "command"),
    [
        (f'[aws-iam]\nuser_name = "{{email}}{{{"y" * HUGE}"\n', "schema"),
        (f'[aws-iam]\nuser_path = "/{"p" * HUGE}/"\n', "schema"),
        (f'[aws-iam.assume_role]\nrole_arn = "{"r" * HUGE}"\n', "schema"),
        (f'[aws-iam.grantable_policies]\nallow = ["{"a" * HUGE}"]\n', "schema"),
        (f"[aws-iam]\n{'k' * HUGE} = 1\n", "schema"),
        (f'[idhub]\ndefault_approval = ["{"s" * HUGE}"]\n', "identity list"),
    ],
    ids=["template", "path", "role-arn", "pattern", "unknown-key", "idhub-chain"],
)
def test_a_huge_value_is_cut_in_the_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, command: str
) -> None:
    path = tmp_path / "idhub.toml"
    path.write_text(text)
    arguments = command.split()
    if arguments[0] == "identity":
        arguments += ["--state", str(tmp_path / "state.sqlite3"), "--as", "a@example.com"]
    line = _config_error(capsys, path, *arguments)
    assert len(line) < 600 + len(str(path)), len(line)
    assert "…" in line
    assert not re.search(rf"([a-z])\1{{{SHOWN_CHARS}}}", line.replace(str(path), "")), line


def test_a_short_value_is_shown_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "idhub.toml"
    value = "r" * SHOWN_CHARS
    path.write_text(f'[aws-iam.assume_role]\nrole_arn = "{value}"\n')
    line = _config_error(capsys, path)
    assert f"'{value}' is not an IAM role ARN" in line and "…" not in line
