"""The Identity Center connector: the object the host opens and calls, one method per
capability.

It wires settings, clients and the domain modules together and is the plugin's edge, like
``AwsIamConnector``: every public method runs inside ``aws_errors("Identity Center")``, so
nothing but the host's error hierarchy leaves it. The instance is discovered on first use,
so listing the connector or validating its settings needs no credentials.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property, partial
from typing import Any

from hostsim.contract import (
    AccessRequest,
    AccountDetail,
    AccountLookup,
    AccountRef,
    AttributeSpec,
    Capability,
    ConnectionStatus,
    ConnectorError,
    ConnectorSchema,
    CreateRequest,
    DeleteRequest,
    EntitlementKind,
    GroupDetail,
    GroupRequest,
    ModifyRequest,
    MutatingRequest,
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
from idhub_aws_plugin.identity_center.lookup import Lookup
from idhub_aws_plugin.identity_center.planning import (
    PlanningClients,
    StoreNames,
    plan_each,
    plan_on,
)
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

    def read_account(self, lookup: AccountLookup) -> AccountDetail | None:
        """One user by email or id, with its memberships and direct assignments (lookup.py)."""
        with aws_errors(SERVICE):
            return self._lookup.account(lookup)

    def read_group(self, request: GroupRequest) -> GroupDetail | None:
        """One group by display name, with its members' ids (lookup.py)."""
        with aws_errors(SERVICE):
            return self._lookup.group(request.name)

    @property
    def _lookup(self) -> Lookup:
        return Lookup(self._directory, self._permission_sets, self._assignments)

    def plan(self, operation: Capability, request: MutatingRequest) -> OperationResult:
        """What ``operation`` would do: the operation itself, run on identitystore and
        sso-admin clients that send their reads and no write (see
        :mod:`idhub_aws_plugin.identity_center.planning`)."""
        with aws_errors(SERVICE):
            return plan_on(self._planner(), operation, request)

    def plan_many(
        self, operation: Capability, requests: Sequence[MutatingRequest]
    ) -> Iterator[OperationResult | ConnectorError]:
        """Plans in the order of ``requests``, on one planner (the instance and the
        permission sets read once); a request the real run would refuse yields its error.
        Creates (a bulk import) look their users and groups up in the store's names, read
        once (ListUsers, ListGroups), not with a GetUserId a row."""
        with aws_errors(SERVICE):
            names = None
            if operation is Capability.CREATE:
                names = StoreNames.read(
                    self._clients.client("identitystore"), self.instance.identity_store_id
                )
            yield from plan_each(self._planner(names), operation, requests)

    def _planner(self, names: StoreNames | None = None) -> IdentityCenterConnector:
        """This connector on dry-run clients over its own (with the store's ``names``)."""
        clients = PlanningClients(self.settings, self._clients, names)
        return IdentityCenterConnector(self.settings, clients)

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
            # the identity store requires a display name: the connector derives it from the
            # first and last names when none is given
            AttributeSpec(
                name, path, on_create=True, on_modify=True, defaulted=name == "display_name"
            )
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
