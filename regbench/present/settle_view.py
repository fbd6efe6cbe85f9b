"""What a settle shows: its plan, one line per round, the end, and its intervals round by round.

The comparison table itself is regbench.present.tables (its caption names the sequential
method); this module adds what only a settle has: rounds.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only: no display needed

import matplotlib.pyplot as plt  # noqa: E402

from regbench.present import terminal  # noqa: E402
from regbench.present.tables import SPENDING_WORDS, bounds, seeds_to_decide  # noqa: E402
from regbench.text import plural  # noqa: E402
from regbench.study.stats import MAX_SEEDS  # noqa: E402
from regbench.store.settle_record import SETTLED, Round, SettleRecord  # noqa: E402

if TYPE_CHECKING:
    from rich.console import Console

    from regbench.study.compare import Comparison

SETTLE_PLOT = "settle.png"
# What each settled metric is called on the page, in points.
METRIC_WORDS = {"val_acc": "Δ val acc", "gap_acc": "Δ gap at best epoch",
                "gap_acc_last": "Δ gap at last epoch", "convergence_epoch": "Δ converged epoch",
                "train_images_per_s": "Δ train img/s"}


def duration(seconds: float) -> str:
    """'42 s', '3 min 05 s', '1 h 02 min'."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def header(record: SettleRecord, sweep_dir: Path) -> str:
    """The line a settle starts with: what it compares, on what, and its planned rounds."""
    budget = len(record.configs) * record.looks[-1]
    return (f"settle: {len(record.configs)} configurations against "
            f"{record.labels[record.baseline]}, decided on {', '.join(record.metrics)}; seeds per "
            f"configuration {', '.join(map(str, record.looks))} at most ({budget} runs at most) "
            f"in {sweep_dir}")


def round_line(record: SettleRecord, current: Round) -> str:
    """'round 2: 10 seeds per configuration, 3 of 6 comparisons undecided, 2 min 05 s so far'."""
    total = record.comparisons * len(record.metrics)
    return (f"round {current.number}: {current.seeds} seeds per configuration, "
            f"{current.undecided} of {plural(total, 'comparison')} undecided, "
            f"{duration(record.wall_time_s)} so far")


def end_lines(record: SettleRecord, comp: Comparison | None, figure: Path | None) -> list[str]:
    """How the settle ended, what it cost, and each question left undecided with its estimate."""
    jobs = sum(len(j) for r in record.rounds for j in r.jobs)
    rounds = plural(len(record.rounds), "round")
    why = {SETTLED: f"settled in {rounds}",
           "out of seeds": f"stopped at the seed budget ({record.looks[-1]} per configuration) "
                           f"after {rounds}",
           "out of time": f"stopped at the time budget after {rounds}"}.get(
        record.status, f"{record.status}, {rounds} so far")
    fixed = len(record.configs) * record.looks[-1]
    lines = [f"settle {why}: {plural(jobs, 'run')} (a fixed grid of {record.looks[-1]} seeds "
             f"would be {fixed}), {duration(record.wall_time_s)} of jobs"
             + (f"; intervals round by round: {figure}" if figure else "")]
    settle = comp.settle if comp is not None else None
    if settle is None:
        return lines
    left = settle.undecided()
    if left:
        lines.append(f"undecided {'within the budget' if record.status != SETTLED else ''} "
                     "(a finding, not an error):".replace("  ", " "))
    table = comp.table.set_index("config") if comp is not None else None
    for name, metric in left:
        look = settle.looks[metric][name][-1] if settle.looks[metric].get(name) else None
        if look is None or table is None:
            lines.append(f"  {name}, {METRIC_WORDS[metric]}: no interval (fewer than 2 pairs)")
            continue
        estimate = seeds_to_decide(table.loc[name], metric)
        words = ("no estimate" if math.isnan(estimate) else f"more than {MAX_SEEDS:,} seeds would be needed"
                 if math.isinf(estimate) else f"~{estimate:,.0f} seeds would likely decide it")
        low, high = bounds(100 * look.low, 100 * look.high)
        lines.append(f"  {name}, {METRIC_WORDS[metric]}: {100 * look.d:+.2f} "
                     f"[{low}, {high}] pts at {look.pairs} seeds; {words}")
    return lines


def print_end(record: SettleRecord, comp: Comparison | None, figure: Path | None,
              out: Console) -> None:
    """The end lines, on the table console (stdout)."""
    for line in end_lines(record, comp, figure):
        terminal.say_measures(out, line)


def interval_plot(comp: Comparison, folder: Path) -> Path | None:
    """settle.png: per metric, each configuration's repeated interval after every round."""
    settle = comp.settle
    if settle is None or not any(settle.looks.get(m) for m in settle.record.metrics):
        return None
    metrics = settle.record.metrics
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 4.2), squeeze=False)
    names = [n for n in comp.table["config"] if n != comp.baseline]
    for ax, metric in zip(axes[0], metrics, strict=True):
        margin = settle.record.margins.get(metric)
        ax.axhline(0, color="black", lw=0.8)
        if margin is not None:
            for y in (-margin, margin):
                ax.axhline(100 * y, color="grey", lw=0.8, ls="--")
        for i, name in enumerate(names):
            looks = settle.looks[metric].get(name) or []
            if not looks:
                continue
            offset = (i - (len(names) - 1) / 2) * 0.12  # side by side at each round
            x = [lk.round + offset for lk in looks]
            mid = [100 * lk.d for lk in looks]
            err = [[100 * (lk.d - lk.low) for lk in looks], [100 * (lk.high - lk.d) for lk in looks]]
            ax.errorbar(x, mid, yerr=err, fmt="o-", ms=4, capsize=3, lw=1.2,
                        label=textwrap.fill(f"{name}: {looks[-1].verdict}", 34))
        rounds = [r for r in settle.record.rounds if r.wall_time_s is not None]
        ax.set_xticks([r.number for r in rounds], [f"{r.number}\n({r.seeds})" for r in rounds])
        ax.set_xlabel("round (seeds per configuration)")
        ax.set_ylabel(f"{METRIC_WORDS[metric]} vs baseline (points)")
        ax.set_title(METRIC_WORDS[metric] + (f", margin ±{100 * margin:g}" if margin else ""),
                     fontsize=10)
    for ax in axes[0]:  # each panel's own legend: the verdicts differ by metric
        ax.legend(fontsize=7, loc="best")
    spending = SPENDING_WORDS.get(settle.design.spending, settle.design.spending)
    fig.suptitle(f"Repeated confidence intervals round by round ({spending} alpha spending, "
                 f"Lan & DeMets 1983; {100 * (1 - settle.design.alpha):g}% together, "
                 f"baseline {comp.baseline})", fontsize=9)
    fig.tight_layout()
    path = folder / SETTLE_PLOT
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
