"""Verifying an evidence pack offline: the pack read into a typed :class:`Pack`, and one
named check function per claim, run in order by :func:`verify_pack`.

With the public keys in the pack alone (or the keys an auditor trusts), the checks are:
the public keys; the manifest signature and that the files are exactly the signed ones
(changed, added and removed files named); the exporter, who signed it, holds a role that
may export packs; the adapter against its model-signing bundle; each DSSE attestation
and what it attests (files, results digest); the gate check; each approval's signature,
signer's role and separation of duties; the deployment history, each record's signature
and its link to the one before; the decision -- the approvals and the gate check the
promotion cites are exactly the pack's, and as many people approved as the policy it
cites asks; the audit excerpt's hashes, links and signed checkpoint, and that every
record of the pack is in it as the pack has it; each approval and deployment signed with
a key valid at its place in that chain (the keys' history: the trusted keys file's when it
gives one, else ``keys.json``); the ML-BOM against the CycloneDX 1.6 schema; the
compliance map.
Nothing needs the registry or a network. The pack's format is
:mod:`loraledger.policies.evidence`'s.

A role is read from the trusted keys file when it gives one (``keys export-public NAME
--json`` and a pack's ``keys.json`` do), else from the pack's own ``keys.json`` -- which
whoever re-signed a pack could have written; the check's detail says which.
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

from loraledger.registry.attestations import open_envelope, subject_digests
from loraledger.registry.audit import verify_excerpt
from loraledger.registry.crosscheck import RESTORE
from loraledger.registry.deployments import check_signed
from loraledger.registry.evaluations import results_digest
from loraledger.registry.keys import verify_signature
from loraledger.registry.manifest import describe_differences
from loraledger.registry.models import (
    Approval,
    Checkpoint,
    Deployment,
    EvalRun,
    GateCheck,
    IdentityKey,
    KeyStatus,
    Role,
    TrainingRun,
)
from loraledger.registry.permissions import Action, roles_for
from loraledger.registry.signing import verify_directory
from pydantic import BaseModel, ConfigDict, ValidationError

from loraledger.errors import InputError, LedgerError, VerificationError
from loraledger.inputs import is_invisible, loads_json, read_text, regular_file
from loraledger.yamlfile import validated_bytes

from .mlbom import validate_ml_bom
from .release import ReleasePolicy
from .tally import authors_of
from .tally import roles_for as approving_roles

PACK_PREDICATE = "https://loraledger.dev/evidence-pack/v1"
MANIFEST = "MANIFEST.dsse.json"
MAX_PACK_BYTES = 2 * 1024**3  # unpacked, all members together (--max-pack-bytes)
_CHUNK = 1 << 20


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


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class TrustedKeys:
    """The public keys an auditor trusts (fingerprint -> PEM) and, where the file gives
    them, their holders' roles (fingerprint -> role) and where in the registry's chain
    each key was valid (fingerprint -> its entry, with ``added_seq`` and the rest)."""

    pem: dict[str, str]
    roles: dict[str, str] = field(default_factory=dict)
    places: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Pack:
    """A pack's files and what the checks established so far: the keys a signature may
    verify with, the signed manifest's predicate, the verified adapter files, and the
    typed records the later checks relate to each other."""

    files: dict[str, bytes]
    trusted: TrustedKeys | None = None
    pem: dict[str, list[str]] = field(default_factory=dict)  # identity name -> its PEMs
    fingerprints: dict[str, str] = field(default_factory=dict)  # fingerprint -> PEM
    name_of: dict[str, str] = field(default_factory=dict)  # fingerprint -> identity name
    identities: dict[str, dict[str, Any]] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)  # the signed predicate
    exporter: str = ""  # who signed the manifest
    adapter_files: dict[str, str] | None = None  # relpath -> sha256, once verified
    run: TrainingRun | None = None
    evaluations: dict[str, EvalRun] = field(default_factory=dict)  # verified, by run id
    gate_check: GateCheck | None = None
    approvals: list[Approval] = field(default_factory=list)
    deployments: list[Deployment] = field(default_factory=list)  # verified, in order
    events: list[dict[str, Any]] = field(default_factory=list)  # the verified excerpt
    places: dict[str, dict[str, Any]] = field(default_factory=dict)  # fingerprint -> entry

    @property
    def digest(self) -> str:
        return str(self.manifest["artifact_digest"])

    def load(self, name: str) -> Any:
        if name not in self.files:
            raise VerificationError(f"{name} is missing from the pack")
        try:  # strict: a key named twice would let the second hide the first
            return loads_json(self.files[name], path=name)
        except InputError as error:
            raise VerificationError(str(error)) from None

    def opened(self, name: str) -> tuple[dict[str, Any], str]:
        """The statement in the DSSE envelope ``name``, verified, and who signed it."""
        envelope = self.load(name)
        statement = open_envelope(envelope, self.fingerprints)
        return statement, self.name_of[envelope["signatures"][0]["keyid"]]

    def role(self, name: str) -> tuple[Role | None, str]:
        """``name``'s role and where it was read: the trusted keys file if it gives one,
        else the pack's own ``keys.json``."""
        entry = self.identities.get(name, {})
        fingerprint = entry.get("key_fingerprint")
        if self.trusted is not None and fingerprint in self.trusted.roles:
            return _role(self.trusted.roles[fingerprint]), "as the trusted keys say"
        return _role(entry.get("role")), "as the pack says"

    def keys_of(self, name: str) -> dict[str, str]:
        """``name``'s trusted public keys, by fingerprint (every key the person held)."""
        return {fp: pem for fp, pem in self.fingerprints.items() if self.name_of.get(fp) == name}


