"""The host's config file: one TOML table of settings per connector type.

```toml
[aws-iam]
region = "us-east-1"

[aws-iam.attributes.department]
tag = "Department"
```

The host only reads the file and picks the connector's table; the connector validates its own
settings (and names the offending key by its path, ``@ $.attributes['department'].tag``). An
operator fixing the file also wants the line: :func:`located_errors` adds it to every
configuration error that names a key, finding the key in the file with :class:`KeyLines`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hostsim.contract.errors import ConfigurationError

#: A key path as cattrs' error messages and the connector's own checks write it.
_PATH = re.compile(r"\$(?:\.[A-Za-z_][\w-]*|\['(?:[^'\\]|\\.)*'\]|\[\d+\])*")
_PATH_PART = re.compile(r"\.([A-Za-z_][\w-]*)|\['((?:[^'\\]|\\.)*)'\]|\[(\d+)\]")
_EXTRA_KEYS = re.compile(r"extra fields found \(([^)]*)\)")
_UNKNOWN_TABLES = re.compile(r"unknown connector\(s\) ([^(]*)")
_FIELD_PREFIX = re.compile(r"^(?:invalid [\w-]+ settings: )?([a-z_][a-z0-9_]*): ")
#: One key of a TOML key (bare, "basic" or 'literal'), then a dot or the end.
_TOML_KEY = re.compile(r"""\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([A-Za-z0-9_-]+))\s*(\.|$)""")


def read_config(path: Path | None) -> dict[str, Any]:
    """The whole file as a dict; an absent ``path`` means no settings at all."""
    if path is None:
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigurationError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"config file {path} is not valid TOML: {exc}") from None


def connector_settings(config: dict[str, Any], connector: str, known: set[str]) -> dict[str, Any]:
    """The table for ``connector``. A table for a connector that is not installed is refused,
    since it most often is a misspelled name whose settings would otherwise be ignored."""
    unknown = sorted(set(config) - known)
    if unknown:
        raise ConfigurationError(
            f"config has a table for unknown connector(s) {', '.join(unknown)} "
            f"(installed: {', '.join(sorted(known))})"
        )
    table = config.get(connector, {})
    if not isinstance(table, dict):
        raise ConfigurationError(f"config key {connector!r} must be a table")
    return table


# --- where a key is in the file -----------------------------------------------------------


class KeyLines:
    """The line of every key and table header of a TOML file, by full key path.

    tomllib gives values but no positions, so this reads the lines itself: headers
    (``[a.b]``, ``[[a]]``), ``key = value`` with dotted and quoted keys, the keys of a one-line
    inline table, and it skips the inside of multi-line strings and arrays. It only has to find
    keys that tomllib has already parsed, so it never judges the syntax.
    """

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple[str, ...], int] = {}
        self._scan(text.splitlines())

    @classmethod
    def of_file(cls, path: Path) -> KeyLines | None:
        try:
            return cls(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            return None

    def line_of(self, key: tuple[str, ...]) -> int | None:
        """The line defining ``key``, else that of its nearest enclosing table or key."""
        for length in range(len(key), 0, -1):
            if key[:length] in self.lines:
                return self.lines[key[:length]]
        return None

    def _add(self, key: tuple[str, ...], number: int) -> None:
        for length in range(1, len(key) + 1):
            self.lines.setdefault(key[:length], number)

    def _scan(self, lines: list[str]) -> None:
        table: tuple[str, ...] = ()
        closing: str | None = None  # what ends the multi-line value being skipped
        depth = 0
        for number, raw in enumerate(lines, start=1):
            if closing is not None:
                closing = None if closing in raw else closing
                continue
            if depth > 0:
                depth += _bracket_balance(raw)
                continue
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("["):
                table = _parse_key(line.strip("[]").split("]")[0]) or table
                self._add(table, number)
                continue
            name, sep, value = line.partition("=")
            key = _parse_key(name)
            if not sep or key is None:
                continue
            self._add((*table, *key), number)
            self._add_inline((*table, *key), line, number)
            closing, depth = _multiline_start(value.strip())

    def _add_inline(self, key: tuple[str, ...], line: str, number: int) -> None:
        """Nested keys of a one-line inline table (``a = { tag = "X" }``)."""
        try:
            parsed = tomllib.loads(line)
        except tomllib.TOMLDecodeError:
            return
        value: Any = parsed
        for part in _parse_key(line.partition("=")[0]) or ():
            value = value.get(part, {}) if isinstance(value, dict) else {}
        for sub in _nested_keys(value):
            self._add((*key, *sub), number)


def _parse_key(text: str) -> tuple[str, ...] | None:
    """A (dotted, possibly quoted) TOML key as its parts, or None when it is not one."""
    parts: list[str] = []
    position = 0
    while position < len(text):
        found = _TOML_KEY.match(text, position)
        if found is None or found.end() == position:
            return None
        parts.append(next(group for group in found.groups()[:3] if group is not None))
        position = found.end()
        if not found[4]:
            break
    return tuple(parts) if parts and position >= len(text.rstrip()) else None


def _nested_keys(value: Any) -> Iterator[tuple[str, ...]]:
    if isinstance(value, dict):
        for name, item in value.items():
            yield (name,)
            for sub in _nested_keys(item):
                yield (name, *sub)


def _multiline_start(value: str) -> tuple[str | None, int]:
    """Whether a value opens a multi-line string (its closing quotes) or array (its depth)."""
    for quotes in ('"""', "'''"):
        if value.startswith(quotes) and quotes not in value[3:]:
            return quotes, 0
    return None, max(0, _bracket_balance(value)) if value.startswith("[") else 0


