"""A comparison as columns of text cells, a caption and markdown: what every renderer shows.

``COLUMNS`` defines each column once: its name (for ``--columns``), its header and how a
row becomes its cell. The terminal (regbench.present.terminal) fits the chosen columns to the
screen; markdown and the report page use the same cells. Cells break lines only between
numbers or words ("\\n"), never inside one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from regbench.errors import ConfigError
from regbench.text import number, plural
from regbench.study.compare import Comparison, diverged_text
from regbench.study.stats import MAX_SEEDS

# The alpha-spending functions of a settle, as a caption names them.
SPENDING_WORDS = {"pocock": "Pocock-type", "obrien_fleming": "O'Brien-Fleming-type"}


def _pm(mean: float, std: float, scale: float = 100, sign: str = "", sep: str = "\n") -> str:
    """'97.21' and '± 0.30' on a second line (no std with a single seed)."""
    if pd.isna(mean):
        return "-"
    text = number(scale * mean, f"{sign}.2f")
    return text if pd.isna(std) else f"{text}{sep}± {scale * std:.2f}"


def bounds(low: float, high: float, spec: str = "+.2f") -> tuple[str, str]:
    """An interval's bounds formatted with spec's decimals, or with more where needed so
    that an interval that excludes zero never shows a bound of zero ('+0.004', not '+0.00')."""
    sign, decimals = spec.split(".")[0], int(spec.split(".")[1].rstrip("f"))
    excludes_zero = low > 0 or high < 0
    while excludes_zero and decimals < 12 and any(
            float(format(x, f"{sign}.{decimals}f")) == 0 for x in (low, high)):
        decimals += 1
    return number(low, f"{sign}.{decimals}f"), number(high, f"{sign}.{decimals}f")


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
    shown_low, shown_high = bounds(scale * low, scale * high, spec)
    lines = [number(scale * mean, spec), f"[{shown_low},", f"{shown_high}]"]
    verdict = row.get(f"{metric}_verdict")
    if row[f"{metric}_established"]:
        lines.append("established")
    elif verdict == "equivalent":
        lines.append("equivalent")
    else:
        lines.append("undecided")
        needed = seeds_to_decide(row, metric)
        if not pd.isna(needed):
            # beyond the cap: an estimate, not a finding of no effect (only equivalence says that)
            lines += [f"~{needed:,.0f} seeds"] if math.isfinite(needed) else [f"> {MAX_SEEDS:,}", "seeds"]
    return sep.join(lines)


def seeds_to_decide(row: pd.Series, metric: str) -> float:
    """The fewer of the seeds estimated to establish the difference and to show it equivalent."""
    found = [row.get(f"{metric}_{key}") for key in ("seeds_needed", "seeds_to_equivalent")]
    found = [x for x in found if x is not None and not pd.isna(x)]
    return min(found) if found else math.nan


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
    """The configuration's label and one mark: (best), (baseline), (did not learn), or
    several of them together, '(best, baseline)'."""
    at_chance = row.get("at_chance_runs")
    words = [w for w, on in (("best", row["best"]), ("baseline", row["baseline"]),
                             ("did not learn", bool(at_chance) and not pd.isna(at_chance))) if on]
    return sep.join([row["config"], f"({', '.join(words)})"]) if words else row["config"]


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
    if comp.settle is not None:
        return text + settle_caption(comp)
    levels = interval_levels(comp)
    if comp.adjusted and k > 1:
        text += (f"{k} comparisons per column, Holm-adjusted (Holm 1979): the j-th smallest "
                 f"p-value is tested at 0.05/({k}−j+1) and shown with its t-interval at that "
                 "step's level; a difference not established is shown at the level of the first "
                 "step that failed. So an interval excludes 0 exactly when the difference is "
                 "established, each interval alone holds with at least 95% confidence "
                 f"(levels here: {levels}), and the chance of any false 'established' in a column "
                 "stays at most 5%. --no-adjust gives per-comparison 95% intervals. ")
    else:
        text += f"{levels} t-interval; 'established' = paired t-test p ≤ 0.05. "
    text += ("'~N seeds': seeds (pairs) that would give 80% power to resolve a difference of "
             "this size at its interval's level, from the observed spread of the paired "
             f"differences ('> {MAX_SEEDS:,} seeds': more than that; not a finding of no effect).")
    bonferroni = 1 - 0.05 / max(k, 1) if comp.adjusted else 0.95
    return text + " " + equivalence_caption(
        comp, f"its interval at the Bonferroni level {bonferroni:.2%} (never narrower than the "
              "one printed)")


def margins_text(comp: Comparison) -> str:
    """'0.5 points for val acc, gap_acc, gap_acc_last'."""
    by_value: dict[float, list[str]] = {}
    for metric, m in comp.margins.items():
        by_value.setdefault(100 * m, []).append(metric)
    return "; ".join(f"{v:g} points for {', '.join(ms)}" for v, ms in by_value.items()) or "none"


def equivalence_caption(comp: Comparison, which: str) -> str:
    """The sentence on 'equivalent' and 'undecided'."""
    return ("'equivalent' = not established, and " + which + " lies inside ±M (M: "
            + margins_text(comp) + "; --margin sets it): two one-sided tests (TOST, Schuirmann "
            "1987), no difference larger than M. 'undecided' = neither; its '~N seeds' is the "
            "fewer of the seeds estimated to establish it and to show it equivalent.")


def method(comp: Comparison) -> str:
    """The statistical method of the differences, in one phrase (for JSON and the report)."""
    if comp.settle is not None:
        d = comp.settle.design
        return (f"sequential: repeated confidence intervals, {d.spending} alpha spending "
                f"(Lan & DeMets 1983), Bonferroni over {d.comparisons} comparisons and the rounds")
    if comp.adjusted and comp.comparisons > 1:
        return f"fixed seeds: paired t, adjusted for {comp.comparisons} comparisons"
    return "fixed seeds: paired t, unadjusted"


def settle_caption(comp: Comparison) -> str:
    """How a settle's intervals and verdicts were reached, and why they hold."""
    d = comp.settle.design
    record = comp.settle.record
    spending = SPENDING_WORDS.get(d.spending, d.spending)
    return (f"Settled in rounds (sweep --settle; seeds per configuration planned "
            f"{', '.join(map(str, record.looks))}; rounds ran: {len(record.rounds)}): each "
            "interval is the repeated confidence interval after the configuration's last round "
            "(Jennison & Turnbull 1989), a paired t-interval at that round's share of "
            f"{d.alpha:g}/{d.comparisons} = {d.alpha_each:.4g} under {spending} alpha spending "
            "(Lan & DeMets 1983). "
            f"Bonferroni over the {plural(d.comparisons, 'comparison')} and over the rounds: all the "
            f"intervals of a column, at every round, hold together with {1 - d.alpha:.0%} "
            "confidence however many rounds ran, so a false 'established' (the interval "
            f"excludes 0) or 'equivalent' in a column has probability at most {d.alpha:g}. "
            "'seeds' is what each configuration took. "
            + equivalence_caption(comp, "the interval"))


