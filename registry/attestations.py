"""Signed attestations, stored: what anyone can verify without the registry.

Each is made the moment its evidence is recorded -- provenance when a trained adapter
version is registered, a test result for every complete evaluation run -- as an in-toto
statement (:mod:`.statements`) in a DSSE envelope (:mod:`.dsse`) signed with the key of
the identity that produced it, and stored in the same transaction as the evidence.
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
from .db import Connection
from .dsse import PAYLOAD_TYPE, envelope_sha256, open_envelope, sign_statement
from .keys import SigningKey
from .models import Attestation
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

    def verify(self, attestation: Attestation) -> dict[str, Any]:
        """The attested statement, after checking the envelope with the signer's
        registered key (revoked keys still verify what they signed before)."""
        identity = self._core.identity(attestation.signer)
        if identity.key_fingerprint != attestation.key_fingerprint:
            raise VerificationError(
                f"attestation {attestation.id[:8]} names a key {attestation.signer!r} "
                "was never registered with"
            )
        return open_envelope(
            attestation.envelope, {identity.key_fingerprint: identity.public_key_pem}
        )


def _attestation(row: tuple[Any, ...]) -> Attestation:
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
    "SLSA_PROVENANCE",
    "TEST_RESULT",
    "Attestations",
    "envelope_sha256",
    "new_statement",
    "open_envelope",
    "provenance_statement",
    "sign_statement",
    "subject_digests",
    "test_result_statement",
    "validate_statement",
]
