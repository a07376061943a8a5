"""Property-based tests (hypothesis): the validators agree with IAM's rules, and random
sequences of operations, under random faults, leave IAM exactly as a simple model expects.

The validators are checked against the embedded AWS's own implementation of IAM's rules
(``hostsim.embedded_aws.validation``), which ``tests/test_embedded_aws.py`` pins to IAM's
documented behaviour: whatever the connector lets through, IAM would accept, so no bad input
can fail halfway through a composite operation. Examples are bounded and derandomized so the
suite stays fast and deterministic.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from seeding import direct_policies_of, groups_of, tags_of, user_names

from hostsim.contract.errors import AlreadyExists, ConnectorError, InvalidInput, NotFound, Transient
from hostsim.contract.model import AccessRequest, CreateRequest, DeleteRequest, ModifyRequest
from hostsim.embedded_aws import EmbeddedAWS
from hostsim.embedded_aws.iam_errors import IAMError
from hostsim.embedded_aws.user_tags import merged_tags
from hostsim.embedded_aws.validation import USER_NAME_MAX, check_name, check_tags
from idhub_aws_plugin import input_rules
from idhub_aws_plugin.accounts import normalize_email
from idhub_aws_plugin.attributes import AttributeMap
from idhub_aws_plugin.connector import AwsIamConnector
from idhub_aws_plugin.entitlements import parse_entitlement
from idhub_aws_plugin.settings import load_settings

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

PURE = settings(max_examples=300, deadline=None, derandomize=True, database=None)

#: Text biased towards the characters IAM's rules are about, plus any other character.
IAM_ALPHABET = st.sampled_from("aZ09_+=,.@-:/ ;!%é\u00a0\t\n\x07\u2028")
iam_text = st.text(IAM_ALPHABET, max_size=70) | st.text(max_size=70)


def iam_accepts(check: Any, *args: Any) -> bool:
    try:
        check(*args)
    except IAMError:
        return False
    return True


# -- the validators agree with IAM -----------------------------------------------------------


@PURE
@given(st.text(IAM_ALPHABET, max_size=70) | st.text(max_size=70))
def test_user_names_the_connector_accepts_are_those_iam_accepts(name: str) -> None:
    problems = input_rules.user_name_problems(name)
    assert (problems == []) == iam_accepts(check_name, name, "userName", USER_NAME_MAX)
    assert all("\n" not in problem and problem.startswith("user name:") for problem in problems)


@PURE
@given(iam_text)
def test_tag_values_the_connector_accepts_are_those_iam_accepts(value: str) -> None:
    problems = input_rules.tag_value_problems(value, "department")
    assert (problems == []) == iam_accepts(check_tags, [{"Key": "k", "Value": value}])
    assert all("\n" not in problem and problem.startswith("department:") for problem in problems)


@PURE
@given(iam_text | st.builds(lambda rest: "aWs:" + rest, iam_text))
def test_tag_keys_the_connector_accepts_are_those_iam_accepts(key: str) -> None:
    problems = input_rules.tag_key_problems(key, "attribute 'x'")
    assert (problems == []) == iam_accepts(check_tags, [{"Key": key, "Value": "v"}])
    assert all("\n" not in problem for problem in problems)


@PURE
@given(st.emails() | iam_text.map(lambda text: text + "@example.com") | iam_text)
def test_an_accepted_email_always_derives_a_name_iam_accepts(raw: str) -> None:
    email = normalize_email(raw)
    if input_rules.email_problems(email):
        return
    name = email  # the default user_name template
    if input_rules.user_name_problems(name, "user name derived from email") == []:
        assert iam_accepts(check_name, name, "userName", USER_NAME_MAX)
    assert normalize_email(raw.upper()) == normalize_email(raw) or not raw.isascii()


@PURE
@given(
    st.one_of(
        iam_text,
        st.builds(lambda name: f"group:{name}", iam_text),
        st.builds(
            lambda account, path, name: f"policy:arn:aws:iam::{account}:policy/{path}{name}",
            st.sampled_from(["aws", "123456789012", "12345"]),
            st.sampled_from(["", "team/", "a b/"]),
            iam_text,
        ),
    )
)
def test_entitlement_ids_parse_or_are_refused_naming_the_rule(text: str) -> None:
    try:
        entitlement = parse_entitlement(text)
    except InvalidInput as refused:
        assert "\n" not in refused.message
        assert "expected" in refused.message or "must be" in refused.message
        return
    assert str(entitlement) == text
    if entitlement.kind == "group":
        assert iam_accepts(check_name, entitlement.key, "groupName", 128)


ATTRIBUTE_NAMES = st.sampled_from(
    ["first_name", "team", "Team", "TEAM", "email", "Email", "aws:x", "dept", "Firstname", "k1"]
)
ATTRIBUTE_VALUES = st.sampled_from(["", "x", "R+D", "a;b", "é", "x" * 257]) | iam_text


@PURE
@given(st.dictionaries(ATTRIBUTE_NAMES, ATTRIBUTE_VALUES, max_size=6))
def test_create_tags_the_connector_accepts_are_accepted_by_iam(values: dict[str, str]) -> None:
    """Whatever passes the attribute mapping is a tag list IAM would store as is: no key it
    reserves, no two keys differing in case, every key and value within its rules."""
    attributes = AttributeMap(load_settings({}))
    given_values = {name: value for name, value in values.items() if name != "email"}
    try:
        tags, _skipped = attributes.create_tags({"email": "a@example.com", **given_values})
    except InvalidInput as refused:
        assert "\n" not in refused.message
        return
    assert iam_accepts(check_tags, [{"Key": k, "Value": v} for k, v in tags.items()])


@PURE
@given(
    st.dictionaries(st.sampled_from([f"k{i}" for i in range(48)] + ["Team"]), st.just("v")),
    st.dictionaries(ATTRIBUTE_NAMES, ATTRIBUTE_VALUES, max_size=6),
)
def test_modify_changes_never_leave_more_tags_than_iam_allows(
    current: dict[str, str], values: dict[str, str]
) -> None:
    attributes = AttributeMap(load_settings({}))
    given_values = {name: value for name, value in values.items() if name != "email"}
    try:
        changes = attributes.modify_changes(given_values, current)
    except InvalidInput:
        return
    kept = {key: value for key, value in current.items() if key not in changes.remove}
    after = merged_tags(kept, [{"Key": k, "Value": v} for k, v in changes.put.items()])
    assert len(after) <= input_rules.TAG_LIMIT
    assert iam_accepts(check_tags, [{"Key": k, "Value": v} for k, v in changes.put.items()])


# -- random operations under random faults: IAM always equals the model -----------------------

EMAILS = ("ann@example.com", "bob@example.com", "cy@example.com")
GROUPS = ("dev", "ops")
FIRST_NAMES = (None, "", "Ann", "Bo")


@dataclass
class Account:
    """What the model expects IAM to hold for one account."""

    first_name: str | None = None
    groups: set[str] = field(default_factory=set)
    policies: set[str] = field(default_factory=set)


def changes(account: Account, first_name: str | None) -> bool:
    """Whether a modify giving ``first_name`` would change the account."""
    return first_name is not None and (first_name or None) != account.first_name


#: How an operation is disturbed: not at all, throttled, interrupted halfway (then re-run),
#: one reply lost after IAM applied the change, or a fresh user not yet visible.
FAULTS = st.one_of(
    st.just(("none", "", 0)),
    st.tuples(st.just("throttle"), st.just(""), st.integers(2, 3)),
    st.tuples(
        st.just("interrupt"),
        st.sampled_from(
            [
                "CreateUser",
                "AddUserToGroup",
                "AttachUserPolicy",
                "UpdateUser",
                "TagUser",
                "UntagUser",
                "ListGroupsForUser",
                "DetachUserPolicy",
                "RemoveUserFromGroup",
                "DeleteUser",
            ]
        ),
        st.just(0),
    ),
    st.tuples(
        st.just("lose_reply"),
        st.sampled_from(["CreateUser", "AddUserToGroup", "AttachUserPolicy", "UpdateUser"]),
        st.just(0),
    ),
    st.tuples(st.just("hide"), st.just(""), st.integers(1, 3)),
)


class Operations(RuleBasedStateMachine):
    """Create, modify (with renames), grant, revoke and delete, each under a random fault."""

    aws: EmbeddedAWS
    iam: IAMClient
    connector: AwsIamConnector
    policy_arn: str

    def __init__(self) -> None:
        super().__init__()
        self.aws.reset()
        for name in GROUPS:
            self.iam.create_group(GroupName=name)
        self.policy_arn = self.iam.create_policy(
            PolicyName="reports",
            PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
            '"Action":"s3:GetObject","Resource":"*"}]}',
        )["Policy"]["Arn"]
        self.model: dict[str, Account] = {}

    # -- running one operation under its fault ------------------------------------------

    def run(self, fault: tuple[str, str, int], operation: Any) -> ConnectorError | None:
        """Run the operation under ``fault``; an interrupted one is run again (as a host would
        retry) once the fault is gone. Returns the contract error it ended with, if any."""
        kind, action, number = fault
        if kind == "throttle":
            self.aws.throttle(every=number)
        elif kind == "interrupt":
            self.aws.fail_next(action, code="ServiceUnavailable", status=503, times=99)
        elif kind == "lose_reply":
            self.aws.fail_next(action, code="InternalFailure", status=500, lose_reply=True)
        elif kind == "hide":
            self.aws.hide_new_users(requests=number)
        try:
            operation()
        except Transient:
            assert kind == "interrupt"
            self.aws.reset_faults()
            return self.run(("none", "", 0), operation)
        except ConnectorError as error:
            return error
        finally:
            self.aws.reset_faults()
        return None

    def entitlement(self, index: int) -> str:
        return f"group:{GROUPS[index]}" if index < len(GROUPS) else f"policy:{self.policy_arn}"

    def hold(self, account: Account, entitlement: str, held: bool) -> None:
        kind, _sep, key = entitlement.partition(":")
        target = account.groups if kind == "group" else account.policies
        (target.add if held else target.discard)(key)

    # -- rules ----------------------------------------------------------------------------

    @rule(
        email=st.sampled_from(EMAILS),
        first_name=st.sampled_from(FIRST_NAMES),
        grants=st.sets(st.integers(0, 2), max_size=3),
        fault=FAULTS,
    )
    def create(
        self, email: str, first_name: str | None, grants: set[int], fault: tuple[str, str, int]
    ) -> None:
        ids = tuple(self.entitlement(index) for index in sorted(grants))
        request = CreateRequest(email, first_name=first_name, grants=ids)
        assert self.run(fault, lambda: self.connector.create(request)) is None
        account = self.model.setdefault(email, Account())
        if first_name:
            account.first_name = first_name
        for entitlement in ids:
            self.hold(account, entitlement, held=True)

    @rule(
        email=st.sampled_from(EMAILS),
        first_name=st.sampled_from(FIRST_NAMES),
        new_email=st.sampled_from((None, *EMAILS)),
        fault=FAULTS,
    )
    def modify(
        self,
        email: str,
        first_name: str | None,
        new_email: str | None,
        fault: tuple[str, str, int],
    ) -> None:
        request = ModifyRequest(email, first_name=first_name, new_email=new_email)
        error = self.run(fault, lambda: self.connector.modify(request))
        if email not in self.model:
            target = self.model.get(new_email or email) if new_email != email else None
            if target is not None and not changes(target, first_name):
                assert error is None  # as a re-run of a finished rename: unchanged
                return
            assert isinstance(error, NotFound)
            return
        if new_email not in (None, email) and new_email in self.model:
            assert isinstance(error, AlreadyExists)
            return
        assert error is None
        account = self.model.pop(email)
        if first_name is not None:
            account.first_name = first_name or None
        self.model[new_email or email] = account

    @rule(
        email=st.sampled_from(EMAILS),
        index=st.integers(0, 2),
        revoke=st.booleans(),
        fault=FAULTS,
    )
    def change_access(
        self, email: str, index: int, revoke: bool, fault: tuple[str, str, int]
    ) -> None:
        request = AccessRequest(email, self.entitlement(index))
        change = self.connector.revoke if revoke else self.connector.grant
        error = self.run(fault, lambda: change(request))
        if email not in self.model:
            assert isinstance(error, NotFound)
            return
        assert error is None
        self.hold(self.model[email], request.entitlement, held=not revoke)

    @rule(email=st.sampled_from(EMAILS), fault=FAULTS)
    def delete(self, email: str, fault: tuple[str, str, int]) -> None:
        assert self.run(fault, lambda: self.connector.delete(DeleteRequest(email))) is None
        self.model.pop(email, None)

    # -- the property ---------------------------------------------------------------------

    @invariant()
    def iam_equals_the_model(self) -> None:
        assert user_names(self.iam) == set(self.model)
        for email, account in self.model.items():
            expected_tags = {"Email": email}
            if account.first_name:
                expected_tags["FirstName"] = account.first_name
            assert tags_of(self.iam, email) == expected_tags
            assert groups_of(self.iam, email) == account.groups
            assert direct_policies_of(self.iam, email) == account.policies


@pytest.fixture
def operations(
    connector: AwsIamConnector,
    aws: EmbeddedAWS,
    iam: IAMClient,
    fast_backoff: list[float],
    fresh_user_sleeps: list[float],
) -> Iterator[type[Operations]]:
    Operations.aws, Operations.iam, Operations.connector = aws, iam, connector
    yield Operations


def test_random_operations_under_random_faults_leave_iam_as_the_model_expects(
    operations: type[Operations],
) -> None:
    run_state_machine_as_test(
        operations,
        settings=settings(
            max_examples=25,
            stateful_step_count=10,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
