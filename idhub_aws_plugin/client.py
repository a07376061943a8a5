"""The boto3 session and clients the connector talks to AWS through.

Credentials come from the standard AWS chain (or a named profile), optionally exchanged for a
role in the target account (assume-role, with an external id, refreshed automatically before
they expire so a long reconciliation never fails on expiry). The endpoint comes from the settings
or, as boto3 does it, from ``AWS_ENDPOINT_URL``. Throttling and transient errors are retried by
botocore's own retry handler (mode and attempts from the settings), never by sleeps of our own.
"""

from __future__ import annotations

import copy
import logging
import threading
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Literal, Protocol

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials
from botocore.utils import parse_timestamp as botocore_timestamp

from idhub_aws_plugin.settings import AssumeRole

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_iam.type_defs import PaginatorConfigTypeDef
    from mypy_boto3_sts import STSClient

log = logging.getLogger(__name__)

USER_AGENT = "idhub-aws-iam"
DEFAULT_REGION = "us-east-1"
#: IAM's largest page: the number of calls of a listing grows with pages, not items.
PAGE: PaginatorConfigTypeDef = {"PageSize": 1000}
#: Held while a client is made from a session: boto3 sessions are not thread-safe, and the
#: sessions of an organization's accounts make their STS clients from one base session, in
#: whichever thread first needs an account's credentials.
SESSION_LOCK = threading.RLock()


class ClientSettings(Protocol):
    """What the clients read of a connector's settings: both connector types (IAM's
    :class:`Settings`, Identity Center's) carry these, so they share one session, retry and
    assume-role code."""

    @property
    def region(self) -> str | None: ...
    @property
    def profile(self) -> str | None: ...
    @property
    def endpoint_url(self) -> str | None: ...
    @property
    def retry_mode(self) -> Literal["standard", "adaptive", "legacy"]: ...
    @property
    def max_attempts(self) -> int: ...
    @property
    def assume_role(self) -> AssumeRole | None: ...


def client_config(settings: ClientSettings, user_agent: str = USER_AGENT) -> Config:
    """``user_agent`` names the connector type in every request, so a call is told apart
    from anyone else's (and the policy audit of the tests knows whose policy must allow it)."""
    return Config(
        retries={"mode": settings.retry_mode, "total_max_attempts": settings.max_attempts},
        user_agent_extra=user_agent,
        # bulk import runs up to 32 workers on one client; each needs its own connection
        max_pool_connections=32,
        connect_timeout=10,
        read_timeout=60,
    )


class AwsClients:
    """Lazily built IAM and STS clients sharing one session, so that listing or validating
    needs no credentials and no network. Safe to share between threads: boto3 clients are
    thread-safe once built, and building them is serialised (sessions are not thread-safe)."""

    def __init__(
        self,
        settings: ClientSettings,
        session: boto3.Session | None = None,
        user_agent: str = USER_AGENT,
        source: AwsClients | None = None,
    ) -> None:
        """``session`` replaces the credential chain (an embedder that holds credentials of
        its own); without it the settings' profile, or the standard chain, is used.
        ``source``: the clients whose credentials assume this one's role (an organization's
        base clients, for one account's): their session is this one's base, and their STS
        client sends every AssumeRole (one client for all the accounts, not one each)."""
        self._settings = settings
        self._user_agent = user_agent
        self._lock = threading.Lock()
        self._given_session = session
        self._source = source
        self._session: boto3.Session | None = None
        self._clients: dict[str, Any] = {}

    def _base_session(self) -> boto3.Session:
        if self._source is not None:
            return self._source.session()
        if self._given_session is not None:
            return self._given_session
        return boto3.Session(profile_name=self._settings.profile)

    def _client_options(self) -> dict[str, Any]:
        return {
            "region_name": self._settings.region or None,
            "endpoint_url": self._settings.endpoint_url,
            "config": client_config(self._settings, self._user_agent),
        }

    def _build_session(self) -> boto3.Session:
        base = self._base_session()
        if self._settings.assume_role is None:
            return base
        sts = self._source.sts if self._source is not None else None
        return _assumed_role_session(base, self._settings.assume_role, self._client_options(), sts)

    def session(self) -> boto3.Session:
        """The session the clients are made from (the assumed role's when ``assume_role`` is
        set), built on first use: an organization's per-account sessions assume their roles
        with its credentials, so a base ``assume_role`` chains."""
        with self._lock:
            return self._built_session()

    def _built_session(self) -> boto3.Session:
        if self._session is None:
            self._session = self._build_session()
        return self._session

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                session = self._built_session()
                options = self._client_options()
                options["region_name"] = options["region_name"] or (
                    session.region_name or DEFAULT_REGION
                )
                with SESSION_LOCK:
                    quick_timestamps(session)
                    made = session.client(service, **options)  # type: ignore[call-overload]
                made.meta.events.register(f"before-parse.{service}", drop_foreign_error_page)
                self._clients[service] = made
            return self._clients[service]

    @property
    def iam(self) -> IAMClient:
        client: IAMClient = self.client("iam")
        return client

    @property
    def sts(self) -> STSClient:
        client: STSClient = self.client("sts")
        return client


