"""The signed attestations of a version, ready to hand to in-toto / SLSA tooling.

Each envelope is verified with its signer's registered key before it leaves the registry,
so an export never carries an attestation that would not verify.
"""

from __future__ import annotations

from typing import Any

from loraledger.registry import Registry

from loraledger.errors import NotFound


def provenance_envelope(registry: Registry, ref: str) -> dict[str, Any]:
    """The SLSA Provenance v1 DSSE envelope the trainer signed for ``ref``."""
    version = registry.adapters.get(ref)
    found = registry.attestations.list(subject=version.ref, kind="provenance")
    if not found:
        raise NotFound(
            f"{version.ref} has no provenance attestation: it was registered from elsewhere, "
            "not trained by `loraledger train`; only trained versions carry one"
        )
    registry.attestations.verify(found[-1])
    return found[-1].envelope


def evaluation_envelopes(registry: Registry, ref: str) -> list[dict[str, Any]]:
    """The Test Result DSSE envelope of every complete evaluation run of ``ref``."""
    envelopes = []
    for run in registry.evaluations.list(ref, status="complete"):
        for attestation in registry.attestations.list(subject=run.id):
            registry.attestations.verify(attestation)
            envelopes.append(attestation.envelope)
    if not envelopes:
        raise NotFound(f"{ref} has no complete evaluation run; run `loraledger eval {ref}` first")
    return envelopes


__all__ = ["evaluation_envelopes", "provenance_envelope"]
