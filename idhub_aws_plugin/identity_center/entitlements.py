"""The entitlement ids of Identity Center: ``group:NAME`` (a membership of an identity-store
group) and ``assignment:PERMISSIONSET@ACCOUNT`` (the permission set, by name, assigned to the
user in that AWS account)."""

from __future__ import annotations

import re

from attrs import frozen

from hostsim.contract import InvalidInput

#: Identity Center's permission-set names (1-32 of ``[\w+=,.@-]``) and AWS account ids.
PERMISSION_SET_NAME = re.compile(r"^[\w+=,.@-]{1,32}$", re.ASCII)
ACCOUNT_ID = re.compile(r"^\d{12}$")
GROUP_NAME_MAX = 1024


@frozen
class GroupEntitlement:
    name: str

    def __str__(self) -> str:
        return f"group:{self.name}"


@frozen
class AssignmentEntitlement:
    permission_set: str
    account_id: str

    def __str__(self) -> str:
        return f"assignment:{self.permission_set}@{self.account_id}"


Entitlement = GroupEntitlement | AssignmentEntitlement


def parse_entitlement(text: str) -> Entitlement:
    """The entitlement an id names; InvalidInput (nothing changed) for any other shape."""
    kind, _, rest = text.partition(":")
    if kind == "group" and rest.strip() and len(rest) <= GROUP_NAME_MAX:
        return GroupEntitlement(rest)
    if kind == "assignment":
        name, at, account = rest.rpartition("@")
        if at and PERMISSION_SET_NAME.match(name) and ACCOUNT_ID.match(account):
            return AssignmentEntitlement(name, account)
        raise InvalidInput(
            f"{text!r}: expected assignment:PERMISSIONSET@ACCOUNT (a permission-set name of "
            "1-32 letters, digits and _+=,.@-, and a 12-digit account id)"
        )
    raise InvalidInput(f"{text!r}: expected group:NAME or assignment:PERMISSIONSET@ACCOUNT")
