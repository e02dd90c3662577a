"""Gate checks as recorded: the report a gate produced, with its audit event.

The rules are judged by :mod:`loraledger.policies.gates`; this module only stores and
reads the result. A check is written in one change with a ``gate.check`` audit event that
carries the policy's and the inputs' hashes; reading it back compares the stored report
with that event.
"""

from __future__ import annotations

import builtins
import json

from loraledger.errors import NotFound, VerificationError

from .adapters import Adapters
from .audit import canonical_json
from .core import Core
from .keys import SigningKey
from .models import GateCheck
from .permissions import Action
from .refs import version_and_environment


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
                },
            )
        return check

    def get(self, check_id: str) -> GateCheck:
        with self._core.db.read() as conn:
            rows = conn.execute(
                "SELECT report FROM gate_checks WHERE id = ? OR id LIKE ? || '%'",
                [check_id, check_id],
            ).fetchall()
            if len(rows) != 1:
                raise NotFound(f"no single gate check {check_id!r}")
            check = GateCheck.model_validate_json(rows[0][0])
            audited = conn.execute(
                "SELECT payload FROM audit_events WHERE action = 'gate.check' "
                "AND json_extract_string(payload, '$.check_id') = ?",
                [check.id],
            ).fetchone()
        logged = json.loads(audited[0]) if audited else {}
        for field in ("passed", "policy_sha256", "inputs_sha256", "artifact_digest"):
            if logged.get(field) != getattr(check, field):
                raise VerificationError(
                    f"gate check {check.id}: its {field} differs from the audited one; the "
                    "registry was tampered with"
                )
        return check

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


__all__ = ["GateChecks"]
