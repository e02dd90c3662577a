"""Evaluation runs and comparisons: stored bound to the artifact and the suite they used.

A run is written in one change when it ends -- its row, its metrics, every scored sample
and an ``eval.run`` audit event carrying the digest of those results -- so a run marked
``complete`` always has all of its results, and a failed or interrupted run is recorded
as such with none. Reading a run back checks its row against that event field by field
(:mod:`.crosscheck`), the fields the event does not state against the record's sha256
it carries (``run_sha256``), and the samples against the audited digest: a metric, a
setting or an answer edited in the database is refused. Comparisons likewise, against
their ``eval.compare`` event and its ``comparison_sha256``.

Samples are checked fast: the event also carries ``samples_sha256``, the sha256 DuckDB
computes over the stored sample rows (:data:`_SAMPLES_DIGEST`) in the transaction that
wrote them, so a check hashes a million samples in SQL instead of rebuilding each in
Python. It only vouches: where it differs (a row edited -- or a later DuckDB that
encodes a value differently) the samples are rebuilt and their canonical digest
(:func:`results_digest`, the one the signed test result states) decides.

Subjects are adapter versions (``NAME@vN``) or bare bases (``base:NAME@vN``).
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
from collections.abc import Iterable
from concurrent.futures import Future
from typing import Any

from loraledger.errors import InputError, NotFound, VerificationError

from .adapters import Adapters
from .attestations import Attestations, recorded, test_result_statement
from .audit import canonical_json, utcnow
from .base_models import BaseModels
from .core import Core
from .crosscheck import RESTORE, check_against_event, check_same_ids, parsed, record_sha256
from .db import Connection, dialect_of
from .dialect import DUCKDB
from .models import (
    AdapterVersion,
    AuditEvent,
    BaseModelVersion,
    Comparison,
    EvalRun,
    EvalSample,
    EvalSubject,
    TaskComparison,
    TaskMetric,
)
from .permissions import Action

BASE_PREFIX = "base:"
COMPLETE = "complete"

_SUBJECT_FIELDS = {  # eval_runs column -> EvalSubject field
    "subject_kind": "kind",
    "subject_name": "name",
    "subject_version": "version",
    "artifact_digest": "artifact_digest",
    "base_name": "base_name",
    "base_version": "base_version",
    "base_digest": "base_digest",
}
_RUN_FIELDS = (
    "id", *_SUBJECT_FIELDS, "quantization", "compute_dtype", "suite_name", "suite_kind",
    "suite_digest", "suite_files", "task_config_hashes", "settings", "seed", "lm_eval_version",
    "libraries", "status", "error", "sample_count", "results_sha256", "started_at",
    "finished_at", "created_by",
)  # fmt: skip
_RUN_JSON = ("quantization", "suite_files", "task_config_hashes", "settings", "libraries")
_RUN_COLUMNS = ", ".join(_RUN_FIELDS)
_METRIC_FIELDS = tuple(TaskMetric.model_fields)
_SAMPLE_FIELDS = tuple(EvalSample.model_fields)
_RESULT_FIELDS = tuple(TaskComparison.model_fields)


EVAL_EVENTS = ("eval.run",)
COMPARE_EVENTS = ("eval.compare",)
# Every sample row of each run, in the canonical order (task, filter, doc_id), as DuckDB
# encodes it; one line a sample (JSON arrays hold no raw newline), hashed per run. The
# rows are sorted as a list of (key, line) structs: the same lines as
# ``string_agg(line ORDER BY task, filter, doc_id)`` at four-fifths of its CPU time.
# A sample's line: its fields in order, and its category last only where it has one (so
# runs recorded before categories hash as they did).
_LINED = tuple(name for name in EvalSample.model_fields if name != "category")
_SAMPLES_DIGEST = (
    "SELECT run_id, sha256(array_to_string(list_transform(list_sort(list("
    "{'t': task, 'f': filter, 'd': doc_id, 'line': (CASE WHEN category IS NULL THEN json_array("
    + ", ".join(_LINED)
    + ") ELSE json_array("
    + ", ".join((*_LINED, "category"))
    + ") END)::VARCHAR})), lambda s: s.line), chr(10))) FROM eval_samples"
)


# The same digest on PostgreSQL: each line joined from to_json of each field (to_json of
# a text is the JSON string Python writes), in byte order (COLLATE "C", as Python and
# DuckDB sort). PostgreSQL escapes a control character in lower case (\u001f) where
# DuckDB writes upper case: a run with one whose escape holds a letter is hashed in
# Python instead (``needs_python``).
_SAMPLE_JSON = {"doc_id": "{}::text", "passed": "coalesce(to_json({})::text, 'null')"}
_SAMPLES_DIGEST_POSTGRES = (
    "SELECT run_id, encode(sha256(convert_to(string_agg('[' || "
    + " || ',' || ".join(
        _SAMPLE_JSON.get(name, "to_json({})::text").format(name) for name in _LINED
    )
    + " || coalesce(',' || to_json(category)::text, '') || ']', chr(10) ORDER BY task COLLATE "
    "\"C\", filter COLLATE \"C\", doc_id), 'UTF8')), 'hex'), bool_or(concat("
    + ", ".join(n for n in EvalSample.model_fields if n not in _SAMPLE_JSON)
    + ") ~ '[\\x0b\\x0e\\x0f\\x1a-\\x1f]') AS needs_python FROM eval_samples"
)


# run_id, then EvalSample's fields in order: task, doc_id, filter .. passed, reason, category
_SAMPLE_TYPES = ("VARCHAR", "VARCHAR", "INTEGER", *["VARCHAR"] * 8, "BOOLEAN", "VARCHAR", "VARCHAR")


def results_digest(metrics: tuple[TaskMetric, ...], samples: tuple[EvalSample, ...]) -> str:
    """sha256 over the canonical JSON of a run's metrics and samples (order-independent)."""
    payload = {
        "metrics": sorted(
            (m.model_dump(mode="json") for m in metrics),
            key=lambda m: (m["task"], m["metric"], m["filter"]),
        ),
        "samples": sorted(
            (s.model_dump(mode="json") for s in samples),
            key=lambda s: (s["task"], s["filter"], s["doc_id"]),
        ),
    }
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def run_record(run: EvalRun) -> dict[str, Any]:
    """What an ``eval.run`` event's ``run_sha256`` covers: the run as JSON values without
    its samples (which ``samples_sha256`` and ``results_sha256`` cover), metrics in the
    order they are read back."""
    dumped = run.model_dump(mode="json", exclude={"samples"})
    dumped["metrics"] = sorted(
        dumped["metrics"], key=lambda m: (m["task"], m["metric"], m["filter"])
    )
    return dumped


