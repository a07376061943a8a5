"""User tags with IAM's semantics: checked, case-insensitive keys, at most 50 per user.

Moto stores whatever it is given: reserved ``aws:`` keys, 51 tags, ``Dept`` next to
``dept``. Real IAM refuses the first two and treats the last pair as one key (the newer tag
replaces the older). TagUser and UntagUser are therefore served here, writing to moto's own
tag store so every moto read (GetUser, ListUserTags) sees the result; CreateUser's tags are
checked here and then stored by moto.
"""

from __future__ import annotations

from collections.abc import Mapping

from hostsim.embedded_aws import moto_state, validation
from hostsim.embedded_aws.iam_errors import limit_exceeded, user_not_found, validation_error
from hostsim.embedded_aws.moto_state import IAMBackend
from hostsim.embedded_aws.query import member_list, member_structs
from hostsim.embedded_aws.responses import Reply, result_reply

TAGS_PER_USER_MAX = 50


def request_tags(params: Mapping[str, str]) -> list[dict[str, str]]:
    """The ``Tags.member.N.Key`` / ``.Value`` list of a CreateUser or TagUser request."""
    return member_structs(params, "Tags", ("Key", "Value"))


def check_create_user_tags(params: Mapping[str, str]) -> None:
    """Refuse CreateUser when its tags break IAM's rules; a new user has no tags to merge."""
    validation.check_tags(request_tags(params))


def tag_user(backend: IAMBackend, params: Mapping[str, str]) -> Reply:
    """Serve TagUser: add or replace tags, keys compared without regard to case."""
    new_tags = request_tags(params)
    validation.check_tags(new_tags)
    user = _user(backend, params["UserName"])
    merged = merged_tags(moto_state.user_tags(backend, user), new_tags)
    if len(merged) > TAGS_PER_USER_MAX:
        raise limit_exceeded(
            f"Cannot exceed quota for TagsPerUser: {TAGS_PER_USER_MAX}. The user would have "
            f"{len(merged)} tags."
        )
    moto_state.replace_user_tags(backend, user, merged)
    return result_reply("TagUser")


def untag_user(backend: IAMBackend, params: Mapping[str, str]) -> Reply:
    """Serve UntagUser: remove the named keys in any letter case; absent keys are ignored."""
    keys = member_list(params, "TagKeys")
    _check_untag_keys(keys)
    user = _user(backend, params["UserName"])
    doomed = {key.lower() for key in keys}
    kept = {k: v for k, v in moto_state.user_tags(backend, user).items() if k.lower() not in doomed}
    moto_state.replace_user_tags(backend, user, kept)
    return result_reply("UntagUser")


def merged_tags(existing: Mapping[str, str], new_tags: list[dict[str, str]]) -> dict[str, str]:
    """Existing tags with ``new_tags`` applied; a new key replaces an old one that differs
    only in case, so it does not count twice against the limit."""
    replaced = {tag["Key"].lower() for tag in new_tags}
    merged = {k: v for k, v in existing.items() if k.lower() not in replaced}
    merged.update({tag["Key"]: tag["Value"] for tag in new_tags})
    return merged


def _check_untag_keys(keys: list[str]) -> None:
    if len(keys) > TAGS_PER_USER_MAX:
        raise validation_error(
            "Value at 'tagKeys' failed to satisfy constraint: "
            f"Member must have length less than or equal to {TAGS_PER_USER_MAX}"
        )
    for index, key in enumerate(keys, start=1):
        validation.check_tag_key(key, f"tagKeys.{index}.member")


def _user(backend: IAMBackend, name: str) -> moto_state.MotoUser:
    user = moto_state.find_user(backend, name)
    if user is None:
        raise user_not_found(name)
    return user
