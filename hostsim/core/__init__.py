"""The IDHub side, simulated: what IDHub does with a connector, kept in a SQLite state file.

IDHub knows people (identities), the accounts they hold in each application, a catalog of the
entitlements people can request, the requests and their approvals, the access it granted and
why, the reconciliation runs that compare its records with the application, and an append-only
audit log. One concern per module:

- :mod:`.store`: the SQLite file and its versioned schema migrations.
- :mod:`.state`: one open state (database, clock, acting person, audit writer) for a command.
- :mod:`.audit`: the append-only log of every change, secrets masked.
- :mod:`.identities`: people, their attributes and managers.
- :mod:`.accounts`: IDHub's record of the account each identity holds in the application.
- :mod:`.catalog`: the requestable entitlements, synced from the connector, with their owners
  and approval chains.
- :mod:`.requests`: submit, approve, reject, withdraw; the approval chain of each request.
- :mod:`.fulfilment`: an approved request carried out through the connector, retried and
  resumed after a crash without doing anything twice.
- :mod:`.grants`: the access IDHub granted, with its provenance, and the "why" report.
- :mod:`.reconciliation`: IDHub's records against what the connector fetches: drift found,
  reported, remediated, with a stale check and a deletion threshold.
- :mod:`.settings`: the ``[idhub]`` table of the config file.
- :mod:`.applications`: which applications a command acts on: the connector's one, or, with
  settings spanning an organization, one per in-scope AWS account (``aws-iam@ACCOUNT``, its
  entitlement ids qualified ``@ACCOUNT``), each reached through the runtime bound to it.

The core reaches the application only through :class:`~hostsim.runtime.Runtime`, as the CLI
and the SCIM API do.
"""
