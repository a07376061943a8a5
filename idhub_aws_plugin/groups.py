"""Creating and deleting IAM groups, for deployments that let IDHub manage the catalog itself.

Off unless ``manage_groups = true``: most operators curate their groups in IAM (or as code) and
want the connector to grant them, never to make or remove them. Deleting a group removes first
what IAM requires (members, attached and inline policies), each one idempotent step like the
user cascade, so a re-run after a failure finishes.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from hostsim.contract import OperationResult, Refused, StepLog, StepStatus
from idhub_aws_plugin import input_rules
from idhub_aws_plugin.client import PAGE
from idhub_aws_plugin.deletion import remove_each
from idhub_aws_plugin.entitlements import attached_group_policies
from idhub_aws_plugin.errors import is_code, translate
from idhub_aws_plugin.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient


class GroupManagement:
    """Create and delete IAM groups, when the settings allow it."""

    def __init__(self, iam: IAMClient, settings: Settings) -> None:
        self._iam = iam
        self._settings = settings

    def _checked(self, name: str) -> None:
        if not self._settings.manage_groups:
            raise Refused(
                "the connector does not create or delete IAM groups here "
                "(set manage_groups = true in [aws-iam] to allow it)"
            )
        input_rules.require(input_rules.group_name_problems(name))

    def _exists(self, name: str) -> bool:
        try:
            self._iam.get_group(GroupName=name, MaxItems=1)
        except Exception as exc:
            if is_code(exc, "NoSuchEntity"):
                return False
            raise
        return True

    def create(self, name: str) -> OperationResult:
        self._checked(name)
        log = StepLog("create group", translate)
        if self._exists(name):
            log.record("create group", name, StepStatus.UNCHANGED, "exists already")
            return log.result(None)
        with log.step("create group", name) as outcome:
            try:
                self._iam.create_group(GroupName=name, Path=self._settings.user_path)
            except Exception as exc:  # a retry meeting its own first attempt
                if not is_code(exc, "EntityAlreadyExists"):
                    raise
                outcome.unchanged("exists already")
        return log.result(None)

    def delete(self, name: str) -> OperationResult:
        self._checked(name)
        log = StepLog("delete group", translate)
        if not self._exists(name):
            log.record("delete group", name, StepStatus.UNCHANGED, "no such group")
            return log.result(None)
        cascade = (
            ("remove members", self._members, self._remove_member),
            ("detach policies", partial(attached_group_policies, self._iam), self._detach),
            ("delete inline policies", self._inline, self._delete_inline),
        )
        for action, _listed, _remove in cascade:
            log.plan(action, name)
        log.plan("delete group", name)
        for action, listed, remove in cascade:
            with log.step(action, name) as outcome:
                remove_each(outcome, listed(name), partial(remove, name))
        with log.step("delete group", name):
            self._iam.delete_group(GroupName=name)
        return log.result(None)

    def _members(self, name: str) -> list[str]:
        pages = self._iam.get_paginator("get_group").paginate(GroupName=name, PaginationConfig=PAGE)
        return [user["UserName"] for page in pages for user in page["Users"]]

    def _remove_member(self, name: str, user: str) -> None:
        self._iam.remove_user_from_group(GroupName=name, UserName=user)

    def _detach(self, name: str, arn: str) -> None:
        self._iam.detach_group_policy(GroupName=name, PolicyArn=arn)

    def _inline(self, name: str) -> list[str]:
        pages = self._iam.get_paginator("list_group_policies").paginate(
            GroupName=name, PaginationConfig=PAGE
        )
        return [policy for page in pages for policy in page["PolicyNames"]]

    def _delete_inline(self, name: str, policy: str) -> None:
        self._iam.delete_group_policy(GroupName=name, PolicyName=policy)
