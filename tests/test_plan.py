"""Plans (``Connector.plan``, ``--plan``): the steps the real run takes, told with reads only.

The strong check: for every scenario of a table, the plan's changes (its ``would ...`` steps)
are exactly the steps the real run, right after, reports ``done``, and the plan sent no write.
Then the CLI's ``--plan`` on each mutating command (same table and JSON, exit 0, exit 2 for
refused input, no write) and IDHub's ``request show --plan``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
    run_state_machine_as_test,
)
from idhub_cli import IDHub
from seeding import document, fully_equipped_user, group, policy, tags_of, writes

from hostsim.cli import main
from hostsim.contract import (
    PLANNED_REQUESTS,
    WOULD,
    AccessRequest,
    Capability,
    ConnectorError,
    CreateRequest,
    DeleteRequest,
    DisableRequest,
    EnableRequest,
    ModifyRequest,
    MutatingRequest,
    NotFound,
    OperationResult,
    Refused,
    StepStatus,
)
from hostsim.embedded_aws import EmbeddedAWS
from idhub_aws_plugin.connector import AwsIamConnector
from idhub_aws_plugin.planning import DryRunIam, planned_status

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

ADA = "ada@example.com"
BO = "bo@example.com"


@pytest.fixture
def account(aws_env: EmbeddedAWS, iam: IAMClient) -> str:
    """Group ``developers`` carrying a policy, and a policy ``reports-read``; returns its ARN."""
    group(iam, "developers", policy(iam, "dev-tools"))
    return policy(iam, "reports-read")


def changes(result: OperationResult) -> list[tuple[str, str]]:
    return [(step.action, step.target) for step in result.steps if step.status in WOULD]


def done(result: OperationResult) -> list[tuple[str, str]]:
    return [(step.action, step.target) for step in result.steps if step.status is StepStatus.DONE]


# --- scenarios: (set-up with the connector and boto3, operation, request) ------------------

Setup = Callable[[AwsIamConnector, "IAMClient", str], None]


def nothing(_connector: AwsIamConnector, _iam: IAMClient, _arn: str) -> None:
    pass


def ada_with_developers(connector: AwsIamConnector, _iam: IAMClient, _arn: str) -> None:
    connector.create(CreateRequest(ADA, first_name="Ada", grants=("group:developers",)))


def ada_equipped(connector: AwsIamConnector, iam: IAMClient, arn: str) -> None:
    """Ada made by hand with one of everything, then tagged as the connector's."""
    fully_equipped_user(iam, ADA, "developers", arn)
    iam.tag_user(UserName=ADA, Tags=[{"Key": "Email", "Value": ADA}])


def ada_disabled(connector: AwsIamConnector, iam: IAMClient, arn: str) -> None:
    ada_equipped(connector, iam, arn)
    connector.disable(DisableRequest(ADA))


def request_of(operation: Capability, arn: str, **extra: Any) -> MutatingRequest:
    """The scenario's request; ``policy`` in a grant stands for the policy's ARN."""
    grants = tuple(f"policy:{arn}" if g == "policy" else g for g in extra.pop("grants", ()))
    if operation is Capability.CREATE:
        return CreateRequest(ADA, grants=grants, **extra)
    if operation is Capability.MODIFY:
        return ModifyRequest(ADA, **extra)
    if operation in (Capability.GRANT, Capability.REVOKE):
        entitlement = extra["entitlement"]
        return AccessRequest(ADA, f"policy:{arn}" if entitlement == "policy" else entitlement)
    if operation is Capability.DELETE:
        return DeleteRequest(ADA)
    if operation is Capability.DISABLE:
        return DisableRequest(ADA)
    return EnableRequest(ADA)


