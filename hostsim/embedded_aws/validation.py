"""Stateless parameter checks that real IAM makes and moto skips.

These are the constraints of IAM's API model (lengths, patterns, list sizes) plus the few
input rules that need no state (reserved tag prefix, duplicate keys). Real IAM checks them
before it looks at any user or group, so they run first and raise before anything else.

Error codes follow what IAM really returns: constraint violations are ``ValidationError``
("1 validation error detected: Value 'a b' at 'userName' failed to satisfy constraint: ...");
business-rule refusals (``aws:`` prefix, duplicate keys) are ``InvalidInput``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from hostsim.embedded_aws.iam_errors import IAMError, invalid_input, validation_error

#: IAM user, group and policy names; Java's ``\\w`` is ASCII-only, so no accented letters.
NAME_PATTERN_TEXT = r"[\w+=,.@-]+"
_NAME_PATTERN = re.compile(NAME_PATTERN_TEXT, re.ASCII)

USER_NAME_MAX = 64
GROUP_NAME_MAX = 128
POLICY_NAME_MAX = 128

TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
#: Tags a single request may carry (the list constraint in the API model).
TAGS_PER_REQUEST_MAX = 50
_TAG_PATTERN_TEXT = r"[\p{L}\p{Z}\p{N}_.:/=+\-@]"
_TAG_EXTRA_CHARS = frozenset("_.:/=+-@")
_RESERVED_TAG_PREFIX = "aws:"


def check_name(value: str, member: str, max_length: int) -> None:
    """Refuse a user/group/policy name that breaks IAM's length or character rules.

    ``member`` is the parameter as IAM names it in messages (``userName``, ``newGroupName``).
    """
    if not value:
        raise _constraint(value, member, "Member must have length greater than or equal to 1")
    if len(value) > max_length:
        raise _constraint(
            value, member, f"Member must have length less than or equal to {max_length}"
        )
    if not _NAME_PATTERN.fullmatch(value):
        raise _constraint(
            value, member, f"Member must satisfy regular expression pattern: {NAME_PATTERN_TEXT}"
        )


def check_tags(tags: Sequence[dict[str, str]]) -> None:
    """Refuse a tag list IAM would refuse, in IAM's order: model constraints, then rules."""
    if len(tags) > TAGS_PER_REQUEST_MAX:
        raise validation_error(
            "Value at 'tags' failed to satisfy constraint: "
            f"Member must have length less than or equal to {TAGS_PER_REQUEST_MAX}"
        )
    for index, tag in enumerate(tags, start=1):
        check_tag_key(tag["Key"], f"tags.{index}.member.key")
        _check_tag_value(tag["Value"], f"tags.{index}.member.value")
    for tag in tags:
        check_not_reserved(tag["Key"])
    check_no_duplicate_keys([tag["Key"] for tag in tags])


def check_tag_key(key: str, member: str) -> None:
    """A tag key: 1-128 letters, digits, spaces or ``_.:/=+-@``."""
    if not 1 <= len(key) <= TAG_KEY_MAX:
        raise _constraint(key, member, f"Member must have length between 1 and {TAG_KEY_MAX}")
    _check_tag_characters(key, member, "+")


def check_not_reserved(key: str) -> None:
    """Keys starting with ``aws:`` (in any case) belong to AWS, not to callers."""
    if key.lower().startswith(_RESERVED_TAG_PREFIX):
        raise invalid_input(
            f"Tag key '{key}' is not valid: tag keys starting with 'aws:' are reserved for "
            "internal use."
        )


def check_no_duplicate_keys(keys: Sequence[str]) -> None:
    """IAM user tag keys are case-insensitive, so ``Dept`` and ``dept`` are the same key."""
    folded = [key.lower() for key in keys]
    if len(set(folded)) != len(folded):
        raise invalid_input(
            "Duplicate tag keys found. Please note that Tag keys are case insensitive."
        )


def _check_tag_value(value: str, member: str) -> None:
    if len(value) > TAG_VALUE_MAX:
        raise _constraint(
            value, member, f"Member must have length less than or equal to {TAG_VALUE_MAX}"
        )
    _check_tag_characters(value, member, "*")


def _check_tag_characters(text: str, member: str, quantifier: str) -> None:
    if all(_is_tag_character(ch) for ch in text):
        return
    raise _constraint(
        text,
        member,
        f"Member must satisfy regular expression pattern: {_TAG_PATTERN_TEXT}{quantifier}",
    )


def _constraint(value: str, member: str, constraint: str) -> IAMError:
    return validation_error(
        f"Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
    )


def _is_tag_character(ch: str) -> bool:
    """Java's ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]``: any letter, separator or number, plus a few."""
    return ch in _TAG_EXTRA_CHARS or unicodedata.category(ch)[0] in "LZN"
