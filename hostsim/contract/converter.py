"""The one cattrs converter that structures and validates every payload crossing the contract.

Strict on purpose: unknown keys are refused (a misspelled option must not be silently ignored),
and no value is coerced (``5`` is not a string, ``"abc"`` is not a list of three letters). A
failure becomes one :class:`~hostsim.contract.errors.InvalidInput` (or the error class the
caller asks for) whose message names each field by its path, as cattrs' ``transform_error``
writes it: ``invalid value for type, expected str @ $.email``.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, TypeVar, get_args

import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError, IterableValidationError

from hostsim.contract.errors import ConnectorError, InvalidInput

T = TypeVar("T")


def _strict_scalar(kind: type[Any]) -> Any:
    def structure(value: Any, type_: Any) -> Any:
        # bool is an int in Python; an int field must not accept True.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        # A StrEnum is a str, so its fields come here: a member by value, or ValueError.
        if isinstance(type_, type) and issubclass(type_, Enum):
            return type_(value)
        return value

    return structure


def _strict_tuple(value: Any, type_: Any) -> tuple[Any, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    (item_type, *_rest) = get_args(type_) or (Any,)
    return tuple(converter.structure(item, item_type) for item in value)


def _is_variadic_tuple(type_: Any) -> bool:
    return getattr(type_, "__origin__", None) is tuple


def make_converter() -> cattrs.Converter:
    """Build the strict converter; exposed so tests can check its rules in isolation."""
    made = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    for kind in (str, int, float, bool):
        made.register_structure_hook(kind, _strict_scalar(kind))
    made.register_structure_hook_func(_is_variadic_tuple, _strict_tuple)
    return made


converter = make_converter()


def describe(exc: Exception) -> str:
    """Turn a cattrs validation failure into one line: every problem with its ``@ $.path``."""
    if isinstance(exc, ClassValidationError | IterableValidationError | ForbiddenExtraKeysError):
        return "; ".join(cattrs.transform_error(exc))
    return str(exc)


def structure(
    data: Any, cls: type[T], *, error: type[ConnectorError] = InvalidInput, what: str = "payload"
) -> T:
    """Structure ``data`` into ``cls`` or raise ``error`` with a one-line, path-naming message."""
    try:
        return converter.structure(data, cls)
    except (cattrs.BaseValidationError, ForbiddenExtraKeysError, TypeError, ValueError) as exc:
        raise error(f"invalid {what}: {describe(exc)}") from exc


def unstructure(value: Any) -> Any:
    """Turn contract objects into plain JSON-able data (the inverse of :func:`structure`)."""
    return converter.unstructure(value)
