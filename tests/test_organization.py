"""The aws-iam connector over an AWS organization, against the embedded AWS: which accounts are
in scope, how each is reached (its role, assumed once), the concurrent fetch and its failure
isolation, and changes only through a connector bound to one account.

What the connector sent, and in which account, is asserted on the calls the embedded AWS saw.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Generator, Iterator
from typing import Any

import pytest
from organization_seeding import SeededOrganization, seed_organization

from hostsim.contract import (
    AccessRequest,
    Account,
    AccountLookup,
    Capability,
    ConfigurationError,
    Connector,
    CreateRequest,
    DeleteRequest,
    FetchKind,
    Group,
    GroupRequest,
    InvalidInput,
    PartialRead,
    Refused,
    StepStatus,
)
from hostsim.embedded_aws import Call, EmbeddedAWS
from hostsim.plugins import get_plugin_manager, load_connectors
from hostsim.runtime import Runtime
from idhub_aws_plugin.client import AwsClients
from idhub_aws_plugin.connector import AwsIamConnector
from idhub_aws_plugin.organization.connector import OrganizationConnector
from idhub_aws_plugin.plugin import open_aws_iam
from idhub_aws_plugin.settings import Settings, load_settings

ROLE_NAME = "OrganizationAccountAccessRole"
NOT_IN_ORGANIZATION = "999999999999"
UNBOUND = "these settings span the accounts of an organization: choose one with --account ID"


@pytest.fixture
def org(aws_env: EmbeddedAWS) -> SeededOrganization:
    """dev, staging and prod under the management account, one user in each account (the
    management account's is ``root-user@example.com``), and the call log emptied."""
    seeded = seed_organization(aws_env)
    aws_env.iam_client().create_user(UserName="root-user@example.com")
    for member in seeded.members:
        aws_env.member_iam_client(member.id).create_user(UserName=f"{member.name}@example.com")
    aws_env.clear_calls()
    return seeded


def _open(**organization: Any) -> OrganizationConnector:
    connector = open_aws_iam({"organization": organization})
    assert isinstance(connector, OrganizationConnector)
    return connector


def _open_with(**settings: Any) -> OrganizationConnector:
    """An organization connector with other settings beside an empty organization table."""
    connector = open_aws_iam({"organization": {}, **settings})
    assert isinstance(connector, OrganizationConnector)
    return connector


def _users(rows: Iterator[Any] | list[Any]) -> list[tuple[str | None, str]]:
    return [(row.account_id, row.user_name) for row in rows if isinstance(row, Account)]


def _assume_roles(aws: EmbeddedAWS) -> int:
    return aws.calls("sts").count("AssumeRole")


# --- scope ----------------------------------------------------------------------------------


def test_every_active_account_is_in_scope_management_included_by_id(
    aws: EmbeddedAWS, org: SeededOrganization
) -> None:
    accounts = _open().target_accounts()
    assert [account.id for account in accounts] == sorted(org.all_ids)
    by_id = {account.id: account for account in accounts}
    assert by_id[org.management_id].management is True
    assert by_id[org.management_id].via == "base credentials"
    dev = org.member("dev")
    assert (by_id[dev.id].name, by_id[dev.id].management) == ("dev", False)
    assert by_id[dev.id].via == f"arn:aws:iam::{dev.id}:role/{ROLE_NAME}"
    # listing reads the organization and assumes nothing
    assert sorted(aws.calls(None)) == ["DescribeOrganization", "ListAccounts"]


def test_the_include_list_and_exclude_narrow_the_scope(org: SeededOrganization) -> None:
    dev, staging, prod = (org.member(name).id for name in ("dev", "staging", "prod"))
    included = _open(accounts=[prod, dev]).target_accounts()
    assert [account.id for account in included] == sorted([dev, prod])
    excluded = _open(exclude=[staging]).target_accounts()
    assert [account.id for account in excluded] == sorted([org.management_id, dev, prod])


def test_the_management_account_can_be_left_out(org: SeededOrganization) -> None:
    connector = _open(include_management_account=False)
    assert [account.id for account in connector.target_accounts()] == sorted(org.ids)
    with pytest.raises(InvalidInput, match="management account, and include_management_account"):
        connector.for_account(org.management_id)


def test_the_management_account_left_out_stays_out_even_when_listed(
    org: SeededOrganization,
) -> None:
    dev = org.member("dev").id
    connector = _open(accounts=[org.management_id, dev], include_management_account=False)
    assert [account.id for account in connector.target_accounts()] == [dev]


@pytest.mark.parametrize(
    ("settings", "account", "reason"),
    [
        ({"exclude": ["{staging}"]}, "{staging}", "it is excluded (organization.exclude)"),
        ({"accounts": ["{dev}"]}, "{prod}", "it is not in organization.accounts"),
        ({}, NOT_IN_ORGANIZATION, "it is not an account of the organization"),
    ],
)
def test_an_account_out_of_scope_is_refused_with_why(
    aws: EmbeddedAWS, org: SeededOrganization, settings: dict[str, Any], account: str, reason: str
) -> None:
    ids = {member.name: member.id for member in org.members}
    filled = {key: [value.format(**ids) for value in values] for key, values in settings.items()}
    connector = _open(**filled)
    with pytest.raises(InvalidInput) as refused:
        connector.for_account(account.format(**ids))
    assert str(refused.value) == f"account {account.format(**ids)} is out of scope: {reason}"
    assert "AssumeRole" not in aws.calls("sts")


def test_an_included_id_that_is_no_active_account_is_unreachable_and_fails_only_itself(
    aws: EmbeddedAWS, org: SeededOrganization
) -> None:
    dev = org.member("dev")
    connector = _open(accounts=[dev.id, NOT_IN_ORGANIZATION])
    accounts = {account.id: account for account in connector.target_accounts()}
    assert accounts[NOT_IN_ORGANIZATION].reachable is False
    assert accounts[NOT_IN_ORGANIZATION].reason == "it is not an account of the organization"
    assert accounts[dev.id].reachable is True
    rows: list[Any] = []
    with pytest.raises(PartialRead) as partial:
        rows.extend(connector.fetch(FetchKind.USERS))
    assert partial.value.failed == (
        (NOT_IN_ORGANIZATION, "it is not an account of the organization"),
    )
    assert _users(rows) == [(dev.id, "dev@example.com")]
    with pytest.raises(InvalidInput, match="cannot be reached: it is not an account"):
        connector.for_account(NOT_IN_ORGANIZATION)


def test_a_closed_account_is_out_of_scope_unless_asked_for_by_id(
    aws: EmbeddedAWS, org: SeededOrganization
) -> None:
    prod = org.member("prod")
    aws.close_account(prod.id)
    assert prod.id not in [account.id for account in _open().target_accounts()]
    asked = _open(accounts=[prod.id]).target_accounts()
    assert [(a.id, a.reachable) for a in asked] == [(prod.id, False)]
    assert asked[0].reason.startswith("it is not ACTIVE (")


# --- reachability ---------------------------------------------------------------------------


def test_a_check_reports_a_broken_role_with_its_reason_and_the_others_reachable(
    aws: EmbeddedAWS, org: SeededOrganization
) -> None:
    staging = org.member("staging")
    aws.break_role(staging.id)
    accounts = {account.id: account for account in _open().target_accounts(check=True)}
    assert accounts[staging.id].reachable is False
    assert "AssumeRole" in accounts[staging.id].reason
    assert "\n" not in accounts[staging.id].reason
    assert all(
        account.reachable and account.reason == ""
        for account_id, account in accounts.items()
        if account_id != staging.id
    )


def test_the_connection_check_lists_every_account_and_fails_on_an_unreachable_one(
    aws: EmbeddedAWS, org: SeededOrganization
) -> None:
    status = _open().test()
    assert status.ok is True
    assert status.account == org.management_id
    assert [account.id for account in status.accounts] == sorted(org.all_ids)
    assert "4 in scope, 4 reachable" in status.message
    aws.break_role(org.member("prod").id)
    broken = _open().test()
    assert broken.ok is False
    assert f"cannot reach {org.member('prod').id} (" in broken.message


def test_the_external_id_is_sent_with_every_assume_role(
    aws: EmbeddedAWS, org: SeededOrganization
) -> None:
    dev = org.member("dev")
    aws.require_external_id(dev.id, "idhub-shared-7f3a")
    without = {a.id: a for a in _open().target_accounts(check=True)}
    assert without[dev.id].reachable is False
    connector = _open(external_id="idhub-shared-7f3a")
    with_id = {a.id: a for a in connector.target_accounts(check=True)}
    assert with_id[dev.id].reachable is True
    assert "idhub-shared-7f3a" not in json.dumps([a.reason for a in without.values()])
    assert (dev.id, "dev@example.com") in _users(connector.fetch(FetchKind.USERS))


def test_each_role_is_assumed_once_for_all_the_operations_of_a_connector(
    aws: EmbeddedAWS, org: SeededOrganization
) -> None:
    connector = _open()
    connector.target_accounts(check=True)
    list(connector.fetch(FetchKind.USERS))
    list(connector.fetch(FetchKind.GROUPS))
    connector.for_account(org.member("dev").id).create(CreateRequest("new@example.com"))
    assert _assume_roles(aws) == len(org.members)
    # the organization is read once, too
    assert aws.calls("organizations") == ["DescribeOrganization", "ListAccounts"]


def test_base_credentials_that_are_assumed_chain_into_each_account(
    aws: EmbeddedAWS, iam: Any, org: SeededOrganization
) -> None:
    """``assume_role`` makes the base credentials a role of the management account (its IAM
    read with them); each member's role is then assumed with those (role chaining)."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{org.management_id}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam.create_role(RoleName="idhub-base", AssumeRolePolicyDocument=json.dumps(trust))
    aws.clear_calls()
    base_role = f"arn:aws:iam::{org.management_id}:role/idhub-base"
    connector = _open_with(assume_role={"role_arn": base_role})
    rows = list(connector.fetch(FetchKind.USERS))
    assert {account for account, _ in _users(rows)} == set(org.all_ids)
    assert _assume_roles(aws) == 1 + len(org.members)
    status = connector.test()
    assert status.ok and status.identity.startswith(
        f"arn:aws:sts::{org.management_id}:assumed-role/idhub-base/"
    )


# --- fetch ----------------------------------------------------------------------------------


def test_a_fetch_reads_every_account_each_row_with_its_account_in_account_order(
    aws: EmbeddedAWS, org: SeededOrganization
) -> None:
    rows = list(_open().fetch(FetchKind.USERS))
    by_account = {member.id: f"{member.name}@example.com" for member in org.members}
    by_account[org.management_id] = "root-user@example.com"
    assert _users(rows) == sorted(by_account.items())
    assert all(row.account_id is not None for row in rows)


def test_group_rows_carry_their_account_too(aws: EmbeddedAWS, org: SeededOrganization) -> None:
    dev = org.member("dev")
    aws.member_iam_client(dev.id).create_group(GroupName="Developers")
    rows = list(_open(accounts=[dev.id, org.member("prod").id]).fetch(FetchKind.GROUPS))
    assert [(row.account_id, row.name) for row in rows if isinstance(row, Group)] == [
        (dev.id, "Developers")
    ]
    assert all(isinstance(row, Group) for row in rows)


def test_a_broken_account_fails_only_itself(aws: EmbeddedAWS, org: SeededOrganization) -> None:
    staging = org.member("staging")
    aws.break_role(staging.id)
    rows: list[Any] = []
    with pytest.raises(PartialRead) as partial:
        rows.extend(_open().fetch(FetchKind.USERS))
    assert [account for account, _ in partial.value.failed] == [staging.id]
    reason = partial.value.failed[0][1]
    assert reason.startswith("STS AssumeRole refused: AccessDenied") and "\n" not in reason
    assert f"could not read 1 of 4 accounts: {staging.id} (" in str(partial.value)
    assert {account for account, _ in _users(rows)} == set(org.all_ids) - {staging.id}


def test_no_call_reaches_an_excluded_account(aws: EmbeddedAWS, org: SeededOrganization) -> None:
    prod = org.member("prod")
    connector = _open(exclude=[prod.id])
    connector.target_accounts(check=True)
    rows = list(connector.fetch(FetchKind.USERS))
    connector.test()
    assert prod.id not in {account for account, _ in _users(rows)}
    assert aws.calls(None, account=prod.id) == []
    # one AssumeRole per member read, none for prod
    assert _assume_roles(aws) == len(org.members) - 1
    assert aws.calls(None, account=org.member("dev").id) != []


def test_a_fetch_stopped_early_reads_no_further_account(
    aws: EmbeddedAWS, org: SeededOrganization
) -> None:
    rows = _open(max_concurrency=1).fetch(FetchKind.USERS)
    assert isinstance(rows, Generator)
    assert isinstance(next(rows), Account)
    rows.close()
    # the first account read, perhaps the next one started; the other two never
    assert 1 <= aws.calls("iam").count("GetAccountAuthorizationDetails") <= 2


class _Counting:
    """The plain connector of each account, with the lifetime of each of its
    GetAccountAuthorizationDetails calls recorded as the client sees it (botocore's
    before-call and after-call events): the connector's concurrency, from its side."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[tuple[float, float]] = []

    def __call__(self, settings: Settings, clients: AwsClients, account_id: str | None) -> Any:
        started: dict[int, float] = {}

        def before(**_: Any) -> None:
            started[threading.get_ident()] = time.monotonic()

        def after(**_: Any) -> None:
            with self._lock:
                self.calls.append((started.pop(threading.get_ident()), time.monotonic()))

        events = clients.iam.meta.events
        events.register("before-call.iam.GetAccountAuthorizationDetails", before)
        events.register("after-call.iam.GetAccountAuthorizationDetails", after)
        return AwsIamConnector(settings, clients, account_id)

    @property
    def peak(self) -> int:
        """The most calls in progress at one moment."""
        return max(sum(1 for s, e in self.calls if s <= start <= e) for start, _ in self.calls)


def _in_flight_together(arrivals: list[float], delay: float) -> int:
    """The most requests provably in AWS at one moment: the embedded AWS records a call
    after sleeping ``delay``, so each was there over at least [recorded - delay, recorded]."""
    return max(sum(1 for t in arrivals if t - delay <= moment <= t) for moment in arrivals)


def _fetch_recorded(
    aws: EmbeddedAWS, max_concurrency: int, delay: float
) -> tuple[_Counting, list[float]]:
    """A users fetch of the member accounts with ``max_concurrency``, each account's role
    assumed beforehand (a check), every call ``delay`` seconds long: the connector's calls,
    and when each GetAccountAuthorizationDetails was recorded by the embedded AWS."""
    counting = _Counting()
    settings = {"include_management_account": False, "max_concurrency": max_concurrency}
    connector = OrganizationConnector(load_settings({"organization": settings}), counting)
    connector.target_accounts(check=True)
    recorded: list[float] = []
    listening = True

    def listener(call: Call) -> None:
        if listening and call.action == "GetAccountAuthorizationDetails":
            recorded.append(time.monotonic())

    aws.listen(listener)
    aws.request_delay = delay
    try:
        assert list(connector.fetch(FetchKind.USERS)) == []
    finally:
        listening = False
        aws.request_delay = 0.0
    return counting, recorded


def test_a_fetch_reads_the_accounts_at_once_and_no_more_than_allowed(
    aws: EmbeddedAWS, aws_env: EmbeddedAWS
) -> None:
    """Every call spends ``delay`` in AWS (0.25 s: the embedded AWS serves one request at a
    time after its delay, ~0.1 s each under load, so a shorter delay hides the overlap)."""
    seed_organization(aws, names=tuple(f"team{n}" for n in range(6)))
    delay = 0.25
    wide, wide_reads = _fetch_recorded(aws, 6, delay)
    narrow, _ = _fetch_recorded(aws, 2, delay)
    one, one_reads = _fetch_recorded(aws, 1, delay)
    assert len(wide.calls) == len(narrow.calls) == len(one.calls) == len(wide_reads) == 6
    # the connector had every account's read out at once, and never more than allowed
    assert (wide.peak, narrow.peak, one.peak) == (6, 2, 1)
    # and AWS had several at once (it serves one at a time after the delay, so not all six
    # show); one account after another, never two
    assert _in_flight_together(wide_reads, delay) >= 2
    assert _in_flight_together(one_reads, delay) == 1


# --- changes need one account ---------------------------------------------------------------


@pytest.mark.parametrize(
    "operation",
    [
        lambda c: c.create(CreateRequest("x@example.com")),
        lambda c: c.check_create(CreateRequest("x@example.com")),
        lambda c: c.delete(DeleteRequest("x@example.com")),
        lambda c: c.grant(AccessRequest("x@example.com", "group:Developers")),
        lambda c: c.create_group(GroupRequest("Developers")),
        lambda c: c.read_account(AccountLookup(email="x@example.com")),
        lambda c: c.read_group(GroupRequest("Developers")),
        lambda c: c.plan(Capability.CREATE, CreateRequest("x@example.com")),
        lambda c: list(c.plan_many(Capability.CREATE, [CreateRequest("x@example.com")])),
    ],
)
def test_an_unbound_operation_of_one_account_is_refused_with_no_call(
    aws: EmbeddedAWS, org: SeededOrganization, operation: Any
) -> None:
    connector = _open()
    with pytest.raises(InvalidInput, match=UNBOUND):
        operation(connector)
    assert aws.calls(None) == []


def test_a_bound_create_lands_only_in_its_account(
    aws: EmbeddedAWS, org: SeededOrganization
) -> None:
    dev = org.member("dev")
    result = _open().for_account(dev.id).create(CreateRequest("ana@example.com"))
    assert result.account is not None and result.account.name == "ana@example.com"
    assert "CreateUser" in aws.calls("iam", account=dev.id)
    for other in (org.management_id, org.member("staging").id, org.member("prod").id):
        assert "CreateUser" not in aws.calls("iam", account=other)
    assert aws.member_iam_client(dev.id).get_user(UserName="ana@example.com")["User"]


def test_a_bound_connector_reads_and_plans_in_its_account(
    aws: EmbeddedAWS, org: SeededOrganization
) -> None:
    dev = org.member("dev")
    bound = _open().for_account(dev.id)
    assert bound.spans_accounts() is False
    detail = bound.read_account(AccountLookup(email="dev@example.com"))
    assert detail is not None and detail.account.account_id == dev.id
    assert _users(bound.fetch(FetchKind.USERS)) == [(dev.id, "dev@example.com")]
    plan = bound.plan(Capability.CREATE, CreateRequest("plan@example.com"))
    assert any(step.status is StepStatus.WOULD_CREATE for step in plan.steps)
    assert "CreateUser" not in aws.calls("iam")


def test_guard_rails_are_each_accounts_own(aws: EmbeddedAWS, org: SeededOrganization) -> None:
    """A group of the same name is judged in its own account: dev's carries
    AdministratorAccess (refused), staging's carries nothing (granted); a protected user of
    dev is refused a delete."""
    dev, staging = org.member("dev"), org.member("staging")
    dev_iam = aws.member_iam_client(dev.id)
    dev_iam.create_group(GroupName="Ops")
    dev_iam.attach_group_policy(
        GroupName="Ops", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess"
    )
    dev_iam.tag_user(UserName="dev@example.com", Tags=[{"Key": "idhub:protected", "Value": "1"}])
    aws.member_iam_client(staging.id).create_group(GroupName="Ops")
    connector = _open()
    staging_bound = connector.for_account(staging.id)
    staging_bound.grant(AccessRequest("staging@example.com", "group:Ops"))
    with pytest.raises(Refused):
        connector.for_account(dev.id).grant(AccessRequest("dev@example.com", "group:Ops"))
    with pytest.raises(Refused):
        connector.for_account(dev.id).delete(DeleteRequest("dev@example.com"))
    assert "DeleteUser" not in aws.calls("iam", account=dev.id)
    assert "AddUserToGroup" in aws.calls("iam", account=staging.id)


# --- the host's view ------------------------------------------------------------------------


def _runtime(settings: dict[str, Any]) -> Runtime:
    return Runtime(load_connectors(get_plugin_manager()).choose("aws-iam"), settings)


def test_the_host_opens_an_organization_and_binds_it_to_an_account(
    aws: EmbeddedAWS, org: SeededOrganization
) -> None:
    runtime = _runtime({"organization": {}})
    assert Capability.TARGET_ACCOUNTS in runtime.connector_type.capabilities
    assert runtime.spans_accounts() is True
    assert aws.calls(None) == []  # decided from the settings alone
    prod = org.member("prod")
    bound = runtime.for_account(prod.id)
    assert bound.spans_accounts() is False
    connector: Connector = bound.connector
    assert _users(connector.fetch(FetchKind.USERS)) == [(prod.id, "prod@example.com")]


def test_the_schema_names_both_principals_policies(org: SeededOrganization) -> None:
    schema = _open(role_name="idhub/Connector").schema()
    policies = json.loads(schema.required_permissions)
    assert set(policies) == {"base_principal", "account_role"}
    base = {s["Sid"]: s for s in policies["base_principal"]["Statement"]}
    assert base["AssumeTheRoleOfEachAccount"]["Resource"] == "arn:aws:iam::*:role/idhub/Connector"
    assert "organizations:ListAccounts" in base["ReadTheOrganization"]["Action"]
    role = {s["Sid"]: s for s in policies["account_role"]["Statement"]}
    assert "iam:CreateUser" in role["ManageUsersUnderThePath"]["Action"]
    assert role["CheckTheConnectorsOwnPermissions"]["Resource"] == (
        "arn:aws:iam::*:role/idhub/Connector"
    )
    # the plain connector's schema is unchanged: one policy document
    plain = json.loads(AwsIamConnector.open({}).schema().required_permissions)
    assert "Statement" in plain


# --- the plain connector: one account -------------------------------------------------------


def test_a_plain_connector_targets_the_one_account_its_credentials_reach(
    aws: EmbeddedAWS, connector: AwsIamConnector, iam: Any
) -> None:
    iam.create_account_alias(AccountAlias="acme-main")
    iam.create_user(UserName="solo@example.com")
    assert connector.spans_accounts() is False
    (account,) = connector.target_accounts(check=True)
    assert (account.id, account.name, account.reachable) == (aws.account_id, "acme-main", True)
    bound = connector.for_account(aws.account_id)
    assert _users(bound.fetch(FetchKind.USERS)) == [(aws.account_id, "solo@example.com")]
    assert _users(connector.fetch(FetchKind.USERS)) == [(None, "solo@example.com")]
    with pytest.raises(InvalidInput, match=f"these credentials act in account {aws.account_id}"):
        connector.for_account(NOT_IN_ORGANIZATION)


def test_the_plain_factory_refuses_organization_settings() -> None:
    with pytest.raises(ConfigurationError, match="open an organization connector"):
        AwsIamConnector.open({"organization": {}})
