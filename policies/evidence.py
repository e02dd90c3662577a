"""Evidence packs: everything behind one deployment, in one archive that verifies offline.

``export_pack`` writes a ``.tar.gz`` for what an environment runs (or ran at a moment)::

    MANIFEST.dsse.json          in-toto statement over every other file (sha256 each),
                                signed (DSSE) by the exporting identity
    keys.json                   every identity's keys: role, status, where each was valid
    adapter/...  adapter.sig    the adapter's files and its OpenSSF model-signing bundle
    attestations/provenance.json            SLSA provenance, signed by the trainer
    attestations/test-result-<run>.json     a Test Result per evaluation run
    training-run.json  datasets/<ref>.json  base-model.json
    evaluations/<run>.json  comparisons/<id>.json
    gate-check.json  approvals/<id>.json  deployments.json  policy.yaml (when unchanged)
    audit/events.jsonl  audit/checkpoint.json   the chain from the version's registration
                                                to a signed checkpoint
    ml-bom.cdx.json  model-card/README.md  trace.json  compliance.json  compliance.md

``verify_pack`` (:mod:`loraledger.policies.pack_checks`, re-exported here) checks all of
it offline, one named check per claim, with the public keys in the pack alone or the keys
an auditor trusts.
"""

from __future__ import annotations

import io
import json
import tarfile
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from loraledger.registry import Registry
from loraledger.registry.attestations import (
    new_statement,
    sign_statement,
)
from loraledger.registry.audit import canonical_json, utcnow
from loraledger.registry.permissions import Action
from loraledger.registry.trust import key_history

from loraledger.atomic import write_atomically
from loraledger.errors import InputError
from loraledger.paths import output_file

from .compliance import compliance_json, compliance_markdown
from .mlbom import ml_bom
from .model_card import model_card
from .pack_checks import (
    MANIFEST,
    PACK_PREDICATE,
    PackCheck,
    PackReport,
    read_pack,
    sha256_hex,
    trusted_keys,
    verify_pack,
)

# --- export --------------------------------------------------------------------------


def export_pack(
    registry: Registry,
    environment: str,
    out: Path,
    *,
    actor: str | None,
    at: datetime | None = None,
    policy_file: Path | None = None,
    name: str | None = None,
) -> Path:
    """Write the evidence pack of ``environment``'s deployment of adapter ``name`` (None:
    of the one adapter it runs), now or at ``at``, to ``out`` (written aside and renamed:
    never half a pack). Returns ``out``."""
    output_file(out)
    with registry.db.session():  # the trace, ML-BOM and model card read the same records
        return _export_pack(
            registry, environment, out, actor=actor, at=at, policy_file=policy_file, name=name
        )


