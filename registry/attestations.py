"""Signed attestations, stored: what anyone can verify without the registry.

Each is made the moment its evidence is recorded -- provenance when a trained adapter
version is registered, a test result for every complete evaluation run, a derivation when
a file is made from a registered artifact (:mod:`.derivations`) -- as an in-toto
statement (:mod:`.statements`) in a DSSE envelope (:mod:`.dsse`) signed with the key of
the identity that produced it, and stored in the same transaction as the evidence; the
audit event of that evidence (``adapter.register``, ``eval.run``) records the
attestation's id and envelope sha256, so a row is checked against both (:meth:`check_all`).
"""

from __future__ import annotations

import builtins
import json
import uuid
from datetime import datetime
from typing import Any

from loraledger.errors import VerificationError

from .audit import canonical_json
from .core import Core
from .crosscheck import RESTORE, check_row, check_same_ids, parsed
from .db import Connection
from .dsse import PAYLOAD_TYPE, envelope_sha256, open_envelope, sign_statement
from .keys import SigningKey
from .models import Attestation, AuditEvent, Identity
from .statements import (
    BUILD_TYPE,
    SLSA_PROVENANCE,
    TEST_RESULT,
    new_statement,
    provenance_statement,
    subject_digests,
    test_result_statement,
    validate_statement,
)
from .trust import held_key

# Which evidence's event records each kind of attestation: its action, and the payload
# key holding the attestation's id and envelope sha256.
RECORDED_BY = {
    "provenance": ("adapter.register", "provenance_attestation"),
    "test-result": ("eval.run", "test_result_attestation"),
    "derivation": ("derive", "derivation_attestation"),
}
_COLUMNS = (
    "id, kind, subject, artifact_digest, predicate_type, envelope, envelope_sha256, "
    "signer, key_fingerprint, created_at"
)


class Attestations:
    """The signed attestations stored with the evidence they attest."""

    def __init__(self, core: Core) -> None:
        self._core = core

    def insert_in(
        self,
        conn: Connection,
        kind: str,
        subject: str,
        artifact_digest: str,
        statement: dict[str, Any],
        key: SigningKey,
        created_at: datetime,
    ) -> Attestation:
        """Sign ``statement`` about ``artifact_digest`` and store it inside the caller's
        change (``subject``: the adapter ref or evaluation run it belongs to)."""
        envelope = sign_statement(statement, key)
        attestation = Attestation(
            id=str(uuid.uuid4()),
            kind=kind,
            subject=subject,
            artifact_digest=artifact_digest,
            predicate_type=statement["predicateType"],
            envelope=envelope,
            envelope_sha256=envelope_sha256(envelope),
            signer=key.name,
            key_fingerprint=key.fingerprint,
            created_at=created_at,
        )
        conn.execute(
            f"INSERT INTO attestations ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                attestation.id,
                kind,
                subject,
                attestation.artifact_digest,
                attestation.predicate_type,
                canonical_json(envelope),
                attestation.envelope_sha256,
                key.name,
                key.fingerprint,
                created_at,
            ],
        )
        return attestation

    def list(
        self, *, subject: str | None = None, kind: str | None = None
    ) -> builtins.list[Attestation]:
        sql = f"SELECT {_COLUMNS} FROM attestations WHERE true"
        params: builtins.list[Any] = []
        for column, value in (("subject", subject), ("kind", kind)):
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        with self._core.db.read() as conn:
            rows = conn.execute(sql + " ORDER BY created_at, id", params).fetchall()
        return [_attestation(r) for r in rows]

    def rows_in(self, conn: Connection, *, kind: str) -> builtins.list[Attestation]:
        """The stored rows of ``kind`` as they are (unchecked: the caller checks them)."""
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM attestations WHERE kind = ? ORDER BY created_at, id", [kind]
        ).fetchall()
        return [_attestation(r) for r in rows]

    def verify(self, attestation: Attestation) -> dict[str, Any]:
        """The attested statement, after checking the envelope with the signer's
        registered key (revoked keys still verify what they signed before)."""
        pem = held_key(
            f"attestation {attestation.id[:8]}",
            attestation.signer,
            self._core.identity(attestation.signer),
            attestation.key_fingerprint,
        )
        return open_envelope(attestation.envelope, {attestation.key_fingerprint: pem})

    def check_all(self, conn: Connection, events: builtins.list[AuditEvent]) -> int:
        """Every attestation row against the events that recorded it (``events``: the
        log's events of the actions in :data:`RECORDED_BY`, verified by the caller) and
        against its own envelope, verified with the signer's key from the trusted
        identity history; returns the rows checked."""
        rows = conn.execute(f"SELECT {_COLUMNS} FROM attestations ORDER BY id").fetchall()
        attestations = [_attestation(r) for r in rows]
        by_id: dict[str, tuple[str, AuditEvent]] = {}
        for event in events:
            for kind, (action, key) in RECORDED_BY.items():
                entry = event.payload.get(key) if event.action == action else None
                if isinstance(entry, dict):
                    by_id[str(entry.get("id"))] = (kind, event)
        check_same_ids(
            "attestations",
            "",
            [a.id for a in attestations],
            sorted((i, e.seq) for i, (_, e) in by_id.items()),
        )
        identities = self._core.trusted_identities(conn)
        for attestation in attestations:
            kind, event = by_id[attestation.id]
            check_attestation(attestation, kind, event, identities.get(attestation.signer))
        return len(attestations)


