"""Disabling and enabling an IAM user: stop it acting at once, losing nothing, and undo exactly.

IAM has no "disabled" flag for users. A disable is therefore four things the connector owns:

* an inline user policy :data:`DENY_POLICY` denying every action on every resource. IAM
  evaluates the user's policies at each request, so an explicit deny stops the user at once,
  with credentials and sessions it was issued already (its access keys, GetSessionToken
  sessions, federation tokens, an open console session) and whatever its groups and managed
  policies allow. Inline, so it counts against no managed-policy quota. (Role sessions the
  user assumed before are the role's, not the user's: the deny does not reach them.)
* every active access key, SSH public key, signing certificate and service-specific
  credential set ``Inactive``, so nothing works again by removing the deny alone;
* the console password deleted (IAM cannot deactivate one, and cannot give it back);
* a record, in the user's tags under :data:`RECORD_TAG`, of what the connector deactivated
  and whether there was a console password, so that enable reactivates exactly that: a key
  that was inactive before the disable stays inactive.

Groups, policies, keys, MFA devices and tags stay. Order, for crash safety: the deny first
(the one change that stops the user, as early as possible, and in place whatever fails
later), then the record (before anything is deactivated, so nothing is ever inactive without
being recorded), then the deactivations, then the password. Enable runs it backwards:
reactivate, remove the record, remove the deny last. So a record exists only while the deny
does, every record is the current disable's, and a re-run of either operation after a failure
anywhere finishes the job: a re-run of disable adds to the record what is active now (active
now means the connector never deactivated it) and never forgets what it recorded before.

Both operations read first and write only what differs, so a repeat sends no write.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from attrs import frozen

from hostsim.contract import (
    AccountRef,
    Conflict,
    OperationResult,
    Refused,
    StepLog,
    StepOutcome,
    StepStatus,
)
from idhub_aws_plugin import input_rules
from idhub_aws_plugin.client import PAGE
from idhub_aws_plugin.errors import is_code, retries, translate

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

    from idhub_aws_plugin.accounts import Accounts, IamUser

#: The inline user policy that disables a user; its presence is what "disabled" means.
DENY_POLICY = "idhub-disabled"
DENY_DOCUMENT: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "DisabledByIdhub", "Effect": "Deny", "Action": "*", "Resource": "*"},
    ],
}
#: The record's first tag; more follow as ``idhub:disabled:2``, ``:3``... when it is long.
RECORD_TAG = "idhub:disabled"
RECORD_VERSION = "v1"
#: The record's token for "a console password existed and was deleted".
LOGIN_TOKEN = "login"
CONSOLE_DETAIL = "console password was removed at disable: set a new one"

ACTIVE = "Active"
INACTIVE = "Inactive"


@frozen
class CredentialKind:
    """One kind of credential IAM can deactivate: how to list it and set its status."""

    code: str  # its letter in the record
    noun: str
    list_operation: str
    list_key: str
    id_key: str
    update: Callable[[IAMClient, str, str, str], object]  # (iam, user, id, status)
    paginated: bool = True


def _update_access_key(iam: IAMClient, user: str, item: str, status: str) -> object:
    return iam.update_access_key(UserName=user, AccessKeyId=item, Status=status)  # type: ignore[arg-type]


def _update_ssh_key(iam: IAMClient, user: str, item: str, status: str) -> object:
    return iam.update_ssh_public_key(UserName=user, SSHPublicKeyId=item, Status=status)  # type: ignore[arg-type]


def _update_certificate(iam: IAMClient, user: str, item: str, status: str) -> object:
    return iam.update_signing_certificate(UserName=user, CertificateId=item, Status=status)  # type: ignore[arg-type]


def _update_service_credential(iam: IAMClient, user: str, item: str, status: str) -> object:
    return iam.update_service_specific_credential(
        UserName=user,
        ServiceSpecificCredentialId=item,
        Status=status,  # type: ignore[arg-type]
    )


KINDS: tuple[CredentialKind, ...] = (
    CredentialKind(
        "k", "access keys", "list_access_keys", "AccessKeyMetadata", "AccessKeyId",
        _update_access_key,
    ),
    CredentialKind(
        "s", "SSH public keys", "list_ssh_public_keys", "SSHPublicKeys", "SSHPublicKeyId",
        _update_ssh_key,
    ),
    CredentialKind(
        "c", "signing certificates", "list_signing_certificates", "Certificates",
        "CertificateId", _update_certificate,
    ),
    CredentialKind(
        "x", "service-specific credentials", "list_service_specific_credentials",
        "ServiceSpecificCredentials", "ServiceSpecificCredentialId",
        _update_service_credential, paginated=False,  # IAM: at most two per service
    ),
)  # fmt: skip
_KIND_BY_CODE = {kind.code: kind for kind in KINDS}


@frozen
class Record:
    """What a disable deactivated: ``(kind code, id)`` pairs, and whether a console password
    existed. Stored in tags of at most 256 characters each, tokens separated by spaces."""

    items: frozenset[tuple[str, str]] = frozenset()
    login: bool = False

    def union(self, items: Iterable[tuple[str, str]], login: bool) -> Record:
        return Record(self.items | frozenset(items), self.login or login)

    def of_kind(self, kind: CredentialKind) -> set[str]:
        return {item for code, item in self.items if code == kind.code}

    def tags(self) -> dict[str, str]:
        """The record as tag key -> value, each value within IAM's tag rules."""
        tokens = [RECORD_VERSION, *([LOGIN_TOKEN] if self.login else [])]
        tokens += [f"{code}:{item}" for code, item in sorted(self.items)]
        values: list[str] = []
        for token in tokens:
            if values and len(values[-1]) + 1 + len(token) <= input_rules.TAG_VALUE_MAX:
                values[-1] += " " + token
            else:
                values.append(token)
        return {record_key(index): value for index, value in enumerate(values, start=1)}

    @classmethod
    def read(cls, tags: Mapping[str, str]) -> Record | None:
        """The record in a user's tags, or None when it carries none."""
        values = [value for key, value in tags.items() if is_record_key(key)]
        if not values:
            return None
        items: set[tuple[str, str]] = set()
        login = False
        for token in " ".join(values).split():
            code, sep, item = token.partition(":")
            if token == LOGIN_TOKEN:
                login = True
            elif sep and code in _KIND_BY_CODE and item:
                items.add((code, item))
            elif token != RECORD_VERSION:
                raise Conflict(
                    f"the user's {RECORD_TAG} tags hold {token!r}, which the connector did not "
                    "write; fix or remove the tags by hand, then run the operation again"
                )
        return cls(frozenset(items), login)


