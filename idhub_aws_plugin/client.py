"""The boto3 session and clients the connector talks to AWS through.

Credentials come from the standard AWS chain (or a named profile); the endpoint from the
settings or, as boto3 does it, from ``AWS_ENDPOINT_URL``. Throttling and transient errors are
retried by botocore's own retry handler (mode and attempts from the settings), never by sleeps of
our own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from idhub_aws_plugin.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_iam.type_defs import PaginatorConfigTypeDef
    from mypy_boto3_sts import STSClient

USER_AGENT = "idhub-aws-iam"
#: IAM's largest page: the number of calls of a listing grows with pages, not items.
PAGE: PaginatorConfigTypeDef = {"PageSize": 1000}
DEFAULT_REGION = "us-east-1"


def client_config(settings: Settings) -> Config:
    return Config(
        retries={"mode": settings.retry_mode, "total_max_attempts": settings.max_attempts},
        user_agent_extra=USER_AGENT,
        connect_timeout=10,
        read_timeout=60,
    )


class AwsClients:
    """Lazily built IAM and STS clients sharing one session, so that listing or validating
    needs no credentials and no network."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._iam: IAMClient | None = None
        self._sts: STSClient | None = None

    def _session(self) -> boto3.Session:
        return boto3.Session(profile_name=self._settings.profile)

    def _region(self, session: boto3.Session) -> str:
        return self._settings.region or session.region_name or DEFAULT_REGION

    @property
    def iam(self) -> IAMClient:
        if self._iam is None:
            session = self._session()
            self._iam = session.client(
                "iam",
                region_name=self._region(session),
                endpoint_url=self._settings.endpoint_url,
                config=client_config(self._settings),
            )
        return self._iam

    @property
    def sts(self) -> STSClient:
        if self._sts is None:
            session = self._session()
            self._sts = session.client(
                "sts",
                region_name=self._region(session),
                endpoint_url=self._settings.endpoint_url,
                config=client_config(self._settings),
            )
        return self._sts
