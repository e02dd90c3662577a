"""Stored and exported records stay readable: a sample of each record as the first
version wrote it (tests/samples/records/, taken from a real evidence pack) loads into
today's typed models and dumps back unchanged, and a record of a newer format is refused
rather than misread."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from loraledger.registry.models import (
    Approval,
    CodeProvenance,
    Decision,
    Deployment,
    DeploymentAction,
    EvalRun,
    GateCheck,
    Hardware,
    Quantization,
    SuiteKind,
    TrainingRun,
)
from pydantic import BaseModel, ValidationError

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "records"
RECORDS: dict[str, type[BaseModel]] = {
    "training-run": TrainingRun,
    "eval-run": EvalRun,
    "gate-check": GateCheck,
    "approval": Approval,
    "deployment": Deployment,
}


def sample(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((SAMPLES / f"{name}.json").read_text())
    return loaded


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_a_first_version_record_loads_and_dumps_back_unchanged(name: str) -> None:
    written = sample(name)
    record = RECORDS[name].model_validate(written)
    assert record.format_version == 1  # type: ignore[attr-defined]
    dumped = record.model_dump(mode="json")
    assert dumped == {"format_version": 1, **written}  # nothing lost or changed


def test_the_training_runs_parts_are_typed_and_dump_as_recorded() -> None:
    run = TrainingRun.model_validate(sample("training-run"))
    assert isinstance(run.code, CodeProvenance) and isinstance(run.hardware, Hardware)
    assert isinstance(run.quantization, Quantization)
    assert run.quantization.method == "none" and run.quantization.double_quant is False
    assert run.code.commit and isinstance(run.code.dirty, bool)
    assert run.hardware.cpu_count and run.hardware.torch_threads
    # written without the keys it did not have; read as the mapping it was
    assert run.quantization.model_dump() == {"method": "none"} == run.quantization
    assert run.code["commit"] == run.code.commit and run.code.get("nope") is None
    with pytest.raises(KeyError):
        run.quantization["double_quant"]


def test_decisions_actions_and_suite_kinds_are_enums() -> None:
    assert Approval.model_validate(sample("approval")).decision is Decision.APPROVE
    assert Deployment.model_validate(sample("deployment")).action is DeploymentAction.ROLLBACK
    assert EvalRun.model_validate(sample("eval-run")).suite_kind is SuiteKind.BENCHMARK
    with pytest.raises(ValidationError, match="approve"):
        Approval.model_validate({**sample("approval"), "decision": "maybe"})


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_a_record_of_a_newer_format_is_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="is newer than this LoRA Ledger reads.*upgrade"):
        newer = RECORDS[name].FORMAT_VERSION + 1  # type: ignore[attr-defined]
        RECORDS[name].model_validate({**sample(name), "format_version": newer})
