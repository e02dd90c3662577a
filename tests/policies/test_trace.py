"""The auditor's trace (every link verified) and a record's impact, on real trained
adapters of the tiny base."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from loraledger.policies.gates import check_gate
from loraledger.policies.trace import impact, trace_environment, trace_version
from loraledger.registry import Registry
from loraledger.registry.audit import utcnow

from loraledger.errors import Conflict
from tests.conftest import ENGINEER
from tests.harness.conftest import NF4, PLAIN, WILD, eval_registry  # noqa: F401  (fixture)
from tests.policies.helpers import deploy, use_policy
from tests.registry.helpers import sql
from tests.trainer.conftest import FAQ


def test_a_trained_version_traces_completely(eval_registry: Registry, tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nenvironments:\n  staging:\n    provenance: {signed: true}\n")
    use_policy(eval_registry, policy)
    check_gate(eval_registry, PLAIN[0], "staging", actor=ENGINEER, policy=policy)
    trace = trace_version(eval_registry, PLAIN[0])
    assert trace.complete, [link for link in trace.links if not link.verified]
    kinds = [link.kind for link in trace.links]
    assert kinds[:4] == ["adapter", "training run", "dataset", "base model"]
    assert "gate check" in kinds and kinds[-1] == "audit log"
    assert kinds[4] == "provenance attestation"
    dataset = next(link for link in trace.links if link.kind == "dataset")
    assert dataset.ref == "faq@v1" and dataset.detail["license"] == "CC-BY-4.0"
    audit = trace.links[-1].detail
    assert any("adapter.register" in e for e in audit["events"])


def test_an_edited_gate_check_is_a_broken_link(eval_registry: Registry, tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\nenvironments:\n  staging:\n    provenance: {signed: true}\n")
    use_policy(eval_registry, policy)
    check = check_gate(eval_registry, PLAIN[1], "staging", actor=ENGINEER, policy=policy)
    forged = check.model_copy(update={"passed": not check.passed}).model_dump_json()
    ((report,),) = sql(eval_registry, "SELECT report FROM gate_checks WHERE id = ?", [check.id])
    sql(eval_registry, "UPDATE gate_checks SET report = ? WHERE id = ?", [forged, check.id])
    try:
        trace = trace_version(eval_registry, PLAIN[1])
    finally:
        sql(eval_registry, "UPDATE gate_checks SET report = ? WHERE id = ?", [report, check.id])
    (bad,) = [link for link in trace.links if not link.verified]
    assert (bad.kind, bad.ref) == ("gate check", check.id)
    assert f"gate_checks row {check.id}: passed is" in (bad.problem or "")


def test_broken_links_are_named(eval_registry: Registry) -> None:
    outside = trace_version(eval_registry, WILD[0])
    assert not outside.complete
    run = next(link for link in outside.links if link.kind == "training run")
    assert run.problem == "registered from elsewhere: no training-run record"
    data = eval_registry.datasets.get("faq@v1")
    stored = eval_registry.store.path_of(data.file_sha256)
    original = stored.read_bytes()
    stored.chmod(0o644)
    stored.write_bytes(original.replace(b"overdraft", b"overdrawn"))
    try:
        damaged = trace_version(eval_registry, PLAIN[1])
    finally:
        stored.write_bytes(original)
        stored.chmod(0o444)
    (bad,) = [link for link in damaged.links if not link.verified]
    assert bad.kind == "dataset" and bad.ref == "faq@v1" and bad.problem


def test_trace_an_environment_at_a_moment(eval_registry: Registry) -> None:
    before = utcnow() - timedelta(seconds=1)
    first = deploy(eval_registry, "audit-env", PLAIN[0])
    between = utcnow()
    deploy(eval_registry, "audit-env", PLAIN[1])
    then = trace_environment(eval_registry, "audit-env", between)
    assert then.deployment == first and then.subject.startswith("audit-env at ")
    assert PLAIN[0] in then.subject
    assert PLAIN[1] in trace_environment(eval_registry, "audit-env").subject
    with pytest.raises(Conflict, match="nothing was deployed to audit-env at .* first deployment"):
        trace_environment(eval_registry, "audit-env", before)
    with pytest.raises(Conflict, match="nothing was ever deployed to nowhere"):
        trace_environment(eval_registry, "nowhere")


def test_impact_of_a_training_record(eval_registry: Registry) -> None:
    question, answer = FAQ[0]
    record = {
        "messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    }
    deploy(eval_registry, "impact-env", PLAIN[1])
    found = impact(eval_registry, record)
    assert found.datasets == ("faq@v1",)
    assert set(found.adapters) == {*PLAIN, NF4}
    assert found.environments["impact-env"] == (PLAIN[1],)
    nothing = impact(eval_registry, {"messages": [{"role": "user", "content": "never seen"}]})
    assert (nothing.datasets, nothing.adapters, nothing.environments) == ((), (), {})
