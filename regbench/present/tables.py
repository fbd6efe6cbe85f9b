"""A comparison as columns of text cells, a caption and markdown: what every renderer shows.

``COLUMNS`` defines each column once: its name (for ``--columns``), its header and how a
row becomes its cell. The terminal (regbench.present.terminal) fits the chosen columns to the
screen; markdown and the report page use the same cells. Cells break lines only between
numbers or words ("\\n"), never inside one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from regbench.errors import ConfigError
from regbench.store.metrics import number
from regbench.study.compare import Comparison
from regbench.study.stats import simultaneous_confidence


def _pm(mean: float, std: float, scale: float = 100, sign: str = "", sep: str = "\n") -> str:
    """'97.21' and '± 0.30' on a second line (no std with a single seed)."""
    if pd.isna(mean):
        return "-"
    text = number(scale * mean, f"{sign}.2f")
    return text if pd.isna(std) else f"{text}{sep}± {scale * std:.2f}"


def _difference(row: pd.Series, metric: str, sep: str = "\n", scale: float = 100,
                spec: str = "+.2f") -> str:
    """'+1.23', its interval '[+0.40,+2.06]' (points unless scaled), verdict, seeds needed."""
    if row["baseline"]:
        return ""
    mean, low, high = (row[f"d_{metric}"], row[f"d_{metric}_low"], row[f"d_{metric}_high"])
    if pd.isna(mean):
        return f"no seed{sep}in common"
    if pd.isna(low):
        return f"{number(scale * mean, spec)}{sep}no interval{sep}(1 pair)"
    # the interval's bounds on two lines keep the column as narrow as its verdict
    lines = [number(scale * mean, spec), f"[{number(scale * low, spec)},",
             f"{number(scale * high, spec)}]"]
    if row[f"{metric}_established"]:
        lines.append("established")
    else:
        lines += ["within", "noise"]
        needed = row[f"{metric}_seeds_needed"]
        if not pd.isna(needed):
            lines.append(f"~{needed:.0f} seeds" if math.isfinite(needed) else "no effect")
    return sep.join(lines)


def _opt(row: pd.Series, key: str, spec: str, scale: float = 1) -> str:
    """A mean that older runs may lack: '-' when absent."""
    value = row.get(key)
    return "-" if value is None or pd.isna(value) else f"{scale * value:{spec}}"


def _seeds(row: pd.Series, sep: str) -> str:
    pairs = row.get("pairs")
    if row["baseline"] or pairs is None or pd.isna(pairs) or pairs == row["seeds"]:
        return str(row["seeds"])
    return f"{row['seeds']}{sep}({pairs} paired)"


def _config(row: pd.Series, sep: str) -> str:
    marks = [m for m, on in (("(best)", row["best"]), ("(baseline)", row["baseline"])) if on]
    return sep.join([row["config"], *marks])


@dataclass(frozen=True)
class Column:
    """One column of the comparison: --columns name, header ('|' = line break), cell."""

    name: str
    header: str
    cell: Callable[[pd.Series, str], str]
    difference: bool = False  # only with a baseline


COLUMNS: dict[str, Column] = {c.name: c for c in (
    Column("config", "configuration", _config),
    Column("seeds", "seeds", _seeds),
    Column("val_acc", "val acc|%", lambda r, s: _pm(r["val_acc_mean"], r["val_acc_std"], sep=s)),
    Column("d_val_acc", "Δ val acc|pts", lambda r, s: _difference(r, "val_acc", s), True),
    Column("gap_last", "gap at|last ep.|pts",
           lambda r, s: _pm(r["gap_acc_last_mean"], r["gap_acc_last_std"], sign="+", sep=s)),
    Column("d_gap_last", "Δ gap at|last ep.|pts", lambda r, s: _difference(r, "gap_acc_last", s), True),
    Column("rise", "val loss|rise", lambda r, s: number(r["val_loss_rise_mean"], "+.3f")),
    Column("best_epoch", "best|epoch", lambda r, s: f"{r['best_epoch_mean']:.1f}"),
    Column("gap_best", "gap at|best ep.|pts",
           lambda r, s: _pm(r["gap_acc_mean"], r["gap_acc_std"], sign="+", sep=s)),
    Column("d_gap_best", "Δ gap at|best ep.|pts", lambda r, s: _difference(r, "gap_acc", s), True),
    Column("test_acc", "test acc|%", lambda r, s: _pm(r["test_acc_mean"], math.nan)),
    Column("time", "time|s", lambda r, s: f"{r['wall_time_s_mean']:.1f}"),
    Column("train_acc", "train|acc %", lambda r, s: _pm(r["train_acc_mean"], math.nan)),
    Column("gap_loss", "loss gap|at best", lambda r, s: number(r["gap_loss_mean"], "+.3f")),
    Column("gap_loss_last", "loss gap|at last", lambda r, s: number(r["gap_loss_last_mean"], "+.3f")),
    Column("val_acc_last", "val acc|at last %",
           lambda r, s: _pm(r["val_acc_last_mean"], r["val_acc_last_std"], sep=s)),
    Column("conv_epoch", "converged|epoch", lambda r, s: _opt(r, "convergence_epoch_mean", ".1f")),
    Column("d_conv_epoch", "Δ converged|epochs",
           lambda r, s: _difference(r, "convergence_epoch", s, 1, "+.1f"), True),
    Column("img_s", "train|img/s", lambda r, s: _opt(r, "train_images_per_s_mean", ".0f")),
    Column("d_img_s", "Δ train|img/s",
           lambda r, s: _difference(r, "train_images_per_s", s, 1, "+.0f"), True),
    Column("test_ece", "test|ECE %", lambda r, s: _opt(r, "test_ece_mean", ".2f", 100)),
    Column("mc_test_acc", "MC test|acc %", lambda r, s: _opt(r, "mc_test_acc_mean", ".2f", 100)),
    Column("mc_test_nll", "MC test|NLL", lambda r, s: _opt(r, "mc_test_nll_mean", ".4f")),
    Column("mc_test_ece", "MC test|ECE %", lambda r, s: _opt(r, "mc_test_ece_mean", ".2f", 100)),
)}
# Shown by default, most important first: a narrow terminal drops from the end.
DEFAULT_COLUMNS = ("config", "seeds", "val_acc", "d_val_acc", "gap_last", "d_gap_last", "rise",
                   "best_epoch", "gap_best", "d_gap_best", "test_acc", "time")


# The test accuracy's header says whose weights were tested (Comparison.tested): a run
# without early stopping keeps its last epoch's weights, not those of its best epoch.
TEST_HEADERS = {"last": "test acc|last ep.|%", "best": "test acc|best ep.|%",
                "kept": "test acc|kept wts|%"}
TEST_WORDS = {
    "last": "test acc: with the weights of each run's last epoch, not of its best epoch (no "
            "early stopping restored them). ",
    "best": "test acc: with the weights of each run's best epoch (its last, or restored by "
            "early stopping). ",
    "kept": "test acc: with the weights each run kept (its last epoch's, or its best epoch's "
            "where early stopping restored them). ",
}


def choose_columns(spec: str | None) -> list[str]:
    """Column names from --columns: a comma list, 'all', or None for the defaults."""
    if spec is None:
        return list(DEFAULT_COLUMNS)
    if spec.strip() == "all":
        return list(COLUMNS)
    names = [n.strip() for n in spec.split(",") if n.strip()]
    bad = [n for n in names if n not in COLUMNS]
    if bad or not names:
        raise ConfigError(f"--columns {spec!r} is not allowed: use 'all' or a comma list of "
                          + ", ".join(COLUMNS))
    return ["config", *[n for n in names if n != "config"]]


def display_rows(comp: Comparison, sep: str = "\n", columns: list[str] | None = None
                 ) -> tuple[list[str], list[list[str]]]:
    """Header and text cells of the chosen columns, one row per configuration."""
    chosen = [COLUMNS[n] for n in (columns or DEFAULT_COLUMNS)
              if comp.baseline is not None or not COLUMNS[n].difference]
    header = [(TEST_HEADERS[comp.tested] if c.name == "test_acc" else c.header).replace("|", sep)
              for c in chosen]
    rows = [[c.cell(r, sep) for c in chosen] for _, r in comp.table.iterrows()]
    return header, rows


def caption(comp: Comparison) -> str:
    """How to read the table, in one paragraph."""
    text = ("Mean (± sample std, ddof=1) over seeds. val acc: at each run's best epoch (lowest val loss, "
            "or the early-stopping monitor). gap = train − val accuracy in points, train measured "
            "in eval mode; 'at last ep.' is the same training budget for every configuration, "
            "'at best ep.' depends on when each run peaked; val loss rise = last − lowest val "
            "loss. " + TEST_WORDS[comp.tested])
    if comp.baseline is None:
        return text + f"No baseline: {comp.note}."
    k = comp.comparisons
    text += (f"Δ = difference against the baseline ({comp.baseline}), paired by seed. ")
    if comp.adjusted and k > 1:
        level = simultaneous_confidence(k)
        text += (f"{k} comparisons per column, adjusted: intervals are Bonferroni simultaneous "
                 f"{level:.2%} t-intervals (all {k} hold together with 95% confidence); "
                 "'established' = Holm-adjusted paired t-test p < 0.05 (Holm 1979), a step-down "
                 "test slightly more powerful than the interval, so rarely an established "
                 "difference has an interval touching 0. --no-adjust gives per-comparison 95% "
                 "intervals. ")
    else:
        text += "95% t-interval; 'established' = paired t-test p < 0.05. "
    text += ("'~N seeds': seeds (pairs) that would give 80% power to resolve a difference of "
             "this size at this level, from the observed spread of the paired differences.")
    return text


def markdown(comp: Comparison, columns: list[str] | None = None) -> str:
    """The comparison as a GitHub-flavoured markdown table with its caption."""
    header, rows = display_rows(comp, sep=" ", columns=columns)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for cells in rows]
    return "\n".join(lines) + "\n\n" + caption(comp) + "\n" + warnings_text(comp) + failed_text(comp)


def warnings_text(comp: Comparison) -> str:
    """One line per seed that several finished runs share, or ''."""
    return "".join(f"warning: {w}\n" for w in comp.duplicates)


def failed_text(comp: Comparison) -> str:
    """The runs left out of the averages, one line each, or ''."""
    if comp.failed.empty:
        return ""
    counts = comp.failed["status"].value_counts()  # pruned trials are named as such
    lines = [f"Not averaged in ({', '.join(f'{n} {status}' for status, n in counts.items())}):"]
    lines += [f"  {r.path}: {r.status}: {r.error}" for r in comp.failed.itertuples()]
    return "\n".join(lines) + "\n"
