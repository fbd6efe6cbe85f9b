"""The statistics of equivalence and of a settle, checked against scipy/statsmodels, hand
computations and simulation (numbers only: no training, seconds in all)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.weightstats import DescrStatsW

from regbench.study import equivalence, sequential
from regbench.study.equivalence import EQUIVALENT, ESTABLISHED, UNDECIDED
from regbench.study.sequential import Design

LOOKS = [5, 10, 20, 40]  # the default settle: 5 seeds, doubling, 40 at most


def three_sd(alpha: float, n: int) -> float:
    """Monte Carlo error allowed on a rate near alpha over n simulated settles: 3 binomial sd."""
    return 3 * math.sqrt(alpha * (1 - alpha) / n)


# ------------------------------------------------------------------------------ equivalence


def hand_tost(x: np.ndarray, margin: float, alpha: float) -> bool:
    """Two one-sided t-tests (Schuirmann 1987) at alpha/2 each: d > -margin and d < +margin."""
    above = stats.ttest_1samp(x, -margin, alternative="greater").pvalue
    below = stats.ttest_1samp(x, margin, alternative="less").pvalue
    return bool(max(above, below) < alpha / 2)


def test_equivalent_exactly_when_both_one_sided_tests_reject() -> None:
    rng = np.random.default_rng(3)
    seen = set()
    for _ in range(400):
        n = int(rng.integers(3, 30))
        x = rng.normal(rng.uniform(-0.6, 0.6), rng.uniform(0.1, 1.0), n)
        margin, alpha = 0.5, float(rng.choice([0.05, 0.05 / 3]))
        low, high = DescrStatsW(x).tconfint_mean(alpha)
        verdict = equivalence.verdict(low, high, margin)
        established = stats.ttest_1samp(x, 0.0).pvalue < alpha
        assert (verdict == ESTABLISHED) == established
        if not established:
            assert (verdict == EQUIVALENT) == hand_tost(x, margin, alpha)
        seen.add(verdict)
    assert seen == {ESTABLISHED, EQUIVALENT, UNDECIDED}  # the draws reach all three


def test_statsmodels_tost_agrees_on_paired_samples() -> None:
    from statsmodels.stats.weightstats import ttost_paired

    rng = np.random.default_rng(4)
    for _ in range(100):
        base = rng.normal(0.9, 0.02, 12)
        other = base + rng.normal(rng.uniform(-0.004, 0.004), 0.003, 12)
        margin, alpha = 0.005, 0.05
        p = ttost_paired(other, base, -margin, margin)[0]
        low, high = DescrStatsW(other - base).tconfint_mean(alpha)
        if not (low > 0 or high < 0):
            assert (equivalence.verdict(low, high, margin) == EQUIVALENT) == (p < alpha / 2)


def test_vectorised_verdicts_match_the_scalar_ones() -> None:
    rng = np.random.default_rng(5)
    low = rng.uniform(-1, 1, 500)
    high = low + rng.uniform(0, 1, 500)
    assert list(equivalence.verdicts(low, high, 0.4)) == [
        equivalence.verdict(lo, hi, 0.4) for lo, hi in zip(low, high, strict=True)]
    assert equivalence.verdict(math.nan, math.nan, 0.4) is None
    assert equivalence.verdict(-0.1, 0.1, None) == UNDECIDED  # no margin: never equivalent


def test_margins_are_points_of_accuracy() -> None:
    assert equivalence.margins() == {"val_acc": 0.005, "gap_acc": 0.005, "gap_acc_last": 0.005}
    assert equivalence.margins(1.0)["val_acc"] == pytest.approx(0.01)


@pytest.mark.parametrize("d,sd", [(0.0, 1.0), (0.1, 0.5), (0.2, 1.3), (-0.3, 0.2), (0.45, 0.1)])
def test_seeds_to_show_equivalence_is_the_smallest_n_by_brute_force(d: float, sd: float) -> None:
    margin, alpha, power = 0.5, 0.05 / 3, 0.8

    def fits(n: int) -> bool:
        half = (stats.t.isf(alpha / 2, n - 1) + stats.t.ppf(power, n - 1)) * sd / math.sqrt(n)
        return half <= margin - abs(d)

    brute = next(n for n in range(2, 100_000) if fits(n))
    assert equivalence.seeds_to_show_equivalence(d, sd, margin, alpha, power) == brute
    assert equivalence.seeds_to_show_equivalence(0.6, sd, margin, alpha) == math.inf


# --------------------------------------------------------------------- spending and looks


def test_spending_functions_use_alpha_up_by_the_last_look() -> None:
    for kind in sequential.SPENDING:
        shares = [sequential.spent(t, 0.05, kind) for t in np.linspace(0, 1, 11)]
        assert shares[0] == 0 and shares[-1] == pytest.approx(0.05)
        assert all(a < b for a, b in zip(shares, shares[1:]))
    # O'Brien-Fleming type at t = 1/4: 2 - 2 Phi(1.95996 / 0.5), by hand
    assert sequential.spent(0.25, 0.05, "obrien_fleming") == pytest.approx(
        2 * (1 - stats.norm.cdf(1.959964 / 0.5)), rel=1e-5)
    assert sequential.spent(0.25, 0.05, "pocock") == pytest.approx(0.05 * math.log(1 + (math.e - 1) / 4))


def test_the_looks_levels_add_up_to_alpha_over_k() -> None:
    design = Design(alpha=0.05, comparisons=3, max_pairs=40)
    levels = sequential.nominal_alphas(LOOKS, design)
    assert levels.sum() == pytest.approx(0.05 / 3) and (levels > 0).all()
    assert sequential.planned_looks(5, 2.0, 40) == LOOKS
    assert sequential.planned_looks(5, 2.0, 30) == [5, 10, 20, 30]
    assert sequential.planned_looks(2, 1.5, 5) == [2, 3, 5]


def test_each_look_is_the_t_interval_at_its_share() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(0.3, 1.0, 40)
    design = Design(comparisons=2)
    mean, sd, low, high = sequential.repeated_intervals(x, LOOKS, design)
    for i, (n, p) in enumerate(zip(LOOKS, sequential.nominal_alphas(LOOKS, design), strict=True)):
        lo, hi = DescrStatsW(x[:n]).tconfint_mean(p)
        assert (low[i], high[i]) == pytest.approx((lo, hi))
        assert mean[i] == pytest.approx(x[:n].mean()) and sd[i] == pytest.approx(x[:n].std(ddof=1))


def test_looks_of_pair_by_seed_and_skip_rounds_without_new_pairs() -> None:
    a = pd.Series({s: 0.9 + 0.01 * s for s in range(10)})
    b = pd.Series({s: 0.9 for s in range(10) if s != 7})  # seed 7 of the baseline failed
    looks = sequential.looks_of(a, b, [(1, 1), (2, 5), (3, 5), (4, 10)], Design(max_pairs=10), 0.005)
    assert [(lk.round, lk.pairs) for lk in looks] == [(2, 5), (4, 9)]  # round 1: one pair only
    d = (a - b).dropna()
    assert looks[-1].d == pytest.approx(d.mean()) and looks[0].d == pytest.approx(d[d.index < 5].mean())


# ------------------------------------------------------------------------------ simulation


def simulate_settles(effect: float, n: int, k: int = 3, margin: float = 0.5, sd: float = 1.0,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n simulated settles of k configurations against one baseline, on paired differences.

    Each configuration and the baseline draw one value per seed, so the k differences share
    the baseline's noise (correlated, as in a real table). A configuration stops at its
    first decided look; a settle's rounds are its last configuration's look. Returns each
    configuration's final verdict (n, k) and each settle's number of rounds (n,).
    """
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0, sd / math.sqrt(2), (n, 1, LOOKS[-1]))
    configs = rng.normal(effect, sd / math.sqrt(2), (n, k, LOOKS[-1]))
    design = Design(alpha=0.05, comparisons=k, max_pairs=LOOKS[-1])
    _, _, low, high = sequential.repeated_intervals(configs - base, LOOKS, design)
    verdicts = equivalence.verdicts(low, high, margin)
    decided = verdicts != UNDECIDED
    stop = np.where(decided.any(axis=-1), decided.argmax(axis=-1), len(LOOKS) - 1)
    final = np.take_along_axis(verdicts, stop[..., None], axis=-1)[..., 0]
    return final, stop.max(axis=-1) + 1


