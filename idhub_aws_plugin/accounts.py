"""Accounts: IAM users created, modified and deleted for people, found by their email.

The email is the account's unique identifier. The IAM user name derives from it through the
``user_name`` template (by default the email itself), the email and the other attributes live in
user tags (see :mod:`idhub_aws_plugin.attributes`), and the IAM UserId is the stable native id
that survives a rename. Every operation validates its whole input before its first change.

Retries of throttled and failed calls are botocore's (see :mod:`idhub_aws_plugin.client`). The
one wait of our own is :class:`FreshUserWait`: IAM is eventually consistent, so the calls an
operation makes right after it created a user may not see that user yet.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import frozen

from hostsim.contract import (
    AccountRef,
    AlreadyExists,
    CreateRequest,
    DeleteRequest,
    InvalidInput,
    ModifyRequest,
    NotFound,
    OperationResult,
    StepLog,
    StepOutcome,
    StepStatus,
    Transient,
    canonical_email,
)
from idhub_aws_plugin import input_rules
from idhub_aws_plugin.attributes import AttributeMap
from idhub_aws_plugin.deletion import UserDeletion
from idhub_aws_plugin.entitlements import Entitlement, Entitlements, parse_entitlement
from idhub_aws_plugin.errors import is_code, is_missing_user, retries, translate
from idhub_aws_plugin.scope import Scope
from idhub_aws_plugin.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

T = TypeVar("T")


@frozen
class IamUser:
    """What GetUser tells about a user, tags as a dict."""

    user_id: str
    user_name: str
    arn: str
    tags: dict[str, str]
    path: str = "/"

    @classmethod
    def from_response(cls, user: Mapping[str, Any]) -> IamUser:
        return cls(
            user_id=user["UserId"],
            user_name=user["UserName"],
            arn=user["Arn"],
            tags={tag["Key"]: tag["Value"] for tag in user.get("Tags", [])},
            path=user.get("Path", "/"),
        )


@frozen
class FreshUserWait:
    """Bounded patience with IAM's eventual consistency, for a user this operation created.

    For a second or two after CreateUser succeeded, IAM may answer a call naming the new user
    (AddUserToGroup, AttachUserPolicy, their reads) with ``NoSuchEntity: The user with name X
    cannot be found.`` Giving up there would leave a half-provisioned joiner for a reason that
    cures itself. So those calls, and only those, are tried again after each of ``delays``;
    every other error (a missing group, a throttle that outlasted botocore's retries) and the
    same error about any other user propagate at once. Not a general retry: an account the
    operation did not create is genuinely missing when IAM says so.
    """

    #: Seconds slept before each retry: 5 tries, 3.75 s at most.
    delays: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    sleep: Callable[[float], None] = time.sleep

    def call(self, user_name: str, attempt: Callable[[], T]) -> tuple[T, int]:
        """``attempt()``'s result and how many times it had to wait for ``user_name``."""
        for waits, delay in enumerate(self.delays):
            try:
                return attempt(), waits
            except Exception as exc:
                if not is_missing_user(exc, user_name):
                    raise
            self.sleep(delay)
        try:
            return attempt(), len(self.delays)
        except Exception as exc:
            if not is_missing_user(exc, user_name):
                raise
            raise Transient(
                f"IAM still does not show the user {user_name!r} this operation created, after "
                f"{len(self.delays) + 1} tries over {sum(self.delays):g}s (eventual "
                "consistency); run the same operation again to finish it"
            ) from exc


#: The wait every :class:`Accounts` uses unless given another (tests shorten it).
FRESH_USER_WAIT = FreshUserWait()


#: Emails are compared and stored in the contract's one spelling (IAM names are
#: case-insensitive, so two spellings of one address must never become two accounts).
normalize_email = canonical_email


def _given_attributes(request: CreateRequest | ModifyRequest, email: str | None) -> dict[str, str]:
    values = {
        name: value
        for name, value in (
            ("first_name", request.first_name),
            ("last_name", request.last_name),
            ("display_name", request.display_name),
            ("email", email),
        )
        if value is not None
    }
    for name in request.attributes:
        if name in values or name in ("first_name", "last_name", "display_name", "email"):
            raise InvalidInput(
                f"attribute {name!r} must be given as its own field, not as an extra attribute"
            )
    return {**values, **request.attributes}


def _missing_tags(user: IamUser, tags: Mapping[str, str]) -> dict[str, str]:
    """The tags ``user`` does not carry with these values."""
    return {key: value for key, value in tags.items() if user.tags.get(key) != value}


class Accounts:
    """Create, modify and delete IAM users."""

    def __init__(
        self,
        iam: IAMClient,
        settings: Settings,
        entitlements: Entitlements,
        fresh_user_wait: FreshUserWait | None = None,
    ) -> None:
        self._iam = iam
        self._settings = settings
        self._attributes = AttributeMap(settings)
        self._entitlements = entitlements
        self._scope = Scope(settings)
        self._fresh_wait = fresh_user_wait or FRESH_USER_WAIT

    # --- naming and lookup -------------------------------------------------------------

    def user_name_for(self, email: str) -> str:
        local_part, _at, domain = email.partition("@")
        return self._settings.user_name.format(email=email, local_part=local_part, domain=domain)

    def _checked_identity(self, raw_email: str, field: str = "email") -> tuple[str, str]:
        """The normalised email and the user name it derives; every problem raised at once."""
        email = normalize_email(raw_email)
        problems = input_rules.email_problems(email, field)
        if problems:
            input_rules.require(problems)
        name = self.user_name_for(email)
        input_rules.require(input_rules.user_name_problems(name, f"user name derived from {field}"))
        return email, name

    def find(self, user_name: str) -> IamUser | None:
        try:
            return IamUser.from_response(self._iam.get_user(UserName=user_name)["User"])
        except Exception as exc:
            if is_code(exc, "NoSuchEntity"):
                return None
            raise

    def require(self, raw_email: str) -> tuple[str, IamUser]:
        """The account of an email, to be changed: NotFound when absent, Refused when it is
        protected or outside the connector's path."""
        email, name = self._checked_identity(raw_email)
        user = self.find(name)
        if user is None:
            raise NotFound(f"no account for {email} (IAM user {name!r} does not exist)")
        self._check_scope(user)
        return email, user

    def _check_scope(self, user: IamUser) -> None:
        self._scope.check_user(user.user_name, user.path, user.tags)

    # --- create ------------------------------------------------------------------------

    def create(self, request: CreateRequest) -> OperationResult:
        """Create the user with its create-time tags in one call, then grant.

        When the user exists already with this email in its email tag, the create resumes
        (an earlier run was interrupted): it completes tags and grants and changes nothing else.
        With ``checked_absent`` CreateUser is the first call (a bulk import's joiner costs no
        lookup); a user that appeared since the caller's read makes IAM answer
        ``EntityAlreadyExists``, and :meth:`_create_user` takes it from there.
        The grants of a user created here wait for IAM to show it (:class:`FreshUserWait`).
        """
        email, name, tags, skipped, grants = self._checked_create(request)
        # a caller that has just read the target and found no account spares the lookup: a
        # user made since is still met by CreateUser's answer, and handled as below
        existing = None if request.checked_absent else self.find(name)
        if existing is not None:
            if request.exclusive:
                raise AlreadyExists(f"IAM user {name!r} exists already; nothing was changed")
            self._check_resumable(existing, email, name)
            self._check_scope(existing)
            self._attributes.check_tag_count(existing.tags, tags)

        log = StepLog("create", translate)
        log.plan("create user", name)
        for entitlement in grants:
            log.plan("grant", str(entitlement))
        if existing is None:
            user = self._create_user(log, name, email, tags, request.exclusive)
        else:
            user = existing
            log.record("create user", name, StepStatus.UNCHANGED, "exists already; resuming")
        fresh = existing is None
        if existing is not None or _missing_tags(user, tags):
            self._complete_tags(log, user, tags, fresh)
        for attribute in skipped:
            log.record("write attribute", attribute, StepStatus.SKIPPED, "mapping: not on create")
        self._grant_all(log, name, grants, fresh)
        return log.result(AccountRef(user.user_id, user.user_name, email))

    def check_create(self, request: CreateRequest) -> None:
        """The guard rails and input checks of :meth:`create`, reads only: the input rules, the
        mapping, the grants (each grantable), and, when the user exists already, the scope it
        is judged by (its own path and tags: protected, or outside the connector's path). A
        bulk import refuses a whole file on these before its first write, so one protected row
        can no longer leave the other rows created and the file half done.

        Whether an existing user is this person's is left to :meth:`create`: that row fails
        alone, changing nothing."""
        _email, name, _tags, _skipped, _grants = self._checked_create(request)
        existing = self.find(name)
        if existing is not None:
            self._check_scope(existing)

    def _checked_create(
        self, request: CreateRequest
    ) -> tuple[str, str, dict[str, str], tuple[str, ...], list[Entitlement]]:
        email, name = self._checked_identity(request.email)
        tags, skipped = self._attributes.create_tags(_given_attributes(request, email))
        grants = [parse_entitlement(text) for text in request.grants]
        self._scope.check_user(name, self._settings.user_path, tags)
        for entitlement in grants:
            self._entitlements.check_grantable(entitlement)
        return email, name, tags, skipped, grants

    def _check_resumable(self, existing: IamUser, email: str, name: str) -> None:
        stored = existing.tags.get(self._attributes.email_tag())
        if existing.user_name != name or stored != email:
            raise AlreadyExists(
                f"IAM user {existing.user_name!r} exists already and is not the account of "
                f"{email} (its {self._attributes.email_tag()} tag is {stored!r})"
            )

    def _create_user(
        self, log: StepLog, name: str, email: str, tags: dict[str, str], exclusive: bool = False
    ) -> IamUser:
        """CreateUser; when IAM answers EntityAlreadyExists, a user of this name carrying this
        email is adopted (see :meth:`_adopt`), anything else is refused as taken. An
        ``exclusive`` create adopts only its own lost reply: another writer's user is refused.

        Who made it decides what the step says. Only when botocore retried this very call
        (``RetryAttempts`` of the answer) can the user be the work of its first attempt, whose
        answer was lost: ``done``. On the first attempt, someone else created it between the
        lookup and this call (a parallel create, a second import of the same file): this
        operation did not create it, so ``unchanged``, and exactly one writer reports it done.
        """
        params: dict[str, Any] = {
            "UserName": name,
            "Path": self._settings.user_path,
            "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
        }
        if self._settings.permissions_boundary:
            params["PermissionsBoundary"] = self._settings.permissions_boundary
        with log.step("create user", name) as outcome:
            try:
                created = IamUser.from_response(self._iam.create_user(**params)["User"])
            except Exception as exc:
                if not is_code(exc, "EntityAlreadyExists"):
                    raise
                if exclusive and not retries(exc):
                    raise AlreadyExists(
                        f"IAM user {name!r} was created meanwhile by another writer; nothing "
                        "was changed"
                    ) from exc
                created = self._adopt(name, email, tags)
                if retries(exc):
                    outcome.done(
                        "a retry of CreateUser found it created (the first answer was lost)"
                    )
                else:
                    outcome.unchanged("already exists: created by another writer")
            else:
                created = IamUser(
                    created.user_id, created.user_name, created.arn, dict(tags), created.path
                )
                outcome.done(f"{len(tags)} attribute tags")
        return created

    def _adopt(self, name: str, email: str, tags: Mapping[str, str]) -> IamUser:
        """The user IAM says exists, if it is this call's own (it may not be visible yet): a
        lost reply leaves it with exactly the tags this CreateUser sent. One carrying other
        values was made by another writer at the same moment (another server's create of the
        same person): adopting it would overwrite that create's attributes and add to its
        grants, so it is refused as taken, before any change."""
        user, _waits = self._fresh_wait.call(
            name, lambda: IamUser.from_response(self._iam.get_user(UserName=name)["User"])
        )
        self._check_resumable(user, email, name)
        if _missing_tags(user, tags):
            raise AlreadyExists(
                f"IAM user {name!r} was created meanwhile by another request, with other "
                "attributes than this one's"
            )
        return user

    def _complete_tags(
        self, log: StepLog, user: IamUser, tags: dict[str, str], fresh: bool
    ) -> None:
        missing = _missing_tags(user, tags)
        with log.step("tag user", user.user_name) as outcome:
            if not missing:
                outcome.unchanged("attributes already stored")
                return
            self._after_create(
                fresh,
                user.user_name,
                outcome,
                lambda: self._iam.tag_user(
                    UserName=user.user_name,
                    Tags=[{"Key": key, "Value": value} for key, value in missing.items()],
                ),
            )
            outcome.done(", ".join(sorted(missing)))

    def _grant_all(self, log: StepLog, name: str, grants: list[Entitlement], fresh: bool) -> None:
        for entitlement in grants:
            with log.step("grant", str(entitlement)) as outcome:
                grant = partial(self._entitlements.grant, name, entitlement, outcome, fresh)
                self._after_create(fresh, name, outcome, grant)

    def _after_create(
        self, fresh: bool, user_name: str, outcome: StepOutcome, call: Callable[[], object]
    ) -> None:
        """Run one idempotent step on a user; wait for IAM to show it only when this operation
        created it (``fresh``), and say so in the step's detail when it had to."""
        if not fresh:
            call()
            return
        _result, waits = self._fresh_wait.call(user_name, call)
        if waits:
            note = f"IAM showed the new user after {waits} retr{'y' if waits == 1 else 'ies'}"
            outcome.detail = f"{outcome.detail}; {note}" if outcome.detail else note

    # --- modify ------------------------------------------------------------------------

    def modify(self, request: ModifyRequest) -> OperationResult:
        """Rename when the email changes the derived name, then write only the tags that differ.

        A rename keeps the UserId, groups, policies, credentials and tags (IAM's UpdateUser).
        The tags are written last, removals first, so the email tag changes in the very last
        call: a user under the new name still carrying the old email is one whose rename was
        interrupted, and a re-run finds it and finishes (see :meth:`_find_for_modify`).
        """
        email, name = self._checked_identity(request.email)
        new_email, new_name = email, name
        if request.new_email is not None:
            new_email, new_name = self._checked_identity(request.new_email, "new email")
        values = _given_attributes(request, new_email if new_email != email else None)
        user, finished_before = self._find_for_modify(email, name, new_email, new_name)
        self._check_scope(user)
        if user.user_name != new_name:
            self._check_name_free(user, new_name, new_email)
        changes = self._attributes.modify_changes(values, user.tags)
        if finished_before and not changes.empty:
            raise NotFound(f"no account for {email} (IAM user {name!r} does not exist)")

        log = StepLog("modify", translate)
        if user.user_name != new_name:
            log.plan("rename user", f"{user.user_name} -> {new_name}")
        if changes.remove:
            log.plan("untag user", new_name)
        if changes.put:
            log.plan("tag user", new_name)
        if user.user_name != new_name:
            self._rename(log, user, new_name)
        if changes.remove:
            with log.step("untag user", new_name) as outcome:
                self._iam.untag_user(UserName=new_name, TagKeys=list(changes.remove))
                outcome.done(", ".join(changes.remove))
        if changes.put:
            with log.step("tag user", new_name) as outcome:
                self._iam.tag_user(
                    UserName=new_name,
                    Tags=[{"Key": key, "Value": value} for key, value in changes.put.items()],
                )
                outcome.done(", ".join(sorted(changes.put)))
        for attribute in changes.skipped:
            log.record("write attribute", attribute, StepStatus.SKIPPED, "mapping: not on modify")
        if not log.steps:
            log.record("modify user", new_name, StepStatus.UNCHANGED, "nothing differs")
        return log.result(AccountRef(user.user_id, new_name, new_email))

    def _check_name_free(self, user: IamUser, new_name: str, new_email: str) -> None:
        """A rename onto a name another user holds (in any letter case) is refused before
        anything changes, as a create onto it is."""
        taken = self.find(new_name)
        if taken is not None and taken.user_id != user.user_id:
            raise AlreadyExists(
                f"IAM user {taken.user_name!r} exists already (IAM names ignore case): "
                f"{user.user_name!r} cannot be renamed for {new_email}"
            )

    def _rename(self, log: StepLog, user: IamUser, new_name: str) -> None:
        """UpdateUser; when IAM answers that the old name is gone and the new name is this
        same user (same UserId), a retry by botocore met its own first attempt, whose answer
        was lost: the rename is done."""
        with log.step("rename user", f"{user.user_name} -> {new_name}") as outcome:
            try:
                self._iam.update_user(UserName=user.user_name, NewUserName=new_name)
            except Exception as exc:
                renamed = self.find(new_name) if is_missing_user(exc, user.user_name) else None
                if renamed is None or renamed.user_id != user.user_id:
                    raise
                outcome.done("a retry of UpdateUser found it renamed (the first answer was lost)")

    def _find_for_modify(
        self, email: str, name: str, new_email: str, new_name: str
    ) -> tuple[IamUser, bool]:
        """The user to modify, and whether it is one an earlier run of this rename finished.

        When the old name is gone, a user under the new name is this account if its email tag
        still says the old email (the rename was interrupted before the last step). If it says
        the new email, it is either this account renamed by an earlier complete run, or simply
        the account of the new email; the caller accepts it only if nothing would change, so a
        re-run of a finished rename is ``unchanged`` and another person's account is never
        written to.
        """
        user = self.find(name)
        if user is not None:
            return user, False
        if new_name != name:
            renamed = self.find(new_name)
            stored = renamed.tags.get(self._attributes.email_tag()) if renamed else None
            if renamed is not None and stored == email:
                return renamed, False
            if renamed is not None and stored == new_email:
                return renamed, True
        raise NotFound(f"no account for {email} (IAM user {name!r} does not exist)")

    # --- delete ------------------------------------------------------------------------

    def delete(self, request: DeleteRequest) -> OperationResult:
        """Remove the user after everything IAM requires gone; an absent user is a no-op."""
        email, name = self._checked_identity(request.email)
        log = StepLog("delete", translate)
        user = self.find(name)
        if user is None:
            log.record("delete user", name, StepStatus.UNCHANGED, "no such account")
            return log.result(None)
        self._check_scope(user)
        UserDeletion(self._iam, name).run(log)
        return log.result(AccountRef(user.user_id, name, email))