def interval_levels(comp: Comparison) -> str:
    """The confidence levels of the table's intervals, as the comparison computed them."""
    columns = [c for c in comp.table.columns if c.startswith("d_") and c.endswith("_level")]
    found = sorted({float(v) for c in columns for v in comp.table[c].dropna()})
    return ", ".join(f"{v:.2%}" for v in found) or "no"


def markdown(comp: Comparison, columns: list[str] | None = None) -> str:
    """The comparison as a GitHub-flavoured markdown table with its caption."""
    header, rows = display_rows(comp, sep=" ", columns=columns)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for cells in rows]
    return ("\n".join(lines) + "\n\n" + caption(comp) + "\n" + chance_text(comp)
            + warnings_text(comp) + failed_text(comp))


def chance_text(comp: Comparison) -> str:
    """The configurations with runs that did not learn (val accuracy within noise of
    chance), kept in the table as data, or ''."""
    if "at_chance_runs" not in comp.table:
        return ""
    named = [f"{r.config} ({r.at_chance_runs} of {r.seeds} seeds)"
             for r in comp.table.itertuples() if r.at_chance_runs]
    if not named:
        return ""
    return ("did not learn (val accuracy within noise of chance; kept in the comparison): "
            + "; ".join(named) + "\n")


def warnings_text(comp: Comparison) -> str:
    """The runs dropped as true duplicates (the same configuration and seed as a newer run),
    one line per configuration and seed, or ''."""
    if not comp.duplicates:
        return ""
    return "Counted once (true duplicates):\n" + "".join(f"  {w}\n" for w in comp.duplicates)


def failed_text(comp: Comparison) -> str:
    """The runs left out of the averages, one line each, or ''."""
    if comp.failed.empty:
        return ""
    counts = comp.failed["status"].value_counts()  # pruned trials are named as such
    diverged = diverged_text(comp)
    lines = [diverged] if diverged else []
    lines += [f"Not averaged in ({', '.join(f'{n} {status}' for status, n in counts.items())}):"]
    lines += [f"  {r.path}: {r.status}: {r.error}" for r in comp.failed.itertuples()]
    return "\n".join(lines) + "\n"


EXPORTS = ("csv", "json", "markdown")  # summarize --format, besides the terminal's table


def export(comp: Comparison, fmt: str, columns: list[str] | None = None) -> str:
    """A comparison as csv (every column), json (every column, the design and the runs not
    averaged) or markdown (the table's columns, or `columns`)."""
    if fmt == "markdown":
        return markdown(comp, columns)
    if fmt == "csv":
        return str(comp.table.to_csv(index=False))
    return json.dumps({"baseline": comp.baseline, "note": comp.note,
                       "adjusted": comp.adjusted, "comparisons": comp.comparisons,
                       "margins_pts": {k: 100 * v for k, v in comp.margins.items()},
                       "method": method(comp),
                       "duplicates": comp.duplicates,
                       "configurations": json.loads(comp.table.to_json(orient="records")),
                       "not_averaged": comp.failed.to_dict(orient="records")}, indent=2) + "\n"
