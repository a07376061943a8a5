"""An AWS organization in the embedded AWS, for the tests: a management account (the one the
fake credentials act in, 123456789012) and member accounts, each with the
``OrganizationAccountAccessRole`` a connector assumes.

Seeding is done in-process and leaves the call log empty; seeding users in a member account
through :meth:`EmbeddedAWS.member_iam_client` does go through the server (AssumeRole, then IAM
calls in that account), so call ``aws.clear_calls()`` before asserting on what a run sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hostsim.embedded_aws import EmbeddedAWS

DEFAULT_NAMES = ("dev", "staging", "prod")


@dataclass(frozen=True)
class Member:
    """One member account."""

    id: str
    name: str
    email: str


@dataclass(frozen=True)
class SeededOrganization:
    """The organization a test works with; ``members`` in the order their names were given
    (the management account is not among them)."""

    management_id: str
    members: tuple[Member, ...]
    organization_id: str = ""

    def member(self, name: str) -> Member:
        """The member account called ``name`` (KeyError if there is none)."""
        for account in self.members:
            if account.name == name:
                return account
        raise KeyError(f"no member account called {name!r}")

    @property
    def ids(self) -> tuple[str, ...]:
        """The member accounts' ids, in order (not the management account's)."""
        return tuple(account.id for account in self.members)

    @property
    def all_ids(self) -> tuple[str, ...]:
        """The management account's id, then the members'."""
        return (self.management_id, *self.ids)


def seed_organization(aws: EmbeddedAWS, names: Sequence[str] = DEFAULT_NAMES) -> SeededOrganization:
    """Create the organization with one member account per name (the embedded AWS must be
    empty of organizations: the ``aws`` fixture resets it)."""
    made = aws.create_organization(names)
    return SeededOrganization(
        management_id=made.management_id,
        members=tuple(Member(m.id, m.name, m.email) for m in made.members),
        organization_id=made.id,
    )
