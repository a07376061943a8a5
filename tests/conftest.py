"""Fixtures for the embedded AWS: one server per test session, emptied before every test.

Starting moto's server costs little, but importing moto and loading the AWS-managed policies
does; one server for the whole session keeps the suite fast, and :meth:`EmbeddedAWS.reset`
before each test keeps tests independent of each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import botocore.retryhandler
import pytest
from botocore.retries.standard import ExponentialBackoff
from policy_audit import CONNECTOR_ACTIONS

from hostsim.embedded_aws import FOREIGN_AWS_VARIABLES, EmbeddedAWS
from idhub_aws_plugin import accounts
from idhub_aws_plugin.accounts import FreshUserWait
from idhub_aws_plugin.connector import AwsIamConnector

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient


@pytest.fixture(scope="session")
def embedded_aws() -> Iterator[EmbeddedAWS]:
    """The session's embedded AWS (with AWS-managed policies, as real accounts have them).

    It records every action the connector sends, in-process or through the CLI; when the
    session ends, an action that the connector's policy file (iam-policy.json,
    identity-center-policy.json) does not allow fails the run.
    """
    with EmbeddedAWS() as server:
        server.listen(CONNECTOR_ACTIONS)
        yield server
    unexpected = CONNECTOR_ACTIONS.not_allowed()
    assert not unexpected, f"a connector sent actions its policy file lacks: {unexpected}"


@pytest.fixture
def aws(embedded_aws: EmbeddedAWS) -> EmbeddedAWS:
    """The embedded AWS, empty: no users, no faults armed, no calls recorded, no delay."""
    embedded_aws.reset()
    embedded_aws.request_delay = 0.0
    return embedded_aws


@pytest.fixture
def aws_env(aws: EmbeddedAWS, monkeypatch: pytest.MonkeyPatch) -> EmbeddedAWS:
    """The empty embedded AWS, with this process's environment pointing every AWS SDK client
    at it (and away from the developer's own profiles and credentials) for one test."""
    for name in FOREIGN_AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in aws.client_env().items():
        monkeypatch.setenv(name, value)
    return aws


@pytest.fixture
def iam(aws: EmbeddedAWS) -> IAMClient:
    """A plain boto3 IAM client for the embedded AWS, as an administrator would use.

    Fake credentials and region are passed explicitly and the developer's ``~/.aws`` files
    and ``AWS_PROFILE`` are ignored, so nothing real can leak in.
    """
    return aws.iam_client()


@pytest.fixture
def connector(aws_env: EmbeddedAWS) -> AwsIamConnector:
    """The connector as the host opens it, with default settings: the endpoint comes from the
    environment (AWS_ENDPOINT_URL), as an operator's would."""
    return AwsIamConnector.open({})


#: How much shorter than botocore's own the backoff of the :func:`fast_backoff` fixture is.
BACKOFF_SCALE = 0.01


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's retry backoff, computed by botocore as usual and slept 100 times shorter.

    Throttling backs off ``rand * 2**attempt`` seconds in botocore's standard mode, so a test
    that throttles a dozen calls would sleep for many seconds. Only the sleep is shortened:
    whether and how often a call is retried is still botocore's decision, made from the
    connector's retry settings. The list returned collects each delay botocore computed (in
    its own seconds), so a test can see botocore did the retrying. Affects clients made after
    the fixture (the connector makes its clients lazily, so any connector of the test).
    """
    computed: list[float] = []
    standard_delay = ExponentialBackoff.delay_amount
    legacy_delay = botocore.retryhandler.delay_exponential

    def standard(self: ExponentialBackoff, context: Any) -> float:
        computed.append(standard_delay(self, context))
        return computed[-1] * BACKOFF_SCALE

    def legacy(*args: Any, **kwargs: Any) -> float:
        computed.append(legacy_delay(*args, **kwargs))
        return computed[-1] * BACKOFF_SCALE

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", standard)
    monkeypatch.setattr(botocore.retryhandler, "delay_exponential", legacy)
    return computed


@pytest.fixture
def fresh_user_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The connector's wait for a user it has just created, with the delays recorded instead
    of slept (the number and bound of the tries are the real ones)."""
    slept: list[float] = []
    sleep: Callable[[float], None] = slept.append
    monkeypatch.setattr(accounts, "FRESH_USER_WAIT", FreshUserWait(sleep=sleep))
    return slept