def _role(value: object) -> Role | None:
    return Role(value) if value in {r.value for r in Role} else None


def _may(pack: Pack, name: str, roles: frozenset[Role] | set[Role], what: str) -> str:
    """``name``'s role, if it is one of ``roles``; else the refusal saying so."""
    role, source = pack.role(name)
    if role is None or role not in roles:
        allowed = ", ".join(sorted(r.value for r in roles))
        raise VerificationError(
            f"{name}'s role is {role.value if role else 'not known'} ({source}); only the "
            f"roles {allowed} {what}"
        )
    return f"{role.value}, {source}"


# --- the checks, in the order verify_pack runs them --------------------------------------


def check_keys(pack: Pack) -> str:
    entries = pack.load("keys.json")
    for entry in entries:
        pem = entry["public_key_pem"]
        if pack.trusted is not None and pack.trusted.pem.get(entry["key_fingerprint"]) != pem:
            continue
        pack.pem.setdefault(entry["name"], []).append(pem)
        pack.fingerprints[entry["key_fingerprint"]] = pem
        pack.name_of[entry["key_fingerprint"]] = entry["name"]
        trusted_place = pack.trusted.places.get(entry["key_fingerprint"]) if pack.trusted else None
        if trusted_place is not None or "added_seq" in entry:
            pack.places[entry["key_fingerprint"]] = trusted_place or entry
    # a person with several keys has an entry per key, their first key's first
    pack.identities = {}
    for entry in entries:
        pack.identities.setdefault(entry["name"], entry)
    if not pack.pem:
        raise VerificationError("none of the pack's keys is among the trusted keys")
    return f"{len(pack.pem)} public keys" + (" (trusted)" if pack.trusted else "")


def check_manifest(pack: Pack) -> str:
    statement, signer = pack.opened(MANIFEST)
    if statement["predicateType"] != PACK_PREDICATE:
        raise VerificationError(f"the manifest's predicate is {statement['predicateType']}")
    listed = subject_digests(statement)
    actual = {name: sha256_hex(data) for name, data in pack.files.items() if name != MANIFEST}
    differences = describe_differences(listed, actual)
    if differences:
        raise VerificationError(f"the pack's files are not the signed ones ({differences})")
    pack.manifest = statement["predicate"]
    pack.exporter = signer
    return f"{len(listed)} files exactly as signed by {signer}"


