"""Exports and evidence packs on a real promotion of a trained adapter: the ML-BOM against
the CycloneDX 1.6 schema, the model card's metadata, and a pack that verifies offline --
and stops verifying when any file is changed, added or removed."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from loraledger.harness.evaluate import EvalOptions, evaluate
from loraledger.policies.approvals import decide
from loraledger.policies.compliance import REQUIREMENTS
from loraledger.policies.deployments import promote, rollback
from loraledger.policies.evidence import export_pack, read_pack, trusted_keys, verify_pack
from loraledger.policies.exports import evaluation_envelopes, provenance_envelope
from loraledger.policies.mlbom import ml_bom, validate_ml_bom
from loraledger.policies.model_card import model_card
from loraledger.policies.pack_checks import Pack
from loraledger.registry import Registry
from loraledger.registry.attestations import open_envelope, sign_statement
from loraledger.registry.keys import SigningKey

from loraledger.errors import Conflict, InputError, NotFound, PermissionDenied, VerificationError
from tests.conftest import ADMIN, AUDITOR, ENGINEER, REVIEWER, clone_registry
from tests.harness.conftest import PLAIN, WILD, eval_registry  # noqa: F401  (fixture)
from tests.policies.helpers import POLICY, use_policy
from tests.registry.helpers import refusals, sql

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def released(eval_registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PLAIN[0] then PLAIN[1] promoted to staging, then rolled back to PLAIN[0]."""
    policy = tmp_path_factory.mktemp("policy") / "release.yaml"
    policy.write_text(POLICY)
    use_policy(eval_registry, policy)
    evaluate(eval_registry, list(PLAIN), "sanity", actor=ENGINEER, options=EvalOptions(limit=3))
    for ref in PLAIN:
        decide(eval_registry, ref, "staging", "approve", comment="ok", actor=REVIEWER,
               policy=policy)  # fmt: skip
        promote(eval_registry, ref, "staging", actor=REVIEWER, policy=policy)
    rollback(eval_registry, "staging", reason="v2 answers worse", actor=REVIEWER)
    return policy


