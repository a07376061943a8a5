"""The Identity Center connector: the object the host opens and calls, one method per
capability.

It wires settings, clients and the domain modules together and is the plugin's edge, like
``AwsIamConnector``: every public method runs inside ``aws_errors("Identity Center")``, so
nothing but the host's error hierarchy leaves it. The instance is discovered on first use,
so listing the connector or validating its settings needs no credentials.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import cached_property, partial
from typing import Any

from hostsim.contract import (
    AccessRequest,
    AccountRef,
    AttributeSpec,
    ConnectionStatus,
    ConnectorSchema,
    CreateRequest,
    DeleteRequest,
    EntitlementKind,
    ModifyRequest,
    OperationResult,
    StepLog,
)
from idhub_aws_plugin.client import AwsClients
from idhub_aws_plugin.errors import aws_errors, translate
from idhub_aws_plugin.identity_center import permissions
from idhub_aws_plugin.identity_center.accounts import Accounts
from idhub_aws_plugin.identity_center.assignments import Assignments, Patience, PermissionSets
from idhub_aws_plugin.identity_center.directory import CORE_PATHS, EXTRA_ATTRIBUTES, Directory
from idhub_aws_plugin.identity_center.entitlements import parse_entitlement
from idhub_aws_plugin.identity_center.instance import Instance, discover
from idhub_aws_plugin.identity_center.reconcile import Reconciliation, Row
from idhub_aws_plugin.identity_center.settings import IdentityCenterSettings, load_settings

SERVICE = "Identity Center"
#: Names the connector in every request (and tells its calls from IAM's in the tests' audit).
USER_AGENT = "idhub-aws-identity-center"

ENTITLEMENT_KINDS = (
    EntitlementKind("group", "group:NAME", "An identity-store group (a membership)."),
    EntitlementKind(
        "assignment",
        "assignment:PERMISSIONSET@ACCOUNT",
        "A permission set, by name, assigned to the user in an AWS account.",
    ),
)


class IdentityCenterConnector:
    """Provisions and reconciles Identity Center users, memberships and account assignments."""

    def __init__(self, settings: IdentityCenterSettings, clients: AwsClients | None = None) -> None:
        self.settings = settings
        self._clients = clients or AwsClients(settings, user_agent=USER_AGENT)
        self._translate = partial(translate, service=SERVICE)

    @classmethod
    def open(cls, raw_settings: Mapping[str, Any]) -> IdentityCenterConnector:
        """The factory the host calls with the ``[aws-identity-center]`` table."""
        return cls(load_settings(raw_settings))

    @property
    def _sso_admin(self) -> Any:
        return self._clients.client("sso-admin")

    @cached_property
    def instance(self) -> Instance:
        return discover(self._sso_admin, self.settings)

    @cached_property
    def _directory(self) -> Directory:
        return Directory(self._clients.client("identitystore"), self.instance.identity_store_id)

    @cached_property
    def _permission_sets(self) -> PermissionSets:
        return PermissionSets(self._sso_admin, self.instance.arn)

    @cached_property
    def _assignments(self) -> Assignments:
        patience = Patience(
            timeout_seconds=self.settings.assignment_timeout_seconds,
            poll_seconds=self.settings.assignment_poll_milliseconds / 1000,
        )
        return Assignments(self._sso_admin, self.instance.arn, patience)

    @property
    def _accounts(self) -> Accounts:
        return Accounts(self._directory, self._permission_sets, self._assignments, self._translate)

    def create(self, request: CreateRequest) -> OperationResult:
        with aws_errors(SERVICE):
            return self._accounts.create(request)

    def check_create(self, request: CreateRequest) -> None:
        """The checks ``create`` makes before its first change, reads only."""
        with aws_errors(SERVICE):
            self._accounts.check_create(request)

    def modify(self, request: ModifyRequest) -> OperationResult:
        with aws_errors(SERVICE):
            return self._accounts.modify(request)

    def delete(self, request: DeleteRequest) -> OperationResult:
        with aws_errors(SERVICE):
            return self._accounts.delete(request)

    def grant(self, request: AccessRequest) -> OperationResult:
        return self._change_access("grant", request)

    def revoke(self, request: AccessRequest) -> OperationResult:
        return self._change_access("revoke", request)

    def _change_access(self, operation: str, request: AccessRequest) -> OperationResult:
        entitlement = parse_entitlement(request.entitlement)
        with aws_errors(SERVICE):
            email, user = self._accounts.require(request.email)
            access = self._accounts.access
            resolved = access.resolve(entitlement)
            log = StepLog(operation, self._translate)
            with log.step(operation, str(entitlement)) as outcome:
                change = access.grant if operation == "grant" else access.revoke
                change(user.user_id, resolved, outcome)
            return log.result(AccountRef(user.user_id, user.user_name, email))

    def fetch(self, kind: str) -> Iterator[Row]:
        with aws_errors(SERVICE):
            reads = Reconciliation(self._directory, self._permission_sets, self._assignments)
            yield from reads.fetch(kind)

    def test(self) -> ConnectionStatus:
        """Who the connector runs as (STS), which instance it found (ListInstances, unless
        configured) and whether the identity store answers (one ListUsers page of one)."""
        with aws_errors(SERVICE):
            identity = self._clients.sts.get_caller_identity()
            instance = self.instance
            self._clients.client("identitystore").list_users(
                IdentityStoreId=instance.identity_store_id, MaxResults=1
            )
        return ConnectionStatus(
            ok=True,
            identity=identity["Arn"],
            account=identity["Account"],
            message=(
                f"Identity Center instance {instance.arn}, identity store "
                f"{instance.identity_store_id} reachable; the permissions of "
                "identity-center-policy.json are not simulated (IAM cannot simulate them)"
            ),
        )

    def schema(self) -> ConnectorSchema:
        core = [
            AttributeSpec(name, path, on_create=True, on_modify=True)
            for name, path in CORE_PATHS.items()
        ]
        core.append(AttributeSpec("email", "userName,emails", on_create=True, on_modify=True))
        extra = [
            AttributeSpec(name, path, on_create=True, on_modify=True)
            for name, (path, _field) in EXTRA_ATTRIBUTES.items()
        ]
        return ConnectorSchema(
            identifier="email",
            attributes=tuple(core + extra),
            entitlement_kinds=ENTITLEMENT_KINDS,
            required_permissions=json.dumps(permissions.SHIPPED.document, indent=2),
        )