def _assumed_role_session(
    base: boto3.Session, role: AssumeRole, options: dict[str, Any], sts: Any | None = None
) -> boto3.Session:
    """A session whose credentials come from sts:AssumeRole with the base session's, fetched on
    first use and refreshed by botocore before they expire. ``sts``: a client of the base
    session to send AssumeRole with (its credentials are the base session's, refreshed as
    they are); without it one is made for each fetch, as botocore does."""
    extra: dict[str, Any] = {
        "RoleSessionName": role.session_name,
        "DurationSeconds": role.duration_seconds,
    }
    if role.external_id is not None:
        extra["ExternalId"] = role.external_id
    region = options["region_name"] or base.region_name or DEFAULT_REGION

    def sts_client(service: str, **kwargs: Any) -> Any:
        if sts is not None:
            return sts
        # the connector's retries and user agent for AssumeRole too (the policy audit of the
        # tests sees it as the connector's call)
        kwargs.update(
            region_name=region, endpoint_url=options["endpoint_url"], config=options["config"]
        )
        with SESSION_LOCK:
            return base.client(service, **kwargs)  # type: ignore[call-overload]

    fetcher = AssumeRoleCredentialFetcher(
        client_creator=sts_client,
        source_credentials=base.get_credentials(),
        role_arn=role.role_arn,
        extra_args=extra,
    )
    # an organization has one such session an account: each starts from a copy of one
    # session's built-in event handlers (registering them anew costs ~8 ms of CPU a session)
    # and shares one loader (its own would read the service models from disk again, ~40 ms)
    core = botocore.session.Session(
        event_hooks=copy.copy(_template_session().get_component("event_emitter")),
        include_builtin_handlers=False,
    )
    core.register_component("data_loader", _shared_loader())
    # botocore has no public setter for refreshable credentials; this is the pattern its own
    # assume-role provider and the AWS CLI rely on.
    core._credentials = DeferredRefreshableCredentials(  # type: ignore[attr-defined]
        refresh_using=fetcher.fetch_credentials, method="assume-role"
    )
    return boto3.Session(botocore_session=core, region_name=region)


@cache
def _template_session() -> botocore.session.Session:
    """A botocore session with its built-in handlers, never used for a call: the events of
    every assumed-role session are copied from it."""
    return botocore.session.Session()


@cache
def _shared_loader() -> botocore.loaders.Loader:
    """botocore's data loader (service models, endpoints), made once and kept; its caches are
    filled under :data:`SESSION_LOCK`, where clients are made."""
    return botocore.loaders.create_loader()


def quick_timestamps(session: boto3.Session) -> None:
    """Clients of ``session`` parse AWS's timestamps with :func:`parse_timestamp`.

    botocore's default runs dateutil's general parser on each: with four timestamps a user
    (created, password last used, ...), that is a third of the time a bulk read of IAM's
    users spends parsing its pages. ``set_parser_defaults`` is botocore's own hook for it.
    """
    factory = session._session.get_component("response_parser_factory")
    factory.set_parser_defaults(timestamp_parser=parse_timestamp)


def parse_timestamp(value: str) -> datetime:
    """AWS's ISO 8601 timestamps (``2026-12-01T14:21:41Z``, with or without fractions) by
    the standard library, into the same aware UTC datetime botocore's parser gives; anything
    else (an epoch number, another form) by botocore's own parser."""
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return botocore_timestamp(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def drop_foreign_error_page(response_dict: dict[str, Any], **_: Any) -> None:
    """A 5xx whose body is not an AWS error document (a proxy's or load balancer's HTML page)
    reaches botocore's parser with its body emptied.

    botocore recognises such a page only when it starts with ``<html>``; any other (``<!DOCTYPE
    html>``, plain text) fails XML parsing with a ``ResponseParserError`` that is raised past its
    retry handler: no retry, and not even a botocore error class. An empty 5xx body is what
    botocore does know as a generic server error (``Error.Code`` is the status), which its retry
    handler retries like any 502 or 503, and :func:`idhub_aws_plugin.errors.translate` reports
    as transient once the retries are spent.
    """
    status = int(response_dict.get("status_code") or 0)
    body = response_dict.get("body") or b""
    if status < 500 or not isinstance(body, bytes) or _is_aws_error(body):
        return
    log.debug("HTTP %s with a body that is not an AWS error; treated as a bare %s", status, status)
    response_dict["body"] = b""


def _is_aws_error(body: bytes) -> bool:
    """An AWS query-protocol error (``<ErrorResponse><Error><Code>``), as IAM and STS send,
    or a JSON-protocol one (``{"__type": ...}``), as Identity Center's services send."""
    start = body.lstrip()[:256]
    if start.startswith(b"{"):
        return b"__type" in body
    return start.startswith((b"<?xml", b"<ErrorResponse")) and b"<Code>" in body
