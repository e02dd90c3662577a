"""Test helpers for governance: deployments written directly, as a promotion would."""

from __future__ import annotations

import uuid

from loraledger.registry import Registry, Role
from loraledger.registry.audit import utcnow
from loraledger.registry.models import Deployment

from tests.conftest import REVIEWER

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


def deploy(
    registry: Registry,
    env: str,
    ref: str,
    action: str = "promote",
    *,
    gate_check_id: str | None = None,
    after_seq: int | None = None,
) -> Deployment:
    """Append ``ref`` to ``env``'s history as the reviewer, bypassing the gate (tests of
    what happens after a deployment, not of promotion itself)."""
    version = registry.adapters.get(ref)
    current = registry.deployments.current(env)
    return registry.deployments.record(
        Deployment(
            id=str(uuid.uuid4()), seq=0, environment=env, adapter=version.ref,
            artifact_digest=version.digest, action=action, reason="test",
            gate_check_id=gate_check_id, approval_ids=(), policy_sha256=None,
            created_at=utcnow(), created_by=REVIEWER,
        ),
        registry.act_as(REVIEWER), {Role.REVIEWER},
        after_seq=(current.seq if current else 0) if after_seq is None else after_seq,
    )  # fmt: skip