def check_exporter(pack: Pack) -> str:
    role = _may(pack, pack.exporter, roles_for(Action.EVIDENCE_EXPORT), "export evidence packs")
    if pack.manifest.get("exported_by") != pack.exporter:
        raise VerificationError(
            f"the manifest says {pack.manifest.get('exported_by')} exported it; "
            f"{pack.exporter} signed it"
        )
    return f"{pack.exporter} ({role}) may export packs"


def check_adapter(pack: Pack) -> str:
    files = pack.files
    adapter_files = {n[len("adapter/") :]: d for n, d in files.items() if n.startswith("adapter/")}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "adapter"
        for name, data in adapter_files.items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        found = _verify_with_any(
            root, files["adapter.sig"], pack.pem[pack.manifest["adapter_signer"]], Path(scratch)
        )
    if found.digest != pack.digest:
        raise VerificationError(
            f"the signed digest is {found.digest}, not the pack's {pack.digest}"
        )
    pack.adapter_files = {n: sha256_hex(d) for n, d in adapter_files.items()}
    return (
        f"{pack.manifest['adapter']}: {len(adapter_files)} files match the model-signing "
        f"bundle of {pack.manifest['adapter_signer']}"
    )


def check_provenance(pack: Pack) -> str:
    statement, signer = pack.opened("attestations/provenance.json")
    run = pack.run
    if subject_digests(statement) != pack.adapter_files:
        raise VerificationError("its subjects are not the adapter's files")
    if run is None or signer != run.actor:
        raise VerificationError(f"signed by {signer}, not by the trainer")
    dependencies = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    pinned = {d["name"]: d["digest"] for d in dependencies}
    for use in run.datasets:
        recorded = pack.load(f"datasets/{use.ref}.json")
        if (
            pinned.get(use.ref) != {"sha256": recorded["file_sha256"]}
            or recorded["merkle_root"] != use.merkle_root
        ):
            raise VerificationError(f"dataset {use.ref} is not the one the provenance pins")
    base = pack.load("base-model.json")
    if pinned.get(run.base_ref) != {"sha256": base["digest"]}:
        raise VerificationError(f"base {run.base_ref} is not the one the provenance pins")
    return f"SLSA v1 signed by the trainer {signer}; base, {len(run.datasets)} dataset(s) pinned"


def check_evaluation(pack: Pack, run_id: str) -> str:
    evaluated = EvalRun.model_validate(pack.load(f"evaluations/{run_id}.json"))
    statement, signer = pack.opened(f"attestations/test-result-{run_id}.json")
    attested = statement["predicate"]["configuration"][1]["digest"]["sha256"]
    recomputed = results_digest(evaluated.metrics, evaluated.samples)
    if attested != recomputed or evaluated.results_sha256 != recomputed:
        raise VerificationError("the results are not the ones attested")
    if subject_digests(statement) != {evaluated.subject.ref: pack.digest}:
        raise VerificationError("it attests another artifact")
    pack.evaluations[run_id] = evaluated
    tests = statement["predicate"]
    return (
        f"{evaluated.suite_name}: {len(evaluated.samples)} samples as attested by "
        f"{signer} ({len(tests['passedTests'])} passed, {len(tests['failedTests'])} failed)"
    )


def check_gate(pack: Pack) -> str:
    pack.gate_check = check = GateCheck.model_validate(pack.load("gate-check.json"))
    if check.artifact_digest != pack.digest or not check.passed:
        raise VerificationError("it is not a passing check of this artifact")
    return (
        f"passed {len(check.rules)} rules for {check.environment} under "
        f"policy sha256:{check.policy_sha256[:16]}"
    )


def _verify_with_any(root: Path, bundle: bytes, pems: list[str], scratch: Path) -> Any:
    """The adapter directory verified with the first of the signer's keys that signed it."""
    for pem in pems[:-1]:
        try:
            return verify_directory(root, bundle, pem, scratch=scratch)
        except VerificationError:
            continue
    return verify_directory(root, bundle, pems[-1], scratch=scratch)


