"""The WSGI layer in front of moto: delay, account, fault, record, lock, then fidelity (IAM's,
Identity Center's for identitystore and sso-admin, role trust for sts:AssumeRole) or moto.

Every request passes here in its own server thread. The order matters: the simulated network
delay comes first (outside any lock, so concurrent clients overlap as they would against AWS);
then the account the request acts in is decided once (by moto's own mapping of access keys to
accounts) and handed to moto, so the call log, the faults, the rules and moto agree on it; then
the request may be throttled, faulted or find its user not yet visible (each such call never
reaches moto, exactly like a throttled call never reaches IAM's backend), and is recorded with
what was injected; only then is moto's state locked, because moto is not thread-safe and the
fidelity rules must see and change its state atomically. A fault with ``lose_reply`` is the
exception: the request is served, and its answer replaced by the error afterwards.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from hostsim.embedded_aws import identity_center, moto_state, role_trust
from hostsim.embedded_aws.clients import REGION
from hostsim.embedded_aws.consistency import FreshUsers
from hostsim.embedded_aws.faults import Call, CallRecorder, Fault, FaultInjector
from hostsim.embedded_aws.fidelity import IAMFidelity
from hostsim.embedded_aws.identity_center import IdentityCenterFidelity
from hostsim.embedded_aws.query import (
    QueryRequest,
    decode_params,
    encode_params,
    is_form_request,
    parse_signature,
    read_body,
    replace_body,
)
from hostsim.embedded_aws.responses import Reply, error_reply
from hostsim.embedded_aws.throttling import Throttler

_log = logging.getLogger(__name__)


class EmbeddedAWSMiddleware:
    """Wraps moto's WSGI app; holds the fault rules, the call log and the fidelity state."""

    def __init__(
        self,
        app: WSGIApplication,
        request_delay: float = 0.0,
        aws_managed_policies_on_demand: bool = True,
    ) -> None:
        self.app = app
        self.request_delay = request_delay
        self.faults = FaultInjector()
        self.throttler = Throttler()
        self.fresh_users = FreshUsers()
        self.calls = CallRecorder()
        self.fidelity = IAMFidelity(aws_managed_policies=aws_managed_policies_on_demand)
        self.identity_center = IdentityCenterFidelity()
        #: Serialises everything that reads or writes moto's state (requests and resets).
        self.state_lock = threading.RLock()
        #: Seconds requests spent holding :attr:`state_lock` (moto at work), in total: the
        #: part of a run this one-at-a-time simulator adds that AWS's servers do in parallel.
        self.served_seconds = 0.0

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if self.request_delay > 0:
            time.sleep(self.request_delay)
        reply = self._reply(environ)
        start_response(reply.status_line, reply.headers)
        return [reply.body]

    def _reply(self, environ: WSGIEnvironment) -> Reply:
        request = _decode(environ)
        service = request.service or "unknown"
        action = request.action or _target_action(environ)
        account = self._account(environ, request)
        if not action:
            return self._serve(environ, request, service, action, account)
        fault = self._fault_for(service, action, request.params, account)
        user_agent = str(environ.get("HTTP_USER_AGENT", ""))
        injected = None if fault is None else fault.code
        target = role_trust.target_account(request.params) if service == "sts" else ""
        call = Call(service, action, injected, user_agent, account, target)
        self.calls.record(call)
        if fault is None:
            return self._serve(environ, request, service, action, account)
        if fault.lose_reply:
            self._serve(environ, request, service, action, account)
        return _fault_reply(fault, service)

    def _account(self, environ: WSGIEnvironment, request: QueryRequest) -> str:
        """Decide once which account the request acts in, and tell moto (its
        ``x-moto-account-id`` header), so the call log, the faults, the rules and moto all
        agree on it; moto's look-up reads its backends, hence the lock."""
        with self.state_lock:
            account = moto_state.account_for(
                request.signature.access_key, environ.get("HTTP_X_MOTO_ACCOUNT_ID")
            )
        environ["HTTP_X_MOTO_ACCOUNT_ID"] = account
        return account

    def _fault_for(
        self, service: str, action: str, params: dict[str, str], account: str
    ) -> Fault | None:
        """What the request meets before moto, in IAM's order: the front door's throttling,
        then an armed fault, then (in the backend) its user not yet visible."""
        fault = self.throttler.take(service, action) or self.faults.take(
            service, action, params, account
        )
        if fault is None and service == "iam":
            fault = self.fresh_users.take(action, params)
        return fault

    def _serve(
        self,
        environ: WSGIEnvironment,
        request: QueryRequest,
        service: str,
        action: str | None,
        account: str,
    ) -> Reply:
        with self.state_lock:
            started = time.perf_counter()
            try:
                return self._locked(environ, request, service, action, account)
            finally:
                self.served_seconds += time.perf_counter() - started

    def _locked(
        self,
        environ: WSGIEnvironment,
        request: QueryRequest,
        service: str,
        action: str | None,
        account: str,
    ) -> Reply:
        """One request served by the fidelity rules or moto, the state lock held."""
        if service in identity_center.SERVICES and action:
            return _guarded(
                lambda: self._identity_center(environ, request, service, action, account),
                action,
            )
        if service == "iam" and request.action:
            reply = _guarded(lambda: self._iam(environ, request, account), action)
            if request.action == "CreateUser" and reply.status == 200:
                self.fresh_users.created(request.params.get("UserName", ""))
            return reply
        if service == "sts" and request.action == role_trust.ACTION:
            return _guarded(lambda: self._assume_role(environ, request, account), action)
        return _guarded(lambda: self._moto(environ), action or environ.get("PATH_INFO"))

    def _assume_role(self, environ: WSGIEnvironment, request: QueryRequest, account: str) -> Reply:
        """AssumeRole refused as AWS would (missing role, untrusted caller, external id)."""
        refused = role_trust.refusal(account, request.signature.access_key, request.params)
        return refused if refused is not None else self._moto(environ)

    def _iam(self, environ: WSGIEnvironment, request: QueryRequest, account_id: str) -> Reply:
        def forward(params: dict[str, str]) -> Reply:
            if params != request.params:
                replace_body(environ, encode_params(params))
            return self._moto(environ)

        return self.fidelity.handle(
            account_id, request.signature.access_key, request.params, forward
        )

    def _identity_center(
        self,
        environ: WSGIEnvironment,
        request: QueryRequest,
        service: str,
        action: str,
        account_id: str,
    ) -> Reply:
        body = read_body(environ)
        region = request.signature.region or REGION
        return self.identity_center.handle(
            account_id, region, service, action, body=body, forward=lambda: self._moto(environ)
        )

    def _moto(self, environ: WSGIEnvironment) -> Reply:
        """Run moto and buffer its whole reply, so the state lock covers all of moto's work."""
        captured: list[tuple[str, list[tuple[str, str]]]] = []
        written: list[bytes] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: object = None
        ) -> Callable[[bytes], object]:
            captured.append((status, headers))
            return written.append

        chunks = self.app(environ, start_response)
        try:
            body = b"".join([*written, *chunks])
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        status, headers = captured[-1]
        return Reply(status=int(status.split()[0]), body=body, headers=list(headers))