@pytest.fixture(scope="module")
def pack(eval_registry: Registry, released: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pack") / "staging.tar.gz"
    return export_pack(eval_registry, "staging", out, actor=AUDITOR, policy_file=released)


def test_ml_bom_is_valid_cyclonedx_with_a_model_card(
    eval_registry: Registry, released: Path
) -> None:
    document = ml_bom(eval_registry, PLAIN[0])
    validate_ml_bom(document)  # the library's own CycloneDX 1.6 JSON schema validator
    assert (document["bomFormat"], document["specVersion"]) == ("CycloneDX", "1.6")
    adapter = document["metadata"]["component"]
    assert adapter["type"] == "machine-learning-model"
    version = eval_registry.adapters.get(PLAIN[0])
    assert {c["name"]: c["hashes"][0]["content"] for c in adapter["components"]} == {
        f.path: f.sha256 for f in version.files
    }
    components = {c["bom-ref"]: c for c in document["components"]}
    dataset = components["dataset:faq@v1"]
    assert dataset["type"] == "data" and dataset["licenses"][0]["expression"] == "CC-BY-4.0"
    assert components["pypi:torch"]["purl"].startswith("pkg:pypi/torch@")
    card = adapter["modelCard"]
    assert card["modelParameters"]["datasets"] == [{"ref": "dataset:faq@v1"}]
    metrics = card["quantitativeAnalysis"]["performanceMetrics"]
    assert any(m["type"] == "sanity_mc/acc" for m in metrics)
    (dependency,) = [d for d in document["dependencies"] if d["ref"] == adapter["bom-ref"]]
    assert "base:tiny@v1" in dependency["dependsOn"]
    broken = json.loads(json.dumps(document))
    broken["metadata"]["component"]["modelCard"]["modelParameters"]["approach"]["type"] = "magic"
    with pytest.raises(VerificationError, match="not a valid CycloneDX 1.6 document"):
        validate_ml_bom(broken)


def test_model_card_has_hub_metadata(eval_registry: Registry, released: Path) -> None:
    text = model_card(eval_registry, PLAIN[0])
    assert text.startswith("---\n")
    metadata = yaml.safe_load(text.split("---\n")[1])
    assert metadata["library_name"] == "peft" and metadata["datasets"] == ["faq@v1"]
    (index,) = metadata["model-index"]
    results = {r["dataset"]["name"]: r for r in index["results"]}
    assert results["sanity"]["metrics"][0]["type"] == "acc"
    assert "promote to staging by rita" in text and "rollback to staging" in text


def test_exported_attestations_verify(eval_registry: Registry, released: Path) -> None:
    keys = {i.key_fingerprint: i.public_key_pem for i in eval_registry.identities.list()}
    assert open_envelope(provenance_envelope(eval_registry, PLAIN[0]), keys)["subject"]
    results = evaluation_envelopes(eval_registry, PLAIN[0])
    assert results and all(open_envelope(e, keys)["predicateType"] for e in results)
    with pytest.raises(NotFound, match="registered from elsewhere"):
        provenance_envelope(eval_registry, WILD[0])


def test_the_pack_verifies_offline(eval_registry: Registry, pack: Path) -> None:
    report = verify_pack(pack)
    assert report.passed, [c for c in report.checks if not c.passed]
    assert (report.environment, report.adapter) == ("staging", PLAIN[0])
    names = [c.name for c in report.checks]
    for expected in ("manifest", "adapter signature", "provenance attestation", "gate check",
                     "deployment history", "audit chain", "ML-BOM", "compliance map"):  # fmt: skip
        assert expected in names
    assert any(n.startswith("approval ") for n in names)
    assert any(n.startswith("evaluation ") for n in names)
    files = read_pack(pack)
    history = json.loads(files["deployments.json"])
    assert [d["action"] for d in history] == ["promote", "promote", "rollback"]
    compliance = {e["id"]: e for e in json.loads(files["compliance.json"])}
    assert set(compliance) == {r.id for r in REQUIREMENTS}
    assert compliance["NIST-AI-RMF-MEASURE-1.3"]["files"]
    assert "policy.yaml" in files  # the policy in force, unchanged since
    # exporting is itself logged
    (event,) = eval_registry.audit_events(action="evidence.export")
    assert event.actor == AUDITOR and event.payload["adapter"] == PLAIN[0]


def _rewrite(pack: Path, out: Path, change: Callable[[dict[str, bytes]], None]) -> Path:
    files = read_pack(pack)
    change(files)
    with tarfile.open(out, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out


def _flip_weight(files: dict[str, bytes]) -> None:
    name = "adapter/adapter_model.safetensors"
    files[name] = files[name][:-1] + bytes([files[name][-1] ^ 1])


def _edit_metric(files: dict[str, bytes]) -> None:
    name = next(n for n in files if n.startswith("evaluations/"))
    run = json.loads(files[name])
    run["metrics"][0]["value"] = 1.0
    files[name] = json.dumps(run).encode()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (_flip_weight, "changed: adapter/adapter_model.safetensors"),
        (_edit_metric, "changed: evaluations/"),
        (lambda f: f.update({"notes.txt": b"trust me"}), "extra: notes.txt"),
        (lambda f: f.pop("gate-check.json"), "missing: gate-check.json"),
        (lambda f: f.pop("attestations/provenance.json"), "missing: attestations/provenance"),
    ],
)
def test_any_changed_added_or_removed_file_fails(
    pack: Path, tmp_path: Path, change: Callable[[dict[str, bytes]], None], problem: str
) -> None:
    report = verify_pack(_rewrite(pack, tmp_path / "bad.tar.gz", change))
    assert not report.passed
    manifest = next(c for c in report.checks if c.name == "manifest")
    assert not manifest.passed and problem in manifest.detail


