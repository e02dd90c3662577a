"""People and keys over time: a person holds several keys; a signature is judged by its
place in the audit chain (docs/threat-model.md, "Keys over time").

Each person's keys live in their own key directory, as on their own machine."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from loraledger.registry import Registry, Role
from loraledger.registry.keys import KeyStore
from loraledger.registry.models import AdapterVersion, Deployment, KeyStatus

from loraledger.errors import (
    AlreadyExists,
    Conflict,
    InputError,
    PermissionDenied,
    SigningKeyError,
    VerificationError,
)
from tests.conftest import ADMIN, ENGINEER, REVIEWER, small_adapter
from tests.registry.test_evaluations import subject  # noqa: F401  (fixture)


def machine(registry: Registry, directory: Path) -> Registry:
    """The registry as opened on another machine, with that machine's key directory."""
    return Registry.open(registry.address, keys=KeyStore(directory))


def new_key(directory: Path, name: str) -> str:
    """``name`` makes a key pair on another machine; returns its public key."""
    return KeyStore(directory).create(name).public_key_pem


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def other_activity(registry: Registry, name: str) -> None:
    """An admin's change: someone else's event, which vouches for the time."""
    registry.identities.create(name, Role.AUDITOR, actor=ADMIN)


def test_a_second_key_signs_for_the_same_person(registry: Registry, tmp_path: Path) -> None:
    pem = new_key(tmp_path / "ci", ENGINEER)
    eve = registry.identities.add_key(ENGINEER, pem, actor=ADMIN, label="ci")
    assert [(k.label, k.status) for k in eve.keys] == [
        ("enrolment", KeyStatus.ACTIVE),
        ("ci", KeyStatus.ACTIVE),
    ]
    on_ci = machine(registry, tmp_path / "ci")
    v1 = registry.adapters.register(small_adapter(tmp_path / "a"), "one", actor=ENGINEER)
    v2 = on_ci.adapters.register(small_adapter(tmp_path / "b", 1), "two", actor=ENGINEER)
    assert v1.signer_key_fingerprint != v2.signer_key_fingerprint
    assert {registry.adapters.verify(v.ref).signer for v in (v1, v2)} == {ENGINEER}
    assert registry.verify_audit().checkpoints_void is None
    registry.verify_records()


def test_one_key_is_one_person(registry: Registry, tmp_path: Path) -> None:
    ritas = registry.identities.get(REVIEWER).public_key_pem
    with pytest.raises(AlreadyExists, match="already enrolled as 'rita'"):
        registry.identities.add_key(ENGINEER, ritas, actor=ADMIN, label="stolen")
    # a key added to a person cannot become a second person, nor another's second key
    dashboard = new_key(tmp_path / "dash", REVIEWER)
    registry.identities.add_key(REVIEWER, dashboard, actor=ADMIN, label="dashboard")
    with pytest.raises(AlreadyExists, match="already enrolled for 'rita'"):
        registry.identities.create(
            "rita-dash", Role.REVIEWER, actor=ADMIN, public_key_pem=dashboard
        )
    with pytest.raises(AlreadyExists, match="already enrolled for 'rita'"):
        registry.identities.add_key(ENGINEER, dashboard, actor=ADMIN, label="again")


def test_only_an_admin_adds_or_retires_keys(registry: Registry, tmp_path: Path) -> None:
    pem = new_key(tmp_path / "m", ENGINEER)
    with pytest.raises(PermissionDenied, match="this needs admin"):
        registry.identities.add_key(ENGINEER, pem, actor=ENGINEER, label="mine")
    with pytest.raises(PermissionDenied, match="this needs admin"):
        registry.identities.retire_key(ENGINEER, "0" * 16, actor=ENGINEER, reason="x")


