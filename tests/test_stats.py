"""Direct tests of regbench.study.stats on known numbers.

Every expected value comes from scipy (paired t-tests, t quantiles), statsmodels
(multipletests) or a hand computation written out here, never from the function under
test. The Holm family below is built so that raw p < 0.05, Bonferroni and Holm reject
different sets: a comparison that used either of the other two would fail here.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from regbench.study import stats
from test_stats_properties import holm_by_hand

ALPHA = 0.05


def series(values: list[float], seeds: list[int] | None = None) -> pd.Series:
    """One value per seed (the index)."""
    return pd.Series(values, index=seeds if seeds is not None else range(len(values)), dtype=float)


@functools.lru_cache
def t_sums(alpha: float, power: float, cap: int) -> tuple[np.ndarray, np.ndarray]:
    """n = 2..cap and t_{1-alpha/2, n-1} + t_{power, n-1} for each."""
    n = np.arange(2, cap + 1)
    return n, sps.t.ppf(1 - alpha / 2, n - 1) + sps.t.ppf(power, n - 1)


def brute_force_seeds(d: float, sd: float, alpha: float, power: float = 0.8,
                      cap: int = 10_000) -> float:
    """The smallest n >= 2 with n >= ((t_{1-a/2,n-1} + t_{power,n-1}) sd/d)^2, trying every n."""
    n, t = t_sums(alpha, power, cap)
    ok = np.nonzero(n >= (t * sd / d) ** 2)[0]
    return float(n[ok[0]]) if ok.size else math.inf


def with_p(p: float, base: np.ndarray, sd: float = 0.01) -> np.ndarray:
    """Values paired with `base` whose paired t-test against it has two-sided p-value p."""
    n = len(base)
    z = np.linspace(-1.0, 1.0, n)
    z = (z - z.mean()) / z.std(ddof=1)  # mean 0, sample sd 1
    mean = sps.t.ppf(1 - p / 2, n - 1) * sd / math.sqrt(n)  # t = mean / (sd / sqrt(n))
    return base + mean + sd * z


# -------------------------------------------------------------------- paired_difference


def test_paired_difference_matches_scipy_on_the_common_seeds() -> None:
    a = series([0.93, 0.95, 0.93, 0.96, 0.92], [0, 1, 2, 3, 4])
    b = series([0.92, 0.91, 0.93, 0.89, 0.90], [1, 2, 3, 4, 5])  # seeds 1-4 in common
    d = stats.paired_difference(a, b)
    x, y = [0.95, 0.93, 0.96, 0.92], [0.92, 0.91, 0.93, 0.89]
    diffs = np.subtract(x, y)
    assert d.pairs == 4
    assert d.mean == pytest.approx(diffs.mean()) and d.sd == pytest.approx(diffs.std(ddof=1))
    assert d.p_value == pytest.approx(sps.ttest_rel(x, y).pvalue, rel=1e-12)
    half = sps.t.ppf(0.975, 3) * diffs.std(ddof=1) / 2  # sqrt(4) = 2
    assert d.interval() == pytest.approx((diffs.mean() - half, diffs.mean() + half))
    half99 = sps.t.ppf(0.995, 3) * diffs.std(ddof=1) / 2
    assert d.interval(0.99) == pytest.approx((diffs.mean() - half99, diffs.mean() + half99))


def test_paired_difference_drops_a_seed_with_nan_on_either_side() -> None:
    a = series([0.90, math.nan, 0.94, 0.97, 0.91])
    b = series([0.88, 0.90, math.nan, 0.93, 0.90])
    d = stats.paired_difference(a, b)
    x, y = [0.90, 0.97, 0.91], [0.88, 0.93, 0.90]  # seeds 0, 3, 4
    assert d.pairs == 3
    assert d.mean == pytest.approx(np.mean(np.subtract(x, y)))
    assert d.p_value == pytest.approx(sps.ttest_rel(x, y).pvalue, rel=1e-12)


def test_paired_difference_with_no_common_seed_or_one_pair() -> None:
    none = stats.paired_difference(series([0.9, 0.8], [0, 1]), series([0.7, 0.6], [2, 3]))
    assert none.pairs == 0 and math.isnan(none.mean) and math.isnan(none.p_value)
    assert math.isnan(none.sd)
    assert all(math.isnan(x) for x in none.interval())
    one = stats.paired_difference(series([0.9, 0.8], [0, 1]), series([0.7], [1]))
    assert one.pairs == 1 and one.mean == pytest.approx(0.1)
    assert math.isnan(one.sd) and math.isnan(one.p_value)
    assert all(math.isnan(x) for x in one.interval())


def test_paired_difference_with_identical_differences_is_certain() -> None:
    # sd = 0: the t statistic is infinite (or 0/0); the difference is exactly known
    up = stats.paired_difference(series([0.5, 0.6, 0.7]), series([0.25, 0.35, 0.45]))
    assert (up.pairs, up.sd, up.p_value) == (3, 0.0, 0.0) and up.mean == pytest.approx(0.25)
    assert up.interval() == pytest.approx((0.25, 0.25))
    same = stats.paired_difference(series([0.5, 0.6, 0.7]), series([0.5, 0.6, 0.7]))
    assert (same.mean, same.sd, same.p_value) == (0.0, 0.0, 1.0)
    # rounding noise far below the values counts as sd = 0; a real spread does not
    tiny = stats.paired_difference(series([0.3 + 1e-15, 0.3]), series([0.1, 0.1]))
    assert tiny.sd == 0.0 and tiny.p_value == 0.0
    small = stats.paired_difference(series([1e-9, 3e-9, 2e-9]), series([0.0, 0.0, 0.0]))
    assert small.sd == pytest.approx(1e-9) and small.p_value == pytest.approx(
        sps.ttest_1samp([1e-9, 3e-9, 2e-9], 0.0).pvalue)
    # the tolerance is relative to the mean once it exceeds 1 (images per second: thousands)
    fast = stats.paired_difference(series([5000.0 + 4e-9, 5000.0]), series([0.0, 0.0]))
    assert fast.sd == 0.0 and fast.p_value == 0.0
    # and 1e-12 (absolute) below 1: a spread of 1.8e-12 around 0.3 is a spread
    near = stats.paired_difference(series([0.3, 0.3 + 2.5e-12]), series([0.0, 0.0]))
    assert near.sd == pytest.approx(2.5e-12 / math.sqrt(2), rel=1e-3) and near.p_value > 0


def test_paired_difference_refuses_a_seed_listed_twice() -> None:
    with pytest.raises(ValueError, match=r"seeds listed twice: \[1\]"):
        stats.paired_difference(series([0.9, 0.8, 0.7], [0, 1, 1]), series([0.7, 0.6], [0, 1]))
    with pytest.raises(ValueError, match=r"seeds listed twice: \[0\]"):
        stats.paired_difference(series([0.7, 0.6], [0, 1]), series([0.9, 0.8], [0, 0]))


# ---------------------------------------------------------------------------- holm


# p-values where the three rules disagree (k = 4): raw p < 0.05 rejects all four,
# Holm the first two (0.010 <= 0.05/4, 0.015 <= 0.05/3, 0.030 > 0.05/2),
# Bonferroni only the first (0.015 > 0.05/4).
SPLIT = [0.030, 0.010, 0.040, 0.015]


def test_holm_matches_statsmodels_and_differs_from_bonferroni_and_raw() -> None:
    holm = stats.holm(SPLIT)
    assert holm == [False, True, False, True]  # by hand, see SPLIT; statsmodels agrees (below)
    assert [p <= ALPHA / 4 for p in SPLIT] == [False, True, False, False]  # Bonferroni
    assert [p < ALPHA for p in SPLIT] == [True] * 4


FAMILIES = [
    [0.01, 0.02, 0.03, 0.04, 0.05], [0.2, 0.001, 0.0125, 0.026], [0.04], [0.06], [0.5, 0.5],
    [0.0125, 0.0125, 0.0125, 0.0125], [0.001, 0.049, 0.049], [0.0, 1.0], SPLIT,
]
# statsmodels' answers, computed once at import (multipletests runs a full garbage
# collection per call, which every mutant of scripts/mutation.sh would pay again)
STATSMODELS_HOLM = {(alpha, tuple(p)): list(multipletests(p, alpha=alpha, method="holm")[0])
                    for p in FAMILIES for alpha in (ALPHA, 0.1)}


@pytest.mark.parametrize("p_values", FAMILIES)
@pytest.mark.parametrize("alpha", [ALPHA, 0.1])
def test_holm_matches_statsmodels(p_values: list[float], alpha: float) -> None:
    expected = STATSMODELS_HOLM[(alpha, tuple(p_values))]
    assert stats.holm(p_values, alpha) == expected
    # the hand-written oracle of the property tests agrees with statsmodels too
    assert holm_by_hand(p_values, alpha) == expected


def test_holm_leaves_nan_out_of_the_family() -> None:
    # k = 2, not 3: 0.03 <= 0.05/1 at the second step
    assert stats.holm([0.02, math.nan, 0.03]) == [True, None, True]
    assert stats.holm([math.nan]) == [None] and stats.holm([]) == []


def test_holm_levels_are_those_of_the_deciding_step() -> None:
    steps = stats.holm_steps(SPLIT)
    # rejected at steps 1 and 2: 1 - 0.05/4 and 1 - 0.05/3; the rest at step 3's 1 - 0.05/2
    assert [s.established for s in steps] == [False, True, False, True]
    assert [s.level for s in steps] == pytest.approx([0.975, 0.9875, 0.975, 1 - 0.05 / 3])
    nan_step = stats.holm_steps([math.nan, 0.01])[0]
    assert nan_step.established is None and math.isnan(nan_step.level)
    assert stats.holm_steps([0.01, 0.02])[1].level == pytest.approx(0.95)  # step 2 of 2


# -------------------------------------------------------------------- seeds_needed


def test_seeds_needed_for_the_reported_large_effect() -> None:
    # issue 19: d = 0.154, sd = 0.053 at alpha 0.0125 needs 5 seeds, not 2
    assert brute_force_seeds(0.154, 0.053, 0.0125) == 5
    assert stats.seeds_needed(0.154, 0.053, 0.0125) == 5


RATIOS = [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 1.0, 1.3, 1.7, 2.2, 3.0, 5.0, 9.0]  # sd / |d|
LEVELS = [0.05, 0.025, 0.05 / 3, 0.0125, 0.01]


@pytest.mark.parametrize("alpha", LEVELS)
def test_seeds_needed_is_the_smallest_n_satisfying_the_formula(alpha: float) -> None:
    for ratio in RATIOS:  # 13 spreads x 5 levels = 65 points, effects of both signs
        for d in (0.02, -1.5):
            assert stats.seeds_needed(d, ratio * abs(d), alpha) == brute_force_seeds(
                d, ratio * abs(d), alpha), (d, ratio, alpha)


def test_seeds_needed_power_and_cap() -> None:
    assert stats.seeds_needed(1.0, 2.0, 0.05, 0.9) == brute_force_seeds(1.0, 2.0, 0.05, 0.9)
    assert stats.seeds_needed(1.0, 2.0, 0.05, 0.5) == brute_force_seeds(1.0, 2.0, 0.05, 0.5)
    assert stats.seeds_needed(1.0, 0.0) == 2  # no spread: the smallest sample with a t-test
    # about (1.96 + 0.84)^2 * 35^2 = 9,600 seeds: under the cap; 36^2 * 7.85 = 10,170: over
    assert stats.seeds_needed(1.0, 35.0) == brute_force_seeds(1.0, 35.0, 0.05) < 10_000
    assert stats.seeds_needed(1.0, 36.0) == math.inf == brute_force_seeds(1.0, 36.0, 0.05)
    assert stats.seeds_needed(0.0, 1.0) == math.inf
    assert math.isnan(stats.seeds_needed(1.0, math.nan))
    # at the cap: 10,000 seeds is an answer, 10,001 is not
    for n, expected in ((10_000, 10_000.0), (10_001, math.inf)):
        t = sps.t.ppf(0.975, n - 1) + sps.t.ppf(0.8, n - 1)
        sd = math.sqrt(n - 0.5) / t  # the formula gives n - 0.5 at n, more than n - 1 at n - 1
        assert brute_force_seeds(1.0, sd, 0.05, cap=10_001) == n
        assert stats.seeds_needed(1.0, sd) == expected
    assert math.isnan(stats.seeds_needed(math.nan, 1.0))
    for alpha, power in ((0.0, 0.8), (1.0, 0.8), (0.05, 0.4), (0.05, 1.0)):
        with pytest.raises(ValueError, match="seeds_needed"):
            stats.seeds_needed(1.0, 1.0, alpha, power)


# ------------------------------------------------------------- compare_to_baseline


def test_compare_to_baseline_holm_family_with_intervals_that_agree() -> None:
    base = np.array([0.90, 0.92, 0.91, 0.93, 0.89, 0.94])
    groups = {"base": series(list(base))}
    groups |= {f"g{i}": series(list(with_p(p, base))) for i, p in enumerate(SPLIT)}
    table = stats.compare_to_baseline(groups, "base").set_index("config")
    p = [sps.ttest_rel(groups[f"g{i}"], base).pvalue for i in range(4)]
    assert p == pytest.approx(SPLIT, rel=1e-6)  # the family was built as intended
    assert list(table["established"]) == holm_by_hand(p) == STATSMODELS_HOLM[(ALPHA, tuple(SPLIT))]
    assert list(table["p"]) == pytest.approx(p, rel=1e-12)
    # each interval at its Holm step's level, by hand: steps 1 and 2 rejected, step 3 failed
    levels = [1 - 0.05 / 2, 1 - 0.05 / 4, 1 - 0.05 / 2, 1 - 0.05 / 3]
    assert list(table["level"]) == pytest.approx(levels)
    for i, level in enumerate(levels):
        d = groups[f"g{i}"] - base
        half = sps.t.ppf(1 - (1 - level) / 2, 5) * d.std(ddof=1) / math.sqrt(6)
        row = table.loc[f"g{i}"]
        assert (row["d"], row["low"], row["high"]) == pytest.approx((d.mean(), d.mean() - half,
                                                                      d.mean() + half))
        assert bool(row["low"] > 0 or row["high"] < 0) == bool(row["established"])  # agree
        assert row["pairs"] == 6
    # within noise: seeds needed at the interval's level (0.05/2), from the observed spread
    g0 = groups["g0"] - base
    assert table.loc["g0", "seeds_needed"] == brute_force_seeds(g0.mean(), g0.std(ddof=1), 0.025)
    assert math.isnan(table.loc["g1", "seeds_needed"])  # established: nothing to resolve


def test_compare_to_baseline_without_adjustment_tests_each_alone() -> None:
    base = np.array([0.90, 0.92, 0.91, 0.93, 0.89, 0.94])
    groups = {"base": series(list(base))}
    groups |= {f"g{i}": series(list(with_p(p, base))) for i, p in enumerate(SPLIT)}
    table = stats.compare_to_baseline(groups, "base", adjust=False)
    assert list(table["established"]) == [True] * 4 and list(table["level"]) == [0.95] * 4
    d = groups["g2"] - base
    half = sps.t.ppf(0.975, 5) * d.std(ddof=1) / math.sqrt(6)
    assert (table["low"][2], table["high"][2]) == pytest.approx((d.mean() - half, d.mean() + half))
    loose = stats.compare_to_baseline(groups, "base", adjust=False, confidence=0.99)
    assert list(loose["established"]) == [False, False, False, False]  # all p > 0.01
    assert list(loose["level"]) == [0.99] * 4


def test_compare_to_baseline_with_one_comparison_is_the_plain_t_test() -> None:
    base = series([0.90, 0.92, 0.91, 0.93, 0.89])
    other = series([0.92, 0.93, 0.91, 0.95, 0.92])
    for adjust in (True, False):
        row = stats.compare_to_baseline({"b": base, "a": other}, "b", adjust).iloc[0]
        p = sps.ttest_rel(other, base).pvalue
        assert row["config"] == "a" and row["p"] == pytest.approx(p)
        assert row["established"] is bool(p <= 0.05) and row["level"] == 0.95
        d = other - base
        half = sps.t.ppf(0.975, 4) * d.std(ddof=1) / math.sqrt(5)
        assert (row["low"], row["high"]) == pytest.approx((d.mean() - half, d.mean() + half))


def test_compare_to_baseline_at_another_confidence() -> None:
    base = np.array([0.90, 0.92, 0.91, 0.93, 0.89, 0.94])
    groups = {"base": series(list(base))}
    groups |= {f"g{i}": series(list(with_p(p, base))) for i, p in enumerate([0.004, 0.02])}
    table = stats.compare_to_baseline(groups, "base", confidence=0.99)
    # Holm at alpha 0.01, k = 2: 0.004 <= 0.01/2 rejected; 0.02 > 0.01/1 not
    assert list(table["established"]) == [True, False]
    assert list(table["level"]) == pytest.approx([1 - 0.01 / 2, 1 - 0.01])


def test_compare_to_baseline_with_nothing_to_compare() -> None:
    table = stats.compare_to_baseline({"base": series([0.9, 0.8])}, "base")
    assert table.empty and list(table.columns) == stats.COLUMNS


def test_compare_to_baseline_edge_rows() -> None:
    base = series([0.90, 0.92, 0.91], [0, 1, 2])
    groups = {
        "base": base,
        "apart": series([0.5, 0.6], [7, 8]),  # no seed in common
        "single": series([0.95], [0]),  # one pair
        "shift": base + 0.25,  # identical differences, sd = 0
        "same": base.copy(),  # identical values: d = 0 exactly
        "noisy": series([0.91, 0.95, 0.90], [0, 1, 2]),
    }
    table = stats.compare_to_baseline(groups, "base").set_index("config")
    assert list(table.index) == ["apart", "single", "shift", "same", "noisy"]  # input order
    apart, single = table.loc["apart"], table.loc["single"]
    assert apart["pairs"] == 0 and apart["established"] is None and math.isnan(apart["d"])
    assert single["pairs"] == 1 and single["established"] is None
    assert single["d"] == pytest.approx(0.05) and math.isnan(single["low"])
    for row in (apart, single):
        assert math.isnan(row["level"]) and math.isnan(row["seeds_needed"])
    # k = 3 (shift, same, noisy): p = 0 for shift is rejected at step 1 (level 1 - 0.05/3)
    p_noisy = sps.ttest_rel([0.91, 0.95, 0.90], [0.90, 0.92, 0.91]).pvalue
    assert p_noisy > 0.05 / 2
    shift, same, noisy = table.loc["shift"], table.loc["same"], table.loc["noisy"]
    assert shift["established"] is True and shift["p"] == 0.0
    assert (shift["low"], shift["high"]) == pytest.approx((0.25, 0.25))
    assert shift["level"] == pytest.approx(1 - 0.05 / 3)
    assert same["established"] is False and same["p"] == 1.0 and same["seeds_needed"] == math.inf
    assert noisy["established"] is False and noisy["level"] == pytest.approx(1 - 0.05 / 2)
    assert noisy["p"] == pytest.approx(p_noisy)
