"""Plans: what an operation would do, told by running the operation itself with reads only.

A plan must make exactly the decisions the real run makes, or it is a guess. So there is no
second copy of those decisions here: the connector's own operations (create, modify, delete
and its cascade, grant, revoke, disable, enable) run unchanged on a :class:`DryRunIam`, an IAM
client that sends every read and sends no write. Each write is recorded and answered as IAM
would answer it (``{}``; the user a CreateUser would make; for DeleteLoginProfile, the
``NoSuchEntity`` a missing password gets, found by GetLoginProfile), so every step reaches the
status it would reach; :func:`as_plan` then renames the steps that would have written to
``would create``/``would update``/``would delete``. The same errors come out before the first
write, for the same input, because the same code raises them.

The client is safe by construction: only ``get_*``, ``list_*`` and ``simulate_*`` calls pass
(IAM's reads); anything else, including an operation added later, is intercepted. The wrapper
itself, :class:`DryRunClient`, is any service's: it is told which calls are reads and how to
answer a write (Identity Center's plans use it too, see
:mod:`idhub_aws_plugin.identity_center.planning`).

A bulk import plans its creates from one snapshot (:class:`AccountSnapshot`): the pages of
GetAccountAuthorizationDetails for users, groups and customer-managed policies, read once.
:class:`SnapshotIam` answers the per-user and per-group reads of the operations from it
(GetUser, the user's groups and direct policies, a group's policies and inline documents, a
customer policy's default version), so planning 1,000 rows costs the pages and the AWS-managed
policies' reads, not 3 calls a row.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from hostsim.contract import OperationResult, Step, StepStatus
from idhub_aws_plugin.client import PAGE, AwsClients
from idhub_aws_plugin.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_sts import STSClient

#: The prefixes of IAM's read operations: the only calls a plan sends.
READS = ("get_", "list_", "simulate_")
#: Client attributes that send nothing themselves.
PASSIVE = frozenset({"meta", "exceptions", "can_paginate", "waiter_names"})

#: How a done step of a plan is named, by the first word of its action.
CREATING = frozenset({"create", "grant", "attach"})
DELETING = frozenset({"delete", "remove", "detach", "revoke"})


def planned_status(action: str) -> StepStatus:
    """The plan status of a step that would write: creating access or an account, taking it
    away, or changing what is there (tags, name, state)."""
    verb = action.split(" ", 1)[0]
    if verb in CREATING:
        return StepStatus.WOULD_CREATE
    if verb in DELETING:
        return StepStatus.WOULD_DELETE
    return StepStatus.WOULD_UPDATE


def as_plan(result: OperationResult) -> OperationResult:
    """The result of an operation run on a :class:`DryRunIam`, as a plan: its done steps (each
    would have written) renamed ``would ...``, the others as they were."""
    return OperationResult(
        operation=result.operation,
        account=result.account,
        steps=tuple(_planned_step(step) for step in result.steps),
    )


def _planned_step(step: Step) -> Step:
    if step.status is not StepStatus.DONE:
        return step
    return Step(step.action, step.target, planned_status(step.action), step.detail)


def _answer_of_write(iam: Any, operation: str, params: Mapping[str, Any]) -> Any:
    """What IAM would answer ``operation`` where the operation reads the answer or its error."""
    if operation == "create_user":
        name = params["UserName"]
        user = {"UserName": name, "UserId": "", "Arn": "", "Path": params.get("Path", "/")}
        return {"User": {**user, "Tags": params.get("Tags", [])}}
    if operation == "delete_login_profile":
        # deleted without a read first in the real run; IAM's NoSuchEntity for none is what
        # makes that step "unchanged", and GetLoginProfile raises the same one
        iam.get_login_profile(UserName=params["UserName"])
    return {}


#: How a dry-run client answers a write it intercepted: ``(client, operation, params)``, the
#: client being the real one (to read what the answer depends on).
WriteAnswer = Callable[[Any, str, Mapping[str, Any]], Any]


class DryRunClient:
    """A boto3 client that sends the calls whose names start with one of ``reads`` (and the
    attributes that send nothing) and records every other call instead of sending it, answered
    by ``answer``. Safe by construction: an operation nobody listed is a write. Subclasses may
    answer some reads themselves (:meth:`_read`)."""

    def __init__(self, client: Any, reads: tuple[str, ...], answer: WriteAnswer) -> None:
        self._client = client
        self._reads = reads
        self._answer = answer
        self._lock = threading.Lock()
        #: The writes the operation would have sent, by operation name, in order.
        self.intercepted: list[str] = []

    def __getattr__(self, name: str) -> Any:
        if name.startswith(self._reads) or name in PASSIVE:
            return self._read(name)
        return self._intercepting(name)

    def _read(self, name: str) -> Any:
        """The read ``name``, sent by the real client."""
        return getattr(self._client, name)

    def _intercepting(self, operation: str) -> Callable[..., Any]:
        def write(**params: Any) -> Any:
            with self._lock:
                self.intercepted.append(operation)
            return self._answer(self._client, operation, params)

        return write


class DryRunIam(DryRunClient):
    """An IAM client that sends the reads and records the writes instead of sending them."""

    def __init__(self, iam: Any) -> None:
        super().__init__(iam, READS, _answer_of_write)

    @property
    def client(self) -> IAMClient:
        """This object where the connector's modules expect an IAM client."""
        return cast("IAMClient", self)


