"""Settling a comparison in rounds without optional-stopping bias: repeated confidence intervals.

Adding seeds until an interval excludes 0, and looking after every round with a
fixed-sample interval, makes false "established" verdicts far more common than alpha.
A settle therefore plans its looks (the seeds per configuration after each round: 5, 10,
20, 40 by default) and spends its error rate over them:

- **alpha spending** (Lan & DeMets 1983): a spending function alpha(t) says how much of
  the error rate may be used up by information fraction t = pairs / planned maximum; the
  Pocock-type function alpha * ln(1 + (e - 1) t) spends it about evenly over the looks,
  the O'Brien-Fleming-type 2 - 2 Phi(z_{1-alpha/2} / sqrt(t)) keeps almost all of it for
  the last look;
- **repeated confidence intervals** (Jennison & Turnbull 1989): look i's interval is the
  paired Student t interval at the level of its share, alpha(t_i) - alpha(t_{i-1}). By
  Bonferroni's inequality over the looks, all the intervals of all looks cover the true
  difference together with probability at least 1 - alpha, whatever rule decides when to
  stop. Boundaries from the joint distribution of the looks (Armitage, McPherson & Rowe
  1969) would be a little narrower, but with the spread estimated from a few seeds their
  t version is only approximate, and errs on the liberal side; the union bound is exact
  for t intervals on normal differences, and its cost in seeds is small
  (scripts/settle_simulation.py measures the error rates and the seeds a settle takes).

Because the coverage is simultaneous over the looks, any verdict read off any look's
interval (established: it excludes 0; equivalent: it lies inside +-margin, see
regbench.study.equivalence) is a false claim with probability at most alpha, however many
rounds run and whenever the settle stops. With k configurations compared against one
baseline, alpha is split evenly between them (Bonferroni): alpha/k each, so the chance of
any false claim in a column of the table stays at most alpha.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from regbench.study import equivalence

SPENDING = ("pocock", "obrien_fleming")


@dataclass(frozen=True)
class Design:
    """What a settle fixes before it starts: error rate, comparisons, last look, spending."""

    alpha: float = 0.05  # familywise, per metric (column of the table)
    comparisons: int = 1  # k configurations against the baseline: alpha/k each (Bonferroni)
    max_pairs: int = 40  # seeds at the last planned look: information fraction 1
    spending: str = "pocock"  # pocock | obrien_fleming

    @property
    def alpha_each(self) -> float:
        return self.alpha / max(self.comparisons, 1)


def spent(t: float, alpha: float, spending: str) -> float:
    """Share of alpha used up by information fraction t (Lan & DeMets 1983), two-sided."""
    t = min(max(t, 0.0), 1.0)
    if t == 0:
        return 0.0
    if spending == "obrien_fleming":
        return float(2 * stats.norm.sf(stats.norm.isf(alpha / 2) / math.sqrt(t)))
    if spending == "pocock":
        return alpha * math.log(1 + (math.e - 1) * t)
    raise ValueError(f"spending {spending!r}: known are {', '.join(SPENDING)}")


def nominal_alphas(pairs: Sequence[int], design: Design) -> np.ndarray:
    """Two-sided level of each look's interval: its share of alpha_each under the spending
    function, for looks at these (increasing) pair counts."""
    fractions = [min(n / design.max_pairs, 1.0) for n in pairs]
    used = [spent(t, design.alpha_each, design.spending) for t in fractions]
    return np.diff(np.array([0.0, *used]))


def repeated_intervals(diffs: np.ndarray, pairs: Sequence[int], design: Design
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mean, sd, low, high), each of shape (..., looks): look i uses the first pairs[i] values.

    diffs holds paired differences along its last axis, in the order they were gathered
    (by seed); pairs must increase, each at least 2. Leading axes are independent
    comparisons (a simulation's settles, or one comparison).
    """
    means, sds, lows, highs = [], [], [], []
    for n, p in zip(pairs, nominal_alphas(pairs, design), strict=True):
        x = diffs[..., :n]
        mean, sd = x.mean(axis=-1), x.std(axis=-1, ddof=1)
        half = stats.t.isf(p / 2, n - 1) * sd / math.sqrt(n)
        means.append(mean)
        sds.append(sd)
        lows.append(mean - half)
        highs.append(mean + half)
    return tuple(np.stack(a, axis=-1) for a in (means, sds, lows, highs))  # type: ignore[return-value]


def planned_looks(start: int, growth: float, maximum: int) -> list[int]:
    """Seeds per configuration after each round: start, start*growth, ... up to maximum."""
    looks = [min(start, maximum)]
    while looks[-1] < maximum:
        looks.append(min(maximum, max(looks[-1] + 1, math.ceil(looks[-1] * growth))))
    return looks


@dataclass(frozen=True)
class Look:
    """One comparison at one look: its repeated confidence interval and verdict."""

    round: int  # the round after which it was taken (1-based)
    pairs: int
    d: float
    sd: float
    low: float
    high: float
    confidence: float  # nominal confidence of this look's interval (1 - p_i)
    verdict: str


def looks_of(a: pd.Series, b: pd.Series, rounds: Sequence[tuple[int, int]], design: Design,
             margin: float | None) -> list[Look]:
    """The looks of a - b, paired by seed: one after each round (number, seeds below which a
    seed belongs to it or an earlier one) that brought new pairs; rounds with fewer than 2
    pairs have no interval and are not looks."""
    d = (a - b).dropna().sort_index()
    chosen: list[tuple[int, int]] = []
    for number, below in rounds:
        n = int((d.index < below).sum())
        if n >= 2 and (not chosen or n > chosen[-1][1]):
            chosen.append((number, n))
    if not chosen:
        return []
    pairs = [n for _, n in chosen]
    values = d.to_numpy(dtype=float)
    mean, sd, low, high = repeated_intervals(values, pairs, design)
    alphas = nominal_alphas(pairs, design)
    return [Look(r, n, float(mean[i]), float(sd[i]), float(low[i]), float(high[i]),
                 float(1 - alphas[i]), equivalence.verdict(low[i], high[i], margin) or "undecided")
            for i, (r, n) in enumerate(chosen)]
