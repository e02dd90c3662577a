"""In-toto statements: what a LoRA Ledger attestation says, built and checked.

- **provenance** -- an in-toto Statement v1 with an SLSA Provenance v1 predicate over a
  trained adapter version. Subjects: the adapter's files with their sha256. Resolved
  dependencies: the base model (its digest and quantization), each dataset file (sha256,
  with its RFC 9162 Merkle root and record count) and the code commit (``gitCommit``,
  with the dirty flag);
- **test-result** -- an in-toto Test Result predicate
  (``https://in-toto.io/attestation/test-result/v0.1``) for a complete evaluation run,
  over the evaluated artifact's digest, with the suite's digest and settings and the
  run's metrics (bound by the results' sha256 that the ``eval.run`` audit event carries);
- **derivation** -- SLSA Provenance v1 over one file made from a registered artifact by a
  digest-pinned tool (an adapter converted to GGUF for llama.cpp): subject the file and its
  sha256, resolved dependencies the source artifact (first) and the tool's own files.

Statements are built as plain JSON (integers stay integers) and validated against the
official protobuf definitions of the ``in-toto-attestation`` package.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import google.protobuf.json_format as pb_json
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.predicates.test_result.v0 import test_result_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement

import loraledger
from loraledger.errors import VerificationError

from .models import EvalRun, TrainingRun

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"


SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"


TEST_RESULT = "https://in-toto.io/attestation/test-result/v0.1"


BUILD_TYPE = "https://loraledger.dev/attestations/qlora-training/v1"


BUILDER_ID = "https://loraledger.dev/trainer"


DERIVER_ID = "https://loraledger.dev/derive"


_PREDICATES = {SLSA_PROVENANCE: provenance_pb2.Provenance, TEST_RESULT: test_result_pb2.TestResult}


def provenance_statement(
    files: dict[str, str], run: TrainingRun, registry_id: str
) -> dict[str, Any]:
    """SLSA Provenance v1 for a trained adapter version (``files``: path -> sha256)."""
    code = run.code.model_dump(mode="json")
    dependencies: list[dict[str, Any]] = [
        {
            "name": run.base_ref,
            "uri": f"loraledger://{registry_id}/base/{run.base_ref}",
            "digest": {"sha256": run.base_digest},
            "annotations": {
                "role": "base model",
                "quantization": run.quantization.model_dump(mode="json"),
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
                "hardware": run.hardware.model_dump(mode="json"),
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


def derivation_statement(
    file: tuple[str, str],
    source: dict[str, Any],
    tools: list[dict[str, Any]],
    build_type: str,
    parameters: dict[str, Any],
    started: datetime,
    finished: datetime,
    invocation: str,
) -> dict[str, Any]:
    """SLSA Provenance v1 for ``file`` (name, sha256) made from ``source`` (a resource
    descriptor: the registered artifact) by ``tools`` (descriptors of what converted it)."""
    predicate = {
        "buildDefinition": {
            "buildType": build_type,
            "externalParameters": parameters,
            "resolvedDependencies": [source, *tools],
        },
        "runDetails": {
            "builder": {"id": DERIVER_ID, "version": {"loraledger": loraledger.__version__}},
            "metadata": {
                "invocationId": invocation,
                "startedOn": _timestamp(started),
                "finishedOn": _timestamp(finished),
            },
        },
    }
    name, sha256 = file
    return new_statement([{"name": name, "digest": {"sha256": sha256}}], SLSA_PROVENANCE, predicate)


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


def subject_digests(statement: dict[str, Any]) -> dict[str, str]:
    """``{subject name: sha256}`` of a statement's subjects."""
    return {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}


__all__ = [
    "BUILDER_ID",
    "BUILD_TYPE",
    "DERIVER_ID",
    "SLSA_PROVENANCE",
    "STATEMENT_TYPE",
    "TEST_RESULT",
    "derivation_statement",
    "new_statement",
    "provenance_statement",
    "subject_digests",
    "test_result_statement",
    "validate_statement",
]