def _export_pack(
    registry: Registry,
    environment: str,
    out: Path,
    *,
    actor: str | None,
    at: datetime | None,
    policy_file: Path | None,
    name: str | None,
) -> Path:
    from .release import DEFAULT_POLICY
    from .trace import trace_environment

    key = registry.act_as(actor, Action.EVIDENCE_EXPORT)
    if out.exists():
        raise InputError(f"{out} already exists; choose a new file name for the pack")
    trace = trace_environment(registry, environment, at, name=name)
    deployment = trace.deployment
    assert deployment is not None
    version = registry.adapters.get(deployment.adapter)
    history = [d for d in registry.deployments.history(environment) if d.seq <= deployment.seq]
    promotion = next(
        (
            d
            for d in reversed(history)
            if d.action == "promote" and d.artifact_digest == version.digest
        ),
        None,
    )
    files: dict[str, bytes] = {}

    def put(path: str, value: Any) -> None:
        if isinstance(value, bytes):
            files[path] = value
        elif isinstance(value, str):
            files[path] = value.encode("utf-8")
        else:
            files[path] = (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8")

    with tempfile.TemporaryDirectory(dir=registry.store.tmp) as scratch:
        registry.adapters.fetch(version.ref, Path(scratch) / "adapter")  # verified copy
        for entry in version.files:
            put(f"adapter/{entry.path}", (Path(scratch) / "adapter" / entry.path).read_bytes())
    put("adapter.sig", registry.adapters.signature(version.ref))
    run = registry.adapters.training_run(version.ref)
    if run is not None:
        put("training-run.json", run.model_dump(mode="json"))
        base = registry.base_models.get(run.base_ref)
        put("base-model.json", base.model_dump(mode="json"))
        for use in run.datasets:
            put(f"datasets/{use.ref}.json", registry.datasets.get(use.ref).model_dump(mode="json"))
    for attestation in registry.attestations.list(subject=version.ref, kind="provenance"):
        put("attestations/provenance.json", attestation.envelope)
    for summary in registry.evaluations.list(version.ref, status="complete"):
        put(
            f"evaluations/{summary.id}.json",
            registry.evaluations.get(summary.id).model_dump(mode="json"),
        )
        for attestation in registry.attestations.list(subject=summary.id):
            put(f"attestations/test-result-{summary.id}.json", attestation.envelope)
    if promotion is not None and promotion.gate_check_id:
        gate = registry.gate_checks.get(promotion.gate_check_id)
        put("gate-check.json", gate.model_dump(mode="json"))
        wanted = set(promotion.approval_ids)
        approvals = [a for a in registry.approvals.list(version.ref) if a.id in wanted]
        for approval in approvals:
            put(f"approvals/{approval.id}.json", approval.model_dump(mode="json"))
        for rule in gate.rules:
            comparison_id = rule.evidence.get("comparison_id")
            if comparison_id:
                comparison = registry.evaluations.comparison(comparison_id)
                put(f"comparisons/{comparison_id}.json", comparison.model_dump(mode="json"))
        in_force = registry.policies.with_sha256(gate.policy_sha256)
        candidate = policy_file or DEFAULT_POLICY  # a check made before policies were records
        if in_force is not None:
            put("policy.yaml", in_force.text)
        elif candidate.is_file() and sha256_hex(candidate.read_bytes()) == gate.policy_sha256:
            put("policy.yaml", candidate.read_bytes())
    put("deployments.json", [d.model_dump(mode="json") for d in history])
    put("keys.json", _keys(registry))
    registration = registry.adapters.registration(version.ref)
    with registry.db.read() as conn:
        events, checkpoint = registry.audit.excerpt(conn, registration.seq)
    put("audit/events.jsonl", "".join(canonical_json(e) + "\n" for e in events))
    put("audit/checkpoint.json", checkpoint.model_dump(mode="json"))
    put("ml-bom.cdx.json", ml_bom(registry, version.ref))
    put("model-card/README.md", model_card(registry, version.ref))
    put("trace.json", trace.model_dump(mode="json"))
    listed = sorted([*files, "compliance.json", "compliance.md"])
    compliance = compliance_json(listed)
    put("compliance.json", compliance)
    put(
        "compliance.md",
        compliance_markdown(compliance, f"Compliance map: {version.ref} in {environment}"),
    )
    created = utcnow()
    statement = new_statement(
        [
            {"name": path, "digest": {"sha256": sha256_hex(data)}}
            for path, data in sorted(files.items())
        ],
        PACK_PREDICATE,
        {
            "registry_id": registry.registry_id,
            "environment": environment,
            "deployment": deployment.model_dump(mode="json"),
            "adapter": version.ref,
            "artifact_digest": version.digest,
            "adapter_signer": version.signer,
            "registered_by": registry.adapters.registration(version.ref).actor,
            "exported_by": key.name,
            "exported_at": created.isoformat(),
            "at": at.isoformat() if at else None,
        },
    )
    files[MANIFEST] = (json.dumps(sign_statement(statement, key), indent=2) + "\n").encode()
    archive = _archive(files)
    # recorded first, then written: a refused export leaves no file behind. A read-only
    # database account (an auditor's) records nothing: the pack is signed by its key and
    # verifies offline all the same (docs/deployment.md says why reads are not recorded)
    if registry.may_append():
        with registry.change(key, Action.EVIDENCE_EXPORT) as change:
            change.record(
                "evidence.export",
                f"env:{environment}",
                {
                    "deployment_id": deployment.id,
                    "adapter": version.ref,
                    "artifact_digest": version.digest,
                    "pack_sha256": sha256_hex(archive),
                    "files": len(files),
                },
            )
    write_atomically(out, archive)
    return out


def _keys(registry: Registry) -> list[dict[str, Any]]:
    """An entry per key (a person with several keys has several, their first key first)."""
    return [
        {
            "name": i.name,
            "role": i.role.value,
            "status": i.status.value,
            "key_fingerprint": k.key_fingerprint,
            "public_key_pem": k.public_key_pem,
            "revoked_at": i.revoked_at.isoformat() if i.revoked_at else None,
            **key_history(k),
        }
        for i in registry.identities.list()
        for k in i.keys
    ]


def _archive(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


__all__ = ["PackCheck", "PackReport", "export_pack", "read_pack", "trusted_keys", "verify_pack"]