# --- the snapshot of a bulk plan -------------------------------------------------------

#: What a bulk plan reads: what create and its grantable checks ask about.
SNAPSHOT_FILTER = ["User", "Group", "LocalManagedPolicy"]


def _no_such(kind: str, name: str, operation: str) -> ClientError:
    """IAM's answer for an entity it does not have, worded as IAM words it (the connector tells
    a missing user from anything else by this message)."""
    message = f"The {kind} with name {name} cannot be found."
    return ClientError({"Error": {"Code": "NoSuchEntity", "Message": message}}, operation)


class AccountSnapshot:
    """Users (with tags, groups and direct policies), groups (with their policies) and
    customer-managed policies (with their versions) as one bulk read found them."""

    def __init__(
        self,
        users: Iterable[Mapping[str, Any]],
        groups: Iterable[Mapping[str, Any]],
        policies: Iterable[Mapping[str, Any]],
    ) -> None:
        # IAM names are unique ignoring case, and so are these keys
        self.users = {user["UserName"].lower(): user for user in users}
        self.groups = {group["GroupName"].lower(): group for group in groups}
        self.policies = {policy["Arn"]: policy for policy in policies}

    @classmethod
    def read(cls, iam: IAMClient) -> AccountSnapshot:
        """The account, from the pages of GetAccountAuthorizationDetails (1,000 items a page)."""
        users: list[Mapping[str, Any]] = []
        groups: list[Mapping[str, Any]] = []
        policies: list[Mapping[str, Any]] = []
        pages = iam.get_paginator("get_account_authorization_details").paginate(
            Filter=SNAPSHOT_FILTER,  # type: ignore[arg-type]
            PaginationConfig=PAGE,
        )
        for page in pages:
            users += page.get("UserDetailList", [])
            groups += page.get("GroupDetailList", [])
            policies += page.get("Policies", [])
        return cls(users, groups, policies)


