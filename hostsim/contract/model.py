"""Contract types: the data that crosses the host/connector boundary.

Every type is a small frozen attrs class built from plain JSON-able values, so the same payload
can come from the CLI, a SCIM request or a test, and be structured and validated by the one
cattrs converter in :mod:`hostsim.contract.converter`. Requests are what the host asks for;
rows are what ``fetch`` yields; results report what an operation did, step by step.
"""

from __future__ import annotations

from enum import StrEnum

from attrs import field, frozen


class Capability(StrEnum):
    """What a connector type can do; the host refuses operations a connector did not declare."""

    CREATE = "create"
    MODIFY = "modify"
    DELETE = "delete"
    GRANT = "grant"
    REVOKE = "revoke"
    FETCH = "fetch"
    TEST = "test"
    SCHEMA = "schema"
    MANAGE_GROUPS = "manage-groups"
    #: Stop the account acting at once, credentials and sessions already issued included,
    #: losing nothing (groups, policies, keys and attributes stay); ``enable`` undoes exactly it.
    DISABLE = "disable"
    ENABLE = "enable"
    #: Read one account, by native id or by email, with what it holds directly, at a cost that
    #: does not grow with the target (``read_account``).
    READ_ACCOUNT = "read-account"
    #: Read one group with its members, by name, at a cost that grows with the group, not
    #: with the target (``read_group``).
    READ_GROUP = "read-group"
    #: Say what an operation would do, with reads only (``plan``); ``plan_many`` optionally.
    PLAN = "plan"
    #: Reach several target accounts (the AWS accounts of an organization): ``target_accounts``
    #: lists them, ``for_account`` binds the connector to one, ``spans_accounts`` says from
    #: the settings alone whether there are several (then a change needs a bound connector).
    TARGET_ACCOUNTS = "target-accounts"


class FetchKind(StrEnum):
    """The five reconciliation reads."""

    USERS = "users"
    GROUPS = "groups"
    POLICIES = "policies"
    GROUP_ACCESS = "group-access"
    POLICY_ACCESS = "policy-access"


class StepStatus(StrEnum):
    """How one step of an operation ended.

    ``pending`` marks steps an operation planned but never reached because an earlier step
    failed: with ``done`` they tell the caller exactly where a re-run will pick up.
    """

    DONE = "done"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    FAILED = "failed"
    PENDING = "pending"
    #: A plan's steps (``Connector.plan``): the change the real run would make, in the words
    #: of Terraform's plans; a plan's other steps are ``unchanged`` or ``skipped``.
    WOULD_CREATE = "would create"
    WOULD_UPDATE = "would update"
    WOULD_DELETE = "would delete"


#: The statuses of a plan that announce a change.
WOULD = frozenset({StepStatus.WOULD_CREATE, StepStatus.WOULD_UPDATE, StepStatus.WOULD_DELETE})


# --- the identifier -----------------------------------------------------------------------


def canonical_email(text: str) -> str:
    """The one spelling of an account's unique identifier: without surrounding whitespace,
    lower-case. IAM user names are case-insensitive and SCIM's ``userName`` is
    ``caseExact=false``, so two spellings of one address must never be two accounts, nor a way
    to reach someone else's. The connector, the SCIM face and IDHub's side all key by it."""
    return text.strip().lower()


# --- requests -----------------------------------------------------------------------------


@frozen
class CreateRequest:
    """A joiner: the account to create and the entitlements to grant it at once."""

    email: str
    first_name: str | None = None
    last_name: str | None = None
    display_name: str | None = None
    #: Further attributes by name; the connector's attribute mapping says where each goes.
    attributes: dict[str, str] = field(factory=dict)
    #: Entitlement ids (``group:NAME``, ``policy:ARN``) granted after the account exists.
    grants: tuple[str, ...] = ()
    #: Only a new account: when the account exists already (made by anyone but this very
    #: request, whose answer may have been lost), fail with ``AlreadyExists`` and change
    #: nothing, instead of resuming it. A SCIM POST means "create", and two writers must never
    #: both succeed at creating one identity; the CLI and IDHub's fulfilment resume.
    exclusive: bool = False
    #: The caller read the target a moment ago and found no such account (a bulk import's
    #: snapshot, a SCIM server's uniqueness check): the connector may skip its own lookup and
    #: create at once. An account made since is still met by the target's answer and handled
    #: as without the hint (resumed, or refused when ``exclusive``): a stale read never causes
    #: a wrong write, and a create without the hint sends no write for an existing account it
    #: refuses.
    checked_absent: bool = False


@frozen
class ModifyRequest:
    """A mover: ``None`` leaves an attribute as it is, an empty string clears it.

    ``new_email`` changes the account's unique identifier (and, for IAM, renames the user).
    """

    email: str
    new_email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    display_name: str | None = None
    attributes: dict[str, str] = field(factory=dict)


@frozen
class DeleteRequest:
    """A leaver: remove the account and everything that keeps the target from removing it."""

    email: str


@frozen
class DisableRequest:
    """Stop the account acting, at once and reversibly (a leaver whose deletion waits, a
    suspension). Idempotent: a disabled account is ``unchanged``."""

    email: str


