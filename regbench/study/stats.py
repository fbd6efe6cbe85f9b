"""Statistics of a comparison: paired differences over seeds, adjusted for multiplicity.

Seeds are the unit of evidence. Against a baseline, each configuration's difference is
paired by seed (the same seed means the same initial weights, batch order and split, so
pairing removes that shared noise); the interval is Student's t on the paired
differences. When a table compares k > 1 configurations with one baseline, verdicts and
intervals come from one procedure, Holm's step-down test (Holm 1979: the familywise error
rate stays at most alpha however many configurations are shown): the j-th smallest
p-value is tested at alpha/(k-j+1), and its interval is the t-interval at that step's
confidence 1 - alpha/(k-j+1); a difference that is not established gets its interval at
the level of the first step that failed. So an interval excludes 0 exactly when its
difference is established. Each interval alone covers the true difference with at least
1 - alpha (its level is never below that); the k intervals together are not a
simultaneous set (compatible simultaneous bounds exist, Strassburger & Bretz 2008, but
they give up the size of an established difference). How many seeds would resolve a
difference comes from the usual t-based sample-size formula for a paired design.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
POWER = 0.8  # the power "seeds needed" aims at (beta = 0.2)
MAX_SEEDS = 10_000  # beyond this, "seeds needed" is reported as not reachable (inf)
COLUMNS = ["config", "d", "low", "high", "level", "pairs", "p", "established", "seeds_needed"]


@dataclass(frozen=True)
class Difference:
    """A paired difference a - b over the seeds both configurations have."""

    mean: float
    sd: float  # sample standard deviation of the per-seed differences (ddof=1)
    pairs: int
    p_value: float  # two-sided one-sample t-test of mean 0 (NaN with fewer than 2 pairs)

    def interval(self, confidence: float = CONFIDENCE) -> tuple[float, float]:
        """Student-t interval on the mean difference at this confidence (NaN: < 2 pairs)."""
        if self.pairs < 2:
            return math.nan, math.nan
        half = stats.t.ppf(0.5 + confidence / 2, df=self.pairs - 1) * self.sd / math.sqrt(self.pairs)
        return self.mean - half, self.mean + half


def paired_difference(a: pd.Series, b: pd.Series) -> Difference:
    """a - b over the seeds (the index) both series have; one value per seed in each.

    A seed whose value is NaN in either series is not a pair. A seed listed twice in one
    series is a caller's error (ValueError): regbench.study.compare keeps one run per seed.
    """
    for s in (a, b):
        if s.index.has_duplicates:
            raise ValueError(f"seeds listed twice: {sorted(set(s.index[s.index.duplicated()]))}")
    d = (a - b).dropna()
    n = len(d)
    if n == 0:
        return Difference(math.nan, math.nan, 0, math.nan)
    mean = float(d.mean())
    if n < 2:
        return Difference(mean, math.nan, 1, math.nan)
    sd = float(d.std(ddof=1))
    if sd <= 1e-12 * max(1.0, abs(mean)):  # identical differences (up to rounding): certain
        return Difference(mean, 0.0, n, 1.0 if mean == 0 else 0.0)
    p = float(stats.ttest_1samp(d.to_numpy(), 0.0).pvalue)
    return Difference(mean, sd, n, p)


@dataclass(frozen=True)
class Step:
    """Holm's decision on one hypothesis and the confidence of the interval shown with it."""

    established: bool | None  # None: no p-value (fewer than 2 pairs)
    level: float  # confidence of its interval; NaN without a p-value


def holm_steps(p_values: list[float], alpha: float = ALPHA) -> list[Step]:
    """Holm's step-down test (Holm 1979) and, for each hypothesis, its interval's level.

    The k non-NaN p-values are sorted; the j-th smallest is rejected when it and every
    smaller one satisfy p_(i) <= alpha/(k-i+1). A rejected hypothesis's level is
    1 - alpha/(k-j+1) at its own step; the others share the level of the first step that
    failed. Ties keep their input order (either order gives the same verdicts).
    """
    order = sorted((i for i, p in enumerate(p_values) if not math.isnan(p)),
                   key=lambda i: p_values[i])
    k = len(order)
    steps = [Step(None, math.nan)] * len(p_values)
    stopped_at: float | None = None  # the level of the first step that failed
    for j, i in enumerate(order):  # j = 0: the smallest p-value
        if stopped_at is None:
            alpha_j = alpha / (k - j)
            if p_values[i] <= alpha_j:
                steps[i] = Step(True, 1 - alpha_j)
                continue
            stopped_at = 1 - alpha_j
        steps[i] = Step(False, stopped_at)
    return steps


def holm(p_values: list[float], alpha: float = ALPHA) -> list[bool | None]:
    """Holm's step-down rejections (True: the difference is established); None for NaN p."""
    return [s.established for s in holm_steps(p_values, alpha)]


def seeds_formula(n: int, ratio: float, alpha: float, power: float) -> float:
    """((t_{1-alpha/2, n-1} + t_{power, n-1}) * sd/d)^2, with ratio = (sd/d)^2."""
    return (stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(power, n - 1)) ** 2 * ratio


def seeds_needed(d: float, sd: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """Seeds (pairs) for a two-sided paired t-test at level alpha to detect d with this power.

    The smallest n >= 2 with n >= seeds_formula(n), found by bisection: the formula falls
    as n grows (both t quantiles shrink towards the normal ones when power >= 0.5), so
    every n above the answer satisfies it too. Returns inf when d is 0 or the answer
    exceeds MAX_SEEDS, NaN when d or sd is unknown.
    """
    if not (0 < alpha < 1 and 0.5 <= power < 1):
        raise ValueError(f"seeds_needed: alpha {alpha} must lie in (0, 1), power {power} in [0.5, 1)")
    if math.isnan(sd) or math.isnan(d):
        return math.nan
    if d == 0:
        return math.inf
    ratio = (sd / d) ** 2

    def enough(n: int) -> bool:
        return n >= seeds_formula(n, ratio, alpha, power)

    candidates = range(2, MAX_SEEDS + 1)
    first = bisect.bisect_left(candidates, True, key=enough)  # enough: False... then True...
    return float(candidates[first]) if first < len(candidates) else math.inf


def compare_to_baseline(groups: dict[str, pd.Series], baseline: str, adjust: bool = True,
                        confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Each group's paired difference against the baseline, its interval and verdict.

    groups: label -> one value per seed (index = seed). Returns one row per non-baseline
    group (COLUMNS): d, its interval [low, high] at confidence `level`, pairs, p,
    established and seeds_needed (for differences not established, at the interval's
    level). With adjust, the groups that have a p-value are one Holm family (holm_steps);
    without, each is tested alone at 1 - confidence.
    """
    alpha = 1 - confidence
    base = groups[baseline]
    diffs = {name: paired_difference(v, base) for name, v in groups.items() if name != baseline}
    p_values = [d.p_value for d in diffs.values()]
    steps = holm_steps(p_values, alpha) if adjust else [holm_steps([p], alpha)[0] for p in p_values]
    rows = []
    for (name, d), step in zip(diffs.items(), steps, strict=True):
        low, high = d.interval(step.level)
        needed = (seeds_needed(d.mean, d.sd, 1 - step.level) if step.established is False
                  else np.nan)
        rows.append({"config": name, "d": d.mean, "low": low, "high": high, "level": step.level,
                     "pairs": d.pairs, "p": d.p_value, "established": step.established,
                     "seeds_needed": needed})
    table = pd.DataFrame.from_records(rows, columns=COLUMNS)
    table["established"] = table["established"].astype(object)  # True / False / None, never numpy
    return table
