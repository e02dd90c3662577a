"""The compliance map: which record answers which requirement.

One table, used twice: docs/compliance.md shows it (a test keeps the two in step) and
every evidence pack carries it (``compliance.json`` and ``compliance.md``) with the pack's
own files filled in, so a compliance reviewer can hand a pack to an auditor as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Requirement:
    id: str
    framework: str
    text: str
    answer: str  # which records answer it, and how they are verified
    pack_files: tuple[str, ...]  # glob patterns of the evidence-pack files that carry them


REQUIREMENTS: tuple[Requirement, ...] = (
    Requirement(
        "EU-AI-Act-Art-12",
        "EU AI Act",
        "Record-keeping: automatic recording of events (logs) over the system's lifetime.",
        "Every change is an event in a hash-chained audit log whose head is signed by the "
        "acting identity (checkpoints); refusals are logged too. The pack holds the chain "
        "from the version's registration to a signed checkpoint, checked offline.",
        ("audit/events.jsonl", "audit/checkpoint.json"),
    ),
    Requirement(
        "EU-AI-Act-Annex-IV-2d",
        "EU AI Act",
        "Technical documentation: training data provenance, scope and characteristics "
        "(data sheets, how data was obtained, selected and cleaned).",
        "Dataset versions pinned by file sha256 and RFC 9162 Merkle root, with source, "
        "license and PII findings; the SLSA provenance the trainer signed names each one, "
        "the base model and the code commit.",
        ("training-run.json", "datasets/*.json", "base-model.json", "attestations/provenance.json"),
    ),
    Requirement(
        "EU-AI-Act-Annex-IV-2g",
        "EU AI Act",
        "Technical documentation: validation and testing procedures, metrics used, and test "
        "logs and reports dated and signed by the responsible persons.",
        "Each evaluation run (suite digest, settings, every scored sample) with an in-toto "
        "Test Result attestation signed by the identity that ran it; paired comparisons "
        "with their statistics.",
        ("evaluations/*.json", "attestations/test-result-*.json", "comparisons/*.json"),
    ),
    Requirement(
        "EU-AI-Act-Annex-IV-6",
        "EU AI Act",
        "Technical documentation: relevant changes made to the system through its lifecycle.",
        "The environment's whole deployment history (promotions and rollbacks: who, when, "
        "why, which digest), the gate check under the policy in force and the signed "
        "approvals.",
        ("deployments.json", "gate-check.json", "approvals/*.json", "policy.yaml"),
    ),
    Requirement(
        "EU-AI-Act-Annex-IV-9",
        "EU AI Act",
        "Technical documentation: the post-market monitoring plan.",
        "`loraledger monitor --env ENV` re-runs the policy suites the promotion was judged "
        "on and compares paired results with those; alerts are audit events. Monitoring "
        "results recorded so far are in the audit excerpt (monitor.ok / monitor.alert).",
        ("audit/events.jsonl", "compliance.md"),
    ),
    Requirement(
        "EU-AI-Act-Art-72",
        "EU AI Act",
        "Post-market monitoring: actively collect and analyse data on performance over the "
        "system's lifetime.",
        "Monitoring runs re-evaluate exactly the deployed, verified artifact with the same "
        "suites and settings and record a paired verdict against the promotion's baseline.",
        ("audit/events.jsonl", "evaluations/*.json"),
    ),
    Requirement(
        "NIST-AI-RMF-MEASURE-1.3",
        "NIST AI RMF",
        "Internal experts who did not serve as front-line developers and/or independent "
        "assessors are involved in regular assessments and updates.",
        "Separation of duties: the library refuses an approval by whoever trained or "
        "registered the version (audited); each approval is signed by a reviewer's own key "
        "and counts only while current.",
        ("approvals/*.json", "training-run.json", "keys.json"),
    ),
    Requirement(
        "NIST-AI-RMF-MANAGE-2.4",
        "NIST AI RMF",
        "Mechanisms are in place and applied to supersede, disengage, or deactivate AI "
        "systems that demonstrate performance or outcomes inconsistent with intended use.",
        "One-step rollback to a previously deployed, re-verified version (`loraledger "
        "rollback`), recorded with its reason; `loraledger sync` puts back the exact bytes.",
        ("deployments.json", "audit/events.jsonl"),
    ),
)


def compliance_json(files: list[str]) -> list[dict[str, Any]]:
    """The map with, for each requirement, the pack files that answer it."""
    from fnmatch import fnmatch

    return [
        {
            "id": r.id,
            "framework": r.framework,
            "requirement": r.text,
            "answered_by": r.answer,
            "files": sorted(f for f in files if any(fnmatch(f, p) for p in r.pack_files)),
        }
        for r in REQUIREMENTS
    ]


def compliance_markdown(entries: list[dict[str, Any]], heading: str) -> str:
    lines = [f"# {heading}", "", "| Requirement | What answers it | Files |", "|---|---|---|"]
    for entry in entries:
        files = ", ".join(f"`{f}`" for f in entry["files"]) or "(none in this pack)"
        lines.append(
            f"| **{entry['id']}** ({entry['framework']}): {entry['requirement']} "
            f"| {entry['answered_by']} | {files} |"
        )
    return "\n".join(lines) + "\n"


__all__ = ["REQUIREMENTS", "Requirement", "compliance_json", "compliance_markdown"]