def comparison_record(comparison: Comparison) -> dict[str, Any]:
    """What an ``eval.compare`` event's ``comparison_sha256`` covers: the comparison as
    JSON values, its results in the order they are read back."""
    dumped = comparison.model_dump(mode="json")
    dumped["results"] = sorted(dumped["results"], key=lambda r: (r["task"], r["metric"]))
    return dumped


def subject_label(subject: EvalSubject) -> str:
    """``adapter:NAME@vN`` or ``base:NAME@vN``: the audit subject of a run."""
    return _label(subject.kind, subject.name, subject.version)


def _label(kind: str, name: str, version: int) -> str:
    return f"{'adapter' if kind == 'adapter' else 'base'}:{name}@v{version}"


class Evaluations:
    def __init__(
        self,
        core: Core,
        *,
        adapters: Adapters,
        base_models: BaseModels,
        attestations: Attestations,
    ) -> None:
        self._core = core
        self._adapters = adapters
        self._base_models = base_models
        self._attestations = attestations

    # --- subjects ---------------------------------------------------------------------

    def subject(self, ref: str) -> EvalSubject:
        """An adapter version (``NAME[@vN]``) or a bare base (``base:NAME[@vN]``)."""
        if ref.startswith(BASE_PREFIX):
            base = self._base_models.get(ref.removeprefix(BASE_PREFIX))
            kind, name, number, digest = "base", base.name, base.version, base.digest
        else:
            version = self._adapters.get(ref)
            base = self._base_of(version)
            kind, name, number, digest = "adapter", version.name, version.version, version.digest
        return EvalSubject(
            kind=kind,
            name=name,
            version=number,
            artifact_digest=digest,
            base_name=base.name,
            base_version=base.version,
            base_digest=base.digest,
        )

    def _base_of(self, version: AdapterVersion) -> BaseModelVersion:
        """The base an adapter runs on: its training run's, else the one its config names."""
        run = self._adapters.training_run(version.ref)
        if run is not None:
            return self._base_models.get(run.base_ref)
        named = version.base_model_name or ""
        try:
            return self._base_models.get(named)
        except (NotFound, InputError):
            raise NotFound(
                f"{version.ref} names base {named!r} in its adapter_config.json, which is "
                "not a registered base; register that base with `loraledger base add` "
                "under that name"
            ) from None

    # --- writing ----------------------------------------------------------------------

    def record(self, run: EvalRun, *, actor: str | None) -> EvalRun:
        """Store a finished run (complete, failed or interrupted) with its audit event."""
        core = self._core
        key = core.act_as(actor, Action.EVAL_RECORD)
        if run.status == COMPLETE:
            digest = results_digest(run.metrics, run.samples)
            run = run.model_copy(update={"results_sha256": digest, "created_by": key.name})
        else:
            run = run.model_copy(
                update={
                    "results_sha256": None,
                    "metrics": (),
                    "samples": (),
                    "created_by": key.name,
                }
            )
        with core.change(key, Action.EVAL_RECORD) as change:
            _insert_run(change.conn, run)
            samples_sha256 = samples_digests(change.conn, run.id).get(run.id)
            attestation = None
            if run.results_sha256 is not None:
                attestation = self._attestations.insert_in(
                    change.conn,
                    "test-result",
                    run.id,
                    run.subject.artifact_digest,
                    test_result_statement(run, run.results_sha256, core.registry_id),
                    key,
                    utcnow(),
                )
            change.record(
                "eval.run",
                subject_label(run.subject),
                {
                    **_stated(run),
                    "test_result_attestation": recorded(attestation) if attestation else None,
                    "run_sha256": record_sha256(run_record(run)),
                    "samples_sha256": samples_sha256,
                },
            )
        return self.get(run.id)  # what was stored, in the order it is read back

    def record_comparison(self, comparison: Comparison, *, actor: str | None) -> Comparison:
        core = self._core
        key = core.act_as(actor, Action.EVAL_COMPARE)
        comparison = comparison.model_copy(update={"created_by": key.name})
        with core.change(key, Action.EVAL_COMPARE) as change:
            conn = change.conn
            conn.execute(
                "INSERT INTO comparisons VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    comparison.id,
                    comparison.new_run,
                    comparison.old_run,
                    comparison.suite_name,
                    comparison.suite_digest,
                    comparison.alpha,
                    json.dumps(comparison.settings, sort_keys=True),
                    comparison.verdict,
                    comparison.created_at,
                    comparison.created_by,
                ],
            )
            conn.executemany(
                f"INSERT INTO comparison_results (comparison_id, {', '.join(_RESULT_FIELDS)}) "
                f"VALUES ({', '.join(['?'] * (len(_RESULT_FIELDS) + 1))})",
                [
                    [comparison.id, *(_result_value(r, f) for f in _RESULT_FIELDS)]
                    for r in comparison.results
                ],
            )
            change.record(
                "eval.compare",
                comparison.new_subject,
                {
                    **_compared(comparison),
                    "comparison_sha256": record_sha256(comparison_record(comparison)),
                },
            )
        return comparison

    # --- reading ----------------------------------------------------------------------

    def list(
        self, subject: str | None = None, suite: str | None = None, *, status: str | None = None
    ) -> list[EvalRun]:
        """Runs, oldest first, without their samples."""
        sql = f"SELECT {_RUN_COLUMNS} FROM eval_runs WHERE true"
        params: list[Any] = []
        if subject is not None:
            resolved = self.subject(subject)
            sql += " AND subject_kind = ? AND subject_name = ? AND subject_version = ?"
            params += [resolved.kind, resolved.name, resolved.version]
        if suite is not None:
            sql += " AND suite_name = ?"
            params.append(suite)
        if status is not None:
            sql += " AND status = ?"
            params.append(status)
        sql += " ORDER BY finished_at, id"
        with self._core.db.read() as conn:
            runs = [_run(r) for r in conn.execute(sql, params).fetchall()]
            metrics = _metrics_of(conn, [r.id for r in runs])
            return [r.model_copy(update={"metrics": metrics.get(r.id, ())}) for r in runs]

    def get(self, run_id: str) -> EvalRun:
        """A run with its metrics and samples, checked against its audit event."""
        return self._core.db.memo(("eval run", run_id), lambda: self._get(run_id))

    def _get(self, run_id: str) -> EvalRun:
        with self._core.db.read() as conn:
            row = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM eval_runs WHERE id = ? OR id LIKE ? || '%'",
                [run_id, run_id],
            ).fetchall()
            if len(row) != 1:
                raise NotFound(
                    f"no evaluation run {run_id!r}"
                    if not row
                    else f"{run_id!r} is ambiguous; see `loraledger evals list`"
                )
            run = _run(row[0])
            samples = _samples(conn, run.id)
            run = run.model_copy(update={"metrics": _metrics(conn, run.id), "samples": samples})
            label = subject_label(run.subject)
            events = self._core.audited(conn, EVAL_EVENTS, label)
            event = next((e for e in events if e.payload.get("run_id") == run.id), None)
            if event is None:
                raise VerificationError(
                    f"eval_runs row {run.id} ({label}) has no audit event: it was not written "
                    f"by LoRA Ledger; {RESTORE}"
                )
            _check_run(conn, run, event, samples_digests(conn, run.id).get(run.id), samples)
        self._core.refuse_void([event], f"evaluation run {run.id} ({label})",
                               "it is no evidence: evaluate again")  # fmt: skip
        return run

    def latest(self, subject: str, suite: str) -> EvalRun:
        """The newest complete run of ``subject`` on ``suite``, verified."""
        runs = self.list(subject, suite, status=COMPLETE)
        if not runs:
            raise NotFound(
                f"{subject} has no complete evaluation on suite {suite!r}; run `loraledger eval "
                f"{subject} --suite {suite}` first"
            )
        return self.get(runs[-1].id)

    def comparisons(self, subject: str | None = None) -> builtins.list[Comparison]:
        """Comparisons (of ``subject`` as either side), oldest first, each checked against
        its audit event."""
        sql = (
            "SELECT c.id FROM comparisons c JOIN eval_runs n ON n.id = c.new_run_id "
            "JOIN eval_runs o ON o.id = c.old_run_id"
        )
        params: builtins.list[Any] = []
        if subject is not None:
            found = self.subject(subject)
            sql += (
                " WHERE (n.subject_kind, n.subject_name, n.subject_version) = (?, ?, ?)"
                " OR (o.subject_kind, o.subject_name, o.subject_version) = (?, ?, ?)"
            )
            params = [found.kind, found.name, found.version] * 2
        with self._core.db.read() as conn:
            ids = [
                r[0] for r in conn.execute(sql + " ORDER BY c.created_at, c.id", params).fetchall()
            ]
            comparisons = [_comparison(conn, i) for i in ids]
            events = self._comparison_events(conn)
            for comparison in comparisons:
                _check_comparison(comparison, events.get(comparison.id))
        return comparisons

    def comparison(self, comparison_id: str) -> Comparison:
        """A stored comparison, checked against its ``eval.compare`` audit event."""
        with self._core.db.read() as conn:
            comparison = _comparison(conn, comparison_id)
            _check_comparison(comparison, self._comparison_events(conn).get(comparison.id))
            return comparison

    def _comparison_events(self, conn: Connection) -> dict[str, AuditEvent]:
        events = self._core.audited(conn, COMPARE_EVENTS)
        return {str(e.payload.get("comparison_id")): e for e in events}

    # --- every row against its record (audit verify) -----------------------------------

    def check_all(
        self,
        conn: Connection,
        events: builtins.list[AuditEvent],
        digests: Future[dict[str, str]] | None = None,
    ) -> int:
        """Every evaluation run row -- with its metrics and samples -- against ``events``
        (the log's ``eval.run`` events, verified by the caller); returns the runs checked.
        ``digests``: the samples' digests being computed meanwhile (:func:`samples_digests`
        on another cursor), else computed here."""
        rows = conn.execute(f"SELECT {_RUN_COLUMNS} FROM eval_runs ORDER BY id").fetchall()
        runs = [_run(r) for r in rows]
        by_id = {str(e.payload.get("run_id")): e for e in events}
        check_same_ids(
            "eval_runs", "", [r.id for r in runs], sorted((i, e.seq) for i, e in by_id.items())
        )
        for table in ("eval_metrics", "eval_samples"):
            stray = conn.execute(
                f"SELECT DISTINCT run_id FROM {table} "
                "WHERE run_id NOT IN (SELECT id FROM eval_runs) ORDER BY 1 LIMIT 1"
            ).fetchone()
            if stray is not None:
                raise VerificationError(
                    f"{table} rows of run {stray[0]} belong to no recorded evaluation run; "
                    f"{RESTORE}"
                )
        metrics = _metrics_of(conn, [r.id for r in runs])
        found = digests.result() if digests is not None else samples_digests(conn)
        for run in runs:
            run = run.model_copy(update={"metrics": metrics.get(run.id, ())})
            _check_run(conn, run, by_id[run.id], found.get(run.id))
        return len(runs)

    def check_all_comparisons(self, conn: Connection, events: builtins.list[AuditEvent]) -> int:
        """Every comparison row -- with its per-task results -- against ``events`` (the
        log's ``eval.compare`` events, verified by the caller); returns the rows checked."""
        ids = [r[0] for r in conn.execute("SELECT id FROM comparisons ORDER BY id").fetchall()]
        by_id = {str(e.payload.get("comparison_id")): e for e in events}
        check_same_ids("comparisons", "", ids, sorted((i, e.seq) for i, e in by_id.items()))
        stray = conn.execute(
            "SELECT DISTINCT comparison_id FROM comparison_results "
            "WHERE comparison_id NOT IN (SELECT id FROM comparisons) ORDER BY 1 LIMIT 1"
        ).fetchone()
        if stray is not None:
            raise VerificationError(
                f"comparison_results rows of {stray[0]} belong to no recorded comparison; {RESTORE}"
            )
        for comparison_id in ids:
            _check_comparison(_comparison(conn, comparison_id, exact=True), by_id[comparison_id])
        return len(ids)


