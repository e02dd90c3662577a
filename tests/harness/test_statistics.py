"""Paired statistics against hand-computable cases and known distributions."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loraledger.harness.statistics import (
    IMPROVEMENT,
    NO_CHANGE,
    REGRESSION,
    bootstrap_interval,
    compare_paired,
    mcnemar_exact,
    permutation_p_value,
    proportion_interval,
)


def pairs(
    both_pass: int, improved: int, regressed: int, both_fail: int
) -> tuple[list[int], list[int]]:
    """Old and new pass/fail vectors with the given 2x2 table."""
    old = [1] * both_pass + [0] * improved + [1] * regressed + [0] * both_fail
    new = [1] * both_pass + [1] * improved + [0] * regressed + [0] * both_fail
    return old, new


@pytest.mark.parametrize(
    ("improved", "regressed", "p"),
    [
        (8, 0, 2 * 0.5**8),  # all discordant pairs one way: 2 x (1/2)^8
        (0, 8, 2 * 0.5**8),
        (1, 0, 1.0),
        (0, 0, 1.0),  # no discordant pair: no evidence at all
        (5, 5, 1.0),
        # 6 vs 1: 2 x P(X <= 1), X ~ Bin(7, 1/2) = 2 x (1 + 7) / 128
        (6, 1, 2 * (1 + 7) / 128),
        # 10 vs 2: 2 x (1 + 12 + 66) / 4096
        (10, 2, 2 * (1 + 12 + 66) / 4096),
    ],
)
def test_exact_mcnemar_matches_hand_computed_tables(
    improved: int, regressed: int, p: float
) -> None:
    old, new = pairs(20, improved, regressed, 7)
    result = mcnemar_exact(old, new)
    assert (result.improved, result.regressed) == (improved, regressed)
    assert result.p_value == pytest.approx(p, rel=1e-9)


def test_concordant_pairs_do_not_change_mcnemar() -> None:
    assert (
        mcnemar_exact(*pairs(0, 6, 1, 0)).p_value == mcnemar_exact(*pairs(500, 6, 1, 500)).p_value
    )


def test_verdicts_follow_the_test_and_the_direction() -> None:
    old, new = pairs(10, 10, 0, 10)
    assert compare_paired(old, new).verdict == IMPROVEMENT
    assert compare_paired(new, old).verdict == REGRESSION
    # for a lower-is-better metric the same change is a regression
    assert compare_paired(old, new, higher_is_better=False).verdict == REGRESSION
    small = compare_paired(*pairs(10, 2, 1, 10))
    assert small.verdict == NO_CHANGE and small.test == "mcnemar-exact"
    assert small.effect == pytest.approx(1 / 23)


def test_bootstrap_interval_has_the_expected_width() -> None:
    rng = np.random.default_rng(7)
    old = rng.normal(0.0, 1.0, 400)
    new = old + rng.normal(0.5, 1.0, 400)  # differences ~ N(0.5, 1)
    low, high = bootstrap_interval(old, new, seed=1)
    diffs = new - old
    assert low < diffs.mean() < high
    expected = 2 * 1.96 * diffs.std(ddof=1) / math.sqrt(400)  # the normal-theory width
    assert high - low == pytest.approx(expected, rel=0.15)


def test_bootstrap_interval_covers_the_true_mean_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(11)
    covered = 0
    for trial in range(100):
        old = rng.normal(0.0, 1.0, 80)
        new = old + rng.exponential(0.5, 80)  # skewed differences, true mean 0.5
        low, high = bootstrap_interval(old, new, n_resamples=2000, seed=trial)
        covered += low <= 0.5 <= high
    assert 86 <= covered <= 100


def test_continuous_metrics_use_the_permutation_test() -> None:
    rng = np.random.default_rng(3)
    old = rng.uniform(0, 1, 60)
    shifted = compare_paired(old, old + 0.2 + rng.normal(0, 0.05, 60))
    assert shifted.test == "paired-permutation" and shifted.verdict == IMPROVEMENT
    assert shifted.p_value < 0.001
    noise = compare_paired(old, old + rng.normal(0, 0.05, 60))
    assert noise.verdict == NO_CHANGE and noise.p_value > 0.05


def test_exact_permutation_p_value_by_hand() -> None:
    # differences +1, +1, +1: of the 2^3 sign patterns, 2 have |mean| >= 1 -> p = 2/8
    assert permutation_p_value([0, 0, 0], [1, 1, 1]) == pytest.approx(0.25)


def test_identical_runs_are_no_change() -> None:
    result = compare_paired([0.3, 0.7, 0.1], [0.3, 0.7, 0.1])
    assert (result.verdict, result.p_value, result.ci_low, result.ci_high) == (NO_CHANGE, 1.0, 0, 0)


@pytest.mark.parametrize(("old", "new"), [([], []), ([1, 0], [1]), ([[1]], [[1]])])
def test_unpaired_input_is_refused(old: list[object], new: list[object]) -> None:
    with pytest.raises(ValueError, match="paired|no paired"):
        compare_paired(old, new)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=60))
def test_swapping_the_runs_mirrors_the_result(rows: list[tuple[bool, bool]]) -> None:
    old = [int(a) for a, _ in rows]
    new = [int(b) for _, b in rows]
    forward, backward = compare_paired(old, new), compare_paired(new, old)
    assert forward.p_value == pytest.approx(backward.p_value)
    assert forward.effect == pytest.approx(-backward.effect)
    assert 0.0 <= forward.p_value <= 1.0
    assert {forward.verdict, backward.verdict} in ({NO_CHANGE}, {IMPROVEMENT, REGRESSION})


def _wilson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson's score interval from its closed form (Wilson 1927; Newcombe 1998, eq. 3)."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_intervals_match_their_published_values() -> None:
    # 7 of 8 (the demo's refusal result before the realistic suites): Clopper-Pearson
    # [0.4735, 0.9968] (the "about [0.47, 0.99]" of issue #21), Wilson [0.5291, 0.9776]
    low, high = proportion_interval(7, 8, 0.95, "clopper-pearson")
    assert (round(low, 4), round(high, 4)) == (0.4735, 0.9968)
    low, high = proportion_interval(7, 8, 0.95, "wilson")
    assert (round(low, 4), round(high, 4)) == (0.5291, 0.9776)
    # the exact interval's ends at 0 and n of n: (alpha/2)^(1/n) and its mirror
    assert proportion_interval(8, 8, 0.95, "clopper-pearson")[0] == pytest.approx(0.025 ** (1 / 8))
    assert proportion_interval(0, 8, 0.95, "clopper-pearson") == pytest.approx(
        (0.0, 1 - 0.025 ** (1 / 8))
    )
    with pytest.raises(ValueError, match="unknown interval 'wald'"):
        proportion_interval(1, 2, 0.95, "wald")


@given(st.integers(1, 400).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
       st.sampled_from([0.8, 0.9, 0.95, 0.99]))  # fmt: skip
@settings(max_examples=200, deadline=None)
def test_wilson_equals_its_closed_form_and_each_interval_brackets_the_estimate(
    case: tuple[int, int], confidence: float
) -> None:
    k, n = case
    assert proportion_interval(k, n, confidence, "wilson") == pytest.approx(
        _wilson(k, n, confidence), abs=1e-9
    )
    for method in ("wilson", "clopper-pearson"):
        low, high = proportion_interval(k, n, confidence, method)
        assert 0 <= low <= k / n <= high <= 1
        # a higher level never gives a narrower interval
        wider = proportion_interval(k, n, min(0.999, confidence + 0.005), method)
        assert wider[0] <= low + 1e-12 and high <= wider[1] + 1e-12