def test_rotation_keeps_what_the_old_key_signed(registry: Registry, tmp_path: Path) -> None:
    v1 = registry.adapters.register(small_adapter(tmp_path / "a"), "bank", actor=ENGINEER)
    old = registry.identities.get(ENGINEER).key_fingerprint
    eve = registry.identities.rotate(ENGINEER, new_key(tmp_path / "new", ENGINEER), actor=ADMIN)
    (retired,) = [k for k in eve.keys if k.key_fingerprint == old]
    assert retired.status is KeyStatus.RETIRED and "rotated" in str(retired.end_reason)
    # what the old key signed still verifies; the old key signs nothing more
    assert registry.adapters.verify(v1.ref).signer_key_fingerprint == old
    with pytest.raises(SigningKeyError, match="was retired at audit event"):
        registry.adapters.register(small_adapter(tmp_path / "b", 1), "bank", actor=ENGINEER)
    v2 = machine(registry, tmp_path / "new").adapters.register(
        small_adapter(tmp_path / "c", 2), "bank", actor=ENGINEER
    )
    assert registry.adapters.verify(v2.ref).signer_key_fingerprint != old
    registry.verify_audit()
    registry.verify_records()


def test_the_last_key_is_rotated_not_retired(registry: Registry) -> None:
    key = registry.identities.get(ENGINEER).key_fingerprint
    with pytest.raises(Conflict, match="last active key"):
        registry.identities.retire_key(ENGINEER, key[:12], actor=ADMIN, reason="lost")
    with pytest.raises(InputError, match="holds no key 'deadbeef'"):
        registry.identities.retire_key(ENGINEER, "deadbeef", actor=ADMIN, reason="lost")


def test_offboarding_keeps_what_was_signed(registry: Registry, tmp_path: Path) -> None:
    v1 = registry.adapters.register(small_adapter(tmp_path / "a"), "bank", actor=ENGINEER)
    eve = registry.identities.revoke(ENGINEER, actor=ADMIN, reason="left")
    assert {k.status for k in eve.keys} == {KeyStatus.RETIRED}
    assert registry.adapters.verify(v1.ref).signer == ENGINEER
    with pytest.raises(PermissionDenied, match="'eve' was revoked \\(left\\)"):
        registry.adapters.register(small_adapter(tmp_path / "b", 1), "bank", actor=ENGINEER)
    with pytest.raises(Conflict, match="takes no new key"):
        registry.identities.add_key(ENGINEER, new_key(tmp_path / "n", ENGINEER), actor=ADMIN)
    registry.verify_audit()
    registry.verify_records()


def test_compromise_voids_what_follows_and_keeps_what_came_before(
    registry: Registry, tmp_path: Path
) -> None:
    before = registry.adapters.register(small_adapter(tmp_path / "a"), "bank", actor=ENGINEER)
    other_activity(registry, "witness-1")
    time.sleep(0.01)
    stolen_at = now()
    # the thief, with eve's key, registers a version of his own
    forged = registry.adapters.register(small_adapter(tmp_path / "b", 1), "bank", actor=ENGINEER)
    eve = registry.identities.revoke(
        ENGINEER, actor=ADMIN, reason="laptop stolen", compromised_since=stolen_at
    )
    (key,) = eve.keys
    assert key.status is KeyStatus.COMPROMISED and key.void_from_seq is not None
    assert registry.adapters.verify(before.ref).signer == ENGINEER
    with pytest.raises(VerificationError, match="was compromised since .* this signature is at"):
        registry.adapters.verify(forged.ref)
    # the chain still verifies: the thief's checkpoint vouches for nothing, later ones cover it
    report = registry.verify_audit()
    assert report.checkpoints_void == 1
    registry.verify_records()


def test_a_compromise_before_a_signature_voids_it(registry: Registry, tmp_path: Path) -> None:
    stolen_at = now()
    time.sleep(0.01)
    version = registry.adapters.register(small_adapter(tmp_path / "a"), "bank", actor=ENGINEER)
    registry.identities.revoke(ENGINEER, actor=ADMIN, reason="stolen", compromised_since=stolen_at)
    with pytest.raises(VerificationError, match="compromised since"):
        registry.adapters.verify(version.ref)


