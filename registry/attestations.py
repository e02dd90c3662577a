"""Signed attestations in the in-toto format: what anyone can verify without the registry.

Two kinds are made, each the moment its evidence is recorded and signed with the key of
the identity that produced it, as a DSSE envelope (``application/vnd.in-toto+json``):

- **provenance** -- an in-toto Statement v1 with an SLSA Provenance v1 predicate, signed by
  the trainer when a trained adapter version is registered. Subjects: the adapter's files
  with their sha256. Resolved dependencies: the base model (its digest and quantization),
  each dataset file (sha256, with its RFC 9162 Merkle root and record count) and the code
  commit (``gitCommit``, with the dirty flag);
- **test-result** -- an in-toto Test Result predicate
  (``https://in-toto.io/attestation/test-result/v0.1``) for every complete evaluation run,
  signed by the identity that ran it, over the evaluated artifact's digest, with the
  suite's digest and settings and the run's metrics (bound by the results' sha256 that
  the ``eval.run`` audit event also carries).

Statements are built as plain JSON (integers stay integers) and validated against the
official protobuf definitions of the ``in-toto-attestation`` package before signing.
DSSE signing and verification is ``securesystemslib``'s; the key id of a signature is the
signer's key fingerprint, so an envelope names the key that verifies it.
"""

from __future__ import annotations

import binascii
import builtins
import copy
import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

import google.protobuf.json_format as pb_json
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.predicates.test_result.v0 import test_result_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import FormatError
from securesystemslib.exceptions import VerificationError as DsseVerificationError
from securesystemslib.signer import CryptoSigner, Key, SSlibKey

import loraledger
from loraledger.errors import VerificationError

from .audit import canonical_json
from .core import Core
from .db import Connection
from .keys import SigningKey, load_public_key
from .models import Attestation, EvalRun, TrainingRun

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
TEST_RESULT = "https://in-toto.io/attestation/test-result/v0.1"
# The build type documents what externalParameters and internalParameters hold
# (docs/governance.md#attestations).
BUILD_TYPE = "https://loraledger.dev/attestations/qlora-training/v1"
BUILDER_ID = "https://loraledger.dev/trainer"

_PREDICATES = {SLSA_PROVENANCE: provenance_pb2.Provenance, TEST_RESULT: test_result_pb2.TestResult}


# --- building ------------------------------------------------------------------------


def provenance_statement(
    files: dict[str, str], run: TrainingRun, registry_id: str
) -> dict[str, Any]:
    """SLSA Provenance v1 for a trained adapter version (``files``: path -> sha256)."""
    code = run.code
    dependencies: list[dict[str, Any]] = [
        {
            "name": run.base_ref,
            "uri": f"loraledger://{registry_id}/base/{run.base_ref}",
            "digest": {"sha256": run.base_digest},
            "annotations": {
                "role": "base model",
                "quantization": run.quantization,
                "compute_dtype": run.compute_dtype,
            },
        }
    ]
    for use in run.datasets:
        dependencies.append(
            {
                "name": use.ref,
                "uri": f"loraledger://{registry_id}/dataset/{use.ref}",
                "digest": {"sha256": use.file_sha256},
                "annotations": {
                    "role": "training data",
                    "merkle_root_rfc9162": use.merkle_root,
                    "records": use.records,
                },
            }
        )
    if code.get("commit"):
        dependencies.append(
            {
                "name": "code",
                "uri": f"git+{code.get('remote') or code.get('repository')}",
                "digest": {"gitCommit": code["commit"]},
                "annotations": {"role": "training code", "dirty": bool(code.get("dirty"))},
            }
        )
    predicate = {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "config": run.config,
                "config_sha256": run.config_sha256,
                "seed": run.seed,
            },
            "internalParameters": {
                "device": run.device,
                "compute_dtype_reason": run.compute_dtype_reason,
                "libraries": run.libraries,
                "hardware": run.hardware,
            },
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": {"id": BUILDER_ID, "version": {"loraledger": loraledger.__version__}},
            "metadata": {
                "invocationId": run.id,
                "startedOn": _timestamp(run.started_at),
                "finishedOn": _timestamp(run.finished_at),
            },
            "byproducts": [
                {
                    "name": "training-summary",
                    "annotations": {
                        "steps": run.steps,
                        "tokens_seen": run.tokens_seen,
                        "final_loss": run.loss_curve[-1].loss if run.loss_curve else None,
                        "wall_seconds": run.wall_seconds,
                    },
                }
            ],
        },
    }
    return new_statement(
        [{"name": path, "digest": {"sha256": sha}} for path, sha in sorted(files.items())],
        SLSA_PROVENANCE,
        predicate,
    )


def test_result_statement(run: EvalRun, results_sha256: str, registry_id: str) -> dict[str, Any]:
    """A Test Result attestation for a complete evaluation run.

    Each scored sample is a test (``task/sample_key``). The run completed, so the result
    is PASSED when no sample failed and WARNED when some did (a benchmark always has
    wrong answers); whether the metrics are good enough for an environment is the gate
    check's decision, not this report's.
    """
    passed = [f"{s.task}/{s.sample_key}" for s in run.samples if s.passed is True]
    failed = [f"{s.task}/{s.sample_key}" for s in run.samples if s.passed is False]
    subject = run.subject
    predicate = {
        "result": "WARNED" if failed else "PASSED",
        "configuration": [
            {
                "name": f"suite:{run.suite_name}",
                "digest": {"sha256": run.suite_digest},
                "annotations": {
                    "kind": run.suite_kind,
                    "settings": run.settings,
                    "seed": run.seed,
                    "lm_eval_version": run.lm_eval_version,
                    "task_config_sha256": run.task_config_hashes,
                },
            },
            {
                "name": "results",
                "uri": f"loraledger://{registry_id}/eval/{run.id}",
                "digest": {"sha256": results_sha256},
                "annotations": {
                    "metrics": {f"{m.task}/{m.metric},{m.filter}": m.value for m in run.metrics},
                    "samples": run.sample_count,
                    "started_at": _timestamp(run.started_at),
                    "finished_at": _timestamp(run.finished_at),
                },
            },
        ],
        "url": f"loraledger://{registry_id}/eval/{run.id}",
        "passedTests": passed,
        "warnedTests": [],
        "failedTests": failed,
    }
    return new_statement(
        [
            {
                "name": subject.ref,
                "digest": {"sha256": subject.artifact_digest},
                "annotations": {
                    "kind": subject.kind,
                    "base": f"{subject.base_name}@v{subject.base_version}",
                    "base_digest": subject.base_digest,
                },
            }
        ],
        TEST_RESULT,
        predicate,
    )