def check_approval(pack: Pack, approval: Approval) -> str:
    pem = pack.keys_of(approval.signer).get(approval.key_fingerprint)
    if pem is None or not verify_signature(pem, approval.signature, approval.payload.encode()):
        raise VerificationError(f"the signature of {approval.signer} does not verify")
    payload = json.loads(approval.payload)
    if payload["artifact_digest"] != pack.digest:
        raise VerificationError("it approves another artifact")
    gate_check = pack.gate_check
    if gate_check is not None and payload["inputs_sha256"] != gate_check.inputs_sha256:
        raise VerificationError("it saw other evidence than the promotion's gate check")
    trainer = pack.run.actor if pack.run else None
    if approval.signer in authors_of(pack.manifest["registered_by"], trainer):
        raise VerificationError(f"{approval.signer} approved their own work")
    role = _may(pack, approval.signer, roles_for(Action.APPROVE), "decide on a version")
    return f"{approval.decision} by {approval.signer} ({role}), independent of the authors"


def check_deployments(pack: Pack) -> str:
    history = [Deployment.model_validate(d) for d in pack.load("deployments.json")]
    last = history[-1]
    if last.id != pack.manifest["deployment"]["id"] or last.artifact_digest != pack.digest:
        raise VerificationError("its last entry is not the pack's deployment")
    for previous, deployment in zip([None, *history], history, strict=False):
        if deployment.environment != pack.manifest["environment"]:
            raise VerificationError(f"#{deployment.seq} is of {deployment.environment}")
        try:
            check_signed(deployment, previous, pack.keys_of(deployment.created_by))
        except VerificationError as error:  # said of a pack, not of a database
            raise VerificationError(str(error).replace(f"; {RESTORE}", "")) from None
    pack.deployments = history
    signed = sum(d.signature is not None for d in history)
    return (
        f"{len(history)} deployments of {pack.manifest['environment']} ({signed} signed, each "
        f"following the one before); #{last.seq} {last.action} by {last.created_by}"
    )


def _promotion(pack: Pack) -> Deployment | None:
    """The newest promotion of the pack's artifact in its verified deployment history:
    the decision the pack's approvals and gate check belong to."""
    promotions = [
        d for d in pack.deployments if d.action == "promote" and d.artifact_digest == pack.digest
    ]
    return promotions[-1] if promotions else None


def check_decision(pack: Pack) -> str:
    """The promotion that put this artifact in the environment cites exactly the pack's
    approvals and gate check, and as many people approved as the policy it cites asks."""
    promotion = _promotion(pack)
    gate, approvals = pack.gate_check, pack.approvals
    if promotion is None:
        if gate is not None or approvals:
            raise VerificationError("it holds a gate check or approvals that no promotion cites")
        return "no promotion of this artifact in the history: no decision to relate"
    where = f"promotion #{promotion.seq} by {promotion.created_by}"
    cited, held = set(promotion.approval_ids), {a.id for a in approvals}
    if cited - held:
        raise VerificationError(
            f"{where} cites approval(s) the pack lacks: {', '.join(sorted(cited - held))}"
        )
    if held - cited:
        raise VerificationError(
            f"the pack holds approval(s) {where} does not cite: {', '.join(sorted(held - cited))}"
        )
    if promotion.gate_check_id is None:
        if gate is not None:
            raise VerificationError(f"{where} cites no gate check, yet the pack holds one")
        return f"{where} cites no gate check and {len(cited)} approval(s)"
    if gate is None or gate.id != promotion.gate_check_id:
        raise VerificationError(
            f"{where} cites gate check {promotion.gate_check_id}, not the pack's"
        )
    if gate.environment != promotion.environment or gate.policy_sha256 != promotion.policy_sha256:
        raise VerificationError(f"the gate check was of another environment or policy than {where}")
    for approval in approvals:
        if (approval.environment, approval.artifact_digest) != (gate.environment, pack.digest):
            raise VerificationError(f"approval {approval.id} is of another environment or artifact")
    # people, never keys: a person's keys share a name; a key shared by two names (a
    # registry from before that was refused) is one person too
    people = {pack.name_of.get(a.key_fingerprint, a.signer) for a in approvals
              if a.decision == "approve"}  # fmt: skip
    detail = (
        f"{where} cites the pack's gate check and {len(cited)} approval(s) by {len(people)} people"
    )
    if "policy.yaml" not in pack.files:
        return detail + " (the policy it cites is not in the pack)"
    if sha256_hex(pack.files["policy.yaml"]) != gate.policy_sha256:
        raise VerificationError("policy.yaml is not the policy the gate check cites")
    try:
        policy, _, _ = validated_bytes(
            pack.files["policy.yaml"], ReleasePolicy, what="release policy", path="policy.yaml"
        )
    except InputError as error:
        raise VerificationError(f"it does not read as a release policy: {error}") from None
    if promotion.environment not in policy.environments:
        raise VerificationError(f"policy.yaml has no environment {promotion.environment!r}")
    rule = policy.rules_for(promotion.environment, promotion.name).policy.approvals
    if rule is None:
        return detail + f"; the policy asks no approval for {promotion.environment}"
    roles = approving_roles(rule)
    for approval in approvals:
        _may(pack, approval.signer, roles, f"count for {promotion.environment}")
    if len(people) < rule.count:
        raise VerificationError(
            f"the policy asks {rule.count} approvals for {promotion.environment}; the pack "
            f"holds {len(people)}"
        )
    return detail + f"; the policy asks {rule.count}"


