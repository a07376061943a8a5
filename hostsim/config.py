"""The host's config file: one TOML table of settings per connector type.

```toml
[aws-iam]
region = "us-east-1"

[aws-iam.attributes.department]
tag = "Department"
```

A top-level ``connector = "NAME"`` picks the type when ``--connector`` is not given. The host
only reads the file and picks the connector's table; the connector validates its own
settings (and names the offending key by its path, ``@ $.attributes['department'].tag``). An
operator fixing the file also wants the line: :func:`located_errors` adds it to every
configuration error that names a key, finding the key in the file with :class:`KeyLines`.
"""

from __future__ import annotations

import re
import stat
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
#: How much of one value a config error line shows, and how long one problem of it may be.
SHOWN_CHARS = 60
PROBLEM_CHARS = 400
#: A value quoted in a message (``'...'`` or ``"..."`` as repr writes it), not an apostrophe.
_QUOTED = re.compile(r"""(?<!\w)(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")""")


def read_config(path: Path | None) -> dict[str, Any]:
    """The whole file as a dict; an absent ``path`` means no settings at all.

    Every way the file can be unusable (missing, a directory or a device, unreadable, not
    UTF-8, not TOML) is the operator's to fix, so each is a one-line ConfigurationError (exit
    2), never an internal error.
    """
    if path is None:
        return {}
    text = _config_text(path)
    try:
        return tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, or an integer of more than 4300 digits
        raise ConfigurationError(f"config file {path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigurationError(f"config file {path} nests arrays or tables too deeply") from None


def _config_text(path: Path) -> str:
    """The file's text, refusing anything that is not a readable regular UTF-8 file (a FIFO
    or a device would block or never end, so only regular files are opened)."""
    try:
        kind = path.stat().st_mode
    except FileNotFoundError:
        raise ConfigurationError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigurationError(f"config file {path} cannot be read: {_reason(exc)}") from None
    if stat.S_ISDIR(kind):
        raise ConfigurationError(f"config file {path} is a directory, not a file")
    if not stat.S_ISREG(kind):
        raise ConfigurationError(f"config file {path} is not a regular file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"config file {path} cannot be read: {_reason(exc)}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigurationError(
            f"config file {path} is not UTF-8 text (byte {exc.start}, line {line})"
        ) from None


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


#: The top-level key that picks the connector type when ``--connector`` is not given.
CONNECTOR_KEY = "connector"


def chosen_connector(config: dict[str, Any]) -> str | None:
    """The type the file names with ``connector = "aws-identity-center"``, or None (the
    registry's default then, aws-iam). ``--connector`` wins over it."""
    chosen = config.get(CONNECTOR_KEY)
    if chosen is None or isinstance(chosen, str):
        return chosen
    raise ConfigurationError(f"config key {CONNECTOR_KEY!r} must be a connector type's name")


def connector_settings(config: dict[str, Any], connector: str, known: set[str]) -> dict[str, Any]:
    """The table for ``connector``. A table for a connector that is not installed is refused,
    since it most often is a misspelled name whose settings would otherwise be ignored."""
    unknown = sorted(set(config) - known - {CONNECTOR_KEY})
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
        """The keys of a regular UTF-8 file, else None (a FIFO would block the error line)."""
        try:
            if not path.is_file():
                return None
            return cls(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, RecursionError):
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
        except (ValueError, RecursionError):  # TOMLDecodeError, a 4300-digit integer, nesting
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
    """``error`` with ``(FILE line N)`` after each problem whose key is found in the file, and
    every value it echoes cut to :data:`SHOWN_CHARS` (see :func:`cut_values`).

    ``table`` is the connector's table the key paths are relative to; None tries each table.
    Returns ``error`` itself when there is nothing to add or cut.
    """
    keys = KeyLines.of_file(path) if path is not None else None
    problems = error.message.split("; ")
    located = [_located(problem, keys, path, table) for problem in problems]
    if located == problems:
        return error
    return ConfigurationError("; ".join(located), steps=error.steps)


def cut_values(problem: str) -> str:
    """``problem`` with each quoted value (and each unknown key name) longer than
    :data:`SHOWN_CHARS` cut to its start and ``…``, and the whole cut to
    :data:`PROBLEM_CHARS`: a multi-megabyte value in the file must not become a multi-megabyte
    error line."""

    def cut(found: re.Match[str]) -> str:
        quoted = found[0]
        if len(quoted) <= SHOWN_CHARS + 2:
            return quoted
        return f"{quoted[: SHOWN_CHARS + 1]}…{quoted[0]}"

    def cut_names(found: re.Match[str]) -> str:
        names = [_cut(name.strip()) for name in found[1].split(",")]
        return f"extra fields found ({', '.join(names)})"

    shortened = _EXTRA_KEYS.sub(cut_names, _QUOTED.sub(cut, problem))
    if len(shortened) > PROBLEM_CHARS:
        shortened = shortened[:PROBLEM_CHARS] + "…"
    return shortened


def _cut(text: str) -> str:
    return text if len(text) <= SHOWN_CHARS else f"{text[:SHOWN_CHARS]}…"


def _located(problem: str, keys: KeyLines | None, path: Path | None, table: str | None) -> str:
    shown = cut_values(problem)
    if keys is None or path is None:
        return shown
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
        return shown
    where = ", ".join(str(number) for number in numbers)
    return f"{shown} ({path} line{'s' if len(numbers) > 1 else ''} {where})"


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
