"""IAM's input rules, checked before anything is sent that would change AWS.

IAM refuses a bad name or tag only at the call that writes it, which for a composite operation
can be halfway through. Checking here first means bad input changes nothing, and the caller gets
one line naming the field and the rule. Each ``*_problems`` function returns the list of broken
rules (empty when the value is fine) so that all problems of a request are reported at once.
"""

from __future__ import annotations

import re
import string
import unicodedata

from hostsim.contract import InvalidInput

# The patterns are used with fullmatch: with match, ``$`` would accept a trailing newline.
EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
EMAIL_MAX = 254
IAM_NAME = re.compile(r"^[\w+=,.@-]+$", re.ASCII)
USER_NAME_MAX = 64
GROUP_NAME_MAX = 128
POLICY_ARN = re.compile(
    r"^arn:aws(?:-cn|-us-gov)?:iam::(?:aws|\d{12}):policy/(?:[\x21-\x7e]+/)?[\w+=,.@-]{1,128}$",
    re.ASCII,
)
GROUP_ARN = re.compile(
    r"^arn:aws(?:-cn|-us-gov)?:iam::\d{12}:group/(?:[\x21-\x7e]+/)?[\w+=,.@-]{1,128}$", re.ASCII
)
IAM_PATH = re.compile(r"^/(?:[\x21-\x7e]*/)?$")
PATH_MAX = 512
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
TAG_LIMIT = 50
TAG_PUNCTUATION = frozenset("_.:/=+-@")
#: Tag keys under this prefix (any letter case) are the connector's own, e.g. the protection
#: tag ``idhub:protected``: no attribute may write them.
RESERVED_TAG_PREFIX = "idhub:"
TEMPLATE_FIELDS = frozenset({"email", "local_part", "domain"})


def require(problems: list[str]) -> None:
    """Raise one InvalidInput listing every problem, or return when there is none."""
    if problems:
        raise InvalidInput("; ".join(problems))


def email_problems(email: str, field: str = "email") -> list[str]:
    if len(email) > EMAIL_MAX:
        return [f"{field}: longer than {EMAIL_MAX} characters"]
    if not EMAIL.fullmatch(email):
        return [f"{field}: {email!r} is not an email address (expected local-part@domain.tld)"]
    return []


def user_name_problems(name: str, field: str = "user name") -> list[str]:
    """IAM user names: 1-64 characters of letters, digits and ``_+=,.@-``."""
    if not 1 <= len(name) <= USER_NAME_MAX:
        return [f"{field}: {name!r} must be 1-{USER_NAME_MAX} characters, has {len(name)}"]
    if not IAM_NAME.fullmatch(name):
        return [f"{field}: {name!r} may only contain letters, digits and _+=,.@-"]
    return []


def group_name_problems(name: str) -> list[str]:
    if not 1 <= len(name) <= GROUP_NAME_MAX or not IAM_NAME.fullmatch(name):
        return [
            f"group name {name!r} must be 1-{GROUP_NAME_MAX} characters of letters, digits "
            "and _+=,.@-"
        ]
    return []


def policy_arn_problems(arn: str, field: str = "policy") -> list[str]:
    if not POLICY_ARN.fullmatch(arn):
        return [
            f"{field}: {arn!r} is not a managed policy ARN "
            "(expected arn:aws:iam::ACCOUNT-or-aws:policy/[PATH/]NAME)"
        ]
    return []


def group_arn_problems(arn: str, field: str) -> list[str]:
    if not GROUP_ARN.fullmatch(arn):
        return [
            f"{field}: {arn!r} is not a group ARN (expected arn:aws:iam::ACCOUNT:group/[PATH/]NAME)"
        ]
    return []


def path_problems(path: str, field: str) -> list[str]:
    if len(path) > PATH_MAX or not IAM_PATH.fullmatch(path):
        return [f"{field}: {path!r} is not an IAM path (expected / or /segment/.../)"]
    return []


def _tag_character_ok(char: str) -> bool:
    """Letters, digits and spaces in any script, plus ``_.:/=+-@`` (IAM's tag alphabet)."""
    return (
        char.isalpha()
        or char.isnumeric()
        or unicodedata.category(char).startswith("Z")
        or char in TAG_PUNCTUATION
    )


def tag_key_problems(key: str, field: str) -> list[str]:
    if not 1 <= len(key) <= TAG_KEY_MAX:
        return [f"{field}: tag key must be 1-{TAG_KEY_MAX} characters, has {len(key)}"]
    if key.lower().startswith("aws:"):
        return [f"{field}: tag key {key!r} uses the reserved prefix 'aws:'"]
    if not all(_tag_character_ok(char) for char in key):
        return [f"{field}: tag key {key!r} may only contain letters, digits, spaces and _.:/=+-@"]
    return []


def reserved_tag_problems(key: str, protection_tag: str, field: str) -> list[str]:
    """An attribute may never write the connector's own tags: whoever could would tag a user
    ``idhub:protected`` and make it untouchable (a leaver who cannot be removed), or clear the
    tag of a break-glass account. IAM compares tag keys without regard to case, and so does
    this."""
    if key.lower().startswith(RESERVED_TAG_PREFIX):
        return [
            f"{field}: tag key {key!r} is under {RESERVED_TAG_PREFIX!r}, the connector's own "
            "tags; no attribute may write it"
        ]
    if protection_tag and key.lower() == protection_tag.lower():
        return [
            f"{field}: tag key {key!r} is the protection tag (protected.tag); no attribute may "
            "write it"
        ]
    return []


def tag_value_problems(value: str, field: str) -> list[str]:
    if len(value) > TAG_VALUE_MAX:
        return [f"{field}: longer than {TAG_VALUE_MAX} characters (IAM tag value limit)"]
    bad = sorted({char for char in value if not _tag_character_ok(char)})
    if bad:
        return [  # repr shows control characters escaped, so the message stays one line
            f"{field}: character(s) {''.join(bad)!r} not allowed in an IAM tag value "
            "(letters, digits, spaces and _.:/=+-@ only)"
        ]
    return []


def tag_count_problems(count: int) -> list[str]:
    if count > TAG_LIMIT:
        return [f"attributes: the user would carry {count} tags, IAM allows {TAG_LIMIT}"]
    return []


def user_name_template_problems(template: str) -> list[str]:
    """The template must name the account uniquely, so it must use the email or its local
    part, and only the known placeholders."""
    try:
        fields = {name for _text, name, _spec, _conv in string.Formatter().parse(template) if name}
    except ValueError as exc:
        return [f"user_name: {template!r} is not a valid template ({exc}) @ $.user_name"]
    unknown = fields - TEMPLATE_FIELDS
    if unknown:
        return [
            f"user_name: unknown placeholder(s) {', '.join(sorted(unknown))}; "
            f"use {{email}}, {{local_part}} or {{domain}} @ $.user_name"
        ]
    if not fields & {"email", "local_part"}:
        return ["user_name: must contain {email} or {local_part} @ $.user_name"]
    return []
