"""How clients reach the embedded AWS, and only it.

A developer's machine usually has real AWS credentials, profiles or SSO settings. A client
meant for the embedded AWS must not pick any of them up: a test would otherwise depend on
the developer's setup or, worse, act on a real account. Everything here sets the fake
credentials explicitly and switches the developer's configuration off.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import boto3
import botocore.session

#: Credentials moto accepts (it does not check signatures); never valid against real AWS.
FAKE_ACCESS_KEY_ID = "testing"
FAKE_SECRET_ACCESS_KEY = "testing"
REGION = "us-east-1"

#: Variables that could point a client at real AWS or at the user's own profiles; a client
#: environment for the embedded AWS must not carry any of them over.
FOREIGN_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
)


def client_env(endpoint_url: str) -> dict[str, str]:
    """Environment variables that point any AWS SDK at ``endpoint_url`` with fake credentials.

    The config and credentials files are redirected to the null device so that nothing from
    the user's own ``~/.aws`` (profiles, SSO, real keys, another endpoint) leaks in; instance
    metadata lookups are disabled so a missing value never waits on the network.
    """
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def subprocess_env(endpoint_url: str, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` without any variable naming a profile, role or session token, plus
    :func:`client_env`.

    Merging :func:`client_env` alone onto an environment is not enough when it has
    ``AWS_PROFILE`` set: botocore would look that profile up in the (now empty) config file
    and fail.
    """
    env = {name: value for name, value in base.items() if name not in FOREIGN_AWS_VARIABLES}
    env.update(client_env(endpoint_url))
    return env


def isolated_session() -> boto3.session.Session:
    """A boto3 session with the fake credentials and region that ignores the environment.

    Passing keys is not enough on its own: botocore would still honour ``AWS_PROFILE``
    (failing if that profile is not in the config) and read ``~/.aws/config``. Those lookups
    are switched off here. Clients still need the embedded AWS's ``endpoint_url``.
    """
    core = botocore.session.Session(
        session_vars={
            "profile": (None, None, None, None),
            "config_file": (None, None, os.devnull, None),
            "credentials_file": (None, None, os.devnull, None),
        }
    )
    return boto3.session.Session(
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
        region_name=REGION,
        botocore_session=core,
    )