class SnapshotIam:
    """An IAM client whose reads about users, groups and customer policies are answered from a
    snapshot; the rest go to ``iam``. Only for planning: wrap it in a :class:`DryRunIam`."""

    def __init__(self, iam: Any, snapshot: AccountSnapshot) -> None:
        self._iam = iam
        self._snapshot = snapshot

    def __getattr__(self, name: str) -> Any:
        return getattr(self._iam, name)

    def _user(self, name: str) -> Mapping[str, Any] | None:
        return self._snapshot.users.get(name.lower())

    def _group(self, name: str) -> Mapping[str, Any] | None:
        return self._snapshot.groups.get(name.lower())

    def get_user(self, *, UserName: str) -> Mapping[str, Any]:  # noqa: N803 (boto3's names)
        user = self._user(UserName)
        if user is None:
            raise _no_such("user", UserName, "GetUser")
        return {"User": user}

    def get_group(self, *, GroupName: str, **params: Any) -> Mapping[str, Any]:  # noqa: N803
        group = self._group(GroupName)
        if group is None:
            return cast("Mapping[str, Any]", self._iam.get_group(GroupName=GroupName, **params))
        return {"Group": group, "Users": []}

    def get_group_policy(self, *, GroupName: str, PolicyName: str) -> Mapping[str, Any]:  # noqa: N803
        group = self._group(GroupName) or {}
        for policy in group.get("GroupPolicyList", []):
            if policy["PolicyName"] == PolicyName:
                return {"GroupName": GroupName, **policy}
        return cast(
            "Mapping[str, Any]",
            self._iam.get_group_policy(GroupName=GroupName, PolicyName=PolicyName),
        )

    def get_policy(self, *, PolicyArn: str) -> Mapping[str, Any]:  # noqa: N803
        policy = self._snapshot.policies.get(PolicyArn)
        if policy is None:
            return cast("Mapping[str, Any]", self._iam.get_policy(PolicyArn=PolicyArn))
        return {"Policy": policy}

    def get_policy_version(self, *, PolicyArn: str, VersionId: str) -> Mapping[str, Any]:  # noqa: N803
        policy = self._snapshot.policies.get(PolicyArn) or {}
        for version in policy.get("PolicyVersionList", []):
            if version["VersionId"] == VersionId:
                return {"PolicyVersion": version}
        return cast(
            "Mapping[str, Any]",
            self._iam.get_policy_version(PolicyArn=PolicyArn, VersionId=VersionId),
        )

    def get_paginator(self, operation: str) -> Any:
        real = self._iam.get_paginator(operation)
        page = self._page(operation)
        return real if page is None else _SnapshotPaginator(page, real)

    def _page(
        self, operation: str
    ) -> Callable[[Mapping[str, Any]], Mapping[str, Any] | None] | None:
        """How to answer one page of a paginated read from the snapshot, by its parameters
        (None: the snapshot does not hold that entity)."""
        readers: dict[str, Callable[[Mapping[str, Any]], Mapping[str, Any] | None]] = {
            "list_groups_for_user": self._groups_for_user,
            "list_attached_user_policies": self._user_policies,
            "list_attached_group_policies": self._group_policies,
            "list_group_policies": self._group_inline_policies,
        }
        return readers.get(operation)

    def _groups_for_user(self, params: Mapping[str, Any]) -> Mapping[str, Any] | None:
        user = self._user(params["UserName"])
        if user is None:
            return None
        groups = [self._group(name) or {"GroupName": name} for name in user.get("GroupList", [])]
        return {"Groups": groups}

    def _user_policies(self, params: Mapping[str, Any]) -> Mapping[str, Any] | None:
        user = self._user(params["UserName"])
        return (
            None if user is None else {"AttachedPolicies": user.get("AttachedManagedPolicies", [])}
        )

    def _group_policies(self, params: Mapping[str, Any]) -> Mapping[str, Any] | None:
        group = self._group(params["GroupName"])
        return (
            None
            if group is None
            else {"AttachedPolicies": group.get("AttachedManagedPolicies", [])}
        )

    def _group_inline_policies(self, params: Mapping[str, Any]) -> Mapping[str, Any] | None:
        group = self._group(params["GroupName"])
        if group is None:
            return None
        return {
            "PolicyNames": [policy["PolicyName"] for policy in group.get("GroupPolicyList", [])]
        }


class _SnapshotPaginator:
    """A paginator answered from the snapshot when it holds the entity asked about, else the
    real one (a group created since the snapshot, say)."""

    def __init__(
        self, page: Callable[[Mapping[str, Any]], Mapping[str, Any] | None], real: Any
    ) -> None:
        self._page = page
        self._real = real

    def paginate(self, **params: Any) -> Iterable[Mapping[str, Any]]:
        found = self._page(params)
        if found is None:
            return cast("Iterable[Mapping[str, Any]]", self._real.paginate(**params))
        return iter([found])


class PlanningClients(AwsClients):
    """The connector's clients for a plan: IAM behind a :class:`DryRunIam`, STS as it is."""

    def __init__(self, settings: Settings, base: AwsClients, iam: DryRunIam) -> None:
        super().__init__(settings)
        self._base = base
        self._dry = iam

    @property
    def iam(self) -> IAMClient:
        return self._dry.client

    @property
    def sts(self) -> STSClient:
        return self._base.sts
