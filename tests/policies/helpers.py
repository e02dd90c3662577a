"""Test helpers for governance: deployments written directly, as a promotion would."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from pathlib import Path

from loraledger.registry import Registry, Role
from loraledger.registry.audit import utcnow
from loraledger.registry.models import Deployment, LossPoint, TrainingRun, track_head

from tests.conftest import ADMIN, ENGINEER, REVIEWER

# A small release policy over the sanity suite, for tests of approvals and releases.
POLICY = """\
version: 1
environments:
  staging:
    thresholds:
      - {suite: sanity, task: sanity_mc, metric: acc, min: 0}
    provenance: {signed: true}
    approvals: {count: 1, role: reviewer}
  production:
    requires_environment: staging
    provenance: {signed: true}
    approvals: {count: 2, role: reviewer}
"""


def use_policy(registry: Registry, policy: Path, *, reason: str = "the tests' policy") -> Path:
    """Make the file ``policy`` the registry's policy in force (as the admin), unless it
    is already; returns it."""
    from loraledger.policies.release import set_policy

    in_force = registry.policies.in_force()
    if in_force is None or in_force.sha256 != hashlib.sha256(policy.read_bytes()).hexdigest():
        set_policy(registry, policy, reason=reason, actor=ADMIN)
    return policy


def deploy(
    registry: Registry,
    env: str,
    ref: str,
    action: str = "promote",
    *,
    gate_check_id: str | None = None,
    after_seq: int | None = None,
) -> Deployment:
    """Append ``ref`` to its track in ``env``'s history as the reviewer, bypassing the
    gate (tests of what happens after a deployment, not of promotion itself)."""
    version = registry.adapters.get(ref)
    head = track_head(registry.deployments.history(env), version.name)
    return registry.deployments.record(
        Deployment(
            id=str(uuid.uuid4()), seq=0, environment=env, adapter=version.ref,
            artifact_digest=version.digest, action=action, reason="test",
            gate_check_id=gate_check_id, approval_ids=(), policy_sha256=None,
            created_at=utcnow(), created_by=REVIEWER,
        ),
        registry.act_as(REVIEWER), {Role.REVIEWER},
        after_seq=head if after_seq is None else after_seq,
    )  # fmt: skip


def a_training_run(reg: Registry, base: str) -> TrainingRun:
    """The provenance record a training run would make on ``base`` (no training: for
    tests of what is done with the record, and synthetic adapters on a real base)."""
    now = utcnow()
    found = reg.base_models.get(base)
    return TrainingRun(
        id=str(uuid.uuid4()), config={"seed": 1}, config_sha256="0" * 64, base_ref=found.ref,
        base_digest=found.digest, datasets=(), quantization={"method": "none"},
        compute_dtype="float32", compute_dtype_reason="test", device="cpu",
        code={"repository": "here", "commit": None, "dirty": False}, libraries={}, hardware={},
        seed=1, loss_curve=(LossPoint(step=1, loss=1.0, learning_rate=1e-3, tokens=10),),
        steps=1, tokens_seen=10, wall_seconds=1.0, started_at=now - timedelta(seconds=1),
        finished_at=now, actor=ENGINEER,
    )  # fmt: skip
