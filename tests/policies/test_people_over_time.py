"""A team's week with people and keys (issue #36), each person acting from their own key
directory as on their own machine: an engineer leaves, a reviewer rotates her key and
signs from a second (dashboard) key, a key is stolen -- and production keeps verifying,
rollback keeps working, one person counts once."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from loraledger.policies.approvals import decide
from loraledger.policies.deployments import promote, rollback
from loraledger.policies.gates import check_gate
from loraledger.policies.release import ApprovalRule
from loraledger.policies.serving import sync
from loraledger.policies.tally import tally
from loraledger.policies.trace import trace_environment
from loraledger.registry import Registry, Role
from loraledger.registry.keys import KeyStore

from loraledger.errors import Conflict, GateRefused, PermissionDenied, SigningKeyError
from tests.conftest import ADMIN, AUDITOR, ENGINEER, REVIEWER
from tests.harness.conftest import PLAIN
from tests.policies.conftest import SECOND
from tests.postgres import PASSWORD


def on_machine(registry: Registry, directory: Path) -> Registry:
    return Registry.open(registry.address, keys=KeyStore(directory))


def released(registry: Registry, ref: str, policy: Path) -> None:
    """``ref`` approved and promoted to staging, then to production (two reviewers)."""
    decide(registry, ref, "staging", "approve", comment="ok", actor=REVIEWER)
    promote(registry, ref, "staging", actor=REVIEWER)
    for reviewer in (REVIEWER, SECOND):
        decide(registry, ref, "production", "approve", comment="ok", actor=reviewer)
    promote(registry, ref, "production", actor=SECOND)


def test_a_week_of_people_and_keys(reg: Registry, policy: Path, tmp_path: Path) -> None:
    released(reg, PLAIN[0], policy)
    # Monday: eve, who registered what production runs, leaves
    reg.identities.revoke(ENGINEER, actor=ADMIN, reason="left")
    assert reg.adapters.verify(PLAIN[0]).signer == ENGINEER
    assert trace_environment(reg, "production").complete

    # Tuesday: rita gets a new laptop; her key is rotated, and she keeps a dashboard key
    laptop, dashboard = tmp_path / "rita-laptop", tmp_path / "rita-dashboard"
    pem = KeyStore(laptop).create(REVIEWER).public_key_pem
    reg.identities.rotate(REVIEWER, pem, actor=ADMIN, label="laptop")
    pem = KeyStore(dashboard).create(REVIEWER).public_key_pem
    reg.identities.add_key(REVIEWER, pem, actor=ADMIN, label="dashboard")
    with pytest.raises(SigningKeyError, match="was retired"):
        decide(reg, PLAIN[1], "staging", "approve", comment="ok", actor=REVIEWER)
    ritas_laptop, ritas_dashboard = on_machine(reg, laptop), on_machine(reg, dashboard)

    # Wednesday: the next version; rita approves it for production from both her keys
    decide(ritas_laptop, PLAIN[1], "staging", "approve", comment="ok", actor=REVIEWER)
    promote(ritas_laptop, PLAIN[1], "staging", actor=REVIEWER)
    decide(ritas_laptop, PLAIN[1], "production", "approve", comment="ok", actor=REVIEWER)
    with pytest.raises(GateRefused, match="rita already decided 'approve'.*one person counts"):
        decide(ritas_dashboard, PLAIN[1], "production", "approve", comment="ok", actor=REVIEWER)
    check = check_gate(reg, PLAIN[1], "production", actor=SECOND)
    version = reg.adapters.get(PLAIN[1])
    counted = tally(reg, version, "production", check.inputs_sha256, _two()).counted
    assert [a.signer for a in counted] == [REVIEWER]
    with pytest.raises(Conflict, match="1 of 2 valid approvals \\(rita\\)"):
        promote(ritas_laptop, PLAIN[1], "production", actor=REVIEWER)
    decide(reg, PLAIN[1], "production", "approve", comment="ok", actor=SECOND)
    promote(ritas_dashboard, PLAIN[1], "production", actor=REVIEWER)

    # Friday: it answers badly; production goes back to what eve (gone) registered and
    # rita approved with the key she no longer holds
    back = rollback(reg, "production", reason="bad answers", actor=SECOND)
    assert back.adapter == PLAIN[0]
    assert reg.adapters.verify(back.adapter).signer == ENGINEER
    assert trace_environment(reg, "production").complete
    synced = sync(reg, "production", tmp_path / "serving")  # what the servers load
    assert synced.deployment.id == back.id
    reg.verify_audit()
    reg.verify_records()


def test_a_stolen_reviewer_key_voids_the_approvals_it_made_after(
    reg: Registry, policy: Path
) -> None:
    rosa = reg.identities.create("rosa", Role.REVIEWER, actor=ADMIN)
    before = decide(reg, PLAIN[0], "staging", "approve", comment="before", actor="rosa")
    reg.identities.create("witness", Role.AUDITOR, actor=ADMIN)  # someone else's event
    time.sleep(0.01)
    stolen_at = datetime.now(UTC).replace(tzinfo=None)
    after = decide(reg, PLAIN[1], "staging", "approve", comment="the thief", actor="rosa")
    reg.identities.revoke(
        "rosa", actor=ADMIN, reason="phished", compromised_since=stolen_at,
        key=rosa.key_fingerprint,
    )  # fmt: skip
    one = ApprovalRule(count=1, role="reviewer")
    kept = tally(reg, reg.adapters.get(PLAIN[0]), "staging", before.inputs_sha256, one)
    assert "rosa" in [a.signer for a in kept.counted]
    void = tally(reg, reg.adapters.get(PLAIN[1]), "staging", after.inputs_sha256, one)
    assert "rosa" not in [a.signer for a in void.counted]
    (why,) = [why for a, why in void.not_counted if a.id == after.id]
    assert f"key {rosa.key_fingerprint[:16]}… was compromised since" in why
    check = check_gate(reg, PLAIN[1], "staging", actor=ADMIN)
    (approvals,) = [r for r in check.rules if r.kind == "approvals"]
    assert "rosa" in approvals.message and "compromised" in approvals.message
    reg.verify_audit()


def _two() -> ApprovalRule:
    return ApprovalRule(count=2, role="reviewer")


def test_the_auditor_does_the_auditors_job_on_a_read_only_account(
    reg: Registry, policy: Path, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """On PostgreSQL the documented auditor account only reads: every read command the
    docs give the auditor works on it, records nothing, and the pack it exports verifies
    offline. A refused export leaves no file."""
    if backend != "postgresql":
        pytest.skip("a read-only database account is PostgreSQL's")
    from loraledger.policies.evidence import export_pack
    from loraledger.policies.exports import provenance_envelope
    from loraledger.policies.mlbom import ml_bom
    from loraledger.policies.pack_checks import verify_pack
    from loraledger.registry.postgres import PostgresDatabase, create_roles

    server = request.getfixturevalue("postgres_server")
    if reg.deployments.current("production") is None:
        released(reg, PLAIN[0], policy)
    account = f"auditor_{uuid.uuid4().hex[:8]}"
    server.psql(f"CREATE ROLE {account} LOGIN PASSWORD '{PASSWORD}'")
    assert isinstance(reg.db, PostgresDatabase)
    create_roles(reg.db, auditors=[account])
    as_auditor = Registry.open(server.url(reg.db.url.rsplit("/", 1)[1], account), keys=reg.keys)
    head = reg.audit_head()
    assert not as_auditor.may_append() and reg.may_append()
    assert trace_environment(as_auditor, "production").complete
    as_auditor.verify_audit()
    as_auditor.verify_records()
    assert as_auditor.deployments.history("production")
    check = check_gate(as_auditor, PLAIN[0], "production", actor=AUDITOR)
    assert check.id not in reg.gate_checks.ids(PLAIN[0], "production")  # a dry run
    assert ml_bom(as_auditor, PLAIN[0])["components"]
    assert provenance_envelope(as_auditor, PLAIN[0])["signatures"]
    pack = export_pack(as_auditor, "production", tmp_path / "pack.tar.gz", actor=AUDITOR)
    report = verify_pack(pack)
    assert report.passed, [c for c in report.checks if not c.passed]
    assert reg.audit_head() == head  # nothing was recorded
    # a refused export (an engineer may not export) leaves no file, on either account
    for registry in (as_auditor, reg):
        refused = tmp_path / f"refused-{registry.may_append()}.tar.gz"
        with pytest.raises(PermissionDenied):
            export_pack(registry, "production", refused, actor=ENGINEER)
        assert not refused.exists()
