from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from loraledger.registry import IdentityStatus, Registry, Role
from loraledger.registry.keys import KeyStore, public_pem

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


# --- keys belong to their owners ------------------------------------------------------


def test_a_public_key_made_in_another_key_directory_is_enrolled(
    registry: Registry, tmp_path: Path, adapter_dir: Path
) -> None:
    # bob makes his key pair on his own machine; the admin enrols only the public key
    bobs = KeyStore(tmp_path / "bobs-machine")
    key = bobs.create("bob")
    identity = registry.identities.create(
        "bob", Role.ENGINEER, actor=ADMIN, public_key_pem=key.public_key_pem
    )
    assert identity.key_fingerprint == key.fingerprint
    assert not registry.keys.path_for("bob").exists()  # the admin never held it
    (event,) = registry.audit_events(action="identity.create", subject="identity:bob")
    assert event.actor == ADMIN and event.payload["enrolled"] == "public key"
    # the admin's machine cannot act as bob; bob's own machine can
    with pytest.raises(SigningKeyError):
        registry.adapters.register(adapter_dir, "bobs", actor="bob")
    on_bobs = Registry.open(registry.address, keys=bobs)
    version = on_bobs.adapters.register(adapter_dir, "bobs", actor="bob")
    assert version.signer == "bob" and registry.adapters.verify(version.ref).signer == "bob"
    registry.verify_audit()
    assert registry.verify_records()["adapter_versions"] == 1


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        ("private", "is a private key; bob keeps it"),
        ("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n", "not the PEM public"),
        ("p384", "is a key on secp384r1; enrol a P-256 key"),
    ],
)
def test_enrolment_takes_only_a_p256_public_key(
    registry: Registry, tmp_path: Path, pem: str, message: str
) -> None:
    if pem == "private":
        pem = KeyStore(tmp_path / "keys-of-bob").create("bob").path.read_text()
    elif pem == "p384":
        pem = public_pem(ec.generate_private_key(ec.SECP384R1()).public_key())
    before = snapshot(registry)
    with pytest.raises(InputError, match=message):
        registry.identities.create(
            "bob", Role.ENGINEER, actor=ADMIN, public_key_pem=pem, public_key_file=tmp_path / "b"
        )
    assert snapshot(registry) == before


def test_the_first_admin_needs_its_own_private_key(
    empty_registry: Registry, tmp_path: Path
) -> None:
    key = KeyStore(tmp_path / "elsewhere").create("root")
    with pytest.raises(UsageError, match="keys generate root.*--reuse-key"):
        empty_registry.identities.create(
            "root", Role.ADMIN, actor=None, public_key_pem=key.public_key_pem
        )


def test_one_key_is_one_identity(registry: Registry, tmp_path: Path) -> None:
    """An admin enrolling a reviewer's public key again under another name made one person
    two reviewers ("2 of 2 valid approvals (rita, rita2)"), and an engineer's key enrolled
    as a reviewer let her approve her own version (issue #35): refused, naming the holder,
    nothing written; a revoked key does not come back under another name either."""
    before = snapshot(registry)
    for name, holder in ((REVIEWER, "reviewer2"), (ENGINEER, "eve-reviews")):
        pem = registry.identities.get(name).public_key_pem
        with pytest.raises(Conflict, match=f"already enrolled as '{name}' \\(active\\): one key"):
            registry.identities.create(holder, Role.REVIEWER, actor=ADMIN, public_key_pem=pem)
    assert snapshot(registry) == before
    registry.identities.revoke(ENGINEER, actor=ADMIN, reason="left")
    pem = registry.identities.get(ENGINEER).public_key_pem
    with pytest.raises(Conflict, match=f"already enrolled as '{ENGINEER}' \\(revoked\\)"):
        registry.identities.create("back-again", Role.ENGINEER, actor=ADMIN, public_key_pem=pem)