SETTLES = 4000


def test_no_effect_rarely_gives_a_false_established() -> None:
    final, _ = simulate_settles(effect=0.0, n=SETTLES)
    familywise = (final == ESTABLISHED).any(axis=1).mean()
    assert familywise <= 0.05 + three_sd(0.05, SETTLES)  # 0.05 + 0.0103


@pytest.mark.parametrize("effect", [1.0, 0.5])  # twice the margin, and the margin itself
def test_an_effect_outside_the_margin_rarely_gives_a_false_equivalent(effect: float) -> None:
    final, _ = simulate_settles(effect=effect, n=SETTLES, margin=0.5, sd=0.5)
    familywise = (final == EQUIVALENT).any(axis=1).mean()
    assert familywise <= 0.05 + three_sd(0.05, SETTLES)


def test_no_effect_and_a_wide_margin_end_equivalent() -> None:
    final, _ = simulate_settles(effect=0.0, n=SETTLES, margin=1.0, sd=0.5)
    assert (final == EQUIVALENT).mean() > 0.9  # what equivalence is for: "no effect above M"


def test_a_large_effect_settles_in_the_first_or_second_round() -> None:
    final, rounds = simulate_settles(effect=4.0, n=SETTLES)
    assert (final == ESTABLISHED).all()
    assert rounds.max() <= 2


def test_the_fixed_sample_look_after_every_round_would_not_be_valid() -> None:
    # the same settles judged by an unadjusted 95% t-interval at every look: optional
    # stopping inflates the false "established" rate far above alpha
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, 1.0, (SETTLES, LOOKS[-1]))
    naive = np.zeros(SETTLES, dtype=bool)
    for n in LOOKS:
        t = x[:, :n].mean(1) / (x[:, :n].std(1, ddof=1) / math.sqrt(n))
        naive |= np.abs(t) > stats.t.isf(0.025, n - 1)
    assert naive.mean() > 0.05 + three_sd(0.05, SETTLES)