def test_a_forged_manifest_still_fails_the_inner_checks(
    eval_registry: Registry,
    pack: Path,
    tmp_path: Path,
) -> None:
    """Someone re-signs the manifest with their own key after editing a metric: with the
    organisation's keys trusted, the manifest fails; the inner attestations fail anyway."""
    from loraledger.registry.attestations import sign_statement
    from loraledger.registry.keys import KeyStore

    mallory = KeyStore(tmp_path / "keys").create("mallory")

    def forge(files: dict[str, bytes]) -> None:
        _edit_metric(files)
        import hashlib

        keys = json.loads(files["keys.json"])
        keys.append({"name": "mallory", "role": "auditor", "status": "active",
                     "key_fingerprint": mallory.fingerprint,
                     "public_key_pem": mallory.public_key_pem, "revoked_at": None})  # fmt: skip
        files["keys.json"] = json.dumps(keys).encode()
        statement = json.loads(
            __import__("base64").b64decode(json.loads(files["MANIFEST.dsse.json"])["payload"])
        )
        statement["subject"] = [
            {"name": n, "digest": {"sha256": hashlib.sha256(d).hexdigest()}}
            for n, d in sorted(files.items())
            if n != "MANIFEST.dsse.json"
        ]
        files["MANIFEST.dsse.json"] = json.dumps(sign_statement(statement, mallory)).encode()

    forged = _rewrite(pack, tmp_path / "forged.tar.gz", forge)
    report = verify_pack(forged)
    failed = {c.name for c in report.checks if not c.passed}
    assert "exporter" in failed  # mallory signed what says otto exported it
    assert all(name.startswith("evaluation ") for name in failed - {"exporter"})
    organisation = tmp_path / "org-keys.json"
    organisation.write_text(json.dumps(json.loads(read_pack(pack)["keys.json"])))
    trusted = verify_pack(forged, trusted_keys(organisation))
    assert not next(c for c in trusted.checks if c.name == "manifest").passed


def _drop_an_approval(files: dict[str, bytes]) -> None:
    name = next(n for n in files if n.startswith("approvals/"))
    del files[name]
    entries = json.loads(files["compliance.json"])
    for entry in entries:  # the compliance map edited to match
        entry["files"] = [f for f in entry["files"] if f != name]
    files["compliance.json"] = json.dumps(entries).encode()


def _resign(files: dict[str, bytes], key: SigningKey) -> None:
    envelope = json.loads(files["MANIFEST.dsse.json"])
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["exported_by"] = key.name
    statement["subject"] = [
        {"name": n, "digest": {"sha256": hashlib.sha256(d).hexdigest()}}
        for n, d in sorted(files.items())
        if n != "MANIFEST.dsse.json"
    ]
    files["MANIFEST.dsse.json"] = json.dumps(sign_statement(statement, key)).encode()


def _claim_role(name: str, role: str) -> Callable[[dict[str, bytes]], None]:
    def claim(files: dict[str, bytes]) -> None:
        keys = json.loads(files["keys.json"])
        for entry in keys:
            entry["role"] = role if entry["name"] == name else entry["role"]
        files["keys.json"] = json.dumps(keys).encode()

    return claim


@pytest.mark.parametrize(
    ("signer", "lie"), [(ENGINEER, None), (ENGINEER, "admin"), (AUDITOR, None)]
)
def test_a_pack_that_lost_an_approval_fails_however_it_was_re_signed(
    eval_registry: Registry, pack: Path, tmp_path: Path, signer: str, lie: str | None
) -> None:
    """Issue #35: one approval removed, the compliance map edited to match, the manifest
    re-signed -- by an engineer (who may not export packs; once with keys.json claiming
    she is an admin), or by an auditor who may. The decision check fails every time: the
    promotion cites an approval the pack lacks. The exporter check fails when the
    manifest's signer may not export, by the trusted keys' roles even where the pack's
    keys.json lies."""
    key = eval_registry.keys.load(signer)

    def forge(files: dict[str, bytes]) -> None:
        _drop_an_approval(files)
        if lie:
            _claim_role(signer, lie)(files)
        _resign(files, key)

    forged = _rewrite(pack, tmp_path / "forged.tar.gz", forge)
    organisation = tmp_path / "org-keys.json"
    organisation.write_text(read_pack(pack)["keys.json"].decode())
    alone, trusted = verify_pack(forged), verify_pack(forged, trusted_keys(organisation))
    for report, roles_from in ((alone, "the pack says"), (trusted, "the trusted keys say")):
        checks = {c.name: c for c in report.checks}
        assert not report.passed
        assert not checks["decision"].passed
        assert "cites approval(s) the pack lacks" in checks["decision"].detail
        may_export = signer == AUDITOR or (lie == "admin" and roles_from == "the pack says")
        assert checks["manifest"].passed
        assert checks["exporter"].passed == may_export, checks["exporter"].detail
        if not may_export:
            assert checks["exporter"].detail == (
                f"{signer}'s role is engineer (as {roles_from}); only the roles admin, "
                "auditor, reviewer export evidence packs"
            )


