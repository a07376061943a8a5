"""Which Identity Center instance, and which identity store, the connector works on.

Configured (``instance_arn``, ``identity_store_id``) or discovered with sso-admin
ListInstances. An account has at most one organization instance but may have account
instances besides: with more than one the connector refuses to guess, naming them.
"""

from __future__ import annotations

from typing import Any

from attrs import frozen

from hostsim.contract import ConfigurationError
from idhub_aws_plugin.identity_center.settings import IdentityCenterSettings


@frozen
class Instance:
    """An Identity Center instance and the identity store its users and groups live in."""

    arn: str
    identity_store_id: str


def discover(sso_admin: Any, settings: IdentityCenterSettings) -> Instance:
    """The configured instance, or the account's only one (one ListInstances page or more)."""
    if settings.instance_arn and settings.identity_store_id:
        return Instance(settings.instance_arn, settings.identity_store_id)
    found = [
        Instance(item["InstanceArn"], item["IdentityStoreId"])
        for page in sso_admin.get_paginator("list_instances").paginate()
        for item in page.get("Instances", [])
    ]
    wanted = [
        instance
        for instance in found
        if settings.instance_arn in (None, instance.arn)
        and settings.identity_store_id in (None, instance.identity_store_id)
    ]
    if len(wanted) == 1:
        return wanted[0]
    if not found:
        raise ConfigurationError(
            "no IAM Identity Center instance in this account and region (sso-admin "
            "ListInstances found none): enable Identity Center, or set region, instance_arn "
            "and identity_store_id in [aws-identity-center]"
        )
    if not wanted:
        raise ConfigurationError(
            "the configured instance_arn/identity_store_id is not among this account's "
            f"Identity Center instances ({', '.join(i.arn for i in found)}) @ $.instance_arn"
        )
    raise ConfigurationError(
        f"{len(wanted)} IAM Identity Center instances in this account "
        f"({', '.join(i.arn for i in wanted)}): set instance_arn in [aws-identity-center] "
        "@ $.instance_arn"
    )
