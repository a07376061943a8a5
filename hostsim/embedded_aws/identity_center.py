"""IAM Identity Center where moto falls short: identitystore and sso-admin as AWS runs them.

Moto implements most of both services, with gaps a connector could come to rely on:

* identitystore ``UpdateUser`` is missing (moto answers 501); here it is served, with AWS's
  ``Operations`` (``AttributePath``/``AttributeValue``) and ``userName`` uniqueness;
* moto keeps the memberships of a deleted user (or group); AWS removes them;
* moto accepts the same membership twice; AWS answers ``ConflictException``;
* moto answers account assignments at once (``SUCCEEDED`` in the very reply of
  ``CreateAccountAssignment``). AWS provisions them asynchronously: the reply says
  ``IN_PROGRESS``, the assignment exists only once ``DescribeAccountAssignment*Status``
  reports ``SUCCEEDED``, and it can end ``FAILED`` with a ``FailureReason``. Here a request
  settles after :attr:`IdentityCenterFidelity.reads_in_progress` status reads (or
  :attr:`IdentityCenterFidelity.settle_seconds`, whoever asks), and a test can make the next
  one fail (:meth:`IdentityCenterFidelity.fail_next_assignment`).

Both services speak AWS's JSON protocol (``X-Amz-Target``), so requests and errors here are
JSON, as botocore parses them. Must be called with moto's state locked.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hostsim.embedded_aws import moto_state
from hostsim.embedded_aws.responses import Reply

#: The SigV4 service names of identitystore and sso-admin.
SERVICES = frozenset({"identitystore", "sso"})
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"

#: Sends the request to moto as it came and returns its reply.
Forward = Callable[[], Reply]


class ServiceError(Exception):
    """A refusal in AWS's JSON error shape (``__type``, ``Message``)."""

    def __init__(self, code: str, message: str, status: int = 400, **extra: str) -> None:
        super().__init__(message)
        self.code, self.message, self.status, self.extra = code, message, status, extra

    def reply(self) -> Reply:
        return json_reply({"__type": self.code, "Message": self.message, **self.extra}, self.status)


def json_reply(data: Mapping[str, Any], status: int = 200) -> Reply:
    body = json.dumps(data).encode("utf-8")
    headers = [
        ("Content-Type", JSON_CONTENT_TYPE),
        ("Content-Length", str(len(body))),
        ("x-amzn-RequestId", str(uuid.uuid4())),
    ]
    if status >= 400:
        headers.append(("x-amzn-ErrorType", str(data.get("__type", ""))))
    return Reply(status, body, headers)


# --- identitystore ------------------------------------------------------------------------

#: UpdateUser's attribute paths (compared case-insensitively, as AWS does) and moto's fields.
_USER_FIELDS = {
    "username": "UserName",
    "displayname": "DisplayName",
    "nickname": "NickName",
    "profileurl": "ProfileUrl",
    "emails": "Emails",
    "addresses": "Addresses",
    "phonenumbers": "PhoneNumbers",
    "usertype": "UserType",
    "title": "Title",
    "preferredlanguage": "PreferredLanguage",
    "locale": "Locale",
    "timezone": "Timezone",
}
_NAME_FIELDS = {
    "name.formatted": "Formatted",
    "name.familyname": "FamilyName",
    "name.givenname": "GivenName",
    "name.middlename": "MiddleName",
    "name.honorificprefix": "HonorificPrefix",
    "name.honorificsuffix": "HonorificSuffix",
}


def _store(backend: Any, params: Mapping[str, Any]) -> Any:
    store = backend.identity_stores.get(params.get("IdentityStoreId", ""))
    if store is None:
        raise ServiceError("ResourceNotFoundException", "IDENTITY_STORE not found.")
    return store


def update_user(backend: Any, params: Mapping[str, Any]) -> Reply:
    """AWS's UpdateUser: each operation replaces (or, with no value, removes) one attribute."""
    store = _store(backend, params)
    user = store.users.get(params.get("UserId", ""))
    if user is None:
        raise ServiceError("ResourceNotFoundException", "USER not found.", ResourceType="USER")
    operations = params.get("Operations") or []
    if not operations:
        raise ServiceError("ValidationException", "Operations must not be empty")
    for operation in operations:
        user = _apply(
            store, user, operation.get("AttributePath", ""), operation.get("AttributeValue")
        )
    store.users[user.UserId] = user
    return json_reply({})


