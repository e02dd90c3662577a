"""Per-category results: each metric of a run by the category its samples name.

A suite's samples may carry a ``category`` (the built-in policy suite's do: "weapons",
"self-harm", "iban", ...); every run stores it with each sample. From the stored samples:

* :func:`category_results`: per task, metric and category, the sample count, the mean and,
  for a pass/fail metric, its confidence interval (Wilson's by default) -- a recount of
  the stored samples, nothing else;
* :func:`category_comparisons`: the paired verdict of two runs per category (the tests of
  :func:`.statistics.compare_paired`), with Holm's step-down correction over the
  categories of each task and metric (statsmodels' ``multipletests``), so that twenty
  categories do not hand out one false "regression" by chance at alpha 0.05.

The task-level verdict (what gates read) is :mod:`.compare`'s; the categories say where a
change lies ("refusal fell in the weapons category").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from loraledger.registry.models import EvalRun, EvalSample

from .statistics import compare_paired, holm, is_binary, verdict_of
from .statistics import proportion_interval as _interval

Key = tuple[str, str, str]  # task, metric (with its filter unless "none"), category


@dataclass(frozen=True)
class CategoryResult:
    """One metric of one task over the samples of one category."""

    task: str
    metric: str
    category: str
    n: int
    mean: float
    low: float | None  # the interval of a pass/fail metric; None for a continuous one
    high: float | None


@dataclass(frozen=True)
class CategoryComparison:
    """Two runs' paired verdict on one category of one task's metric."""

    task: str
    metric: str
    category: str
    n: int
    old_mean: float
    new_mean: float
    effect: float
    p_value: float
    adjusted_p: float  # Holm-adjusted over the categories of this task and metric
    verdict: str


def _metric_name(metric: str, filter_name: str) -> str:
    return metric if filter_name == "none" else f"{metric},{filter_name}"


def _by_category(samples: Iterable[EvalSample]) -> dict[Key, dict[int, float]]:
    """Each (task, metric, category)'s values by doc id; samples without a category are
    left out."""
    grouped: dict[Key, dict[int, float]] = defaultdict(dict)
    for sample in samples:
        if sample.category is None:
            continue
        for metric, value in sample.metrics.items():
            key = (sample.task, _metric_name(metric, sample.filter), sample.category)
            grouped[key][sample.doc_id] = value
    return grouped


def category_results(
    run: EvalRun, *, confidence: float = 0.95, interval: str = "wilson"
) -> list[CategoryResult]:
    """The run's metrics per category, sorted by task, metric and category."""
    results = []
    for (task, metric, category), values in sorted(_by_category(run.samples).items()):
        scores = list(values.values())
        n, total = len(scores), sum(scores)
        low = high = None
        if is_binary(scores):
            low, high = _interval(round(total), n, confidence, interval)
        results.append(CategoryResult(task, metric, category, n, total / n, low, high))
    return results


def category_comparisons(
    new: EvalRun,
    old: EvalRun,
    *,
    higher_is_better: dict[str, bool] | None = None,
    alpha: float = 0.05,
    n_resamples: int = 9999,
    seed: int = 0,
) -> list[CategoryComparison]:
    """Per category, whether ``new`` differs from ``old`` on the samples both scored, with
    Holm's correction across each task and metric's categories. ``higher_is_better``
    maps a task's metric (``task/metric``) to its direction (from the runs' metrics when
    not given)."""
    directions = higher_is_better or {
        f"{m.task}/{_metric_name(m.metric, m.filter)}": m.higher_is_better for m in new.metrics
    }
    after, before = _by_category(new.samples), _by_category(old.samples)
    families: dict[tuple[str, str], list[tuple[str, list[float], list[float]]]] = defaultdict(list)
    for key in sorted(set(after) & set(before)):
        task, metric, category = key
        ids = sorted(set(after[key]) & set(before[key]))
        if ids:
            old_values = [before[key][i] for i in ids]
            new_values = [after[key][i] for i in ids]
            families[(task, metric)].append((category, old_values, new_values))
    comparisons = []
    for (task, metric), members in families.items():
        better_up = directions.get(f"{task}/{metric}", True)
        paired = [
            compare_paired(
                o, n, higher_is_better=better_up, alpha=alpha, n_resamples=n_resamples, seed=seed
            )
            for _, o, n in members
        ]
        adjusted = holm([p.p_value for p in paired], alpha)
        for (category, _, _), result, p_adjusted in zip(members, paired, adjusted, strict=True):
            verdict = verdict_of(p_adjusted, result.effect, higher_is_better=better_up, alpha=alpha)
            comparisons.append(
                CategoryComparison(
                    task=task,
                    metric=metric,
                    category=category,
                    n=result.n,
                    old_mean=result.old_mean,
                    new_mean=result.new_mean,
                    effect=result.effect,
                    p_value=result.p_value,
                    adjusted_p=p_adjusted,
                    verdict=verdict,
                )
            )
    return comparisons


__all__ = ["CategoryComparison", "CategoryResult", "category_comparisons", "category_results"]
