"""Signed approval decisions, as stored. The rules (who may approve what, which approvals
count) live in :mod:`loraledger.policies.approvals`; this module writes and reads.

What is read is checked against what was signed (:mod:`.crosscheck`): every column of
an approval row must equal its signed payload, the row must be the one its audit event
recorded (same signature), and the rows of a version must be exactly the decisions the
audit log recorded -- an approval copied onto another version, a decision flipped, or a
rejection deleted is refused where it is read, naming the row and the field.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Collection
from typing import Any

from loraledger.errors import VerificationError

from .adapters import Adapters
from .core import Core
from .crosscheck import RESTORE, check_row, check_same_ids
from .db import Connection
from .keys import SigningKey
from .models import Approval, AuditEvent, Identity, Role
from .permissions import Action
from .refs import version_and_environment
from .trust import held_key

_FIELDS = tuple(f for f in Approval.model_fields if f not in ("adapter", "format_version"))
DECISION_EVENTS = ("approval.approve", "approval.reject")
# The signed payload's keys, each with the Approval field it states.
_SIGNED = {
    "approval_id": "id",
    "adapter": "adapter",
    "artifact_digest": "artifact_digest",
    "environment": "environment",
    "decision": "decision",
    "comment": "comment",
    "policy_sha256": "policy_sha256",
    "gate_check_id": "gate_check_id",
    "inputs_sha256": "inputs_sha256",
    "signer": "signer",
    "created_at": "created_at",
}
# The audit event's payload keys, each with the Approval field it records.
_AUDITED = {
    "approval_id": "id",
    "environment": "environment",
    "artifact_digest": "artifact_digest",
    "policy_sha256": "policy_sha256",
    "inputs_sha256": "inputs_sha256",
    "gate_check_id": "gate_check_id",
    "signature": "signature",
    "comment": "comment",
}


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
        """The decisions (on ``adapter``, for ``environment``), oldest first, each checked
        against its signed payload and its audit event."""
        return [approval for approval, _ in self.placed(adapter, environment)]

    def placed(
        self, adapter: str | None = None, environment: str | None = None
    ) -> builtins.list[tuple[Approval, int]]:
        """:meth:`list`, each decision with its place in the audit chain (the event that
        recorded it): where its signer's key is judged."""
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
            approvals = [
                Approval(adapter=r[0], **dict(zip(_FIELDS, r[1:], strict=True))) for r in rows
            ]
            subject = f"adapter:{version.ref}" if version else None
            return self._check(conn, approvals, subject, environment)

    def check_all(self, conn: Connection, events: builtins.list[AuditEvent]) -> int:
        """Every approval row against its payload and ``events`` (the log's decision
        events, verified by the caller); returns the rows checked."""
        rows = conn.execute(
            f"SELECT adapter_name || '@v' || adapter_version, {', '.join(_FIELDS)} "
            "FROM approvals ORDER BY created_at, id"
        ).fetchall()
        approvals = [Approval(adapter=r[0], **dict(zip(_FIELDS, r[1:], strict=True))) for r in rows]
        self._check_events(conn, approvals, events, "")
        return len(approvals)

    def _check(
        self,
        conn: Connection,
        approvals: builtins.list[Approval],
        subject: str | None,
        environment: str | None,
    ) -> builtins.list[tuple[Approval, int]]:
        events = [
            e
            for e in self._core.audited(conn, DECISION_EVENTS, subject)
            if environment is None or e.payload.get("environment") == environment
        ]
        where = " ".join(
            part for part in (subject and subject.removeprefix("adapter:"), environment) if part
        )
        return self._check_events(conn, approvals, events, where)

    def _check_events(
        self,
        conn: Connection,
        approvals: builtins.list[Approval],
        events: builtins.list[AuditEvent],
        where: str,
    ) -> builtins.list[tuple[Approval, int]]:
        """The approvals, each checked, with the place of its audit event."""
        by_id = {str(e.payload.get("approval_id")): e for e in events}
        check_same_ids(
            "approvals",
            where,
            sorted(a.id for a in approvals),
            sorted((i, e.seq) for i, e in by_id.items()),
        )
        identities = self._core.trusted_identities(conn)
        for approval in approvals:
            _check_approval(approval, by_id[approval.id], identities.get(approval.signer))
        return [(a, by_id[a.id].seq) for a in approvals]


def _check_approval(approval: Approval, event: AuditEvent, signer: Identity | None) -> None:
    """The row against its own signed payload, then against its audit event; its key
    fingerprint must be the signer's registered key's."""
    row = approval.model_dump(mode="json")
    try:
        signed: Any = json.loads(approval.payload)
    except ValueError:
        signed = None
    if not isinstance(signed, dict):
        raise VerificationError(
            f"approvals row {approval.id}: its signed payload is not a JSON object; {RESTORE}"
        )
    check_row(
        "approvals",
        approval.id,
        {key: row[field] for key, field in _SIGNED.items()},
        signed,
        "its signed payload",
    )
    audited = {**event.payload, "actor": event.actor, "decision": event.action.split(".")[1]}
    stored = {key: row[field] for key, field in _AUDITED.items()}
    stored.update(actor=approval.signer, decision=row["decision"])
    check_row("approvals", approval.id, stored, audited, f"audit event #{event.seq}")
    held_key(f"approvals row {approval.id}", approval.signer, signer, approval.key_fingerprint)
    if event.subject != f"adapter:{approval.adapter}":
        raise VerificationError(
            f"approvals row {approval.id}: adapter is {approval.adapter!r} but audit event "
            f"#{event.seq} recorded it for {event.subject.removeprefix('adapter:')!r}; {RESTORE}"
        )


__all__ = ["Approvals"]
