"""Secrets never reach output: every byte the CLI writes passes through a redactor.

The code is written not to print credentials in the first place; this is the second line. It
knows the secret values in force (AWS keys and session tokens from the environment, and any
setting whose name says it is a secret) and replaces each occurrence with ``****`` in standard
output, standard error and log records, including ``--debug`` tracebacks.

A secret is not always written as it is: JSON escapes ``"`` and ``\\`` (and, by default, every
non-ASCII character as ``\\uXXXX``), ``repr`` escapes quotes and control characters, and a URL
(an access log's request line, a query string, a form body) percent-encodes it, with ``+`` for
a space. Each of those forms, and any mix of them within one secret, is masked too.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TextIO

MASK = "****"
#: Environment variables whose values are credentials.
SECRET_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "IDHUB_SCIM_TOKEN",
    "IDHUB_SCIM_PASSWORD",
)
#: Setting names whose values are treated as secrets wherever they appear in a config file.
SECRET_SETTING = re.compile(r"secret|token|password|passphrase|external_id|private_key", re.I)
#: Shorter values are too likely to be ordinary words to mask everywhere.
MIN_SECRET_LENGTH = 6


#: The characters without which a text can hold a secret only as it is (no escape, no
#: percent-encoding, no ``+`` for a space): the costly pattern runs only on texts with one.
_ENCODING_MARKS = ("\\", "%", "+")


class Redactor:
    """Replaces known secret values in text, written plainly or in an encoded form."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._encoded: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        if len(secret) >= MIN_SECRET_LENGTH and secret not in self._secrets:
            self._secrets.add(secret)
            self._encoded = None  # rebuilt with the new secret on the next use

    def __call__(self, text: str) -> str:
        # longest first, so a secret containing another is masked whole
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, MASK)
        if self._secrets and any(mark in text for mark in _ENCODING_MARKS):
            text = self._encoded_pattern().sub(MASK, text)
        return text

    def _encoded_pattern(self) -> re.Pattern[str]:
        if self._encoded is None:
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._encoded = re.compile("|".join(encoded_forms(secret) for secret in ordered))
        return self._encoded

    def data(self, value: Any) -> Any:
        """Plain JSON-able data with every string, keys included, masked. Masking the data
        rather than its JSON text also catches a secret JSON would escape (quotes, ``\\``)."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, Mapping):
            return {self(str(key)): self.data(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(item) for item in value]
        return value

    def add_settings(self, settings: Mapping[str, Any]) -> None:
        """Every string under a key that names a secret, at any depth of the config."""
        for key, value in settings.items():
            if isinstance(value, Mapping):
                self.add_settings(value)
            elif isinstance(value, str) and SECRET_SETTING.search(key):
                self.add(value)


def encoded_forms(secret: str) -> str:
    """A pattern matching ``secret`` with each character as itself or in any of its encoded
    forms (see the module's docstring), also once more JSON-escaped (a ``repr`` inside JSON
    output, as an error message in ``--json`` writes it)."""
    return "".join(_character_pattern(char) for char in secret)


def _character_pattern(char: str) -> str:
    forms = _character_forms(char)
    forms |= {json.dumps(form, ensure_ascii=False)[1:-1] for form in forms}
    return "(?:" + "|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True)) + ")"


def _character_forms(char: str) -> set[str]:
    """``char`` as itself, percent-encoded (UTF-8), as JSON and ``repr`` escape it, as
    ``\\uXXXX`` and ``\\xNN``; hex digits in both cases, as encoders differ."""
    units = char.encode("utf-16-be")
    code_units = [int.from_bytes(units[i : i + 2], "big") for i in range(0, len(units), 2)]
    forms = {
        char,
        json.dumps(char)[1:-1],
        json.dumps(char, ensure_ascii=False)[1:-1],
        repr(char)[1:-1],
    }
    for case in (str.lower, str.upper):
        forms.add(case("".join(f"%{byte:02x}" for byte in char.encode("utf-8"))))
        forms.add("".join(f"\\u{case(f'{unit:04x}')}" for unit in code_units))
        if ord(char) < 0x100:
            forms.add(f"\\x{case(f'{ord(char):02x}')}")
    if char == " ":
        forms.add("+")
    if char in "'\"/":
        forms.add("\\" + char)  # \/ in JSON, \' and \" in repr
    return forms


def from_environment(environ: Mapping[str, str]) -> Redactor:
    return Redactor(environ[name] for name in SECRET_VARIABLES if environ.get(name))


class RedactingStream:
    """A text stream that masks secrets before writing to the stream it wraps."""

    def __init__(self, stream: TextIO, redact: Redactor) -> None:
        self._stream = stream
        self._redact = redact

    def write(self, text: str) -> int:
        self._stream.write(self._redact(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class RedactingFilter(logging.Filter):
    """Masks secrets in a log record's final message (arguments and traceback included)."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redact(record.getMessage())
        record.args = None
        if record.exc_info:
            formatter = logging.Formatter()
            record.exc_text = self._redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        return True


@contextmanager
def redacted_output(redact: Redactor) -> Iterator[None]:
    """Route stdout, stderr and the root logger's handlers through ``redact`` for the body,
    then restore them (the CLI may run in-process, as the tests do)."""
    saved = sys.stdout, sys.stderr
    redacting = RedactingFilter(redact)
    handlers = list(logging.getLogger().handlers)
    sys.stdout = RedactingStream(sys.stdout, redact)
    sys.stderr = RedactingStream(sys.stderr, redact)
    for handler in handlers:
        handler.addFilter(redacting)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
        for handler in handlers:
            handler.removeFilter(redacting)
