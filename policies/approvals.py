"""Approvals: signed review decisions, separation of duties, and which approvals count.

``approve``/``reject`` record a decision signed with the reviewer's own key over the
version's digest, the environment, the policy's sha256 and the gate check the reviewer
saw (its evidence hash). Refused -- each with an ``approval.refused`` audit event and
nothing else changed -- are: approving a version you trained or registered (separation of
duties), approving a version whose evidence fails the gate, and deciding the same thing
twice on the same evidence. Identities without the policy's role, or revoked, are refused
before anything is read (``Registry.act_as``).

An approval counts toward an environment's N-of-M only while all of this holds, checked
from the public keys alone: its signature verifies against the signer's registered key;
the signer is still active, holds the role and is not an author of the version; it is
over this version's digest; and it saw the evidence as it is now (same evidence hash) --
otherwise it is *stale*. Each person counts once. A valid, current rejection blocks.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from loraledger.registry import Registry, Role
from loraledger.registry.audit import canonical_json, utcnow
from loraledger.registry.keys import SigningKey, verify_signature
from loraledger.registry.models import AdapterVersion, Approval

from loraledger.errors import Conflict, LedgerError, PermissionDenied, UsageError

from .release import ApprovalRule, LoadedPolicy, load_policy

DEFAULT_RULE = ApprovalRule(count=1)


@dataclass(frozen=True)
class Tally:
    """The approvals of one version for one environment, judged now."""

    counted: list[Approval]
    rejections: list[Approval]
    not_counted: list[tuple[Approval, str]]  # with the reason


def roles_for(rule: ApprovalRule) -> set[Role]:
    return {Role(rule.role), Role.ADMIN}


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
    from .gates import check_gate

    if decision not in ("approve", "reject"):
        raise ValueError(decision)
    if not comment.strip():
        raise UsageError(f"a decision needs a comment: pass --comment TEXT to {decision}")
    loaded = policy if isinstance(policy, LoadedPolicy) else load_policy(policy)
    rule = loaded.environment(environment).approvals or DEFAULT_RULE
    roles = roles_for(rule)
    key = registry.act_as(actor, roles, action=decision)
    version = registry.adapters.get(ref)
    subject = f"adapter:{version.ref}"
    authors = _authors(registry, version)
    if key.name in authors:
        _refuse(
            registry, key, roles, subject, environment,
            f"{key.name} {authors[key.name]} {version.ref}; separation of duties: another "
            f"{rule.role} must review it",
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
    payload = canonical_json(
        {
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
        decision=decision,
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


def tally(
    registry: Registry,
    version: AdapterVersion,
    environment: str,
    inputs_sha256: str,
    rule: ApprovalRule,
) -> Tally:
    """Judge every recorded decision on ``version`` for ``environment`` as of now."""
    authors = _authors(registry, version)
    counted: dict[str, Approval] = {}
    rejections: list[Approval] = []
    not_counted: list[tuple[Approval, str]] = []
    for approval in registry.approvals.list(version.ref, environment):
        problem = _problem(registry, approval, version, inputs_sha256, rule, authors)
        if problem:
            not_counted.append((approval, problem))
        elif approval.decision == "reject":
            rejections.append(approval)
        elif approval.signer in counted:
            not_counted.append((approval, f"{approval.signer} is already counted"))
        else:
            counted[approval.signer] = approval
    return Tally(list(counted.values()), rejections, not_counted)


def verify_approval(registry: Registry, approval: Approval) -> bool:
    """Does the signature verify with the signer's registered public key?"""
    try:
        identity = registry.identities.get(approval.signer)
    except LedgerError:
        return False
    return identity.key_fingerprint == approval.key_fingerprint and verify_signature(
        identity.public_key_pem, approval.signature, approval.payload.encode()
    )


def _problem(
    registry: Registry,
    approval: Approval,
    version: AdapterVersion,
    inputs_sha256: str,
    rule: ApprovalRule,
    authors: dict[str, str],
) -> str | None:
    if not verify_approval(registry, approval):
        return "its signature does not verify with the signer's registered key"
    identity = registry.identities.get(approval.signer)
    if identity.status.value != "active":
        return f"{approval.signer}'s key was revoked"
    if identity.role not in roles_for(rule):
        return f"{approval.signer} is no longer a {rule.role}"
    if approval.signer in authors:
        return f"{approval.signer} {authors[approval.signer]} the version"
    if approval.artifact_digest != version.digest:
        return "it is over another digest"
    if approval.inputs_sha256 != inputs_sha256:
        return "stale: the evidence changed since (new results or a new policy)"
    return None


def _authors(registry: Registry, version: AdapterVersion) -> dict[str, str]:
    """Who made the version, and how: the registering identity and the trainer."""
    authors = {version.created_by: "registered"}
    run = registry.adapters.training_run(version.ref)
    if run is not None:
        authors[run.actor] = "trained"
    return authors


def _refuse(
    registry: Registry,
    key: SigningKey,
    roles: set[Role],
    subject: str,
    environment: str,
    message: str,
    *,
    error: type[LedgerError] = Conflict,
) -> NoReturn:
    """Audit the refusal (``approval.refused``), then raise ``error``."""
    with registry.change(key, roles) as change:
        change.record("approval.refused", subject, {"environment": environment, "reason": message})
    raise error(f"refused: {message}")


__all__ = ["Tally", "decide", "tally", "verify_approval"]
