"""Approvals: signed review decisions, separation of duties, and which approvals count.

``approve``/``reject`` record a decision signed with the reviewer's own key over the
version's digest, the environment, the policy's sha256 and the gate check the reviewer
saw (its evidence hash). Refused -- each with an ``approval.refused`` audit event and
nothing else changed -- are: approving a version you trained or registered (separation of
duties), approving a version whose evidence fails the gate, and deciding the same thing
twice on the same evidence. Identities without the policy's role, or revoked, are refused
before anything is read (``Registry.act_as``).

Which recorded decisions count is :mod:`.tally`'s.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import NoReturn

from loraledger.registry import Registry, Role
from loraledger.registry.audit import canonical_json, utcnow
from loraledger.registry.keys import SigningKey
from loraledger.registry.models import Approval, Decision

from loraledger.errors import GateRefused, LedgerError, PermissionDenied, UsageError

from .gates import check_gate
from .release import ApprovalRule, LoadedPolicy, resolve_policy
from .tally import authors, roles_for

DEFAULT_RULE = ApprovalRule(count=1)


def decide(
    registry: Registry,
    ref: str,
    environment: str,
    decision: str,
    *,
    comment: str,
    actor: str | None,
    policy: LoadedPolicy | Path | None = None,
) -> Approval:
    """Record a signed ``approve`` or ``reject`` of ``ref`` for ``environment``."""
    if decision not in ("approve", "reject"):
        raise ValueError(decision)
    if not comment.strip():
        raise UsageError(f"a decision needs a comment: pass --comment TEXT to {decision}")
    loaded = resolve_policy(registry, policy, deciding=True)
    version = registry.adapters.get(ref)
    # the environment's approval rule for this adapter (its name's or a glob's override)
    rule = loaded.rules_for(environment, version.name).policy.approvals or DEFAULT_RULE
    roles = roles_for(rule)
    key = registry.act_as(actor, roles, action=decision)
    subject = f"adapter:{version.ref}"
    made = authors(registry, version).part_of(key.name, key.fingerprint)
    if made:
        _refuse(
            registry, key, roles, subject, environment,
            f"{made} {version.ref}; separation of duties: another {rule.role} must review it",
            error=PermissionDenied,
        )  # fmt: skip
    check = check_gate(registry, version.ref, environment, actor=key.name, policy=loaded)
    if decision == "approve" and not check.evidence_passed:
        failed = "; ".join(r.rule for r in check.rules if not r.passed and r.kind != "approvals")
        _refuse(
            registry, key, roles, subject, environment,
            f"the gate's evidence fails for {environment} ({failed}); approve only a version "
            f"whose evidence passes (gate check {check.id[:8]})",
        )  # fmt: skip
    for earlier in registry.approvals.list(version.ref, environment):
        if (earlier.signer, earlier.inputs_sha256, earlier.decision) == (
            key.name,
            check.inputs_sha256,
            decision,
        ):
            _refuse(
                registry, key, roles, subject, environment,
                f"{key.name} already decided '{decision}' on this evidence (approval "
                f"{earlier.id[:8]}); one person counts once",
            )  # fmt: skip
    created = utcnow()
    approval_id = str(uuid.uuid4())
    head_seq, head_hash = registry.audit_head()
    payload = canonical_json(
        {
            "audit_head": {"seq": head_seq, "hash": head_hash},
            "approval_id": approval_id,
            "adapter": version.ref,
            "artifact_digest": version.digest,
            "environment": environment,
            "decision": decision,
            "comment": comment,
            "policy_sha256": loaded.sha256,
            "gate_check_id": check.id,
            "inputs_sha256": check.inputs_sha256,
            "signer": key.name,
            "created_at": created.isoformat(),
        }
    )
    approval = Approval(
        id=approval_id,
        adapter=version.ref,
        artifact_digest=version.digest,
        environment=environment,
        decision=Decision(decision),
        comment=comment,
        policy_sha256=loaded.sha256,
        gate_check_id=check.id,
        inputs_sha256=check.inputs_sha256,
        payload=payload,
        signer=key.name,
        key_fingerprint=key.fingerprint,
        signature=key.sign(payload.encode()),
        created_at=created,
    )
    return registry.approvals.record(approval, key, roles)


def _refuse(
    registry: Registry,
    key: SigningKey,
    roles: set[Role],
    subject: str,
    environment: str,
    message: str,
    *,
    error: type[LedgerError] = GateRefused,
) -> NoReturn:
    """Audit the refusal (``approval.refused``), then raise ``error``."""
    with registry.change(key, roles) as change:
        change.record("approval.refused", subject, {"environment": environment, "reason": message})
    raise error(f"refused: {message}")


__all__ = ["decide"]