def _insert_run(conn: Connection, run: EvalRun) -> None:
    values = run.model_dump(include=set(_RUN_FIELDS))
    subject = run.subject.model_dump()
    values.update({column: subject[name] for column, name in _SUBJECT_FIELDS.items()})
    for name in _RUN_JSON:
        values[name] = json.dumps(values[name], sort_keys=True)
    conn.execute(
        f"INSERT INTO eval_runs ({_RUN_COLUMNS}) VALUES ({', '.join(['?'] * len(_RUN_FIELDS))})",
        [values[name] for name in _RUN_FIELDS],
    )
    if run.metrics:
        conn.executemany(
            f"INSERT INTO eval_metrics (run_id, {', '.join(_METRIC_FIELDS)}) "
            f"VALUES ({', '.join(['?'] * (len(_METRIC_FIELDS) + 1))})",
            [[run.id, *(getattr(m, f) for f in _METRIC_FIELDS)] for m in run.metrics],
        )
    if run.samples:
        rows = [_sample_row(run.id, x) for x in run.samples]
        columns = [list(c) for c in zip(*rows, strict=True)]
        # Column-wise lists through unnest: one statement however many samples
        # (executemany costs ~1 ms a row in DuckDB).
        conn.execute(
            f"INSERT INTO eval_samples (run_id, {', '.join(_SAMPLE_FIELDS)}) SELECT "
            + ", ".join(f"unnest(?::{t}[])" for t in _SAMPLE_TYPES),
            columns,
        )


