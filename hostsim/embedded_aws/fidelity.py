"""Route one IAM request through the fidelity rules, to moto, and through the repairs.

This is the table of which IAM operation gets which treatment: refused early by a rule,
served entirely by the middleware (operations moto lacks or gets wrong), forwarded to moto
as is, or forwarded and then repaired. The rules themselves live in their own modules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hostsim.embedded_aws import (
    aws_policies,
    iam_rules,
    moto_state,
    pagination,
    permissions_boundaries,
    policy_simulation,
    rename,
    user_tags,
)
from hostsim.embedded_aws.iam_errors import IAMError
from hostsim.embedded_aws.moto_state import IAMBackend
from hostsim.embedded_aws.responses import Reply, result_reply
from hostsim.embedded_aws.service_credentials import (
    ServiceCredentialOperations,
    ServiceCredentialStore,
)

#: Sends (possibly rewritten) parameters to moto and returns its reply.
Forward = Callable[[dict[str, str]], Reply]

_Check = Callable[[IAMBackend, Mapping[str, str]], None]

#: Refusals that need only moto's state; when they pass, moto does the work.
_CHECKS: dict[str, _Check] = {
    "CreateUser": iam_rules.check_create_user,
    "UpdateUser": iam_rules.check_update_user,
    "CreateGroup": iam_rules.check_create_group,
    "UpdateGroup": iam_rules.check_update_group,
    "DeleteGroup": iam_rules.check_delete_group,
    "CreatePolicy": iam_rules.check_create_policy,
    "DeletePolicy": iam_rules.check_delete_policy,
    "AddUserToGroup": iam_rules.check_add_user_to_group,
    "AttachUserPolicy": iam_rules.check_attach_user_policy,
    "AttachGroupPolicy": iam_rules.check_attach_group_policy,
}


_Serve = Callable[[IAMBackend, Mapping[str, str]], Reply]

#: Operations the middleware answers itself, without moto (moto lacks them or gets them wrong).
_SERVED: dict[str, _Serve] = {
    "TagUser": user_tags.tag_user,
    "UntagUser": user_tags.untag_user,
    "PutUserPermissionsBoundary": permissions_boundaries.put,
    "DeleteUserPermissionsBoundary": permissions_boundaries.delete,
    "SimulatePrincipalPolicy": policy_simulation.simulate_principal_policy,
}

_Complete = Callable[[IAMBackend, Mapping[str, str], Reply], Reply]

#: Operations whose moto reply lacks something IAM's has; run after moto answered.
_COMPLETIONS: dict[str, _Complete] = {
    "CreateUser": permissions_boundaries.after_create_user,
    "GetUser": permissions_boundaries.show_in_reply,
    "GetAccountAuthorizationDetails": permissions_boundaries.show_in_reply,
}


@dataclass(frozen=True)
class IAMRequest:
    """One IAM request as the rules see it: whose state, who called, what was asked."""

    backend: IAMBackend
    account_id: str
    access_key: str | None
    action: str
    params: dict[str, str]


class IAMFidelity:
    """IAM behaviour on top of moto, plus the state moto cannot hold (service credentials)."""

    def __init__(self, aws_managed_policies: bool = True) -> None:
        #: Whether AWS-managed policies are added to moto on demand (see ``aws_policies``).
        self.aws_managed_policies = aws_managed_policies
        self.credentials = ServiceCredentialStore()
        self._credential_operations = ServiceCredentialOperations(self.credentials)

    def handle(
        self, account_id: str, access_key: str | None, params: dict[str, str], forward: Forward
    ) -> Reply:
        """Answer one IAM request; must be called with moto's state locked."""
        backend = moto_state.iam_backend(account_id)
        action = params.get("Action", "")
        if self.aws_managed_policies:
            aws_policies.materialize_for(backend, action, params)
        request = IAMRequest(
            backend=backend,
            account_id=account_id,
            access_key=access_key,
            action=action,
            params=iam_rules.canonical_names(backend, action, params),
        )
        try:
            return self._dispatch(request, forward)
        except IAMError as refusal:
            return refusal.reply()

    def reset(self) -> None:
        """Forget the state kept outside moto."""
        self.credentials.clear()

    def _dispatch(self, request: IAMRequest, forward: Forward) -> Reply:
        backend, action, params = request.backend, request.action, request.params
        if action in ServiceCredentialOperations.ACTIONS:
            caller = _calling_user(backend, request.access_key)
            return self._credential_operations.serve(
                action, backend, request.account_id, params, caller
            )
        if action in _SERVED:
            return _SERVED[action](backend, params)
        if action == "AttachUserPolicy" and iam_rules.already_attached_to_user(backend, params):
            return result_reply(action)
        if action == "DeleteUser":
            iam_rules.check_delete_user(backend, params, self._has_credentials(request.account_id))
        if action in _CHECKS:
            _CHECKS[action](backend, params)
        if action == "UpdateUser":
            return self._update_user(request, forward)
        if action in pagination.LIST_ELEMENTS:
            return _paginated(action, params, forward)
        reply = pagination.forward_page(backend, action, params, forward)
        complete = _COMPLETIONS.get(action)
        return reply if complete is None else complete(backend, params, reply)

    def _update_user(self, request: IAMRequest, forward: Forward) -> Reply:
        before = rename.capture(request.backend, request.params)
        reply = forward(request.params)
        if reply.status == 200 and before is not None:
            rename.repair(request.backend, request.account_id, before, self.credentials)
        return reply

    def _has_credentials(self, account_id: str) -> Callable[[str], bool]:
        return lambda user_name: bool(self.credentials.for_user(account_id, user_name))


def _paginated(action: str, params: dict[str, str], forward: Forward) -> Reply:
    """Fetch moto's whole list and return the page the client asked for."""
    unpaged, page = pagination.split(params)
    return pagination.apply(forward(unpaged), action, page)


def _calling_user(backend: IAMBackend, access_key: str | None) -> str | None:
    """The IAM user owning the request's access key; None means the account's root identity."""
    key = backend.access_keys.get(access_key) if access_key else None
    return None if key is None or key.user_name is None else str(key.user_name)
