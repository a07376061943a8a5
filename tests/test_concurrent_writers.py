"""Writers racing on one account report only what they did themselves.

When several creates of one email run at once, each looks the user up, finds none, and sends
CreateUser; IAM creates it for one and answers ``EntityAlreadyExists`` to the others. Those
others did not create it: they must not say "done create user", and in particular not "a retry
of CreateUser found it created (the first answer was lost)", which only a CreateUser that
botocore actually retried can claim. Exactly one writer reports the create done.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import boto3
import pytest

from hostsim import bulk_import
from hostsim.bulk_import import RowStatus
from hostsim.contract import AlreadyExists, CreateRequest, OperationResult, StepStatus
from hostsim.embedded_aws import EmbeddedAWS
from hostsim.plugins import get_plugin_manager, load_connectors
from hostsim.runtime import Runtime
from idhub_aws_plugin.client import AwsClients
from idhub_aws_plugin.connector import AwsIamConnector
from idhub_aws_plugin.settings import load_settings

WRITERS = 4
ANOTHER_WRITER = "already exists: created by another writer"
LOST_REPLY = "a retry of CreateUser found it created (the first answer was lost)"


def _writer(aws: EmbeddedAWS, before_create: threading.Barrier) -> AwsIamConnector:
    """A connector of its own (as in another process) whose CreateUser waits until every
    writer has looked the user up and is about to create it."""
    session: boto3.Session = aws.session()

    def hold(**_: Any) -> None:
        before_create.wait()

    session.events.register("before-call.iam.CreateUser", hold)
    settings = load_settings({"endpoint_url": aws.endpoint_url})
    return AwsIamConnector(settings, AwsClients(settings, session=session))


def _create_step(result: OperationResult) -> tuple[StepStatus, str]:
    (step,) = [step for step in result.steps if step.action == "create user"]
    return step.status, step.detail


def test_of_parallel_creates_of_one_email_exactly_one_reports_the_create_done(
    aws_env: EmbeddedAWS,
) -> None:
    before_create = threading.Barrier(WRITERS, timeout=30)
    writers = [_writer(aws_env, before_create) for _ in range(WRITERS)]
    results: list[OperationResult] = []
    errors: list[BaseException] = []

    def create(connector: AwsIamConnector) -> None:
        try:
            results.append(connector.create(CreateRequest("ann@example.com", first_name="Ann")))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=create, args=(writer,)) for writer in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    steps = Counter(_create_step(result) for result in results)
    assert steps == {
        (StepStatus.DONE, "2 attribute tags"): 1,
        (StepStatus.UNCHANGED, ANOTHER_WRITER): WRITERS - 1,
    }
    assert [result.changed for result in results].count(True) == 1
    assert aws_env.calls().count("CreateUser") == WRITERS  # each really sent it once
    assert len({result.account.id for result in results if result.account}) == 1


def test_a_create_botocore_retried_after_a_lost_reply_still_reports_it_done(
    connector: AwsIamConnector, aws: EmbeddedAWS, fast_backoff: list[float]
) -> None:
    aws.fail_next("CreateUser", code="InternalFailure", status=500, lose_reply=True)
    result = connector.create(CreateRequest("bo@example.com"))
    assert _create_step(result) == (StepStatus.DONE, LOST_REPLY)
    assert aws.calls().count("CreateUser") == 2


def test_of_parallel_exclusive_creates_exactly_one_succeeds_and_the_others_change_nothing(
    aws_env: EmbeddedAWS,
) -> None:
    """A create that must be new (a SCIM POST) never adopts another writer's user: the losers
    are refused with AlreadyExists before any write of theirs, so the winner's attributes
    stand."""
    before_create = threading.Barrier(WRITERS, timeout=30)
    writers = [_writer(aws_env, before_create) for _ in range(WRITERS)]
    results: list[tuple[str, OperationResult]] = []
    refused: list[str] = []

    def create(connector: AwsIamConnector, given: str) -> None:
        request = CreateRequest("ann@example.com", first_name=given, exclusive=True)
        try:
            results.append((given, connector.create(request)))
        except AlreadyExists:
            refused.append(given)

    threads = [
        threading.Thread(target=create, args=(writer, f"Ann{index}"))
        for index, writer in enumerate(writers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 1 and len(refused) == WRITERS - 1
    [(winner, result)] = results
    assert _create_step(result)[0] is StepStatus.DONE
    tags = aws_env.iam_client().list_user_tags(UserName="ann@example.com")["Tags"]
    assert {tag["Key"]: tag["Value"] for tag in tags}["FirstName"] == winner
    assert "TagUser" not in aws_env.calls()


def test_an_exclusive_create_refuses_an_existing_account_and_adopts_only_its_own_lost_reply(
    connector: AwsIamConnector, aws: EmbeddedAWS, fast_backoff: list[float]
) -> None:
    connector.create(CreateRequest("cy@example.com", first_name="Cy"))
    aws.clear_calls()
    with pytest.raises(AlreadyExists, match="exists already; nothing was changed"):
        connector.create(CreateRequest("cy@example.com", first_name="Mallory", exclusive=True))
    assert [call for call in aws.calls() if not call.startswith(("Get", "List"))] == []
    aws.fail_next("CreateUser", code="InternalFailure", status=500, lose_reply=True)
    result = connector.create(CreateRequest("di@example.com", exclusive=True))
    assert _create_step(result) == (StepStatus.DONE, LOST_REPLY)


def _runtime() -> Runtime:
    registry = load_connectors(get_plugin_manager())
    return Runtime(registry.choose("aws-iam"), {})


ROWS = 6


@pytest.mark.parametrize("delay", [0.05])
def test_two_imports_of_one_file_create_each_row_once_between_them(
    aws_env: EmbeddedAWS, delay: float
) -> None:
    text = "email,first_name,last_name,display_name,grants\n" + "".join(
        f"p{index}@example.com,P{index},,,\n" for index in range(ROWS)
    )
    aws_env.request_delay = delay  # both imports look every user up before either creates
    runtimes = [_runtime(), _runtime()]
    start = threading.Barrier(2, timeout=30)
    outcomes: list[list[bulk_import.RowResult]] = []

    def run(runtime: Runtime) -> None:
        rows = bulk_import.validate(runtime, bulk_import.read_rows(text.splitlines(True)))
        start.wait()
        outcomes.append(bulk_import.provision(runtime, rows, workers=ROWS))

    threads = [threading.Thread(target=run, args=(runtime,)) for runtime in runtimes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(outcomes) == 2
    for line in range(2, ROWS + 2):
        statuses = sorted(
            result.status for results in outcomes for result in results if result.line == line
        )
        assert statuses.count(RowStatus.CREATED) == 1, (line, statuses)
        assert RowStatus.FAILED not in statuses
    assert aws_env.calls().count("CreateUser") <= 2 * ROWS