def _result_value(result: TaskComparison, field: str) -> Any:
    value = getattr(result, field)
    return json.dumps(value, sort_keys=True) if field == "flipped" else value


def _sample_row(run_id: str, sample: EvalSample) -> list[Any]:
    values = sample.model_dump()
    values["metrics"] = json.dumps(values["metrics"], sort_keys=True)
    return [run_id, *(values.get(f) for f in _SAMPLE_FIELDS)]


def _run(row: tuple[Any, ...]) -> EvalRun:
    def build() -> EvalRun:
        values = dict(zip(_RUN_FIELDS, row, strict=True))
        for name in _RUN_JSON:
            values[name] = json.loads(values[name])
        values["subject"] = EvalSubject(
            **{name: values.pop(column) for column, name in _SUBJECT_FIELDS.items()}
        )
        return EvalRun(**values)

    return parsed("eval_runs", row[0], build)


def _metrics(conn: Connection, run_id: str) -> tuple[TaskMetric, ...]:
    rows = conn.execute(
        f"SELECT {', '.join(_METRIC_FIELDS)} FROM eval_metrics WHERE run_id = ? "
        "ORDER BY task, metric, filter",
        [run_id],
    ).fetchall()
    return tuple(_metric(run_id, r) for r in rows)


def _metric(run_id: str, row: tuple[Any, ...]) -> TaskMetric:
    values = dict(zip(_METRIC_FIELDS, row, strict=True))
    return parsed("eval_metrics", f"{run_id}/{row[0]}", lambda: TaskMetric(**values))


