"""The forgery suite: an insider who can write every registry file but holds no
reviewer's or admin's private key edits the database with plain SQL (or the store's
files), and every decision that reads the edited rows refuses, naming the row and the
field (docs/threat-model.md lists each attack with its test here).

One registry is built per module -- four synthetic adapter versions, approvals, a
rejection, promotions and a rollback through the real gate -- and each test attacks its
own copy of the directory."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loraledger.harness.compare import compare
from loraledger.policies import witness
from loraledger.policies.approvals import decide
from loraledger.policies.deployments import promote, rollback
from loraledger.policies.gates import check_gate
from loraledger.policies.serving import check_against, load_deployed, sync
from loraledger.policies.trace import trace_environment
from loraledger.registry import Registry, Role
from loraledger.registry.audit import canonical_json, checkpoint_message, event_hash, utcnow
from loraledger.registry.keys import KeyStore
from loraledger.registry.models import Checkpoint
from loraledger.registry.signing import sign_directory
from loraledger.registry.synthetic import write_lora_adapter
from loraledger.registry.trust import TrustRoot
from typer.testing import CliRunner

from loraledger.cli import app
from loraledger.errors import PermissionDenied, VerificationError
from tests.conftest import ADMIN, AUDITOR, ENGINEER, REVIEWER, small_adapter
from tests.policies.helpers import a_training_run, use_policy
from tests.registry.helpers import sql
from tests.registry.test_base_models import base_files, register
from tests.registry.test_evaluations import a_run

SECOND = "ruby"  # a second reviewer
POLICY = """\
version: 1
environments:
  staging:
    provenance: {signed: true}
    approvals: {count: 1, role: reviewer}
  production:
    requires_environment: staging
    provenance: {signed: true}
    approvals: {count: 1, role: reviewer}
"""
V1, V2, V3, V4, OWN = "bot@v1", "bot@v2", "bot@v3", "bot@v4", "own@v1"
SCORED = ("scored@v1", "scored@v2")  # trained (signed provenance), evaluated, compared


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bot@v1 and bot@v2 approved and promoted to staging, then staging rolled back to
    v1; ruby rejected bot@v3; bot@v4 never reviewed; own@v1 registered by the admin."""
    root = tmp_path_factory.mktemp("forgery")
    reg = Registry.init(root / "reg", keys=KeyStore(root / "keys"))
    reg.identities.create(ADMIN, Role.ADMIN, actor=None)
    reg.identities.create(ENGINEER, Role.ENGINEER, actor=ADMIN)
    reg.identities.create(REVIEWER, Role.REVIEWER, actor=ADMIN)
    reg.identities.create(SECOND, Role.REVIEWER, actor=ADMIN)
    reg.identities.create(AUDITOR, Role.AUDITOR, actor=ADMIN)
    for seed in (1, 2, 3, 4):
        reg.adapters.register(small_adapter(root / f"a{seed}", seed), "bot", actor=ENGINEER)
    reg.adapters.register(small_adapter(root / "own", 9), "own", actor=ADMIN)
    register(reg, base_files(root / "base"))
    for seed, ref in enumerate(SCORED):
        adapter = write_lora_adapter(root / ref, base_model="tiny@v1", hidden=16, layers=1,
                                     seed=seed)  # fmt: skip
        reg.adapters.register(adapter, "scored", actor=ENGINEER,
                              training_run=a_training_run(reg, "tiny@v1"))  # fmt: skip
        reg.evaluations.record(a_run(reg, ref), actor=ENGINEER)
    compare(reg, SCORED[1], SCORED[0], "sanity", actor=ENGINEER, n_resamples=99)
    compare(reg, SCORED[0], SCORED[1], "sanity", actor=ENGINEER, n_resamples=99)  # 2 of them
    policy = root / "policy.yaml"
    policy.write_text(POLICY)
    use_policy(reg, policy)
    for ref in (V1, V2):
        decide(reg, ref, "staging", "approve", comment="ok", actor=REVIEWER, policy=policy)
        promote(reg, ref, "staging", actor=REVIEWER, policy=policy)
    rollback(reg, "staging", reason="v2 regressed", actor=REVIEWER)
    decide(reg, V3, "staging", "reject", comment="no", actor=SECOND, policy=policy)
    return root


@pytest.fixture
def site(built: Path, tmp_path: Path) -> Path:
    """A private copy of the built registry directory (and its keys)."""
    return Path(shutil.copytree(built, tmp_path / "site"))


def opened(site: Path) -> Registry:
    return Registry.open(site / "reg", keys=KeyStore(site / "keys"))


def approval_id(reg: Registry, ref: str, decision: str = "approve") -> str:
    rows = sql(
        reg,
        "SELECT id FROM approvals WHERE adapter_name || '@v' || adapter_version = ? "
        "AND decision = ?",
        [ref, decision],
    )
    return str(rows[0][0])


def cli(site: Path, *args: str, keys: Path | None = None) -> Any:
    """`loraledger ARGS` on ``site``'s registry (or on ``site`` itself when it is one)."""
    registry = site if (site / "registry.duckdb").exists() else site / "reg"
    env = {
        "LORALEDGER_REGISTRY": str(registry),
        "LORALEDGER_KEYS_DIR": str(keys or site / "keys"),
        "LORALEDGER_ACTOR": None,
    }
    return CliRunner().invoke(app, list(args), env=env)


