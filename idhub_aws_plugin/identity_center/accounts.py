"""Joiners, movers and leavers as identity-store users.

userName is the (canonical) email, so an existing user of that name is this person's: a
create resumes it (unless ``exclusive``). A mover's changes go in one UpdateUser, whose
``Operations`` replace exactly the attributes that differ; a new email changes userName and
Emails together. A leaver's direct account assignments are deleted (and awaited), then its
memberships, then the user; an absent user is ``unchanged``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from hostsim.contract import (
    AccountRef,
    AlreadyExists,
    CreateRequest,
    DeleteRequest,
    ModifyRequest,
    NotFound,
    OperationResult,
    StepLog,
    StepOutcome,
    Translator,
    canonical_email,
)
from idhub_aws_plugin import input_rules
from idhub_aws_plugin.errors import is_code
from idhub_aws_plugin.identity_center.access import Access, Resolved
from idhub_aws_plugin.identity_center.assignments import USER, Assignments, PermissionSets
from idhub_aws_plugin.identity_center.directory import (
    CORE_PATHS,
    EXTRA_ATTRIBUTES,
    Directory,
    StoreUser,
    work_email,
)
from idhub_aws_plugin.identity_center.entitlements import (
    AssignmentEntitlement,
    GroupEntitlement,
    parse_entitlement,
)

#: Attributes the identity store requires: they can be changed, never cleared.
REQUIRED = ("first_name", "last_name", "display_name")


def checked_email(email: str, field: str = "email") -> str:
    """The canonical email, or InvalidInput (nothing changed) when it is not one."""
    canonical = canonical_email(email)
    input_rules.require(input_rules.email_problems(canonical, field))
    return canonical


def _extra_problems(attributes: Mapping[str, str]) -> list[str]:
    return [
        f"attribute {name!r}: the identity store has no home for it (known: "
        f"{', '.join(sorted(EXTRA_ATTRIBUTES))})"
        for name in attributes
        if name not in EXTRA_ATTRIBUTES
    ]


class Accounts:
    """Create, modify and delete identity-store users, with their grants and cascade."""

    def __init__(
        self,
        directory: Directory,
        permission_sets: PermissionSets,
        assignments: Assignments,
        translate: Translator,
    ) -> None:
        self._directory = directory
        self._permission_sets = permission_sets
        self._assignments = assignments
        self.access = Access(directory, permission_sets, assignments)
        self._translate = translate

    def _log(self, operation: str) -> StepLog:
        return StepLog(operation, self._translate)

    def require(self, email: str) -> tuple[str, StoreUser]:
        """The user of ``email``; NotFound (exit 2) when there is none."""
        canonical = checked_email(email)
        user = self._directory.find(canonical)
        if user is None:
            raise NotFound(f"no account for {canonical} in the identity store")
        return canonical, user

    # --- create ---------------------------------------------------------------------------

    def check_create(self, request: CreateRequest) -> list[Resolved]:
        """Every check ``create`` makes before its first change, reads only; the grants
        resolved to native ids."""
        checked_email(request.email)
        problems = [
            f"{name}: the identity store requires it"
            for name in ("first_name", "last_name")
            if not getattr(request, name)
        ]
        problems += _extra_problems(request.attributes)
        input_rules.require(problems)
        return [self.access.resolve(parse_entitlement(grant)) for grant in request.grants]

    def create(self, request: CreateRequest) -> OperationResult:
        grants = self.check_create(request)
        email = canonical_email(request.email)
        log = self._log("create")
        log.plan("create user", email)
        for resolved in grants:
            log.plan("grant", str(resolved.entitlement))
        existing = None if request.checked_absent else self._directory.find(email)
        if existing is not None and request.exclusive:
            raise AlreadyExists(f"an account for {email} exists already")
        with log.step("create user", email) as outcome:
            if existing is None:
                user_id, existing = self._create_user(email, request, outcome)
            else:
                user_id = existing.user_id
                outcome.unchanged("exists already: resumed")
        if existing is not None:
            self._update(log, existing, _create_changes(request), email)
        for resolved in grants:
            with log.step("grant", str(resolved.entitlement)) as outcome:
                self.access.grant(user_id, resolved, outcome)
        return log.result(AccountRef(user_id, email, email))

    def _create_user(
        self, email: str, request: CreateRequest, outcome: StepOutcome
    ) -> tuple[str, StoreUser | None]:
        """CreateUser: the UserId, and the user when it existed after all. A
        ConflictException means the user exists now: made by another writer since our read,
        or by this very request whose reply was lost and whose retry met it. The user name is
        the email, so it is this person's: resumed, unless the request is ``exclusive``."""
        try:
            return self._directory.create_user(email, _create_fields(email, request)), None
        except Exception as exc:
            if not is_code(exc, "ConflictException"):
                raise
            if request.exclusive:
                raise AlreadyExists(f"an account for {email} exists already") from exc
            found = self._directory.find(email)
            if found is None:
                raise
        outcome.done("exists now (a lost reply of this request, or another writer): resumed")
        return found.user_id, found

    # --- modify ---------------------------------------------------------------------------

    def modify(self, request: ModifyRequest) -> OperationResult:
        email, user = self.require(request.email)
        new_email = checked_email(request.new_email, "new email") if request.new_email else None
        changes = {
            name: getattr(request, name)
            for name in CORE_PATHS
            if getattr(request, name) is not None
        }
        cleared = [name for name in REQUIRED if changes.get(name) == ""]
        problems = [
            f"{name}: the identity store requires it, it cannot be cleared" for name in cleared
        ]
        input_rules.require(problems + _extra_problems(request.attributes))
        changes.update(request.attributes)
        if new_email and new_email != email and self._directory.user_id(new_email) is not None:
            raise AlreadyExists(f"{new_email} is taken by another account")
        log = self._log("modify")
        name = self._update(log, user, changes, new_email if new_email != email else None)
        return log.result(AccountRef(user.user_id, name, name))

    def _update(
        self, log: StepLog, user: StoreUser, changes: Mapping[str, str], new_email: str | None
    ) -> str:
        """One UpdateUser with the operations that differ; the user's name afterwards."""
        operations = _operations(user, changes)
        name = new_email or user.user_name
        if new_email and new_email != user.user_name:
            operations += [
                {"AttributePath": "userName", "AttributeValue": new_email},
                {"AttributePath": "emails", "AttributeValue": work_email(new_email)},
            ]
        with log.step("update user", name) as outcome:
            if not operations:
                outcome.unchanged()
            else:
                self._directory.update_user(user.user_id, operations)
                outcome.done(", ".join(op["AttributePath"] for op in operations))
        return name

    # --- delete ---------------------------------------------------------------------------

    def delete(self, request: DeleteRequest) -> OperationResult:
        email = checked_email(request.email)
        log = self._log("delete")
        user = self._directory.find(email)
        if user is None:
            with log.step("delete user", email) as outcome:
                outcome.unchanged("no such user")
            return log.result(None)
        held = self._assignments.held_by(user.user_id, USER)
        memberships = list(self._directory.memberships_of(user.user_id))
        steps: list[tuple[str, str, Callable[[], Any]]] = []
        for assignment in held:
            entitlement = AssignmentEntitlement(
                self._permission_sets.name_of(assignment.permission_set_arn), assignment.account_id
            )
            remove = partial(
                self._assignments.delete,
                user.user_id,
                assignment.permission_set_arn,
                assignment.account_id,
            )
            steps.append(("delete assignment", str(entitlement), remove))
        for membership_id, group_id in memberships:
            group = GroupEntitlement(self._directory.group_name(group_id))
            leave = partial(self._directory.remove_membership, membership_id)
            steps.append(("remove from group", str(group), leave))
        steps.append(("delete user", email, partial(self._directory.delete_user, user.user_id)))
        for action, target, _run in steps:
            log.plan(action, target)
        for action, target, run in steps:
            with log.step(action, target) as outcome:
                detail = run()
                outcome.done(detail if isinstance(detail, str) else "")
        return log.result(AccountRef(user.user_id, user.user_name, email))


def _create_fields(email: str, request: CreateRequest) -> dict[str, Any]:
    first, last = request.first_name or "", request.last_name or ""
    fields: dict[str, Any] = {
        "Name": {"GivenName": first, "FamilyName": last},
        "DisplayName": request.display_name or f"{first} {last}".strip(),
        "Emails": work_email(email),
    }
    for attribute, value in request.attributes.items():
        fields[EXTRA_ATTRIBUTES[attribute][1]] = value
    return fields


def _create_changes(request: CreateRequest) -> dict[str, str]:
    """What a resumed create asks of the existing user (only what it was given)."""
    changes = {name: getattr(request, name) for name in CORE_PATHS if getattr(request, name)}
    changes.update(request.attributes)
    return changes


def _operations(user: StoreUser, changes: Mapping[str, str]) -> list[dict[str, Any]]:
    """UpdateUser operations for the attributes whose value differs (``""`` removes an
    optional one)."""
    operations: list[dict[str, Any]] = []
    for name, value in changes.items():
        if (user.value(name) or "") == value:
            continue
        path = CORE_PATHS.get(name) or EXTRA_ATTRIBUTES[name][0]
        operations.append({"AttributePath": path, "AttributeValue": value or None})
    return operations