def _metrics_of(conn: Connection, run_ids: list[str]) -> dict[str, tuple[TaskMetric, ...]]:
    """The metrics of many runs in one query, by run id."""
    found: dict[str, list[TaskMetric]] = {}
    for row in conn.execute(
        f"SELECT run_id, {', '.join(_METRIC_FIELDS)} FROM eval_metrics "
        "WHERE run_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY task, metric, filter",
        [run_ids],
    ).fetchall():
        found.setdefault(row[0], []).append(_metric(row[0], row[1:]))
    return {run_id: tuple(metrics) for run_id, metrics in found.items()}


def _samples(conn: Connection, run_id: str) -> tuple[EvalSample, ...]:
    rows = conn.execute(
        f"SELECT {', '.join(_SAMPLE_FIELDS)} FROM eval_samples WHERE run_id = ? "
        "ORDER BY task, filter, doc_id",
        [run_id],
    ).fetchall()
    return tuple(_sample(run_id, r) for r in rows)


def _sample(run_id: str, row: tuple[Any, ...]) -> EvalSample:
    def build() -> EvalSample:
        values = dict(zip(_SAMPLE_FIELDS, row, strict=True))
        values["metrics"] = json.loads(values["metrics"])
        return EvalSample(**values)

    return parsed("eval_samples", f"{run_id}/{row[0]}#{row[1]}", build)


