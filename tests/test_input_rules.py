"""IAM's input rules, checked before any change is sent."""

from __future__ import annotations

import pytest

from hostsim.contract.errors import InvalidInput
from idhub_aws_plugin import input_rules
from idhub_aws_plugin.entitlements import Entitlement, entitlement_problems, parse_entitlement


@pytest.mark.parametrize(
    "email", ["a@b.co", "first.last+tag@sub.example.com", "x_y-z@ex-ample.org"]
)
def test_valid_emails_pass(email: str) -> None:
    assert input_rules.email_problems(email) == []


@pytest.mark.parametrize(
    "email", ["", "plain", "a@b", "@b.com", "a@@b.com", "a b@c.com", "a@-b.com", "a@b.c_m"]
)
def test_invalid_emails_are_named(email: str) -> None:
    (problem,) = input_rules.email_problems(email)
    assert problem.startswith("email:")


def test_overlong_email_is_refused() -> None:
    assert input_rules.email_problems("a" * 250 + "@b.com") == ["email: longer than 254 characters"]


@pytest.mark.parametrize("name", ["a", "a" * 64, "alice@example.com", "x_+=,.@-9"])
def test_valid_user_names(name: str) -> None:
    assert input_rules.user_name_problems(name) == []


@pytest.mark.parametrize("name", ["", "a" * 65, "has space", "slash/name", "ümlaut", "a!b"])
def test_invalid_user_names(name: str) -> None:
    (problem,) = input_rules.user_name_problems(name)
    assert "user name" in problem


@pytest.mark.parametrize("value", ["", "Ada Lovelace", "R+D/Ops:1=2@x_y.z-", "Zoë Ñúñez 東京", "٣"])
def test_valid_tag_values(value: str) -> None:
    assert input_rules.tag_value_problems(value, "first_name") == []


@pytest.mark.parametrize(
    "value", ["semi;colon", "tab\there", "new\nline", "quote'", "a" * 257, "<b>"]
)
def test_invalid_tag_values_name_the_field(value: str) -> None:
    (problem,) = input_rules.tag_value_problems(value, "first_name")
    assert problem.startswith("first_name:")


def test_control_characters_are_shown_escaped() -> None:
    (problem,) = input_rules.tag_value_problems("a\x07b", "display_name")
    assert "\\x07" in problem


@pytest.mark.parametrize(
    ("key", "fragment"),
    [
        ("", "1-128"),
        ("k" * 129, "1-128"),
        ("aws:x", "reserved"),
        ("AWS:x", "reserved"),
        ("a;b", "only"),
    ],
)
def test_invalid_tag_keys(key: str, fragment: str) -> None:
    (problem,) = input_rules.tag_key_problems(key, "tag")
    assert fragment in problem


def test_tag_count_limit() -> None:
    assert input_rules.tag_count_problems(50) == []
    assert input_rules.tag_count_problems(51) == [
        "attributes: the user would carry 51 tags, IAM allows 50"
    ]


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::aws:policy/ReadOnlyAccess",
        "arn:aws:iam::123456789012:policy/team/reports-read",
        "arn:aws-us-gov:iam::123456789012:policy/x",
    ],
)
def test_valid_policy_arns(arn: str) -> None:
    assert input_rules.policy_arn_problems(arn) == []


@pytest.mark.parametrize(
    "arn",
    [
        "ReadOnlyAccess",
        "arn:aws:iam::12345:policy/x",
        "arn:aws:iam::aws:role/x",
        "arn:aws:s3:::bucket",
        "arn:aws:iam::aws:policy/",
    ],
)
def test_invalid_policy_arns(arn: str) -> None:
    assert input_rules.policy_arn_problems(arn)


def test_entitlements_parse() -> None:
    assert parse_entitlement("group:developers") == Entitlement("group", "developers")
    policy = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    assert parse_entitlement(f"policy:{policy}") == Entitlement("policy", policy)
    assert str(parse_entitlement(f"policy:{policy}")) == f"policy:{policy}"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("developers", "expected group:NAME or policy:ARN"),
        ("role:admin", "expected group:NAME or policy:ARN"),
        ("group:", "group name"),
        ("group:bad name", "group name"),
        ("policy:ReadOnlyAccess", "not a managed policy ARN"),
    ],
)
def test_malformed_entitlements(text: str, fragment: str) -> None:
    (problem,) = entitlement_problems(text)
    assert fragment in problem
    with pytest.raises(InvalidInput, match=fragment):
        parse_entitlement(text)


@pytest.mark.parametrize(
    ("template", "ok"),
    [
        ("{email}", True),
        ("ext-{local_part}", True),
        ("{local_part}.{domain}", True),
        ("{domain}", False),
        ("static", False),
        ("{name}", False),
        ("{email", False),
    ],
)
def test_user_name_templates(template: str, ok: bool) -> None:
    assert (input_rules.user_name_template_problems(template) == []) is ok


def test_iam_paths() -> None:
    assert input_rules.path_problems("/", "user_path") == []
    assert input_rules.path_problems("/idhub/people/", "user_path") == []
    assert input_rules.path_problems("idhub", "user_path")
    assert input_rules.path_problems("/idhub", "user_path")
