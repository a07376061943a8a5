"""The ``aws-identity-center`` connector: IAM Identity Center users, groups and account
assignments, beside ``aws-iam`` in the same plugin.

One concern per module: ``settings`` (the ``[aws-identity-center]`` table), ``instance`` (the
instance and identity store, discovered with ListInstances unless configured), ``entitlements``
(``group:NAME`` and ``assignment:PERMISSIONSET@ACCOUNT``), ``directory`` (identity-store users,
groups and memberships), ``assignments`` (permission sets and the asynchronous account
assignments, polled with bounded patience), ``accounts`` (create, modify, delete),
``reconcile`` (the fetch kinds), ``rows`` (their row types), ``permissions`` (the shipped
``identity-center-policy.json``) and ``connector`` (the edge the host calls). Clients, retries
and the translation of AWS errors are the IAM connector's (``client``, ``errors``).
"""
