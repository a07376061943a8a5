"""Accounts: IAM users created, modified and deleted for people, found by their email.

The email is the account's unique identifier. The IAM user name derives from it through the
``user_name`` template (by default the email itself), the email and the other attributes live in
user tags (see :mod:`idhub_aws_plugin.attributes`), and the IAM UserId is the stable native id
that survives a rename. Every operation validates its whole input before its first change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from attrs import frozen

from hostsim.errors import AlreadyExists, InvalidInput, NotFound
from hostsim.model import (
    AccountRef,
    CreateRequest,
    DeleteRequest,
    ModifyRequest,
    OperationResult,
    StepStatus,
)
from hostsim.steps import StepLog
from idhub_aws_plugin import input_rules
from idhub_aws_plugin.attributes import AttributeMap
from idhub_aws_plugin.deletion import UserDeletion
from idhub_aws_plugin.entitlements import Entitlement, Entitlements, parse_entitlement
from idhub_aws_plugin.errors import is_code, translate
from idhub_aws_plugin.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient


@frozen
class IamUser:
    """What GetUser tells about a user, tags as a dict."""

    user_id: str
    user_name: str
    arn: str
    tags: dict[str, str]

    @classmethod
    def from_response(cls, user: Mapping[str, Any]) -> IamUser:
        return cls(
            user_id=user["UserId"],
            user_name=user["UserName"],
            arn=user["Arn"],
            tags={tag["Key"]: tag["Value"] for tag in user.get("Tags", [])},
        )


def normalize_email(email: str) -> str:
    """Emails are compared and stored lower-case: IAM names are case-insensitive, so two
    spellings of one address must never become two accounts."""
    return email.strip().lower()


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


class Accounts:
    """Create, modify and delete IAM users."""

    def __init__(self, iam: IAMClient, settings: Settings, entitlements: Entitlements) -> None:
        self._iam = iam
        self._settings = settings
        self._attributes = AttributeMap(settings)
        self._entitlements = entitlements

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
        """The account of an email, or NotFound."""
        email, name = self._checked_identity(raw_email)
        user = self.find(name)
        if user is None:
            raise NotFound(f"no account for {email} (IAM user {name!r} does not exist)")
        return email, user

    # --- create ------------------------------------------------------------------------

    def create(self, request: CreateRequest) -> OperationResult:
        """Create the user with its create-time tags in one call, then grant.

        When the user exists already with this email in its email tag, the create resumes
        (an earlier run was interrupted): it completes tags and grants and changes nothing else.
        """
        email, name = self._checked_identity(request.email)
        tags, skipped = self._attributes.create_tags(_given_attributes(request, email))
        grants = [parse_entitlement(text) for text in request.grants]
        for entitlement in grants:
            self._entitlements.ensure_exists(entitlement)
        existing = self.find(name)
        if existing is not None:
            self._check_resumable(existing, email, name)

        log = StepLog("create", translate)
        log.plan("create user", name)
        for entitlement in grants:
            log.plan("grant", str(entitlement))
        user = self._create_user(log, name, tags) if existing is None else existing
        if existing is not None:
            log.record("create user", name, StepStatus.UNCHANGED, "exists already; resuming")
            self._complete_tags(log, existing, tags)
        for attribute in skipped:
            log.record("write attribute", attribute, StepStatus.SKIPPED, "mapping: not on create")
        self._grant_all(log, name, grants)
        return log.result(AccountRef(user.user_id, user.user_name, email))

    def _check_resumable(self, existing: IamUser, email: str, name: str) -> None:
        stored = existing.tags.get(self._attributes.email_tag())
        if existing.user_name != name or stored != email:
            raise AlreadyExists(
                f"IAM user {existing.user_name!r} exists already and is not the account of "
                f"{email} (its {self._attributes.email_tag()} tag is {stored!r})"
            )

    def _create_user(self, log: StepLog, name: str, tags: dict[str, str]) -> IamUser:
        params: dict[str, Any] = {
            "UserName": name,
            "Path": self._settings.user_path,
            "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
        }
        if self._settings.permissions_boundary:
            params["PermissionsBoundary"] = self._settings.permissions_boundary
        with log.step("create user", name) as outcome:
            created = IamUser.from_response(self._iam.create_user(**params)["User"])
            outcome.done(f"{len(tags)} attribute tags")
        return created

    def _complete_tags(self, log: StepLog, user: IamUser, tags: dict[str, str]) -> None:
        missing = {key: value for key, value in tags.items() if user.tags.get(key) != value}
        with log.step("tag user", user.user_name) as outcome:
            if not missing:
                outcome.unchanged("attributes already stored")
                return
            self._iam.tag_user(
                UserName=user.user_name,
                Tags=[{"Key": key, "Value": value} for key, value in missing.items()],
            )
            outcome.done(", ".join(sorted(missing)))

    def _grant_all(self, log: StepLog, name: str, grants: list[Entitlement]) -> None:
        for entitlement in grants:
            with log.step("grant", str(entitlement)) as outcome:
                self._entitlements.grant(name, entitlement, outcome)

    # --- modify ------------------------------------------------------------------------

    def modify(self, request: ModifyRequest) -> OperationResult:
        """Rename when the email changes the derived name, then write only the tags that differ.

        A rename keeps the UserId, groups, policies, credentials and tags (IAM's UpdateUser).
        A re-run after an interrupted rename finds the user under its new name and finishes.
        """
        email, name = self._checked_identity(request.email)
        new_email, new_name = email, name
        if request.new_email is not None:
            new_email, new_name = self._checked_identity(request.new_email, "new email")
        values = _given_attributes(request, new_email if new_email != email else None)
        user = self._find_for_modify(email, name, new_email, new_name)
        changes = self._attributes.modify_changes(values, user.tags)

        log = StepLog("modify", translate)
        if user.user_name != new_name:
            log.plan("rename user", f"{user.user_name} -> {new_name}")
        if changes.put:
            log.plan("tag user", new_name)
        if changes.remove:
            log.plan("untag user", new_name)
        if user.user_name != new_name:
            with log.step("rename user", f"{user.user_name} -> {new_name}"):
                self._iam.update_user(UserName=user.user_name, NewUserName=new_name)
        if changes.put:
            with log.step("tag user", new_name) as outcome:
                self._iam.tag_user(
                    UserName=new_name,
                    Tags=[{"Key": key, "Value": value} for key, value in changes.put.items()],
                )
                outcome.done(", ".join(sorted(changes.put)))
        if changes.remove:
            with log.step("untag user", new_name) as outcome:
                self._iam.untag_user(UserName=new_name, TagKeys=list(changes.remove))
                outcome.done(", ".join(changes.remove))
        for attribute in changes.skipped:
            log.record("write attribute", attribute, StepStatus.SKIPPED, "mapping: not on modify")
        if not log.steps:
            log.record("modify user", new_name, StepStatus.UNCHANGED, "nothing differs")
        return log.result(AccountRef(user.user_id, new_name, new_email))

    def _find_for_modify(self, email: str, name: str, new_email: str, new_name: str) -> IamUser:
        user = self.find(name)
        if user is not None:
            return user
        if new_name != name:
            renamed = self.find(new_name)
            stored = renamed.tags.get(self._attributes.email_tag()) if renamed else None
            if renamed is not None and stored in (email, new_email):
                return renamed  # an earlier run renamed it already
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
        UserDeletion(self._iam, name).run(log)
        return log.result(AccountRef(user.user_id, name, email))