def recorded(attestation: Attestation) -> dict[str, Any]:
    """What the audit event of the evidence records of its attestation."""
    return {
        "id": attestation.id,
        "envelope_sha256": attestation.envelope_sha256,
        "created_at": attestation.model_dump(mode="json")["created_at"],
    }


def check_attestation(
    attestation: Attestation, kind: str, event: AuditEvent, signer: Identity | None
) -> dict[str, Any]:
    """The row against the event that recorded it and against its own signed envelope;
    returns the statement the envelope signs."""
    logged = event.payload[RECORDED_BY[kind][1]]
    subject = {
        "provenance": event.subject.removeprefix("adapter:"),
        "derivation": event.subject,  # adapter:NAME@vN or base:NAME@vN
    }.get(kind) or event.payload.get("run_id")
    source = f"audit event #{event.seq}"
    stored = {
        "id": attestation.id,
        "kind": attestation.kind,
        "subject": attestation.subject,
        "envelope_sha256": attestation.envelope_sha256,
        "signer": attestation.signer,
        "artifact_digest": attestation.artifact_digest,
    }
    audited = {
        "id": logged.get("id"),
        "kind": kind,
        "subject": subject,
        "envelope_sha256": logged.get("envelope_sha256"),
        "signer": event.actor,
        "artifact_digest": event.payload.get("digest", event.payload.get("artifact_digest")),
    }
    if "created_at" in logged:  # (events written before it was recorded lack it)
        stored["created_at"] = attestation.model_dump(mode="json")["created_at"]
        audited["created_at"] = logged["created_at"]
    check_row("attestations", attestation.id, stored, audited, source)
    check_row(
        "attestations",
        attestation.id,
        {"envelope_sha256": envelope_sha256(attestation.envelope)},
        {"envelope_sha256": attestation.envelope_sha256},
        "its envelope",
    )
    pem = held_key(
        f"attestations row {attestation.id}",
        attestation.signer,
        signer,
        attestation.key_fingerprint,
    )
    try:
        statement = open_envelope(attestation.envelope, {attestation.key_fingerprint: pem})
    except VerificationError as error:
        raise VerificationError(
            f"attestations row {attestation.id}: its envelope {error}; {RESTORE}"
        ) from None
    # A provenance statement's subjects are the version's files (whose digest the event
    # records with them); a test result's is the evaluated artifact.
    subjects = subject_digests(statement)
    signed: dict[str, Any] = {
        "predicate_type": statement.get("predicateType"),
        "subjects": subjects if kind == "provenance" else list(subjects.values()),
    }
    expected = {
        "predicate_type": attestation.predicate_type,
        "subjects": (
            event.payload.get("files") if kind == "provenance" else [attestation.artifact_digest]
        ),
    }
    check_row("attestations", attestation.id, expected, signed, "its signed statement")
    return statement


def _attestation(row: tuple[Any, ...]) -> Attestation:
    return parsed("attestations", row[0], lambda: _build(row))


def _build(row: tuple[Any, ...]) -> Attestation:
    return Attestation(
        id=row[0],
        kind=row[1],
        subject=row[2],
        artifact_digest=row[3],
        predicate_type=row[4],
        envelope=json.loads(row[5]),
        envelope_sha256=row[6],
        signer=row[7],
        key_fingerprint=row[8],
        created_at=row[9],
    )


__all__ = [  # the statements and envelopes are re-exported: the first API had them here
    "BUILD_TYPE",
    "PAYLOAD_TYPE",
    "RECORDED_BY",
    "SLSA_PROVENANCE",
    "TEST_RESULT",
    "Attestations",
    "check_attestation",
    "envelope_sha256",
    "new_statement",
    "open_envelope",
    "provenance_statement",
    "recorded",
    "sign_statement",
    "subject_digests",
    "test_result_statement",
    "validate_statement",
]