def test_a_back_dated_signature_by_the_stolen_key_is_void(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The thief sets his clock back: his event claims a time before the compromise, but
    it comes after others' events that were made after it, and only their times count."""
    honest = registry.adapters.register(small_adapter(tmp_path / "a"), "bank", actor=ENGINEER)
    other_activity(registry, "witness-0")  # someone else, before the theft
    time.sleep(0.01)
    stolen_at = now()
    time.sleep(0.01)
    other_activity(registry, "witness-1")  # someone else, after the theft
    import loraledger.registry.audit as audit_module

    real = audit_module.utcnow
    monkeypatch.setattr(audit_module, "utcnow", lambda: real() - timedelta(days=30))
    forged = registry.adapters.register(small_adapter(tmp_path / "b", 1), "bank", actor=ENGINEER)
    monkeypatch.setattr(audit_module, "utcnow", real)
    (event,) = registry.audit_events(action="adapter.register", subject=f"adapter:{forged.ref}")
    assert event.created_at < stolen_at  # it claims to be from before the theft
    registry.identities.revoke(ENGINEER, actor=ADMIN, reason="stolen", compromised_since=stolen_at)
    with pytest.raises(VerificationError, match="compromised since"):
        registry.adapters.verify(forged.ref)
    # a genuine signature before the theft, before others' later events, stays valid
    assert registry.adapters.verify(honest.ref).signer == ENGINEER


def test_one_stolen_key_of_several(registry: Registry, tmp_path: Path) -> None:
    registry.identities.add_key(
        ENGINEER, new_key(tmp_path / "ci", ENGINEER), actor=ADMIN, label="ci"
    )
    ci = registry.identities.get(ENGINEER).keys[1].key_fingerprint
    other_activity(registry, "witness-1")
    time.sleep(0.01)
    stolen_at = now()
    on_ci = machine(registry, tmp_path / "ci")
    forged = on_ci.adapters.register(small_adapter(tmp_path / "b", 1), "bank", actor=ENGINEER)
    registry.identities.revoke(
        ENGINEER, actor=ADMIN, reason="ci runner breached", compromised_since=stolen_at, key=ci
    )
    eve = registry.identities.get(ENGINEER)
    assert eve.status.value == "active"  # she keeps her laptop key
    assert [k.status for k in eve.keys] == [KeyStatus.ACTIVE, KeyStatus.COMPROMISED]
    with pytest.raises(VerificationError, match=f"key {ci[:16]}… was compromised"):
        registry.adapters.verify(forged.ref)
    with pytest.raises(SigningKeyError, match="was compromised"):
        on_ci.adapters.register(small_adapter(tmp_path / "c", 2), "bank", actor=ENGINEER)
    fine = registry.adapters.register(small_adapter(tmp_path / "d", 3), "bank", actor=ENGINEER)
    assert registry.adapters.verify(fine.ref).signer == ENGINEER


def test_an_admin_cannot_declare_its_own_acting_key_stolen(registry: Registry) -> None:
    registry.identities.create("bob", Role.ADMIN, actor=ADMIN)
    with pytest.raises(PermissionDenied, match="cannot declare the key it acts with"):
        registry.identities.revoke(ADMIN, actor=ADMIN, reason="x", compromised_since=now())
    with pytest.raises(InputError, match="is in the future"):
        registry.identities.revoke(
            ENGINEER, actor=ADMIN, reason="x", compromised_since=now() + timedelta(days=1)
        )


def test_an_identity_event_signed_by_a_stolen_admin_key_is_refused(
    registry: Registry, tmp_path: Path
) -> None:
    """The identity history must be signed by its own changes: an identity the thief
    enrolled with a stolen admin key is not skipped over, it is refused."""
    registry.identities.create("bob", Role.ADMIN, actor=ADMIN)
    registry.identities.create("witness-1", Role.AUDITOR, actor="bob")
    time.sleep(0.01)
    stolen_at = now()
    registry.identities.create("mallory", Role.REVIEWER, actor=ADMIN)  # the thief, as alice
    with pytest.raises(
        VerificationError, match="identity history was changed with a compromised key"
    ):
        registry.identities.revoke(ADMIN, actor="bob", reason="stolen", compromised_since=stolen_at)
    with pytest.raises(VerificationError, match="event #8 .* is void: key .* was compromised"):
        Registry.open(registry.address, keys=registry.keys).identities.list()


def _deploy(registry: Registry, version: AdapterVersion, actor: str, action: str) -> Deployment:
    current = registry.deployments.current("production")
    return registry.deployments.record(
        Deployment(
            id=str(uuid.uuid4()), seq=0, environment="production", adapter=version.ref,
            artifact_digest=version.digest, action=action, reason="test", gate_check_id=None,
            approval_ids=(), policy_sha256=None, created_at=now(), created_by=actor,
        ),
        registry.act_as(actor), {Role.REVIEWER},
        after_seq=current.seq if current else 0,
    )  # fmt: skip


def test_a_promotion_signed_with_a_stolen_key_is_not_served(
    registry: Registry, tmp_path: Path
) -> None:
    v1 = registry.adapters.register(small_adapter(tmp_path / "a"), "bank", actor=ENGINEER)
    v2 = registry.adapters.register(small_adapter(tmp_path / "b", 1), "bank", actor=ENGINEER)
    rosa = registry.identities.create("rosa", Role.REVIEWER, actor=ADMIN)
    _deploy(registry, v1, REVIEWER, "promote")
    other_activity(registry, "witness-1")
    time.sleep(0.01)
    stolen_at = now()
    thiefs = _deploy(registry, v2, "rosa", "promote")
    assert registry.deployments.serving("production") == thiefs
    registry.identities.revoke("rosa", actor=ADMIN, reason="phished", compromised_since=stolen_at)
    assert registry.deployments.current("production") == thiefs  # the record stands
    with pytest.raises(
        VerificationError, match=f"deployment #2 .* key {rosa.key_fingerprint[:16]}"
    ):
        registry.deployments.serving("production")
    back = _deploy(registry, v1, REVIEWER, "rollback")  # a valid key puts v1 back
    assert registry.deployments.serving("production") == back
    registry.verify_audit()
    registry.verify_records()


def test_the_root_rotates_its_own_key_and_stays_the_pinned_root(
    registry: Registry, tmp_path: Path
) -> None:
    """As TUF rotates its root: the old root key signs the enrolment of the new one, so a
    verifier who pinned the registry's root (its first key) follows the chain to it."""
    from loraledger.registry.trust import TrustRoot

    root = registry.identities.get(ADMIN)
    pinned = TrustRoot(
        registry_id=registry.registry_id, name=ADMIN, key_fingerprint=root.key_fingerprint,
        public_key_pem=root.public_key_pem,
    )  # fmt: skip
    pem = new_key(tmp_path / "new-root", ADMIN)
    registry.identities.rotate(ADMIN, pem, actor=ADMIN, label="hsm")
    with pytest.raises(SigningKeyError, match="was retired"):
        registry.identities.create("late", Role.ENGINEER, actor=ADMIN)
    new_root = Registry.open(registry.address, keys=KeyStore(tmp_path / "new-root"))
    new_root.identities.create("late", Role.AUDITOR, actor=ADMIN)
    audited = Registry.open(registry.address, keys=registry.keys, trust_root=pinned)
    assert audited.verify_audit().checkpoints_void is None
    assert audited.identities.get("late").created_by == ADMIN


def test_a_revocation_recorded_by_an_earlier_release_still_voids(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before keys had histories a revocation voided every signature of the key; a
    registry written then keeps meaning what it said (nothing distrusted is trusted again
    silently), and its checkpoints before the revocation still verify."""
    from loraledger.registry import identities
    from loraledger.registry.audit import utcnow

    version = registry.adapters.register(small_adapter(tmp_path / "a"), "bank", actor=ENGINEER)

    def earlier_release(self, change, target, actor, reason, compromise):  # type: ignore[no-untyped-def]
        change.conn.execute(
            "UPDATE identities SET status = 'revoked', revoked_at = ?, revoked_by = ?, "
            "revoke_reason = ? WHERE name = ?",
            [utcnow(), actor, reason, target.name],
        )
        change.record(  # the payload that release wrote
            "identity.revoke",
            f"identity:{target.name}",
            {"reason": reason, "key_fingerprint": target.key_fingerprint},
        )

    monkeypatch.setattr(identities.Identities, "_revoke_in", earlier_release)
    registry.identities.revoke(ENGINEER, actor=ADMIN, reason="laptop stolen")
    monkeypatch.undo()
    reopened = Registry.open(registry.address, keys=registry.keys)
    (key,) = reopened.identities.get(ENGINEER).keys
    assert key.voids_all
    with pytest.raises(VerificationError, match="voided every signature of a revoked key"):
        reopened.adapters.verify(version.ref)
    assert reopened.verify_audit().checkpoints_void is None
    reopened.verify_records()


def test_an_evaluation_recorded_with_a_stolen_key_is_no_evidence(
    registry: Registry, subject: str
) -> None:
    """A change signed with a key compromised there is intact in the chain but nobody's
    word: what it recorded is refused where it is read."""
    from loraledger.registry.models import EvalRun

    from tests.registry.test_evaluations import a_run  # a run as the harness records it

    honest = registry.evaluations.record(a_run(registry, subject), actor=ENGINEER)
    other_activity(registry, "witness-1")
    time.sleep(0.01)
    stolen_at = now()
    forged: EvalRun = registry.evaluations.record(a_run(registry, subject), actor=ENGINEER)
    registry.identities.revoke(ENGINEER, actor=ADMIN, reason="stolen", compromised_since=stolen_at)
    with pytest.raises(VerificationError, match="compromised key .* it is no evidence"):
        registry.evaluations.get(forged.id)
    fresh = Registry.open(registry.address, keys=registry.keys)
    with pytest.raises(VerificationError, match="it is no evidence"):
        fresh.evaluations.get(forged.id)
    assert fresh.evaluations.get(honest.id).id == honest.id


def test_a_policy_set_with_a_stolen_admin_key_is_not_in_force(registry: Registry) -> None:
    registry.identities.create("bob", Role.ADMIN, actor=ADMIN)
    registry.policies.set("version: 1\n", reason="first", key=registry.act_as("bob"))
    time.sleep(0.01)
    stolen_at = now()
    lax = "version: 1\nenvironments: {production: {}}\n"
    registry.policies.set(lax, reason="the thief, as alice", key=registry.act_as(ADMIN))
    registry.identities.revoke(ADMIN, actor="bob", reason="stolen", compromised_since=stolen_at)
    with pytest.raises(VerificationError, match="policy v2 was recorded by a change signed with"):
        registry.policies.in_force()
    registry.policies.set("version: 1\n", reason="again", key=registry.act_as("bob"))
    assert registry.policies.in_force().version == 3  # type: ignore[union-attr]


def test_checkpoints_an_earlier_release_wrote_still_verify(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before schema 14 a checkpoint signed the v1 text, naming its signer but not the key:
    it verifies with a key the signer held valid at its place, next to v2 ones."""
    from loraledger.registry import audit
    from loraledger.registry.models import Checkpoint

    def earlier_release(self, conn, key):  # type: ignore[no-untyped-def]
        seq, head_hash = self.head(conn)
        now = audit.utcnow()
        signature = key.sign(
            audit.checkpoint_message(self.registry_id, seq, head_hash, key.name, now)
        )
        conn.execute(
            "INSERT INTO audit_checkpoints (seq, head_hash, signer, signature, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [seq, head_hash, key.name, signature, now],
        )
        return Checkpoint(registry_id=self.registry_id, seq=seq, head_hash=head_hash,
                          signer=key.name, signature=signature, created_at=now)  # fmt: skip

    monkeypatch.setattr(audit.AuditLog, "checkpoint", earlier_release)
    old = registry.adapters.register(small_adapter(tmp_path / "a"), "bank", actor=ENGINEER)
    monkeypatch.undo()
    new = registry.adapters.register(small_adapter(tmp_path / "b", 1), "bank", actor=ENGINEER)
    reopened = Registry.open(registry.address, keys=registry.keys)
    with reopened.db.read() as conn:
        rows = conn.execute("SELECT key_fingerprint FROM audit_checkpoints").fetchall()
    kinds = {fingerprint is None for (fingerprint,) in rows}
    assert kinds == {True, False}
    assert reopened.verify_audit().checkpoints_void is None
    assert {reopened.adapters.verify(v.ref).ref for v in (old, new)} == {old.ref, new.ref}
