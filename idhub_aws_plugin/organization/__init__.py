"""The aws-iam connector over the accounts of an AWS organization (``[aws-iam.organization]``).

One concern a module: ``scope`` (which accounts, and why any other is out of scope),
``credentials`` (each account's clients: its role assumed with the base credentials, or the
base clients for the management account), ``fanout`` (bounded concurrent work over the
accounts, outcomes in order) and ``connector`` (``OrganizationConnector``, which reads every
account and hands out the plain connector of one for anything else). Nothing here imports the
plain connector: it is handed in (``idhub_aws_plugin.plugin.open_aws_iam``), so the two do
not import each other.
"""
