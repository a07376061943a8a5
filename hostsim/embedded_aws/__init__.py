"""An in-process AWS for the demo and the tests: moto's server behind an IAM-fidelity layer.

Moto is lenient where IAM is strict (it deletes users that still have keys, accepts
``Alice`` next to ``alice``, loses tags on rename, lacks service-specific credentials). Code
tested only against moto could rely on that leniency and fail against AWS, so the middleware
here adds IAM's rules back, records every call and can inject faults::

    from hostsim.embedded_aws import EmbeddedAWS

    with EmbeddedAWS() as aws:
        iam = aws.session().client("iam", endpoint_url=aws.endpoint_url)
        iam.create_user(UserName="alice")
        assert aws.calls() == ["CreateUser"]

Faults a test can inject (all cleared by ``reset_faults()`` and ``reset()``): ``fail_next``
(an error instead of the next matching call, or after serving it with ``lose_reply``),
``throttle`` (every k-th call or a rate, answered ``Throttling`` as IAM does),
``hide_new_users`` (eventual consistency: a fresh user is ``NoSuchEntity`` for a while) and
``request_delay`` (every request takes that long); ``calls()`` and ``injected()`` tell what
arrived and what was injected, in every account or (``account=``) in one.

It can host an AWS organization (``create_organization``): the fake credentials' account
manages it, each member account has the ``OrganizationAccountAccessRole`` that
``member_iam_client`` assumes, and AssumeRole is refused as AWS refuses it (a missing role, a
trust not naming the caller, a wrong external id), which moto alone does not do.

Modules: ``server`` (lifecycle and test controls), ``clients`` (reaching it, and only it,
from boto3 or a subprocess), ``middleware`` (the WSGI layer), ``fidelity`` (which rule
applies to which IAM operation), the rules themselves (``iam_rules``, ``validation``,
``user_tags``, ``rename``, ``service_credentials``, ``pagination``, ``aws_policies``,
``role_trust``), ``organization`` (the organization and its member accounts),
``faults`` (injection and the call log), ``throttling`` and ``consistency`` (throttles and
users not yet visible), ``query`` and ``responses`` (the wire format) and
``moto_state`` (finding, resetting and repairing moto's in-process backends).
"""

from hostsim.embedded_aws.clients import (
    FAKE_ACCESS_KEY_ID,
    FAKE_SECRET_ACCESS_KEY,
    FOREIGN_AWS_VARIABLES,
    REGION,
)
from hostsim.embedded_aws.faults import Call, Fault
from hostsim.embedded_aws.organization import Organization, OrganizationAccount
from hostsim.embedded_aws.server import EmbeddedAWS

__all__ = [
    "FAKE_ACCESS_KEY_ID",
    "FAKE_SECRET_ACCESS_KEY",
    "FOREIGN_AWS_VARIABLES",
    "REGION",
    "Call",
    "EmbeddedAWS",
    "Fault",
    "Organization",
    "OrganizationAccount",
]
