"""The aws-iam connector over every account of an AWS organization.

Unbound, it reads: ``fetch`` reads every account in scope concurrently (bounded by
``max_concurrency``), yields their rows account by account in the order of ``target_accounts``
(by id), each stamped with its ``account_id``, then raises PartialRead naming every account it
could not read. Everything that acts on one account (a change, a single read, a plan) is
refused with InvalidInput before any call: ``for_account(ID)`` gives the plain connector of
that account (its own clients, through its role, and its own guard-rail cache), which does it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from typing import NoReturn, Protocol

from attrs import evolve

from hostsim.contract import (
    AccessRequest,
    AccountDetail,
    AccountLookup,
    Capability,
    ConnectionStatus,
    Connector,
    ConnectorError,
    ConnectorSchema,
    CreateRequest,
    DeleteRequest,
    DisableRequest,
    EnableRequest,
    FetchRow,
    GroupDetail,
    GroupRequest,
    InvalidInput,
    ModifyRequest,
    MutatingRequest,
    OperationResult,
    PartialRead,
    TargetAccount,
)
from idhub_aws_plugin import permissions
from idhub_aws_plugin.client import AwsClients
from idhub_aws_plugin.errors import aws_errors
from idhub_aws_plugin.organization.credentials import AccountClients
from idhub_aws_plugin.organization.fanout import fan_out, one_line
from idhub_aws_plugin.organization.scope import AccountScope, OrganizationMap, Target
from idhub_aws_plugin.settings import Organization, Settings


class OpenAccount(Protocol):
    """How the connector of one account is made (the plain aws-iam connector's constructor,
    handed in so this package does not import it)."""

    def __call__(
        self, settings: Settings, clients: AwsClients, account_id: str | None
    ) -> Connector: ...


class OrganizationConnector:
    """The accounts of an organization, read together and changed one at a time."""

    def __init__(
        self, settings: Settings, open_account: OpenAccount, clients: AwsClients | None = None
    ) -> None:
        """``clients``: the base clients (default: from the settings' credential chain and
        ``assume_role``); each member account's session assumes its role from theirs."""
        assert settings.organization is not None, "an organization connector needs [organization]"
        self.settings = settings
        self._organization: Organization = settings.organization
        self._open_account = open_account
        self._accounts = AccountClients(settings, clients or AwsClients(settings))
        self._lock = threading.Lock()
        self._scope: AccountScope | None = None
        self._bound: dict[str, Connector] = {}

    # -- scope and accounts --------------------------------------------------------------------

    def _account_scope(self) -> AccountScope:
        """The organization read once (DescribeOrganization, ListAccounts) and narrowed."""
        with self._lock:
            if self._scope is None:
                with aws_errors("Organizations"):
                    organization = OrganizationMap.read(self._accounts.base.client("organizations"))
                self._scope = AccountScope(self._organization, organization)
            return self._scope

    def spans_accounts(self) -> bool:
        """Always: the settings name an organization (no call)."""
        return True

    def target_accounts(self, check: bool = False) -> tuple[TargetAccount, ...]:
        """Every account in scope, by id; with ``check``, each one's reachability tried
        concurrently: GetCallerIdentity on a member's assumed clients, the base credentials'
        account for the management account."""
        targets = self._account_scope().targets
        if not check:
            return tuple(self._listed(target, target.unreachable) for target in targets)
        checked = fan_out(targets, self._reach_problem, self._organization.max_concurrency)
        return tuple(
            self._listed(
                target, one_line(outcome) if isinstance(outcome, ConnectorError) else outcome
            )
            for target, outcome in checked
        )

    def _listed(self, target: Target, problem: str) -> TargetAccount:
        return TargetAccount(
            id=target.id,
            name=target.name,
            reachable=not problem,
            reason=problem,
            management=target.management,
            via="" if target.account is None else self._accounts.via(target),
        )

    def _reach_problem(self, target: Target) -> str:
        """Why the connector cannot act in ``target`` now ("" when it can)."""
        if target.unreachable:
            return target.unreachable
        with aws_errors("STS"):
            if target.management:
                return self._accounts.management_problem(target)
            reached = self._accounts.clients(target).sts.get_caller_identity()["Account"]
        if reached != target.id:
            return f"its role's credentials act in account {reached}, not {target.id}"
        return ""

    def for_account(self, account_id: str) -> Connector:
        """The plain connector of one account in scope, kept for this connector's life (so its
        clients and guard-rail cache are reused); InvalidInput with the reason otherwise."""
        scope = self._account_scope()
        target = scope.target(account_id)
        if target is None:
            reason = scope.out_of_scope(account_id) or "it is not in scope"
            raise InvalidInput(f"account {account_id} is out of scope: {reason}")
        if target.unreachable:
            raise InvalidInput(f"account {account_id} cannot be reached: {target.unreachable}")
        if target.management:
            with aws_errors("STS"):
                problem = self._accounts.management_problem(target)
            if problem:
                raise InvalidInput(f"account {account_id} cannot be reached: {problem}")
        return self._connector_of(target)

    def _connector_of(self, target: Target) -> Connector:
        with self._lock:
            if target.id not in self._bound:
                self._bound[target.id] = self._open_account(
                    self._accounts.settings_for(target), self._accounts.clients(target), target.id
                )
            return self._bound[target.id]

    # -- reads over every account --------------------------------------------------------------

    def fetch(self, kind: str) -> Iterator[FetchRow]:
        """Every in-scope account's rows of ``kind``, account by account (by id), each row
        with its ``account_id``; then PartialRead if any account could not be read (its
        rows are missing, not gone)."""
        targets = self._account_scope().targets
        failed: list[tuple[str, str]] = []
        read = fan_out(
            targets, lambda target: self._rows(target, kind), self._organization.max_concurrency
        )
        for target, outcome in read:
            if isinstance(outcome, ConnectorError):
                failed.append((target.id, one_line(outcome)))
            else:
                yield from outcome
        if failed:
            raise PartialRead(
                f"could not read {len(failed)} of {len(targets)} accounts: "
                + "; ".join(f"{account} ({reason})" for account, reason in failed),
                failed=failed,
            )

    def _rows(self, target: Target, kind: str) -> list[FetchRow]:
        """One account's rows, read whole in a worker thread (the caller yields them in
        account order)."""
        if target.unreachable:
            raise ConnectorError(target.unreachable)
        with aws_errors("STS"):
            if target.management:
                problem = self._accounts.management_problem(target)
                if problem:
                    raise ConnectorError(problem)
            else:
                # the role assumed now (once: the credentials are kept), so a refusal is
                # reported as STS's, as target_accounts reports it, not as the first IAM call's
                self._accounts.assume(target)
        return list(self._connector_of(target).fetch(kind))

    def test(self) -> ConnectionStatus:
        """The base credentials' identity, then every account in scope checked; ok only when
        every one can be reached. Changes nothing."""
        with aws_errors("STS"):
            identity = self._accounts.base.sts.get_caller_identity()
        scope = self._account_scope()
        accounts = self.target_accounts(check=True)
        unreachable = [account for account in accounts if not account.reachable]
        message = (
            f"organization of {len(scope.organization.accounts)} accounts (management "
            f"{scope.organization.management_id}): {len(accounts)} in scope, "
            f"{len(accounts) - len(unreachable)} reachable"
        )
        if unreachable:
            message += "; cannot reach " + "; ".join(
                f"{account.id} ({account.reason})" for account in unreachable
            )
        if not accounts:
            message += "; no account is in scope of these settings"
        return ConnectionStatus(
            ok=bool(accounts) and not unreachable,
            identity=identity["Arn"],
            account=identity["Account"],
            message=message,
            accounts=accounts,
        )

    def schema(self) -> ConnectorSchema:
        """The plain connector's schema, with the permissions of both principals: the base
        one (organization-policy.json) and each account's role (iam-policy.json)."""
        plain = self._open_account(
            evolve(self.settings, organization=None), self._accounts.base, None
        ).schema()
        policies = permissions.render_organization_policies(self.settings)
        return evolve(plain, required_permissions=json.dumps(policies, indent=2))

    # -- what needs one account: refused before any call ---------------------------------------

    def _unbound(self) -> NoReturn:
        """Refuse an operation of one account; the organization is not read for it (no call),
        so the count of accounts is named only when a read already learned it."""
        with self._lock:
            known = self._scope
        accounts = f"the {len(known.targets)} accounts" if known is not None else "the accounts"
        raise InvalidInput(
            f"these settings span {accounts} of an organization: choose one with --account ID "
            "(`hostsim accounts` lists them)"
        )

    def create(self, request: CreateRequest) -> OperationResult:
        self._unbound()

    def check_create(self, request: CreateRequest) -> None:
        self._unbound()

    def modify(self, request: ModifyRequest) -> OperationResult:
        self._unbound()

    def delete(self, request: DeleteRequest) -> OperationResult:
        self._unbound()

    def disable(self, request: DisableRequest) -> OperationResult:
        self._unbound()

    def enable(self, request: EnableRequest) -> OperationResult:
        self._unbound()

    def grant(self, request: AccessRequest) -> OperationResult:
        self._unbound()

    def revoke(self, request: AccessRequest) -> OperationResult:
        self._unbound()

    def create_group(self, request: GroupRequest) -> OperationResult:
        self._unbound()

    def delete_group(self, request: GroupRequest) -> OperationResult:
        self._unbound()

    def read_account(self, lookup: AccountLookup) -> AccountDetail | None:
        self._unbound()

    def read_group(self, request: GroupRequest) -> GroupDetail | None:
        self._unbound()

    def plan(self, operation: Capability, request: MutatingRequest) -> OperationResult:
        self._unbound()

    def plan_many(
        self, operation: Capability, requests: Sequence[MutatingRequest]
    ) -> Iterator[OperationResult | ConnectorError]:
        self._unbound()