def refused_everywhere(site: Path, message: str, *, env: str = "staging") -> None:
    """Every command that asks what ``env`` runs refuses with ``message``."""
    reg = opened(site)
    policy = site / "policy.yaml"
    checks: list[tuple[str, Callable[[], object]]] = [
        ("deployments", lambda: reg.deployments.history(env)),
        ("running", reg.deployments.everywhere),
        ("status", lambda: reg.deployments.tracks(env)),
        ("promote", lambda: promote(reg, V4, env, actor=REVIEWER, policy=policy)),
        ("rollback", lambda: rollback(reg, env, reason="x", actor=REVIEWER)),
        ("sync", lambda: sync(reg, env, site / "serve")),
        ("load_deployed", lambda: load_deployed(reg, env)),
        ("trace", lambda: trace_environment(reg, env)),
        ("audit verify", reg.verify_records),
    ]
    for name, call in checks:
        with pytest.raises(VerificationError, match=message):
            call()
        assert name  # (the name shows in the traceback of a failing check)
    assert not (site / "serve" / "current").exists()
    for args in (
        ["deployments", "--env", env], ["audit", "verify"], ["trace", "--env", env], ["status"]
    ):  # fmt: skip
        result = cli(site, *args)
        assert result.exit_code == 1, (args, result.output)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


# --- approvals -------------------------------------------------------------------------


def test_an_approval_copied_onto_an_unreviewed_version_is_refused(site: Path) -> None:
    reg = opened(site)
    policy = site / "policy.yaml"
    v4 = reg.adapters.get(V4)
    evidence = check_gate(reg, V4, "staging", actor=REVIEWER, policy=policy).inputs_sha256
    sql(
        reg,
        "INSERT INTO approvals SELECT * REPLACE ('forged-1' AS id, 4 AS adapter_version, "
        "? AS artifact_digest, ? AS inputs_sha256) FROM approvals WHERE id = ?",
        [v4.digest, evidence, approval_id(reg, V1)],
    )
    with pytest.raises(VerificationError, match="approvals row forged-1 .*has no audit event"):
        check_gate(reg, V4, "staging", actor=REVIEWER, policy=policy)
    with pytest.raises(VerificationError, match="approvals row forged-1"):
        promote(reg, V4, "staging", actor=REVIEWER, policy=policy)
    with pytest.raises(VerificationError, match="approvals row forged-1"):
        reg.verify_records()
    assert reg.deployments.current("staging").adapter == V1  # type: ignore[union-attr]


def test_the_same_copy_keeping_the_audited_id_is_refused_by_its_payload(site: Path) -> None:
    # The attacker also rewrites the original row, so the id the audit log knows is on
    # the unreviewed version: the signed payload (and the event) still name v1.
    reg = opened(site)
    v4 = reg.adapters.get(V4)
    sql(
        reg,
        "UPDATE approvals SET adapter_version = 4, artifact_digest = ? WHERE id = ?",
        [v4.digest, approval_id(reg, V1)],
    )
    message = r"approvals row .*: adapter is \"bot@v4\" but its signed payload says \"bot@v1\""
    with pytest.raises(VerificationError, match=message):
        reg.approvals.list()
    with pytest.raises(VerificationError, match=r"approvals row .* \(bot@v4\) has no audit"):
        reg.approvals.list(V4)
    with pytest.raises(VerificationError, match="approvals row"):
        check_gate(reg, V4, "staging", actor=REVIEWER, policy=site / "policy.yaml")


def test_a_flipped_decision_is_refused(site: Path) -> None:
    reg = opened(site)
    rejection = approval_id(reg, V3, "reject")
    sql(reg, f"UPDATE approvals SET decision = 'approve' WHERE id = '{rejection}'")
    message = f'approvals row {rejection}: decision is "approve" but its signed payload says'
    with pytest.raises(VerificationError, match=message):
        promote(reg, V3, "staging", actor=REVIEWER, policy=site / "policy.yaml")
    with pytest.raises(VerificationError, match=message):
        reg.verify_records()


def test_a_deleted_rejection_is_refused(site: Path) -> None:
    reg = opened(site)
    rejection = approval_id(reg, V3, "reject")
    sql(reg, f"DELETE FROM approvals WHERE id = '{rejection}'")
    with pytest.raises(VerificationError, match=f"approvals row {rejection} .*is missing"):
        check_gate(reg, V3, "staging", actor=REVIEWER, policy=site / "policy.yaml")


# --- who made a version ----------------------------------------------------------------


def test_an_edited_author_cannot_approve_her_own_version(site: Path) -> None:
    reg = opened(site)
    sql(reg, "UPDATE adapter_versions SET created_by = ? WHERE name = 'own'", [ENGINEER])
    assert reg.adapters.get(OWN).created_by == ENGINEER  # the row says so; nothing believes it
    message = 'adapter_versions row own@v1: created_by is "eve" but audit event #.* says "alice"'
    with pytest.raises(VerificationError, match=message):
        decide(reg, OWN, "staging", "approve", comment="mine", actor=ADMIN,
               policy=site / "policy.yaml")  # fmt: skip
    with pytest.raises(VerificationError, match=message):
        reg.verify_records()


def test_weights_swapped_and_re_signed_with_the_signers_own_key_are_refused(
    site: Path, tmp_path: Path
) -> None:
    # The engineer holds her own key: she swaps v1's weights for v2's and signs the
    # result, updating every row (digest, files, signature bundle) to match.
    reg = opened(site)
    v1, v2 = reg.adapters.get(V1), reg.adapters.get(V2)
    forged = tmp_path / "bot"
    reg.adapters.fetch(V1, forged)
    weights = "adapter_model.safetensors"
    (forged / weights).chmod(0o644)
    reg.adapters.fetch(V2, tmp_path / "v2")
    (forged / weights).write_bytes((tmp_path / "v2" / weights).read_bytes())
    manifest = sign_directory(forged, reg.keys.load(ENGINEER), tmp_path / "bundle.sig")
    bundle = reg.store.put_bytes((tmp_path / "bundle.sig").read_bytes())
    sql(reg, "UPDATE adapter_versions SET digest = ? WHERE name = 'bot' AND version = 1",
        [manifest.digest])  # fmt: skip
    sql(reg, "UPDATE signatures SET bundle_sha256 = ?, subject_digest = ? WHERE id = ?",
        [bundle, manifest.digest, v1.signature_id])  # fmt: skip
    sql(reg, "UPDATE adapter_files SET sha256 = ? WHERE adapter_name = 'bot' AND version = 1 "
        "AND path = ?", [manifest.files[weights], weights])  # fmt: skip
    assert manifest.files[weights] == next(f.sha256 for f in v2.files if f.path == weights)
    with pytest.raises(VerificationError, match="adapter_versions row bot@v1: digest is"):
        opened(site).adapters.verify(V1)
    with pytest.raises(VerificationError, match="bot@v1 has digest .*tampered"):
        sync(opened(site), "staging", site / "serve")
    assert not (site / "serve" / "current").exists()