def _apply(store: Any, user: Any, path: str, value: Any) -> Any:
    key = path.lower()
    if key in _NAME_FIELDS:
        name = user.Name or moto_state.identitystore_name()
        return user._replace(Name=name._replace(**{_NAME_FIELDS[key]: value}))
    if key not in _USER_FIELDS:
        raise ServiceError("ValidationException", f"The attribute {path} cannot be updated")
    if key == "username":
        if not value:
            raise ServiceError("ValidationException", "userName is a required attribute")
        taken = any(
            other.UserName == value and other.UserId != user.UserId
            for other in store.users.values()
        )
        if taken:
            raise ServiceError(
                "ConflictException", "Duplicate UserName", Reason="UNIQUENESS_CONSTRAINT_VIOLATION"
            )
    return user._replace(**{_USER_FIELDS[key]: value})


def refuse_duplicate_membership(backend: Any, params: Mapping[str, Any]) -> None:
    """AWS refuses a membership that exists already; moto would add it twice."""
    store = backend.identity_stores.get(params.get("IdentityStoreId", ""))
    user_id = (params.get("MemberId") or {}).get("UserId")
    if store is None or user_id is None:
        return
    for membership in store.group_memberships.values():
        if membership["GroupId"] == params.get("GroupId") and (
            membership["MemberId"].get("UserId") == user_id
        ):
            raise ServiceError(
                "ConflictException",
                "Member and Group relationship already exists.",
                Reason="UNIQUENESS_CONSTRAINT_VIOLATION",
            )


def drop_memberships(backend: Any, params: Mapping[str, Any], key: str) -> None:
    """After DeleteUser (``key`` UserId) or DeleteGroup (GroupId): their memberships go too."""
    store = backend.identity_stores.get(params.get("IdentityStoreId", ""))
    gone = params.get(key)
    if store is None or not gone:
        return
    for membership_id, membership in list(store.group_memberships.items()):
        held = membership["MemberId"].get("UserId") if key == "UserId" else membership["GroupId"]
        if held == gone:
            del store.group_memberships[membership_id]


# --- sso-admin: asynchronous account assignments ------------------------------------------

_ASSIGNMENT_KEYS = ("TargetId", "TargetType", "PermissionSetArn", "PrincipalType", "PrincipalId")
#: Which status each operation's reply and status read carry.
_STATUS_KEYS = {
    "creation": "AccountAssignmentCreationStatus",
    "deletion": "AccountAssignmentDeletionStatus",
}


@dataclass
class AssignmentRequest:
    """One CreateAccountAssignment or DeleteAccountAssignment AWS is still working on."""

    kind: str
    instance_arn: str
    assignment: dict[str, str]
    account_id: str
    region: str
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: float = field(default_factory=time.monotonic)
    reads: int = 0
    status: str = "IN_PROGRESS"
    failure: str | None = None
    failure_reason: str = ""

    def body(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "Status": self.status,
            "RequestId": self.request_id,
            **self.assignment,
            "CreatedDate": time.time(),
        }
        if self.status == "FAILED":
            status["FailureReason"] = self.failure_reason
        return {_STATUS_KEYS[self.kind]: status}


@dataclass(frozen=True)
class ArmedFailure:
    """The next assignment request of ``kind`` (for ``permission_set_arn``, when given) ends
    ``FAILED`` with ``reason``."""

    kind: str
    reason: str
    permission_set_arn: str | None = None


class AssignmentRequests:
    """Every assignment request made since the last reset, settled lazily."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[str, AssignmentRequest] = {}
        self.failures: deque[ArmedFailure] = deque()
        #: How many status reads answer IN_PROGRESS before the request settles.
        self.reads_in_progress = 1
        #: A request settles this long after it was made even if nobody reads its status.
        self.settle_seconds = 5.0

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self.failures.clear()
            self.reads_in_progress = 1
            self.settle_seconds = 5.0

    def arm(self, failure: ArmedFailure) -> None:
        with self._lock:
            self.failures.append(failure)

    def start(self, request: AssignmentRequest) -> AssignmentRequest:
        with self._lock:
            for armed in list(self.failures):
                if armed.kind == request.kind and armed.permission_set_arn in (
                    None,
                    request.assignment.get("PermissionSetArn"),
                ):
                    self.failures.remove(armed)
                    request.failure = armed.reason
                    break
            self.requests[request.request_id] = request
        return request

    def read(self, kind: str, request_id: str) -> AssignmentRequest:
        with self._lock:
            request = self.requests.get(request_id)
            if request is None or request.kind != kind:
                raise ServiceError(
                    "ResourceNotFoundException", f"Request {request_id} does not exist"
                )
            if request.status == "IN_PROGRESS":
                if request.reads >= self.reads_in_progress:
                    _settle(request)
                else:
                    request.reads += 1
            return request

    def settle_due(self) -> None:
        """Settle the requests older than :attr:`settle_seconds` (AWS finishes its work
        whether or not anybody asks)."""
        now = time.monotonic()
        with self._lock:
            for request in list(self.requests.values()):
                due = now - request.created >= self.settle_seconds
                if request.status == "IN_PROGRESS" and due:
                    _settle(request)


def _settle(request: AssignmentRequest) -> None:
    """Finish the request: fail it as armed, or apply it to moto's state."""
    if request.failure is not None:
        request.status, request.failure_reason = "FAILED", request.failure
        return
    backend = moto_state.ssoadmin_backend(request.account_id, request.region)
    existing = _find_assignment(backend, request.instance_arn, request.assignment)
    if request.kind == "creation" and existing is None:
        backend.create_account_assignment(
            instance_arn=request.instance_arn,
            target_id=request.assignment["TargetId"],
            target_type=request.assignment["TargetType"],
            permission_set_arn=request.assignment["PermissionSetArn"],
            principal_type=request.assignment["PrincipalType"],
            principal_id=request.assignment["PrincipalId"],
        )
    elif request.kind == "deletion" and existing is not None:
        backend.account_assignments.remove(existing)
    request.status = "SUCCEEDED"


