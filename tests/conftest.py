"""Fixtures for the embedded AWS: one server per test session, emptied before every test.

Starting moto's server costs little, but importing moto and loading the AWS-managed policies
does; one server for the whole session keeps the suite fast, and :meth:`EmbeddedAWS.reset`
before each test keeps tests independent of each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from hostsim.embedded_aws import FOREIGN_AWS_VARIABLES, EmbeddedAWS
from idhub_aws_plugin.connector import AwsIamConnector

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient


@pytest.fixture(scope="session")
def embedded_aws() -> Iterator[EmbeddedAWS]:
    """The session's embedded AWS (with AWS-managed policies, as real accounts have them)."""
    with EmbeddedAWS() as server:
        yield server


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
