"""Evidence packs: everything behind one deployment, in one archive that verifies offline.

``export_pack`` writes a ``.tar.gz`` for what an environment runs (or ran at a moment)::

    MANIFEST.dsse.json          in-toto statement over every other file (sha256 each),
                                signed (DSSE) by the exporting identity
    keys.json                   every identity's public key, role and status
    adapter/...  adapter.sig    the adapter's files and its OpenSSF model-signing bundle
    attestations/provenance.json            SLSA provenance, signed by the trainer
    attestations/test-result-<run>.json     a Test Result per evaluation run
    training-run.json  datasets/<ref>.json  base-model.json
    evaluations/<run>.json  comparisons/<id>.json
    gate-check.json  approvals/<id>.json  deployments.json  policy.yaml (when unchanged)
    audit/events.jsonl  audit/checkpoint.json   the chain from the version's registration
                                                to a signed checkpoint
    ml-bom.cdx.json  model-card/README.md  trace.json  compliance.json  compliance.md

``verify_pack`` checks all of it with the public keys in the pack alone (or against keys
the auditor trusts, ``trusted``): the manifest signature and that the files are exactly
the signed ones (changed, added and removed files named); the adapter against its
model-signing bundle; each DSSE attestation and what it attests (files, results digest);
each approval's signature and separation of duties; the audit excerpt's hashes, links and
signed checkpoint, and that every record of the pack is in it; the ML-BOM against the
CycloneDX 1.6 schema. Nothing needs the registry or a network.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from loraledger.registry import Registry
from loraledger.registry.attestations import (
    new_statement,
    open_envelope,
    sign_statement,
    subject_digests,
)
from loraledger.registry.audit import canonical_json, utcnow, verify_excerpt
from loraledger.registry.evaluations import results_digest
from loraledger.registry.keys import verify_signature
from loraledger.registry.manifest import describe_differences
from loraledger.registry.models import (
    Approval,
    Checkpoint,
    Deployment,
    EvalRun,
    GateCheck,
    TrainingRun,
)
from loraledger.registry.permissions import Action
from loraledger.registry.signing import verify_directory
from pydantic import BaseModel, ConfigDict, ValidationError

from loraledger.atomic import write_atomically
from loraledger.errors import InputError, LedgerError, VerificationError

from .compliance import compliance_json, compliance_markdown
from .mlbom import ml_bom, validate_ml_bom
from .model_card import model_card
from .tally import authors_of

PACK_PREDICATE = "https://loraledger.dev/evidence-pack/v1"
MANIFEST = "MANIFEST.dsse.json"
MAX_PACK_BYTES = 8 * 1024**3


class PackCheck(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    passed: bool
    detail: str


class PackReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    pack: str
    environment: str | None
    adapter: str | None
    artifact_digest: str | None
    keys: dict[str, str]  # identity name -> key fingerprint the pack relied on
    checks: tuple[PackCheck, ...]

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)


# --- export --------------------------------------------------------------------------


def export_pack(
    registry: Registry,
    environment: str,
    out: Path,
    *,
    actor: str | None,
    at: datetime | None = None,
    policy_file: Path | None = None,
) -> Path:
    """Write the evidence pack of ``environment``'s deployment (now, or at ``at``) to
    ``out`` (written aside and renamed: never half a pack). Returns ``out``."""
    with registry.db.session():  # the trace, ML-BOM and model card read the same records
        return _export_pack(registry, environment, out, actor=actor, at=at, policy_file=policy_file)


def _export_pack(
    registry: Registry,
    environment: str,
    out: Path,
    *,
    actor: str | None,
    at: datetime | None,
    policy_file: Path | None,
) -> Path:
    from .release import DEFAULT_POLICY
    from .trace import trace_environment

    key = registry.act_as(actor, Action.EVIDENCE_EXPORT)
    if out.exists():
        raise InputError(f"{out} already exists; choose a new file name for the pack")
    trace = trace_environment(registry, environment, at)
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
        candidate = policy_file or DEFAULT_POLICY
        if candidate.is_file() and _sha256(candidate.read_bytes()) == gate.policy_sha256:
            put("policy.yaml", candidate.read_bytes())
    put("deployments.json", [d.model_dump(mode="json") for d in history])
    put("keys.json", _keys(registry))
    registration = registry.audit_events(
        action="adapter.register", subject=f"adapter:{version.ref}"
    )
    with registry.db.read() as conn:
        events, checkpoint = registry.audit.excerpt(conn, registration[0].seq)
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
            {"name": path, "digest": {"sha256": _sha256(data)}}
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
            "registered_by": version.created_by,
            "exported_by": key.name,
            "exported_at": created.isoformat(),
            "at": at.isoformat() if at else None,
        },
    )
    files[MANIFEST] = (json.dumps(sign_statement(statement, key), indent=2) + "\n").encode()
    _write_archive(out, files)
    with registry.change(key, Action.EVIDENCE_EXPORT) as change:
        change.record(
            "evidence.export",
            f"env:{environment}",
            {
                "deployment_id": deployment.id,
                "adapter": version.ref,
                "artifact_digest": version.digest,
                "pack_sha256": _sha256(out.read_bytes()),
                "files": len(files),
            },
        )
    return out


def _keys(registry: Registry) -> list[dict[str, Any]]:
    return [
        {
            "name": i.name,
            "role": i.role.value,
            "status": i.status.value,
            "key_fingerprint": i.key_fingerprint,
            "public_key_pem": i.public_key_pem,
            "revoked_at": i.revoked_at.isoformat() if i.revoked_at else None,
        }
        for i in registry.identities.list()
    ]


def _write_archive(out: Path, files: dict[str, bytes]) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    write_atomically(out, buffer.getvalue())


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- verify --------------------------------------------------------------------------


def read_pack(path: Path) -> dict[str, bytes]:
    """The files of a pack; refuses links, devices, unsafe names and duplicates."""
    if not path.is_file():
        raise InputError(f"no evidence pack at {path}; pass the .tar.gz `evidence export` wrote")
    files: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                name = member.name
                pure = PurePosixPath(name)
                if member.isdir():
                    continue
                if not member.isfile() or pure.is_absolute() or ".." in pure.parts:
                    raise VerificationError(
                        f"{path}: member {name!r} is not a plain file inside the pack; a pack "
                        "holds only regular files"
                    )
                if name in files:
                    raise VerificationError(f"{path}: member {name!r} appears twice")
                total += member.size
                if total > MAX_PACK_BYTES:
                    raise VerificationError(f"{path}: more than {MAX_PACK_BYTES} bytes unpacked")
                handle = archive.extractfile(member)
                assert handle is not None
                files[pure.as_posix()] = handle.read()
    except (tarfile.TarError, EOFError, OSError) as error:
        raise InputError(f"{path} is not a readable evidence pack ({error})") from None
    return files


def verify_pack(path: Path, trusted: dict[str, str] | None = None) -> PackReport:
    """Check every claim of the pack at ``path`` offline; see the module docstring.

    ``trusted`` (key fingerprint -> PEM) restricts the keys a signature may verify with
    to those the auditor trusts; by default the pack's own ``keys.json`` is used and its
    fingerprints are reported for comparison with the organisation's published keys.
    """
    files = read_pack(path)
    checks: list[PackCheck] = []
    context: dict[str, Any] = {}

    def check(name: str, body: Callable[[], str]) -> bool:
        try:
            checks.append(PackCheck(name=name, passed=True, detail=body()))
            return True
        except (LedgerError, ValidationError, KeyError, ValueError, TypeError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            if isinstance(error, KeyError):
                reason = f"{reason} is missing"
            checks.append(PackCheck(name=name, passed=False, detail=reason))
            return False

    def load(name: str) -> Any:
        if name not in files:
            raise VerificationError(f"{name} is missing from the pack")
        try:
            return json.loads(files[name])
        except ValueError:
            raise VerificationError(f"{name} is not valid JSON") from None

    def keys() -> str:
        entries = load("keys.json")
        by_name = {e["name"]: e for e in entries}
        for entry in entries:
            pem = entry["public_key_pem"]
            if trusted is not None and trusted.get(entry["key_fingerprint"]) != pem:
                continue
            context.setdefault("pem", {})[entry["name"]] = pem
            context.setdefault("fingerprints", {})[entry["key_fingerprint"]] = pem
            context.setdefault("name_of", {})[entry["key_fingerprint"]] = entry["name"]
        context["identities"] = by_name
        if not context.get("pem"):
            raise VerificationError("none of the pack's keys is among the trusted keys")
        return f"{len(context['pem'])} public keys" + (" (trusted)" if trusted else "")

    if not check("public keys", keys):
        return _report(path, context, checks)

    def opened(name: str) -> tuple[dict[str, Any], str]:
        """The statement in the DSSE envelope ``name``, verified, and who signed it."""
        envelope = load(name)
        statement = open_envelope(envelope, context["fingerprints"])
        return statement, context["name_of"][envelope["signatures"][0]["keyid"]]

    def manifest() -> str:
        statement, signer = opened(MANIFEST)
        if statement["predicateType"] != PACK_PREDICATE:
            raise VerificationError(f"the manifest's predicate is {statement['predicateType']}")
        listed = subject_digests(statement)
        actual = {name: _sha256(data) for name, data in files.items() if name != MANIFEST}
        differences = describe_differences(listed, actual)
        if differences:
            raise VerificationError(f"the pack's files are not the signed ones ({differences})")
        context["pack"] = statement["predicate"]
        return f"{len(listed)} files exactly as signed by {signer}"

    if not check("manifest", manifest):
        return _report(path, context, checks)
    pack = context["pack"]
    digest = pack["artifact_digest"]

    def adapter() -> str:
        adapter_files = {
            n[len("adapter/") :]: d for n, d in files.items() if n.startswith("adapter/")
        }
        with tempfile.TemporaryDirectory() as scratch:
            root = Path(scratch) / "adapter"
            for name, data in adapter_files.items():
                target = root / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            found = verify_directory(
                root,
                files["adapter.sig"],
                context["pem"][pack["adapter_signer"]],
                scratch=Path(scratch),
            )
        if found.digest != digest:
            raise VerificationError(f"the signed digest is {found.digest}, not the pack's {digest}")
        context["adapter_files"] = {n: _sha256(d) for n, d in adapter_files.items()}
        return (
            f"{pack['adapter']}: {len(adapter_files)} files match the model-signing bundle "
            f"of {pack['adapter_signer']}"
        )

    check("adapter signature", adapter)
    run = (
        TrainingRun.model_validate(load("training-run.json"))
        if "training-run.json" in files
        else None
    )

    def provenance() -> str:
        statement, signer = opened("attestations/provenance.json")
        if subject_digests(statement) != context.get("adapter_files"):
            raise VerificationError("its subjects are not the adapter's files")
        if run is None or signer != run.actor:
            raise VerificationError(f"signed by {signer}, not by the trainer")
        dependencies = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
        pinned = {d["name"]: d["digest"] for d in dependencies}
        for use in run.datasets:
            recorded = load(f"datasets/{use.ref}.json")
            if (
                pinned.get(use.ref) != {"sha256": recorded["file_sha256"]}
                or recorded["merkle_root"] != use.merkle_root
            ):
                raise VerificationError(f"dataset {use.ref} is not the one the provenance pins")
        base = load("base-model.json")
        if pinned.get(run.base_ref) != {"sha256": base["digest"]}:
            raise VerificationError(f"base {run.base_ref} is not the one the provenance pins")
        return (
            f"SLSA v1 signed by the trainer {signer}; base, {len(run.datasets)} dataset(s) pinned"
        )

    if run is not None or "attestations/provenance.json" in files:
        check("provenance attestation", provenance)
    runs: dict[str, EvalRun] = {}
    for name in sorted(n for n in files if n.startswith("evaluations/")):
        run_id = name.removeprefix("evaluations/").removesuffix(".json")

        def evaluation(run_id: str = run_id, name: str = name) -> str:
            evaluated = EvalRun.model_validate(load(name))
            statement, signer = opened(f"attestations/test-result-{run_id}.json")
            attested = statement["predicate"]["configuration"][1]["digest"]["sha256"]
            recomputed = results_digest(evaluated.metrics, evaluated.samples)
            if attested != recomputed or evaluated.results_sha256 != recomputed:
                raise VerificationError("the results are not the ones attested")
            if subject_digests(statement) != {evaluated.subject.ref: digest}:
                raise VerificationError("it attests another artifact")
            runs[run_id] = evaluated
            tests = statement["predicate"]
            return (
                f"{evaluated.suite_name}: {len(evaluated.samples)} samples as attested by "
                f"{signer} ({len(tests['passedTests'])} passed, {len(tests['failedTests'])} "
                "failed)"
            )

        check(f"evaluation {run_id[:8]}", evaluation)
    gate_check: GateCheck | None = None
    if "gate-check.json" in files:

        def gate() -> str:
            nonlocal gate_check
            gate_check = GateCheck.model_validate(load("gate-check.json"))
            if gate_check.artifact_digest != digest or not gate_check.passed:
                raise VerificationError("it is not a passing check of this artifact")
            return (
                f"passed {len(gate_check.rules)} rules for {gate_check.environment} under "
                f"policy sha256:{gate_check.policy_sha256[:16]}"
            )

        check("gate check", gate)
    approvals = [
        Approval.model_validate(load(n)) for n in sorted(files) if n.startswith("approvals/")
    ]
    for approval in approvals:

        def signed(approval: Approval = approval) -> str:
            pem = context["pem"].get(approval.signer)
            if pem is None or not verify_signature(
                pem, approval.signature, approval.payload.encode()
            ):
                raise VerificationError(f"the signature of {approval.signer} does not verify")
            payload = json.loads(approval.payload)
            if payload["artifact_digest"] != digest:
                raise VerificationError("it approves another artifact")
            if gate_check is not None and payload["inputs_sha256"] != gate_check.inputs_sha256:
                raise VerificationError("it saw other evidence than the promotion's gate check")
            if approval.signer in authors_of(pack["registered_by"], run.actor if run else None):
                raise VerificationError(f"{approval.signer} approved their own work")
            role = context["identities"][approval.signer]["role"]
            return f"{approval.decision} by {approval.signer} ({role}), independent of the authors"

        check(f"approval {approval.id[:8]}", signed)

    def deployments() -> str:
        history = [Deployment.model_validate(d) for d in load("deployments.json")]
        last = history[-1]
        if last.id != pack["deployment"]["id"] or last.artifact_digest != digest:
            raise VerificationError("its last entry is not the pack's deployment")
        return (
            f"{len(history)} deployments of {pack['environment']}; #{last.seq} {last.action} "
            f"by {last.created_by}"
        )

    check("deployment history", deployments)

    def audit() -> str:
        events = [json.loads(line) for line in files["audit/events.jsonl"].decode().splitlines()]
        checkpoint = Checkpoint.model_validate(load("audit/checkpoint.json"))
        if checkpoint.registry_id != pack["registry_id"]:
            raise VerificationError("the checkpoint belongs to another registry")
        verify_excerpt(events, checkpoint, context["pem"])
        payloads = [(e["action"], json.loads(e["payload"])) for e in events]

        def logged(action: str, **fields: Any) -> bool:
            return any(
                a == action and all(p.get(k) == v for k, v in fields.items()) for a, p in payloads
            )

        missing = []
        if not logged("adapter.register", digest=digest):
            missing.append("the registration")
        missing += [
            f"eval run {i[:8]}"
            for i, r in runs.items()
            if not logged("eval.run", run_id=i, results_sha256=r.results_sha256)
        ]
        if gate_check is not None and not logged(
            "gate.check", check_id=gate_check.id, inputs_sha256=gate_check.inputs_sha256
        ):
            missing.append("the gate check")
        missing += [
            f"approval {a.id[:8]}"
            for a in approvals
            if not logged(f"approval.{a.decision}", approval_id=a.id, signature=a.signature)
        ]
        deployment = pack["deployment"]
        if not logged(
            f"deploy.{deployment['action']}", deployment_id=deployment["id"], artifact_digest=digest
        ):
            missing.append("the deployment")
        if missing:
            raise VerificationError(f"not in the signed audit chain: {', '.join(missing)}")
        return (
            f"events #{events[0]['seq']}-#{checkpoint.seq} link up to the checkpoint signed "
            f"by {checkpoint.signer}; every record above is in them"
        )

    check("audit chain", audit)

    def bom() -> str:
        document = load("ml-bom.cdx.json")
        validate_ml_bom(document)
        properties = {
            p["name"]: p["value"] for p in document["metadata"]["component"].get("properties", [])
        }
        if properties.get("loraledger:artifact_digest") != digest:
            raise VerificationError("it describes another artifact")
        return "valid CycloneDX 1.6 with a model card"

    check("ML-BOM", bom)

    def compliance() -> str:
        entries = load("compliance.json")
        absent = sorted({f for e in entries for f in e["files"] if f not in files})
        if absent:
            raise VerificationError(f"it cites files not in the pack: {', '.join(absent)}")
        return f"{len(entries)} requirements mapped to the pack's files"

    check("compliance map", compliance)
    return _report(path, context, checks)


def _report(path: Path, context: dict[str, Any], checks: list[PackCheck]) -> PackReport:
    pack = context.get("pack", {})
    return PackReport(
        pack=str(path),
        environment=pack.get("environment"),
        adapter=pack.get("adapter"),
        artifact_digest=pack.get("artifact_digest"),
        keys={name: fpr for fpr, name in context.get("name_of", {}).items()},
        checks=tuple(checks),
    )


def trusted_keys(path: Path) -> dict[str, str]:
    """Trusted public keys from a ``keys.json`` (a pack's), or one key as printed by
    ``loraledger keys export-public NAME --json``."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(entries, dict):  # one key, as `keys export-public NAME --json` prints
            entries = [entries]
        return {e["key_fingerprint"]: e["public_key_pem"] for e in entries}
    except FileNotFoundError:
        raise InputError(f"no trusted keys file at {path}") from None
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(
            f"{path} is not a keys file (a JSON list of {{name, key_fingerprint, "
            f"public_key_pem}}): {error}"
        ) from None


__all__ = ["PackCheck", "PackReport", "export_pack", "read_pack", "trusted_keys", "verify_pack"]
