"""Which decisions count (policies/tally.py): the author rule, written once, names whoever
registered and whoever trained a version -- the people who may not review it."""

from __future__ import annotations

from loraledger.policies.release import ApprovalRule
from loraledger.policies.tally import authors_of, roles_for
from loraledger.registry import Role


def test_the_authors_are_the_registrant_and_the_trainer() -> None:
    assert authors_of("eve", "tom") == {"eve": "registered", "tom": "trained"}
    assert authors_of("eve", None) == {"eve": "registered"}  # registered from elsewhere
    assert authors_of("eve", "eve") == {"eve": "trained"}  # one person, both


def test_admins_may_always_review_in_the_rules_role() -> None:
    assert roles_for(ApprovalRule(count=1)) == {Role.REVIEWER, Role.ADMIN}
    assert roles_for(ApprovalRule(count=2, role="admin")) == {Role.ADMIN}
