"""The real embedded base through the harness: NF4 and float32, and plain lm_eval agrees.

Slow (about two minutes on 2 cores); CI runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from loraledger.harness.evaluate import EvalOptions, evaluate
from loraledger.harness.suites import find_suite
from loraledger.registry import Registry
from loraledger.trainer.base_models import EMBEDDED_NAME, add_base

from tests.conftest import ENGINEER

pytestmark = pytest.mark.slow


def test_real_base_on_the_policy_suite_in_nf4(registry: Registry) -> None:
    add_base(registry, name=None, directory=None, actor=ENGINEER)
    (run,) = evaluate(
        registry,
        [f"base:{EMBEDDED_NAME}"],
        "northwind-policy",
        actor=ENGINEER,
        options=EvalOptions(limit=2, quantization="nf4"),
    )
    assert run.status == "complete" and run.quantization == {"method": "nf4", "double_quant": True}
    assert run.sample_count == 2 * len(find_suite("northwind-policy").task_names)
    for sample in run.samples:
        assert any(c.isalpha() for c in sample.output), sample  # real words, not padding
        assert sample.passed is not None and sample.reason


def test_real_base_equals_plain_lm_eval(registry: Registry, tmp_path: Path) -> None:
    base = add_base(registry, name=None, directory=None, actor=ENGINEER)
    suite = find_suite("northwind-domain")
    (ours,) = evaluate(
        registry, [f"base:{EMBEDDED_NAME}"], suite, actor=ENGINEER, options=EvalOptions(limit=3)
    )
    out = tmp_path / "out"
    done = subprocess.run(
        [
            sys.executable, "-m", "lm_eval", "--model", "hf",
            "--model_args", f"pretrained={base.location},dtype=float32",
            "--include_path", ".", "--tasks", suite.name, "--apply_chat_template",
            "--system_instruction", str(suite.system_instruction), "--limit", "3",
            "--batch_size", "8", "--device", "cpu", "--seed", "1234",
            "--log_samples", "--output_path", str(out),
        ],
        cwd=suite.directory,
        env={**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (results,) = out.rglob("results_*.json")
    theirs = json.loads(results.read_text())["results"]
    for metric in ours.metrics:
        assert theirs[metric.task][f"{metric.metric},{metric.filter}"] == pytest.approx(
            metric.value, abs=1e-12
        )
    (answers,) = out.rglob("samples_northwind_domain_answer_*.jsonl")
    their_answers = [
        json.loads(line)["filtered_resps"][0] for line in answers.read_text().splitlines()
    ]
    ours_answers = [s.output for s in ours.samples if s.task == "northwind_domain_answer"]
    assert ours_answers == their_answers and all(ours_answers)