SCENARIOS: list[tuple[str, Setup, Capability, dict[str, Any]]] = [
    (
        "create a joiner with grants",
        nothing,
        Capability.CREATE,
        {"first_name": "Ada", "grants": ("group:developers", "policy")},
    ),
    (
        "create resumes: a tag and a grant missing",
        ada_with_developers,
        Capability.CREATE,
        {"first_name": "Ada", "last_name": "L", "grants": ("group:developers", "policy")},
    ),
    (
        "create that holds",
        ada_with_developers,
        Capability.CREATE,
        {"first_name": "Ada", "grants": ("group:developers",)},
    ),
    (
        "modify: rename and a new name",
        ada_with_developers,
        Capability.MODIFY,
        {"new_email": BO, "last_name": "Lee"},
    ),
    ("modify: clear an attribute", ada_with_developers, Capability.MODIFY, {"first_name": ""}),
    ("modify: nothing differs", ada_with_developers, Capability.MODIFY, {"first_name": "Ada"}),
    ("grant a policy", ada_with_developers, Capability.GRANT, {"entitlement": "policy"}),
    ("grant held", ada_with_developers, Capability.GRANT, {"entitlement": "group:developers"}),
    ("revoke held", ada_with_developers, Capability.REVOKE, {"entitlement": "group:developers"}),
    ("revoke not held", ada_with_developers, Capability.REVOKE, {"entitlement": "policy"}),
    ("delete with the whole cascade", ada_equipped, Capability.DELETE, {}),
    ("delete a plain user", ada_with_developers, Capability.DELETE, {}),
    ("delete an absent user", nothing, Capability.DELETE, {}),
    ("disable an equipped user", ada_equipped, Capability.DISABLE, {}),
    ("disable again", ada_disabled, Capability.DISABLE, {}),
    ("enable a disabled user", ada_disabled, Capability.ENABLE, {}),
    ("enable a user not disabled", ada_with_developers, Capability.ENABLE, {}),
]


@pytest.mark.parametrize(
    ("setup", "operation", "extra"),
    [pytest.param(setup, op, extra, id=name) for name, setup, op, extra in SCENARIOS],
)
def test_the_plan_announces_exactly_what_the_real_run_then_does_and_writes_nothing(
    aws_env: EmbeddedAWS,
    iam: IAMClient,
    account: str,
    connector: AwsIamConnector,
    setup: Setup,
    operation: Capability,
    extra: dict[str, Any],
) -> None:
    setup(connector, iam, account)
    request = request_of(operation, account, **dict(extra))
    aws_env.clear_calls()

    plan = connector.plan(operation, request)
    assert writes(aws_env) == []
    assert not plan.changed
    run: Callable[[MutatingRequest], OperationResult] = getattr(connector, operation.value)
    result = run(request)

    assert changes(plan) == done(result)
    assert plan.would_change == result.changed
    assert [(s.action, s.target) for s in plan.steps] == [
        (s.action, s.target) for s in result.steps
    ]
    for step in plan.steps:
        if step.status in WOULD:
            assert step.status is planned_status(step.action)
    assert plan.operation == result.operation
    if result.account is not None and plan.account is not None and plan.account.id:
        assert plan.account == result.account


def test_a_repeat_after_the_real_run_plans_no_change(
    aws_env: EmbeddedAWS, iam: IAMClient, account: str, connector: AwsIamConnector
) -> None:
    ada_equipped(connector, iam, account)
    connector.disable(DisableRequest(ADA))
    assert not connector.plan(Capability.DISABLE, DisableRequest(ADA)).would_change
    connector.delete(DeleteRequest(ADA))
    assert not connector.plan(Capability.DELETE, DeleteRequest(ADA)).would_change


@pytest.mark.parametrize(
    ("operation", "request_", "error"),
    [
        (Capability.CREATE, CreateRequest(ADA, grants=("group:ghosts",)), NotFound),
        (Capability.GRANT, AccessRequest("nobody@example.com", "group:developers"), NotFound),
        (Capability.DELETE, DeleteRequest("root@example.com"), Refused),
        (Capability.DISABLE, DisableRequest("root@example.com"), Refused),
        (Capability.MODIFY, ModifyRequest("root@example.com", first_name="X"), Refused),
    ],
)
def test_the_plan_refuses_what_the_real_run_refuses_before_any_write(
    aws_env: EmbeddedAWS,
    iam: IAMClient,
    account: str,
    operation: Capability,
    request_: MutatingRequest,
    error: type[Exception],
) -> None:
    iam.create_user(UserName="root@example.com", Path="/", Tags=[{"Key": "Email", "Value": "x"}])
    connector = AwsIamConnector.open({"protected": {"users": ["root@example.com"]}})
    aws_env.clear_calls()
    with pytest.raises(error) as planned:
        connector.plan(operation, request_)
    assert writes(aws_env) == []
    run: Callable[[MutatingRequest], OperationResult] = getattr(connector, operation.value)
    with pytest.raises(error) as real:
        run(request_)
    assert str(planned.value) == str(real.value)


def test_the_dry_run_client_sends_reads_and_intercepts_everything_else(
    aws_env: EmbeddedAWS, iam: IAMClient
) -> None:
    dry = DryRunIam(iam)
    dry.client.create_user(UserName=ADA)
    dry.client.tag_user(UserName=ADA, Tags=[{"Key": "a", "Value": "b"}])
    assert dry.client.list_users()["Users"] == []
    assert dry.intercepted == ["create_user", "tag_user"]
    assert aws_env.calls() == ["ListUsers"]


