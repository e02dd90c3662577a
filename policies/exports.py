"""The signed attestations of a version, ready to hand to in-toto / SLSA tooling.

Each envelope is verified with its signer's registered key before it leaves the registry,
so an export never carries an attestation that would not verify.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Document:
    """One standard document about a version, as ``loraledger export NAME`` and the
    dashboard's downloads write it."""

    name: str
    help: str
    file_name: str  # with {ref} for the version
    media_type: str
    render: Callable[[Registry, str], str]

    def file_for(self, ref: str) -> str:
        return self.file_name.format(ref=ref.replace("@", "-"))


def _provenance(registry: Registry, ref: str) -> str:
    return json.dumps(provenance_envelope(registry, ref), indent=2) + "\n"


def _test_results(registry: Registry, ref: str) -> str:
    return "".join(
        json.dumps(e, sort_keys=True) + "\n" for e in evaluation_envelopes(registry, ref)
    )


def _ml_bom(registry: Registry, ref: str) -> str:
    from loraledger.policies.mlbom import ml_bom

    return json.dumps(ml_bom(registry, ref), indent=2) + "\n"


def _model_card(registry: Registry, ref: str) -> str:
    from loraledger.policies.model_card import model_card

    return model_card(registry, ref)


DOCUMENTS = {
    d.name: d
    for d in (
        Document("provenance", "The SLSA Provenance v1 attestation (a DSSE envelope) the "
                 "trainer signed.", "{ref}.provenance.dsse.json", "application/json",
                 _provenance),
        Document("test-results", "Every evaluation run's signed in-toto Test Result, as JSON "
                 "Lines of DSSE envelopes.", "{ref}.test-results.dsse.jsonl",
                 "application/jsonl", _test_results),
        Document("ml-bom", "A CycloneDX 1.6 ML-BOM with a model card, validated against the "
                 "schema.", "{ref}.cdx.json", "application/vnd.cyclonedx+json", _ml_bom),
        Document("model-card", "A Hugging Face style model card (README.md with metadata and "
                 "results).", "{ref}.README.md", "text/markdown", _model_card),
    )
}  # fmt: skip


__all__ = ["DOCUMENTS", "Document", "evaluation_envelopes", "provenance_envelope"]
