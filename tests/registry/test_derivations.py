"""Derivations: a file made from a registered artifact, recorded as a signed SLSA
statement and a ``derive`` event, read back only when both still agree -- an insider who
edits, inserts or deletes the row is found by the read and by ``audit verify``."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import google.protobuf.json_format as pb_json
import pytest
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from loraledger.registry import Registry
from loraledger.registry.attestations import SLSA_PROVENANCE
from loraledger.registry.audit import utcnow

from loraledger.errors import PermissionDenied, VerificationError
from tests.conftest import AUDITOR, ENGINEER, REVIEWER
from tests.harness.conftest import PLAIN, eval_registry  # noqa: F401  (fixture)
from tests.registry.helpers import sql

TOOL = [{"name": "converter.py", "digest": {"sha256": "ab" * 32}}]
BUILD = "https://example.test/derivation/v1"


def derive(registry: Registry, ref: str, content: bytes, actor: str = ENGINEER) -> object:
    version = registry.adapters.get(ref)
    return registry.derivations.record(
        f"adapter:{ref}",
        version.digest,
        ("adapter.gguf", hashlib.sha256(content).hexdigest(), len(content)),
        tools=TOOL,
        build_type=BUILD,
        parameters={"outtype": "f32"},
        started=utcnow() - timedelta(seconds=1),
        actor=actor,
    )


def test_a_derivation_is_signed_and_read_back_checked(eval_registry: Registry) -> None:
    ref = PLAIN[0]
    made = derive(eval_registry, ref, b"gguf bytes")
    second = derive(eval_registry, ref, b"other bytes", actor=REVIEWER)
    found = eval_registry.derivations.of(f"adapter:{ref}")
    assert found == [made, second]
    first = found[0]
    assert first.source_digest == eval_registry.adapters.get(ref).digest
    assert first.digest == hashlib.sha256(b"gguf bytes").hexdigest() and first.size_bytes == 10
    assert (first.signer, first.build_type, first.tools) == (ENGINEER, BUILD, tuple(TOOL))
    assert first.parameters == {"outtype": "f32"}
    # an auditor holding the served file's sha256 finds what it was made from
    assert eval_registry.derivations.find(first.digest) == [first]
    assert eval_registry.derivations.of(f"adapter:{PLAIN[1]}") == []
    # the statement is SLSA Provenance v1 and names the source first
    (attestation, _) = eval_registry.attestations.list(subject=f"adapter:{ref}")
    statement = eval_registry.attestations.verify(attestation)
    assert statement["predicateType"] == SLSA_PROVENANCE
    pb_json.ParseDict(statement["predicate"], provenance_pb2.Provenance())
    source = statement["predicate"]["buildDefinition"]["resolvedDependencies"][0]
    assert source["name"] == f"adapter:{ref}"
    (event,) = [
        e for e in eval_registry.audit_events() if e.action == "derive" and e.actor == ENGINEER
    ]
    assert event.subject == f"adapter:{ref}"
    assert event.payload["artifact_digest"] == first.digest
    assert eval_registry.verify_records()["attestations"] >= 2
    eval_registry.verify_audit()


def test_only_the_roles_that_evaluate_may_record_one(eval_registry: Registry) -> None:
    with pytest.raises(PermissionDenied, match="has role auditor"):
        derive(eval_registry, PLAIN[0], b"x", actor=AUDITOR)
    with pytest.raises(ValueError, match="adapter:REF or base:REF"):
        eval_registry.derivations.record(
            PLAIN[0], "0" * 64, ("f", "0" * 64, 1), tools=[], build_type=BUILD,
            parameters={}, started=utcnow(), actor=ENGINEER,
        )  # fmt: skip


@pytest.mark.parametrize(
    "edit",
    [
        "UPDATE attestations SET artifact_digest = ? WHERE kind = 'derivation'",
        "UPDATE attestations SET subject = 'adapter:{other}' WHERE kind = 'derivation'",
        "DELETE FROM attestations WHERE kind = 'derivation'",
        "envelope",
        "insert",
    ],
)
def test_an_edited_inserted_or_deleted_derivation_is_refused(
    eval_registry: Registry, edit: str
) -> None:
    ref = PLAIN[1]
    made = derive(eval_registry, ref, b"approved conversion")
    forged = hashlib.sha256(b"an insider's file").hexdigest()
    if edit == "envelope":
        (row,) = sql(eval_registry, "SELECT envelope FROM attestations WHERE id = ?", [made.id])
        envelope = json.loads(row[0])
        envelope["payload"] = envelope["payload"][:-8] + "AAAAAAA="
        sql(
            eval_registry,
            "UPDATE attestations SET envelope = ? WHERE id = ?",
            [json.dumps(envelope), made.id],
        )
    elif edit == "insert":
        sql(
            eval_registry,
            "INSERT INTO attestations SELECT 'forged-id', kind, subject, ?, predicate_type, "
            "envelope, envelope_sha256, signer, key_fingerprint, created_at FROM attestations "
            "WHERE id = ?",
            [forged, made.id],
        )
    else:
        statement = edit.replace("{other}", PLAIN[0])
        sql(eval_registry, statement, [forged] if "?" in statement else None)
    with pytest.raises(VerificationError):
        eval_registry.derivations.of(f"adapter:{ref}")
    with pytest.raises(VerificationError):
        eval_registry.verify_records()
