"""The AWS IAM connector: the object the host opens and calls, one method per capability.

It wires settings, clients and the domain modules together and is the plugin's edge: every
public method runs inside :func:`~idhub_aws_plugin.errors.aws_errors`, so nothing but the host's
error hierarchy leaves it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

from attrs import evolve
from botocore.exceptions import ClientError

from hostsim.contract import (
    PLANNED_REQUESTS,
    AccessRequest,
    AccountDetail,
    AccountLookup,
    AccountRef,
    AttributeSpec,
    Capability,
    ConfigurationError,
    ConnectionStatus,
    ConnectorError,
    ConnectorSchema,
    CreateRequest,
    DeleteRequest,
    DisableRequest,
    EnableRequest,
    EntitlementKind,
    FetchKind,
    FetchRow,
    GroupDetail,
    GroupRequest,
    InvalidInput,
    ModifyRequest,
    MutatingRequest,
    OperationResult,
    StepLog,
    TargetAccount,
)
from idhub_aws_plugin import permissions
from idhub_aws_plugin.accounts import Accounts
from idhub_aws_plugin.client import AwsClients
from idhub_aws_plugin.entitlements import Entitlements, GrantableCache, parse_entitlement
from idhub_aws_plugin.errors import aws_errors, is_code, translate
from idhub_aws_plugin.groups import GroupManagement
from idhub_aws_plugin.lookup import Lookup
from idhub_aws_plugin.planning import (
    AccountSnapshot,
    DryRunIam,
    PlanningClients,
    SnapshotIam,
    as_plan,
)
from idhub_aws_plugin.reconcile import Reconciliation
from idhub_aws_plugin.scope import Scope
from idhub_aws_plugin.settings import Settings, load_settings
from idhub_aws_plugin.suspension import Suspension

ENTITLEMENT_KINDS = (
    EntitlementKind("group", "group:NAME", "An IAM group; members get the policies it carries."),
    EntitlementKind("policy", "policy:ARN", "A managed policy attached to the user directly."),
)


class AwsIamConnector:
    """Provisions and reconciles IAM users, their groups and their managed policies, in the
    one account its credentials reach (an organization's accounts: see
    :mod:`idhub_aws_plugin.organization`, which makes one of these per account)."""

    def __init__(
        self,
        settings: Settings,
        clients: AwsClients | None = None,
        account_id: str | None = None,
    ) -> None:
        """``account_id``: the account this connector is bound to (``for_account``, or one
        account of an organization); its fetch rows and read accounts carry it."""
        self.settings = settings
        self._clients = clients or AwsClients(settings)
        self._grantable = GrantableCache()
        self.account_id = account_id

    @classmethod
    def open(cls, raw_settings: Mapping[str, Any]) -> AwsIamConnector:
        """A connector of one account from the connector's table of the config file. Settings
        with an ``[organization]`` table are refused here: they open an organization connector
        (:func:`idhub_aws_plugin.plugin.open_aws_iam`, the factory the host calls)."""
        settings = load_settings(raw_settings)
        if settings.organization is not None:
            raise ConfigurationError(
                "settings with [aws-iam.organization] open an organization connector "
                "(idhub_aws_plugin.plugin.open_aws_iam), not one of a single account"
            )
        return cls(settings)

    def spans_accounts(self) -> bool:
        """One account: changes need no ``--account``."""
        return False

    def target_accounts(self, check: bool = False) -> tuple[TargetAccount, ...]:
        """The one account the credentials reach (STS GetCallerIdentity), named by its alias
        (IAM ListAccountAliases; "" when there is none or it may not be read). Reaching STS
        is the check, so ``check`` asks nothing more."""
        with aws_errors():
            account = self._clients.sts.get_caller_identity()["Account"]
            return (TargetAccount(account, self._alias(), via="base credentials"),)

    def _alias(self) -> str:
        try:
            aliases = self._clients.iam.list_account_aliases()["AccountAliases"]
        except ClientError as exc:
            if is_code(exc, "AccessDenied", "AccessDeniedException"):
                return ""
            raise
        return aliases[0] if aliases else ""

    def for_account(self, account_id: str) -> AwsIamConnector:
        """This connector bound to ``account_id`` (its rows stamped with it), provided the
        credentials reach that account (InvalidInput otherwise, one STS read sent)."""
        if account_id == self.account_id:
            return self
        with aws_errors():
            reached = self._clients.sts.get_caller_identity()["Account"]
        if reached != account_id:
            raise InvalidInput(
                f"account {account_id} is out of reach: these credentials act in account {reached}"
            )
        bound = AwsIamConnector(self.settings, self._clients, account_id)
        bound._grantable = self._grantable
        return bound

    def _stamped(self, row: Any) -> Any:
        """``row`` carrying this connector's account, when it is bound to one."""
        return row if self.account_id is None else evolve(row, account_id=self.account_id)

    @property
    def _entitlements(self) -> Entitlements:
        return Entitlements(self._clients.iam, Scope(self.settings), self._grantable)

    @property
    def _accounts(self) -> Accounts:
        return Accounts(self._clients.iam, self.settings, self._entitlements)

    @property
    def _lookup(self) -> Lookup:
        return Lookup(self._clients.iam, self.settings, self._accounts)

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

    def fetch(self, kind: str) -> Iterator[FetchRow]:
        with aws_errors():
            rows = Reconciliation(self._clients.iam, self.settings).fetch(FetchKind(kind))
            if self.account_id is None:
                yield from rows
            else:
                yield from (self._stamped(row) for row in rows)

    def read_account(self, lookup: AccountLookup) -> AccountDetail | None:
        """One user with its groups and policies: four calls by email or by id with a name
        hint (see :mod:`idhub_aws_plugin.lookup`); None when there is none in scope."""
        with aws_errors():
            detail = self._lookup.account(lookup)
        if detail is None or self.account_id is None:
            return detail
        return evolve(detail, account=self._stamped(detail.account))

    def read_group(self, request: GroupRequest) -> GroupDetail | None:
        """One group with its members in scope (GetGroup, one call a page of members)."""
        with aws_errors():
            return self._lookup.group(request.name)

    def plan(self, operation: Capability, request: MutatingRequest) -> OperationResult:
        """What ``operation`` would do: the operation itself, run on an IAM client that sends
        its reads and no write (see :mod:`idhub_aws_plugin.planning`)."""
        with aws_errors():
            return self._plan_with(self._planner(self._clients.iam), operation, request)

    def plan_many(
        self, operation: Capability, requests: Sequence[MutatingRequest]
    ) -> Iterator[OperationResult | ConnectorError]:
        """Plans in the order of ``requests``; a request the real run would refuse yields its
        error. Creates (a bulk import) are planned from one bulk read of the account, so a
        file of 1,000 rows costs a few pages, not a GetUser and two listings a row."""
        if operation is not Capability.CREATE:
            planner = self._planner(self._clients.iam)
            for request in requests:
                yield _planned_or_error(partial(self._plan_with, planner, operation, request))
            return
        with aws_errors():
            snapshot = AccountSnapshot.read(self._clients.iam)
        planner = self._planner(SnapshotIam(self._clients.iam, snapshot))
        for request in requests:
            yield _planned_or_error(partial(planner._planned_create, request))

    def _planner(self, iam: Any) -> AwsIamConnector:
        """This connector on a dry-run IAM client over ``iam``, sharing the grantable cache."""
        clients = PlanningClients(self.settings, self._clients, DryRunIam(iam))
        planner = AwsIamConnector(self.settings, clients, self.account_id)
        planner._grantable = self._grantable
        return planner

    @staticmethod
    def _plan_with(
        planner: AwsIamConnector, operation: Capability, request: MutatingRequest
    ) -> OperationResult:
        if operation not in PLANNED_REQUESTS:
            raise InvalidInput(f"cannot plan {operation.value!r}")
        run: Callable[[MutatingRequest], OperationResult] = getattr(planner, operation.value)
        return as_plan(run(request))

    def _planned_create(self, request: MutatingRequest) -> OperationResult:
        """A create's plan on a planner: ``check_create``'s scope of an existing user first
        (the rows a bulk import refuses as a whole), then the create itself."""
        assert isinstance(request, CreateRequest)
        self.check_create(request)
        return as_plan(self.create(request))

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


def _planned_or_error(plan: Callable[[], OperationResult]) -> OperationResult | ConnectorError:
    """One request's plan, or the error its real run would raise (the others are planned)."""
    try:
        with aws_errors():
            return plan()
    except ConnectorError as exc:
        return exc
