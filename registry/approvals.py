"""Signed approval decisions, as stored. The rules (who may approve what, which approvals
count) live in :mod:`loraledger.policies.approvals`; this module writes and reads."""

from __future__ import annotations

from collections.abc import Collection

from .adapters import Adapters
from .core import Core
from .keys import SigningKey
from .models import Approval, Role
from .permissions import Action
from .refs import version_and_environment

_FIELDS = tuple(f for f in Approval.model_fields if f not in ("adapter", "format_version"))


class Approvals:
    def __init__(self, core: Core, adapters: Adapters) -> None:
        self._core = core
        self._adapters = adapters

    def record(
        self, approval: Approval, key: SigningKey, needs: Action | Collection[Role]
    ) -> Approval:
        name, version = approval.adapter.rsplit("@v", 1)
        values = approval.model_dump()
        with self._core.change(key, needs) as change:
            change.conn.execute(
                f"INSERT INTO approvals (adapter_name, adapter_version, {', '.join(_FIELDS)}) "
                f"VALUES ({', '.join(['?'] * (len(_FIELDS) + 2))})",
                [name, int(version), *(values[f] for f in _FIELDS)],
            )
            change.record(
                f"approval.{approval.decision}",
                f"adapter:{approval.adapter}",
                {
                    "approval_id": approval.id,
                    "environment": approval.environment,
                    "artifact_digest": approval.artifact_digest,
                    "policy_sha256": approval.policy_sha256,
                    "inputs_sha256": approval.inputs_sha256,
                    "gate_check_id": approval.gate_check_id,
                    "signature": approval.signature,
                    "comment": approval.comment,
                },
            )
        return approval

    def list(self, adapter: str | None = None, environment: str | None = None) -> list[Approval]:
        sql = (
            f"SELECT adapter_name || '@v' || adapter_version, {', '.join(_FIELDS)} "
            "FROM approvals WHERE true"
        )
        version = self._adapters.get(adapter) if adapter is not None else None
        where, params = version_and_environment(
            (version.name, version.version) if version else None, environment
        )
        sql += where
        with self._core.db.read() as conn:
            rows = conn.execute(sql + " ORDER BY created_at, id", params).fetchall()
        return [Approval(adapter=r[0], **dict(zip(_FIELDS, r[1:], strict=True))) for r in rows]


__all__ = ["Approvals"]
