"""Plans of Identity Center operations: the operation itself, run with reads only.

As for IAM (:mod:`idhub_aws_plugin.planning`), there is no second copy of the connector's
decisions: create, modify, delete, grant and revoke run unchanged on a connector whose
identitystore and sso-admin clients are :class:`DryRunIdentityCenter` clients, which send the
``describe_*``, ``list_*`` and ``get_*`` calls and record every other one. A recorded write is
answered as AWS would answer it where the operation reads the answer: CreateUser's
``UserId``, CreateGroupMembership's ``MembershipId``, and the request status of
CreateAccountAssignment and DeleteAccountAssignment as AWS reports it once the request is
done (``SUCCEEDED``), so the wait for it ends at once, without a status read. Then
:func:`~idhub_aws_plugin.planning.as_plan` renames each done step ``would ...`` (a planned
assignment's detail says the run would await it).

The user a plan would create has no id yet (:data:`PLANNED_USER_ID`, ``""``, as IAM's plans
report it). The reads the operation makes about it afterwards (is it a member of the group, is
the permission set assigned to it) are answered here, as AWS answers them for a user with no
memberships and no assignments, instead of sending an id AWS would refuse.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from attrs import evolve, frozen
from botocore.exceptions import ClientError

from hostsim.contract import (
    WOULD,
    Capability,
    ConnectorError,
    InvalidInput,
    MutatingRequest,
    OperationResult,
    Step,
)
from idhub_aws_plugin.client import AwsClients, ClientSettings
from idhub_aws_plugin.identity_center.directory import NOT_FOUND
from idhub_aws_plugin.planning import DryRunClient, as_plan

#: The reads of identitystore and sso-admin: the only calls a plan sends to them.
READS = ("describe_", "list_", "get_")
#: The services a plan wraps (boto3's names); any other (STS) is used as it is.
DRY_RUN_SERVICES = frozenset({"identitystore", "sso-admin"})
#: The operations of the type a plan can be asked for (it has no disable or enable).
PLANNED = frozenset(
    {Capability.CREATE, Capability.MODIFY, Capability.DELETE, Capability.GRANT, Capability.REVOKE}
)
#: The UserId of the user a plan would create: not known before AWS makes it.
PLANNED_USER_ID = ""
#: How an assignment's step names its target (``assignment:PERMISSIONSET@ACCOUNT``).
ASSIGNMENT_PREFIX = "assignment:"
#: The detail of a planned assignment's step.
ASYNCHRONOUS = "asynchronous in AWS: the run awaits it"
#: The status AWS reports of an assignment request once it is done.
_DONE = "SUCCEEDED"
_STATUS_KEYS = {
    "create_account_assignment": "AccountAssignmentCreationStatus",
    "delete_account_assignment": "AccountAssignmentDeletionStatus",
}


def answer_of_write(_client: Any, operation: str, params: Mapping[str, Any]) -> Any:
    """What identitystore or sso-admin would answer ``operation`` where the operation reads
    the answer; ``{}`` for the rest (UpdateUser, DeleteUser, DeleteGroupMembership answer no
    more than that)."""
    if operation == "create_user":
        return {"UserId": PLANNED_USER_ID, "IdentityStoreId": params.get("IdentityStoreId", "")}
    if operation == "create_group_membership":
        return {"MembershipId": "", "IdentityStoreId": params.get("IdentityStoreId", "")}
    if operation in _STATUS_KEYS:
        target = {key: value for key, value in params.items() if key != "InstanceArn"}
        return {_STATUS_KEYS[operation]: {"Status": _DONE, "RequestId": "", **target}}
    return {}


def _not_found(operation: str) -> ClientError:
    """identitystore's answer for a membership it does not have."""
    message = "GroupMembership not found"
    return ClientError({"Error": {"Code": NOT_FOUND, "Message": message}}, operation)


def _names_planned_user(params: Mapping[str, Any]) -> bool:
    member = params.get("MemberId")
    if isinstance(member, Mapping) and member.get("UserId") == PLANNED_USER_ID:
        return True
    return params.get("PrincipalType") == "USER" and params.get("PrincipalId") == PLANNED_USER_ID