def check_audit(pack: Pack) -> str:
    digest = pack.digest
    lines = pack.files["audit/events.jsonl"].decode().splitlines()
    events = [
        loads_json(line, path="audit/events.jsonl", line=n) for n, line in enumerate(lines, 1)
    ]
    checkpoint = Checkpoint.model_validate(pack.load("audit/checkpoint.json"))
    if checkpoint.registry_id != pack.manifest["registry_id"]:
        raise VerificationError("the checkpoint belongs to another registry")
    verify_excerpt(events, checkpoint, pack.pem)
    pack.events = events
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
        for i, r in pack.evaluations.items()
        if not logged("eval.run", run_id=i, results_sha256=r.results_sha256)
    ]
    gate_check = pack.gate_check
    if gate_check is not None and not logged(
        "gate.check", check_id=gate_check.id, inputs_sha256=gate_check.inputs_sha256
    ):
        missing.append("the gate check")
    missing += [
        f"approval {a.id[:8]}"
        for a in pack.approvals
        if not logged(f"approval.{a.decision}", approval_id=a.id, signature=a.signature)
    ]
    # the deployment, and the promotion the decision check read, as the pack has them
    promotion = _promotion(pack)
    read = [*([promotion] if promotion else []), *pack.deployments[-1:]]
    for deployment in {d.id: d for d in read}.values():
        if not logged(
            f"deploy.{deployment.action}",
            deployment_id=deployment.id,
            artifact_digest=digest,
            approval_ids=list(deployment.approval_ids),
            gate_check_id=deployment.gate_check_id,
        ):
            missing.append(f"deployment #{deployment.seq} as the pack has it")
    deployment = pack.manifest["deployment"]
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


def check_key_places(pack: Pack) -> str:
    """Each approval and deployment was signed with a key valid at its place in the
    chain (the event recording it, in the verified excerpt), as the keys' history says --
    the trusted keys file's when it gives one, else the pack's ``keys.json``: a reviewer
    who has since left still approved; a key declared stolen before then did not."""
    placed: list[tuple[str, str, int]] = []  # (what, key fingerprint, seq)
    for event in pack.events:
        payload = json.loads(event["payload"])
        seq = int(event["seq"])
        if event["action"].startswith("approval."):
            placed += [
                (f"approval {a.id[:8]}", a.key_fingerprint, seq)
                for a in pack.approvals
                if payload.get("approval_id") == a.id
            ]
        if event["action"].startswith("deploy."):
            placed += [
                (f"deployment #{d.seq}", d.key_fingerprint, seq)
                for d in pack.deployments
                if payload.get("deployment_id") == d.id and d.key_fingerprint
            ]
    judged = unjudged = 0
    for what, fingerprint, seq in placed:
        entry = pack.places.get(fingerprint)
        if entry is None:
            unjudged += 1  # a pack (or keys file) from before keys had histories
            continue
        key = _placed_key(fingerprint, entry)
        problem = key.problem_at(seq)
        if problem is not None:
            raise VerificationError(
                f"{what} was signed with a key not valid at event #{seq}: {problem}"
            )
        judged += 1
    return f"{judged} signatures valid at their place in the chain" + (
        f"; {unjudged} not judged (keys without a history: an earlier release's)"
        if unjudged
        else ""
    )


