"""The ``[aws-iam.organization]`` table: defaults, and every value refused at load with its
path (and never the external id's value)."""

from __future__ import annotations

from typing import Any

import pytest

from hostsim.contract import ConfigurationError
from idhub_aws_plugin.settings import Organization, load_settings

DEV = "111111111111"
PROD = "222222222222"
ROLE = "arn:aws:iam::123456789012:role/idhub-base"


def _refusal(organization: dict[str, Any], **settings: Any) -> str:
    with pytest.raises(ConfigurationError) as refused:
        load_settings({**settings, "organization": organization})
    return str(refused.value)


def test_without_the_table_there_is_no_organization() -> None:
    assert load_settings({}).organization is None


def test_an_empty_table_is_every_active_account_through_the_default_role() -> None:
    organization = load_settings({"organization": {}}).organization
    assert organization == Organization(
        role_name="OrganizationAccountAccessRole",
        external_id=None,
        accounts=None,
        exclude=(),
        include_management_account=True,
        session_name="idhub-aws-iam",
        duration_seconds=3600,
        max_concurrency=16,
    )


def test_every_setting_is_read() -> None:
    organization = load_settings(
        {
            "organization": {
                "role_name": "idhub/Connector",
                "external_id": "shared-secret-1",
                "accounts": [DEV, PROD],
                "exclude": ["333333333333"],
                "include_management_account": False,
                "session_name": "idhub-org",
                "duration_seconds": 7200,
                "max_concurrency": 64,
            }
        }
    ).organization
    assert organization is not None
    assert organization.role_name == "idhub/Connector"
    assert (organization.accounts, organization.exclude) == ((DEV, PROD), ("333333333333",))
    assert (organization.duration_seconds, organization.max_concurrency) == (7200, 64)
    assert organization.include_management_account is False


def test_an_unknown_key_is_refused_with_its_path() -> None:
    assert "extra fields found (role) @ $.organization" in _refusal({"role": "x"})


def test_a_wrong_type_is_refused_with_its_path() -> None:
    message = _refusal({"accounts": DEV})
    assert "$.organization.accounts" in message


@pytest.mark.parametrize("value", ["1234", "12345678901a", "1111111111111", ""])
def test_an_account_id_is_twelve_digits(value: str) -> None:
    assert "is not an AWS account id (12 digits) @ $.organization.accounts[1]" in _refusal(
        {"accounts": [DEV, value]}
    )
    assert "@ $.organization.exclude[0]" in _refusal({"exclude": [value]})


def test_an_account_both_included_and_excluded_is_refused() -> None:
    message = _refusal({"accounts": [DEV, PROD], "exclude": [PROD]})
    assert f"{PROD} is both in accounts and in exclude" in message
    assert DEV not in message


def test_an_empty_include_list_is_refused_rather_than_meaning_no_account() -> None:
    assert "is empty, so no account is in scope" in _refusal({"accounts": []})


@pytest.mark.parametrize("name", ["/idhub/Connector", "", "role name", "a" * 65, "x/"])
def test_a_role_name_is_a_name_or_path_and_name(name: str) -> None:
    assert "is not an IAM role name" in _refusal({"role_name": name})


@pytest.mark.parametrize("name", ["OrganizationAccountAccessRole", "idhub/Connector", "a/b/c+d"])
def test_role_names_with_and_without_a_path_are_accepted(name: str) -> None:
    organization = load_settings({"organization": {"role_name": name}}).organization
    assert organization is not None and organization.role_name == name


def test_a_malformed_external_id_is_refused_without_being_echoed() -> None:
    message = _refusal({"external_id": "not secret enough!"})
    assert "@ $.organization.external_id" in message
    assert "not secret enough" not in message


def test_a_malformed_session_name_is_refused() -> None:
    assert "@ $.organization.session_name" in _refusal({"session_name": "x"})


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("duration_seconds", 899, "must be at least 900"),
        ("duration_seconds", 43201, "must be at most 43200"),
        ("max_concurrency", 0, "must be at least 1"),
        ("max_concurrency", 65, "must be at most 64"),
    ],
)
def test_numbers_are_checked_against_their_range(key: str, value: int, expected: str) -> None:
    assert f"{expected} @ $.organization.{key}" in _refusal({key: value})


def test_role_chaining_caps_the_session_at_one_hour() -> None:
    message = _refusal({"duration_seconds": 3601}, assume_role={"role_arn": ROLE})
    assert "role chaining caps sessions at one hour @ $.organization.duration_seconds" in message
    # one hour is allowed, and more than that without assume_role
    load_settings({"assume_role": {"role_arn": ROLE}, "organization": {"duration_seconds": 3600}})
    load_settings({"organization": {"duration_seconds": 43200}})


def test_the_external_id_is_not_in_the_settings_repr() -> None:
    settings = load_settings({"organization": {"external_id": "shared-secret-1"}})
    assert settings.organization is not None
    assert settings.organization.external_id == "shared-secret-1"
    assert "shared-secret-1" not in repr(settings)
