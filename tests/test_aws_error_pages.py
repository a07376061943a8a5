"""A 5xx whose body is not AWS's XML (a proxy's or load balancer's HTML page) is transient.

botocore knows such a page only when it starts with ``<html>``; any other body fails its XML
parser with an exception raised past its retry handler, which reached the CLI as an internal
error with no retry and none of the steps already done. The connector now hands botocore a
bare 5xx instead, so it is retried like any 502, and one that outlasts the retries is
``Transient`` carrying the StepLog.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from seeding import fully_equipped_user, policy, user_names

from hostsim.cli import main
from hostsim.contract.errors import ConnectorError, Transient
from hostsim.contract.model import CreateRequest, DeleteRequest, StepStatus
from hostsim.embedded_aws import EmbeddedAWS
from idhub_aws_plugin.connector import AwsIamConnector

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

#: Not well-formed XML (``<meta>`` and ``<hr>`` are never closed), as real proxy pages are not.
PROXY_PAGE = (
    '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>502 Bad Gateway</title></head>'
    "<body><h1>Bad Gateway</h1><hr>proxy.example.net</body></html>"
)
PAGES = {
    "doctype-html": PROXY_PAGE,
    "plain-text": "upstream connect error or disconnect/reset before headers",
    "botocore-known-html": "<html><body><b>Http/1.1 Service Unavailable</b></body></html>",
}


def _equipped(iam: IAMClient, name: str = "ann@example.com") -> None:
    iam.create_group(GroupName="ops")
    fully_equipped_user(iam, name, "ops", policy(iam, "reports-read"))


@pytest.mark.parametrize("page", sorted(PAGES))
def test_a_proxy_page_midway_through_the_cascade_is_retried_by_botocore(
    connector: AwsIamConnector,
    aws: EmbeddedAWS,
    iam: IAMClient,
    fast_backoff: list[float],
    page: str,
) -> None:
    _equipped(iam)
    aws.fail_next("DeleteUser", code="BadGateway", status=502, body=PAGES[page], times=2)
    result = connector.delete(DeleteRequest("ann@example.com"))
    assert result.steps[-1].action == "delete user"
    assert result.steps[-1].status is StepStatus.DONE
    assert aws.pending_faults() == 0
    assert aws.calls().count("DeleteUser") == 3  # botocore's two retries
    assert len(fast_backoff) >= 2
    assert "ann@example.com" not in user_names(iam)


def test_a_proxy_page_that_outlasts_the_retries_is_transient_with_the_steps_done(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient, fast_backoff: list[float]
) -> None:
    _equipped(iam)
    attempts = connector.settings.max_attempts
    aws.fail_next("DeleteUser", code="BadGateway", status=502, body=PROXY_PAGE, times=attempts)
    with pytest.raises(Transient) as caught:
        connector.delete(DeleteRequest("ann@example.com"))
    error = caught.value
    assert error.retryable
    assert "HTTP 502" in error.message and "DeleteUser" in error.message
    assert "<" not in error.message  # the page itself is no message for a person
    by_action = {step.action: step.status for step in error.steps}
    assert by_action["remove from groups"] is StepStatus.DONE
    assert by_action["detach managed policies"] is StepStatus.DONE
    assert by_action["delete user"] is StepStatus.FAILED
    assert aws.calls().count("DeleteUser") == attempts
    # running it again finishes the job
    assert connector.delete(DeleteRequest("ann@example.com")).steps[-1].status is StepStatus.DONE


def test_the_cli_reports_the_steps_and_one_error_line_not_an_internal_error(
    aws_env: EmbeddedAWS,
    iam: IAMClient,
    fast_backoff: list[float],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _equipped(iam)
    config = tmp_path / "idhub.toml"
    config.write_text("[aws-iam]\nmax_attempts = 2\n")
    aws_env.fail_next("DeleteUser", code="BadGateway", status=502, body=PROXY_PAGE, times=2)
    capsys.readouterr()
    code = main(["delete", "ann@example.com", "--json", "--config", str(config)])
    out, err = capsys.readouterr()
    assert code == 1, err
    assert err.startswith("hostsim: error: IAM DeleteUser failed: HTTP 502"), err
    assert err.count("\n") == 1 and "internal error" not in err
    report = json.loads(out)
    statuses = {step["action"]: step["status"] for step in report["steps"]}
    assert statuses["remove from groups"] == "done"
    assert statuses["delete user"] == "failed"


def test_a_proxy_page_on_create_leaves_the_steps_and_a_rerun_finishes(
    connector: AwsIamConnector, aws: EmbeddedAWS, iam: IAMClient, fast_backoff: list[float]
) -> None:
    iam.create_group(GroupName="ops")
    attempts = connector.settings.max_attempts
    aws.fail_next("AddUserToGroup", code="BadGateway", status=503, body=PROXY_PAGE, times=attempts)
    with pytest.raises(Transient) as caught:
        connector.create(CreateRequest("bo@example.com", grants=("group:ops",)))
    assert [(step.action, step.status) for step in caught.value.steps] == [
        ("create user", StepStatus.DONE),
        ("grant", StepStatus.FAILED),
    ]
    again = connector.create(CreateRequest("bo@example.com", grants=("group:ops",)))
    assert [(step.action, step.status) for step in again.steps] == [
        ("create user", StepStatus.UNCHANGED),
        ("tag user", StepStatus.UNCHANGED),
        ("grant", StepStatus.DONE),
    ]


def test_a_non_xml_4xx_is_a_connector_error_without_the_page(
    connector: AwsIamConnector, aws: EmbeddedAWS
) -> None:
    aws.fail_next("GetUser", code="Forbidden", status=403, body=PROXY_PAGE)
    with pytest.raises(ConnectorError) as caught:
        connector.create(CreateRequest("cy@example.com"))
    assert not isinstance(caught.value, Transient)
    assert "not IAM's XML" in caught.value.message
    assert "<" not in caught.value.message
