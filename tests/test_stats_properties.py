"""Properties of the comparison statistics, checked on data hypothesis generates.

Each property is checked against scipy, statsmodels or a brute-force search, never
against the function under test. The example counts (``settings``) are the ones
docs/testing.md states; scripts/testing_figures.sh reports how many ran.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from regbench.study import compare, stats

# Examples per property: enough to reach the edges (ties, one pair, NaN, sd = 0) in a few
# seconds of CPU. A whole table (aggregate: five metrics, each a Holm family) costs ten
# times more per example than one comparison. scripts/mutation.sh sets
# REGBENCH_PROPERTY_EXAMPLES lower, since every mutant runs these again.
EXAMPLES = int(os.environ.get("REGBENCH_PROPERTY_EXAMPLES", "100"))
TABLE_EXAMPLES = max(EXAMPLES * 3 // 10, 1)
PROPERTY = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# Metric values as regbench records them: fractions on a grid of 1/1000 (one image in a
# thousand), so that differences are exact enough to reason about and ties happen.
value = st.integers(0, 1000).map(lambda i: i / 1000)


@st.composite
def paired(draw: st.DrawFn, min_seeds: int = 2, max_seeds: int = 12
           ) -> tuple[pd.Series, pd.Series]:
    """Two configurations measured on the same seeds (a random subset of 0..29)."""
    seeds = draw(st.lists(st.integers(0, 29), min_size=min_seeds, max_size=max_seeds, unique=True))
    a = [draw(value) for _ in seeds]
    b = [draw(value) for _ in seeds]
    return pd.Series(a, index=seeds, dtype=float), pd.Series(b, index=seeds, dtype=float)


def scipy_p(a: pd.Series, b: pd.Series) -> float:
    """Two-sided paired t-test p-value on the seeds both have, from scipy."""
    common = a.dropna().index.intersection(b.dropna().index)
    return float(sps.ttest_rel(a[common], b[common]).pvalue)


def excludes_zero(low: float, high: float) -> bool:
    return bool(low > 0 or high < 0)


def holm_by_hand(p: list[float], alpha: float = 0.05) -> list[bool]:
    """Holm (1979): sort; reject while p_(j) <= alpha / (k - j + 1); stop at the first not.

    Written out here rather than calling statsmodels' multipletests in every example
    (it runs a full garbage collection per call); tests/test_stats.py checks that the two
    agree.
    """
    out = [False] * len(p)
    for j, i in enumerate(sorted(range(len(p)), key=lambda i: p[i])):
        if p[i] > alpha / (len(p) - j):
            break
        out[i] = True
    return out


@pytest.mark.slow
@PROPERTY
@given(paired())
def test_one_comparison_interval_excludes_zero_exactly_when_established(ab: tuple) -> None:
    a, b = ab
    row = stats.compare_to_baseline({"b": b, "a": a}, "b").iloc[0]
    d = a - b
    if d.std(ddof=1) > 1e-12:  # otherwise the difference is exact: p = 0 or 1
        p = scipy_p(a, b)
        assume(abs(p - 0.05) > 1e-9)  # at p = alpha the interval touches 0: rounding decides
        assert row["p"] == pytest.approx(p, rel=1e-9, abs=1e-300)
        assert bool(row["established"]) is (p <= 0.05)
        half = sps.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
        assert (row["low"], row["high"]) == pytest.approx((d.mean() - half, d.mean() + half),
                                                          abs=1e-12)
    assert excludes_zero(row["low"], row["high"]) is bool(row["established"])


@pytest.mark.slow
@PROPERTY
@given(st.data(), st.integers(1, 6))
def test_no_verdict_contradicts_its_interval(data: st.DataObject, k: int) -> None:
    base = data.draw(paired(min_seeds=3, max_seeds=8))[1]
    groups = {"base": base}
    for i in range(k):
        groups[f"g{i}"] = pd.Series([data.draw(value) for _ in base.index], index=base.index)
    table = stats.compare_to_baseline(groups, "base")
    p = [scipy_p(groups[f"g{i}"], base) if (groups[f"g{i}"] - base).std(ddof=1) > 1e-12
         else math.nan for i in range(k)]
    assume(all(abs(x - y) > 1e-9 for x in p for y in [0.05 / j for j in range(1, k + 1)]))
    for row in table.itertuples():
        assert excludes_zero(row.low, row.high) is bool(row.established)
    # the verdicts are Holm's (exact differences, p = 0 or 1 from stats, aside)
    if not any(math.isnan(x) for x in p):
        assert list(table["established"]) == holm_by_hand(p)


@pytest.mark.slow
@PROPERTY
@given(paired())
def test_swapping_the_configurations_flips_the_sign_and_keeps_the_verdict(ab: tuple) -> None:
    a, b = ab
    ab_row = stats.compare_to_baseline({"a": a, "b": b}, "b").iloc[0]
    ba_row = stats.compare_to_baseline({"a": a, "b": b}, "a").iloc[0]
    assert ab_row["d"] == pytest.approx(-ba_row["d"], abs=1e-12)
    assert (ab_row["low"], ab_row["high"]) == pytest.approx((-ba_row["high"], -ba_row["low"]),
                                                            abs=1e-12)
    assert ab_row["p"] == pytest.approx(ba_row["p"], rel=1e-9)
    assert ab_row["established"] is ba_row["established"]
    assert ab_row["pairs"] == ba_row["pairs"] == len(a)


def brute_force_seeds(d: float, sd: float, alpha: float, power: float) -> float:
    """The smallest n >= 2 with n >= ((t_{1-a/2,n-1} + t_{power,n-1}) sd/d)^2; inf above 10,000."""
    n = np.arange(2, 10_001)
    formula = ((sps.t.ppf(1 - alpha / 2, n - 1) + sps.t.ppf(power, n - 1)) * sd / d) ** 2
    ok = np.nonzero(n >= formula)[0]
    return float(n[ok[0]]) if ok.size else math.inf


@pytest.mark.slow
@PROPERTY
@given(d=st.floats(1e-3, 10.0), sign=st.sampled_from([1, -1]),
       ratio=st.floats(0.0, 40.0), alpha=st.floats(0.001, 0.2), power=st.floats(0.5, 0.95))
def test_seeds_needed_is_the_smallest_n_satisfying_its_formula(
        d: float, sign: int, ratio: float, alpha: float, power: float) -> None:
    # ratio = sd / |d|: up to 40, past the 10,000-seed cap (about 8 * 40^2 = 12,800)
    assert stats.seeds_needed(sign * d, ratio * d, alpha, power) == brute_force_seeds(
        sign * d, ratio * d, alpha, power)


@PROPERTY
@given(st.data(), st.integers(2, 8))
def test_holm_rejects_where_bonferroni_does_not(data: st.DataObject, k: int) -> None:
    alpha = 0.05
    # the smallest p passes both; the second lies between Bonferroni's alpha/k and Holm's
    # second-step alpha/(k-1); the rest are anything from there up
    first = data.draw(st.floats(0.0, alpha / k))
    second = data.draw(st.floats(alpha / k, alpha / (k - 1)).filter(lambda p: p > alpha / k))
    rest = data.draw(st.lists(st.floats(alpha / (k - 1), 1.0), min_size=k - 2, max_size=k - 2))
    p = data.draw(st.permutations([first, second, *rest]))
    i = p.index(second)
    holm = stats.holm(p)
    assert holm[i] is True and holm[p.index(first)] is True
    assert not p[i] <= alpha / k  # Bonferroni: each p against alpha / k
    assert holm == holm_by_hand(p)


@PROPERTY
@given(st.lists(st.one_of(st.floats(0.0, 1.0), st.just(math.nan)), max_size=10))
def test_holm_leaves_nan_out_and_agrees_with_statsmodels_on_the_rest(p: list[float]) -> None:
    holm = stats.holm(p)
    expected = iter(holm_by_hand([x for x in p if not math.isnan(x)]))
    assert holm == [None if math.isnan(x) else next(expected) for x in p]


@pytest.mark.slow
@PROPERTY
@given(paired(min_seeds=1), st.data())
def test_a_seed_with_nan_on_either_side_is_not_a_pair(ab: tuple, data: st.DataObject) -> None:
    a, b = ab
    a_nan = data.draw(st.sets(st.sampled_from(list(a.index))))
    b_nan = data.draw(st.sets(st.sampled_from(list(b.index))))
    a, b = a.copy(), b.copy()
    a[list(a_nan)] = math.nan
    b[list(b_nan)] = math.nan
    kept = [s for s in a.index if s not in a_nan | b_nan]
    d = stats.paired_difference(a, b)
    assert d.pairs == len(kept)
    if kept:
        assert d.mean == pytest.approx(float(np.mean(a[kept] - b[kept])), abs=1e-12)
    else:
        assert math.isnan(d.mean)
    diffs = (a[kept] - b[kept]).to_numpy()
    if len(kept) >= 2 and diffs.std(ddof=1) > 1e-12:
        assert d.p_value == pytest.approx(sps.ttest_rel(a[kept], b[kept]).pvalue, rel=1e-9)
    elif len(kept) < 2:
        assert math.isnan(d.p_value)


@st.composite
def runs_with_repeats(draw: st.DrawFn) -> pd.DataFrame:
    """Finished runs of two configurations, some seeds run more than once (newest last)."""
    records = []
    for name in ("base", "other"):
        for seed in draw(st.lists(st.integers(0, 7), min_size=1, max_size=14)):
            v = draw(value)  # every metric column gets the same value: only val_acc is read
            metrics = {m: v for m in (*compare.RUN_METRICS, *compare.CURVE_METRICS)}
            records.append({"label": name, "seed": seed, "path": f"{name}/{len(records)}",
                            "finished_at": float(draw(st.integers(0, 10**6))), **metrics})
    return pd.DataFrame.from_records(records)


@pytest.mark.slow
@settings(PROPERTY, max_examples=TABLE_EXAMPLES)
@given(runs_with_repeats())
def test_a_seed_run_twice_counts_once(done: pd.DataFrame) -> None:
    kept, warnings = compare.count_seeds_once(done)
    table, _ = compare.aggregate(kept, "base")
    rows = table.set_index("config")
    newest = (done.sort_values("finished_at", kind="stable")
              .groupby(["label", "seed"]).tail(1).set_index(["label", "seed"])["val_acc"])
    for name in ("base", "other"):
        seeds = set(done.loc[done["label"] == name, "seed"])
        assert rows.loc[name, "seeds"] == len(seeds)
        assert rows.loc[name, "val_acc_mean"] == pytest.approx(
            np.mean([newest[(name, s)] for s in seeds]), abs=1e-12)
    common = set(done.loc[done["label"] == "base", "seed"]) & set(
        done.loc[done["label"] == "other", "seed"])
    assert rows.loc["other", "pairs"] == len(common)
    if common:
        d = [newest[("other", s)] - newest[("base", s)] for s in common]
        assert rows.loc["other", "d_val_acc"] == pytest.approx(np.mean(d), abs=1e-12)
    repeated = done.groupby(["label", "seed"]).size()
    assert len(warnings) == int((repeated > 1).sum())
