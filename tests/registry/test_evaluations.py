"""Evaluation runs as stored: recorded with their audit event and signed test result,
read back only when their results match what was audited, refused otherwise. (The
harness that produces runs is tested in tests/harness/.)"""

from __future__ import annotations

import functools
import uuid
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loraledger.harness.suites import find_suite
from loraledger.registry import Registry, evaluations, schema
from loraledger.registry.audit import utcnow
from loraledger.registry.evaluations import results_digest
from loraledger.registry.models import EvalRun, EvalSample, TaskMetric
from loraledger.registry.synthetic import write_lora_adapter

from loraledger.errors import NotFound, PermissionDenied, VerificationError
from tests.conftest import AUDITOR, ENGINEER
from tests.registry.helpers import Sample, replace_samples, sql
from tests.registry.test_base_models import base_files, register

SUITE, TASK = "sanity", "sanity_mc"


@pytest.fixture
def subject(registry: Registry, tmp_path: Path) -> str:
    register(registry, base_files(tmp_path / "base"))
    adapter = write_lora_adapter(tmp_path / "adapter", base_model="tiny@v1", hidden=16, layers=1)
    return registry.adapters.register(adapter, "bot", actor=ENGINEER).ref


def a_run(registry: Registry, ref: str, *, status: str = "complete", n: int = 6) -> EvalRun:
    suite = find_suite(SUITE)
    samples = tuple(
        EvalSample(
            task=TASK, doc_id=i, filter="none", sample_key=f"q{i}", doc_hash=f"{i:064x}",
            prompt_hash=f"{i:064x}", input=f"question {i}", output="A", target="A",
            metrics={"acc": float(i % 3 != 0)}, passed=i % 3 != 0, reason="test",
            category=None if i == 0 else f"c{i % 2}",  # the first as recorded before categories
        )
        for i in range(n)
    )  # fmt: skip
    accuracy = sum(s.metrics["acc"] for s in samples) / n
    now = utcnow()
    return EvalRun(
        id=str(uuid.uuid4()), subject=registry.evaluations.subject(ref),
        quantization={"method": "none"}, compute_dtype="float32", suite_name=suite.name,
        suite_kind=suite.kind, suite_digest=suite.digest, suite_files=suite.files,
        task_config_hashes={}, settings={}, seed=1, lm_eval_version="test", libraries={},
        status=status, error=None if status == "complete" else "it broke", sample_count=n,
        results_sha256=None, started_at=now, finished_at=now, created_by="whoever",
        metrics=(TaskMetric(task=TASK, metric="acc", filter="none", value=accuracy,
                            stderr=None, higher_is_better=True, sample_count=n),),
        samples=samples,
    )  # fmt: skip


def test_a_run_is_stored_audited_and_read_back_whole(registry: Registry, subject: str) -> None:
    run = a_run(registry, subject)
    stored = registry.evaluations.record(run, actor=ENGINEER)
    assert stored.created_by == ENGINEER  # the actor, whatever the record said
    assert stored.results_sha256 == results_digest(run.metrics, run.samples)
    assert stored.samples == run.samples and stored.metrics == run.metrics
    assert [s.category for s in stored.samples[:3]] == [None, "c1", "c0"]
    assert "category" not in stored.samples[0].model_dump()  # hashed as before categories
    (event,) = registry.audit_events(action="eval.run")
    assert event.payload["run_id"] == run.id and event.payload["results_sha256"]
    assert registry.evaluations.latest(subject, SUITE).id == run.id
    (listed,) = registry.evaluations.list(subject)
    assert listed.samples == () and listed.metrics == run.metrics  # listings skip samples
    assert registry.evaluations.get(run.id[:8]).id == run.id  # a unique prefix will do
    (attestation,) = registry.attestations.list(subject=run.id)
    assert attestation.kind == "test-result" and attestation.signer == ENGINEER


def test_a_failed_run_keeps_no_results(registry: Registry, subject: str) -> None:
    stored = registry.evaluations.record(a_run(registry, subject, status="failed"), actor=ENGINEER)
    assert (stored.metrics, stored.samples, stored.results_sha256) == ((), (), None)
    assert stored.error == "it broke"
    with pytest.raises(NotFound, match="has no complete evaluation"):
        registry.evaluations.latest(subject, SUITE)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("UPDATE eval_samples SET passed = NOT passed WHERE doc_id = 1", "eval_samples rows of"),
        ("UPDATE eval_samples SET reason = 'fine' WHERE doc_id = 1", "eval_samples rows of"),
        ("UPDATE eval_samples SET category = 'c0' WHERE doc_id = 1", "eval_samples rows of"),
        ("UPDATE eval_samples SET category = NULL WHERE doc_id = 1", "eval_samples rows of"),
        ("UPDATE eval_samples SET category = 'c1' WHERE doc_id = 0", "eval_samples rows of"),
        ("DELETE FROM eval_samples WHERE doc_id = 2", "eval_samples rows of run .* differ"),
        ("UPDATE eval_metrics SET value = 1.0", "eval_runs row .*: metrics is"),
        ("UPDATE eval_metrics SET stderr = 0.5", "one of its quantization, .*metrics"),
        ("UPDATE eval_runs SET suite_digest = 'x' || suite_digest", ': suite_digest is "x'),
        ("UPDATE eval_runs SET settings = '{\"limit\": 2}'", "one of its quantization"),
        ("UPDATE eval_runs SET status = 'complete', results_sha256 = NULL", "results_sha256 is"),
    ],
)
def test_an_edited_run_is_refused(
    registry: Registry, subject: str, edit: str, message: str
) -> None:
    run = registry.evaluations.record(a_run(registry, subject), actor=ENGINEER)
    assert registry.verify_records()["eval_runs"] == 1
    sql(registry, edit)
    with pytest.raises(VerificationError, match=message):
        registry.evaluations.get(run.id)
    with pytest.raises(VerificationError, match=message):
        registry.verify_records()


