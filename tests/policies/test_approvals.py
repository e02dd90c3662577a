"""Approvals with separation of duties: signed, counted once, stale when the evidence
changes, forged and revoked ones not counted -- on real adapters trained by the trainer on
the tiny base."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from loraledger.harness.evaluate import EvalOptions, evaluate
from loraledger.policies.approvals import decide
from loraledger.policies.deployments import promote
from loraledger.policies.gates import check_gate
from loraledger.policies.release import ApprovalRule, load_policy
from loraledger.policies.tally import tally, verify_approval
from loraledger.registry import Registry, Role
from loraledger.registry.synthetic import write_lora_adapter

from loraledger.errors import (
    Conflict,
    PermissionDenied,
    PolicyNotInForce,
    UsageError,
    VerificationError,
)
from tests.conftest import ADMIN, ENGINEER, REVIEWER
from tests.harness.conftest import PLAIN
from tests.policies.conftest import events
from tests.policies.helpers import use_policy
from tests.registry.helpers import sql


def test_separation_of_duties_and_roles(reg: Registry, policy: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="a decision needs a comment: pass --comment TEXT"):
        decide(reg, PLAIN[0], "staging", "approve", comment=" ", actor=REVIEWER, policy=policy)
    with pytest.raises(PermissionDenied, match="has role engineer"):
        decide(reg, PLAIN[0], "staging", "approve", comment="ok", actor=ENGINEER, policy=policy)
    made = write_lora_adapter(tmp_path / "a", base_model="tiny@v1", hidden=64, layers=2, r=4,
                              targets=("q_proj",), seed=9)  # fmt: skip
    own = reg.adapters.register(made, "admins-own", actor=ADMIN)
    before = len(events(reg, "approval.refused"))
    with pytest.raises(
        PermissionDenied, match="alice registered admins-own@v1; separation of duties"
    ):
        decide(reg, own.ref, "staging", "approve", comment="mine", actor=ADMIN, policy=policy)
    assert len(events(reg, "approval.refused")) == before + 1
    assert reg.approvals.list(own.ref) == []


def test_an_approval_is_signed_counted_once_and_goes_stale(reg: Registry, policy: Path) -> None:
    approval = decide(
        reg,
        PLAIN[0],
        "staging",
        "approve",
        comment="evidence reviewed",
        actor=REVIEWER,
        policy=policy,
    )
    assert verify_approval(reg, approval) and approval.signer == REVIEWER
    check = check_gate(reg, PLAIN[0], "staging", actor=REVIEWER, policy=policy)
    assert check.passed and check.inputs_sha256 == approval.inputs_sha256
    with pytest.raises(Conflict, match="already decided 'approve' on this evidence"):
        decide(reg, PLAIN[0], "staging", "approve", comment="again", actor=REVIEWER, policy=policy)
    # new evidence: a newer evaluation run -> the approval is stale and no longer counts
    evaluate(reg, [PLAIN[0]], "sanity", actor=ENGINEER, options=EvalOptions(limit=2))
    stale = check_gate(reg, PLAIN[0], "staging", actor=REVIEWER, policy=policy)
    assert not stale.passed and stale.evidence_passed
    approvals_rule = next(r for r in stale.rules if r.kind == "approvals")
    assert "0 of 1 valid approvals" in approvals_rule.message and "stale" in approvals_rule.message


def test_forged_and_revoked_approvals_do_not_count(reg: Registry, policy: Path) -> None:
    loaded = load_policy(policy)
    first = decide(
        reg, PLAIN[1], "staging", "approve", comment="fine", actor=REVIEWER, policy=loaded
    )
    version = reg.adapters.get(PLAIN[1])
    rule = ApprovalRule(count=1)
    assert len(tally(reg, version, "staging", first.inputs_sha256, rule).counted) == 1
    forged = first.payload.replace('"fine"', '"fine, and production too"')
    sql(reg, "UPDATE approvals SET payload = ? WHERE id = ?", [forged, first.id])
    # A payload that differs from its row is not merely left uncounted: it is a
    # verification failure, named (issue #17; tests/test_forgery.py has the rest).
    with pytest.raises(VerificationError, match=f"approvals row {first.id}: comment is"):
        tally(reg, version, "staging", first.inputs_sha256, rule)
    sql(reg, "UPDATE approvals SET payload = ? WHERE id = ?", [first.payload, first.id])
    temp = f"temp-{uuid.uuid4().hex[:6]}"
    reg.identities.create(temp, Role.REVIEWER, actor=ADMIN)
    decide(reg, PLAIN[1], "staging", "approve", comment="ok", actor=temp, policy=loaded)
    assert len(tally(reg, version, "staging", first.inputs_sha256, rule).counted) == 2
    # she leaves: what she approved while she was here still counts (issue #36)
    reg.identities.revoke(temp, reason="left the bank", actor=ADMIN)
    result = tally(reg, version, "staging", first.inputs_sha256, rule)
    assert sorted(a.signer for a in result.counted) == sorted([REVIEWER, temp])
    # her key turns out stolen since before she approved: that approval is void
    placed = max(seq for a, seq in reg.approvals.placed(version.ref, "staging") if a.signer == temp)
    since = reg.audit_events()[placed - 2].created_at  # before it, and others' events since
    reg.identities.revoke(temp, reason="stolen", actor=ADMIN, compromised_since=since, key=(
        reg.identities.get(temp).key_fingerprint))  # fmt: skip
    result = tally(reg, version, "staging", first.inputs_sha256, rule)
    assert [a.signer for a in result.counted] == [REVIEWER]
    assert any("was compromised since" in why for _, why in result.not_counted)


def test_two_identities_holding_one_key_are_one_person(
    reg: Registry, policy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A registry written before a second enrolment of a key was refused (issue #35):
    the reviewer's key enrolled again as a dashboard identity, the engineer's as a
    reviewer. The reviewer's two approvals count once; the engineer, approving her own
    version under the second name, is refused by decide and not counted by the tally."""
    from loraledger.registry import identities

    monkeypatch.setattr(  # raising=False: against the code before the check, too
        identities, "refuse_enrolled_key", lambda conn, key_fingerprint: None, raising=False
    )
    monkeypatch.setattr(  # (and before keys had histories)
        identities, "_refuse_held_key", lambda core, conn, fingerprint, name: None, raising=False
    )
    suffix = uuid.uuid4().hex[:6]
    twin, own = f"rita-dash-{suffix}", f"eve-reviews-{suffix}"
    for holder, name in ((REVIEWER, twin), (ENGINEER, own)):
        pem = reg.identities.get(holder).public_key_pem
        reg.identities.create(name, Role.REVIEWER, actor=ADMIN, public_key_pem=pem)
        shutil.copyfile(reg.keys.path_for(holder), reg.keys.path_for(name))  # the same key
        reg.keys.path_for(name).chmod(0o600)
    monkeypatch.undo()
    env = f"twins-{suffix}"  # an environment of its own: nothing decided there yet
    policy.write_text(
        policy.read_text()
        + f"  {env}:\n    provenance: {{signed: true}}\n"
        + "    approvals: {count: 2, role: reviewer}\n"
    )
    loaded = load_policy(use_policy(reg, policy))
    for actor in (REVIEWER, twin):
        decide(reg, PLAIN[1], env, "approve", comment="reviewed", actor=actor, policy=loaded)
    with pytest.raises(PermissionDenied, match=f"{own} signs with the key of {ENGINEER}, who"):
        decide(reg, PLAIN[1], env, "approve", comment="mine", actor=own, policy=loaded)
    check = check_gate(reg, PLAIN[1], env, actor=REVIEWER, policy=loaded)
    approvals = next(r for r in check.rules if r.kind == "approvals")
    assert approvals.measured == 1
    assert f"{twin} is already counted with the key of {REVIEWER}" in approvals.message