# --- the CLI --------------------------------------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], *args: str, expect: int = 0) -> tuple[str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == expect, (code, out, err)
    return out, err


def cli_json(capsys: pytest.CaptureFixture[str], *args: str, expect: int = 0) -> Any:
    return json.loads(cli(capsys, *args, "--json", expect=expect)[0])


def statuses(data: dict[str, Any]) -> list[tuple[str, str]]:
    return [(step["action"], step["status"]) for step in data["steps"]]


def test_every_mutating_command_plans_with_its_real_runs_json_and_sends_no_write(
    aws_env: EmbeddedAWS, iam: IAMClient, account: str, capsys: pytest.CaptureFixture[str]
) -> None:
    aws_env.clear_calls()
    planned = cli_json(
        capsys, "create", ADA, "--first-name", "Ada", "--grant", "group:developers", "--plan"
    )
    assert statuses(planned) == [("create user", "would create"), ("grant", "would create")]
    assert (planned["plan"], planned["would_change"], planned["changed"]) == (True, True, False)
    assert writes(aws_env) == []
    real = cli_json(capsys, "create", ADA, "--first-name", "Ada", "--grant", "group:developers")
    assert set(real) | {"plan", "would_change"} == set(planned)  # the same shape, and the verdict

    plans = {
        "modify": cli_json(capsys, "modify", ADA, "--email", BO, "--plan"),
        "grant": cli_json(capsys, "grant", ADA, f"policy:{account}", "--plan"),
        "revoke": cli_json(capsys, "revoke", ADA, "group:developers", "--plan"),
        "disable": cli_json(capsys, "disable", ADA, "--plan"),
        "enable": cli_json(capsys, "enable", ADA, "--plan"),
        "delete": cli_json(capsys, "delete", ADA, "--plan"),
    }
    assert statuses(plans["modify"]) == [
        ("rename user", "would update"),
        ("tag user", "would update"),
    ]
    assert statuses(plans["grant"]) == [("grant", "would create")]
    assert statuses(plans["revoke"]) == [("revoke", "would delete")]
    assert ("deny every action", "would update") in statuses(plans["disable"])
    assert statuses(plans["enable"]) == [("enable user", "unchanged")]
    assert statuses(plans["delete"])[-2:] == [
        ("remove from groups", "would delete"),
        ("delete user", "would delete"),
    ]
    assert [call for call in writes(aws_env) if call != "CreateUser"] == [
        "AddUserToGroup"  # the real create's; the plans sent none
    ]
    assert tags_of(iam, ADA)["Email"] == ADA


def test_a_plan_prints_the_same_table_with_the_plans_statuses(
    aws_env: EmbeddedAWS, account: str, capsys: pytest.CaptureFixture[str]
) -> None:
    aws_env.clear_calls()
    out, err = cli(capsys, "create", ADA, "--grant", "group:developers", "--plan")
    assert err == ""
    first, header, *rows = out.splitlines()
    assert first == f"create {ADA} (id not yet known): plan, nothing changed: would change"
    assert header.split() == ["STATUS", "STEP", "TARGET", "DETAIL"]
    assert rows[0].startswith("would create  create user")
    assert writes(aws_env) == []


