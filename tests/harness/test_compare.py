"""Paired comparisons of two subjects' runs on one suite (harness/compare.py): stored with
their verdict, refused across suite versions and compute dtypes, and only on results
that exist."""

from __future__ import annotations

from pathlib import Path

import pytest
from loraledger.harness.compare import _holm, compare
from loraledger.harness.evaluate import EvalOptions, evaluate
from loraledger.harness.suites import find_suite
from loraledger.registry import Registry
from loraledger.registry.models import TaskComparison
from statsmodels.stats.multitest import multipletests

from loraledger.errors import (
    Conflict,
    NotFound,
)
from tests.conftest import ENGINEER, REVIEWER
from tests.harness.conftest import NF4, PLAIN

FEW = EvalOptions(limit=3)


def test_compare_pairs_samples_and_stores_the_verdict(eval_registry: Registry) -> None:
    evaluate(eval_registry, list(PLAIN), "northwind-policy", actor=ENGINEER, options=FEW)
    result = compare(eval_registry, PLAIN[1], PLAIN[0], "northwind-policy", actor=REVIEWER)
    assert {r.task for r in result.results} == set(find_suite("northwind-policy").task_names)
    assert all(r.n == 3 and r.test == "mcnemar-exact" for r in result.results)
    assert result.verdict in ("improvement", "regression", "no significant change")
    assert eval_registry.evaluations.comparison(result.id) == result
    event = eval_registry.audit_events(action="eval.compare", newest_first=True, limit=1)[0]
    assert event.actor == REVIEWER and event.payload["comparison_id"] == result.id


def test_compare_refuses_results_of_a_changed_suite(
    eval_registry: Registry, suite_copy: Path
) -> None:
    evaluate(eval_registry, list(PLAIN), suite_copy, actor=ENGINEER, options=FEW)
    data = suite_copy / "disclaimers.jsonl"
    data.write_text(data.read_text().replace("savings", "money"))
    with pytest.raises(Conflict, match="suite digest .* and the suite is now"):
        compare(eval_registry, PLAIN[1], PLAIN[0], suite_copy, actor=ENGINEER)


def test_the_verdict_reads_holms_correction_over_the_task_metrics() -> None:
    # the demo's second seed against its first: disclaimers p = 0.049 on its own, one of
    # five task metrics; after Holm (x4 at its rank) no longer a regression
    def result(task: str, p: float, effect: float) -> TaskComparison:
        verdict = "no significant change" if p >= 0.05 else "regression" if effect < 0 else (
            "improvement")  # fmt: skip
        return TaskComparison(task=task, metric="pass", test="mcnemar-exact", n=50,
                              old_mean=0.5, new_mean=0.5 + effect, effect=effect, ci_low=-1,
                              ci_high=1, p_value=p, verdict=verdict,
                              flipped={"improved": [], "regressed": []})  # fmt: skip

    raw = (result("disclaimers", 0.049, -0.18), result("over_refusal", 0.00109, 0.092),
           result("pii", 1.0, 0.0), result("claims", 1.0, 0.0),
           result("refusal", 0.185, -0.03))  # fmt: skip
    corrected = {r.task: r for r in _holm(raw, 0.05)}
    expected = multipletests([r.p_value for r in raw], method="holm")[1]
    assert [corrected[r.task].adjusted_p for r in raw] == pytest.approx(list(expected))
    assert corrected["disclaimers"].adjusted_p == pytest.approx(4 * 0.049)
    assert corrected["disclaimers"].verdict == "no significant change"
    assert corrected["over_refusal"].verdict == "improvement"  # 0.0055 after Holm
    assert corrected["refusal"].p_value == 0.185  # the raw p-value is kept beside it


def test_compare_refuses_runs_of_different_compute_dtypes(eval_registry: Registry) -> None:
    evaluate(eval_registry, [PLAIN[0]], "sanity", actor=ENGINEER, options=FEW)
    bf16 = EvalOptions(limit=3, compute_dtype="bfloat16")
    evaluate(eval_registry, [PLAIN[1]], "sanity", actor=ENGINEER, options=bf16)
    with pytest.raises(Conflict, match=r"different dtypes \(bfloat16 vs float32\)"):
        compare(eval_registry, PLAIN[1], PLAIN[0], "sanity", actor=ENGINEER, n_resamples=99)


def test_compare_refuses_runs_of_different_batch_sizes(eval_registry: Registry) -> None:
    evaluate(eval_registry, [PLAIN[0]], "sanity", actor=ENGINEER, options=FEW)
    wide = EvalOptions(limit=3, batch_size=3)
    evaluate(eval_registry, [PLAIN[1]], "sanity", actor=ENGINEER, options=wide)
    with pytest.raises(Conflict, match=r"different batch_size \(3 vs 8\)"):
        compare(eval_registry, PLAIN[1], PLAIN[0], "sanity", actor=ENGINEER, n_resamples=99)


def test_compare_needs_results_first(eval_registry: Registry) -> None:
    with pytest.raises(NotFound, match=r"faq-nf4@v1 has no complete evaluation on suite"):
        compare(eval_registry, NF4, PLAIN[0], "northwind-domain", actor=ENGINEER)