@frozen
class EnableRequest:
    """Let a disabled account act again: reactivate exactly what its disable deactivated."""

    email: str


@frozen
class GroupRequest:
    """Create or delete one group of the target (``manage-groups``; off unless configured)."""

    name: str


@frozen
class AccessRequest:
    """Grant or revoke one entitlement (``group:NAME`` or ``policy:ARN``) for one account."""

    email: str
    entitlement: str


#: The requests of the operations that change an account, the ones a plan can be asked for.
MutatingRequest = (
    CreateRequest | ModifyRequest | DeleteRequest | AccessRequest | DisableRequest | EnableRequest
)

#: Which request each planable operation takes.
PLANNED_REQUESTS: dict[Capability, type[MutatingRequest]] = {
    Capability.CREATE: CreateRequest,
    Capability.MODIFY: ModifyRequest,
    Capability.DELETE: DeleteRequest,
    Capability.GRANT: AccessRequest,
    Capability.REVOKE: AccessRequest,
    Capability.DISABLE: DisableRequest,
    Capability.ENABLE: EnableRequest,
}


# --- results ------------------------------------------------------------------------------


@frozen
class Step:
    """One change (or check) an operation made, in the order it made them."""

    action: str
    target: str
    status: StepStatus
    detail: str = ""


@frozen
class AccountRef:
    """Who an operation acted on: the stable native id and the current name (ConnId's Uid and
    Name). A rename returns the new name with the same id."""

    id: str
    name: str
    email: str | None = None


@frozen
class OperationResult:
    """What an operation did. ``changed`` is false when everything was already as asked."""

    operation: str
    account: AccountRef | None
    steps: tuple[Step, ...] = ()

    @property
    def changed(self) -> bool:
        return any(step.status is StepStatus.DONE for step in self.steps)

    @property
    def would_change(self) -> bool:
        """For a plan: whether the real run would change anything."""
        return any(step.status in WOULD for step in self.steps)


@frozen
class TargetAccount:
    """One target account a connector reaches (an AWS account of an organization), as
    ``target_accounts`` reports it."""

    id: str
    name: str
    #: Whether the connector can act in it now (its role could be assumed); only known when
    #: ``target_accounts(check=True)`` tried, else True.
    reachable: bool = True
    #: Why it cannot be reached (the error AssumeRole answered, say); "" when it can.
    reason: str = ""
    #: The organization's management account (read with the base credentials, not a role).
    management: bool = False
    #: How the connector reaches it: ``role ARN`` or ``base credentials``.
    via: str = ""


@frozen
class ConnectionStatus:
    """The answer of a connector's connection check."""

    ok: bool
    identity: str
    account: str
    message: str = ""
    #: Whether the connector could verify its permissions (a simulation, no change).
    permissions_checked: bool = False
    #: Permissions the connector needs and does not have (empty when all are present).
    missing_permissions: tuple[str, ...] = ()
    #: A connector reaching several target accounts: each in scope, with whether it could
    #: be reached (``identity`` and ``account`` are then the base credentials').
    accounts: tuple[TargetAccount, ...] = ()


# --- fetch rows ---------------------------------------------------------------------------


@frozen
class Account:
    """An account as reconciliation sees it, attributes read back from the target."""

    id: str
    user_name: str
    email: str | None
    first_name: str | None
    last_name: str | None
    display_name: str | None
    arn: str
    path: str = "/"
    created: str = ""
    attributes: dict[str, str] = field(factory=dict)
    groups: tuple[str, ...] = ()
    inline_policies: tuple[str, ...] = ()
    #: False once the connector disabled it (``disable``); True for an account never disabled.
    enabled: bool = True
    #: The managed policies attached to the account directly (ARNs), as ``policy-access``
    #: lists them with ``via = direct``: a connector that offers ``read-account`` fills it,
    #: so that one bulk read shows an account's direct access beside its attributes.
    policies: tuple[str, ...] = ()
    #: The target account the row was read in (an AWS account id) when the connector reaches
    #: several (``target-accounts``) or was bound to one; None for a connector of one account.
    account_id: str | None = None


@frozen
class Group:
    """A requestable group and the managed policies it grants to its members."""

    name: str
    id: str
    arn: str
    path: str = "/"
    policies: tuple[str, ...] = ()
    inline_policies: tuple[str, ...] = ()
    account_id: str | None = None


@frozen
class Policy:
    """A requestable managed policy. ``scope`` is ``aws`` (AWS-managed) or ``local``."""

    name: str
    arn: str
    id: str
    path: str = "/"
    scope: str = "local"
    attachment_count: int = 0
    description: str = ""
    account_id: str | None = None


@frozen
class GroupAccess:
    """One account's membership of one group."""

    email: str | None
    user_name: str
    user_id: str
    group: str
    account_id: str | None = None


@frozen
class PolicyAccess:
    """One account's access to one managed policy, with its provenance.

    ``via`` is ``direct`` for a policy attached to the user, ``group:NAME`` for one the user holds
    through a group. A policy held both ways yields one row per way, which is what lets a direct
    grant survive the revocation of a group that also carries the policy.
    """

    email: str | None
    user_name: str
    user_id: str
    policy_arn: str
    policy_name: str
    via: str
    account_id: str | None = None