def _fault_reply(fault: Fault, service: str) -> Reply:
    """The injected error in the protocol of the service: JSON for identitystore and
    sso-admin (botocore could not read IAM's XML there), IAM's XML otherwise."""
    if service in identity_center.SERVICES and fault.body is None:
        return identity_center.ServiceError(fault.code, fault.message, fault.status).reply()
    return fault.reply()


def _guarded(serve: Callable[[], Reply], what: object) -> Reply:
    """Turn a crash into an IAM-style error instead of an HTML page botocore cannot parse.

    An operation moto lacks answers 501, which botocore does not retry, so the gap shows at
    once; any other crash is a bug (here or in moto) and is logged with its traceback.
    """
    try:
        return serve()
    except NotImplementedError as exc:
        return error_reply("NotImplemented", f"The embedded AWS (moto) lacks this: {exc}", 501)
    except Exception as exc:
        _log.exception("embedded AWS failed while serving %s", what)
        return error_reply("ServiceFailure", f"{type(exc).__name__}: {exc}", 500)


def _decode(environ: WSGIEnvironment) -> QueryRequest:
    """Decode the request's signature and query parameters (query string and form body).

    Only form bodies are read; others (S3 uploads, JSON protocols) reach moto untouched.
    """
    body = read_body(environ) if is_form_request(environ) else b""
    return QueryRequest(signature=parse_signature(environ), params=decode_params(environ, body))


def _target_action(environ: WSGIEnvironment) -> str | None:
    """The operation of a JSON-protocol request (``X-Amz-Target: Service.Operation``)."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    return target.rsplit(".", 1)[-1] if target else None
