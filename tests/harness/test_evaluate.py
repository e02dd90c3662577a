"""Evaluating real trained adapters on a tiny base: one base load, results bound to the
artifact, equality with plain lm_eval, refusals, and nothing partial marked complete."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from loraledger.harness.evaluate import EvalOptions, evaluate
from loraledger.harness.suites import find_suite, load_suite
from loraledger.registry import Registry

from loraledger.errors import (
    EvaluationFailed,
    InputError,
    NotFound,
    PermissionDenied,
    UsageError,
    VerificationError,
)
from tests.conftest import AUDITOR, ENGINEER, REVIEWER
from tests.harness.conftest import NF4, PLAIN, WILD, base_dir
from tests.registry.helpers import flipped_weights, sql

FEW = EvalOptions(limit=3)


def count_base_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every model load from disk (a spy: the real loader still runs)."""
    from transformers import AutoModelForCausalLM

    loads: list[str] = []
    original = AutoModelForCausalLM.from_pretrained

    def spy(*args: Any, **kwargs: Any) -> Any:
        loads.append(str(args[0]))
        return original(*args, **kwargs)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", spy)
    return loads


def test_several_adapters_and_the_base_on_one_base_load(
    eval_registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads = count_base_loads(monkeypatch)
    runs = evaluate(
        eval_registry, [*PLAIN, "base:tiny"], "northwind-domain", actor=ENGINEER, options=FEW
    )
    assert len(loads) == 1
    assert [r.subject.ref for r in runs] == [*PLAIN, "base:tiny@v1"]
    for run in runs:
        assert run.status == "complete" and run.sample_count == 6
        assert {m.task for m in run.metrics} == {"northwind_domain_mc", "northwind_domain_answer"}
        assert run.quantization == {"method": "none", "double_quant": False}
    # the adapters differ from each other and from the base: each really was switched in
    answers = [[s.reason for s in r.samples if s.task == "northwind_domain_mc"] for r in runs]
    assert answers[0] != answers[1] or answers[0] != answers[2]


def test_shared_generation_batches_give_each_subject_its_own_answers(
    eval_registry: Registry,
) -> None:
    """Evaluated together (one mixed-adapter batch per generation) or each alone, every
    subject gets the same answers and scores."""
    options = EvalOptions(limit=4)
    subjects = [*WILD, "base:tiny"]
    together = evaluate(
        eval_registry, subjects, "northwind-policy", actor=ENGINEER, options=options
    )
    for ref, shared in zip(subjects, together, strict=True):
        (alone,) = evaluate(
            eval_registry, [ref], "northwind-policy", actor=ENGINEER, options=options
        )
        assert [(s.sample_key, s.output, s.metrics) for s in shared.samples] == [
            (s.sample_key, s.output, s.metrics) for s in alone.samples
        ], ref
    outputs = [[s.output for s in run.samples] for run in together]
    assert outputs[0] != outputs[1] != outputs[2] != outputs[0]  # each answers its own way


def test_results_are_bound_to_the_artifact_and_audited(eval_registry: Registry) -> None:
    (run,) = evaluate(eval_registry, [PLAIN[0]], "northwind-policy", actor=ENGINEER, options=FEW)
    version = eval_registry.adapters.get(PLAIN[0])
    assert run.subject.artifact_digest == version.digest
    assert run.subject.base_digest == eval_registry.base_models.get("tiny").digest
    assert run.suite_digest == find_suite("northwind-policy").digest
    assert run.lm_eval_version and run.libraries["lm_eval"] == run.lm_eval_version
    assert set(run.task_config_hashes) == set(find_suite("northwind-policy").task_names)
    stored = eval_registry.evaluations.get(run.id)
    assert stored == run
    sample = next(s for s in stored.samples if s.sample_key == "refusal-fraud-and-scams-01")
    assert sample.task == "policy_refusal" and "Write a phishing email" in sample.input
    assert sample.passed is not None and sample.reason
    assert sample.category == "fraud and scams"  # the record's category, kept with the sample
    event = eval_registry.audit_events(action="eval.run", newest_first=True, limit=1)[0]
    assert event.actor == ENGINEER and event.subject == f"adapter:{PLAIN[0]}"
    assert event.payload["artifact_digest"] == version.digest
    assert event.payload["results_sha256"] == run.results_sha256
    assert eval_registry.verify_audit().events > 0


@pytest.mark.parametrize("dtype", [None, "bfloat16"])
def test_results_equal_plain_lm_eval(
    eval_registry: Registry, tmp_path: Path, dtype: str | None
) -> None:
    """The same adapter and suite through `lm_eval` itself: same metrics, same samples --
    by default (lm-eval's own default dtype, the checkpoint's: float32 here) and in
    bfloat16, whatever dtype the adapter was trained in."""
    suite = find_suite("northwind-domain")
    options = EvalOptions(limit=5, compute_dtype=dtype)
    (ours,) = evaluate(eval_registry, [PLAIN[1]], suite, actor=ENGINEER, options=options)
    assert ours.compute_dtype == (dtype or "float32")
    adapter = tmp_path / "adapter"
    eval_registry.adapters.fetch(PLAIN[1], adapter)
    out = tmp_path / "lm-eval-out"
    command = [
        sys.executable,
        "-m",
        "lm_eval",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={base_dir(eval_registry)},peft={adapter}"
        + (f",dtype={dtype}" if dtype else ""),
        "--include_path",
        ".",
        "--tasks",
        suite.name,
        "--apply_chat_template",
        "--system_instruction",
        str(suite.system_instruction),
        "--limit",
        "5",
        "--batch_size",
        "8",
        "--device",
        "cpu",
        "--seed",
        "1234",
        "--log_samples",
        "--output_path",
        str(out),
    ]
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        command, cwd=suite.directory, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (results_file,) = out.rglob("results_*.json")
    theirs = json.loads(results_file.read_text())["results"]
    for metric in ours.metrics:
        key = f"{metric.metric},{metric.filter}"
        assert theirs[metric.task][key] == pytest.approx(metric.value, abs=1e-12), key
    for task in suite.task_names:
        (samples_file,) = out.rglob(f"samples_{task}_*.jsonl")
        their_samples = {
            s["doc_id"]: s for s in map(json.loads, samples_file.read_text().splitlines())
        }
        mine = [s for s in ours.samples if s.task == task]
        assert len(mine) == len(their_samples) == 5
        for sample in mine:
            other = their_samples[sample.doc_id]
            assert sample.prompt_hash == other["prompt_hash"]
            for name, value in sample.metrics.items():
                assert other[name] == pytest.approx(value, abs=1e-12)
            if task == "northwind_domain_answer":
                assert sample.output == other["filtered_resps"][0]


def test_only_engineers_reviewers_and_admins_evaluate(eval_registry: Registry) -> None:
    with pytest.raises(PermissionDenied, match="auditor"):
        evaluate(eval_registry, [PLAIN[0]], "sanity", actor=AUDITOR, options=FEW)
    (run,) = evaluate(eval_registry, [PLAIN[0]], "sanity", actor=REVIEWER, options=FEW)
    assert run.created_by == REVIEWER


def test_adapters_of_different_quantization_are_not_mixed(eval_registry: Registry) -> None:
    with pytest.raises(UsageError, match="differently quantized"):
        evaluate(eval_registry, [PLAIN[0], NF4], "sanity", actor=ENGINEER, options=FEW)


def test_nf4_adapter_and_base_share_batches_on_the_nf4_base(eval_registry: Registry) -> None:
    together = evaluate(eval_registry, [NF4, "base:tiny"], "sanity", actor=ENGINEER, options=FEW)
    assert [r.quantization for r in together] == [{"method": "nf4", "double_quant": True}] * 2
    (alone,) = evaluate(eval_registry, [NF4], "northwind-policy", actor=ENGINEER, options=FEW)
    shared = evaluate(
        eval_registry, [NF4, "base:tiny"], "northwind-policy", actor=ENGINEER, options=FEW
    )
    assert [s.output for s in shared[0].samples] == [s.output for s in alone.samples]


def test_a_tampered_adapter_is_refused_and_nothing_is_stored(eval_registry: Registry) -> None:
    before = len(eval_registry.evaluations.list())
    with (
        flipped_weights(eval_registry, PLAIN[0]),
        pytest.raises(VerificationError, match="faq-bot@v1"),
    ):
        evaluate(eval_registry, [PLAIN[0]], "sanity", actor=ENGINEER, options=FEW)
    assert len(eval_registry.evaluations.list()) == before


def test_a_changed_base_is_refused(eval_registry: Registry) -> None:
    config = base_dir(eval_registry) / "config.json"
    original = config.read_text()
    config.write_text(original.replace('"hidden_size": 64', '"hidden_size": 64 '))
    try:
        with pytest.raises(VerificationError, match="tiny@v1.*config.json"):
            evaluate(eval_registry, [PLAIN[0]], "sanity", actor=ENGINEER, options=FEW)
    finally:
        config.write_text(original)


def test_an_adapter_with_another_base_is_refused_naming_both(
    eval_registry: Registry, tmp_path: Path
) -> None:
    from loraledger.trainer.base_models import add_base

    from tests.trainer.conftest import build_tiny_base

    other = build_tiny_base(tmp_path / "tiny2", seed=5)
    add_base(eval_registry, name="tiny2", directory=other, actor=ENGINEER)
    with pytest.raises(UsageError, match=r"faq-bot@v1 on tiny@v1; base:tiny2@v1 on tiny2@v1"):
        evaluate(eval_registry, [PLAIN[0], "base:tiny2"], "sanity", actor=ENGINEER, options=FEW)


def test_an_adapter_naming_an_unknown_base_is_refused(
    eval_registry: Registry, tmp_path: Path
) -> None:
    from loraledger.registry.synthetic import write_lora_adapter

    made = write_lora_adapter(tmp_path / "elsewhere", base_model="some-other-base", seed=3)
    eval_registry.adapters.register(made, "stray", actor=ENGINEER)
    with pytest.raises(NotFound, match="some-other-base"):
        evaluate(eval_registry, ["stray@v1"], "sanity", actor=ENGINEER, options=FEW)


def test_a_failing_scorer_leaves_a_failed_run_and_no_results(
    eval_registry: Registry, suite_copy: Path
) -> None:
    data = suite_copy / "refusal.jsonl"
    first, *rest = data.read_text().splitlines()
    record = json.loads(first)
    record["rule"] = "must_rhyme"
    data.write_text("\n".join([json.dumps(record), *rest]) + "\n")
    with pytest.raises(InputError, match="failed in lm-eval: .*unknown rule 'must_rhyme'"):
        evaluate(eval_registry, [PLAIN[0]], suite_copy, actor=ENGINEER, options=FEW)
    runs = eval_registry.evaluations.list(PLAIN[0], "northwind-policy")
    failed = [r for r in runs if r.suite_digest == load_suite(suite_copy).digest]
    assert [r.status for r in failed] == ["failed"]
    assert failed[0].metrics == () and failed[0].sample_count == 0
    assert sql(
        eval_registry, "SELECT count(*) FROM eval_samples WHERE run_id = ?", [failed[0].id]
    ) == [(0,)]


def test_a_rule_the_suite_registers_scores_its_samples_in_lm_eval(
    eval_registry: Registry, suite_copy: Path
) -> None:
    # The suite's own scoring.py registers a rule; its samples name it; no package edit.
    (suite_copy / "scoring.py").write_text(
        "from loraledger.harness.scoring import Judgement, process_results, scoring_rule\n\n"
        "@scoring_rule('answers_at_all')\n"
        "def answers_at_all(doc, answer):\n"
        "    said = bool(answer.strip())\n"
        "    return Judgement({'pass': float(said)}, said, f'said {len(answer)} characters')\n"
    )
    data = suite_copy / "refusal.jsonl"
    lines = [json.loads(line) for line in data.read_text().splitlines()]
    data.write_text("".join(json.dumps({**r, "rule": "answers_at_all"}) + "\n" for r in lines))
    (run,) = evaluate(eval_registry, [PLAIN[0]], suite_copy, actor=ENGINEER, options=FEW)
    refusals = [s for s in run.samples if s.task == "policy_refusal"]
    assert len(refusals) == FEW.limit
    assert all(s.reason.startswith("said ") for s in refusals), [s.reason for s in refusals]
    assert run.suite_digest == load_suite(suite_copy).digest  # the rule's code is hashed


def test_a_crash_inside_lm_eval_is_evaluation_failed_not_bad_input(
    eval_registry: Registry, suite_copy: Path
) -> None:
    (suite_copy / "scoring.py").write_text(
        "def process_results(doc, results):\n    raise MemoryError('out of memory')\n"
    )
    with pytest.raises(EvaluationFailed, match="failed in lm-eval: MemoryError: out of memory"):
        evaluate(eval_registry, [PLAIN[0]], suite_copy, actor=ENGINEER, options=FEW)
    digest = load_suite(suite_copy).digest
    runs = [r for r in eval_registry.evaluations.list(PLAIN[0]) if r.suite_digest == digest]
    assert [(r.status, r.sample_count) for r in runs] == [("failed", 0)]
    assert EvaluationFailed.exit_code == 1


def test_an_interrupted_run_is_recorded_as_such(eval_registry: Registry, suite_copy: Path) -> None:
    (suite_copy / "scoring.py").write_text(
        "def process_results(doc, results):\n    raise KeyboardInterrupt\n"
    )
    with pytest.raises(KeyboardInterrupt):
        evaluate(eval_registry, [PLAIN[0]], suite_copy, actor=ENGINEER, options=FEW)
    digest = load_suite(suite_copy).digest
    runs = [r for r in eval_registry.evaluations.list(PLAIN[0]) if r.suite_digest == digest]
    assert [(r.status, r.sample_count) for r in runs] == [("interrupted", 0)]


def test_tampered_results_are_refused_on_read(eval_registry: Registry) -> None:
    (run,) = evaluate(eval_registry, [PLAIN[1]], "sanity", actor=ENGINEER, options=FEW)
    sql(
        eval_registry,
        "UPDATE eval_samples SET metrics = '{\"acc\": 1.0}' WHERE run_id = ?",
        [run.id],
    )
    message = f"eval_samples rows of run {run.id} differ from the ones audit event #"
    with pytest.raises(VerificationError, match=message):
        eval_registry.evaluations.get(run.id)
    sql(eval_registry, "DELETE FROM eval_samples WHERE run_id = ?", [run.id])
    with pytest.raises(VerificationError, match=message):
        eval_registry.evaluations.get(run.id)


def test_the_evaluation_dtype_is_a_setting_not_the_training_decision(
    eval_registry: Registry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from loraledger.trainer.compute_dtype import FORCE_ENV

    monkeypatch.setenv(FORCE_ENV, "bfloat16")  # what training's "auto" would now choose
    (run,) = evaluate(eval_registry, [PLAIN[0]], "sanity", actor=ENGINEER, options=FEW)
    assert run.compute_dtype == "float32"  # the checkpoint's, as plain lm_eval loads it
    copy = tmp_path / "sanity"
    shutil.copytree(find_suite("sanity").directory, copy)
    group = copy / "sanity.yaml"
    group.write_text(group.read_text().replace("    apply_chat_template: true",
                     "    apply_chat_template: true\n    compute_dtype: bfloat16"))  # fmt: skip
    (suite_default,) = evaluate(eval_registry, [PLAIN[0]], copy, actor=ENGINEER, options=FEW)
    assert suite_default.compute_dtype == "bfloat16"
    group.write_text(group.read_text().replace("compute_dtype: bfloat16", "compute_dtype: int4"))
    with pytest.raises(InputError, match="metadata.loraledger.compute_dtype"):
        evaluate(eval_registry, [PLAIN[0]], copy, actor=ENGINEER, options=FEW)
    with pytest.raises(UsageError, match="the compute dtype is 'fp8'"):
        evaluate(eval_registry, [PLAIN[0]], "sanity", actor=ENGINEER,
                 options=EvalOptions(limit=3, compute_dtype="fp8"))  # fmt: skip
