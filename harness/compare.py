"""The regression verdict between two subjects' results on one suite.

``compare(new, old, suite)`` takes each subject's newest complete run on the suite,
insists both ran the suite as it is now (same digest) with the same settings, pairs their
samples and, per task and metric, asks :func:`statistics.compare_paired` whether the
difference is an improvement, a regression or noise. The comparison is stored with an
``eval.compare`` audit event.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from loraledger.registry import Registry
from loraledger.registry.audit import utcnow
from loraledger.registry.evaluations import subject_label
from loraledger.registry.models import Comparison, EvalRun, TaskComparison

from loraledger.errors import Conflict, UsageError

from .statistics import IMPROVEMENT, NO_CHANGE, REGRESSION, compare_paired, holm, is_binary
from .suites import Suite, find_suite

# What both runs must share. The batch size too: padding shifts float rounding, which
# changes a few greedy answers (measured on the policy suite), and that noise is no
# difference between the subjects.
COMPARABLE_SETTINGS = (
    "apply_chat_template",
    "system_instruction",
    "limit",
    "num_fewshot",
    "batch_size",
)
MAX_LISTED = 25  # continuous metrics: the samples that moved most, per direction


def compare(
    registry: Registry,
    new_ref: str,
    old_ref: str,
    suite: Suite | str | Path,
    *,
    actor: str | None,
    alpha: float = 0.05,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
) -> Comparison:
    """Compare the newest complete runs of ``new_ref`` and ``old_ref`` on ``suite``."""
    suite = suite if isinstance(suite, Suite) else find_suite(suite)
    new = registry.evaluations.latest(new_ref, suite.name)
    old = registry.evaluations.latest(old_ref, suite.name)
    return compare_runs(
        registry, new, old, suite, actor=actor, alpha=alpha, confidence=confidence,
        n_resamples=n_resamples, seed=seed, refs=(new_ref, old_ref),
    )  # fmt: skip


def compare_runs(
    registry: Registry,
    new: EvalRun,
    old: EvalRun,
    suite: Suite,
    *,
    actor: str | None,
    alpha: float = 0.05,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
    refs: tuple[str, str] | None = None,
) -> Comparison:
    """The paired verdict between two given runs of ``suite`` (its current digest)."""
    if not 0 < alpha < 1 or not 0 < confidence < 1:
        raise UsageError("--alpha and --confidence must lie between 0 and 1")
    names = refs or (new.subject.ref, old.subject.ref)
    for ref, run in zip(names, (new, old), strict=True):
        if run.suite_digest != suite.digest:
            raise Conflict(
                f"the results of {run.subject.ref} on suite {suite.name!r} were made with suite "
                f"digest {run.suite_digest[:16]}…, and the suite is now {suite.digest[:16]}…; "
                f"results are comparable only within one suite version: run `loraledger eval "
                f"{ref} --suite {suite.name}` again"
            )
    if new.compute_dtype != old.compute_dtype:
        raise Conflict(
            f"the two runs computed in different dtypes ({new.compute_dtype} vs "
            f"{old.compute_dtype}), which changes every log-likelihood; evaluate both with "
            f"the same --dtype"
        )
    for key in COMPARABLE_SETTINGS:
        if new.settings.get(key) != old.settings.get(key):
            raise Conflict(
                f"the two runs used different {key} ({new.settings.get(key)!r} vs "
                f"{old.settings.get(key)!r}); evaluate both with the same settings"
            )
    judges = [(run.settings.get("judge") or {}).get("judge") for run in (new, old)]
    if judges[0] != judges[1]:
        raise Conflict(
            f"the two runs were scored by different refusal judges ({judges[0]} vs "
            f"{judges[1]}); evaluate both with the same judge"
        )
    results = tuple(
        _compare_metric(
            new,
            old,
            m.task,
            m.metric,
            m.filter,
            m.higher_is_better,
            alpha,
            confidence,
            n_resamples,
            seed,
        )
        for m in new.metrics
    )
    results = _holm(results, alpha)
    verdicts = {r.verdict for r in results}
    overall = (
        REGRESSION
        if REGRESSION in verdicts
        else IMPROVEMENT
        if IMPROVEMENT in verdicts
        else NO_CHANGE
    )
    comparison = Comparison(
        id=str(uuid.uuid4()),
        new_run=new.id,
        old_run=old.id,
        new_subject=subject_label(new.subject),
        old_subject=subject_label(old.subject),
        suite_name=suite.name,
        suite_digest=suite.digest,
        alpha=alpha,
        settings={
            "confidence": confidence,
            "n_resamples": n_resamples,
            "seed": seed,
            "correction": "holm",
        },
        verdict=overall,
        results=results,
        created_at=utcnow(),
        created_by=actor or "",
    )
    return registry.evaluations.record_comparison(comparison, actor=actor)


def _holm(results: tuple[TaskComparison, ...], alpha: float) -> tuple[TaskComparison, ...]:
    """Each result's p-value after Holm's step-down correction over the comparison's task
    metrics (statsmodels' ``multipletests``), and its verdict read from that: testing five
    tasks at alpha each would flag some task by chance far more often than alpha."""
    if not results:
        return results
    adjusted = holm([r.p_value for r in results], alpha)
    corrected = []
    for result, p in zip(results, adjusted, strict=True):
        verdict = result.verdict if p < alpha else NO_CHANGE
        corrected.append(result.model_copy(update={"adjusted_p": p, "verdict": verdict}))
    return tuple(corrected)


def _compare_metric(
    new: EvalRun,
    old: EvalRun,
    task: str,
    metric: str,
    filter_name: str,
    higher_is_better: bool,
    alpha: float,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> TaskComparison:
    def values(run: EvalRun) -> dict[int, tuple[str, float]]:
        return {
            s.doc_id: (s.sample_key, s.metrics[metric])
            for s in run.samples
            if s.task == task and s.filter == filter_name and metric in s.metrics
        }

    after, before = values(new), values(old)
    if set(after) != set(before) or not after:
        raise Conflict(
            f"task {task}: the runs scored different samples ({len(after)} vs {len(before)}); "
            "evaluate both on the same suite and --limit"
        )
    ids = sorted(after)
    old_values = [before[i][1] for i in ids]
    new_values = [after[i][1] for i in ids]
    result = compare_paired(
        old_values,
        new_values,
        higher_is_better=higher_is_better,
        alpha=alpha,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
    )
    sign = 1 if higher_is_better else -1
    moved = [
        (after[i][0], sign * (after[i][1] - before[i][1]))
        for i in ids
        if after[i][1] != before[i][1]
    ]
    if is_binary(old_values, new_values):
        flipped = {
            "improved": [k for k, d in moved if d > 0],
            "regressed": [k for k, d in moved if d < 0],
        }
    else:
        moved.sort(key=lambda kd: -abs(kd[1]))
        flipped = {
            "improved": [k for k, d in moved if d > 0][:MAX_LISTED],
            "regressed": [k for k, d in moved if d < 0][:MAX_LISTED],
        }
    return TaskComparison(
        task=task,
        metric=metric if filter_name == "none" else f"{metric},{filter_name}",
        test=result.test,
        n=result.n,
        old_mean=result.old_mean,
        new_mean=result.new_mean,
        effect=result.effect,
        ci_low=result.ci_low,
        ci_high=result.ci_high,
        p_value=result.p_value,
        verdict=result.verdict,
        flipped=flipped,
    )


__all__ = ["compare", "compare_runs"]