# --- what an environment runs ----------------------------------------------------------


def test_a_deleted_rollback_is_refused_everywhere(site: Path) -> None:
    reg = opened(site)
    newest = sql(reg, "SELECT id FROM deployments WHERE environment = 'staging' AND seq = 3")
    sql(reg, "DELETE FROM deployments WHERE environment = 'staging' AND seq = 3")
    refused_everywhere(site, f"deployments row {newest[0][0]} \\(staging\\).* is missing")


def test_a_rollback_deleted_with_its_event_while_later_events_follow_is_refused(
    site: Path,
) -> None:
    """Issue #35: the rollback's row and its audit event deleted (its checkpoint too),
    later events kept: before, `deployments`, `sync` and `trace` passed and `sync` wrote
    the rolled-back version again; only a full `audit verify` noticed."""
    reg = opened(site)
    ((seq, deployment_id),) = sql(
        reg,
        "SELECT e.seq, d.id FROM audit_events e JOIN deployments d ON d.id = "
        "json_extract_string(e.payload, '$.deployment_id') WHERE e.action = 'deploy.rollback'",
    )
    assert sql(reg, "SELECT count(*) FROM audit_events WHERE seq > ?", [seq])[0][0] > 0
    sql(reg, "DELETE FROM deployments WHERE id = ?", [deployment_id])
    sql(reg, "DELETE FROM audit_events WHERE seq = ?", [seq])
    sql(reg, "DELETE FROM audit_checkpoints WHERE seq = ?", [seq])
    refused_everywhere(site, "audit log has a gap: .* events numbered #1 to #")


def test_the_newest_deployment_pointed_at_an_unreviewed_version_is_refused(site: Path) -> None:
    reg = opened(site)
    v4 = reg.adapters.get(V4)
    sql(
        reg,
        "UPDATE deployments SET adapter_version = 4, artifact_digest = ? "
        "WHERE environment = 'staging' AND seq = 3",
        [v4.digest],
    )
    refused_everywhere(site, r'deployments row .*: adapter is "bot@v4" but audit event')


def test_an_inserted_deployment_is_refused(site: Path) -> None:
    reg = opened(site)
    sql(
        reg,
        "INSERT INTO deployments SELECT * REPLACE ('forged-d' AS id, 4 AS seq, "
        "'production' AS environment) FROM deployments WHERE environment = 'staging' "
        "AND seq = 2",
    )
    refused_everywhere(site, "deployments row forged-d .*has no audit event", env="production")


def test_a_cut_log_is_refused(site: Path) -> None:
    # The newest events (the rejection and its checkpoint) are cut from the database with
    # the rows they recorded: the checkpoint file beside it still holds the head.
    reg = opened(site)
    rejection = approval_id(reg, V3, "reject")
    (seq,) = sql(reg, "SELECT max(seq) FROM audit_events WHERE action = 'deploy.rollback'")[0]
    sql(reg, f"DELETE FROM approvals WHERE id = '{rejection}'")
    sql(reg, f"DELETE FROM audit_events WHERE seq > {seq}")
    sql(reg, f"DELETE FROM audit_checkpoints WHERE seq > {seq}")
    refused_everywhere(site, "audit log truncated: audit-checkpoints.jsonl records")
    with pytest.raises(VerificationError, match="audit log truncated"):
        check_gate(reg, V3, "staging", actor=REVIEWER, policy=site / "policy.yaml")


EVERY_ROW = {
    "identities": 5,
    "datasets": 0,
    "base_models": 1,
    "adapter_versions": 7,
    "approvals": 3,
    "deployments": 3,
    "gate_checks": 5,
    "eval_runs": 2,
    "policy_versions": 1,
    "comparisons": 2,
    "attestations": 4,
}


def test_an_untouched_registry_verifies(site: Path) -> None:
    reg = opened(site)
    assert reg.verify_records() == EVERY_ROW
    assert reg.deployments.current("staging").adapter == V1  # type: ignore[union-attr]
    result = cli(site, "audit", "verify")
    assert result.exit_code == 0 and "rows match their signed records" in result.output


# --- an environment of two tracks ------------------------------------------------------


def two_tracks(site: Path) -> Registry:
    """staging runs bot@v1 (promoted, rolled back to) and own@v1 beside it, retired once
    and rolled back in: every kind of record on two tracks of one environment."""
    from loraledger.policies.deployments import retire

    from tests.policies.helpers import deploy

    reg = opened(site)
    deploy(reg, "staging", OWN)
    retire(reg, "own", "staging", reason="not needed", actor=REVIEWER)
    rollback(reg, "staging", name="own", reason="needed after all", actor=SECOND)
    running = reg.deployments.running("staging")
    assert {name: d.adapter for name, d in running.items()} == {"bot": V1, "own": OWN}
    return reg