def _an_approval(files: dict[str, bytes]) -> bytes:
    return next(v for n, v in files.items() if n.startswith("approvals/"))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda f: f.update({"policy.yaml": b"version: 1\nenvironments:\n  staging: {}\n"}),
         "policy.yaml is not the policy the gate check cites"),
        (lambda f: f.update({"approvals/extra.json": _an_approval(f).replace(
            b'"id": "', b'"id": "x')}),
         "the pack holds approval(s) promotion #1 by rita does not cite: x"),
    ],
)  # fmt: skip
def test_a_pack_whose_decision_does_not_add_up_fails_it(
    eval_registry: Registry,
    pack: Path,
    tmp_path: Path,
    change: Callable[[dict[str, bytes]], None],
    problem: str,
) -> None:
    """A laxer policy.yaml, or an approval the promotion never cited, put in and the
    manifest re-signed by an auditor (who may export): the decision check names it."""
    auditor = eval_registry.keys.load(AUDITOR)

    def forge(files: dict[str, bytes]) -> None:
        change(files)
        _resign(files, auditor)

    report = verify_pack(_rewrite(pack, tmp_path / "forged.tar.gz", forge))
    decision = next(c for c in report.checks if c.name == "decision")
    assert not decision.passed and decision.detail.startswith(problem), decision.detail


def test_a_promotion_re_signed_without_its_approval_fails_the_policy_it_cites(
    eval_registry: Registry, pack: Path, tmp_path: Path
) -> None:
    """A reviewer re-signs the promotion record itself citing no approval, and drops the
    approval: its signature holds, the audit chain does not, and the policy in the pack
    asks one approval the pack no longer holds."""
    from loraledger.registry.audit import canonical_json

    def forge(files: dict[str, bytes]) -> None:
        _drop_an_approval(files)
        history = json.loads(files["deployments.json"])
        history[0]["approval_ids"] = []
        link = None
        for record in history:  # each re-signed by its maker, linked to the one before
            signed = json.loads(record["payload"])
            signed.update(approval_ids=record["approval_ids"], previous=link)
            record["payload"] = canonical_json(signed)
            record["signature"] = eval_registry.keys.load(record["created_by"]).sign(
                record["payload"].encode()
            )
            digest = hashlib.sha256(record["payload"].encode()).hexdigest()
            link = {"id": record["id"], "payload_sha256": digest}
        files["deployments.json"] = json.dumps(history).encode()
        _resign(files, eval_registry.keys.load(AUDITOR))

    report = verify_pack(_rewrite(pack, tmp_path / "forged.tar.gz", forge))
    checks = {c.name: c for c in report.checks}
    assert checks["deployment history"].passed, checks["deployment history"].detail
    assert checks["decision"].detail == (
        "the policy asks 1 approvals for staging; the pack holds 0"
    )
    assert "not in the signed audit chain" in checks["audit chain"].detail


def test_export_refusals(eval_registry: Registry, released: Path, tmp_path: Path) -> None:
    with pytest.raises(PermissionDenied, match="this needs"):
        export_pack(eval_registry, "staging", tmp_path / "p.tar.gz", actor=ENGINEER)
    assert (ENGINEER, "evidence.export") in [(a, b) for a, b, _ in refusals(eval_registry)]
    with pytest.raises(Conflict, match="nothing was ever deployed to production"):
        export_pack(eval_registry, "production", tmp_path / "p.tar.gz", actor=AUDITOR)
    existing = tmp_path / "exists.tar.gz"
    existing.write_bytes(b"x")
    with pytest.raises(InputError, match="already exists"):
        export_pack(eval_registry, "staging", existing, actor=AUDITOR)
    assert not (tmp_path / "p.tar.gz").exists()


