"""An AWS organization inside the embedded AWS: a management account and member accounts.

Moto implements Organizations (CreateOrganization, CreateAccount, ListAccounts, CloseAccount)
and keeps a separate IAM backend per account, so an organization connector can be exercised
for real: list the accounts, assume each member's role, act in its IAM. What moto lacks is
what makes such a connector fail in the field (a role that is gone, a trust that names someone
else, an external id); those rules live in :mod:`role_trust`. This module builds the
organization the way an administrator's setup would leave it, in-process, so that setting the
scene adds nothing to the call log a test later asserts on.

A member account made by CreateAccount has an ``OrganizationAccountAccessRole`` trusting the
management account (moto makes it so, as AWS does); AWS also attaches ``AdministratorAccess``
to it, which moto does not, so it is attached here: a connector that simulates its own
permissions in a member account then finds them, as it would in AWS.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from hostsim.embedded_aws import aws_policies, moto_state

#: The role CreateAccount makes in every new member account.
ROLE_NAME = "OrganizationAccountAccessRole"
#: What AWS attaches to that role.
ADMINISTRATOR_ACCESS = "arn:aws:iam::aws:policy/AdministratorAccess"
#: Account states in which AWS no longer lets anyone in.
CLOSED_STATES = frozenset({"SUSPENDED", "PENDING_CLOSURE", "CLOSED"})


@dataclass(frozen=True)
class OrganizationAccount:
    """One member account as Organizations lists it."""

    id: str
    name: str
    email: str


@dataclass(frozen=True)
class Organization:
    """What :func:`create` made: the organization, its management account and its members
    (in the order their names were given; the management account is not among them)."""

    id: str
    management_id: str
    members: tuple[OrganizationAccount, ...]

    def member(self, name: str) -> OrganizationAccount:
        """The member account called ``name`` (KeyError if there is none)."""
        for account in self.members:
            if account.name == name:
                return account
        raise KeyError(f"no member account called {name!r}; have {[a.name for a in self.members]}")

    @property
    def ids(self) -> tuple[str, ...]:
        """The member accounts' ids, in order."""
        return tuple(account.id for account in self.members)


def create(
    management_id: str, names: Sequence[str], region: str, *, aws_managed_policies: bool
) -> Organization:
    """Create an organization whose management account is ``management_id`` and one member
    account per name; must be called with moto's state locked.

    ``aws_managed_policies`` says whether AWS-managed policies are added on demand (see
    :mod:`aws_policies`); when they are off altogether, roles get none.
    """
    _check_names(names)
    backend = moto_state.organizations_backend(management_id)
    if backend.org is not None:
        raise RuntimeError(
            f"account {management_id} already manages an organization; reset() the embedded "
            "AWS first"
        )
    described = backend.create_organization(region=region, FeatureSet="ALL")["Organization"]
    members = tuple(_create_member(backend, name, aws_managed_policies) for name in names)
    return Organization(id=str(described["Id"]), management_id=str(management_id), members=members)


def account_state(account_id: str) -> str | None:
    """The account's status as its organization lists it (``ACTIVE``, ``SUSPENDED``); None
    for an account in no organization."""
    management = moto_state.management_account_of(account_id)
    if management is None:
        return None
    for account in moto_state.organizations_backend(management).accounts:
        if account.id == account_id:
            return str(account.status)
    return None


def close_account(management_id: str, account_id: str) -> None:
    """Close a member account as CloseAccount does (moto: straight to ``SUSPENDED``)."""
    backend = moto_state.organizations_backend(management_id)
    if backend.org is None:
        raise RuntimeError(f"account {management_id} manages no organization")
    backend.close_account(AccountId=account_id)


def require_external_id(account_id: str, role_name: str, external_id: str) -> None:
    """Rewrite the role's trust policy so every Allow also requires ``sts:ExternalId`` to equal
    ``external_id``, as an administrator guarding a third party's access would."""
    role = _role(account_id, role_name)
    document = trust_document(role)
    for statement in _statements(document):
        if statement.get("Effect") == "Allow":
            condition = statement.setdefault("Condition", {})
            condition.setdefault("StringEquals", {})["sts:ExternalId"] = external_id
    role.assume_role_policy_document = json.dumps(document)


def delete_role(account_id: str, role_name: str) -> None:
    """Delete the role as an administrator would (policies detached, inline ones deleted
    first, as IAM insists), so AssumeRole into that account fails from now on."""
    backend = moto_state.iam_backend(account_id)
    role = _role(account_id, role_name)
    for arn in list(role.managed_policies):
        backend.detach_role_policy(arn, role.name)
    for name in list(role.policies):
        backend.delete_role_policy(role.name, name)
    backend.delete_role(role.name)


def trust_document(role: Any) -> dict[str, Any]:
    """A role's trust policy as a dict (moto stores what CreateRole was given, possibly
    URL-encoded)."""
    raw = role.assume_role_policy_document
    document = json.loads(unquote(raw)) if isinstance(raw, str) else raw
    return document if isinstance(document, dict) else {}


def _statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        document["Statement"] = statements = [statements]
    return [s for s in statements if isinstance(s, dict)]


def _role(account_id: str, role_name: str) -> Any:
    role = moto_state.find_role(moto_state.iam_backend(account_id), role_name)
    if role is None:
        raise KeyError(f"account {account_id} has no role called {role_name!r}")
    return role


def _create_member(backend: Any, name: str, aws_managed_policies: bool) -> OrganizationAccount:
    email = f"{_slug(name)}@example.com"
    status = backend.create_account(AccountName=name, Email=email)["CreateAccountStatus"]
    account = OrganizationAccount(id=str(status["AccountId"]), name=name, email=email)
    if aws_managed_policies:
        _attach_administrator_access(account.id)
    return account


def _attach_administrator_access(account_id: str) -> None:
    iam = moto_state.iam_backend(account_id)
    aws_policies.materialize_for(iam, "AttachRolePolicy", {"PolicyArn": ADMINISTRATOR_ACCESS})
    if ADMINISTRATOR_ACCESS in iam.managed_policies:
        iam.attach_role_policy(ADMINISTRATOR_ACCESS, ROLE_NAME)


def _check_names(names: Iterable[str]) -> None:
    """Names must be non-empty and distinct, and so must the emails made from them (AWS
    refuses a second account with the same email)."""
    seen: set[str] = set()
    for name in names:
        if not name.strip():
            raise ValueError("an account name must not be empty")
        if _slug(name) in seen:
            raise ValueError(f"account name {name!r} given twice (or differs only in case)")
        seen.add(_slug(name))


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "account"