@pytest.mark.parametrize(
    "args",
    [
        ("create", "not-an-email", "--plan"),
        ("create", ADA, "--grant", "group:ghosts", "--plan"),
        ("grant", "nobody@example.com", "group:developers", "--plan"),
        ("modify", "nobody@example.com", "--first-name", "X", "--plan"),
        ("disable", "nobody@example.com", "--plan"),
    ],
)
def test_a_plan_of_input_the_real_run_refuses_exits_2(
    aws_env: EmbeddedAWS, account: str, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    aws_env.clear_calls()
    _out, err = cli(capsys, *args, expect=2)
    assert err.startswith("hostsim: error: ")
    assert writes(aws_env) == []


# --- IDHub: what fulfilment would do ------------------------------------------------------


def test_request_show_plan_tells_what_fulfilment_would_do_with_reads_only(
    aws: EmbeddedAWS, iam: IAMClient, tmp_path: Path
) -> None:
    group(iam, "developers")
    iam.put_group_policy(GroupName="developers", PolicyName="read", PolicyDocument=document())
    hub = IDHub(aws, tmp_path / "state.sqlite3")
    hub.people("boss@example.com")
    hub.run("identity", "add", ADA, "--manager", "boss@example.com", "--first-name", "Ada")
    hub.run("catalog", "sync")
    request = hub.json(
        "request", "submit", "group:developers", "--for", ADA, "--justification", "work"
    )
    assert request["status"] == "pending"
    aws.clear_calls()

    shown = hub.json("request", "show", str(request["id"]), "--plan")
    assert statuses(shown["plan"]) == [("create user", "would create"), ("grant", "would create")]
    assert shown["plan"]["would_change"] is True
    text = hub.run("request", "show", str(request["id"]), "--plan").stdout
    assert "fulfilling it now would change (plan, reads only):" in text
    assert writes(aws) == []
    assert iam.list_users()["Users"] == []


# --- random sequences of operations -------------------------------------------------------

EMAILS = st.sampled_from([ADA, BO, "Cy@Example.com"])
NAMES = st.one_of(st.none(), st.sampled_from(["", "Ann", "Bo B"]))
ENTITLEMENTS = st.sampled_from(["group:developers", "group:auditors", "policy"])


class PlannedOperations(RuleBasedStateMachine):
    """Any operation, in any state a sequence of operations leaves: its plan sends no write,
    then the real run does exactly what the plan announced (or both refuse alike)."""

    aws: EmbeddedAWS
    iam: IAMClient
    connector: AwsIamConnector
    arn: str

    def __init__(self) -> None:
        super().__init__()
        self.aws.reset()
        group(self.iam, "developers", policy(self.iam, "dev-tools"))
        group(self.iam, "auditors")
        self.arn = policy(self.iam, "reports-read")

    def check(self, operation: Capability, request: MutatingRequest) -> None:
        self.aws.clear_calls()
        try:
            plan: OperationResult | ConnectorError = self.connector.plan(operation, request)
        except ConnectorError as exc:
            plan = exc
        assert writes(self.aws) == []
        run: Callable[[MutatingRequest], OperationResult] = getattr(self.connector, operation.value)
        try:
            result = run(request)
        except ConnectorError as exc:
            assert isinstance(plan, ConnectorError), (plan, exc)
            assert (type(plan), str(plan)) == (type(exc), str(exc))
            assert not any(step.status is StepStatus.DONE for step in exc.steps)
            return
        assert isinstance(plan, OperationResult), (plan, result)
        assert changes(plan) == done(result)

    def entitlement(self, text: str) -> str:
        return f"policy:{self.arn}" if text == "policy" else text

    @initialize(grants=st.lists(ENTITLEMENTS, max_size=2, unique=True))
    def joiner(self, grants: list[str]) -> None:
        """Ada exists from the start, with an access key added by hand."""
        self.connector.create(CreateRequest(ADA, grants=tuple(map(self.entitlement, grants))))
        self.iam.create_access_key(UserName=ADA)

    @rule(
        kind=st.sampled_from(list(PLANNED_REQUESTS)),
        email=EMAILS,
        first=NAMES,
        rename=st.one_of(st.none(), EMAILS),
        grants=st.lists(ENTITLEMENTS, max_size=3, unique=True),
    )
    def operate(
        self,
        kind: Capability,
        email: str,
        first: str | None,
        rename: str | None,
        grants: list[str],
    ) -> None:
        entitlements = tuple(map(self.entitlement, grants))
        requests: dict[Capability, MutatingRequest] = {
            Capability.CREATE: CreateRequest(email, first_name=first, grants=entitlements),
            Capability.MODIFY: ModifyRequest(email, new_email=rename, first_name=first),
            Capability.GRANT: AccessRequest(email, (*entitlements, "group:developers")[0]),
            Capability.REVOKE: AccessRequest(email, (*entitlements, "group:developers")[0]),
            Capability.DELETE: DeleteRequest(email),
            Capability.DISABLE: DisableRequest(email),
            Capability.ENABLE: EnableRequest(email),
        }
        self.check(kind, requests[kind])


@pytest.fixture
def planned_operations(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient, fresh_user_sleeps: list[float]
) -> type[PlannedOperations]:
    PlannedOperations.aws, PlannedOperations.iam = aws, iam
    PlannedOperations.connector = connector
    return PlannedOperations


def test_random_sequences_plan_exactly_what_each_operation_then_does(
    planned_operations: type[PlannedOperations],
) -> None:
    run_state_machine_as_test(
        planned_operations,
        settings=settings(
            max_examples=20,
            stateful_step_count=15,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
