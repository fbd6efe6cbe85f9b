"""Statistics of a comparison: paired differences over seeds, adjusted for multiplicity.

Seeds are the unit of evidence. Against a baseline, each configuration's difference is
paired by seed (the same seed means the same initial weights, batch order and split, so
pairing removes that shared noise); the interval is Student's t on the paired
differences. When a table compares k > 1 configurations with one baseline, the verdicts
are Holm-adjusted (Holm 1979, a step-down Bonferroni: the familywise error rate stays at
most alpha however many configurations are shown) and the intervals are Bonferroni
simultaneous intervals (each at level 1 - alpha/k). How many seeds would resolve a
difference comes from the usual t-based sample-size formula for a paired design.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
POWER = 0.8  # the power "seeds needed" aims at (beta = 0.2)
MAX_SEEDS = 10_000  # beyond this, "seeds needed" is reported as not reachable


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
    """a - b over the seeds (the index) both series have; one value per seed in each."""
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


def holm(p_values: list[float], alpha: float = ALPHA) -> list[bool | None]:
    """Holm's step-down rejections (True: the difference is established); None for NaN p."""
    idx = [i for i, p in enumerate(p_values) if not math.isnan(p)]
    out: list[bool | None] = [None] * len(p_values)
    if idx:
        reject = multipletests([p_values[i] for i in idx], alpha=alpha, method="holm")[0]
        for i, r in zip(idx, reject, strict=True):
            out[i] = bool(r)
    return out


def simultaneous_confidence(k: int, confidence: float = CONFIDENCE) -> float:
    """Bonferroni: each of k intervals at 1 - alpha/k, so that all hold together at 1 - alpha."""
    return 1 - (1 - confidence) / max(k, 1)


def seeds_needed(d: float, sd: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """Seeds (pairs) for a two-sided paired t-test at level alpha to detect d with this power.

    n = ((t_{1-alpha/2, n-1} + t_{power, n-1}) * sd / d)^2, solved by iteration from the
    normal approximation (the t quantiles depend on n). Returns inf when d is 0 or the
    answer exceeds MAX_SEEDS, NaN when sd is unknown.
    """
    if math.isnan(sd) or math.isnan(d):
        return math.nan
    if d == 0:
        return math.inf
    ratio = (sd / abs(d)) ** 2
    n = (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) ** 2 * ratio
    if n > MAX_SEEDS:
        return math.inf
    for _ in range(100):
        df = max(math.ceil(n), 2) - 1
        nxt = (stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)) ** 2 * ratio
        if math.ceil(nxt) == math.ceil(n):
            break
        n = nxt
        if n > MAX_SEEDS:
            return math.inf
    return float(max(math.ceil(n), 2))


def compare_to_baseline(groups: dict[str, pd.Series], baseline: str, adjust: bool = True,
                        confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Each group's paired difference against the baseline, with adjusted intervals.

    groups: label -> one value per seed (index = seed). Returns one row per non-baseline
    group: d, low, high, pairs, p, established (Holm when adjust and k > 1), seeds_needed
    (for differences not established). k is the number of groups with an interval.
    """
    base = groups[baseline]
    diffs = {name: paired_difference(v, base) for name, v in groups.items() if name != baseline}
    k = sum(1 for d in diffs.values() if d.pairs >= 2)
    level = simultaneous_confidence(k, confidence) if adjust else confidence
    names = list(diffs)
    p_values = [diffs[n].p_value for n in names]
    if adjust and k > 1:
        verdicts = holm(p_values, 1 - confidence)
    else:
        verdicts = [None if math.isnan(p) else bool(p < 1 - confidence) for p in p_values]
    alpha_each = 1 - level
    rows = []
    for name, established in zip(names, verdicts, strict=True):
        d = diffs[name]
        low, high = d.interval(level)
        needed = np.nan if established is not False else seeds_needed(d.mean, d.sd, alpha_each)
        rows.append({"config": name, "d": d.mean, "low": low, "high": high, "pairs": d.pairs,
                     "p": d.p_value, "established": established, "seeds_needed": needed})
    return pd.DataFrame.from_records(rows, columns=["config", "d", "low", "high", "pairs", "p",
                                                     "established", "seeds_needed"])