@frozen
class StoreNames:
    """The identity store's user names and group names with their ids, read once (the pages
    of ListUsers and ListGroups): what a bulk import's plans look up a row's user and its
    groups in, instead of a GetUserId a row and a GetGroupId a grant."""

    #: UserId by lower-cased userName (the connector writes emails lower-case).
    users: dict[str, str]
    #: GroupId by DisplayName.
    groups: dict[str, str]

    @classmethod
    def read(cls, identitystore: Any, store_id: str) -> StoreNames:
        users: dict[str, str] = {}
        for page in identitystore.get_paginator("list_users").paginate(IdentityStoreId=store_id):
            for user in page.get("Users", []):
                users[str(user["UserName"]).lower()] = str(user["UserId"])
        groups: dict[str, str] = {}
        for page in identitystore.get_paginator("list_groups").paginate(IdentityStoreId=store_id):
            for group in page.get("Groups", []):
                groups[str(group.get("DisplayName", ""))] = str(group["GroupId"])
        return cls(users, groups)

    def answer(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        """GetUserId by userName / GetGroupId by displayName answered from the names (a
        group missing from them is asked of AWS, since its display names may differ in
        case); any other lookup sent as it is."""
        kind, names, path = (
            ("User", self.users, "userName")
            if name == "get_user_id"
            else ("Group", self.groups, "displayName")
        )

        def read(**params: Any) -> Any:
            unique = params.get("AlternateIdentifier", {}).get("UniqueAttribute", {})
            if unique.get("AttributePath") != path:
                return real(**params)
            value = str(unique.get("AttributeValue", ""))
            found = names.get(value.lower() if kind == "User" else value)
            if found is not None:
                return {f"{kind}Id": found, "IdentityStoreId": params.get("IdentityStoreId")}
            if kind == "Group":
                return real(**params)
            raise ClientError(
                {"Error": {"Code": NOT_FOUND, "Message": "USER not found"}}, "GetUserId"
            )

        return read


class DryRunIdentityCenter(DryRunClient):
    """An identitystore or sso-admin client that sends the reads and records the writes;
    reads about the user the plan would create are answered here (it holds nothing), and,
    given the store's names, the lookups of users and groups by name too."""

    def __init__(self, client: Any, names: StoreNames | None = None) -> None:
        super().__init__(client, READS, answer_of_write)
        self._names = names

    def _read(self, name: str) -> Any:
        real = super()._read(name)
        if name == "get_group_membership_id":
            return _membership_id(real)
        if name == "get_paginator":
            return _paginator(real)
        if self._names is not None and name in ("get_user_id", "get_group_id"):
            return self._names.answer(name, real)
        return real


def _membership_id(real: Callable[..., Any]) -> Callable[..., Any]:
    def read(**params: Any) -> Any:
        if _names_planned_user(params):
            raise _not_found("GetGroupMembershipId")
        return real(**params)

    return read


#: The listings about a principal, and the key their (empty) page lists under.
_EMPTY_PAGES = {
    "list_account_assignments_for_principal": "AccountAssignments",
    "list_group_memberships_for_member": "GroupMemberships",
}


def _paginator(real: Callable[[str], Any]) -> Callable[[str], Any]:
    def paginator(operation: str) -> Any:
        found = real(operation)
        key = _EMPTY_PAGES.get(operation)
        return found if key is None else _PlannedUserPaginator(found, key)

    return paginator


class _PlannedUserPaginator:
    """A listing about a principal: one empty page for the planned user, else AWS's pages."""

    def __init__(self, real: Any, key: str) -> None:
        self._real = real
        self._key = key

    def paginate(self, **params: Any) -> Iterable[Mapping[str, Any]]:
        if _names_planned_user(params):
            return iter([{self._key: []}])
        pages: Iterable[Mapping[str, Any]] = self._real.paginate(**params)
        return pages


class PlanningClients(AwsClients):
    """The connector's clients for a plan: identitystore and sso-admin behind
    :class:`DryRunIdentityCenter` (made on first use), STS as it is."""

    def __init__(
        self, settings: ClientSettings, base: AwsClients, names: StoreNames | None = None
    ) -> None:
        """``names``: the store's user and group names read once (a bulk import's plans)."""
        super().__init__(settings)
        self._base = base
        self._names = names
        self._dry_lock = threading.Lock()
        self._dry: dict[str, DryRunIdentityCenter] = {}

    def client(self, service: str) -> Any:
        if service not in DRY_RUN_SERVICES:
            return self._base.client(service)
        with self._dry_lock:
            if service not in self._dry:
                names = self._names if service == "identitystore" else None
                self._dry[service] = DryRunIdentityCenter(self._base.client(service), names)
            return self._dry[service]

    @property
    def intercepted(self) -> list[str]:
        """Every write the plans made on these clients would have sent."""
        with self._dry_lock:
            return [call for dry in self._dry.values() for call in dry.intercepted]


def plan_on(planner: Any, operation: Capability, request: MutatingRequest) -> OperationResult:
    """``operation`` run on ``planner`` (a connector on :class:`PlanningClients`), as a plan."""
    if operation not in PLANNED:
        known = ", ".join(sorted(capability.value for capability in PLANNED))
        raise InvalidInput(f"cannot plan {operation.value!r} (one of: {known})")
    run: Callable[[MutatingRequest], OperationResult] = getattr(planner, operation.value)
    plan = as_plan(run(request))
    return OperationResult(plan.operation, plan.account, tuple(map(_told, plan.steps)))


def _told(step: Step) -> Step:
    """A planned assignment's step says what its run would wait for (the dry run's answer
    left the detail of a request that ended at once)."""
    if step.status in WOULD and step.target.startswith(ASSIGNMENT_PREFIX):
        return evolve(step, detail=ASYNCHRONOUS)
    return step


#: Requests planned at once by :func:`plan_each` (each plan is a few reads that wait on AWS).
PLANNING_WORKERS = 8


def plan_each(
    planner: Any, operation: Capability, requests: Iterable[MutatingRequest]
) -> Iterator[OperationResult | ConnectorError]:
    """The plans of ``requests`` in their order on one planner (the instance and permission
    sets read once, by the first); a request the real run would refuse yields its error. The
    identity store has no bulk read to plan from, so a file of rows costs a few reads a row:
    after the first, they are planned :data:`PLANNING_WORKERS` at a time, as the real run
    provisions them."""

    def planned(request: MutatingRequest) -> OperationResult | ConnectorError:
        try:
            return plan_on(planner, operation, request)
        except ConnectorError as exc:
            return exc

    pending = list(requests)
    if not pending:
        return
    yield planned(pending[0])
    with ThreadPoolExecutor(PLANNING_WORKERS, thread_name_prefix="idhub-plan") as pool:
        yield from pool.map(planned, pending[1:])