def test_two_tracks_of_an_untouched_environment_verify(site: Path) -> None:
    reg = two_tracks(site)
    assert reg.verify_records()["deployments"] == 6
    assert [d.track for d in reg.deployments.history("staging")] == [
        "bot", "bot", "bot", "own", "own", "own"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("attack", "message"),
    [
        # bot's rollback moved onto own's track: own would run bot@v1's row
        (
            "UPDATE deployments SET adapter_name = 'own', track = 'own' "
            "WHERE environment = 'staging' AND seq = 3",
            r"deployments row .*: (track|adapter) is .*own.* but audit event",
        ),
        # the retirement deleted: own's rollback no longer follows its predecessor
        (
            "DELETE FROM deployments WHERE environment = 'staging' AND action = 'retire'",
            r"deployments row .* \(staging\).* is missing",
        ),
        # own's rollback re-targeted to bot's name and digest
        (
            "UPDATE deployments SET adapter_name = 'bot', track = 'bot', adapter_version = 2 "
            "WHERE environment = 'staging' AND seq = 6",
            r"deployments row .*: (track|adapter) is .*bot.* but audit event",
        ),
        # a track's record made to read as a whole-environment one (it would end bot)
        (
            "UPDATE deployments SET track = NULL WHERE environment = 'staging' AND seq = 4",
            r"deployments row .*: track is null but audit event",
        ),
    ],
)
def test_a_forged_track_of_a_two_track_environment_is_refused(
    site: Path, attack: str, message: str
) -> None:
    reg = two_tracks(site)
    sql(reg, attack)
    with pytest.raises(VerificationError, match=message):
        reg.deployments.running("staging")
    with pytest.raises(VerificationError):
        reg.verify_records()
    with pytest.raises(VerificationError):
        reg.deployments.tracks()
    result = cli(site, "status")
    assert result.exit_code == 1 and "Traceback" not in result.output


# --- any column of any row -------------------------------------------------------------

APPROVAL_COLUMNS = (
    "id", "adapter_name", "adapter_version", "artifact_digest", "environment", "decision",
    "comment", "policy_sha256", "gate_check_id", "inputs_sha256", "payload", "signer",
    "key_fingerprint", "signature", "created_at",
)  # fmt: skip
DEPLOYMENT_COLUMNS = (
    "id", "seq", "environment", "adapter_name", "adapter_version", "artifact_digest", "action",
    "reason", "gate_check_id", "approval_ids", "policy_sha256", "created_at", "created_by",
    "payload", "key_fingerprint", "signature", "track",
)  # fmt: skip


def changed(column: str, value: Any, salt: int) -> Any:
    """Another value of the column's type (never the same one)."""
    if column in ("adapter_version", "seq"):
        return int(value) + 10 + salt  # past every existing one (seq is unique)
    if column == "created_at":
        return f"2030-01-0{1 + salt % 9} 00:00:00"
    if column == "approval_ids":
        return json.dumps([*json.loads(value), f"x{salt}"])
    if column == "action":
        return {"promote": "rollback", "rollback": "retire", "retire": "promote"}[value]
    if column == "decision":
        return {"approve": "reject", "reject": "approve"}[value]
    return f"{value or ''}x{salt}"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    table=st.sampled_from(["approvals", "deployments"]),
    row=st.integers(0, 2),
    which=st.integers(0, 100),
    salt=st.integers(0, 8),
)
def test_any_column_of_any_row_changed_is_refused(
    built: Path, tmp_path_factory: pytest.TempPathFactory, table: str, row: int, which: int,
    salt: int,
) -> None:  # fmt: skip
    site = Path(shutil.copytree(built, tmp_path_factory.mktemp("prop") / "site"))
    reg = opened(site)
    columns = APPROVAL_COLUMNS if table == "approvals" else DEPLOYMENT_COLUMNS
    column = columns[which % len(columns)]
    ids = [r[0] for r in sql(reg, f"SELECT id FROM {table} ORDER BY created_at")]
    target = ids[row % len(ids)]
    (value,) = sql(reg, f"SELECT {column} FROM {table} WHERE id = ?", [target])[0]
    new = changed(column, value, salt)
    sql(reg, f"UPDATE {table} SET {column} = ? WHERE id = ?", [new, target])
    with pytest.raises(VerificationError):
        reg.verify_records()
    with pytest.raises(VerificationError):
        if table == "approvals":
            reg.approvals.list()
        else:
            reg.deployments.everywhere()


# --- a log cut short, checkpoint file and all: the artifacts people kept refuse it --------


def cut_from(reg: Registry, site: Path, seq: int) -> None:
    """Cut every event from ``seq`` on, with the rows they recorded and their checkpoints
    in the database and in the checkpoint file: a registry consistent in itself."""
    for table, column in (("approvals", "id"), ("deployments", "id"), ("gate_checks", "id")):
        ids = [
            e.payload.get("approval_id")
            or e.payload.get("deployment_id")
            or e.payload.get("check_id")
            for e in reg.audit_events()
            if e.seq >= seq
        ]
        for row_id in ids:
            if row_id:
                sql(reg, f"DELETE FROM {table} WHERE {column} = ?", [row_id])
    sql(reg, "DELETE FROM audit_events WHERE seq >= ?", [seq])
    sql(reg, "DELETE FROM audit_checkpoints WHERE seq >= ?", [seq])
    checkpoints = site / "reg" / "audit-checkpoints.jsonl"
    kept = [line for line in checkpoints.read_text().splitlines() if json.loads(line)["seq"] < seq]
    checkpoints.write_text("".join(line + "\n" for line in kept))