def _placed_key(fingerprint: str, entry: dict[str, Any]) -> IdentityKey:
    """A key's history as a keys file gives it (``keys.json``, ``keys export-public``)."""
    fields = set(IdentityKey.model_fields) - {"key_fingerprint", "status"}
    return IdentityKey.model_validate(
        {
            **{k: v for k, v in entry.items() if k in fields},
            "key_fingerprint": fingerprint,
            "public_key_pem": str(entry.get("public_key_pem", "")),
            "label": str(entry.get("label") or ""),
            "added_by": str(entry.get("added_by") or ""),
            "status": entry.get("key_status") or KeyStatus.ACTIVE,
        }
    )


def check_bom(pack: Pack) -> str:
    document = pack.load("ml-bom.cdx.json")
    validate_ml_bom(document)
    component = document["metadata"]["component"]
    properties = {p["name"]: p["value"] for p in component.get("properties", [])}
    if properties.get("loraledger:artifact_digest") != pack.digest:
        raise VerificationError("it describes another artifact")
    return "valid CycloneDX 1.6 with a model card"


def check_compliance(pack: Pack) -> str:
    entries = pack.load("compliance.json")
    absent = sorted({f for e in entries for f in e["files"] if f not in pack.files})
    if absent:
        raise VerificationError(f"it cites files not in the pack: {', '.join(absent)}")
    return f"{len(entries)} requirements mapped to the pack's files"


# --- running them ---------------------------------------------------------------------


def read_pack(path: Path, *, max_bytes: int = MAX_PACK_BYTES) -> dict[str, bytes]:
    """The files of a pack, by normalised name (``./keys.json`` is ``keys.json``);
    refuses links, devices, unsafe or invisible names, duplicates after normalising, and
    more than ``max_bytes`` unpacked -- judged by each member's header before it is read,
    then by what is actually read, chunk by chunk."""
    regular_file(path, what="evidence pack")
    files: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                name = member.name
                pure = PurePosixPath(name)
                if member.isdir():
                    continue
                if (
                    not member.isfile()
                    or pure.is_absolute()
                    or ".." in pure.parts
                    or any(is_invisible(c) for c in name)
                ):
                    raise VerificationError(
                        f"{path}: member {name.encode('unicode_escape').decode()!r} is not a "
                        "plain file with a plain name inside the pack; a pack holds only "
                        "regular files"
                    )
                normal = pure.as_posix()
                if normal in files:
                    raise VerificationError(
                        f"{path}: member {normal!r} appears twice (as {name!r} too); a pack "
                        "names each file once"
                    )
                if total + member.size > max_bytes:
                    raise VerificationError(
                        f"{path}: member {normal!r} ({member.size:,} bytes) takes the pack past "
                        f"{max_bytes:,} bytes unpacked; raise --max-pack-bytes if it is expected"
                    )
                handle = archive.extractfile(member)
                assert handle is not None
                chunks = []
                while chunk := handle.read(_CHUNK):
                    total += len(chunk)
                    if total > max_bytes:  # (a header that understated the size)
                        raise VerificationError(
                            f"{path}: more than {max_bytes:,} bytes unpacked; raise "
                            "--max-pack-bytes if it is expected"
                        )
                    chunks.append(chunk)
                files[normal] = b"".join(chunks)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise InputError(f"{path} is not a readable evidence pack ({error})") from None
    return files


