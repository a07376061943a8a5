"""The embedded AWS: moto's server plus the fidelity middleware, on a thread in this process.

``hostsim demo`` and the test suite both need an AWS that costs nothing, needs no credentials
or network, and behaves like IAM where it matters. This class owns the lifecycle (bind, serve,
stop), the environment a client needs to reach it, and the test controls (reset, call log,
faults). Moto keeps its state in module globals, so every EmbeddedAWS in one process shares
the same accounts; :meth:`EmbeddedAWS.reset` empties them all.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Self

import boto3
from botocore.config import Config
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from hostsim.embedded_aws import aws_policies, clients, moto_state, organization
from hostsim.embedded_aws.consistency import HidingRule
from hostsim.embedded_aws.faults import Call, Fault
from hostsim.embedded_aws.identity_center import ArmedFailure
from hostsim.embedded_aws.middleware import EmbeddedAWSMiddleware
from hostsim.embedded_aws.organization import Organization
from hostsim.embedded_aws.throttling import ThrottleRule

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_sts import STSClient

#: How often the serving loop checks for stop(); the socketserver default (0.5 s) would make
#: every stop() take half a second.
_SHUTDOWN_POLL_SECONDS = 0.02


class _QuietRequestHandler(MotoRequestHandler):
    """Moto's request handler without the one-line-per-request access log.

    The demo narrates to the terminal and the tests make thousands of calls; an access log
    line for each would drown both. Errors are still logged.
    """

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Drop the access log line."""