def test_a_cut_log_is_refused_by_the_artifacts_kept_from_it(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = opened(site)
    sync(reg, "staging", site / "serve")  # serves the rollback, staging #3
    (rejection,) = reg.approvals.list(V3)
    (site / "kept-approval.json").write_text(rejection.model_dump_json())
    (seq,) = sql(reg, "SELECT seq FROM audit_events WHERE action = 'deploy.rollback'")[0]
    cut_from(reg, site, seq)
    # the machine that saw the newer events remembers the newest head it saw (issue #35)
    with pytest.raises(VerificationError, match="audit log cut or rewritten: this machine saw"):
        opened(site).verify_records()
    # another machine, which never saw them: consistent in itself -- the chain, the
    # checkpoints, every row -- and only what people kept from it refuses it
    monkeypatch.setenv("LORALEDGER_KNOWN_ROOTS", str(site / "another-machine" / "roots.json"))
    reg = opened(site)
    reg.verify_audit()
    assert reg.verify_records() == {**EVERY_ROW, "approvals": 2, "deployments": 2, "gate_checks": 4}
    with pytest.raises(VerificationError, match="deployment .* of staging is no longer in"):
        witness.check(reg, witness.of_file(site / "serve"))
    with pytest.raises(VerificationError, match="is no longer in the registry"):
        check_against(reg, site / "serve")
    with pytest.raises(VerificationError, match="was made at audit event #.*events were cut"):
        witness.check(reg, witness.of_file(site / "kept-approval.json"))
    for args in (
        ["audit", "verify", "--against", str(site / "serve")],
        ["audit", "verify", "--against", str(site / "kept-approval.json")],
        ["sync", str(site / "serve"), "--check"],
    ):
        result = cli(site, *args)
        assert result.exit_code == 1, (args, result.output)
        assert "events were cut" in result.stderr or "no longer in" in result.stderr


def test_kept_artifacts_of_an_intact_registry_pass(site: Path) -> None:
    reg = opened(site)
    sync(reg, "staging", site / "serve")
    (rejection,) = reg.approvals.list(V3)
    (site / "kept-approval.json").write_text(rejection.model_dump_json())
    assert check_against(reg, site / "serve").adapter == V1
    result = cli(site, "audit", "verify", "--against", str(site / "serve"), "--against",
                 str(site / "kept-approval.json"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "it holds what 2 kept artifact(s) saw" in result.output
    result = cli(site, "sync", str(site / "serve"), "--check")
    assert result.exit_code == 0 and "and it is what staging runs" in result.output


def test_a_serving_directory_that_is_not_what_runs_fails_its_check(site: Path) -> None:
    """Issue #35, item 6: `sync --check` said "matches its signed manifest", exit 0, for a
    `current` pointed at another version's release, and for weights changed and re-signed
    with another key whose public key was written into release.json. Offline, a bundle
    can only be checked against itself; against the registry, its signed digest must be
    the deployment's and its key the registrant's registered key."""
    from loraledger.policies.serving import _write_release, check

    reg = opened(site)
    serve = site / "serve"
    sync(reg, "staging", serve)  # staging runs bot@v1 again (after the rollback)
    check_against(reg, serve)
    # (a) current pointed at bot@v2's signed release, deployment.json left as it was
    v2 = next(d for d in reg.deployments.history("staging") if d.adapter == V2)
    _write_release(reg, v2, serve / "releases" / v2.artifact_digest)
    (serve / "current").unlink()
    (serve / "current").symlink_to(Path("releases") / v2.artifact_digest)
    assert check(serve) == []  # a valid bundle in itself
    with pytest.raises(VerificationError, match="signed over digest .* but staging runs bot@v1"):
        check_against(reg, serve)
    result = cli(site, "sync", str(serve), "--check")
    assert result.exit_code == 1 and "but staging runs bot@v1" in result.stderr
    # (b) bot@v1's files re-signed with another identity's key, its public key in
    # release.json: unchanged bytes (only the key can tell), then changed weights
    sync(reg, "staging", serve)
    release = (serve / "current").resolve()
    for who, change in ((REVIEWER, False), (ENGINEER, True)):
        if change:
            weights = release / "adapter" / "adapter_model.safetensors"
            weights.chmod(0o644)
            data = bytearray(weights.read_bytes())
            data[-1] ^= 1
            weights.write_bytes(bytes(data))
        key = reg.keys.load(who)
        sign_directory(release / "adapter", key, release / "signature.sig")
        info = json.loads((release / "release.json").read_text())
        info["signer_public_key"] = key.public_key_pem
        (release / "release.json").write_text(json.dumps(info))
        assert check(serve) == []  # consistent in itself: offline, nothing can tell
        expected = "re-signed by someone else" if not change else "signed over digest"
        with pytest.raises(VerificationError, match=expected):
            check_against(reg, serve)


# --- identities: keys come from the history signed back to the root ---------------------


def append_event(reg: Registry, site: Path, actor: str, action: str, subject: str,
                 payload: dict[str, Any], key: Any) -> int:  # fmt: skip
    """Append an event to the chain, hashed correctly, with a checkpoint signed by ``key``
    (in the database and the file), as an insider with a key of their own would."""
    seq, prev = reg.audit_head()
    now = utcnow()
    text = canonical_json(payload)
    digest = event_hash(seq + 1, prev, now, actor, action, subject, text)
    sql(reg, "INSERT INTO audit_events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [seq + 1, now, actor, action, subject, text, prev, digest])  # fmt: skip
    signature = key.sign(checkpoint_message(reg.registry_id, seq + 1, digest, key.name, now))
    sql(reg, "INSERT INTO audit_checkpoints (seq, head_hash, signer, signature, created_at) "
        "VALUES (?, ?, ?, ?, ?)", [seq + 1, digest, key.name, signature, now])  # fmt: skip
    reg.audit.publish(Checkpoint(registry_id=reg.registry_id, seq=seq + 1, head_hash=digest,
                                 signer=key.name, signature=signature, created_at=now))  # fmt: skip
    return seq + 1


@pytest.mark.parametrize("claimed", [ADMIN, "mallory"])
def test_a_forged_admin_cannot_act_or_pass_verification(site: Path, claimed: str) -> None:
    # mallory makes her own key, inserts herself as an admin and an identity.create event
    # (claimed by alice, or by herself), and signs the new head with her own key
    reg = opened(site)
    head = reg.audit_head()
    mallory = KeyStore(site / "keys").create("mallory")
    sql(reg, "INSERT INTO identities VALUES (?, 'admin', ?, ?, 'active', ?, ?, NULL, NULL, NULL)",
        ["mallory", mallory.public_key_pem, mallory.fingerprint, utcnow(), claimed])  # fmt: skip
    seq = append_event(reg, site, claimed, "identity.create", "identity:mallory",
                       {"role": "admin", "key_fingerprint": mallory.fingerprint,
                        "public_key_pem": mallory.public_key_pem}, mallory)  # fmt: skip
    expected = (
        f"audit event #{seq} .*is covered by a checkpoint signed by 'mallory', not by its actor"
        if claimed == ADMIN
        else f"audit event #{seq} .*'mallory' was not an active admin at that point"
    )
    with pytest.raises(VerificationError, match=expected):
        reg.verify_audit(expect_head=head)
    with pytest.raises(VerificationError, match=expected):
        reg.identities.create("mallory2", Role.REVIEWER, actor="mallory")
    with pytest.raises(VerificationError, match=expected):
        reg.deployments.current("staging")
    result = cli(site, "audit", "verify", "--expect-head", f"{head[0]}:{head[1]}")
    assert result.exit_code == 1 and "not" in result.stderr


def test_a_replaced_admin_key_is_refused(site: Path) -> None:
    # the admin's public key is swapped for mallory's, and every checkpoint the admin
    # signed is re-signed with mallory's key (database and file)
    reg = opened(site)
    mallory = KeyStore(site / "mallory").create(ADMIN)
    sql(reg, "UPDATE identities SET public_key_pem = ?, key_fingerprint = ? WHERE name = ?",
        [mallory.public_key_pem, mallory.fingerprint, ADMIN])  # fmt: skip
    for seq, digest, created in sql(
        reg, "SELECT seq, head_hash, created_at FROM audit_checkpoints WHERE signer = ?", [ADMIN]
    ):
        message = checkpoint_message(reg.registry_id, seq, digest, ADMIN, created)
        sql(reg, "UPDATE audit_checkpoints SET signature = ? WHERE seq = ? AND signer = ?",
            [mallory.sign(message), seq, ADMIN])  # fmt: skip
    file = site / "reg" / "audit-checkpoints.jsonl"
    lines = []
    for line in file.read_text().splitlines():
        entry = json.loads(line)
        if entry["signer"] == ADMIN:
            created = datetime.fromisoformat(entry["created_at"])
            message = checkpoint_message(reg.registry_id, entry["seq"], entry["head_hash"],
                                         ADMIN, created)  # fmt: skip
            entry["signature"] = mallory.sign(message)
        lines.append(json.dumps(entry))
    file.write_text("".join(line + "\n" for line in lines))
    with pytest.raises(VerificationError, match="signed by alice.*does not verify"):
        reg.verify_audit()
    with pytest.raises(VerificationError):
        Registry.open(site / "reg", keys=KeyStore(site / "mallory")).identities.create(
            "bob", Role.ADMIN, actor=ADMIN
        )


def test_an_engineer_who_edits_her_role_cannot_act_as_admin(site: Path) -> None:
    reg = opened(site)
    sql(reg, "UPDATE identities SET role = 'admin' WHERE name = ?", [ENGINEER])
    with pytest.raises(VerificationError, match='identities row eve: role is "admin" but its '
                       'signed history says "engineer"'):  # fmt: skip
        reg.identities.create("bob", Role.ADMIN, actor=ENGINEER)
    assert "bob" not in {r[0] for r in sql(reg, "SELECT name FROM identities")}


def test_the_registry_verifies_from_outside_with_only_its_root_file(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = cli(site, "trust", "export")
    assert result.exit_code == 0, result.output
    root_file = tmp_path / "root.json"
    root_file.write_text(result.stdout)
    pinned = TrustRoot.read(root_file)
    assert pinned.name == ADMIN and pinned.registry_id == opened(site).registry_id
    # the attacker rebuilds the history under another admin key (same registry id, names)
    monkeypatch.setenv("LORALEDGER_KNOWN_ROOTS", str(tmp_path / "attackers-known.json"))
    fake = Registry.init(tmp_path / "fake", keys=KeyStore(tmp_path / "fake-keys"))
    sql(fake, "UPDATE registry_meta SET value = ? WHERE key = 'registry_id'", [pinned.registry_id])
    fake = Registry.open(tmp_path / "fake", keys=KeyStore(tmp_path / "fake-keys"))
    fake.identities.create(ADMIN, Role.ADMIN, actor=None)
    # an auditor's fresh machine: nothing known, only the root file
    monkeypatch.setenv("LORALEDGER_KNOWN_ROOTS", str(tmp_path / "fresh-known.json"))
    verified = cli(site, "--trust-root", str(root_file), "audit", "verify")
    assert verified.exit_code == 0 and "as pinned by --trust-root" in verified.stdout
    refused = cli(tmp_path / "fake", "--trust-root", str(root_file), "audit", "verify",
                  keys=tmp_path / "fake-keys")  # fmt: skip
    assert refused.exit_code == 1
    assert "not from the pinned root 'alice'" in refused.stderr
    # unpinned, this machine remembers the root it saw first and refuses a change
    first = cli(site, "audit", "verify")
    assert first.exit_code == 0, first.output
    changed = cli(tmp_path / "fake", "audit", "verify", keys=tmp_path / "fake-keys")
    assert changed.exit_code == 1 and "when this machine first used it" in changed.stderr
    # the remembered roots are listed, and one is forgotten on purpose (a registry
    # re-created): then the next use trusts what it finds, and says so
    known = cli(site, "trust", "known")
    assert known.stdout.split() == [pinned.registry_id, ADMIN, pinned.key_fingerprint]
    assert cli(site, "trust", "forget", "no-such-id").exit_code == 2
    forgot = cli(site, "trust", "forget", pinned.registry_id)
    assert forgot.exit_code == 0 and f"Forgot the root of registry {pinned.registry_id}" in (
        forgot.stdout
    )
    assert "No roots remembered" in cli(site, "trust", "known").stdout
    again = cli(tmp_path / "fake", "audit", "verify", keys=tmp_path / "fake-keys")
    assert again.exit_code == 0 and "trusted on first use" in again.stdout


def test_a_refusal_cannot_be_cut_from_the_log_unseen(site: Path) -> None:
    # The engineer tries to approve (her role may not), then deletes the refusal: it was
    # checkpointed with her own key, in the database and the file beside it.
    reg = opened(site)
    with pytest.raises(PermissionDenied):
        decide(reg, V4, "staging", "approve", comment="mine", actor=ENGINEER,
               policy=site / "policy.yaml")  # fmt: skip
    refusal = reg.audit_events(action="access.refused")[-1]
    assert refusal.actor == ENGINEER and reg.audit_head()[0] == refusal.seq
    (signer,) = sql(reg, "SELECT signer FROM audit_checkpoints WHERE seq = ?", [refusal.seq])[0]
    assert signer == ENGINEER
    sql(reg, "DELETE FROM audit_events WHERE seq = ?", [refusal.seq])
    sql(reg, "DELETE FROM audit_checkpoints WHERE seq = ?", [refusal.seq])
    with pytest.raises(VerificationError, match="audit log truncated"):
        reg.deployments.current("staging")
    with pytest.raises(VerificationError, match="truncated"):
        reg.verify_audit()


def test_every_test_the_threat_model_cites_exists() -> None:
    import re

    root = Path(__file__).resolve().parents[1]
    text = (root / "docs" / "threat-model.md").read_text()
    cited = re.findall(r"`((?:tests/[\w/]+\.py)|test_forgery)::(\w+)`", text)
    assert len(cited) >= 20
    for module, name in cited:
        path = root / "tests" / "test_forgery.py" if module == "test_forgery" else root / module
        assert f"def {name}(" in path.read_text(), f"{module}::{name} is cited but missing"


def test_quick_verification_checks_what_came_after_a_known_head(site: Path) -> None:
    reg = opened(site)
    seq, digest = reg.audit_head()
    decide(reg, V4, "staging", "approve", comment="ok", actor=SECOND, policy=site / "policy.yaml")
    quick = reg.verify_records_since(seq)
    assert quick["approvals"] == 1 and quick["adapter_versions"] == 0 and quick["identities"] == 5
    result = cli(site, "audit", "verify", "--quick", "--expect-head", f"{seq}:{digest}")
    assert result.exit_code == 0 and f"quick: since #{seq}" in result.stdout, result.output
    assert cli(site, "audit", "verify", "--quick").exit_code == 2
    # a row inserted anywhere is found by the counts; an older row edited in place only by
    # the full check
    sql(reg, "UPDATE approvals SET comment = 'edited' WHERE id = ?", [approval_id(reg, V1)])
    reg.verify_records_since(reg.audit_head()[0])
    with pytest.raises(VerificationError, match="comment is"):
        reg.verify_records()
    sql(reg, "INSERT INTO approvals SELECT * REPLACE ('forged-q' AS id) FROM approvals LIMIT 1")
    with pytest.raises(
        VerificationError, match="approvals has 5 rows but the audit log recorded 4"
    ):
        reg.verify_records_since(reg.audit_head()[0])


# --- the evidence rows: gate checks, evaluation runs, comparisons, attestations ----------

EVIDENCE_TABLES = (
    "gate_checks", "eval_runs", "eval_metrics", "eval_samples", "comparisons",
    "comparison_results", "attestations", "policy_versions",
)  # fmt: skip


def another(kind: str, value: Any, salt: int) -> Any:
    """Another value of a column of DuckDB type ``kind`` (never the same one); JSON text
    stays JSON of the same shape where it can."""
    if kind == "BOOLEAN":
        return not value
    if kind in ("INTEGER", "BIGINT"):
        return (value or 0) + 10 + salt
    if kind == "DOUBLE":
        return (value or 0.0) + 0.5 + salt
    if kind.startswith("TIMESTAMP"):
        return f"2030-01-0{1 + salt % 9} 00:00:00"
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        return f"{value or ''}x{salt}"
    if isinstance(parsed, dict) and parsed:
        first = sorted(parsed)[salt % len(parsed)]
        item = parsed[first]
        replaced = (
            not item if isinstance(item, bool)
            else item + 1 if isinstance(item, int | float)
            else [*item, f"x{salt}"] if isinstance(item, list)
            else {**item, f"x{salt}": "y"} if isinstance(item, dict)
            else f"{item}x{salt}"
        )  # fmt: skip
        return json.dumps({**parsed, first: replaced})
    return json.dumps({f"x{salt}": "y"} if isinstance(parsed, dict) else [f"x{salt}"])


@pytest.mark.parametrize("table", [*EVIDENCE_TABLES, "adapter_versions", "adapter_files",
                                   "signatures"])  # fmt: skip
def test_every_column_of_every_evidence_table_changed_is_refused(
    built: Path, tmp_path: Path, table: str
) -> None:
    columns = sql(
        opened(built),
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = ? "
        "ORDER BY ordinal_position",
        [table],
    )
    for salt, (column, kind) in enumerate(columns):
        site = Path(shutil.copytree(built, tmp_path / f"{table}-{column}"))
        reg = opened(site)
        rowids = [r[0] for r in sql(reg, f"SELECT rowid FROM {table} ORDER BY rowid")]
        target = rowids[salt % len(rowids)]
        (value,) = sql(reg, f"SELECT {column} FROM {table} WHERE rowid = ?", [target])[0]
        new = another(kind, value, salt)
        sql(reg, f"UPDATE {table} SET {column} = ? WHERE rowid = ?", [new, target])
        named = "adapter_versions|adapter_files|signatures" if "adapter" in table or table == (
            "signatures") else f"{table.split('_')[0]}|{table}"  # fmt: skip
        with pytest.raises(VerificationError, match=named):
            reg.verify_records()
        shutil.rmtree(site)


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        ("UPDATE policy_versions SET text = replace(text, 'count: 1', 'count: 0')",
         "its text is not the text whose sha256 it records"),
        ("UPDATE policy_versions SET text = ?, sha256 = ?", "sha256 is"),
        ("DELETE FROM policy_versions", "policy_versions row 1, recorded by audit event"),
    ],
)  # fmt: skip
def test_the_policy_in_force_edited_or_deleted_is_refused_where_it_is_read(
    site: Path, edit: str, problem: str
) -> None:
    """Issue #35: the policy that judges a promotion is the registry's signed record. An
    approval rule loosened in the row (with or without its hash), or the whole record
    deleted so that a file would judge, is refused by the gate and by promote."""
    reg = opened(site)
    lax = "version: 1\nenvironments:\n  staging: {}\n"
    params = [lax, hashlib.sha256(lax.encode()).hexdigest()] if "?" in edit else None
    sql(reg, edit, params)
    for read in (
        lambda: check_gate(reg, V4, "staging", actor=REVIEWER),
        lambda: promote(reg, V4, "staging", actor=REVIEWER),
    ):
        with pytest.raises(VerificationError, match=problem):
            read()
    assert cli(site, "audit", "verify").exit_code == 1


def test_a_flipped_gate_verdict_is_refused_where_it_is_read(site: Path) -> None:
    reg = opened(site)
    (check_id,) = sql(reg, "SELECT id FROM gate_checks WHERE NOT passed LIMIT 1")[0]
    ((report,),) = sql(reg, "SELECT report FROM gate_checks WHERE id = ?", [check_id])
    forged = report.replace('"passed":false', '"passed":true')
    sql(reg, "UPDATE gate_checks SET passed = true, report = ? WHERE id = ?", [forged, check_id])
    message = f"gate_checks row {check_id}: passed is true but audit event #.* says false"
    with pytest.raises(VerificationError, match=message):
        reg.gate_checks.get(check_id)
    result = cli(site, "audit", "verify")
    assert result.exit_code == 1 and f"gate_checks row {check_id}" in result.stderr


def test_an_edited_score_is_refused_where_it_is_read(site: Path) -> None:
    reg = opened(site)
    run = reg.evaluations.latest(SCORED[0], "sanity")
    sql(reg, "UPDATE eval_samples SET passed = true, metrics = '{\"acc\": 1.0}' "
        "WHERE run_id = ?", [run.id])  # fmt: skip
    with pytest.raises(VerificationError, match=f"eval_samples rows of run {run.id} differ"):
        reg.evaluations.get(run.id)
    sql(reg, "UPDATE eval_metrics SET value = 1.0 WHERE run_id = ?", [run.id])
    with pytest.raises(VerificationError, match=f"eval_runs row {run.id}: metrics is"):
        reg.evaluations.latest(SCORED[0], "sanity")


def test_an_edited_comparison_is_refused_where_it_is_read(site: Path) -> None:
    reg = opened(site)
    comparison = reg.evaluations.comparisons()[0]
    sql(reg, "UPDATE comparison_results SET p_value = 0.5, ci_low = -1 WHERE comparison_id = ?",
        [comparison.id])  # fmt: skip
    with pytest.raises(VerificationError, match=f"comparisons row {comparison.id}: one of its"):
        reg.evaluations.comparison(comparison.id)


def test_attestations_deleted_inserted_or_re_signed_are_refused(site: Path) -> None:
    reg = opened(site)
    (provenance,) = reg.attestations.list(subject=SCORED[0], kind="provenance")
    sql(reg, "DELETE FROM attestations WHERE id = ?", [provenance.id])
    with pytest.raises(VerificationError, match=f"attestations row {provenance.id}.* is missing"):
        reg.verify_records()
    sql(reg, "INSERT INTO attestations SELECT * REPLACE (? AS id) FROM attestations LIMIT 1",
        [provenance.id])  # fmt: skip
    with pytest.raises(VerificationError, match=f"attestations row {provenance.id}: kind is"):
        reg.verify_records()


def test_an_attestation_re_signed_by_its_signer_is_refused(site: Path) -> None:
    # the engineer re-signs a statement of her own (her key, a digest she chose)
    reg = opened(site)
    (test_result,) = reg.attestations.list(subject=reg.evaluations.latest(SCORED[1], "sanity").id)
    statement = reg.attestations.verify(test_result)
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    from loraledger.registry.dsse import envelope_sha256, sign_statement

    envelope = sign_statement(statement, reg.keys.load(ENGINEER))
    sql(reg, "UPDATE attestations SET envelope = ?, envelope_sha256 = ?, artifact_digest = ? "
        "WHERE id = ?", [canonical_json(envelope), envelope_sha256(envelope), "0" * 64,
                         test_result.id])  # fmt: skip
    with pytest.raises(VerificationError, match=f"attestations row {test_result.id}: "):
        reg.verify_records()