def samples_digests(conn: Connection, run_id: str | None = None) -> dict[str, str]:
    """``samples_sha256`` of every run with samples (or of ``run_id``), by run id:
    computed in SQL (DuckDB's, or PostgreSQL's), by Python from the rows for a
    PostgreSQL run whose escapes differ (the same digest: tests/registry/
    test_evaluations.py and test_postgres.py check that they agree)."""
    where, params = (" WHERE run_id = ?", [run_id]) if run_id is not None else ("", [])
    if dialect_of(conn) is DUCKDB:
        rows = conn.execute(_SAMPLES_DIGEST + where + " GROUP BY run_id", params).fetchall()
        return {r[0]: r[1] for r in rows}
    query = _SAMPLES_DIGEST_POSTGRES + where + " GROUP BY run_id"
    digests: dict[str, str] = {}
    for run, digest, needs_python in conn.execute(query, params).fetchall():
        digests[run] = samples_digests_in_python(conn, run)[run] if needs_python else digest
    return digests


def samples_digests_in_python(conn: Connection, run_id: str | None = None) -> dict[str, str]:
    """:func:`samples_digests` as Python computes it from the rows (any database)."""
    where, params = (" WHERE run_id = ?", [run_id]) if run_id is not None else ("", [])
    lines: dict[str, list[tuple[tuple[str, str, int], str]]] = {}
    query = f"SELECT run_id, {', '.join(_SAMPLE_FIELDS)} FROM eval_samples{where}"
    for row in conn.execute(query, params).fetchall():
        values = row[1:] if row[-1] is not None else row[1:-1]  # the category, where it has one
        lines.setdefault(row[0], []).append(((row[1], row[3], row[2]), duckdb_json(values)))
    return {
        run: hashlib.sha256("\n".join(line for _, line in sorted(rows)).encode()).hexdigest()
        for run, rows in lines.items()
    }


