"""Promotion through the gate, one-step rollback, and concurrent promotions -- on real
adapters trained by the trainer on the tiny base."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from loraledger.policies.approvals import decide
from loraledger.policies.deployments import promote, rollback
from loraledger.policies.release import load_policy
from loraledger.registry import Registry, Role
from loraledger.registry.audit import utcnow
from loraledger.registry.models import Deployment

from loraledger.errors import Conflict, PermissionDenied
from tests.conftest import ADMIN, ENGINEER, REVIEWER
from tests.harness.conftest import PLAIN, WILD
from tests.policies.conftest import SECOND, events
from tests.policies.helpers import POLICY, deploy, use_policy
from tests.registry.helpers import flipped_weights


def test_promotion_needs_the_gate_and_rollback_is_one_step(reg: Registry, tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY.replace("staging", "qa").replace("production", "live"))
    loaded = load_policy(use_policy(reg, policy))
    refused = len(events(reg, "deploy.refused"))
    with pytest.raises(Conflict, match="refused: the gate for qa fails: 1 approval"):
        promote(reg, PLAIN[0], "qa", actor=REVIEWER, policy=loaded)
    assert len(events(reg, "deploy.refused")) == refused + 1 and reg.deployments.history("qa") == []
    decide(reg, PLAIN[0], "qa", "approve", comment="ok", actor=REVIEWER, policy=loaded)
    first = promote(reg, PLAIN[0], "qa", actor=SECOND, policy=loaded)
    assert (first.seq, first.action, first.adapter) == (1, "promote", PLAIN[0])
    assert len(first.approval_ids) == 1
    # live requires qa and two distinct reviewers
    with pytest.raises(Conflict, match="2 approval"):
        promote(reg, PLAIN[1], "live", actor=REVIEWER, policy=loaded)
    decide(reg, PLAIN[0], "live", "approve", comment="ok", actor=REVIEWER, policy=loaded)
    decide(reg, PLAIN[0], "live", "approve", comment="ok", actor=SECOND, policy=loaded)
    assert promote(reg, PLAIN[0], "live", actor=REVIEWER, policy=loaded).seq == 1
    # a second version to qa, then back in one step
    decide(reg, PLAIN[1], "qa", "approve", comment="ok", actor=SECOND, policy=loaded)
    assert promote(reg, PLAIN[1], "qa", actor=REVIEWER, policy=loaded).seq == 2
    with pytest.raises(PermissionDenied):
        rollback(reg, "qa", reason="bad answers", actor=ENGINEER)
    back = rollback(reg, "qa", reason="bad answers", actor=REVIEWER)
    assert (back.seq, back.action, back.adapter, back.reason) == (
        3,
        "rollback",
        PLAIN[0],
        "bad answers",
    )
    assert reg.deployments.current("qa") == back
    again = rollback(reg, "qa", reason="it was fine", actor=ADMIN, to=PLAIN[1])
    assert again.adapter == PLAIN[1]
    with pytest.raises(Conflict, match=r"wild@v1 did not run in qa before"):
        rollback(reg, "qa", reason="x", actor=REVIEWER, to=WILD[0])
    with pytest.raises(Conflict, match="nothing was ever deployed to nowhere"):
        rollback(reg, "nowhere", reason="x", actor=REVIEWER)
    assert [d.action for d in reg.deployments.history("qa")] == [
        "promote", "promote", "rollback", "rollback"
    ]  # fmt: skip


def test_a_tampered_earlier_version_is_not_a_rollback_target(reg: Registry, tmp_path: Path) -> None:
    env = "canary"
    for ref in WILD:
        deploy(reg, env, ref)
    with (
        flipped_weights(reg, WILD[0]),
        pytest.raises(
            Conflict, match="no version to roll wild in canary back to .*wild@v1.*signature"
        ),
    ):
        rollback(reg, env, reason="incident", actor=REVIEWER)
    assert len(reg.deployments.history(env)) == 2


def test_of_two_promotions_at_once_exactly_one_wins(reg: Registry) -> None:
    key = reg.act_as(REVIEWER)
    version = reg.adapters.get(WILD[0])

    def deployment() -> Deployment:
        return Deployment(
            id=str(uuid.uuid4()), seq=0, environment="race", adapter=version.ref,
            artifact_digest=version.digest, action="promote", reason="race", gate_check_id=None,
            approval_ids=(), policy_sha256=None, created_at=utcnow(), created_by=REVIEWER,
        )  # fmt: skip

    # both looked at the empty environment (seq 0) before either wrote
    reg.deployments.record(deployment(), key, {Role.REVIEWER}, after_seq=0)
    with pytest.raises(Conflict, match="changed while this ran"):
        reg.deployments.record(deployment(), key, {Role.REVIEWER}, after_seq=0)
    assert len(reg.deployments.history("race")) == 1


def test_two_processes_promoting_at_once_exactly_one_wins(reg: Registry, tmp_path: Path) -> None:
    import subprocess
    import sys

    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nenvironments:\n  race2:\n    provenance: {signed: true}\n")
    use_policy(reg, policy)
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from loraledger.errors import Conflict\n"
        "from loraledger.policies.deployments import promote\n"
        "from loraledger.registry import Registry\n"
        "from loraledger.registry.keys import KeyStore\n"
        "reg = Registry.open(sys.argv[1], keys=KeyStore(Path(sys.argv[2])))\n"
        "try:\n"
        "    d = promote(reg, sys.argv[3], 'race2', actor=sys.argv[4], policy=Path(sys.argv[5]))\n"
        "    print('WON', d.seq)\n"
        "except Conflict as error:\n"
        "    print('LOST', error)\n"
    )
    args = [str(reg.address), str(reg.keys.directory), PLAIN[0], REVIEWER, str(policy)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    lines = sorted(out.strip().splitlines()[-1] for out, _ in outputs)
    # the loser either lost the race inside the write transaction or came second and saw
    # the winner's deployment; either way nothing is written twice and nothing is lost
    assert lines[0] in ("LOST faq-bot@v1 is already what race2 runs",) or lines[0].startswith(
        "LOST faq-bot's track in 'race2' changed while this ran"
    ), outputs
    assert lines[1] == "WON 1", outputs
    assert [d.adapter for d in reg.deployments.history("race2")] == [PLAIN[0]]
