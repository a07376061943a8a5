"""The plugin's hook implementations: what IDHub (or hostsim) finds through the ``idhub``
entry point. Only registration lives here: ``aws-iam`` (connector.py, the default; with an
``[organization]`` table organization/connector.py) and ``aws-identity-center``
(identity_center/)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from hostsim.contract import Capability, Connector, ConnectorType, hookimpl
from idhub_aws_plugin.connector import AwsIamConnector
from idhub_aws_plugin.identity_center.connector import IdentityCenterConnector
from idhub_aws_plugin.identity_center.reconcile import FETCH_KINDS as IDENTITY_CENTER_FETCH_KINDS
from idhub_aws_plugin.organization.connector import OrganizationConnector
from idhub_aws_plugin.settings import load_settings

CONNECTOR_NAME = "aws-iam"
IDENTITY_CENTER = "aws-identity-center"
#: What the Identity Center connector implements today (no disable, enable or manage-groups).
IDENTITY_CENTER_CAPABILITIES = frozenset(
    {
        Capability.CREATE,
        Capability.MODIFY,
        Capability.DELETE,
        Capability.GRANT,
        Capability.REVOKE,
        Capability.FETCH,
        Capability.TEST,
        Capability.SCHEMA,
        Capability.PLAN,
        Capability.READ_ACCOUNT,
        Capability.READ_GROUP,
    }
)


def open_aws_iam(raw_settings: Mapping[str, Any]) -> Connector:
    """The aws-iam type's factory: the connector of the one account the credentials reach, or,
    with an ``[organization]`` table, the connector of every account of the organization
    (whose accounts each get a plain connector of their own)."""
    settings = load_settings(raw_settings)
    if settings.organization is not None:
        return OrganizationConnector(settings, AwsIamConnector)
    return AwsIamConnector(settings)


def _open_identity_center(raw_settings: Mapping[str, Any]) -> Connector:
    """The Identity Center connector as the host's ``Connector``: the protocol lists the
    methods of every capability, and this type implements those it declares (the host checks
    exactly that when it opens it)."""
    return cast(Connector, IdentityCenterConnector.open(raw_settings))


@hookimpl
def register_connectors(register: Callable[[ConnectorType], None]) -> None:
    register(
        ConnectorType(
            name=CONNECTOR_NAME,
            description="AWS IAM users, groups and managed policies (boto3)",
            capabilities=frozenset(Capability),
            open=open_aws_iam,
            # chosen when no --connector is given, as before a second type existed
            default=True,
        )
    )
    register(
        ConnectorType(
            name=IDENTITY_CENTER,
            description="IAM Identity Center users, groups and account assignments (boto3)",
            capabilities=IDENTITY_CENTER_CAPABILITIES,
            open=_open_identity_center,
            fetch_kinds=IDENTITY_CENTER_FETCH_KINDS,
        )
    )
