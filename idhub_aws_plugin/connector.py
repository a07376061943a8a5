"""The AWS IAM connector: the object the host opens and calls, one method per capability.

It wires settings, clients and the domain modules together and is the plugin's edge: every
public method runs inside :func:`~idhub_aws_plugin.errors.aws_errors`, so nothing but the host's
error hierarchy leaves it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from hostsim.contract import (
    AccessRequest,
    AccountRef,
    AttributeSpec,
    ConnectionStatus,
    ConnectorSchema,
    CreateRequest,
    DeleteRequest,
    DisableRequest,
    EnableRequest,
    EntitlementKind,
    FetchKind,
    FetchRow,
    GroupRequest,
    ModifyRequest,
    OperationResult,
    StepLog,
)
from idhub_aws_plugin import permissions
from idhub_aws_plugin.accounts import Accounts
from idhub_aws_plugin.client import AwsClients
from idhub_aws_plugin.entitlements import Entitlements, GrantableCache, parse_entitlement
from idhub_aws_plugin.errors import aws_errors, translate
from idhub_aws_plugin.groups import GroupManagement
from idhub_aws_plugin.reconcile import Reconciliation
from idhub_aws_plugin.scope import Scope
from idhub_aws_plugin.settings import Settings, load_settings
from idhub_aws_plugin.suspension import Suspension

ENTITLEMENT_KINDS = (
    EntitlementKind("group", "group:NAME", "An IAM group; members get the policies it carries."),
    EntitlementKind("policy", "policy:ARN", "A managed policy attached to the user directly."),
)


class AwsIamConnector:
    """Provisions and reconciles IAM users, their groups and their managed policies."""

    def __init__(self, settings: Settings, clients: AwsClients | None = None) -> None:
        self.settings = settings
        self._clients = clients or AwsClients(settings)
        self._grantable = GrantableCache()

    @classmethod
    def open(cls, raw_settings: Mapping[str, Any]) -> AwsIamConnector:
        """The factory the host calls with the connector's table of the config file."""
        return cls(load_settings(raw_settings))

    @property
    def _entitlements(self) -> Entitlements:
        return Entitlements(self._clients.iam, Scope(self.settings), self._grantable)

    @property
    def _accounts(self) -> Accounts:
        return Accounts(self._clients.iam, self.settings, self._entitlements)

    def create(self, request: CreateRequest) -> OperationResult:
        with aws_errors():
            return self._accounts.create(request)

    def check_create(self, request: CreateRequest) -> None:
        """The checks ``create`` makes before its first change, reads only: input rules,
        attribute mapping, entitlements grantable, and the guard rails of the user when it
        exists already (protected, outside the path). Whether an existing user is this
        person's, ``create`` finds out itself."""
        with aws_errors():
            self._accounts.check_create(request)

    def modify(self, request: ModifyRequest) -> OperationResult:
        with aws_errors():
            return self._accounts.modify(request)

    def delete(self, request: DeleteRequest) -> OperationResult:
        with aws_errors():
            return self._accounts.delete(request)

    def disable(self, request: DisableRequest) -> OperationResult:
        """Deny every action, deactivate every credential, remove the console password, and
        record what was deactivated (see :mod:`idhub_aws_plugin.suspension`)."""
        with aws_errors():
            return Suspension(self._clients.iam, self._accounts).disable(request.email)

    def enable(self, request: EnableRequest) -> OperationResult:
        """Reactivate exactly what ``disable`` deactivated, then remove the deny."""
        with aws_errors():
            return Suspension(self._clients.iam, self._accounts).enable(request.email)

    def grant(self, request: AccessRequest) -> OperationResult:
        return self._change_access("grant", request)

    def revoke(self, request: AccessRequest) -> OperationResult:
        return self._change_access("revoke", request)

    def _change_access(self, operation: str, request: AccessRequest) -> OperationResult:
        entitlement = parse_entitlement(request.entitlement)
        with aws_errors():
            email, user = self._accounts.require(request.email)
            if operation == "grant":
                self._entitlements.check_grantable(entitlement)
            log = StepLog(operation, translate)
            with log.step(operation, str(entitlement)) as outcome:
                change = (
                    self._entitlements.grant if operation == "grant" else self._entitlements.revoke
                )
                change(user.user_name, entitlement, outcome)
            return log.result(AccountRef(user.user_id, user.user_name, email))

    def create_group(self, request: GroupRequest) -> OperationResult:
        with aws_errors():
            return GroupManagement(self._clients.iam, self.settings).create(request.name)

    def delete_group(self, request: GroupRequest) -> OperationResult:
        with aws_errors():
            return GroupManagement(self._clients.iam, self.settings).delete(request.name)

    def fetch(self, kind: FetchKind) -> Iterator[FetchRow]:
        with aws_errors():
            yield from Reconciliation(self._clients.iam, self.settings).fetch(kind)

    def test(self) -> ConnectionStatus:
        """Who the connector runs as (STS), whether IAM answers, and whether the permissions of
        iam-policy.json are present (simulated); changes nothing."""
        with aws_errors():
            identity = self._clients.sts.get_caller_identity()
            summary = self._clients.iam.get_account_summary()["SummaryMap"]
            principal = permissions.principal_arn(identity["Arn"], self.settings)
            report = permissions.check_permissions(self._clients.iam, principal, self.settings)
        reachable = (
            f"IAM reachable: {summary.get('Users', 0)} users, {summary.get('Groups', 0)} groups, "
            f"{summary.get('Policies', 0)} customer policies"
        )
        if not report.checked:
            verdict = report.note
        elif report.missing:
            verdict = f"missing {len(report.missing)} permission(s) of iam-policy.json"
        else:
            verdict = "every permission of iam-policy.json is granted"
        return ConnectionStatus(
            ok=not report.missing,
            identity=identity["Arn"],
            account=identity["Account"],
            message=f"{reachable}; {verdict}",
            permissions_checked=report.checked,
            missing_permissions=report.missing,
        )

    def schema(self) -> ConnectorSchema:
        return ConnectorSchema(
            identifier="email",
            attributes=tuple(
                AttributeSpec(name, f"tag:{mapping.tag}", mapping.on_create, mapping.on_modify)
                for name, mapping in self.settings.attributes.items()
            ),
            entitlement_kinds=ENTITLEMENT_KINDS,
            required_permissions=json.dumps(permissions.render_policy(self.settings), indent=2),
        )