def new_statement(
    subjects: list[dict[str, Any]], predicate_type: str, predicate: dict[str, Any]
) -> dict[str, Any]:
    """An in-toto Statement v1, validated (see :func:`validate_statement`)."""
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": predicate_type,
        "predicate": predicate,
    }
    validate_statement(statement)
    return statement


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def validate_statement(statement: dict[str, Any]) -> None:
    """Check a statement against the in-toto Statement v1 definition and, for the two
    predicate types made here, the predicate's own definition (unknown fields refused)."""
    try:
        proto = pb_json.ParseDict(statement, statement_pb2.Statement())
        Statement.copy_from_pb(proto).validate()
        predicate_type = statement["predicateType"]
        if predicate_type in _PREDICATES:
            pb_json.ParseDict(statement["predicate"], _PREDICATES[predicate_type]())
        if predicate_type == SLSA_PROVENANCE:
            _check_slsa(statement["predicate"])
    except (pb_json.ParseError, ValueError, KeyError) as error:
        raise VerificationError(f"not a valid in-toto statement: {error}") from None


def _check_slsa(predicate: dict[str, Any]) -> None:
    """SLSA Provenance v1's required fields, and every dependency a valid descriptor."""
    definition = predicate["buildDefinition"]
    if not definition.get("buildType") or "externalParameters" not in definition:
        raise ValueError("SLSA v1 needs buildDefinition.buildType and externalParameters")
    if not predicate["runDetails"]["builder"].get("id"):
        raise ValueError("SLSA v1 needs runDetails.builder.id")
    for dependency in definition.get("resolvedDependencies", []):
        ResourceDescriptor.copy_from_pb(
            pb_json.ParseDict(dependency, ResourceDescriptor().pb)
        ).validate()


# --- DSSE ----------------------------------------------------------------------------


def _sslib_key(public_key_pem: str, key_fingerprint: str) -> SSlibKey:
    return SSlibKey.from_crypto(load_public_key(public_key_pem), keyid=key_fingerprint)


def sign_statement(statement: dict[str, Any], key: SigningKey) -> dict[str, Any]:
    """A DSSE envelope over the statement, signed with ``key`` (key id: its fingerprint)."""
    envelope = Envelope(
        payload=canonical_json(statement).encode("utf-8"),
        payload_type=PAYLOAD_TYPE,
        signatures={},
    )
    signer = CryptoSigner(key.private_key, _sslib_key(key.public_key_pem, key.fingerprint))
    envelope.sign(signer)
    return dict(envelope.to_dict())


def open_envelope(envelope: dict[str, Any], public_keys: dict[str, str]) -> dict[str, Any]:
    """The statement inside ``envelope``, after verifying its signature.

    ``public_keys`` maps key fingerprints to PEM public keys (the keys trusted); the
    envelope's key id picks one. Raises :class:`VerificationError` naming what failed.
    """
    try:
        # from_dict rewrites the signature dicts it is given: hand it a copy
        parsed = Envelope.from_dict(copy.deepcopy(envelope))
    except (KeyError, TypeError, ValueError, FormatError, binascii.Error) as error:
        raise VerificationError(f"not a DSSE envelope ({error})") from None
    if parsed.payload_type != PAYLOAD_TYPE:
        raise VerificationError(f"payload type {parsed.payload_type!r} is not {PAYLOAD_TYPE}")
    keys: list[Key] = [
        _sslib_key(public_keys[keyid], keyid) for keyid in parsed.signatures if keyid in public_keys
    ]
    if not keys:
        raise VerificationError(
            "signed by a key that is not among the trusted public keys "
            f"({', '.join(k[:16] for k in parsed.signatures) or 'no signature'})"
        )
    try:
        parsed.verify(keys, 1)
    except DsseVerificationError as error:
        raise VerificationError(f"the DSSE signature does not verify ({error})") from None
    try:
        statement: dict[str, Any] = json.loads(parsed.payload)
    except ValueError:
        raise VerificationError("the signed payload is not JSON") from None
    validate_statement(statement)
    return statement


def envelope_sha256(envelope: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(envelope).encode("utf-8")).hexdigest()


# --- storage -------------------------------------------------------------------------


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


def subject_digests(statement: dict[str, Any]) -> dict[str, str]:
    """``{subject name: sha256}`` of a statement's subjects."""
    return {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}


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


__all__ = [
    "BUILD_TYPE",
    "PAYLOAD_TYPE",
    "SLSA_PROVENANCE",
    "TEST_RESULT",
    "Attestations",
    "new_statement",
    "open_envelope",
    "provenance_statement",
    "sign_statement",
    "subject_digests",
    "test_result_statement",
    "validate_statement",
]