class EmbeddedAWS:
    """Moto's HTTP server with IAM fidelity rules, fault injection and a call log.

    Usable as ``EmbeddedAWS().start()`` ... ``stop()`` or as a context manager.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        load_aws_managed_policies: bool = True,
        request_delay: float = 0.0,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.load_aws_managed_policies = load_aws_managed_policies
        # Cheap path: add AWS-managed policies when a request needs them. Should a future moto
        # not ship the data that needs, let moto load them all eagerly instead.
        self._policies_on_demand = load_aws_managed_policies and aws_policies.available()
        self._middleware = EmbeddedAWSMiddleware(
            DomainDispatcherApplication(create_backend_app),
            request_delay=request_delay,
            aws_managed_policies_on_demand=self._policies_on_demand,
        )
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._settings = ExitStack()
        self._session_lock = threading.Lock()
        self._session: boto3.session.Session | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind the port, start serving on a daemon thread and begin from empty state.

        Binding happens here, in the caller's thread, so a port already in use raises here.
        """
        if self._server is not None:
            raise RuntimeError("EmbeddedAWS is already running")
        eager = self.load_aws_managed_policies and not self._policies_on_demand
        self._settings.enter_context(moto_state.server_settings(eager))
        try:
            self._server = make_server(
                self.host,
                self._requested_port,
                self._middleware,
                threaded=True,
                request_handler=_QuietRequestHandler,
            )
        except BaseException:
            self._settings.close()
            raise
        self.reset()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _SHUTDOWN_POLL_SECONDS},
            name="embedded-aws",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release the port and restore moto's process-wide settings."""
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join()
        self._settings.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the server is accepting requests."""
        return self._server is not None

    # -- how to reach it -------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (the one the OS chose when constructed with port 0)."""
        return int(self._require_server().server_port)

    @property
    def endpoint_url(self) -> str:
        """The URL to give boto3 as ``endpoint_url`` (or ``AWS_ENDPOINT_URL``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def account_id(self) -> str:
        """The account every call made with the fake credentials acts on."""
        return os.environ.get(moto_state.ACCOUNT_ENV, moto_state.default_account_id())

    @property
    def region(self) -> str:
        """The region clients are configured for."""
        return clients.REGION

    def client_env(self) -> dict[str, str]:
        """Environment variables that point any AWS SDK (or subprocess) here, and only here:
        endpoint, fake credentials, region, and the user's ``~/.aws`` files switched off."""
        return clients.client_env(self.endpoint_url)

    def subprocess_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """A complete environment for a child process: ``base`` (default: ours) minus any
        profile, role or session-token variable, plus :meth:`client_env`."""
        return clients.subprocess_env(self.endpoint_url, os.environ if base is None else base)

    def iam_client(self, config: Config | None = None) -> IAMClient:
        """An IAM client for this server (see :meth:`session` for what it ignores)."""
        with self._session_lock:
            return self._shared_session().client(
                "iam", endpoint_url=self.endpoint_url, config=config
            )

    def sts_client(self, config: Config | None = None) -> STSClient:
        """An STS client for this server (``GetCallerIdentity`` answers with
        :attr:`account_id`)."""
        with self._session_lock:
            return self._shared_session().client(
                "sts", endpoint_url=self.endpoint_url, config=config
            )

    def _shared_session(self) -> boto3.session.Session:
        """One session for all clients made here: building a client from a fresh session
        reloads botocore's service models (~40 ms), from a warm one it costs ~2 ms. Sessions
        are not thread-safe, hence the lock around client creation (clients are)."""
        if self._session is None:
            self._session = self.session()
        return self._session

    def session(self) -> boto3.session.Session:
        """A new boto3 session with the fake credentials that ignores the user's AWS
        configuration; its clients need ``endpoint_url=self.endpoint_url``."""
        return clients.isolated_session()

    # -- test controls ---------------------------------------------------------------------

    @property
    def request_delay(self) -> float:
        """Seconds every request sleeps before it is handled (a simulated round trip)."""
        return self._middleware.request_delay

    @request_delay.setter
    def request_delay(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"request_delay must not be negative, got {seconds}")
        self._middleware.request_delay = seconds

    def reset(self) -> None:
        """Empty every account (and the organization), forget faults, the call log and service
        credentials.

        Waits for requests in progress; requests arriving meanwhile see the empty state.
        """
        with self._middleware.state_lock:
            moto_state.reset_all()
            self._middleware.fidelity.reset()
            self._middleware.identity_center.reset()
            self.reset_faults()
            self._middleware.calls.clear()

    @property
    def served_seconds(self) -> float:
        """Seconds moto spent serving requests so far, in total. Moto is not thread-safe, so
        the embedded AWS serves one request at a time: a benchmark of concurrent clients
        reports this beside its wall time, since AWS's servers do that work in parallel."""
        return self._middleware.served_seconds

    def calls(self, service: str | None = "iam", account: str | None = None) -> list[str]:
        """Action names received so far, in order, faulted and refused ones included.

        ``service`` filters by SigV4 service name; None returns every service's calls.
        ``account`` keeps only the calls that acted in that account (an assumed role's calls
        act in the role's account); None keeps every account's.
        """
        return self._middleware.calls.actions(service, account)

    def reached(self, account_id: str, service: str | None = None) -> list[str]:
        """Actions that acted in ``account_id`` or reached into it (an AssumeRole of one of
        its roles, which itself acts in the caller's account), every service by default:
        ``reached(excluded) == []`` proves a run never touched that account."""
        return self._middleware.calls.reaching(account_id, service)

    def received(self, service: str | None = "iam", account: str | None = None) -> list[Call]:
        """The calls themselves (action, account, injected error, user agent), filtered as
        for :meth:`calls`."""
        return self._middleware.calls.received(service, account)

    def listen(self, listener: Callable[[Call], None]) -> None:
        """Have ``listener`` see every request from now on, across resets (see
        :meth:`CallRecorder.listen`)."""
        self._middleware.calls.listen(listener)

    def clear_calls(self) -> None:
        """Forget the call log (to assert only on what a step does next)."""
        self._middleware.calls.clear()

    def injected(
        self, service: str | None = "iam", account: str | None = None
    ) -> list[tuple[str, str]]:
        """``(action, error code)`` of every request answered with an injected error (a fault,
        a throttle, a user not yet visible), in order; ``service`` and ``account`` as for
        :meth:`calls`."""
        return self._middleware.calls.injected(service, account)

    def fail_next(
        self,
        action: str,
        *,
        code: str = "Throttling",
        status: int = 400,
        message: str = "Rate exceeded",
        times: int = 1,
        service: str = "iam",
        where: Mapping[str, str] | None = None,
        lose_reply: bool = False,
        body: str | None = None,
        account: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests for ``action`` with an IAM-style error.

        A faulted request never reaches moto, so it changes nothing, like a throttled call.
        Faults for different actions are independent; faults for the same action queue up.
        ``where`` limits the fault to requests with these parameter values (``{"GroupName":
        "ops"}``). With ``lose_reply`` the request *is* served and its answer replaced by the
        error: the change happened, the client does not know, and its retry meets it.
        ``body`` replaces IAM's XML error with that text as an HTML page (a proxy's 502).
        ``account`` limits the fault to requests acting in that account.
        """
        fault = Fault(
            service=service,
            action=action,
            code=code,
            status=status,
            message=message,
            where=tuple((where or {}).items()),
            lose_reply=lose_reply,
            body=body,
            account=account,
        )
        self._middleware.faults.arm(fault, times)

    def throttle(
        self,
        every: int | None = None,
        *,
        per_second: float | None = None,
        burst: int = 1,
        actions: Iterable[str] | None = None,
        service: str = "iam",
        code: str = "Throttling",
        status: int = 400,
        message: str = "Rate exceeded",
    ) -> None:
        """Throttle as IAM does (``Throttling``, 400, unserved) until :meth:`reset_faults`.

        ``every=k`` refuses each k-th request of ``actions`` (default: all of the service);
        ``per_second=r`` admits ``burst`` requests at once and then ``r`` a second.
        """
        rule = ThrottleRule(
            service=service,
            actions=None if actions is None else frozenset(actions),
            every=every,
            per_second=per_second,
            burst=burst,
            code=code,
            status=status,
            message=message,
        )
        self._middleware.throttler.arm(rule)

    def hide_new_users(
        self, *, seconds: float | None = None, requests: int | None = None, name: str | None = None
    ) -> None:
        """Simulate IAM's eventual consistency until :meth:`reset_faults`: each user created
        from now on (or only ``name``) answers ``NoSuchEntity`` to requests naming it, for
        ``seconds`` after its creation or for its next ``requests`` requests."""
        rule = HidingRule(seconds=seconds, requests=requests, name=name)
        self._middleware.fresh_users.arm(rule)

    # -- Organizations ---------------------------------------------------------------------

    def create_organization(
        self, names: Sequence[str] = ("dev", "staging", "prod")
    ) -> Organization:
        """Make :attr:`account_id` (the account the fake credentials act in) the management
        account of a new organization with one member account per name.

        Each member has the ``OrganizationAccountAccessRole`` AWS makes (trusting the
        management account, ``AdministratorAccess`` attached). Built in-process, as a setup
        done before the story begins: nothing lands in the call log. A second organization
        needs :meth:`reset` first (RuntimeError otherwise).
        """
        with self._middleware.state_lock:
            return organization.create(
                self.account_id,
                names,
                self.region,
                aws_managed_policies=self.load_aws_managed_policies,
            )

    def member_iam_client(
        self,
        account_id: str,
        role_name: str = organization.ROLE_NAME,
        config: Config | None = None,
    ) -> IAMClient:
        """An IAM client acting in ``account_id``: it assumes the account's role through the
        server (one AssumeRole call, refused like any other if the role does not trust the
        management account) and signs with the session's credentials."""
        answer = self.sts_client().assume_role(
            RoleArn=f"arn:aws:iam::{account_id}:role/{role_name}",
            RoleSessionName="embedded-aws-admin",
        )
        credentials = answer["Credentials"]
        with self._session_lock:
            return self._shared_session().client(
                "iam",
                endpoint_url=self.endpoint_url,
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
                config=config,
            )

    def require_external_id(
        self, account_id: str, external_id: str, role_name: str = organization.ROLE_NAME
    ) -> None:
        """Rewrite the role's trust policy so assuming it needs ``ExternalId=external_id``
        (a StringEquals ``sts:ExternalId`` condition), as an administrator would."""
        with self._middleware.state_lock:
            organization.require_external_id(account_id, role_name, external_id)

    def break_role(self, account_id: str, role_name: str = organization.ROLE_NAME) -> None:
        """Delete the role from ``account_id``: assuming it is refused (AccessDenied) from now
        on, as when an administrator removed it."""
        with self._middleware.state_lock:
            organization.delete_role(account_id, role_name)

    def close_account(self, account_id: str) -> None:
        """Close a member account (CloseAccount: ListAccounts shows it ``SUSPENDED``, and
        AssumeRole into it is refused)."""
        with self._middleware.state_lock:
            organization.close_account(self.account_id, account_id)

    # -- Identity Center -------------------------------------------------------------------

    def fail_next_assignment(
        self, reason: str, *, deletion: bool = False, permission_set_arn: str | None = None
    ) -> None:
        """Make the next CreateAccountAssignment (``deletion``: DeleteAccountAssignment),
        of ``permission_set_arn`` when given, end ``FAILED`` with ``reason`` as its
        ``FailureReason``, changing nothing, as AWS reports a provisioning failure."""
        failure = ArmedFailure("deletion" if deletion else "creation", reason, permission_set_arn)
        self._middleware.identity_center.assignments.arm(failure)

    @property
    def assignment_reads_in_progress(self) -> int:
        """How many status reads of an assignment request answer IN_PROGRESS (default 1)."""
        return self._middleware.identity_center.assignments.reads_in_progress

    @assignment_reads_in_progress.setter
    def assignment_reads_in_progress(self, reads: int) -> None:
        self._middleware.identity_center.assignments.reads_in_progress = reads

    def set_identity_center_instances(self, count: int) -> None:
        """Give the account ``count`` Identity Center instances (moto makes one; 0 is an
        account without Identity Center, 2 one with an account instance besides)."""
        with self._middleware.state_lock:
            moto_state.set_identity_center_instances(self.account_id, self.region, count)

    def pending_faults(self) -> int:
        """How many armed ``fail_next`` faults have not been used yet."""
        return self._middleware.faults.pending()

    def reset_faults(self) -> None:
        """Disarm every pending fault and throttle, and make every hidden user visible."""
        self._middleware.faults.clear()
        self._middleware.throttler.clear()
        self._middleware.fresh_users.clear()

    def _require_server(self) -> BaseWSGIServer:
        if self._server is None:
            raise RuntimeError("EmbeddedAWS is not running; call start() first")
        return self._server
