"""Equivalence: showing that a difference is smaller than a margin that matters.

"Within noise" is not "no effect". A difference is *equivalent* (to no difference, within
a margin M) when two one-sided tests reject both "d <= -M" and "d >= +M" (TOST,
Schuirmann 1987). Each one-sided test at level alpha/2 rejects exactly when the two-sided
(1 - alpha) interval lies inside (-M, +M), so the verdict is read off the interval printed
beside it and can never contradict it.

Three verdicts, from one interval:
- established: the interval excludes 0 (the sign of the difference is known);
- equivalent: the interval lies inside (-M, +M), and does not exclude 0;
- undecided: neither, with an estimate of the seeds that would decide it.
An interval that excludes 0 and lies inside the margin is reported as established: the
difference is real, and smaller than M.

The margin is the user's statement of what difference matters. Metrics are stored as
fractions in [0, 1]; margins are given in points of accuracy (0.5 = half a point).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from regbench.study.stats import MAX_SEEDS, POWER, paired_difference

ESTABLISHED, EQUIVALENT, UNDECIDED = "established", "equivalent", "undecided"
VERDICTS = (ESTABLISHED, EQUIVALENT, UNDECIDED)
# Default margins in points of accuracy, per difference column: half a point of val accuracy
# is about the seed-to-seed spread of a small CNN on 500 MNIST images, and the same for the
# accuracy gaps. Differences in other units (epochs, images/s) get no margin by default.
DEFAULT_MARGINS_PTS = {"val_acc": 0.5, "gap_acc": 0.5, "gap_acc_last": 0.5}


def margins(points: float | None = None) -> dict[str, float]:
    """Margin per difference column as a fraction: the defaults, or `points` for them all."""
    return {metric: (default if points is None else points) / 100
            for metric, default in DEFAULT_MARGINS_PTS.items()}


def verdict(low: float, high: float, margin: float | None) -> str | None:
    """established, equivalent or undecided from an interval; None without an interval."""
    if math.isnan(low) or math.isnan(high):
        return None
    if low > 0 or high < 0:
        return ESTABLISHED
    if margin is not None and -margin < low and high < margin:
        return EQUIVALENT
    return UNDECIDED


def verdicts(low: np.ndarray, high: np.ndarray, margin: float | None) -> np.ndarray:
    """verdict() over arrays of intervals (NaN bounds: undecided), for simulations."""
    out = np.full(np.shape(low), UNDECIDED, dtype=object)
    if margin is not None:
        out[(-margin < low) & (high < margin)] = EQUIVALENT
    out[(low > 0) | (high < 0)] = ESTABLISHED
    return out


def seeds_to_show_equivalence(d: float, sd: float, margin: float, alpha: float,
                              power: float = POWER) -> float:
    """Smallest n whose (1 - alpha) t-interval is expected to fit inside +-margin with this power.

    The usual approximation for TOST's sample size (Chow, Shao & Wang 2008, ch. 3):
    (t_{1-alpha/2, n-1} + t_{power, n-1}) * sd / sqrt(n) <= margin - |d|. The left side
    falls as n grows, so the answer is found by bisection over n. inf when |d| >= margin or
    the answer exceeds MAX_SEEDS, NaN when d or sd is unknown.
    """
    if math.isnan(d) or math.isnan(sd):
        return math.nan
    room = margin - abs(d)
    if room <= 0:
        return math.inf
    if sd == 0:
        return 2.0

    def enough(n: int) -> bool:
        half = (stats.t.isf(alpha / 2, n - 1) + stats.t.ppf(power, n - 1)) * sd / math.sqrt(n)
        return bool(half <= room)

    if not enough(MAX_SEEDS):
        return math.inf
    low, high = 1, MAX_SEEDS  # enough(high) holds; n = 1 has no interval
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return float(high)


def judge(groups: dict[str, pd.Series], baseline: str, established: pd.Series,
          margin: float | None, adjust: bool = True, alpha: float = 0.05) -> pd.DataFrame:
    """The equivalence verdict of each group's paired difference against the baseline.

    groups: label -> one value per seed; established: label -> the comparison's own
    verdict (True, False, None). A difference is equivalent when it is not established
    and its interval at the Bonferroni level 1 - alpha/k (k: groups with an interval; 1
    without adjust) lies inside +-margin: the k TOST tests then hold their familywise
    error at alpha whatever the others show. That interval is never narrower than the one
    the table prints, so "equivalent" never sits beside an interval reaching past the
    margin. Returns, per group: equivalent (None without an interval or a margin),
    verdict, and seeds_to_equivalent (for undecided differences).
    """
    base = groups[baseline]
    diffs = {name: paired_difference(v, base) for name, v in groups.items() if name != baseline}
    k = sum(1 for d in diffs.values() if d.pairs >= 2) if adjust else 1
    level = 1 - alpha / max(k, 1)
    rows = []
    for name, d in diffs.items():
        low, high = d.interval(level)
        said = established.get(name)
        if d.pairs < 2 or said is None or pd.isna(said):
            rows.append((name, None, None, math.nan))
            continue
        equivalent = margin is not None and not said and -margin < low and high < margin
        verdict_ = ESTABLISHED if said else EQUIVALENT if equivalent else UNDECIDED
        needed = (seeds_to_show_equivalence(d.mean, d.sd, margin, 1 - level)
                  if verdict_ == UNDECIDED and margin is not None else math.nan)
        rows.append((name, None if margin is None else bool(equivalent), verdict_, needed))
    return pd.DataFrame.from_records(
        rows, columns=["config", "equivalent", "verdict", "seeds_to_equivalent"]).set_index("config")