def test_a_run_without_its_event_is_refused(registry: Registry, subject: str) -> None:
    run = registry.evaluations.record(a_run(registry, subject), actor=ENGINEER)
    with registry.db.read() as conn:
        (row,) = conn.execute("SELECT * FROM eval_runs").fetchall()
    sql(
        registry,
        f"INSERT INTO eval_runs VALUES ({', '.join('?' * len(row))})",
        ["copied", *row[1:]],
    )
    with pytest.raises(VerificationError, match="eval_runs row copied .*has no audit event"):
        registry.evaluations.get("copied")
    assert registry.evaluations.get(run.id).id == run.id
    with pytest.raises(VerificationError, match="eval_runs row copied has no audit event"):
        registry.verify_records()


def test_samples_moved_onto_another_run_are_refused(registry: Registry, subject: str) -> None:
    failed = registry.evaluations.record(a_run(registry, subject, status="failed"), actor=ENGINEER)
    done = registry.evaluations.record(a_run(registry, subject), actor=ENGINEER)
    sql(registry, "UPDATE eval_samples SET run_id = ? WHERE run_id = ?", [failed.id, done.id])
    with pytest.raises(VerificationError, match=f"eval_runs row {failed.id} is failed"):
        registry.evaluations.get(failed.id)
    sql(registry, "UPDATE eval_samples SET run_id = 'nowhere'")
    with pytest.raises(VerificationError, match="eval_samples rows of run nowhere belong to no"):
        registry.verify_records()


def test_samples_hashed_differently_fall_back_to_their_canonical_digest(
    registry: Registry, subject: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # samples_sha256 only vouches: where a later DuckDB encodes the rows differently
    # (here: another separator), the samples are rebuilt and the canonical results digest
    # -- the one the signed test result states -- decides
    run = registry.evaluations.record(a_run(registry, subject), actor=ENGINEER)
    (event,) = registry.audit_events(action="eval.run")
    assert event.payload["samples_sha256"] and event.payload["run_sha256"]
    monkeypatch.setattr(
        evaluations, "_SAMPLES_DIGEST", evaluations._SAMPLES_DIGEST.replace("chr(10)", "chr(13)")
    )
    assert registry.evaluations.get(run.id).samples == run.samples
    assert registry.verify_records()["eval_runs"] == 1
    sql(registry, "UPDATE eval_samples SET output = 'B' WHERE doc_id = 0")
    with pytest.raises(VerificationError, match="eval_samples rows of run"):
        registry.verify_records()


def test_only_those_who_evaluate_record(registry: Registry, subject: str) -> None:
    with pytest.raises(PermissionDenied):
        registry.evaluations.record(a_run(registry, subject), actor=AUDITOR)
    assert registry.evaluations.list() == []


@functools.cache
def _samples_table() -> duckdb.DuckDBPyConnection:
    """One migrated in-memory database for every example (migrating costs ~0.7 s)."""
    conn = duckdb.connect()
    schema.apply_pending(conn, utcnow())
    return conn


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["t1", "t2", "tâsk\n"]),
            st.integers(-5, 2**31 - 1),
            st.sampled_from(["none", "strict-match", "\x1f"]),
            _TEXT,
            _TEXT,
            st.one_of(st.none(), st.booleans()),
            st.one_of(st.none(), _TEXT),
        ),
        min_size=1,
        max_size=8,
        unique_by=lambda s: (s[0], s[2], s[1]),
    )
)
def test_the_samples_digest_is_the_same_in_python_as_in_duckdb(
    samples: list[Sample],
) -> None:
    # Python computes it for a PostgreSQL run whose escapes differ (and test_postgres.py
    # checks PostgreSQL's SQL): a registry copied between backends must verify, so they
    # must agree on every text (control characters, quotes, backslashes, non-ASCII) and
    # every order.
    conn = _samples_table()
    replace_samples(conn, samples)
    expected = evaluations.samples_digests(conn)
    assert evaluations.dialect_of(conn).name == "duckdb" and set(expected) == {"run"}
    assert evaluations.samples_digests_in_python(conn) == expected
