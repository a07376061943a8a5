"""The row types of the fetch kinds Identity Center adds to the contract's: permission sets
and account assignments have no IAM counterpart, so they are declared by this connector
(``ConnectorType.fetch_kinds``). Users, groups and group access reuse the contract's
``Account``, ``Group`` and ``GroupAccess``, which IDHub's side already reads."""

from __future__ import annotations

from attrs import frozen


@frozen
class PermissionSet:
    """A permission set of the instance: what an ``assignment:NAME@ACCOUNT`` grants."""

    name: str
    arn: str
    description: str = ""
    session_duration: str = ""


@frozen
class AccountAssignment:
    """One way a user holds a permission set in an account, with its provenance.

    ``via`` is ``direct`` for an assignment to the user, ``group:NAME`` for one the user holds
    as a member of a group assigned it. Held both ways, it yields a row each: revoking the
    group leaves the direct one, which is still listed.
    """

    email: str | None
    user_name: str
    user_id: str
    permission_set: str
    permission_set_arn: str
    account_id: str
    via: str
