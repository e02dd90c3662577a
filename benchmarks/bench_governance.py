"""Governance latency at scale: status, trace, gate check, data impact and audit verify.

A registry is generated at two scales and the same operations are timed on each, so the
output reads as a ratio against a peer measured in the same run (the small registry):
a ratio near 1 means the operation does not slow down as the registry grows.

- full scale (the issue's): 10,000 adapter versions of 100 adapter names, 100,000 audit
  events (a signed checkpoint every 100, as when each change signs one), 1,000,000
  per-sample evaluation records, and 5 environments each running every name (a track
  per name, each promoted twice: 1,000 signed deployment records);
- small: a tenth of each.

One version is real end to end -- registered through the library with a training-run
record and its signed SLSA provenance, a recorded evaluation run with its signed test
result, a gate check, a signed approval and a promotion -- and is the one traced and
gated. The rest are copies of its rows made with SQL (other names, ids and digests), so
every table a query reads holds the full number of rows. The deployments are real signed
records (appended as a promotion appends them, without the gate).

The full-scale registry is then moved onto a PostgreSQL server started for the run (its
rows copied as they are, its files to a store directory) and measured again: the same
operations on a team's registry, against the embedded one as the peer.

Targets: status (every environment's tracks), the trace of one track, trace and gate
check < 100 ms, data impact < 1 s, audit verify < 5 s (on both backends).

    .venv/bin/python benchmarks/bench_governance.py [--repeat 5] [--versions 10000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from common import add_arguments, write_results
from loraledger.harness.suites import find_suite
from loraledger.policies.approvals import decide
from loraledger.policies.deployments import promote
from loraledger.policies.gates import check_gate
from loraledger.policies.release import set_policy
from loraledger.policies.trace import impact, trace_environment, trace_version
from loraledger.registry import Registry, Role
from loraledger.registry.audit import NewEvent, utcnow
from loraledger.registry.crosscheck import record_sha256, row_record
from loraledger.registry.evaluations import run_record, subject_label
from loraledger.registry.keys import KeyStore
from loraledger.registry.models import (
    DatasetUse,
    Deployment,
    EvalRun,
    EvalSample,
    LossPoint,
    TaskMetric,
    TrainingRun,
)
from loraledger.registry.synthetic import write_lora_adapter
from loraledger.trainer.datasets import add_dataset

HERE = Path(__file__).resolve().parent
SUITE = "sanity"
TASK = "sanity_mc"
RECORDS = 1000  # per dataset version
ENVIRONMENTS = ("staging", "qa", "canary", "production", "dr")
PER_TRACK = 2  # promotions of each name into each environment
RULES = f"""\
    thresholds:
      - {{suite: {SUITE}, task: {TASK}, metric: acc, min: 0.5}}
    data: {{licenses: [CC-BY-4.0], pii: allowed}}
    provenance: {{signed: true, trained_by_loraledger: true}}
    approvals: {{count: 1, role: reviewer}}
