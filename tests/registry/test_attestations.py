"""Signed in-toto attestations made as evidence is recorded: SLSA provenance by the
trainer, test results by the evaluator -- checked against the official protobuf
definitions and verified with the public keys alone."""

from __future__ import annotations

import base64
import copy
import json

import google.protobuf.json_format as pb_json
import pytest
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.predicates.test_result.v0 import test_result_pb2
from loraledger.harness.evaluate import EvalOptions, evaluate
from loraledger.registry import Registry
from loraledger.registry.attestations import (
    BUILD_TYPE,
    PAYLOAD_TYPE,
    SLSA_PROVENANCE,
    TEST_RESULT,
    open_envelope,
    subject_digests,
)
from loraledger.registry.keys import verify_signature
from securesystemslib.dsse import Envelope

from loraledger.errors import VerificationError
from tests.conftest import ENGINEER, REVIEWER
from tests.harness.conftest import PLAIN, WILD, eval_registry  # noqa: F401  (fixture)


def _trusted(registry: Registry) -> dict[str, str]:
    return {i.key_fingerprint: i.public_key_pem for i in registry.identities.list()}


def test_a_trained_version_carries_signed_slsa_provenance(eval_registry: Registry) -> None:
    version = eval_registry.adapters.get(PLAIN[0])
    run = eval_registry.adapters.training_run(PLAIN[0])
    assert run is not None
    (attestation,) = eval_registry.attestations.list(subject=PLAIN[0], kind="provenance")
    assert (attestation.signer, attestation.artifact_digest) == (ENGINEER, version.digest)
    assert attestation.envelope["payloadType"] == PAYLOAD_TYPE
    statement = open_envelope(attestation.envelope, _trusted(eval_registry))
    assert statement == eval_registry.attestations.verify(attestation)
    assert statement["predicateType"] == SLSA_PROVENANCE
    # subjects: exactly the signed files of the version
    assert subject_digests(statement) == {f.path: f.sha256 for f in version.files}
    # the predicate parses strictly as SLSA Provenance v1
    pb_json.ParseDict(statement["predicate"], provenance_pb2.Provenance())
    definition = statement["predicate"]["buildDefinition"]
    assert definition["buildType"] == BUILD_TYPE
    assert definition["externalParameters"]["seed"] == run.seed == 1  # an integer, not 1.0
    deps = {d["name"]: d for d in definition["resolvedDependencies"]}
    assert deps[run.base_ref]["digest"] == {"sha256": run.base_digest}
    assert deps["faq@v1"]["annotations"]["merkle_root_rfc9162"] == run.datasets[0].merkle_root
    assert deps["faq@v1"]["digest"] == {"sha256": run.datasets[0].file_sha256}
    if run.code.get("commit"):
        assert deps["code"]["digest"] == {"gitCommit": run.code["commit"]}
    assert statement["predicate"]["runDetails"]["metadata"]["invocationId"] == run.id
    # the audit event of the registration names the envelope
    (event,) = eval_registry.audit_events(action="adapter.register", subject=f"adapter:{PLAIN[0]}")
    assert event.payload["provenance_attestation"]["envelope_sha256"] == (
        attestation.envelope_sha256
    )
    # DSSE: the signature is over PAE(payloadType, payload), checkable with plain crypto
    pae = Envelope.from_dict(copy.deepcopy(attestation.envelope)).pae()
    (signature,) = attestation.envelope["signatures"]
    assert signature["keyid"] == attestation.key_fingerprint
    identity = eval_registry.identities.get(ENGINEER)
    assert verify_signature(identity.public_key_pem, signature["sig"], pae)


def test_versions_registered_from_elsewhere_have_no_provenance(eval_registry: Registry) -> None:
    assert eval_registry.attestations.list(subject=WILD[0]) == []


def test_a_changed_payload_or_an_unknown_key_does_not_verify(eval_registry: Registry) -> None:
    (attestation,) = eval_registry.attestations.list(subject=PLAIN[1], kind="provenance")
    statement = json.loads(base64.b64decode(attestation.envelope["payload"]))
    statement["predicate"]["buildDefinition"]["externalParameters"]["seed"] = 7
    forged = {
        **attestation.envelope,
        "payload": base64.b64encode(json.dumps(statement).encode()).decode(),
    }
    with pytest.raises(VerificationError, match="DSSE signature does not verify"):
        open_envelope(forged, _trusted(eval_registry))
    others = {
        i.key_fingerprint: i.public_key_pem
        for i in eval_registry.identities.list()
        if i.name == REVIEWER
    }
    with pytest.raises(VerificationError, match="not among the trusted public keys"):
        open_envelope(attestation.envelope, others)


def test_every_complete_evaluation_run_is_a_signed_test_result(eval_registry: Registry) -> None:
    (run,) = evaluate(
        eval_registry, [PLAIN[0]], "northwind-policy", actor=ENGINEER, options=EvalOptions(limit=2)
    )
    (attestation,) = eval_registry.attestations.list(subject=run.id)
    statement = eval_registry.attestations.verify(attestation)
    assert (attestation.kind, statement["predicateType"]) == ("test-result", TEST_RESULT)
    pb_json.ParseDict(statement["predicate"], test_result_pb2.TestResult())
    assert subject_digests(statement) == {PLAIN[0]: run.subject.artifact_digest}
    suite, results = statement["predicate"]["configuration"]
    assert suite["digest"] == {"sha256": run.suite_digest}
    assert results["digest"] == {"sha256": run.results_sha256}
    metrics = results["annotations"]["metrics"]
    assert metrics == {f"{m.task}/{m.metric},{m.filter}": m.value for m in run.metrics}
    predicate = statement["predicate"]
    failed = [s for s in run.samples if s.passed is False]
    assert len(predicate["failedTests"]) == len(failed)
    assert predicate["result"] == ("WARNED" if failed else "PASSED")
    assert len(predicate["passedTests"]) == sum(s.passed is True for s in run.samples)
    assert attestation.signer == ENGINEER
