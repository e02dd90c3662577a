"""Paired statistics for "regression or noise" between two evaluation runs.

Both runs scored the same samples, so each sample is its own control:

* pass/fail metrics (every value 0 or 1): the exact McNemar test -- a two-sided binomial
  test on the discordant pairs (SciPy's ``binomtest``); concordant samples carry no
  information about the difference;
* continuous metrics: a paired sign-flip permutation test on the per-sample differences
  (SciPy's ``permutation_test``, exact when 2^n is small enough);
* both: a paired bootstrap confidence interval for the mean difference (SciPy's
  ``bootstrap`` over the differences, BCa, percentile where BCa is undefined).

The verdict is "improvement" or "regression" when p < alpha (direction by the metric's
``higher_is_better``), otherwise "no significant change".
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

IMPROVEMENT, REGRESSION, NO_CHANGE = "improvement", "regression", "no significant change"


@dataclass(frozen=True)
class McNemar:
    improved: int  # old failed, new passed
    regressed: int  # old passed, new failed
    p_value: float


@dataclass(frozen=True)
class PairedResult:
    test: str
    n: int
    old_mean: float
    new_mean: float
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    verdict: str


INTERVALS = {"wilson": "Wilson score", "clopper-pearson": "Clopper-Pearson"}


def proportion_interval(
    successes: int, n: int, confidence: float, method: str
) -> tuple[float, float]:
    """The two-sided ``confidence`` interval of a proportion seen as ``successes`` of
    ``n``: Wilson's score interval or Clopper-Pearson's exact one (``INTERVALS``), as
    SciPy's ``binomtest(...).proportion_ci`` computes them."""
    from scipy.stats import binomtest

    if method not in INTERVALS:
        raise ValueError(f"unknown interval {method!r}; choose from {', '.join(INTERVALS)}")
    scipy_method = "exact" if method == "clopper-pearson" else "wilson"
    ci = binomtest(successes, n).proportion_ci(confidence_level=confidence, method=scipy_method)
    return float(ci.low), float(ci.high)


def mcnemar_exact(old: ArrayLike, new: ArrayLike) -> McNemar:
    """Exact McNemar test of paired pass/fail outcomes (1 = pass)."""
    from scipy.stats import binomtest

    before, after = _pair(old, new)
    improved = int(np.sum((before == 0) & (after == 1)))
    regressed = int(np.sum((before == 1) & (after == 0)))
    discordant = improved + regressed
    p = 1.0 if discordant == 0 else float(binomtest(improved, discordant, 0.5).pvalue)
    return McNemar(improved, regressed, min(p, 1.0))


def permutation_p_value(
    old: ArrayLike, new: ArrayLike, *, n_resamples: int = 9999, seed: int = 0
) -> float:
    """Two-sided p-value of the mean paired difference under sign flips."""
    from scipy.stats import permutation_test

    before, after = _pair(old, new)
    diffs = after - before
    if not np.any(diffs):
        return 1.0
    result = permutation_test(
        (after, before),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    return float(min(result.pvalue, 1.0))


def bootstrap_interval(
    old: ArrayLike,
    new: ArrayLike,
    *,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
) -> tuple[float, float]:
    """Paired bootstrap interval for mean(new - old)."""
    from scipy.stats import bootstrap

    before, after = _pair(old, new)
    diffs = after - before
    if diffs.size < 2 or np.allclose(diffs, diffs[0], rtol=0, atol=1e-12):
        value = float(np.mean(diffs)) if diffs.size else 0.0
        return value, value
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():  # BCa warns, then gives NaN, on degenerate data
            warnings.simplefilter("ignore")
            result = bootstrap(
                (diffs,),
                np.mean,
                confidence_level=confidence,
                n_resamples=n_resamples,
                method=method,
                rng=np.random.default_rng(seed),
            )
        low, high = result.confidence_interval
        if np.isfinite(low) and np.isfinite(high):
            return float(low), float(high)
    raise ArithmeticError("the bootstrap interval is undefined for these differences")


def is_binary(*arrays: ArrayLike) -> bool:
    return all(np.isin(np.asarray(a, dtype=float), (0.0, 1.0)).all() for a in arrays)


def compare_paired(
    old: ArrayLike,
    new: ArrayLike,
    *,
    higher_is_better: bool = True,
    alpha: float = 0.05,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
) -> PairedResult:
    """Test whether ``new`` differs from ``old`` on the same samples, and which way."""
    before, after = _pair(old, new)
    if is_binary(before, after):
        test, p = "mcnemar-exact", mcnemar_exact(before, after).p_value
    else:
        test = "paired-permutation"
        p = permutation_p_value(before, after, n_resamples=n_resamples, seed=seed)
    low, high = bootstrap_interval(
        before, after, confidence=confidence, n_resamples=n_resamples, seed=seed
    )
    effect = float(np.mean(after) - np.mean(before))
    return PairedResult(
        test=test,
        n=int(before.size),
        old_mean=float(np.mean(before)),
        new_mean=float(np.mean(after)),
        effect=effect,
        ci_low=low,
        ci_high=high,
        p_value=p,
        verdict=verdict_of(p, effect, higher_is_better=higher_is_better, alpha=alpha),
    )


def verdict_of(p: float, effect: float, *, higher_is_better: bool, alpha: float) -> str:
    """Improvement or regression when ``p`` is below ``alpha``, by the direction of
    ``effect``; otherwise no significant change."""
    if p >= alpha or effect == 0:
        return NO_CHANGE
    return IMPROVEMENT if (effect > 0) == higher_is_better else REGRESSION


def holm(p_values: list[float], alpha: float) -> list[float]:
    """The p-values after Holm's step-down correction (statsmodels' ``multipletests``)."""
    from statsmodels.stats.multitest import multipletests

    return [float(p) for p in multipletests(p_values, alpha=alpha, method="holm")[1]]


def _pair(old: ArrayLike, new: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    before = np.asarray(old, dtype=float)
    after = np.asarray(new, dtype=float)
    if before.shape != after.shape or before.ndim != 1:
        raise ValueError(
            f"paired samples must be two 1-D arrays of one length, got {before.shape} and "
            f"{after.shape}"
        )
    if before.size == 0:
        raise ValueError("no paired samples to compare")
    return before, after


__all__ = [
    "IMPROVEMENT",
    "NO_CHANGE",
    "REGRESSION",
    "McNemar",
    "PairedResult",
    "bootstrap_interval",
    "compare_paired",
    "is_binary",
    "mcnemar_exact",
    "permutation_p_value",
]