"""
POLICY = "version: 1\nenvironments:\n" + "".join(f"  {env}:\n{RULES}" for env in ENVIRONMENTS)


def record(i: int) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": f"Question number {i}: what is the fee for service {i}?"},
            {"role": "assistant", "content": f"Service {i} costs {i % 50} dollars a month."},
        ]
    }


def build(root: Path, *, versions: int, events: int, samples: int) -> tuple[Registry, str]:
    """A registry with one real, promoted version and copies up to the given sizes."""
    registry = Registry.init(root / "reg", keys=KeyStore(root / "keys"))
    registry.identities.create("alice", Role.ADMIN, actor=None)
    registry.identities.create("eve", Role.ENGINEER, actor="alice")
    registry.identities.create("rita", Role.REVIEWER, actor="alice")
    registry.identities.create("otto", Role.AUDITOR, actor="alice")
    base_dir = write_lora_adapter(root / "base", hidden=64, layers=2)  # any signed files do
    base = registry.base_models.register(
        base_dir,
        "bench-base",
        kind="local",
        architecture="LlamaForCausalLM",
        origin={"source": "generated for the benchmark"},
        actor="eve",
    )
    data = root / "data.jsonl"
    data.write_text("".join(json.dumps(record(i)) + "\n" for i in range(RECORDS)))
    dataset = add_dataset(
        registry, data, name="bench-data", source="generated", license="CC-BY-4.0", actor="eve"
    )
    adapter = write_lora_adapter(root / "adapter", base_model=base.ref, hidden=64, layers=2)
    now = utcnow()
    run = TrainingRun(
        id=str(uuid.uuid4()),
        config={"seed": 1},
        config_sha256="0" * 64,
        base_ref=base.ref,
        base_digest=base.digest,
        datasets=(
            DatasetUse(
                ref=dataset.ref,
                file_sha256=dataset.file_sha256,
                merkle_root=dataset.merkle_root,
                records=dataset.record_count,
            ),
        ),
        quantization={"method": "none", "double_quant": False},
        compute_dtype="float32",
        compute_dtype_reason="benchmark",
        device="cpu",
        code={"repository": str(HERE.parent), "commit": None, "dirty": False},
        libraries={},
        hardware={},
        seed=1,
        loss_curve=(LossPoint(step=1, loss=1.0, learning_rate=1e-3, tokens=100),),
        steps=1,
        tokens_seen=100,
        wall_seconds=1.0,
        started_at=now - timedelta(seconds=1),
        finished_at=now,
        actor="eve",
    )
    version = registry.adapters.register(adapter, "bench", actor="eve", training_run=run)
    suite = find_suite(SUITE)
    subject = registry.evaluations.subject(version.ref)
    scored = tuple(
        EvalSample(
            task=TASK,
            doc_id=i,
            filter="none",
            sample_key=f"q{i}",
            doc_hash=f"{i:064x}",
            prompt_hash=f"{i:064x}",
            input=f"question {i}",
            output="A",
            target="A",
            metrics={"acc": float(i % 3 != 0)},
            passed=i % 3 != 0,
            reason="benchmark",
        )
        for i in range(samples)
    )
    accuracy = sum(s.metrics["acc"] for s in scored) / samples
    registry.evaluations.record(
        EvalRun(
            id=str(uuid.uuid4()),
            subject=subject,
            quantization=run.quantization.model_dump(mode="json"),
            compute_dtype="float32",
            suite_name=suite.name,
            suite_kind=suite.kind,
            suite_digest=suite.digest,
            suite_files=suite.files,
            task_config_hashes={},
            settings={},
            seed=1,
            lm_eval_version="bench",
            libraries={},
            status="complete",
            error=None,
            sample_count=samples,
            results_sha256=None,
            started_at=now,
            finished_at=utcnow(),
            created_by="eve",
            metrics=(
                TaskMetric(
                    task=TASK,
                    metric="acc",
                    filter="none",
                    value=accuracy,
                    stderr=None,
                    higher_is_better=True,
                    sample_count=samples,
                ),
            ),
            samples=scored,
        ),
        actor="eve",
    )
    names = max(1, versions // 100)
    _copy_rows(registry, versions, names, dataset.name)
    _fill_deployments(registry, names)
    _fill_audit(registry, events, names)
    policy = root / "policy.yaml"
    policy.write_text(POLICY)
    set_policy(registry, policy, reason="the benchmark's policy", actor="alice")
    decide(
        registry, version.ref, "staging", "approve", comment="bench", actor="rita", policy=policy
    )
    promote(registry, version.ref, "staging", actor="rita", policy=policy)
    return registry, version.ref


def opened_after_build(
    root: Path, *, versions: int, events: int, samples: int
) -> tuple[Registry, str]:
    """:func:`build` in a process of its own, then the registry opened here, as the next
    command a user runs opens it: the times are not those of a process that just wrote
    100,000 events (its heap and DuckDB's caches as the build left them)."""
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        _, ref = pool.submit(
            _build_only, root, versions=versions, events=events, samples=samples
        ).result()
    return Registry.open(root / "reg", keys=KeyStore(root / "keys")), ref


def _build_only(root: Path, **sizes: int) -> tuple[None, str]:
    _, ref = build(root, **sizes)
    return None, ref


def _copy_rows(registry: Registry, versions: int, names: int, dataset: str) -> None:
    """Copies of the real version's rows (and of its dataset) under ``names`` other names:
    copy ``i`` is ``copy-{i % names}@v{i // names + 1}``."""
    copies = versions - 1
    datasets = max(1, versions // 100)
    with registry.db.write() as conn:
        conn.execute(
            "INSERT INTO adapters SELECT a.* REPLACE ('copy-' || i AS name) "
            "FROM adapters a, range(?) t(i)",
            [min(names, copies)],
        )
        conn.execute(
            "INSERT INTO signatures SELECT s.* REPLACE (md5(s.id || '-' || i) AS id, "
            "sha256(s.subject_digest || i) AS subject_digest) FROM signatures s, range(?) t(i) "
            "WHERE s.id = (SELECT signature_id FROM adapter_versions LIMIT 1)",
            [copies],
        )
        conn.execute(
            "INSERT INTO adapter_versions SELECT v.* REPLACE ('copy-' || (i % $n) AS name, "
            "i // $n + 1 AS version, sha256(v.digest || i) AS digest, "
            "md5(v.signature_id || '-' || i) AS signature_id) "
            "FROM adapter_versions v, range($c) t(i)",
            {"n": names, "c": copies},
        )
        conn.execute(
            "INSERT INTO adapter_files SELECT f.* REPLACE ('copy-' || (i % $n) AS adapter_name, "
            "i // $n + 1 AS version) FROM adapter_files f, range($c) t(i)",
            {"n": names, "c": copies},
        )
        conn.execute(
            "INSERT INTO datasets SELECT d.* REPLACE (d.name || '-' || i AS name) "
            "FROM datasets d, range(?) t(i) WHERE d.name = ?",
            [datasets, dataset],
        )
        conn.execute(
            "INSERT INTO dataset_records SELECT r.* REPLACE (r.dataset_name || '-' || i AS "
            "dataset_name) FROM dataset_records r, range(?) t(i) WHERE r.dataset_name = ?",
            [datasets, dataset],
        )
        conn.execute(
            "INSERT INTO training_runs SELECT r.* REPLACE (md5(r.id || '-' || i) AS id, "
            "'copy-' || (i % $n) AS adapter_name, i // $n + 1 AS adapter_version) "
            "FROM training_runs r, range($c) t(i)",
            {"n": names, "c": copies},
        )
        conn.execute(
            "INSERT INTO training_run_datasets SELECT d.* REPLACE (md5(d.run_id || '-' || i) AS "
            "run_id, d.dataset_name || '-' || (i % ?) AS dataset_name) "
            "FROM training_run_datasets d, range(?) t(i)",
            [datasets, copies],
        )
        conn.execute(
            "INSERT INTO eval_runs SELECT r.* REPLACE (md5(r.id || '-' || i) AS id, "
            "'copy-' || (i % $n) AS subject_name, i // $n + 1 AS subject_version) "
            "FROM eval_runs r, range($c) t(i)",
            {"n": names, "c": copies},
        )
        for table in ("eval_metrics", "eval_samples"):
            conn.execute(
                f"INSERT INTO {table} SELECT s.* REPLACE (md5(s.run_id || '-' || i) AS run_id) "
                f"FROM {table} s, range(?) t(i)",
                [copies],
            )


def _fill_deployments(registry: Registry, names: int) -> None:
    """Every environment runs every copied name: each track promoted ``PER_TRACK`` times
    (its versions 1, 2, ...), as signed records appended the way a promotion appends them
    (the gate is not what is measured)."""
    key = registry.act_as("rita")
    with registry.db.read() as conn:
        rows = conn.execute(
            "SELECT name, version, digest FROM adapter_versions WHERE name LIKE 'copy-%' "
            "AND version <= ? ORDER BY version, name",
            [PER_TRACK],
        ).fetchall()
    for environment in ENVIRONMENTS:
        heads: dict[str, int] = {}
        for name, version, digest in rows:
            deployment = Deployment(
                id=str(uuid.uuid4()), seq=0, environment=environment,
                adapter=f"{name}@v{version}", artifact_digest=digest, action="promote",
                reason="benchmark", gate_check_id=None, approval_ids=(), policy_sha256=None,
                created_at=utcnow(), created_by="rita",
            )  # fmt: skip
            done = registry.deployments.record(
                deployment, key, {Role.REVIEWER}, after_seq=heads.get(name, 0)
            )
            heads[name] = done.seq


def _fill_audit(registry: Registry, events: int, names: int) -> None:
    """Audit events up to ``events``, each change of 100 signing its checkpoint: first the
    registration and evaluation events of every copied version (as registering and
    evaluating it would have written, so `audit verify` checks every version and run
    row, with its samples, against its event), then filler."""
    key = registry.act_as("eve")
    (real,) = registry.audit_events(action="adapter.register", subject="adapter:bench@v1")
    (run,) = registry.audit_events(action="eval.run", subject="adapter:bench@v1")
    real_run = registry.evaluations.get(run.payload["run_id"])
    with registry.db.read() as conn:
        copies = conn.execute(
            "SELECT name, version FROM adapter_versions WHERE name LIKE 'copy-%' "
            "ORDER BY name, version"
        ).fetchall()
    new = []
    for name, version in copies:
        i = str((version - 1) * names + int(name[5:]))  # the copy's number (_copy_rows)
        digest = sha256_text(real.payload["digest"] + i)
        # the copy's own provenance and test result are not copied: its events name none
        new.append(
            NewEvent(
                "eve",
                "adapter.register",
                f"adapter:{name}@v{version}",
                {**real.payload, "digest": digest, "provenance_attestation": None},
            )
        )
        copy = real_run.model_copy(
            update={
                "id": md5_text(f"{real_run.id}-{i}"),
                "subject": real_run.subject.model_copy(update={"name": name, "version": version}),
            }
        )
        new.append(
            NewEvent(
                "eve",
                "eval.run",
                subject_label(copy.subject),
                {
                    **run.payload,
                    "run_id": copy.id,
                    "run_sha256": record_sha256(run_record(copy)),
                    "test_result_attestation": None,
                },
            )
        )
    # the dataset's copies, each with the event registering it would have written
    (registered,) = registry.audit_events(action="dataset.register")
    dataset = registry.datasets.get(registered.subject.removeprefix("dataset:"))
    with registry.db.read() as conn:
        copied = conn.execute(
            "SELECT name FROM datasets WHERE name LIKE ? ORDER BY name", [f"{dataset.name}-%"]
        ).fetchall()
    for (name,) in copied:
        row = row_record(dataset.model_copy(update={"name": name}))
        payload = {**registered.payload, "row_sha256": record_sha256(row)}
        new.append(NewEvent("eve", "dataset.register", f"dataset:{name}@v1", payload))
    missing = events - registry.audit_head()[0] - 6 - len(new)  # the gate, approval, promotion
    new += [
        NewEvent("eve", "bench.event", f"adapter:copy-{i % names}@v1", {"i": i})
        for i in range(max(0, missing))
    ]
    for start in range(0, len(new), 100):
        with registry.change(key) as change:
            change.events.extend(new[start : start + 100])


def md5_text(text: str) -> str:
    """DuckDB's ``md5(text)``, as the copies' run ids were made."""
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def sha256_text(text: str) -> str:
    """DuckDB's ``sha256(text)``, as the copies' digests were made."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def verify_everything(registry: Registry) -> None:
    """What `loraledger audit verify` does: the whole chain, then every row against it."""
    registry.verify_audit()
    registry.verify_records()


def timed(call: Callable[[], Any], repeat: int) -> float:
    call()  # warm: page cache, imports
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(registry: Registry, ref: str, repeat: int) -> dict[str, Any]:
    policy = registry.root.parent / "policy.yaml"
    trace = trace_version(registry, ref)
    assert trace.complete, [link for link in trace.links if not link.verified]
    check = check_gate(registry, ref, "staging", actor="otto", policy=policy)
    assert check.passed, [r for r in check.rules if not r.passed]
    affected = impact(registry, record(7))
    with registry.db.read() as conn:
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in ("adapter_versions", "audit_events", "eval_samples", "dataset_records")
        }
    return {
        **counts,
        "impact_adapters": len(affected.adapters),
        "trace_s": timed(lambda: trace_version(registry, ref), repeat),
        "gate_check_s": timed(
            lambda: check_gate(registry, ref, "staging", actor="otto", policy=policy), repeat
        ),
        "impact_s": timed(lambda: impact(registry, record(7)), repeat),
        "tracks": len(registry.deployments.tracks()),
        "status_s": timed(registry.deployments.tracks, repeat),
        "trace_track_s": timed(
            lambda: trace_environment(registry, "staging", name=ref.split("@")[0]), repeat
        ),
        "audit_verify_s": timed(lambda: verify_everything(registry), max(1, (repeat + 1) // 2)),
    }


@contextmanager
def on_postgresql(registry: Registry) -> Iterator[Registry]:
    """The same registry moved onto a PostgreSQL server started for the run (its rows
    copied in one snapshot, its files in a store directory beside the policy)."""
    from loraledger.registry.copying import copy_rows
    from loraledger.registry.postgres import PostgresDatabase

    from tests.postgres import PASSWORD, running_server

    store = registry.root.parent / "pg-store"
    shutil.copytree(registry.root, store, ignore=shutil.ignore_patterns("registry.duckdb*"))
    with running_server() as server:
        os.environ["PGPASSWORD"] = PASSWORD
        url = server.create_database("governance")
        copy_rows(registry.db, PostgresDatabase(url, lock_timeout=60), store=str(store))
        yield Registry.open(url, keys=registry.keys)


def scale_arguments(description: str) -> argparse.Namespace:
    """The registry's size (and repeats) from the command line; shared by the dashboard's
    benchmark, which times pages on the same registry. ``--quick``: 200 versions, 3,000
    events, 10 samples a version, one repeat."""
    parser = add_arguments(argparse.ArgumentParser(description=description))
    parser.add_argument("--versions", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if args.quick:
        args.versions, args.events, args.samples, args.repeat = 200, 3_000, 2_000, 1
    return args


def main() -> None:
    args = scale_arguments(__doc__.splitlines()[0])
    results: dict[str, dict[str, Any]] = {}
    for label, scale in (("small", 10), ("full", 1)):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            registry, ref = opened_after_build(
                Path(tmp),
                versions=args.versions // scale,
                events=args.events // scale,
                samples=args.samples // args.versions,
            )
            built = time.perf_counter() - started
            results[label] = {"build_s": built, **measure(registry, ref, args.repeat)}
            print(f"{label}: built in {built:.1f} s: {json.dumps(results[label])}", flush=True)
            if label == "full":
                started = time.perf_counter()
                with on_postgresql(registry) as team:
                    moved = time.perf_counter() - started
                    results["postgresql"] = {"copy_s": moved, **measure(team, ref, args.repeat)}
                print(f"postgresql: copied in {moved:.1f} s: {json.dumps(results['postgresql'])}")
    full, small, team = results["full"], results["small"], results["postgresql"]
    print(
        f"\nAt {full['adapter_versions']} versions, {full['audit_events']} audit events, "
        f"{full['eval_samples']} eval samples, {full['dataset_records']} dataset records "
        f"(peer: the same on a registry a tenth the size):"
    )
    print(
        f"{'operation':<28}{'full':>10}{'small':>10}{'full/small':>12}"
        f"{'PostgreSQL':>12}{'PG/full':>9}  target"
    )
    for name, key, target in (
        (f"status ({full['tracks']} tracks)", "status_s", "< 100 ms"),
        ("trace of one track", "trace_track_s", "< 100 ms"),
        ("trace REF (every link)", "trace_s", "< 100 ms"),
        ("gate check (recorded)", "gate_check_s", "< 100 ms"),
        (f"data impact ({full['impact_adapters']} hits)", "impact_s", "< 1 s"),
        ("audit verify (chain + rows)", "audit_verify_s", "< 5 s"),
    ):
        print(
            f"{name:<28}{full[key] * 1000:>8.0f}ms{small[key] * 1000:>8.0f}ms"
            f"{full[key] / small[key]:>11.2f}x{team[key] * 1000:>10.0f}ms"
            f"{team[key] / full[key]:>8.2f}x  {target}"
        )
    for key in ("status_s", "trace_track_s", "trace_s", "gate_check_s", "impact_s",
                "audit_verify_s"):  # fmt: skip
        results[f"{key.removesuffix('_s')}_full_vs_small"] = full[key] / small[key]
        results[f"{key.removesuffix('_s')}_postgresql_vs_duckdb"] = team[key] / full[key]
    write_results("bench_governance", args, results)


if __name__ == "__main__":
    main()
