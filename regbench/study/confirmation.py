"""A confirmation's table: each confirmed candidate against the baseline, from a comparison.

The confirmation grid (regbench.launch.confirm) runs a search's best trials and the
baseline over fresh seeds; its comparison (regbench.study.compare, paired by seed and
adjusted for the number of candidates) gives each candidate's difference, interval and
verdict. A row adds what the search believed: the trial's one-seed score, and so how far
it overestimated the confirmed mean (the winner's curse).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regbench.study.compare import Comparison


@dataclass
class Candidate:
    """One of a search's best trials: its number, its searched values, its search-time score."""

    trial: int
    values: list[str]  # the searched keys' overrides, e.g. ['reg.dropout.fc=0.43905080314185985']
    score: float  # the trial's val accuracy at its best epoch in the search (one seed)


@dataclass
class ConfirmRow:
    """A candidate (or the baseline) after confirmation; fractions, differences in [0, 1] units."""

    name: str  # 'trial 7' or 'baseline'
    values: list[str]
    search: float | None  # the search-time score (None for the baseline)
    seeds: int
    mean: float | None  # confirmed val accuracy, mean over the fresh seeds
    std: float | None
    d: float | None = None  # confirmed minus baseline, paired by seed
    low: float | None = None
    high: float | None = None
    verdict: str = ""  # better | worse | within noise | undecided

    @property
    def overestimate(self) -> float | None:
        """How far the search-time score exceeded the confirmed mean."""
        if self.search is None or self.mean is None:
            return None
        return self.search - self.mean


def rows(comp: Comparison, chosen: list[Candidate], baseline: list[str], baseline_dirs: list[Path],
         candidate_dirs: dict[int, list[Path]]) -> list[ConfirmRow]:
    """The confirmation table: the baseline, then each candidate with its verdict."""
    table = comp.table.set_index("config")
    label_of = dict(zip(comp.runs["path"], comp.runs["label"], strict=True))

    def label(dirs: list[Path]) -> str | None:
        return next((label_of[str(d)] for d in dirs if str(d) in label_of), None)

    def row(name: str, values: list[str], search: float | None, dirs: list[Path]) -> ConfirmRow:
        lab = label(dirs)
        if lab is None or lab not in table.index:
            return ConfirmRow(name, values, search, 0, None, None, verdict="no finished run")
        r = table.loc[lab]
        out = ConfirmRow(name, values, search, int(r["seeds"]), _num(r["val_acc_mean"]),
                         _num(r["val_acc_std"]))
        if "d_val_acc" in table.columns and lab != comp.baseline:
            out.d, out.low, out.high = (_num(r["d_val_acc"]), _num(r["d_val_acc_low"]),
                                        _num(r["d_val_acc_high"]))
            established = r["val_acc_established"]
            if established is None or (isinstance(established, float) and math.isnan(established)):
                out.verdict = "undecided"
            elif established:
                out.verdict = "better" if (out.d or 0) > 0 else "worse"
            else:
                out.verdict = "within noise"
        return out

    out = [row("baseline", baseline, None, baseline_dirs)]
    out += [row(f"trial {c.trial}", c.values, c.score, candidate_dirs[c.trial]) for c in chosen]
    return out


def _num(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)
