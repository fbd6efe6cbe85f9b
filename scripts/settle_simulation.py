"""Error rates and cost of `regbench sweep --settle`, by simulation on paired differences.

Prints, for the default design (5, 10, 20, 40 seeds per configuration, k = 3 comparisons
against one baseline, alpha 0.05, margin 0.5 points) and both spending functions:
- the familywise rate of false "established" with no true effect, and of false
  "equivalent" with a true effect at the margin and at twice the margin, each with its
  Monte Carlo standard error;
- for effects of several sizes (in units of the paired standard deviation), the mean
  seeds per configuration and the share decided by round 2;
- what a fixed-sample 95% interval checked after every round would give instead.
No training: numbers only, a few seconds. Usage: python scripts/settle_simulation.py [N]
"""

from __future__ import annotations

import math
import platform
import sys
import time

import numpy as np
from scipy import stats

from regbench.study import equivalence, sequential
from regbench.study.equivalence import EQUIVALENT, ESTABLISHED, UNDECIDED

LOOKS = [5, 10, 20, 40]
K = 3


def settles(effect: float, sd: float, margin: float, spending: str, n: int, seed: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """Final verdicts (n, K) and seeds per configuration at stop (n, K) of n settles."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.0, sd / math.sqrt(2), (n, 1, LOOKS[-1]))
    configs = rng.normal(effect, sd / math.sqrt(2), (n, K, LOOKS[-1]))
    design = sequential.Design(alpha=0.05, comparisons=K, max_pairs=LOOKS[-1], spending=spending)
    _, _, low, high = sequential.repeated_intervals(configs - base, LOOKS, design)
    verdicts = equivalence.verdicts(low, high, margin)
    decided = verdicts != UNDECIDED
    stop = np.where(decided.any(-1), decided.argmax(-1), len(LOOKS) - 1)
    final = np.take_along_axis(verdicts, stop[..., None], -1)[..., 0]
    return final, np.array(LOOKS)[stop]


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    t0 = time.time()
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"python scripts/settle_simulation.py {n}; {platform.node()} ({platform.machine()}, "
          f"Python {platform.python_version()})")
    print(f"# {n:,} simulated settles per line; looks {LOOKS} seeds per configuration; k = {K} "
          "configurations against one baseline (sharing its noise); alpha 0.05 per column")
    mc = math.sqrt(0.05 * 0.95 / n)
    for spending in sequential.SPENDING:
        print(f"\n## {spending} spending")
        final, _ = settles(0.0, 1.0, 0.5, spending, n, 1)
        rate = (final == ESTABLISHED).any(1).mean()
        print(f"false established, no effect:           {rate:.4f} (MC sd {mc:.4f})")
        for effect in (0.5, 1.0):
            final, _ = settles(effect, 0.5, 0.5, spending, n, 2)
            rate = (final == EQUIVALENT).any(1).mean()
            print(f"false equivalent, effect {effect / 0.5:g} x margin:    {rate:.4f} (MC sd {mc:.4f})")
        print("effect/sd  mean seeds  decided by round 2  established  equivalent")
        for effect in (0.0, 0.25, 0.5, 1.0, 1.7, 2.5, 4.0):
            final, seeds = settles(effect, 1.0, 0.36, spending, n // 4, 3)
            by2 = (seeds <= LOOKS[1]).mean()
            print(f"{effect:9.2f}  {seeds.mean():10.1f}  {by2:18.2f}  "
                  f"{(final == ESTABLISHED).mean():11.2f}  {(final == EQUIVALENT).mean():10.2f}")
    rng = np.random.default_rng(4)
    x = rng.normal(0.0, 1.0, (n, LOOKS[-1]))
    naive = np.zeros(n, dtype=bool)
    for m in LOOKS:
        t = x[:, :m].mean(1) / (x[:, :m].std(1, ddof=1) / math.sqrt(m))
        naive |= np.abs(t) > stats.t.isf(0.025, m - 1)
    print(f"\nfixed 95% t-interval after every round, one comparison, no effect: false "
          f"established {naive.mean():.4f} (nominal 0.05)")
    print(f"# {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
