from __future__ import annotations

import pytest
from loraledger.registry import IdentityStatus, Registry, Role

from loraledger.errors import (
    Conflict,
    InputError,
    NotFound,
    PermissionDenied,
    SigningKeyError,
    UsageError,
)
from tests.conftest import ADMIN, ENGINEER, REVIEWER
from tests.registry.helpers import refusals, snapshot


def test_bootstrap_admin_acts_as_itself(empty_registry: Registry) -> None:
    identity = empty_registry.identities.create("root", Role.ADMIN, actor=None)
    assert identity.created_by == "root" and identity.status is IdentityStatus.ACTIVE
    event = empty_registry.audit_events()[-1]
    assert (event.actor, event.action, event.subject) == (
        "root",
        "identity.create",
        "identity:root",
    )
    assert event.payload["key_fingerprint"] == identity.key_fingerprint
    empty_registry.verify_audit()


def test_first_identity_must_be_an_admin(empty_registry: Registry) -> None:
    with pytest.raises(InputError, match="first identity of a registry must be an admin"):
        empty_registry.identities.create("eng", Role.ENGINEER, actor=None)
    assert not empty_registry.keys.path_for("eng").exists()
    with pytest.raises(UsageError, match="has no identities yet"):
        empty_registry.identities.create("root", Role.ADMIN, actor="someone")


def test_only_admins_create(registry: Registry) -> None:
    before = snapshot(registry)
    with pytest.raises(PermissionDenied, match="'eve' has role engineer; this needs admin"):
        registry.identities.create("new", Role.ENGINEER, actor=ENGINEER)
    assert snapshot(registry) == before
    assert not registry.keys.path_for("new").exists()
    assert refusals(registry) == [
        (ENGINEER, "identity.create", "identity 'eve' has role engineer; this needs admin")
    ]
    registry.verify_audit()


def test_names_are_unique(registry: Registry) -> None:
    with pytest.raises(Conflict, match="'eve' already exists"):
        registry.identities.create(ENGINEER, Role.ENGINEER, actor=ADMIN)


def test_bad_identity_name(registry: Registry) -> None:
    with pytest.raises(InputError, match="identity name '../x' is invalid"):
        registry.identities.create("../x", Role.ENGINEER, actor=ADMIN)


def test_reuse_key(registry: Registry) -> None:
    registry.keys.create("carol")
    with pytest.raises(SigningKeyError, match="already exists"):
        registry.identities.create("carol", Role.REVIEWER, actor=ADMIN)
    identity = registry.identities.create("carol", Role.REVIEWER, actor=ADMIN, reuse_key=True)
    assert identity.key_fingerprint == registry.keys.load("carol").fingerprint


def test_revoke(registry: Registry) -> None:
    revoked = registry.identities.revoke(REVIEWER, actor=ADMIN, reason="left")
    assert revoked.status is IdentityStatus.REVOKED
    assert (revoked.revoked_by, revoked.revoke_reason) == (ADMIN, "left")
    event = registry.audit_events()[-1]
    assert (event.action, event.subject, event.payload["reason"]) == (
        "identity.revoke",
        "identity:rita",
        "left",
    )
    with pytest.raises(Conflict, match="already revoked"):
        registry.identities.revoke(REVIEWER, actor=ADMIN, reason="again")
    with pytest.raises(PermissionDenied, match="was revoked"):
        registry.act_as(REVIEWER)
    registry.verify_audit()


def test_revoke_needs_admin_and_reason(registry: Registry) -> None:
    with pytest.raises(PermissionDenied, match="this needs admin"):
        registry.identities.revoke(REVIEWER, actor=ENGINEER, reason="x")
    with pytest.raises(InputError, match="needs a reason"):
        registry.identities.revoke(REVIEWER, actor=ADMIN, reason="  ")
    with pytest.raises(NotFound, match="unknown identity 'ghost'"):
        registry.identities.revoke("ghost", actor=ADMIN, reason="x")


def test_last_admin_cannot_be_revoked(registry: Registry) -> None:
    with pytest.raises(PermissionDenied, match="last active admin"):
        registry.identities.revoke(ADMIN, actor=ADMIN, reason="oops")
    registry.identities.create("admin2", Role.ADMIN, actor=ADMIN)
    registry.identities.revoke(ADMIN, actor="admin2", reason="rotated")


def test_list_is_sorted(registry: Registry) -> None:
    assert [i.name for i in registry.identities.list()] == ["alice", "eve", "otto", "rita"]


def test_every_access_refusal_is_audited(registry: Registry) -> None:
    registry.identities.revoke(REVIEWER, actor=ADMIN, reason="left")
    with pytest.raises(PermissionDenied):
        registry.act_as(REVIEWER, {Role.REVIEWER}, action="approve")
    with pytest.raises(NotFound):
        registry.act_as("ghost", action="promote")
    registry.keys.path_for(ENGINEER).unlink()
    with pytest.raises(SigningKeyError):
        registry.act_as(ENGINEER, action="train")
    audited = refusals(registry)
    assert [(actor, action) for actor, action, _ in audited] == [
        (REVIEWER, "approve"),
        ("ghost", "promote"),
        (ENGINEER, "train"),
    ]
    assert "was revoked (left)" in audited[0][2] and "unknown identity" in audited[1][2]
    # The refusals sit in the hash chain like any event; the next checkpoint covers them.
    registry.identities.create("carl", Role.REVIEWER, actor=ADMIN)
    assert registry.verify_audit().head_seq == registry.audit_head()[0]