def duckdb_json(values: Iterable[Any]) -> str:
    """A row as DuckDB's ``json_array(...)::VARCHAR`` writes it: compact, non-ASCII as
    itself, a control character as an upper-case ``\\u00XX`` escape."""
    text = json.dumps(list(values), separators=(",", ":"), ensure_ascii=False)
    return _LOWER_ESCAPE.sub(lambda m: m.group(0).upper().replace("\\U", "\\u"), text)


_LOWER_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u00[0-9a-f]{2}")


def _stated(run: EvalRun) -> dict[str, Any]:
    """The fields of a run its ``eval.run`` event states one by one (the rest it covers
    by ``run_sha256``)."""
    return {
        "run_id": run.id,
        "status": run.status,
        "error": run.error,
        "artifact_digest": run.subject.artifact_digest,
        "base_digest": run.subject.base_digest,
        "suite": run.suite_name,
        "suite_digest": run.suite_digest,
        "lm_eval_version": run.lm_eval_version,
        "seed": run.seed,
        "sample_count": run.sample_count,
        "results_sha256": run.results_sha256,
        "metrics": {f"{m.task}/{m.metric},{m.filter}": m.value for m in run.metrics},
    }


def _check_run(
    conn: Connection,
    run: EvalRun,
    event: AuditEvent,
    samples_digest: str | None,
    samples: tuple[EvalSample, ...] | None = None,
) -> None:
    """A run's row (with its metrics) against its ``eval.run`` event: the fields the event
    states one by one, the rest by ``run_sha256``; its samples by ``samples_sha256``, else
    rebuilt against ``results_sha256`` (``samples``: when already read)."""
    source = f"audit event #{event.seq}"
    check_against_event(
        "eval_runs",
        run.id,
        {**_stated(run), "actor": run.created_by, "subject": subject_label(run.subject)},
        event,
        run_record(run),
        "run_sha256",
        "one of its quantization, compute dtype, suite files, task configs, settings, "
        "libraries, times, subject or metrics (stderr, direction, count)",
    )
    if run.status != COMPLETE:
        if samples_digest is not None or run.metrics:
            raise VerificationError(
                f"eval_runs row {run.id} is {run.status} and recorded no results, but metrics "
                f"or samples were added to it; {RESTORE}"
            )
        return
    if samples_digest is not None and samples_digest == event.payload.get("samples_sha256"):
        return
    if samples is None:
        samples = _samples(conn, run.id)
    if results_digest(run.metrics, samples) != run.results_sha256:
        raise VerificationError(
            f"eval_samples rows of run {run.id} differ from the ones {source} recorded "
            f"(results_sha256): an answer, a score or a reason was edited, added or deleted; "
            f"{RESTORE}"
        )