def test_unreadable_packs(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tar")
    with pytest.raises(InputError, match="is not a readable evidence pack"):
        verify_pack(junk)
    with pytest.raises(InputError, match="evidence pack does not exist"):
        verify_pack(tmp_path / "missing.tar.gz")
    with pytest.raises(InputError, match="is a directory, not a regular file"):
        verify_pack(tmp_path)
    link = tmp_path / "link.tar.gz"
    with tarfile.open(link, "w:gz") as archive:
        info = tarfile.TarInfo("../escape")
        archive.addfile(info, io.BytesIO(b""))
    with pytest.raises(VerificationError, match="not a plain file with a plain name inside"):
        verify_pack(link)


def test_a_member_shadowed_under_another_spelling_is_refused(pack: Path, tmp_path: Path) -> None:
    # `./keys.json` beside `keys.json`: the second would have silently replaced the first
    def shadow(files: dict[str, bytes]) -> None:
        files["./keys.json"] = b"[]"

    forged = _rewrite(pack, tmp_path / "shadow.tar.gz", shadow)
    with pytest.raises(VerificationError, match="member 'keys.json' appears twice \\(as './keys"):
        verify_pack(forged)


def test_a_json_member_naming_a_key_twice_is_refused(pack: Path, tmp_path: Path) -> None:
    # (behind the signed manifest, which refuses any changed member first)
    files = read_pack(pack)
    files["deployments.json"] = b'[{"action": "rollback", "action": "promote"}]'
    with pytest.raises(VerificationError, match="deployments.json: has the key 'action' twice"):
        Pack(files, None).load("deployments.json")


def test_a_huge_member_is_refused_before_it_is_read(pack: Path, tmp_path: Path) -> None:
    # 3 GB of zeros compress to a few MB; the member's header says how much it unpacks to
    # (here the data is cut short: the refusal comes before any of it is read)
    big = tmp_path / "bomb.tar.gz"
    info = tarfile.TarInfo("adapter/zeros.bin")
    info.size = 3 * 10**9
    with gzip.open(big, "wb") as out:
        out.write(info.tobuf(format=tarfile.GNU_FORMAT) + bytes(1 << 16))
    with pytest.raises(VerificationError, match="3,000,000,000 bytes\\) takes the pack past"):
        verify_pack(big)
    with pytest.raises(VerificationError, match="takes the pack past 1,000 bytes"):
        verify_pack(pack, max_bytes=1000)


def test_the_compliance_map_is_in_the_docs() -> None:
    text = (ROOT / "docs" / "compliance.md").read_text()
    for requirement in REQUIREMENTS:
        assert requirement.id in text


def test_admins_may_export_too(eval_registry: Registry, released: Path, tmp_path: Path) -> None:
    out = export_pack(eval_registry, "staging", tmp_path / "a.tar.gz", actor=ADMIN)
    assert verify_pack(out).passed


def test_the_commands(eval_registry: Registry, pack: Path, tmp_path: Path) -> None:
    from tests.cli.test_evals_cli import Ledger

    ledger = Ledger(eval_registry)
    out = ledger("evidence", "verify", str(pack), actor=None)
    assert "[ok  ] audit chain" in out.stdout and "Every check passed." in out.stdout
    bad = _rewrite(pack, tmp_path / "bad.tar.gz", _flip_weight)
    failed = ledger("evidence", "verify", str(bad), "--json", code=1, actor=None)
    assert json.loads(failed.stdout)["passed"] is False
    ledger("evidence", "verify", str(tmp_path / "nope.tar.gz"), code=2, actor=None)
    bom = tmp_path / "bom.json"
    ledger("export", "ml-bom", PLAIN[0], "-o", str(bom), actor=None)
    validate_ml_bom(json.loads(bom.read_text()))
    card = ledger("export", "model-card", PLAIN[0], actor=None).stdout
    assert card.startswith("---\n")
    lines = ledger("export", "test-results", PLAIN[0], actor=None).stdout.splitlines()
    assert lines and all(json.loads(line)["payloadType"] for line in lines)
    assert "payload" in json.loads(ledger("export", "provenance", PLAIN[0], actor=None).stdout)
    ledger("export", "provenance", WILD[0], code=2, actor=None)
    new_pack = tmp_path / "cli.tar.gz"
    ledger("evidence", "export", "--env", "staging", "-o", str(new_pack), actor=AUDITOR)
    assert verify_pack(new_pack).passed


def test_a_registry_cut_since_the_export_is_refused_by_the_pack(
    eval_registry: Registry, pack: Path, tmp_path: Path
) -> None:
    from loraledger.policies import witness

    copy = clone_registry(eval_registry, tmp_path / "reg")
    report = verify_pack(pack)
    checked = witness.check_pack(copy, report)
    assert checked.passed and checked.checks[-1].name == "against the registry"
    # the events from the pack's head on are cut, in the database and the checkpoint file
    head = json.loads(read_pack(pack)["audit/checkpoint.json"])["seq"]
    sql(copy, "DELETE FROM audit_events WHERE seq >= ?", [head])
    sql(copy, "DELETE FROM audit_checkpoints WHERE seq >= ?", [head])
    file = copy.root / "audit-checkpoints.jsonl"
    kept = [line for line in file.read_text().splitlines() if json.loads(line)["seq"] < head]
    file.write_text("".join(line + "\n" for line in kept))
    refused = witness.check_pack(copy, report)
    assert not refused.passed
    assert f"was made at audit event #{head}" in refused.checks[-1].detail


def test_a_pack_judges_each_signature_by_its_place_in_the_chain(
    eval_registry: Registry, released: Path, tmp_path: Path
) -> None:
    """Offline, from the keys' history the pack (or the trusted keys file) carries: a
    reviewer who has since left still approved and promoted; a key declared stolen since
    before she did, did not."""
    left = clone_registry(eval_registry, tmp_path / "left")
    left.identities.revoke(REVIEWER, actor=ADMIN, reason="left")
    report = verify_pack(export_pack(left, "staging", tmp_path / "left.tar.gz", actor=AUDITOR))
    (places,) = [c for c in report.checks if c.name == "keys at their place"]
    assert report.passed and places.detail.startswith(
        "4 signatures valid"
    )  # 1 approval, 3 deployments
    # exported before rita's key was found stolen, checked after with the keys' history
    # as the registry now gives it (the auditor's trusted keys file)
    stolen = clone_registry(eval_registry, tmp_path / "stolen")
    pack = export_pack(stolen, "staging", tmp_path / "stolen.tar.gz", actor=AUDITOR)
    assert verify_pack(pack).passed
    first = min(e.created_at for e in stolen.audit_events(actor=REVIEWER))
    stolen.identities.revoke(REVIEWER, actor=ADMIN, reason="phished", compromised_since=first)
    keys_file = tmp_path / "trusted.json"
    keys_file.write_text(json.dumps([
        {**entry, "role": person["role"]}
        for name in (ADMIN, ENGINEER, REVIEWER, AUDITOR)
        for person in [stolen.identities.get(name).model_dump(mode="json")]
        for entry in _exported(stolen, name)
    ]))  # fmt: skip
    report = verify_pack(pack, trusted_keys(keys_file))
    (places,) = [c for c in report.checks if c.name == "keys at their place"]
    assert not report.passed and "was compromised since" in places.detail
    # a pack exported now would rest on what the stolen key signed: refused, by name
    with pytest.raises(VerificationError, match="signed with a compromised key"):
        export_pack(stolen, "staging", tmp_path / "now.tar.gz", actor=AUDITOR)
    assert not (tmp_path / "now.tar.gz").exists()


def _exported(registry: Registry, name: str) -> list[dict[str, object]]:
    """``loraledger keys export-public NAME --json``'s keys, as an auditor keeps them."""
    from typer.testing import CliRunner

    from loraledger.cli import app

    result = CliRunner().invoke(
        app,
        ["--registry", str(registry.address), "keys", "export-public", name, "--json"],
    )
    assert result.exit_code == 0, result.output
    person = json.loads(result.stdout)
    return [{"name": name, **key} for key in person["keys"]]
