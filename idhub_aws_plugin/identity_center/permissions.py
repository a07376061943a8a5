"""The policy the Identity Center connector needs, shipped as ``identity-center-policy.json``.

Exactly the identitystore and sso actions the connector sends (and sts:GetCallerIdentity for
its connection check); the test suite fails when it sends one the document lacks, as it does
for ``iam-policy.json``.
"""

from __future__ import annotations

from idhub_aws_plugin.policy_file import PolicyFile

POLICY_FILE = "identity-center-policy.json"
#: The document (``SHIPPED.document``), its actions and ``SHIPPED.allows(action)``.
SHIPPED = PolicyFile(POLICY_FILE)
