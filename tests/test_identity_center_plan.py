"""Plans of the ``aws-identity-center`` connector (``Connector.plan``, ``--plan``).

The strong check, as for IAM (tests/test_plan.py): for every scenario of a table, the plan
takes the very steps the real run right after takes, its ``would ...`` steps are exactly the
run's ``done`` ones, and the plan sent nothing but reads (identitystore and sso-admin
Describe/List/Get, as the embedded AWS recorded them). Then ``--plan`` through the CLI: a
create, a delete and a bulk import.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from identity_center_seeding import ACCOUNT, OTHER_ACCOUNT, IdentityCenter
from test_cli import as_json
from test_identity_center import hostsim

from hostsim.contract import (
    WOULD,
    AccessRequest,
    Capability,
    CreateRequest,
    DeleteRequest,
    DisableRequest,
    InvalidInput,
    ModifyRequest,
    MutatingRequest,
    NotFound,
    OperationResult,
    StepStatus,
)
from hostsim.embedded_aws import EmbeddedAWS
from idhub_aws_plugin.identity_center.connector import IdentityCenterConnector
from idhub_aws_plugin.identity_center.planning import DryRunIdentityCenter, PlanningClients

ADA = "ada@example.com"
BO = "bo@example.com"
READS = ("Describe", "List", "Get")
GROUP = "group:developers"
ASSIGNMENT = f"assignment:ReadOnly@{ACCOUNT}"
#: A short patience for assignments (the embedded AWS settles one after a status read).
PATIENCE = {"assignment_poll_milliseconds": 10, "assignment_timeout_seconds": 5}


@pytest.fixture
def center(aws: EmbeddedAWS) -> IdentityCenter:
    """Groups developers and auditors, permission sets ReadOnly and PowerUser."""
    made = IdentityCenter(aws)
    made.group("developers")
    made.group("auditors")
    made.permission_set("ReadOnly")
    made.permission_set("PowerUser")
    return made


@pytest.fixture
def connector(aws_env: EmbeddedAWS, center: IdentityCenter) -> IdentityCenterConnector:
    return IdentityCenterConnector.open(PATIENCE)


def writes(aws: EmbeddedAWS) -> list[str]:
    """Every call the embedded AWS received since the last clear that is not a read, of any
    service (identitystore, sso-admin's ``sso``, STS)."""
    return [call for call in aws.calls(None) if not call.startswith(READS)]


def steps(result: OperationResult) -> list[tuple[str, str]]:
    return [(step.action, step.target) for step in result.steps]


def changes(result: OperationResult) -> list[tuple[str, str]]:
    return [(step.action, step.target) for step in result.steps if step.status in WOULD]


def done(result: OperationResult) -> list[tuple[str, str]]:
    return [(step.action, step.target) for step in result.steps if step.status is StepStatus.DONE]


# --- scenarios: (set-up with the connector, operation, request) ----------------------------

Setup = Callable[[IdentityCenterConnector], None]


def nothing(_connector: IdentityCenterConnector) -> None:
    pass


def ada(connector: IdentityCenterConnector) -> None:
    connector.create(CreateRequest(ADA, first_name="Ada", last_name="L", grants=(GROUP,)))


def ada_with_both(connector: IdentityCenterConnector) -> None:
    request = CreateRequest(ADA, first_name="Ada", last_name="L", grants=(GROUP, ASSIGNMENT))
    connector.create(request)


def ada_everywhere(connector: IdentityCenterConnector) -> None:
    """Two memberships and two direct assignments, in two accounts."""
    grants = (GROUP, "group:auditors", ASSIGNMENT, f"assignment:PowerUser@{OTHER_ACCOUNT}")
    connector.create(CreateRequest(ADA, first_name="Ada", last_name="L", grants=grants))


def joiner(*grants: str, last_name: str = "L") -> dict[str, Any]:
    return {"first_name": "Ada", "last_name": last_name, "grants": grants}


SCENARIOS: list[tuple[str, Setup, Capability, MutatingRequest]] = [
    (
        "create a joiner with a group and an assignment",
        nothing,
        Capability.CREATE,
        CreateRequest(ADA, **joiner(GROUP, ASSIGNMENT)),
    ),
    (
        "create resumes: a new last name and a missing assignment",
        ada,
        Capability.CREATE,
        CreateRequest(ADA, **joiner(GROUP, ASSIGNMENT, last_name="Lovelace")),
    ),
    (
        "create that holds",
        ada_with_both,
        Capability.CREATE,
        CreateRequest(ADA, **joiner(GROUP, ASSIGNMENT)),
    ),
    (
        "modify: a new email and first name",
        ada,
        Capability.MODIFY,
        ModifyRequest(ADA, new_email=BO, first_name="Augusta"),
    ),
    ("modify: nothing differs", ada, Capability.MODIFY, ModifyRequest(ADA, first_name="Ada")),
    ("grant a group", ada, Capability.GRANT, AccessRequest(ADA, "group:auditors")),
    ("grant an assignment", ada, Capability.GRANT, AccessRequest(ADA, ASSIGNMENT)),
    ("grant a group held", ada, Capability.GRANT, AccessRequest(ADA, GROUP)),
    ("grant an assignment held", ada_with_both, Capability.GRANT, AccessRequest(ADA, ASSIGNMENT)),
    ("revoke a group", ada, Capability.REVOKE, AccessRequest(ADA, GROUP)),
    ("revoke an assignment", ada_with_both, Capability.REVOKE, AccessRequest(ADA, ASSIGNMENT)),
    ("revoke what is not held", ada, Capability.REVOKE, AccessRequest(ADA, ASSIGNMENT)),
    ("delete with the whole cascade", ada_everywhere, Capability.DELETE, DeleteRequest(ADA)),
    ("delete an absent user", nothing, Capability.DELETE, DeleteRequest(ADA)),
]


@pytest.mark.parametrize(
    ("setup", "operation", "request_"),
    [pytest.param(setup, op, request, id=name) for name, setup, op, request in SCENARIOS],
)
def test_the_plan_takes_the_steps_the_real_run_then_takes_and_sends_only_reads(
    aws_env: EmbeddedAWS,
    connector: IdentityCenterConnector,
    setup: Setup,
    operation: Capability,
    request_: MutatingRequest,
) -> None:
    setup(connector)
    aws_env.clear_calls()
    plan = connector.plan(operation, request_)
    assert writes(aws_env) == []
    assert aws_env.calls("identitystore")  # it did read the store
    assert "DescribeAccountAssignmentCreationStatus" not in aws_env.calls("sso")  # no poll

    real: OperationResult = getattr(connector, operation.value)(request_)
    assert steps(plan) == steps(real)
    assert changes(plan) == done(real)
    for planned, ran in zip(plan.steps, real.steps, strict=True):
        if planned.status not in WOULD:
            assert planned.status is ran.status  # unchanged both times
    assert plan.would_change is real.changed
    if real.account is not None and plan.account is not None and plan.account.id:
        assert plan.account.id == real.account.id  # an existing user's id, known to the plan

    if not getattr(request_, "new_email", None):  # a rename's email is gone after the run
        again = connector.plan(operation, request_)
        assert changes(again) == []  # the run made it hold


def test_a_plan_names_a_step_by_what_it_would_do(connector: IdentityCenterConnector) -> None:
    ada_everywhere(connector)
    plan = connector.plan(Capability.DELETE, DeleteRequest(ADA))
    assert [(step.action, step.status) for step in plan.steps] == [
        ("delete assignment", StepStatus.WOULD_DELETE),
        ("delete assignment", StepStatus.WOULD_DELETE),
        ("remove from group", StepStatus.WOULD_DELETE),
        ("remove from group", StepStatus.WOULD_DELETE),
        ("delete user", StepStatus.WOULD_DELETE),
    ]
    moved = connector.plan(Capability.MODIFY, ModifyRequest(ADA, first_name="Augusta"))
    assert [(step.action, step.status, step.detail) for step in moved.steps] == [
        ("update user", StepStatus.WOULD_UPDATE, "name.givenName")
    ]


def test_the_plan_refuses_what_the_real_run_refuses_before_any_write(
    aws_env: EmbeddedAWS, connector: IdentityCenterConnector, center: IdentityCenter
) -> None:
    aws_env.clear_calls()
    with pytest.raises(NotFound, match="group 'ghosts' does not exist"):
        connector.plan(Capability.CREATE, CreateRequest(ADA, **joiner("group:ghosts")))
    with pytest.raises(NotFound, match="permission set 'Nope'"):
        nope = CreateRequest(ADA, **joiner(f"assignment:Nope@{ACCOUNT}"))
        connector.plan(Capability.CREATE, nope)
    with pytest.raises(NotFound, match="no account for"):
        connector.plan(Capability.GRANT, AccessRequest(ADA, GROUP))
    with pytest.raises(InvalidInput, match="last_name"):
        connector.plan(Capability.CREATE, CreateRequest(ADA, first_name="Ada"))
    with pytest.raises(InvalidInput, match="cannot plan 'disable'"):
        connector.plan(Capability.DISABLE, DisableRequest(ADA))
    assert writes(aws_env) == []
    assert center.user_ids() == set()


def test_plan_many_plans_each_request_in_order_and_yields_the_refused_ones_errors(
    aws_env: EmbeddedAWS, connector: IdentityCenterConnector
) -> None:
    ada(connector)
    aws_env.clear_calls()
    requests = [
        CreateRequest(ADA, **joiner(GROUP)),
        CreateRequest(BO, first_name="Bo", last_name="N", grants=(GROUP, ASSIGNMENT)),
        CreateRequest("cy@example.com", **joiner("group:ghosts")),
    ]
    held, new, refused = connector.plan_many(Capability.CREATE, requests)
    assert isinstance(held, OperationResult) and changes(held) == []
    assert isinstance(new, OperationResult)
    assert changes(new) == [("create user", BO), ("grant", GROUP), ("grant", ASSIGNMENT)]
    assert isinstance(refused, NotFound)
    assert writes(aws_env) == []
    # one planner for all: the permission sets were listed once
    assert aws_env.calls("sso").count("ListPermissionSets") == 1


def test_the_dry_run_client_sends_reads_and_intercepts_everything_else(
    aws_env: EmbeddedAWS, center: IdentityCenter
) -> None:
    dry = DryRunIdentityCenter(center.store)
    aws_env.clear_calls()
    made = dry.create_user(IdentityStoreId=center.store_id, UserName=ADA, DisplayName="A")
    assert made["UserId"] == ""
    dry.update_user(IdentityStoreId=center.store_id, UserId="x", Operations=[])
    assert dry.list_users(IdentityStoreId=center.store_id)["Users"] == []
    assert dry.intercepted == ["create_user", "update_user"]
    assert aws_env.calls("identitystore") == ["ListUsers"]

    sso = DryRunIdentityCenter(center.sso)
    started = sso.create_account_assignment(
        InstanceArn=center.instance_arn,
        TargetId=ACCOUNT,
        TargetType="AWS_ACCOUNT",
        PermissionSetArn="arn:aws:sso:::permissionSet/x",
        PrincipalType="USER",
        PrincipalId="u",
    )
    assert started["AccountAssignmentCreationStatus"]["Status"] == "SUCCEEDED"
    assert aws_env.calls("sso") == []


def test_reads_about_the_user_a_plan_would_create_are_answered_without_a_call(
    aws_env: EmbeddedAWS, connector: IdentityCenterConnector, center: IdentityCenter
) -> None:
    clients = PlanningClients(connector.settings, connector._clients)
    planner = IdentityCenterConnector(connector.settings, clients)
    aws_env.clear_calls()
    plan = planner.create(CreateRequest(ADA, **joiner(GROUP, ASSIGNMENT)))
    assert plan.account is not None and plan.account.id == ""
    assert clients.intercepted == [
        "create_user",
        "create_group_membership",
        "create_account_assignment",
    ]
    assert "GetGroupMembershipId" not in aws_env.calls("identitystore")
    assert "ListAccountAssignmentsForPrincipal" not in aws_env.calls("sso")


# --- the CLI --------------------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """The connector's table with the short patience of the ``connector`` fixture."""
    path = tmp_path / "idhub.toml"
    path.write_text(
        "[aws-identity-center]\n" + "".join(f"{k} = {v}\n" for k, v in PATIENCE.items())
    )
    return path


def statuses(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(s["action"], s["target"], s["status"]) for s in data["steps"]]


def test_create_and_delete_plan_through_the_cli_with_the_real_runs_shape_and_no_write(
    aws: EmbeddedAWS, center: IdentityCenter, config: Path
) -> None:
    args = ("create", ADA, "--first-name", "Ada", "--last-name", "L")
    grants = ("--grant", GROUP, "--grant", ASSIGNMENT)
    aws.clear_calls()
    planned = as_json(hostsim(aws, config, *args, *grants, "--plan", "--json"))
    assert statuses(planned) == [
        ("create user", ADA, "would create"),
        ("grant", GROUP, "would create"),
        ("grant", ASSIGNMENT, "would create"),
    ]
    assert (planned["plan"], planned["would_change"], planned["changed"]) == (True, True, False)
    assert planned["steps"][2]["detail"] == "asynchronous in AWS: the run awaits it"
    assert writes(aws) == []
    assert center.user_ids() == set()
    table = hostsim(aws, config, *args, *grants, "--plan").stdout.splitlines()
    assert table[0] == f"create {ADA} (id not yet known): plan, nothing changed: would change"

    real = as_json(hostsim(aws, config, *args, *grants, "--json"))
    assert [(a, t) for a, t, s in statuses(real) if s == "done"] == [
        (a, t) for a, t, _s in statuses(planned)
    ]
    assert set(real) | {"plan", "would_change"} == set(planned)

    aws.clear_calls()
    gone = as_json(hostsim(aws, config, "delete", ADA, "--plan", "--json"))
    assert statuses(gone) == [
        ("delete assignment", ASSIGNMENT, "would delete"),
        ("remove from group", GROUP, "would delete"),
        ("delete user", ADA, "would delete"),
    ]
    assert gone["account"]["id"] == real["account"]["id"]
    assert writes(aws) == []
    assert center.user(ADA) is not None
    hostsim(aws, config, "disable", ADA, "--plan", expect=2)  # the type has no disable


def test_import_plan_tells_each_rows_fate_with_reads_only(
    aws_env: EmbeddedAWS, center: IdentityCenter, config: Path, tmp_path: Path
) -> None:
    hostsim(aws_env, config, "create", ADA, "--first-name", "Ada", "--last-name", "L")
    rows = tmp_path / "joiners.csv"
    rows.write_text(
        "email,first_name,last_name,display_name,grants\n"
        f"{ADA},Ada,L,,\n"
        f"bo@example.com,Bo,Ng,,{GROUP};{ASSIGNMENT}\n"
        f"cy@example.com,Cy,Lee,,{GROUP}\n"
    )
    aws_env.clear_calls()
    plan = as_json(hostsim(aws_env, config, "import", str(rows), "--plan", "--json"))
    assert [(row["email"], row["status"]) for row in plan["rows"]] == [
        (ADA, "unchanged"),
        (BO, "would create"),
        ("cy@example.com", "would create"),
    ]
    assert plan["summary"] == {"would create": 2, "would update": 0, "unchanged": 1, "failed": 0}
    assert writes(aws_env) == []
    assert center.user(BO) is None

    ran = as_json(hostsim(aws_env, config, "import", str(rows), "--json"))
    assert [(row["email"], row["status"]) for row in ran["rows"]] == [
        (ADA, "unchanged"),
        (BO, "created"),
        ("cy@example.com", "created"),
    ]
    bo = center.user(BO)
    assert bo is not None and len(center.assignments(bo["UserId"])) == 1

    rows.write_text(rows.read_text() + "dee@example.com,Dee,Ra,,group:ghosts\n")
    aws_env.clear_calls()
    refused = hostsim(aws_env, config, "import", str(rows), "--plan", expect=2)
    assert "line 5" in refused.stderr and "group 'ghosts' does not exist" in refused.stderr
    assert writes(aws_env) == []


def test_a_bulk_plan_of_creates_looks_its_users_and_groups_up_in_one_read_of_the_store(
    aws_env: EmbeddedAWS, connector: IdentityCenterConnector
) -> None:
    ada(connector)
    aws_env.clear_calls()
    joiners = [f"joiner{index:02}@example.com" for index in range(30)]
    requests = [CreateRequest(ADA, **joiner(GROUP))] + [
        CreateRequest(email, first_name="J", last_name="N", grants=(GROUP, "group:auditors"))
        for email in joiners
    ]
    plans = list(connector.plan_many(Capability.CREATE, requests))
    assert all(isinstance(plan, OperationResult) for plan in plans)
    held, *new = plans
    assert isinstance(held, OperationResult) and changes(held) == []
    for email, plan in zip(joiners, new, strict=True):
        assert isinstance(plan, OperationResult)
        assert changes(plan) == [
            ("create user", email),
            ("grant", GROUP),
            ("grant", "group:auditors"),
        ]
    called = aws_env.calls("identitystore")
    # the store's names read once; no lookup a joiner, none a grant: the existing user alone
    # is read (DescribeUser and its memberships), whatever the file's length
    assert called.count("GetUserId") == 0
    assert called.count("GetGroupId") == 0
    assert called.count("ListUsers") == 1 and called.count("ListGroups") == 1
    assert len(called) <= 8, called
    assert writes(aws_env) == []
    # a single plan still asks AWS, as the real run does
    aws_env.clear_calls()
    connector.plan(Capability.CREATE, CreateRequest(BO, **joiner(GROUP)))
    assert aws_env.calls("identitystore").count("GetUserId") == 1
