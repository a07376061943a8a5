"""Connector settings and the host's config file: strict, with the offending key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostsim.config import connector_settings, read_config
from hostsim.contract.errors import ConfigurationError
from idhub_aws_plugin.settings import CORE_ATTRIBUTES, DEFAULT_TAGS, AttributeMapping, load_settings


def test_defaults_map_the_four_core_attributes_to_tags() -> None:
    settings = load_settings({})
    assert settings.user_name == "{email}"
    assert settings.attributes == {
        name: AttributeMapping(tag) for name, tag in DEFAULT_TAGS.items()
    }
    assert {name: settings.attributes[name] for name in CORE_ATTRIBUTES} == {
        "first_name": AttributeMapping("FirstName"),
        "last_name": AttributeMapping("LastName"),
        "display_name": AttributeMapping("DisplayName"),
        "email": AttributeMapping("Email"),
    }
    # the attributes of IDHub's AWS account schema, written on create and on modify
    assert settings.attributes["job_title"] == AttributeMapping("JobTitle", True, True)
    assert len({mapping.tag.lower() for mapping in settings.attributes.values()}) == len(
        DEFAULT_TAGS
    )


def test_a_partial_attribute_table_keeps_the_default_tag() -> None:
    settings = load_settings({"attributes": {"first_name": {"on_modify": False}}})
    assert settings.attributes["first_name"] == AttributeMapping("FirstName", True, False)


def test_extra_attributes_can_be_mapped() -> None:
    settings = load_settings({"attributes": {"department": {"tag": "Dept", "on_create": False}}})
    assert settings.attributes["department"] == AttributeMapping("Dept", False, True)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"regoin": "us-east-1"}, "extra fields found (regoin) @ $"),
        ({"max_attempts": "8"}, "@ $.max_attempts"),
        ({"max_attempts": 0}, "must be at least 1 @ $.max_attempts"),
        ({"aws_managed_policies": "some"}, "@ $.aws_managed_policies"),
        ({"attributes": {"first_name": {"tag": "aws:first"}}}, "$.attributes['first_name'].tag"),
        (
            {"attributes": {"cost_center": {}}},
            "required field missing @ $.attributes['cost_center'].tag",
        ),
        ({"attributes": {"nick": {"tag": "FirstName"}}}, "mapped twice"),
        ({"user_name": "{domain}"}, "must contain {email} or {local_part}"),
        ({"user_path": "idhub"}, "not an IAM path"),
        ({"permissions_boundary": "boundary"}, "$.permissions_boundary"),
        ({"attributes": "FirstName"}, "@ $.attributes"),
    ],
)
def test_bad_settings_name_the_key(raw: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(raw)
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_config_file_tables_per_connector(tmp_path: Path) -> None:
    path = tmp_path / "idhub.toml"
    path.write_text(
        '[aws-iam]\nregion = "eu-west-1"\n[aws-iam.attributes.department]\ntag = "Dept"\n'
    )
    table = connector_settings(read_config(path), "aws-iam", {"aws-iam"})
    assert table == {"region": "eu-west-1", "attributes": {"department": {"tag": "Dept"}}}
    assert load_settings(table).region == "eu-west-1"


def test_config_for_an_unknown_connector_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "idhub.toml"
    path.write_text('[aws-iom]\nregion = "eu-west-1"\n')
    with pytest.raises(ConfigurationError, match=r"unknown connector.*aws-iom"):
        connector_settings(read_config(path), "aws-iam", {"aws-iam"})


def test_invalid_toml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "idhub.toml"
    path.write_text('[aws-iam]\nregion = "eu-west-1"\nuser_name = \n')
    with pytest.raises(ConfigurationError, match="line 3"):
        read_config(path)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        read_config(tmp_path / "absent.toml")