class CommonFetchKind(StrEnum):
    """The two well-known reads any connector type may declare beside its own, so that IDHub's
    side needs no knowledge of a connector's own rows: what can be requested (``entitlements``,
    rows :class:`EntitlementRow`) and who holds what, and why (``access``, rows
    :class:`AccessRow`). A type that declares them is read through them by the catalog and by
    reconciliation; one that does not (aws-iam) is read through IAM's five."""

    ENTITLEMENTS = "entitlements"
    ACCESS = "access"


@frozen
class EntitlementRow:
    """One requestable entitlement (``fetch entitlements``), in the connector's own ids.

    ``id`` is what a grant or revoke takes (``group:NAME``, ``assignment:PS@ACCOUNT``);
    ``kind`` its part before the colon; ``carries`` the ids of the entitlements a member of
    it holds through it (a group's policies, or its account assignments), which is what lets
    IDHub say why someone holds them.
    """

    id: str
    kind: str
    name: str
    #: The target's own id of it (a GroupId, a permission set's ARN), ``""`` when none.
    native_id: str = ""
    description: str = ""
    carries: tuple[str, ...] = ()


@frozen
class AccessRow:
    """One way one account holds one entitlement (``fetch access``), with its provenance.

    ``via`` is ``direct`` for an entitlement given to the account itself (what ``grant``
    gives and ``revoke`` takes: a group membership, a direct assignment) and ``group:NAME`` for
    one it holds through a group it is a member of. Held both ways, it yields a row each, so
    a direct grant survives the revocation of a group carrying the same entitlement.
    """

    user_id: str
    user_name: str
    email: str | None
    entitlement: str
    via: str


#: The rows of IAM's five reads (each carries ``account_id``).
FetchRow = Account | Group | Policy | GroupAccess | PolicyAccess
#: The rows of the well-known reads.
CommonRow = EntitlementRow | AccessRow

ROW_TYPES: dict[FetchKind, type[FetchRow]] = {
    FetchKind.USERS: Account,
    FetchKind.GROUPS: Group,
    FetchKind.POLICIES: Policy,
    FetchKind.GROUP_ACCESS: GroupAccess,
    FetchKind.POLICY_ACCESS: PolicyAccess,
}

#: The row types of the well-known reads, for a connector type to add to its ``fetch_kinds``.
COMMON_ROW_TYPES: dict[CommonFetchKind, type[CommonRow]] = {
    CommonFetchKind.ENTITLEMENTS: EntitlementRow,
    CommonFetchKind.ACCESS: AccessRow,
}


# --- single-account reads ------------------------------------------------------------


@frozen
class AccountLookup:
    """One account to read (``read_account``): by native id, by email, or by both.

    ``name`` is a hint the caller may add to an ``id`` (the account's name when it last saw
    it, from an index of its own): the connector reads by that name and answers only if the
    account found still has that id, so a stale hint is never taken for the truth.
    """

    id: str | None = None
    email: str | None = None
    name: str | None = None


@frozen
class Holding:
    """One entitlement an account holds directly (as ``grant`` gives it)."""

    #: The entitlement id a grant or revoke takes: ``group:NAME``, ``policy:ARN``.
    entitlement: str
    #: The target's own id of the entitlement (an IAM GroupId), ``""`` when it has none.
    native_id: str = ""
    #: Its display name (the group or policy name).
    name: str = ""


@frozen
class AccountDetail:
    """One account as ``read_account`` sees it: its attributes and state, and what it holds."""

    account: Account
    holdings: tuple[Holding, ...] = ()


@frozen
class GroupDetail:
    """One group as ``read_group`` sees it: its names and its members (the accounts in the
    connector's scope), each with its native id and name; ``email`` as far as the group read
    shows it (IAM's GetGroup carries no tags: derived from the name, or None)."""

    name: str
    id: str
    arn: str = ""
    path: str = "/"
    members: tuple[AccountRef, ...] = ()


# --- schema -------------------------------------------------------------------------------


@frozen
class AttributeSpec:
    """One account attribute the connector stores, and when it writes it."""

    name: str
    target: str
    on_create: bool
    on_modify: bool
    description: str = ""
    #: The target always holds a value: without one from IDHub the connector writes a
    #: default of its own (Identity Center's display name, from the first and last names),
    #: which reconciliation does not report as drift while IDHub has none to push.
    defaulted: bool = False


@frozen
class EntitlementKind:
    """A kind of entitlement people can request, and the shape of its ids."""

    name: str
    id_format: str
    description: str = ""


@frozen
class ConnectorSchema:
    """What a connector offers: its account identifier, attributes and entitlement kinds."""

    identifier: str
    attributes: tuple[AttributeSpec, ...]
    entitlement_kinds: tuple[EntitlementKind, ...]
    #: The target's permission document the connector needs (for AWS: an IAM policy, JSON).
    required_permissions: str = ""
