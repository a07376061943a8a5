"""The clients' quick timestamp parser gives what botocore's own gives (issue 16's bench)."""

from __future__ import annotations

import pytest
from botocore.utils import parse_timestamp as botocore_timestamp

from hostsim.contract import Account, FetchKind
from hostsim.embedded_aws import EmbeddedAWS
from idhub_aws_plugin.client import parse_timestamp
from idhub_aws_plugin.connector import AwsIamConnector


@pytest.mark.parametrize(
    "value",
    [
        "2026-12-01T14:21:41Z",
        "2026-12-01T14:21:41.898977Z",
        "2026-12-01T14:21:41.898Z",
        "2026-12-01T14:21:41+00:00",
        "2026-12-01T16:21:41+02:00",
        "1700000000",
        "Tue, 01 Dec 2026 14:21:41 GMT",
    ],
)
def test_the_quick_parser_agrees_with_botocores(value: str) -> None:
    ours, theirs = parse_timestamp(value), botocore_timestamp(value)
    assert ours == theirs
    assert ours.utcoffset() == theirs.utcoffset()


def test_fetched_users_carry_their_creation_time_as_before(aws_env: EmbeddedAWS) -> None:
    iam = aws_env.iam_client()
    made = iam.create_user(UserName="ann@example.com")["User"]["CreateDate"]
    rows = list(AwsIamConnector.open({}).fetch(FetchKind.USERS))
    assert [row.created for row in rows if isinstance(row, Account)] == [str(made)]
