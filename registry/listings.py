"""Read-models for screens: listings filtered, counted and paged in SQL, so a page reads
one screenful however large the registry grows (never a whole table into memory).

The dashboard reads the registry's tables only through these (no SQL text lives under
``dashboard/``), so a schema change breaks them here, next to the schema and its tests.
Each function opens one short read; what it returns is plain rows for display. Anything
a decision depends on (gate checks, approvals, traces, signatures) comes from the
collections instead, verified.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .core import Core


@dataclass(frozen=True)
class Page:
    total: int
    rows: list[dict[str, Any]]


def _dicts(cursor: Any) -> list[dict[str, Any]]:
    columns = [c[0] for c in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _contains(column: str, part: str) -> tuple[str, str]:
    """A LIKE clause matching ``part`` literally anywhere in ``column``, and its value."""
    escaped = part.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{column} LIKE ? ESCAPE '\\'", f"%{escaped}%"


def _page(
    registry: Core,
    source: str,
    where: list[str],
    params: list[Any],
    select: str,
    order: str,
    offset: int,
    limit: int,
) -> Page:
    """One page of ``SELECT select FROM source WHERE where ORDER BY order``, with the
    count of all matching rows."""
    condition = " AND ".join(where) or "true"
    with registry.db.read() as conn:
        total = conn.execute(f"SELECT count(*) FROM {source} WHERE {condition}", params)
        count = total.fetchone()
        rows = _dicts(
            conn.execute(
                f"SELECT {select} FROM {source} WHERE {condition} ORDER BY {order} "
                "LIMIT ? OFFSET ?",
                [*params, limit, offset],
            )
        )
    return Page(int(count[0]) if count else 0, rows)


def adapter_versions(registry: Core, name_part: str, offset: int, limit: int) -> Page:
    """Adapter versions, newest first, whose name contains ``name_part``."""
    where, params = [], []
    if name_part:
        clause, value = _contains("name", name_part)
        where, params = [clause], [value]
    return _page(
        registry, "adapter_versions", where, params,
        "name || '@v' || version AS version, digest, created_at, created_by, "
        "file_count AS files",
        "created_at DESC, name, version DESC", offset, limit,
    )  # fmt: skip


def metrics_over_versions(registry: Core, name: str, limit: int = 50) -> list[dict[str, Any]]:
    """Each metric of the newest complete run of every suite, for the last ``limit``
    versions of adapter ``name``: the data of the chart across versions."""
    with registry.db.read() as conn:
        return _dicts(
            conn.execute(
                """
                WITH ranked AS (
                    SELECT id, subject_version, suite_name, row_number() OVER (
                        PARTITION BY subject_version, suite_name ORDER BY finished_at DESC
                    ) AS newest FROM eval_runs
                    WHERE subject_kind = 'adapter' AND subject_name = ? AND status = 'complete'
                      AND subject_version > (
                          SELECT coalesce(max(version), 0) - ? FROM adapter_versions
                          WHERE name = ?)
                ), runs AS (SELECT * FROM ranked WHERE newest = 1)
                SELECT r.subject_version AS version, r.suite_name AS suite, m.task,
                       m.metric, m.value, m.stderr
                FROM runs r JOIN eval_metrics m ON m.run_id = r.id
                ORDER BY r.suite_name, m.task, m.metric, r.subject_version
                """,
                [name, limit, name],
            )
        )


def pending_reviews(registry: Core, limit: int = 20) -> list[dict[str, Any]]:
    """Versions checked against an environment they have never run in: the newest check
    of each, with how many decisions were recorded since (judged on the Review page)."""
    with registry.db.read() as conn:
        return _dicts(
            conn.execute(
                """
                WITH ranked AS (
                    SELECT *, row_number() OVER (
                        PARTITION BY adapter_name, adapter_version, environment
                        ORDER BY created_at DESC) AS newest_rank
                    FROM gate_checks
                ), newest AS (SELECT * FROM ranked WHERE newest_rank = 1)
                SELECT g.adapter_name || '@v' || g.adapter_version AS version,
                       g.environment, g.passed AS gate_passed, g.created_at AS checked_at,
                       (SELECT count(*) FROM approvals a
                        WHERE a.artifact_digest = g.artifact_digest
                          AND a.environment = g.environment AND a.decision = 'approve')
                           AS approvals,
                       (SELECT count(*) FROM approvals a
                        WHERE a.artifact_digest = g.artifact_digest
                          AND a.environment = g.environment AND a.decision = 'reject')
                           AS rejections
                FROM newest g
                WHERE NOT EXISTS (
                    SELECT 1 FROM deployments d
                    WHERE d.environment = g.environment AND d.adapter_name = g.adapter_name
                      AND d.adapter_version = g.adapter_version)
                ORDER BY g.created_at DESC LIMIT ?
                """,
                [limit],
            )
        )


def audit_facets(registry: Core) -> tuple[list[str], list[str]]:
    """The actors and actions that occur in the log (for the filters)."""
    with registry.db.read() as conn:
        actors = [
            r[0]
            for r in conn.execute("SELECT DISTINCT actor FROM audit_events ORDER BY 1").fetchall()
        ]
        actions = [
            r[0]
            for r in conn.execute("SELECT DISTINCT action FROM audit_events ORDER BY 1").fetchall()
        ]
    return actors, actions


def audit_page(
    registry: Core,
    *,
    actor: str | None,
    action: str | None,
    subject_part: str | None,
    since: datetime | None,
    until: datetime | None,
    offset: int,
    limit: int,
) -> Page:
    """Audit events, newest first, filtered in SQL."""
    where, params = [], []
    for clause, value in (
        ("actor = ?", actor),
        ("action = ?", action),
        ("created_at >= ?", since),
        ("created_at <= ?", until),
    ):
        if value:
            where.append(clause)
            params.append(value)
    if subject_part:
        clause, pattern = _contains("subject", subject_part)
        where.append(clause)
        params.append(pattern)
    return _page(
        registry, "audit_events", where, params,
        "seq, created_at, actor, action, subject, payload, hash", "seq DESC", offset, limit,
    )  # fmt: skip


def alerts(registry: Core, limit: int = 10) -> list[dict[str, Any]]:
    """The newest monitoring alerts (``loraledger monitor`` found a regression)."""
    with registry.db.read() as conn:
        rows = _dicts(
            conn.execute(
                "SELECT seq, created_at, actor, subject, payload FROM audit_events "
                "WHERE action = 'monitor.alert' ORDER BY seq DESC LIMIT ?",
                [limit],
            )
        )
    for row in rows:
        row["payload"] = json.loads(row["payload"])
    return rows


def datasets_page(registry: Core, name_part: str, offset: int, limit: int) -> Page:
    """Dataset versions, newest first, whose name contains ``name_part``; PII as counts."""
    where, params = [], []
    if name_part:
        clause, value = _contains("name", name_part)
        where, params = [clause], [value]
    page = _page(
        registry, "datasets", where, params,
        "name || '@v' || version AS dataset, record_count AS records, license, source, pii, "
        "created_at, created_by, merkle_root",
        "created_at DESC, name, version DESC", offset, limit,
    )  # fmt: skip
    for row in page.rows:
        findings = json.loads(row.pop("pii"))
        row["pii"] = ", ".join(f"{k}: {v['count']}" for k, v in sorted(findings.items())) or "—"
    return page


def dataset_users(registry: Core, name: str, version: int) -> list[dict[str, Any]]:
    """The adapter versions trained on a dataset version, and where each runs now."""
    with registry.db.read() as conn:
        return _dicts(
            conn.execute(
                """
                WITH ranked AS (
                    SELECT *, row_number() OVER (PARTITION BY environment ORDER BY seq DESC)
                        AS newest_rank
                    FROM deployments
                ), current AS (SELECT * FROM ranked WHERE newest_rank = 1)
                SELECT r.adapter_name || '@v' || r.adapter_version AS adapter,
                       r.id AS training_run,
                       string_agg(c.environment, ', ' ORDER BY c.environment) AS running_in
                FROM training_run_datasets u
                JOIN training_runs r ON r.id = u.run_id
                LEFT JOIN current c ON c.adapter_name = r.adapter_name
                     AND c.adapter_version = r.adapter_version
                WHERE u.dataset_name = ? AND u.version = ?
                GROUP BY r.adapter_name, r.adapter_version, r.id
                ORDER BY r.adapter_name, r.adapter_version
                """,
                [name, version],
            )
        )


def flipped_samples(
    registry: Core, old_run: str, new_run: str, task: str, keys: list[str]
) -> list[dict[str, Any]]:
    """The two runs' answers to the samples whose outcome flipped, side by side."""
    if not keys:
        return []
    with registry.db.read() as conn:
        return _dicts(
            conn.execute(
                """
                SELECT o.sample_key AS sample, o.input AS prompt, o.target,
                       o.output AS before, o.passed AS passed_before,
                       n.output AS after, n.passed AS passed_after
                FROM eval_samples o JOIN eval_samples n
                  ON n.run_id = ? AND n.task = o.task AND n.filter = o.filter
                 AND n.sample_key = o.sample_key
                WHERE o.run_id = ? AND o.task = ? AND list_contains(?, o.sample_key)
                ORDER BY o.doc_id
                """,
                [new_run, old_run, task, keys],
            )
        )
