"""The deployment history as stored: each record signed by its actor and chained to the
environment's previous one, appended only on the state its writer saw, and read back only
as its signed record and audit event say. (Promotion and rollback -- the rules -- are
tested in tests/policies/test_deployments.py; the forgeries in tests/test_forgery.py.)"""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest
from loraledger.registry import AdapterVersion, Registry, Role
from loraledger.registry.audit import utcnow
from loraledger.registry.keys import verify_signature
from loraledger.registry.models import Deployment

from loraledger.errors import ConcurrentChange, VerificationError
from tests.conftest import REVIEWER
from tests.policies.helpers import deploy
from tests.registry.helpers import sql


def test_each_record_is_signed_and_chained(registry: Registry, registered: AdapterVersion) -> None:
    head_before = registry.audit_head()
    first = deploy(registry, "staging", registered.ref)
    second = deploy(registry, "staging", registered.ref, "rollback")
    assert (first.seq, second.seq, first.format_version) == (1, 2, 3)
    assert (first.track, json.loads(first.payload or "")["track"]) == (registered.name,) * 2
    signed = json.loads(second.payload or "")
    assert signed["previous"] == {
        "id": first.id,
        "payload_sha256": hashlib.sha256((first.payload or "").encode()).hexdigest(),
    }
    assert json.loads(first.payload or "")["previous"] is None
    assert json.loads(first.payload or "")["audit_head"] == {
        "seq": head_before[0],
        "hash": head_before[1],
    }
    reviewer = registry.identities.get(REVIEWER)
    assert second.key_fingerprint == reviewer.key_fingerprint
    assert verify_signature(
        reviewer.public_key_pem, second.signature or "", second.payload.encode()
    )  # type: ignore[union-attr]
    assert registry.deployments.history("staging") == [first, second]
    event = registry.audit_events(action="deploy.rollback")[-1]
    assert event.payload["signature"] == second.signature
    assert registry.deployments.everywhere() == {"staging": {registered.name: second}}
    assert registry.deployments.of_version(registered.digest) == [first, second]


def test_a_record_on_a_stale_view_is_refused(
    registry: Registry, registered: AdapterVersion
) -> None:
    deploy(registry, "staging", registered.ref)
    with pytest.raises(ConcurrentChange, match="changed while this ran"):
        deploy(registry, "staging", registered.ref, after_seq=0)
    assert len(registry.deployments.history("staging")) == 1


def unsigned(registry: Registry, version: AdapterVersion, seq: int) -> Deployment:
    """A deployment as LoRA Ledger wrote it before records were signed (format 1): a row
    without payload or signature, and an audit event without them."""
    entry = Deployment(
        id=str(uuid.uuid4()), seq=seq, environment="staging", adapter=version.ref,
        artifact_digest=version.digest, action="promote", reason="old", gate_check_id=None,
        approval_ids=(), policy_sha256=None, created_at=utcnow(), created_by=REVIEWER,
    )  # fmt: skip
    key = registry.act_as(REVIEWER)
    with registry.change(key, {Role.REVIEWER}) as change:
        change.conn.execute(
            "INSERT INTO deployments (id, seq, environment, adapter_name, adapter_version, "
            "artifact_digest, action, reason, gate_check_id, approval_ids, policy_sha256, "
            "created_at, created_by) VALUES (?, ?, 'staging', ?, ?, ?, 'promote', 'old', NULL, "
            "'[]', NULL, ?, ?)",
            [entry.id, seq, version.name, version.version, version.digest, entry.created_at,
             REVIEWER],
        )  # fmt: skip
        change.record(
            "deploy.promote",
            "env:staging",
            {"deployment_id": entry.id, "seq": seq, "adapter": version.ref,
             "artifact_digest": version.digest, "reason": "old", "gate_check_id": None,
             "approval_ids": [], "policy_sha256": None},
        )  # fmt: skip
    return entry


def test_records_made_before_signing_still_read_and_chain(
    registry: Registry, registered: AdapterVersion
) -> None:
    old = unsigned(registry, registered, 1)
    (read,) = registry.deployments.history("staging")
    assert read.format_version == 1 and read.payload is None and read.id == old.id
    new = deploy(registry, "staging", registered.ref, "rollback")
    assert json.loads(new.payload or "")["previous"] == {"id": old.id, "payload_sha256": None}
    assert [d.seq for d in registry.deployments.history("staging")] == [1, 2]
    # their audit event still vouches for them
    sql(registry, "UPDATE deployments SET reason = 'edited' WHERE id = ?", [old.id])
    with pytest.raises(VerificationError, match=f"deployments row {old.id}: reason is"):
        registry.deployments.history("staging")


def test_a_signed_record_cannot_pass_for_an_unsigned_one(
    registry: Registry, registered: AdapterVersion
) -> None:
    signed = deploy(registry, "staging", registered.ref)
    sql(registry, "UPDATE deployments SET payload = NULL, signature = NULL, "
        "key_fingerprint = NULL WHERE id = ?", [signed.id])  # fmt: skip
    with pytest.raises(VerificationError, match="signature is null but audit event"):
        registry.deployments.current("staging")