def verify_pack(
    path: Path, trusted: TrustedKeys | None = None, *, max_bytes: int = MAX_PACK_BYTES
) -> PackReport:
    """Check every claim of the pack at ``path`` offline; see the module docstring.

    ``trusted`` restricts the keys a signature may verify with to those the auditor
    trusts, and gives their holders' roles where it knows them; by default the pack's own
    ``keys.json`` is used and its fingerprints are reported for comparison with the
    organisation's published keys. Without verified keys or manifest nothing else is
    checked.
    """
    pack = Pack(read_pack(path, max_bytes=max_bytes), trusted)
    checks: list[PackCheck] = []

    def run(name: str, check: Callable[[], str]) -> bool:
        try:
            checks.append(PackCheck(name=name, passed=True, detail=check()))
            return True
        except (LedgerError, ValidationError, KeyError, ValueError, TypeError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            if isinstance(error, KeyError):
                reason = f"{reason} is missing"
            checks.append(PackCheck(name=name, passed=False, detail=reason))
            return False

    if not run("public keys", partial(check_keys, pack)) or not run(
        "manifest", partial(check_manifest, pack)
    ):
        return _report(path, pack, checks)
    run("exporter", partial(check_exporter, pack))
    run("adapter signature", partial(check_adapter, pack))
    if "training-run.json" in pack.files:
        pack.run = TrainingRun.model_validate(pack.load("training-run.json"))
    if pack.run is not None or "attestations/provenance.json" in pack.files:
        run("provenance attestation", partial(check_provenance, pack))
    for name in sorted(n for n in pack.files if n.startswith("evaluations/")):
        run_id = name.removeprefix("evaluations/").removesuffix(".json")
        run(f"evaluation {run_id[:8]}", partial(check_evaluation, pack, run_id))
    if "gate-check.json" in pack.files:
        run("gate check", partial(check_gate, pack))
    pack.approvals = [
        Approval.model_validate(pack.load(n))
        for n in sorted(pack.files)
        if n.startswith("approvals/")
    ]
    for approval in pack.approvals:
        run(f"approval {approval.id[:8]}", partial(check_approval, pack, approval))
    if run("deployment history", partial(check_deployments, pack)):
        run("decision", partial(check_decision, pack))
    if run("audit chain", partial(check_audit, pack)):
        run("keys at their place", partial(check_key_places, pack))
    run("ML-BOM", partial(check_bom, pack))
    run("compliance map", partial(check_compliance, pack))
    return _report(path, pack, checks)


def _report(path: Path, pack: Pack, checks: list[PackCheck]) -> PackReport:
    manifest = pack.manifest
    return PackReport(
        pack=str(path),
        environment=manifest.get("environment"),
        adapter=manifest.get("adapter"),
        artifact_digest=manifest.get("artifact_digest"),
        keys={name: fpr for fpr, name in pack.name_of.items()},
        checks=tuple(checks),
    )


def trusted_keys(path: Path) -> TrustedKeys:
    """Trusted public keys, with their holders' roles where given, from a ``keys.json``
    (a pack's), or one person's keys as ``loraledger keys export-public NAME --json``
    prints them."""
    try:
        entries = loads_json(read_text(path, what="keys file"), path=path)
        if isinstance(entries, dict):  # a person, as `keys export-public NAME --json` prints
            entries = [entries, *({**k, "role": entries.get("role")}
                                  for k in entries.get("keys") or ())]  # fmt: skip
        return TrustedKeys(
            pem={e["key_fingerprint"]: e["public_key_pem"] for e in entries},
            roles={e["key_fingerprint"]: e["role"] for e in entries if e.get("role")},
            places={e["key_fingerprint"]: e for e in entries if "added_seq" in e},
        )
    except FileNotFoundError:
        raise InputError(f"no trusted keys file at {path}") from None
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(
            f"{path} is not a keys file (a JSON list of {{name, key_fingerprint, "
            f"public_key_pem}}): {error}"
        ) from None


__all__ = [
    "MANIFEST",
    "PACK_PREDICATE",
    "Pack",
    "PackCheck",
    "PackReport",
    "TrustedKeys",
    "check_adapter",
    "check_approval",
    "check_audit",
    "check_bom",
    "check_compliance",
    "check_decision",
    "check_deployments",
    "check_evaluation",
    "check_exporter",
    "check_gate",
    "check_keys",
    "check_manifest",
    "check_provenance",
    "read_pack",
    "trusted_keys",
    "verify_pack",
]
