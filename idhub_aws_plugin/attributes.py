"""The attribute mapping: which account attribute lives in which IAM user tag, and when it is
written (on create, on modify, or both).

IAM users have no first name or email field; tags are the only place for them. The mapping is
the one place that knows the tag keys, so that create, modify and fetch agree on them and an
operator can rename a tag or stop writing an attribute in the config alone.

Tags under ``idhub:`` (any letter case) and the configured protection tag are the connector's
own, not attributes: no attribute writes or clears them, on create or modify, mapped or not (a
mapping onto one is refused with the config), and reading a user's tags leaves them out.
"""

from __future__ import annotations

from collections.abc import Mapping

from attrs import frozen

from hostsim.contract import InvalidInput
from idhub_aws_plugin import input_rules
from idhub_aws_plugin.settings import CORE_ATTRIBUTES, Settings


@frozen
class TagChanges:
    """What a modify must do to the user's tags, and which given attributes it did not write."""

    put: dict[str, str]
    remove: tuple[str, ...]
    skipped: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.put and not self.remove


class AttributeMap:
    """Attribute names to tag keys and back, per the connector's settings."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._tag_of = {name: mapping.tag for name, mapping in settings.attributes.items()}
        self._attribute_of = {tag: name for name, tag in self._tag_of.items()}

    def tag_for(self, attribute: str) -> str:
        """The tag key of an attribute; an unmapped extra attribute uses its own name as the key
        unless the settings refuse unmapped attributes."""
        if attribute in self._tag_of:
            return self._tag_of[attribute]
        if self._settings.unmapped_attributes == "reject":
            raise InvalidInput(
                f"attribute {attribute!r} has no mapping (add [aws-iam.attributes.{attribute}] "
                "to the config)"
            )
        return attribute

    def _writes(self, attribute: str, on: str) -> bool:
        mapping = self._settings.mapping(attribute)
        if mapping is None:  # unmapped extras are written whenever given
            return True
        return mapping.on_create if on == "create" else mapping.on_modify

    def _checked(self, values: Mapping[str, str]) -> list[str]:
        problems: list[str] = []
        for attribute, value in values.items():
            tag = self.tag_for(attribute)
            if attribute not in self._tag_of:
                problems += input_rules.tag_key_problems(tag, f"attribute {attribute!r}")
            problems += input_rules.reserved_tag_problems(
                tag, self._settings.protected.tag, f"attribute {attribute!r}"
            )
            problems += input_rules.tag_value_problems(value, attribute)
        return problems + self._collisions(values)

    def _connectors_own(self, tag: str) -> bool:
        """The connector's own tags (``idhub:``, the protection tag) are not attributes."""
        return bool(input_rules.reserved_tag_problems(tag, self._settings.protected.tag, ""))

    def _collisions(self, values: Mapping[str, str]) -> list[str]:
        """IAM tag keys are case-insensitive: an extra attribute ``EMAIL`` would overwrite the
        ``Email`` tag of the account's identity, and ``dept`` next to ``Dept`` is refused by
        IAM mid-operation. Both are refused here, before anything is sent."""
        owners = {tag.lower(): name for name, tag in self._tag_of.items()}
        problems: list[str] = []
        for attribute in values:
            if attribute in self._tag_of:
                continue
            tag = self.tag_for(attribute)
            owner = owners.setdefault(tag.lower(), attribute)
            if owner != attribute:
                problems.append(
                    f"attribute {attribute!r}: its tag key {tag!r} is the same IAM tag key as "
                    f"{owner!r}'s {self._tag_of.get(owner, owner)!r} (tag keys ignore case)"
                )
        return problems

    def create_tags(self, values: Mapping[str, str]) -> tuple[dict[str, str], tuple[str, ...]]:
        """Tags to write at creation, and the attributes the mapping does not write on create.

        Empty values are not written: an absent tag and an empty attribute read back the same.
        """
        input_rules.require(self._checked(values))
        written = {name: value for name, value in values.items() if self._writes(name, "create")}
        skipped = tuple(sorted(set(values) - set(written)))
        tags = {self.tag_for(name): value for name, value in written.items() if value != ""}
        input_rules.require(input_rules.tag_count_problems(len(tags)))
        return tags, skipped

    def modify_changes(self, values: Mapping[str, str], current: Mapping[str, str]) -> TagChanges:
        """Only what differs from the ``current`` tags; an empty value removes the tag.

        Tag keys are matched without regard to case, as IAM matches them.
        """
        input_rules.require(self._checked(values))
        stored = {key.lower(): key for key in current}
        put: dict[str, str] = {}
        remove: list[str] = []
        skipped: list[str] = []
        for name, value in values.items():
            if not self._writes(name, "modify"):
                skipped.append(name)
                continue
            tag = self.tag_for(name)
            key = stored.get(tag.lower())
            if value == "" and key is not None:
                remove.append(key)
            elif value != "" and (key is None or current[key] != value):
                put[tag] = value
        kept = {key: value for key, value in current.items() if key not in remove}
        self.check_tag_count(kept, put)
        return TagChanges(put=put, remove=tuple(remove), skipped=tuple(skipped))

    @staticmethod
    def check_tag_count(current: Mapping[str, str], put: Mapping[str, str]) -> None:
        """Refuse when writing ``put`` would leave the user with more tags than IAM allows;
        a key differing only in case replaces the old one, as in IAM."""
        keys = {key.lower() for key in current} | {key.lower() for key in put}
        input_rules.require(input_rules.tag_count_problems(len(keys)))

    def read(self, tags: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
        """Split a user's tags into (core attributes, extra attributes) by attribute name; the
        connector's own tags are neither (an attribute could not write them back)."""
        core: dict[str, str] = {}
        extra: dict[str, str] = {}
        for tag, value in tags.items():
            if self._connectors_own(tag):
                continue
            name = self._attribute_of.get(tag, tag)
            (core if name in CORE_ATTRIBUTES else extra)[name] = value
        return core, extra

    def email_tag(self) -> str:
        return self.tag_for("email")