def _compared(comparison: Comparison) -> dict[str, Any]:
    """The fields of a comparison its ``eval.compare`` event states one by one (the rest
    it covers by ``comparison_sha256``)."""
    return {
        "comparison_id": comparison.id,
        "against": comparison.old_subject,
        "new_run": comparison.new_run,
        "old_run": comparison.old_run,
        "suite": comparison.suite_name,
        "suite_digest": comparison.suite_digest,
        "verdict": comparison.verdict,
        "tasks": {f"{r.task}/{r.metric}": r.verdict for r in comparison.results},
    }


def _check_comparison(comparison: Comparison, event: AuditEvent | None) -> None:
    """A comparison's row (with its results) against its ``eval.compare`` event: the
    fields the event states one by one, the rest by ``comparison_sha256``."""
    if event is None:
        raise VerificationError(
            f"comparisons row {comparison.id} has no audit event: it was not written by LoRA "
            f"Ledger; {RESTORE}"
        )
    check_against_event(
        "comparisons",
        comparison.id,
        {**_compared(comparison), "actor": comparison.created_by,
         "subject": comparison.new_subject},
        event,
        comparison_record(comparison),
        "comparison_sha256",
        "one of its alpha, settings, time or per-task statistics (n, means, effect, "
        "interval, p-value, flipped samples)",
    )  # fmt: skip


def _comparison(conn: Connection, comparison_id: str, *, exact: bool = False) -> Comparison:
    """A comparison (a unique prefix of its id will do, unless ``exact``) with its
    results, built from its rows as stored (unchecked)."""
    row = conn.execute(
        "SELECT c.id, c.new_run_id, c.old_run_id, c.suite_name, c.suite_digest, c.alpha, "
        "c.settings, c.verdict, c.created_at, c.created_by, "
        "n.subject_kind, n.subject_name, n.subject_version, "
        "o.subject_kind, o.subject_name, o.subject_version "
        "FROM comparisons c LEFT JOIN eval_runs n ON n.id = c.new_run_id "
        "LEFT JOIN eval_runs o ON o.id = c.old_run_id WHERE c.id = ?"
        + ("" if exact else " OR starts_with(c.id, ?)"),
        [comparison_id] if exact else [comparison_id, comparison_id],
    ).fetchall()
    if len(row) != 1:
        raise NotFound(f"no single comparison {comparison_id!r}; see `loraledger compare --help`")
    r = row[0]
    rows = conn.execute(
        f"SELECT {', '.join(_RESULT_FIELDS)} FROM comparison_results WHERE comparison_id = ? "
        "ORDER BY task, metric",
        [r[0]],
    ).fetchall()

    def build() -> Comparison:
        results = []
        for x in rows:
            values = dict(zip(_RESULT_FIELDS, x, strict=True))
            values["flipped"] = json.loads(values["flipped"])
            results.append(TaskComparison(**values))
        return Comparison(
            id=r[0],
            new_run=r[1],
            old_run=r[2],
            new_subject=_label(r[10], r[11], r[12]) if r[10] else "no such run",
            old_subject=_label(r[13], r[14], r[15]) if r[13] else "no such run",
            suite_name=r[3],
            suite_digest=r[4],
            alpha=r[5],
            settings=json.loads(r[6]),
            verdict=r[7],
            results=tuple(results),
            created_at=r[8],
            created_by=r[9],
        )

    return parsed("comparisons", r[0], build)


__all__ = [
    "BASE_PREFIX",
    "COMPARE_EVENTS",
    "EVAL_EVENTS",
    "Evaluations",
    "comparison_record",
    "results_digest",
    "run_record",
    "samples_digests",
    "subject_label",
]
