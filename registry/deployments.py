"""The deployment history of environments, as stored: one row per promotion or rollback,
newest last. The rules live in :mod:`loraledger.policies.deployments`."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from loraledger.errors import ConcurrentChange

from .core import Core
from .keys import SigningKey
from .models import Deployment, Role
from .permissions import Action

_COLUMNS = (
    "id, seq, environment, adapter_name || '@v' || adapter_version, artifact_digest, action, "
    "reason, gate_check_id, approval_ids, policy_sha256, created_at, created_by"
)


class Deployments:
    def __init__(self, core: Core) -> None:
        self._core = core

    def history(self, environment: str) -> list[Deployment]:
        with self._core.db.read() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM deployments WHERE environment = ? ORDER BY seq",
                [environment],
            ).fetchall()
        return [_deployment(r) for r in rows]

    def of_version(self, digest: str) -> list[Deployment]:
        """Every deployment (any environment) of the version with ``digest``, oldest first."""
        with self._core.db.read() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM deployments WHERE artifact_digest = ? "
                "ORDER BY created_at, seq",
                [digest],
            ).fetchall()
        return [_deployment(r) for r in rows]

    def current(self, environment: str) -> Deployment | None:
        history = self.history(environment)
        return history[-1] if history else None

    def running(self) -> dict[str, Deployment]:
        """What each environment runs now: its newest deployment, by environment."""
        with self._core.db.read() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM deployments d WHERE seq = "
                "(SELECT max(seq) FROM deployments e WHERE e.environment = d.environment)"
            ).fetchall()
        return {d.environment: d for d in map(_deployment, rows)}

    def record(
        self,
        deployment: Deployment,
        key: SigningKey,
        needs: Action | Collection[Role],
        *,
        after_seq: int,
    ) -> Deployment:
        """Append ``deployment`` if the environment's newest row is still ``after_seq``
        (0: none); otherwise someone else changed the environment first."""
        name, version = deployment.adapter.rsplit("@v", 1)
        with self._core.change(key, needs) as change:
            row = change.conn.execute(
                "SELECT coalesce(max(seq), 0) FROM deployments WHERE environment = ?",
                [deployment.environment],
            ).fetchone()
            newest = int(row[0]) if row else 0
            if newest != after_seq:
                raise ConcurrentChange(
                    f"environment {deployment.environment!r} changed while this ran (now at "
                    f"deployment #{newest}); look at `loraledger deployments --env "
                    f"{deployment.environment}` and try again"
                )
            deployment = deployment.model_copy(update={"seq": newest + 1})
            change.conn.execute(
                "INSERT INTO deployments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    deployment.id,
                    deployment.seq,
                    deployment.environment,
                    name,
                    int(version),
                    deployment.artifact_digest,
                    deployment.action,
                    deployment.reason,
                    deployment.gate_check_id,
                    json.dumps(list(deployment.approval_ids)),
                    deployment.policy_sha256,
                    deployment.created_at,
                    deployment.created_by,
                ],
            )
            change.record(
                f"deploy.{deployment.action}",
                f"env:{deployment.environment}",
                {
                    "deployment_id": deployment.id,
                    "seq": deployment.seq,
                    "adapter": deployment.adapter,
                    "artifact_digest": deployment.artifact_digest,
                    "reason": deployment.reason,
                    "gate_check_id": deployment.gate_check_id,
                    "approval_ids": list(deployment.approval_ids),
                    "policy_sha256": deployment.policy_sha256,
                },
            )
        return deployment


def _deployment(row: tuple[Any, ...]) -> Deployment:
    return Deployment(
        id=row[0],
        seq=row[1],
        environment=row[2],
        adapter=row[3],
        artifact_digest=row[4],
        action=row[5],
        reason=row[6],
        gate_check_id=row[7],
        approval_ids=tuple(json.loads(row[8])),
        policy_sha256=row[9],
        created_at=row[10],
        created_by=row[11],
    )


__all__ = ["Deployments"]