def test_no_one_promotes_their_own_version_whatever_the_policy_says(
    reg: Registry, tmp_path: Path
) -> None:
    """Issue #35: `promote own@v1 --env production --policy lax.yaml`, where the file says
    `production: {}`, let an admin ship her own version with no approval. The policy is
    the registry's, not a file the promoter picks; and a policy the admin does make the
    registry's (signed, audited, in its history) may waive approvals, never separation of
    duties."""
    lax = tmp_path / "lax.yaml"
    lax.write_text("version: 1\nenvironments:\n  production: {}\n")
    made = write_lora_adapter(tmp_path / "a", base_model="tiny@v1", hidden=64, layers=2, r=4,
                              targets=("q_proj",), seed=11)  # fmt: skip
    own = reg.adapters.register(made, f"own-{uuid.uuid4().hex[:6]}", actor=ADMIN)
    before = len(events(reg, "deploy.refused"))
    for promoter in (ADMIN, REVIEWER):  # a file is nobody's to pick
        with pytest.raises(PolicyNotInForce, match="lax.yaml is not the registry's policy in"):
            promote(reg, own.ref, "production", actor=promoter, policy=lax)
    assert len(events(reg, "deploy.refused")) == before + 2
    use_policy(reg, lax, reason="production asks nothing")  # on the record, by the admin
    with pytest.raises(PermissionDenied, match=f"{ADMIN} registered {own.ref}; separation"):
        promote(reg, own.ref, "production", actor=ADMIN)
    assert len(events(reg, "deploy.refused")) == before + 3
    assert all(d.adapter != own.ref for d in reg.deployments.history("production"))
    # someone else may (the lax policy in force asks for nothing more)
    assert promote(reg, own.ref, "production", actor=REVIEWER, policy=lax).adapter == own.ref
