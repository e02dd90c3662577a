"""Which recorded decisions count: the approval tally that gates and approvals share.

An approval counts toward an environment's N-of-M only while all of this holds, checked
from the public keys alone: its signature verifies against the signer's registered key;
the signer is still active, holds the policy's role and is not an author of the version;
it is over this version's digest; and it saw the evidence as it is now (same evidence
hash) -- otherwise it is *stale*. Each person counts once: approvals are counted by
the key that signed them, so two identities holding one key (enrolled twice before that
was refused) count once, and an author's key under another name does not approve the
author's work. A valid, current rejection
blocks. The author rule is :func:`authors_of`, the one place that says who may not
review a version (also for the offline check of an evidence pack).
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
    counted: dict[str, Approval] = {}  # by key fingerprint: a key is a person
    rejections: list[Approval] = []
    not_counted: list[tuple[Approval, str]] = []
    for approval in registry.approvals.list(version.ref, environment):
        problem = _problem(registry, approval, version, inputs_sha256, rule, found)
        earlier = counted.get(approval.key_fingerprint)
        if problem:
            not_counted.append((approval, problem))
        elif approval.decision == "reject":
            rejections.append(approval)
        elif earlier is not None:
            also = "" if earlier.signer == approval.signer else f" with the key of {earlier.signer}"
            not_counted.append((approval, f"{approval.signer} is already counted{also}"))
        else:
            counted[approval.key_fingerprint] = approval
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
    authors: Authors,
) -> str | None:
    if not verify_approval(registry, approval):
        return "its signature does not verify with the signer's registered key"
    identity = registry.identities.get(approval.signer)
    if identity.status.value != "active":
        return f"{approval.signer}'s key was revoked"
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
    keys = {}
    for name in how:
        try:
            keys[registry.identities.get(name).key_fingerprint] = name
        except LedgerError:
            continue  # no identity, no key to recognise
    return Authors(how, keys)


def authors_of(registered_by: str, trained_by: str | None) -> dict[str, str]:
    """The people who may not review a version, each with what they did: whoever
    registered it and whoever trained it (separation of duties)."""
    found = {registered_by: "registered"}
    if trained_by is not None:
        found[trained_by] = "trained"
    return found


__all__ = ["Authors", "Tally", "authors", "authors_of", "roles_for", "tally", "verify_approval"]