def _find_assignment(backend: Any, instance_arn: str, wanted: Mapping[str, str]) -> Any | None:
    for assignment in backend.account_assignments:
        same = (
            assignment.instance_arn == instance_arn
            and assignment.target_id == wanted["TargetId"]
            and assignment.target_type == wanted["TargetType"]
            and assignment.permission_set_arn == wanted["PermissionSetArn"]
            and assignment.principal_type == wanted["PrincipalType"]
            and assignment.principal_id == wanted["PrincipalId"]
        )
        if same:
            return assignment
    return None


# --- routing ------------------------------------------------------------------------------


class IdentityCenterFidelity:
    """identitystore and sso-admin as AWS answers them, on top of moto."""

    def __init__(self) -> None:
        self.assignments = AssignmentRequests()

    def reset(self) -> None:
        self.assignments.clear()

    def handle(
        self,
        account_id: str,
        region: str,
        service: str,
        action: str,
        *,
        body: bytes,
        forward: Forward,
    ) -> Reply:
        """Answer one request of either service; moto's state must be locked."""
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            return ServiceError("SerializationException", "the body is not JSON").reply()
        try:
            if service == "sso":
                return self._sso_admin(account_id, region, action, params, forward)
            return self._identitystore(account_id, region, action, params, forward)
        except ServiceError as refusal:
            return refusal.reply()
        except NotImplementedError as exc:
            # JSON, as botocore parses these services' errors (moto lacks UpdateGroup, say)
            message = f"The embedded AWS (moto) lacks this: {exc}"
            return ServiceError("NotImplemented", message, 501).reply()

    def _identitystore(
        self, account_id: str, region: str, action: str, params: dict[str, Any], forward: Forward
    ) -> Reply:
        backend = moto_state.identitystore_backend(account_id, region)
        if action == "UpdateUser":
            return update_user(backend, params)
        if action == "CreateGroupMembership":
            refuse_duplicate_membership(backend, params)
        reply = forward()
        if reply.status == 200 and action in ("DeleteUser", "DeleteGroup"):
            drop_memberships(backend, params, "UserId" if action == "DeleteUser" else "GroupId")
        return reply

    def _sso_admin(
        self, account_id: str, region: str, action: str, params: dict[str, Any], forward: Forward
    ) -> Reply:
        self.assignments.settle_due()
        kind = {"CreateAccountAssignment": "creation", "DeleteAccountAssignment": "deletion"}
        if action in kind:
            backend = moto_state.ssoadmin_backend(account_id, region)
            _require_permission_set(backend, params)
            request = AssignmentRequest(
                kind=kind[action],
                instance_arn=str(params.get("InstanceArn", "")),
                assignment={key: str(params.get(key, "")) for key in _ASSIGNMENT_KEYS},
                account_id=account_id,
                region=region,
            )
            return json_reply(self.assignments.start(request).body())
        reads = {
            "DescribeAccountAssignmentCreationStatus": (
                "creation",
                "AccountAssignmentCreationRequestId",
            ),
            "DescribeAccountAssignmentDeletionStatus": (
                "deletion",
                "AccountAssignmentDeletionRequestId",
            ),
        }
        if action in reads:
            status_kind, key = reads[action]
            return json_reply(self.assignments.read(status_kind, str(params.get(key, ""))).body())
        return forward()


def _require_permission_set(backend: Any, params: Mapping[str, Any]) -> None:
    """AWS refuses an assignment of a permission set that does not exist; moto accepts it."""
    arn = params.get("PermissionSetArn")
    if not any(found.permission_set_arn == arn for found in backend.permission_sets):
        raise ServiceError(
            "ResourceNotFoundException", f"Could not find PermissionSet with ARN {arn}"
        )
