"""The registry's release policy, version by version: what judges a release is a record
of the registry, not a file on whoever runs the command.

An admin sets a version (the policy file's text and a reason) in one change with a
``policy.set`` audit event; the version is a statement she signs over ``payload`` (the
registry id, the version, the text's sha256, the reason, the previous version and its
sha256, the audit head). Every read checks every version against its payload, its
signature (with the signer's key from the trusted identity history) and its event, in
order, none missing: an edited threshold, a deleted or inserted version is refused,
named. Reading the text as a policy is :mod:`loraledger.policies.release`'s job; this
module stores and checks it.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from datetime import datetime
from functools import partial
from typing import Any

from loraledger.errors import Conflict, InputError, NotFound, VerificationError

from .audit import canonical_json, utcnow
from .core import Core
from .crosscheck import RESTORE, check_row, check_same_ids, parsed
from .db import Connection
from .keys import SigningKey, verify_signature
from .models import AuditEvent, PolicyVersion
from .permissions import Action
from .trust import held_key

POLICY_EVENTS = ("policy.set",)
SUBJECT = "policy:release"
_COLUMNS = (
    "version, sha256, text, reason, created_at, created_by, payload, key_fingerprint, signature"
)
_SIGNED = ("version", "sha256", "reason", "created_at", "created_by")
# The audit event's payload keys, each with the field it records.
_AUDITED = {"version": "version", "sha256": "sha256", "reason": "reason", "signature": "signature"}
MAX_POLICY_BYTES = 1 << 20


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class PolicyVersions:
    """The release policy's versions (:class:`PolicyVersion`), each checked on every read."""

    def __init__(self, core: Core) -> None:
        self._core = core

    def set(self, text: str, *, reason: str, key: SigningKey) -> PolicyVersion:
        """Record ``text`` (already read and validated as a policy by the caller) as the
        next version, signed by ``key``'s identity (an admin, loaded by ``act_as``)."""
        if not reason.strip():
            raise InputError("a policy version needs a reason: pass --reason TEXT")
        if len(text.encode("utf-8")) > MAX_POLICY_BYTES:
            raise InputError(f"a release policy holds at most {MAX_POLICY_BYTES:,} bytes")
        core = self._core
        digest = text_sha256(text)
        with core.change(key, Action.POLICY_SET) as change:
            history = self._checked(change.conn)
            previous = history[-1] if history else None
            if previous is not None and previous.sha256 == digest:
                raise Conflict(
                    f"this policy is in force already ({previous.ref}, set by "
                    f"{previous.created_by} at {previous.created_at:%Y-%m-%d %H:%M} UTC)"
                )
            version = previous.version + 1 if previous else 1
            head_seq, head_hash = core.audit.head(change.conn)
            record = PolicyVersion(
                version=version,
                sha256=digest,
                text=text,
                reason=reason,
                created_at=utcnow(),
                created_by=key.name,
                payload="",
                key_fingerprint=key.fingerprint,
                signature="",
            )
            dumped = record.model_dump(mode="json")
            payload = canonical_json(
                {
                    **{f: dumped[f] for f in _SIGNED},
                    "registry_id": core.registry_id,
                    "previous": _link(previous),
                    "audit_head": {"seq": head_seq, "hash": head_hash},
                }
            )
            record = record.model_copy(
                update={"payload": payload, "signature": key.sign(payload.encode("utf-8"))}
            )
            change.conn.execute(
                f"INSERT INTO policy_versions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [getattr(record, c) for c in _COLUMNS.split(", ")],
            )
            change.record(
                "policy.set",
                SUBJECT,
                {
                    "version": version,
                    "sha256": digest,
                    "reason": reason,
                    "previous_sha256": previous.sha256 if previous else None,
                    "signature": record.signature,
                    "payload_sha256": text_sha256(payload),
                },
            )
        return record

    def history(self) -> builtins.list[PolicyVersion]:
        """Every version, oldest first, checked."""
        with self._core.db.read() as conn:
            return self._checked(conn)

    def in_force(self, at: datetime | None = None) -> PolicyVersion | None:
        """The version in force now (or at ``at``): the newest set by then; None when no
        policy was ever set (by then). Refused when the change that set it was signed
        with a key compromised there (a thief's thresholds): an admin sets it again."""
        with self._core.db.read() as conn:
            events = self._core.audited(conn, POLICY_EVENTS, SUBJECT)
            history = self._check(conn, _stored(conn), events)
        found = [
            (v, e) for v, e in zip(history, events, strict=True) if at is None or v.created_at <= at
        ]
        if not found:
            return None
        version, event = found[-1]
        self._core.refuse_void([event], f"policy v{version.version}",
                               "an admin sets the policy again (`loraledger policy set FILE "
                               "--reason R`)")  # fmt: skip
        return version

    def get(self, version: int) -> PolicyVersion:
        for found in self.history():
            if found.version == version:
                return found
        raise NotFound(f"the registry has no policy v{version}; `loraledger policy history`")

    def with_sha256(self, sha256: str) -> PolicyVersion | None:
        """The newest version whose text has ``sha256`` (what a gate check records)."""
        found = [v for v in self.history() if v.sha256 == sha256]
        return found[-1] if found else None

    def check_all(self, conn: Connection, events: builtins.list[AuditEvent]) -> int:
        """Every version against ``events`` (the log's ``policy.set`` events, verified by
        the caller); returns the rows checked."""
        return len(self._check(conn, _stored(conn), events))

    def _checked(self, conn: Connection) -> builtins.list[PolicyVersion]:
        events = self._core.audited(conn, POLICY_EVENTS, SUBJECT)
        return self._check(conn, _stored(conn), events)

    def _check(
        self,
        conn: Connection,
        history: builtins.list[PolicyVersion],
        events: builtins.list[AuditEvent],
    ) -> builtins.list[PolicyVersion]:
        check_same_ids(
            "policy_versions",
            "",
            [str(v.version) for v in history],
            [(str(e.payload.get("version")), e.seq) for e in events],
        )
        identities = self._core.trusted_identities(conn)
        previous: PolicyVersion | None = None
        for record, event in zip(history, events, strict=True):
            row_id = record.ref
            dumped = record.model_dump(mode="json")
            if text_sha256(record.text) != record.sha256:
                raise VerificationError(
                    f"policy_versions row {row_id}: its text is not the text whose sha256 "
                    f"it records (a threshold or rule was edited); {RESTORE}"
                )
            signed: Any = parsed("policy_versions", row_id, partial(json.loads, record.payload))
            if not isinstance(signed, dict):
                raise VerificationError(f"policy_versions row {row_id}: payload; {RESTORE}")
            stored = {f: dumped[f] for f in _SIGNED}
            stored.update(previous=_link(previous), registry_id=self._core.registry_id)
            check_row("policy_versions", row_id, stored, signed, "its signed payload")
            recorded = {**event.payload, "actor": event.actor}
            audited = {key: dumped[field] for key, field in _AUDITED.items()}
            audited.update(actor=record.created_by)
            check_row("policy_versions", row_id, audited, recorded, f"audit event #{event.seq}")
            pem = held_key(
                f"policy_versions row {row_id}",
                record.created_by,
                identities.get(record.created_by),
                record.key_fingerprint,
            )
            if not verify_signature(pem, record.signature, record.payload.encode("utf-8")):
                raise VerificationError(
                    f"policy_versions row {row_id}: its signature does not verify with "
                    f"{record.created_by!r}'s registered key; {RESTORE}"
                )
            previous = record
        return history


def _link(previous: PolicyVersion | None) -> dict[str, Any] | None:
    if previous is None:
        return None
    return {"version": previous.version, "sha256": previous.sha256}


def _stored(conn: Connection) -> builtins.list[PolicyVersion]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM policy_versions ORDER BY version").fetchall()
    names = _COLUMNS.split(", ")
    return [
        parsed(
            "policy_versions",
            f"policy v{row[0]}",
            partial(PolicyVersion.model_validate, dict(zip(names, row, strict=True))),
        )
        for row in rows
    ]


__all__ = ["MAX_POLICY_BYTES", "POLICY_EVENTS", "PolicyVersions", "text_sha256"]
