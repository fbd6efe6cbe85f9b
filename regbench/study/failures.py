"""Runs left out of the evidence because they diverged, named in one line wherever it happens.

A diverged run (regbench.training.health) is never averaged into a comparison, a settle
round, a search score or a confirmation; each of them says how many were left out and which:
``2 of 12 runs diverged and are not compared: optim.lr=1e6 seeds 0, 1``.
"""

from __future__ import annotations

from collections.abc import Sequence

DIVERGED = "diverged"


def seeds_text(seeds: Sequence[int | None]) -> str:
    """'seed 0', 'seeds 0, 1', '' when no seed is known."""
    known = sorted({s for s in seeds if s is not None})
    if not known:
        return ""
    return ("seed " if len(known) == 1 else "seeds ") + ", ".join(map(str, known))


def diverged_line(left_out: Sequence[tuple[str, int | None]], total: int,
                  what: str = "compared") -> str | None:
    """One line naming the diverged runs (label, seed) among `total` runs, or None when
    none diverged; `what` the runs are not: compared, scored, confirmed."""
    if not left_out:
        return None
    by_label: dict[str, list[int | None]] = {}
    for label, seed in left_out:
        by_label.setdefault(label, []).append(seed)
    which = "; ".join(" ".join(p for p in (label, seeds_text(seeds)) if p)
                      for label, seeds in by_label.items())
    runs = "run" if total == 1 else "runs"
    are = "is" if len(left_out) == 1 else "are"
    return f"{len(left_out)} of {total} {runs} diverged and {are} not {what}: {which}"
