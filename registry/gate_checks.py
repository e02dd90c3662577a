"""Gate checks as recorded: the report a gate produced, with its audit event.

The rules are judged by :mod:`loraledger.policies.gates`; this module only stores and
reads the result. A check is written in one change with a ``gate.check`` audit event that
carries the policy's and the inputs' hashes, the verdict, and the sha256 of the whole
report; reading it back compares the row's columns with its report and the report with
that event (:mod:`.crosscheck`): an edited verdict, rule or column is refused, named.
"""

from __future__ import annotations

import builtins
import hashlib
from typing import Any

from loraledger.errors import NotFound, VerificationError

from .adapters import Adapters
from .audit import canonical_json
from .core import Core
from .crosscheck import RESTORE, check_row, check_same_ids, parsed
from .db import Connection
from .keys import SigningKey
from .models import AuditEvent, GateCheck
from .permissions import Action
from .refs import version_and_environment

GATE_EVENTS = ("gate.check",)
# The row's columns besides the report, each with the GateCheck field it repeats.
_COLUMNS = {
    "id": "id",
    "adapter_name || '@v' || adapter_version": "adapter",
    "artifact_digest": "artifact_digest",
    "environment": "environment",
    "policy_path": "policy_path",
    "policy_sha256": "policy_sha256",
    "passed": "passed",
    "inputs_sha256": "inputs_sha256",
    "created_at": "created_at",
    "created_by": "created_by",
}
_SELECT = f"SELECT report, {', '.join(_COLUMNS)} FROM gate_checks"
# The audit event's payload keys, each with the GateCheck field it records.
_AUDITED = {
    "check_id": "id",
    "environment": "environment",
    "artifact_digest": "artifact_digest",
    "policy_sha256": "policy_sha256",
    "inputs_sha256": "inputs_sha256",
    "passed": "passed",
}


def report_sha256(report: str) -> str:
    return hashlib.sha256(report.encode("utf-8")).hexdigest()


class GateChecks:
    def __init__(self, core: Core, adapters: Adapters) -> None:
        self._core = core
        self._adapters = adapters

    def record(self, check: GateCheck, key: SigningKey) -> GateCheck:
        """Store ``check`` as ``key``'s identity (loaded by ``act_as`` for the check)."""
        core = self._core
        check = check.model_copy(update={"created_by": key.name})
        name, version = check.adapter.rsplit("@v", 1)
        report = canonical_json(check.model_dump(mode="json"))
        with core.change(key, Action.GATE_CHECK) as change:
            change.conn.execute(
                "INSERT INTO gate_checks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    check.id,
                    name,
                    int(version),
                    check.artifact_digest,
                    check.environment,
                    check.policy_path,
                    check.policy_sha256,
                    check.passed,
                    report,
                    check.inputs_sha256,
                    check.created_at,
                    check.created_by,
                ],
            )
            change.record(
                "gate.check",
                f"adapter:{check.adapter}",
                {
                    "check_id": check.id,
                    "environment": check.environment,
                    "artifact_digest": check.artifact_digest,
                    "policy_sha256": check.policy_sha256,
                    "inputs_sha256": check.inputs_sha256,
                    "passed": check.passed,
                    "failed": [r.rule for r in check.rules if not r.passed],
                    "report_sha256": report_sha256(report),
                },
            )
        return check

    def get(self, check_id: str) -> GateCheck:
        """The check (a unique prefix of its id will do), its row checked against its
        report and its report against its audit event."""
        with self._core.db.read() as conn:
            rows = conn.execute(f"{_SELECT} WHERE id = ?", [check_id]).fetchall() or (
                conn.execute(f"{_SELECT} WHERE starts_with(id, ?)", [check_id]).fetchall()
            )
            if len(rows) != 1:
                raise NotFound(f"no single gate check {check_id!r}")
            (row,) = rows
            events = [
                e
                for e in self._core.audited(conn, GATE_EVENTS, f"adapter:{row[2]}")
                if e.payload.get("check_id") == row[1]
            ]
        if not events:
            raise VerificationError(
                f"gate_checks row {row[1]} has no audit event: it was not written by LoRA "
                f"Ledger; {RESTORE}"
            )
        self._core.refuse_void(events[:1], f"gate check {row[1]}", "check the gate again")
        return _checked(row, events[0])

    def list(self, adapter: str | None = None, environment: str | None = None) -> list[GateCheck]:
        """Checks, oldest first, each read back through :meth:`get`."""
        return [self.get(i) for i in self.ids(adapter, environment)]

    def ids(self, adapter: str | None = None, environment: str | None = None) -> builtins.list[str]:
        """The ids of the checks, oldest first, without reading them."""
        sql = "SELECT id FROM gate_checks WHERE true"
        version = self._adapters.get(adapter) if adapter is not None else None
        where, params = version_and_environment(
            (version.name, version.version) if version else None, environment
        )
        sql += where
        with self._core.db.read() as conn:
            return [r[0] for r in conn.execute(sql + " ORDER BY created_at, id", params).fetchall()]

    def check_all(self, conn: Connection, events: builtins.list[AuditEvent]) -> int:
        """Every gate check row against its report and ``events`` (the log's ``gate.check``
        events, verified by the caller); returns the rows checked."""
        rows = conn.execute(_SELECT + " ORDER BY id").fetchall()
        by_id = {str(e.payload.get("check_id")): e for e in events}
        check_same_ids(
            "gate_checks", "", [r[1] for r in rows], sorted((i, e.seq) for i, e in by_id.items())
        )
        for row in rows:
            _checked(row, by_id[row[1]])
        return len(rows)


def _checked(row: tuple[Any, ...], event: AuditEvent) -> GateCheck:
    """A gate check row (``_SELECT``'s columns): its columns against its report, its
    report against ``event`` (the whole report by its sha256, where the event records
    one: every check recorded since it does)."""
    row_id = str(row[1])
    check = parsed("gate_checks", row_id, lambda: GateCheck.model_validate_json(row[0]))
    report = check.model_dump(mode="json")
    values = dict(zip(_COLUMNS.values(), row[1:], strict=True))
    columns = parsed("gate_checks", row_id, lambda: GateCheck.model_validate(report | values))
    stored = columns.model_dump(mode="json")
    check_row(
        "gate_checks", row_id, {f: stored[f] for f in _COLUMNS.values()}, report, "its report"
    )
    recorded = {**event.payload, "actor": event.actor, "subject": event.subject}
    audited = {key: report[field] for key, field in _AUDITED.items()}
    audited.update(
        actor=check.created_by,
        subject=f"adapter:{check.adapter}",
        failed=[r.rule for r in check.rules if not r.passed],
    )
    source = f"audit event #{event.seq}"
    check_row("gate_checks", row_id, audited, recorded, source)
    logged = event.payload.get("report_sha256")
    if logged is not None and logged != report_sha256(row[0]):
        raise VerificationError(
            f"gate_checks row {row_id}: report differs from the one {source} recorded (its "
            f"sha256): a rule, a measured value or a bound was edited; {RESTORE}"
        )
    return check


__all__ = ["GATE_EVENTS", "GateChecks", "report_sha256"]
