"""Statistics of a comparison: paired differences over seeds and their intervals."""

from __future__ import annotations

import math

import pandas as pd
from scipy import stats

CONFIDENCE = 0.95


def paired_difference(runs_a: pd.DataFrame, runs_b: pd.DataFrame, column: str
                      ) -> tuple[float, float, float, int]:
    """(mean, low, high, pairs) of a − b over the seeds both have; a 95% t-interval.

    With fewer than two pairs there is no interval (low and high are NaN). Repeated runs
    of one seed are averaged first.
    """
    a = runs_a.groupby("seed")[column].mean()
    b = runs_b.groupby("seed")[column].mean()
    d = (a - b).dropna()
    n = len(d)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(d.mean())
    if n < 2:
        return mean, math.nan, math.nan, 1
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df=n - 1) * d.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half, n


