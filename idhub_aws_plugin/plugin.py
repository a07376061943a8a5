"""The plugin's hook implementations: what IDHub (or hostsim) finds through the ``idhub``
entry point. Only registration lives here; the connector itself is in connector.py."""

from __future__ import annotations

from collections.abc import Callable

from hostsim.contract import Capability, ConnectorType, hookimpl
from idhub_aws_plugin.connector import AwsIamConnector

CONNECTOR_NAME = "aws-iam"


@hookimpl
def register_connectors(register: Callable[[ConnectorType], None]) -> None:
    register(
        ConnectorType(
            name=CONNECTOR_NAME,
            description="AWS IAM users, groups and managed policies (boto3)",
            capabilities=frozenset(Capability),
            open=AwsIamConnector.open,
        )
    )