def record_key(index: int) -> str:
    return RECORD_TAG if index == 1 else f"{RECORD_TAG}:{index}"


def is_record_key(key: str) -> bool:
    lowered = key.lower()
    return lowered == RECORD_TAG or lowered.startswith(RECORD_TAG + ":")


def is_disabled(inline_policy_names: Iterable[str]) -> bool:
    """Whether a user with these inline policies is disabled (the bulk read tells them)."""
    return DENY_POLICY in inline_policy_names


@frozen
class Credential:
    kind: CredentialKind
    id: str
    status: str


class Suspension:
    """Disable and enable one user at a time; both idempotent."""

    def __init__(self, iam: IAMClient, accounts: Accounts) -> None:
        self._iam = iam
        self._accounts = accounts

    # --- reads -------------------------------------------------------------------------

    def _inline_policies(self, user: str) -> list[str]:
        pages = self._iam.get_paginator("list_user_policies").paginate(
            UserName=user, PaginationConfig=PAGE
        )
        return [name for page in pages for name in page["PolicyNames"]]

    def _deny_in_place(self, user: str) -> bool:
        """Whether the deny policy is there with exactly the connector's document."""
        if DENY_POLICY not in self._inline_policies(user):
            return False
        document = self._iam.get_user_policy(UserName=user, PolicyName=DENY_POLICY)
        found = document["PolicyDocument"]
        if isinstance(found, str):
            found = json.loads(found)
        return bool(found == DENY_DOCUMENT)

    def _credentials(self, user: str, kind: CredentialKind) -> list[Credential]:
        if kind.paginated:
            paginator = self._iam.get_paginator(kind.list_operation)  # type: ignore[call-overload]
            pages: Iterable[Mapping[str, Any]] = paginator.paginate(
                UserName=user, PaginationConfig=PAGE
            )
        else:
            pages = [getattr(self._iam, kind.list_operation)(UserName=user)]
        return [
            Credential(kind, item[kind.id_key], item["Status"])
            for page in pages
            for item in page[kind.list_key]
        ]

    def _has_login_profile(self, user: str) -> bool:
        try:
            self._iam.get_login_profile(UserName=user)
        except Exception as exc:
            if is_code(exc, "NoSuchEntity"):
                return False
            raise
        return True

    # --- disable -----------------------------------------------------------------------

    def disable(self, raw_email: str) -> OperationResult:
        email, user = self._accounts.require(raw_email)
        name = user.user_name
        deny = self._deny_in_place(name)
        held = {kind: self._credentials(name, kind) for kind in KINDS}
        login = self._has_login_profile(name)
        active = [c for creds in held.values() for c in creds if c.status == ACTIVE]
        before = Record.read(user.tags)
        record = (before or Record()).union(((c.kind.code, c.id) for c in active), login)
        if record != before:
            self._check_recordable(user, record)

        log = StepLog("disable", translate)
        log.plan("deny every action", name)
        log.plan("record what is deactivated", name)
        for kind in KINDS:
            log.plan(f"deactivate {kind.noun}", name)
        log.plan("delete login profile", name)

        with log.step("deny every action", name) as outcome:
            if deny:
                outcome.unchanged(f"inline policy {DENY_POLICY} in place")
            else:
                self._iam.put_user_policy(
                    UserName=name, PolicyName=DENY_POLICY, PolicyDocument=json.dumps(DENY_DOCUMENT)
                )
                outcome.done(f"inline policy {DENY_POLICY}")
        with log.step("record what is deactivated", name) as outcome:
            if record == before:
                outcome.unchanged("recorded already")
            else:
                self._iam.tag_user(
                    UserName=name,
                    Tags=[{"Key": key, "Value": value} for key, value in record.tags().items()],
                )
                outcome.done(_described(record))
        for kind in KINDS:
            with log.step(f"deactivate {kind.noun}", name) as outcome:
                targets = [c.id for c in held[kind] if c.status == ACTIVE]
                self._set_each(
                    outcome,
                    kind=kind,
                    user=name,
                    targets=targets,
                    status=INACTIVE,
                    verb="deactivated",
                )
        with log.step("delete login profile", name) as outcome:
            self._delete_login_profile(name, login, outcome)
        return log.result(AccountRef(user.user_id, name, email))

    def _check_recordable(self, user: IamUser, record: Record) -> None:
        """Refuse, before any change, a record IAM could not store: nothing may be
        deactivated that enable could not find again."""
        tags = record.tags()
        for key, value in tags.items():
            problems = input_rules.tag_value_problems(value, f"tag {key}")
            if problems:
                raise Refused(
                    f"cannot disable {user.user_name!r}: the record of what it deactivates "
                    f"cannot be stored ({problems[0]}); nothing was changed"
                )
        others = [key for key in user.tags if not is_record_key(key)]
        count = len(others) + len(tags)
        if count > input_rules.TAG_LIMIT:
            raise Refused(
                f"cannot disable {user.user_name!r}: recording what it deactivates needs "
                f"{len(tags)} tag(s) and the user carries {len(others)} others, IAM allows "
                f"{input_rules.TAG_LIMIT}; remove some tags first (nothing was changed)"
            )

    def _delete_login_profile(self, name: str, exists: bool, outcome: StepOutcome) -> None:
        if not exists:
            outcome.unchanged("none")
            return
        try:
            self._iam.delete_login_profile(UserName=name)
        except Exception as exc:
            if not is_code(exc, "NoSuchEntity"):
                raise
            _gone_meanwhile(exc, outcome)
            return
        outcome.done("console password removed; enable cannot restore it")

    # --- enable ------------------------------------------------------------------------

    def enable(self, raw_email: str) -> OperationResult:
        email, user = self._accounts.require(raw_email)
        name = user.user_name
        deny = DENY_POLICY in self._inline_policies(name)
        record = Record.read(user.tags)
        log = StepLog("enable", translate)
        account = AccountRef(user.user_id, name, email)
        if record is None and not deny:
            log.record("enable user", name, StepStatus.UNCHANGED, "not disabled")
            return log.result(account)
        recorded = record or Record()
        kinds = [kind for kind in KINDS if recorded.of_kind(kind)]
        held = {kind: self._credentials(name, kind) for kind in kinds}

        for kind in kinds:
            log.plan(f"reactivate {kind.noun}", name)
        log.plan("remove the record", name)
        log.plan("remove the deny", name)
        for kind in kinds:
            with log.step(f"reactivate {kind.noun}", name) as outcome:
                wanted = recorded.of_kind(kind)
                present = {c.id for c in held[kind]}
                targets = [c.id for c in held[kind] if c.id in wanted and c.status != ACTIVE]
                self._set_each(
                    outcome,
                    kind=kind,
                    user=name,
                    targets=targets,
                    status=ACTIVE,
                    verb="reactivated",
                )
                missing = len(wanted - present)
                if missing:
                    note = f"{missing} deleted since the disable"
                    outcome.detail = f"{outcome.detail}; {note}" if outcome.detail else note
        with log.step("remove the record", name) as outcome:
            keys = [key for key in user.tags if is_record_key(key)]
            if keys:
                self._iam.untag_user(UserName=name, TagKeys=keys)
                outcome.done(", ".join(sorted(keys)))
            else:
                outcome.unchanged("none")
        with log.step("remove the deny", name) as outcome:
            self._delete_deny(name, deny, outcome)
        if recorded.login:
            log.record("console access", name, StepStatus.SKIPPED, CONSOLE_DETAIL)
        return log.result(account)

    def _delete_deny(self, name: str, present: bool, outcome: StepOutcome) -> None:
        if not present:
            outcome.unchanged("none")
            return
        try:
            self._iam.delete_user_policy(UserName=name, PolicyName=DENY_POLICY)
        except Exception as exc:
            if not is_code(exc, "NoSuchEntity"):
                raise
            _gone_meanwhile(exc, outcome)
            return
        outcome.done(f"inline policy {DENY_POLICY}")

    # --- shared ------------------------------------------------------------------------

    def _set_each(
        self,
        outcome: StepOutcome,
        *,
        kind: CredentialKind,
        user: str,
        targets: list[str],
        status: str,
        verb: str,
    ) -> None:
        """Set every target's status and say how many; one IAM no longer has (deleted
        meanwhile) is counted, not an error."""
        if not targets:
            outcome.unchanged("none to change")
            return
        gone = 0
        for item in targets:
            try:
                kind.update(self._iam, user, item, status)
            except Exception as exc:
                if not is_code(exc, "NoSuchEntity"):
                    raise
                gone += 1
        changed = len(targets) - gone
        note = f" ({gone} deleted meanwhile)" if gone else ""
        if changed:
            outcome.done(f"{changed} {verb}{note}")
        else:
            outcome.unchanged(f"none to change{note}")


def _gone_meanwhile(exc: Exception, outcome: StepOutcome) -> None:
    """A removal IAM answered NoSuchEntity: botocore's retry met its own first attempt, whose
    answer was lost (done), or someone else removed it between the read and the call."""
    if retries(exc):
        outcome.done("a retry found it removed (the first answer was lost)")
    else:
        outcome.unchanged("none (removed meanwhile)")


def _described(record: Record) -> str:
    counts = [f"{len(record.of_kind(kind))} {kind.noun}" for kind in KINDS if record.of_kind(kind)]
    if record.login:
        counts.append("console password")
    return ", ".join(counts) or "nothing active"