def _bracket_balance(text: str) -> int:
    text = re.sub(r"\"(?:[^\"\\]|\\.)*\"|'[^']*'|#.*$", "", text)
    return text.count("[") - text.count("]")


# --- adding the line to an error ----------------------------------------------------------


def key_paths(problem: str) -> list[tuple[str, ...]]:
    """The keys (relative to the connector's table) that one problem of a message names."""
    paths = [_parse_path(found[0]) for found in _PATH.finditer(problem)]
    extra = _EXTRA_KEYS.search(problem)
    if extra:
        base = paths[-1] if paths else ()
        names = [name.strip() for name in extra[1].split(",")]
        return [(*base, name) for name in names if name]
    if not paths and (field := _FIELD_PREFIX.match(problem)):
        paths = [(field[1],)]
    return paths


def _parse_path(text: str) -> tuple[str, ...]:
    return tuple(
        dotted or quoted.replace("\\'", "'") or index
        for dotted, quoted, index in _PATH_PART.findall(text)
    )


def locate(error: ConfigurationError, path: Path | None, table: str | None) -> ConfigurationError:
    """``error`` with ``(FILE line N)`` after each problem whose key is found in the file.

    ``table`` is the connector's table the key paths are relative to; None tries each table.
    Returns ``error`` itself when there is nothing to add.
    """
    keys = KeyLines.of_file(path) if path is not None else None
    if keys is None or path is None:
        return error
    problems = error.message.split("; ")
    located = [_located(problem, keys, path, table) for problem in problems]
    if located == problems:
        return error
    return ConfigurationError("; ".join(located), steps=error.steps)


def _located(problem: str, keys: KeyLines, path: Path, table: str | None) -> str:
    unknown = _UNKNOWN_TABLES.search(problem)
    paths = [(name.strip(),) for name in unknown[1].split(",")] if unknown else key_paths(problem)
    tables = [()] if unknown else [(table,)] if table else sorted({key[:1] for key in keys.lines})
    numbers = sorted(
        {
            number
            for relative in paths
            for prefix in tables
            if (number := _exact_or_enclosing(keys, (*prefix, *relative), prefix)) is not None
        }
    )
    if not numbers:
        return problem
    where = ", ".join(str(number) for number in numbers)
    return f"{problem} ({path} line{'s' if len(numbers) > 1 else ''} {where})"


def _exact_or_enclosing(keys: KeyLines, key: tuple[str, ...], table: tuple[str, ...]) -> int | None:
    """The line of ``key`` or of the closest key above it, but never outside ``table``."""
    number = keys.line_of(key)
    inside = any(key[:length] in keys.lines for length in range(len(table) + 1, len(key) + 1))
    return number if inside or not table else None


@contextmanager
def located_errors(path: Path | None, table: str | None = None) -> Iterator[None]:
    """Add the file's line to a ConfigurationError raised in the body (see :func:`locate`)."""
    try:
        yield
    except ConfigurationError as exc:
        located = locate(exc, path, table)
        if located is exc:
            raise
        raise located from exc
