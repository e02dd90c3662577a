"""Which recorded decisions count: the approval tally that gates and approvals share.

An approval counts toward an environment's N-of-M only while all of this holds, checked
from the public keys alone: its signature verifies with a key its signer held, and that
key was valid at the approval's place in the audit chain (enrolled before it, neither
retired nor compromised there -- a reviewer who has since left, or rotated her key, still
approved); the signer holds the policy's role and is not an author of the version; it is
over this version's digest; and it saw the evidence as it is now (same evidence hash) --
otherwise it is *stale*. Each person counts once, whichever of their keys signed: approvals
are counted by signer, and two identities holding one key (enrolled twice before that was
refused) count once too, and an author's key under another name does not approve the
author's work. A valid, current rejection blocks. The author rule is :func:`authors_of`,
the one place that says who may not review a version (also for the offline check of an
evidence pack).
"""

from __future__ import annotations

from dataclasses import dataclass

from loraledger.registry import Registry, Role
from loraledger.registry.keys import verify_signature
from loraledger.registry.models import AdapterVersion, Approval

from loraledger.errors import LedgerError

from .release import ApprovalRule


@dataclass(frozen=True)
class Tally:
    """The approvals of one version for one environment, judged now."""

    counted: list[Approval]
    rejections: list[Approval]
    not_counted: list[tuple[Approval, str]]  # with the reason


def roles_for(rule: ApprovalRule) -> set[Role]:
    return {Role(rule.role), Role.ADMIN}


def tally(
    registry: Registry,
    version: AdapterVersion,
    environment: str,
    inputs_sha256: str,
    rule: ApprovalRule,
) -> Tally:
    """Judge every recorded decision on ``version`` for ``environment`` as of now."""
    found = authors(registry, version)
    counted: dict[str, Approval] = {}  # by person: one of a person's keys is the person
    rejections: list[Approval] = []
    not_counted: list[tuple[Approval, str]] = []
    for approval, placed in registry.approvals.placed(version.ref, environment):
        problem = _problem(registry, approval, placed, version, inputs_sha256, rule, found)
        earlier = counted.get(approval.signer) or next(
            (a for a in counted.values() if a.key_fingerprint == approval.key_fingerprint), None
        )
        if problem:
            not_counted.append((approval, problem))
        elif approval.decision == "reject":
            rejections.append(approval)
        elif earlier is not None:
            also = "" if earlier.signer == approval.signer else f" with the key of {earlier.signer}"
            not_counted.append((approval, f"{approval.signer} is already counted{also}"))
        else:
            counted[approval.signer] = approval
    return Tally(list(counted.values()), rejections, not_counted)


def verify_approval(registry: Registry, approval: Approval) -> bool:
    """Does the signature verify with the key its signer names (one they held)?"""
    try:
        key = registry.identities.get(approval.signer).key(approval.key_fingerprint)
    except LedgerError:
        return False
    return key is not None and verify_signature(
        key.public_key_pem, approval.signature, approval.payload.encode()
    )


def _problem(
    registry: Registry,
    approval: Approval,
    placed: int | None,
    version: AdapterVersion,
    inputs_sha256: str,
    rule: ApprovalRule,
    authors: Authors,
) -> str | None:
    if not verify_approval(registry, approval):
        return "its signature does not verify with a key the signer was enrolled with"
    identity = registry.identities.get(approval.signer)
    if placed is not None:
        problem = identity.key_problem(approval.key_fingerprint, placed)
        if problem is not None:
            return f"signed with a key not valid at its place (audit event #{placed}): {problem}"
    if identity.role not in roles_for(rule):
        return f"{approval.signer} is no longer a {rule.role}"
    made = authors.part_of(approval.signer, approval.key_fingerprint)
    if made:
        return f"{made} the version"
    if approval.artifact_digest != version.digest:
        return "it is over another digest"
    if approval.inputs_sha256 != inputs_sha256:
        return "stale: the evidence changed since (new results or a new policy)"
    return None


@dataclass(frozen=True)
class Authors:
    """Who made a version and how (``how``: name -> "registered" or "trained"), with the
    key each of them holds (``keys``: fingerprint -> name), read once per decision."""

    how: dict[str, str]
    keys: dict[str, str]

    def part_of(self, signer: str, key_fingerprint: str) -> str | None:
        """How ``signer``, signing with ``key_fingerprint``, took part in making the
        version, as the start of a sentence; None when they did not. By name, or by the
        key: one key enrolled under two names (before that was refused) is one person."""
        if signer in self.how:
            return f"{signer} {self.how[signer]}"
        author = self.keys.get(key_fingerprint)
        if author is not None:
            return f"{signer} signs with the key of {author}, who {self.how[author]}"
        return None


def authors(registry: Registry, version: AdapterVersion) -> Authors:
    """Who made the version, and how (see :func:`authors_of`): read from its signed
    registration and its training run's provenance (both checked against the audit
    chain), never from the version row's ``created_by``; with their keys."""
    registered = registry.adapters.registration(version.ref)
    run = registry.adapters.training_run(version.ref)
    how = authors_of(registered.actor, run.actor if run is not None else None)
    keys: dict[str, str] = {}
    for name in how:
        try:
            held = registry.identities.get(name).keys
        except LedgerError:
            continue  # no identity, no key to recognise
        keys.update((k.key_fingerprint, name) for k in held)
    return Authors(how, keys)


def authors_of(registered_by: str, trained_by: str | None) -> dict[str, str]:
    """The people who may not review a version, each with what they did: whoever
    registered it and whoever trained it (separation of duties)."""
    found = {registered_by: "registered"}
    if trained_by is not None:
        found[trained_by] = "trained"
    return found


__all__ = ["Authors", "Tally", "authors", "authors_of", "roles_for", "tally", "verify_approval"]
