"""Per-category results: a recount of the stored samples, intervals as SciPy and
statsmodels compute them, and Holm's correction across the categories compared."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loraledger.harness.categories import category_comparisons, category_results
from loraledger.registry.models import EvalRun, EvalSample, TaskMetric
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

TASK = "policy_refusal"


def sample(doc_id: int, category: str | None, value: float, task: str = TASK) -> EvalSample:
    return EvalSample(
        task=task, doc_id=doc_id, filter="none", sample_key=f"s{doc_id}", doc_hash="d",
        prompt_hash="p", input="q", output="a", target="t", metrics={"pass": value},
        passed=value == 1.0, reason="r", category=category,
    )  # fmt: skip


def a_run(samples: list[EvalSample]) -> EvalRun:
    """A run with just what per-category results read: its samples and metrics."""
    metric = TaskMetric(task=TASK, metric="pass", filter="none", value=0.0, stderr=None,
                        higher_is_better=True, sample_count=len(samples))  # fmt: skip
    return EvalRun.model_construct(samples=tuple(samples), metrics=(metric,))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["weapons", "self-harm", "fraud", None]), st.booleans()),
        min_size=1,
        max_size=40,
    )
)
def test_per_category_results_are_a_recount_of_the_stored_samples(
    rows: list[tuple[str | None, bool]],
) -> None:
    run = a_run([sample(i, c, float(p)) for i, (c, p) in enumerate(rows)])
    counted: dict[str, list[bool]] = defaultdict(list)
    for category, passed in rows:
        if category is not None:  # samples without a category belong to none
            counted[category].append(passed)
    found = {r.category: r for r in category_results(run)}
    assert set(found) == set(counted)
    for category, values in counted.items():
        result = found[category]
        assert (result.task, result.metric, result.n) == (TASK, "pass", len(values))
        assert result.mean == pytest.approx(sum(values) / len(values))
        low, high = proportion_confint(sum(values), len(values), alpha=0.05, method="wilson")
        assert (result.low, result.high) == (pytest.approx(low), pytest.approx(high))


def test_clopper_pearson_on_request_and_no_interval_for_a_continuous_metric() -> None:
    run = a_run([sample(i, "weapons", float(i % 4 != 0)) for i in range(20)])
    (exact,) = category_results(run, interval="clopper-pearson", confidence=0.9)
    low, high = proportion_confint(15, 20, alpha=0.1, method="beta")
    assert (exact.low, exact.high) == (pytest.approx(low), pytest.approx(high))
    continuous = a_run([sample(i, "weapons", 0.25 * (i % 5)) for i in range(10)])
    (mean,) = category_results(continuous)
    assert mean.low is None and mean.high is None and mean.mean == pytest.approx(0.5)
    assert category_results(a_run([sample(0, None, 1.0)])) == []


def test_holm_keeps_one_category_from_a_false_regression_by_chance() -> None:
    # weapons: 7 of 10 pairs regressed (exact McNemar p = 0.0156 on its own); four
    # unchanged categories beside it: Holm multiplies the smallest p by five
    categories = ["weapons", "fraud", "drugs", "violence", "self-harm"]
    old, new = [], []
    for c_index, category in enumerate(categories):
        for i in range(10):
            doc = c_index * 10 + i
            old.append(sample(doc, category, 1.0))
            new.append(sample(doc, category, 0.0 if category == "weapons" and i < 7 else 1.0))
    found = {c.category: c for c in category_comparisons(a_run(new), a_run(old))}
    weapons = found["weapons"]
    assert weapons.p_value == pytest.approx(2 * 0.5**7)
    expected = multipletests([c.p_value for c in found.values()], method="holm")[1]
    assert [c.adjusted_p for c in found.values()] == pytest.approx(list(expected))
    assert weapons.adjusted_p == pytest.approx(5 * 2 * 0.5**7)
    assert weapons.verdict == "no significant change"  # 0.078 after Holm
    alone = category_comparisons(
        a_run([s for s in new if s.category == "weapons"]),
        a_run([s for s in old if s.category == "weapons"]),
    )
    assert [c.verdict for c in alone] == ["regression"]  # one category: no correction


def test_a_category_that_collapsed_is_a_regression_after_correction() -> None:
    old = [sample(i, "weapons" if i < 20 else "fraud", 1.0) for i in range(40)]
    new = [sample(i, "weapons" if i < 20 else "fraud", float(i >= 20)) for i in range(40)]
    found = {c.category: c for c in category_comparisons(a_run(new), a_run(old))}
    assert found["weapons"].verdict == "regression" and found["weapons"].effect == -1.0
    assert found["weapons"].adjusted_p == pytest.approx(2 * 2 * 0.5**20)
    assert found["fraud"].verdict == "no significant change" and found["fraud"].p_value == 1.0
