"""A comparison as text cells, a caption and markdown: what every renderer shows.

The terminal (regbench.terminal) lays these cells out in a rich table; markdown and the
report page use them as they are.
"""

from __future__ import annotations

import math

import pandas as pd

from regbench.compare import DIFFERENCES, Comparison
from regbench.stats import CONFIDENCE


def _pm(mean: float, std: float, scale: float = 100, sign: str = "", sep: str = "\n") -> str:
    """'97.21' and '± 0.30' on a second line (no std with a single seed)."""
    if math.isnan(mean):
        return "-"
    text = f"{scale * mean:{sign}.2f}"
    return text if math.isnan(std) else f"{text}{sep}± {scale * std:.2f}"


def _difference(row: pd.Series, metric: str, sep: str = "\n") -> str:
    """'+1.23' then '[+0.40, +2.06]' in points, and 'within noise' when the interval holds 0."""
    if row["baseline"]:
        return "baseline"
    mean, low, high = (row[f"d_{metric}"], row[f"d_{metric}_low"], row[f"d_{metric}_high"])
    if math.isnan(mean):
        return "no seed in common"
    if math.isnan(low):
        return f"{100 * mean:+.2f}{sep}no interval{sep}(1 seed)"
    text = f"{100 * mean:+.2f}{sep}[{100 * low:+.2f},{sep}{100 * high:+.2f}]"
    return text + (f"{sep}within noise" if row[f"{metric}_within_noise"] else "")


def display_rows(comp: Comparison, sep: str = "\n") -> tuple[list[str], list[list[str]]]:
    """Header and text cells of the comparison, as the terminal and markdown show it."""
    # two-line headers keep the columns as narrow as their numbers
    header = ["configuration", "seeds", "val|acc %", "train|acc %", "gap|pts", "gap|loss",
              "best|epoch", "test|acc %", "time|s"]
    if comp.baseline is not None:
        header[7:7] = ["Δ val acc|(pts)", "Δ gap|(pts)"]
    header = [h.replace("|", sep) for h in header]
    rows = []
    for _, r in comp.table.iterrows():
        cells = [r["config"] + (f"{sep}(best)" if r["best"] else ""), str(r["seeds"]),
                 _pm(r["val_acc_mean"], r["val_acc_std"], sep=sep),
                 _pm(r["train_acc_mean"], math.nan),
                 _pm(r["gap_acc_mean"], r["gap_acc_std"], sign="+", sep=sep),
                 f"{r['gap_loss_mean']:+.3f}",
                 f"{r['best_epoch_mean']:.1f}", _pm(r["test_acc_mean"], math.nan),
                 f"{r['wall_time_s_mean']:.1f}"]
        if comp.baseline is not None:
            cells[7:7] = [_difference(r, m, sep) for m in DIFFERENCES]
        rows.append(cells)
    return header, rows


def caption(comp: Comparison) -> str:
    """How to read the table, in one paragraph."""
    text = ("Mean (± sample std, ddof=1) over seeds, at each run's best epoch (lowest val loss, "
            "or the early-stopping monitor); gap = train − val accuracy in points, gap loss = "
            "val − train loss; time = wall time per run. ")
    if comp.baseline is not None:
        text += (f"Δ = difference in points against the baseline ({comp.baseline}), paired by "
                 f"seed, with its {CONFIDENCE:.0%} t-interval [low, high]; 'within noise': the "
                 "interval contains 0, so these seeds do not show a real difference.")
    else:
        text += f"No baseline: {comp.note}."
    return text


def markdown(comp: Comparison) -> str:
    """The comparison as a GitHub-flavoured markdown table with its caption."""
    header, rows = display_rows(comp, sep=" ")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for cells in rows]
    return "\n".join(lines) + "\n\n" + caption(comp) + "\n" + failed_text(comp)


def failed_text(comp: Comparison) -> str:
    """The runs left out of the averages, one line each, or ''."""
    if comp.failed.empty:
        return ""
    lines = [f"Not averaged in ({len(comp.failed)} run(s) failed, diverged or unfinished):"]
    lines += [f"  {r.path}: {r.status}: {r.error}" for r in comp.failed.itertuples()]
    return "\n".join(lines) + "\n"
