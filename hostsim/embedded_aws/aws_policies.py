"""AWS-managed policies (``arn:aws:iam::aws:policy/...``), created when first needed.

Real accounts contain ~1,500 AWS-managed policies, and a connector attaches and lists them,
so the embedded AWS must have them. Moto can build them all whenever it creates an IAM
backend, but that costs 50-90 ms, and the test suite resets (and so rebuilds) before every
test. Instead, moto starts without them and this module adds a policy to moto's backend the
moment a request names its ARN, and all of them when a request lists policies. To a client
the account looks the same as one where all were loaded up front.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from typing import Any

from hostsim.embedded_aws.moto_state import IAMBackend

AWS_POLICY_ARN_PREFIX = "arn:aws:iam::aws:policy/"

#: Operations whose answer includes AWS-managed policies nobody named.
_LISTING_ACTIONS = frozenset({"ListPolicies", "GetAccountAuthorizationDetails"})


def available() -> bool:
    """Whether this moto ships the policy data this module builds from."""
    try:
        _documents()
    except (ImportError, ValueError):
        return False
    return True


def materialize_for(backend: IAMBackend, action: str, params: Mapping[str, str]) -> None:
    """Make sure every AWS-managed policy the request can see exists in moto's backend."""
    if action in _LISTING_ACTIONS and params.get("Scope") != "Local":
        _materialize_all(backend)
        return
    arns = [value for value in params.values() if value.startswith(AWS_POLICY_ARN_PREFIX)]
    _materialize(backend, arns)


def _materialize(backend: IAMBackend, arns: Iterable[str]) -> None:
    documents = _documents()
    for arn in arns:
        if arn in backend.managed_policies:
            continue
        name = arn.rsplit("/", 1)[-1]
        if name not in documents:
            continue  # moto will answer NoSuchEntity, as IAM does
        policy = _build(backend, name, documents[name])
        if policy.arn == arn:
            backend.aws_managed_policies.append(policy)
            backend.managed_policies[arn] = policy


def _materialize_all(backend: IAMBackend) -> None:
    """Add every missing policy, keeping moto's order (AWS-managed first)."""
    documents = _documents()
    if len(backend.aws_managed_policies) == len(documents):
        return
    existing = {policy.name for policy in backend.aws_managed_policies}
    backend.aws_managed_policies.extend(
        _build(backend, name, data) for name, data in documents.items() if name not in existing
    )
    customer = {
        arn: policy
        for arn, policy in backend.managed_policies.items()
        if not arn.startswith(AWS_POLICY_ARN_PREFIX)
    }
    backend.managed_policies.clear()
    backend.managed_policies.update({p.arn: p for p in backend.aws_managed_policies})
    backend.managed_policies.update(customer)


def _build(backend: IAMBackend, name: str, data: dict[str, Any]) -> Any:
    from moto.iam.models import AWSManagedPolicy

    return AWSManagedPolicy.from_data(name, backend.account_id, backend.region_name, data)


@functools.cache
def _documents() -> dict[str, dict[str, Any]]:
    """Moto's snapshot of the AWS-managed policies, parsed once per process (~20 ms)."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    documents: dict[str, dict[str, Any]] = json.loads(aws_managed_policies_data)
    return documents
