"""Figures of a comparison: curves per configuration, and metrics against a swept parameter.

Bands and error bars are ± one sample standard deviation (ddof=1) over seeds; a
configuration with a single seed gets a line without a band.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display needed, works on servers and in CI

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from numpy.polynomial import Polynomial  # noqa: E402
import pandas as pd  # noqa: E402

from regbench.store import runs  # noqa: E402
from regbench.study.compare import Comparison  # noqa: E402
from regbench.study.labels import fmt  # noqa: E402
from regbench.store.metrics import read_rows  # noqa: E402

# What a swept key means, for axis labels a student can read.
PARAM_WORDS = {
    "reg.dropout.fc": "dropout rate in the FC head (drop probability)",
    "reg.dropout.conv": "dropout rate after each conv block (drop probability)",
    "reg.dropout.input": "dropout rate on the input pixels (drop probability)",
    "reg.l2": "L2 penalty strength λ (λ/2·Σw² added to the loss)",
    "reg.l1": "L1 penalty strength λ (λ·Σ|w| added to the loss)",
    "reg.weight_decay": "weight decay per step (decoupled)",
    "reg.max_norm": "max-norm bound on each unit's incoming weights",
    "reg.label_smoothing": "label smoothing",
    "reg.early_stopping.patience": "early-stopping patience (epochs)",
    "dataset.train_size": "training images",
    "optim.lr": "learning rate",
    "trainer.epochs": "training epochs",
    "trainer.batch_size": "batch size (images per step)",
    "model.hidden": "hidden units in the FC head",
}
# Panels of curves.png: (title, y label, train column, val column, scale, lower bound).
PANELS = (("accuracy", "accuracy (%)", "train_acc", "val_acc", 100, 0.0),
          ("loss", "cross-entropy loss", "train_loss", "val_loss", 1, 0.0))
LINE_STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "h")
LEGEND_WRAP = 34  # characters per legend line: long labels wrap instead of running off


def curves_frame(comp: Comparison) -> pd.DataFrame:
    """Every finished run's metrics.csv rows, with the run's configuration label and seed."""
    frames = []
    for rec in comp.runs.itertuples():
        rows = pd.DataFrame(read_rows(Path(rec.path) / runs.METRICS_FILE))
        rows["config"], rows["seed"] = rec.label, rec.seed
        rows["gap_pts"] = 100 * rows["gap_acc"]
        frames.append(rows)
    return pd.concat(frames, ignore_index=True)


def config_order(comp: Comparison) -> list[str]:
    """Configurations in the order of the swept value (numeric keys first), else by name.

    Colours follow this order, so a sequential colour map reads as the swept value.
    """
    names = list(comp.table["config"])
    keys = swept_parameters(comp)
    if keys:
        return sorted(names, key=lambda n: tuple(comp.configs[n][k] for k in keys) + (n,))
    return sorted(names)


def config_styles(comp: Comparison, order: list[str]) -> dict[str, dict[str, Any]]:
    """Colour, line style and marker per configuration: no two alike, so none hides another."""
    numeric = bool(swept_parameters(comp))
    cmap = plt.get_cmap("viridis" if numeric else "tab10")
    styles = {}
    for i, name in enumerate(order):
        colour = cmap(0.9 * i / max(len(order) - 1, 1)) if numeric else cmap(i % 10)
        styles[name] = {"color": colour, "marker": MARKERS[i % len(MARKERS)],
                        "linestyle": LINE_STYLES[(i // 10) % len(LINE_STYLES)]}
    return styles


def best_and_onset(comp: Comparison) -> dict[str, tuple[float | None, float | None]]:
    """Per configuration: the median best epoch and the median onset epoch over its seeds."""
    out = {}
    for name, g in comp.runs.groupby("label"):
        onsets = [o for o in g["onset_epoch"] if o is not None and o == o]
        best = g["best_epoch"].dropna()
        out[str(name)] = (float(best.median()) if len(best) else None,
                          float(pd.Series(onsets).median()) if onsets else None)
    return out


def seeds_phrase(rows: pd.DataFrame) -> str:
    """'one run', 'one seed per configuration' or 'mean over N seeds, band = ± 1 std'."""
    per_config = rows.groupby("config")["seed"].nunique()
    if len(rows[["config", "seed"]].drop_duplicates()) == 1:
        return "one run"
    if per_config.max() == 1:
        return "one seed per configuration"
    n = f"{per_config.min()}" if per_config.min() == per_config.max() \
        else f"{per_config.min()}-{per_config.max()}"
    return f"mean over {n} seeds, band = ± 1 std"


def plot_curves(comp: Comparison, rows: pd.DataFrame, out: Path) -> Path:
    """Accuracy and loss (train dashed, val solid) and the gap, against epoch, per configuration.

    Train and validation share a panel so the gap between them is seen, and the third panel
    draws the gap itself; ★ marks each configuration's best epoch, ▼ its overfitting onset.
    """
    order = config_order(comp)
    styles = config_styles(comp, order)
    marks = best_and_onset(comp)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    for name in order:
        g = rows[rows["config"] == name].groupby("epoch")
        st = styles[name]
        for ax, (_, _, train, val, scale, low) in zip(axes, PANELS, strict=False):
            for column, ls, alpha in ((train, "--", 0.75), (val, "-", 1.0)):
                _line(ax, g[column], scale, low, st, ls, alpha)
            _marks(ax, g[val].mean() * scale, marks[name], st["color"])
        _line(axes[2], g["gap_pts"], 1, None, st, "-", 1.0)
        _marks(axes[2], g["gap_pts"].mean(), marks[name], st["color"])
    for ax, (title, ylabel, *_rest) in zip(axes, PANELS, strict=False):
        ax.set_title(f"{title}: train (dashed) and validation (solid)", fontsize="medium")
        ax.set_ylabel(ylabel)
    axes[2].set_title("gap: train − validation accuracy", fontsize="medium")
    axes[2].set_ylabel("points")
    axes[2].axhline(0, color="grey", linewidth=0.8)  # above 0: the training set is fitted better
    epochs = sorted(rows["epoch"].unique())
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(epochs) == 1:  # one point: give it room rather than a zero-width axis
            ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
    handles = [Line2D([], [], color=styles[n]["color"], marker=styles[n]["marker"],
                      linestyle=styles[n]["linestyle"], label=textwrap.fill(n, LEGEND_WRAP))
               for n in order]
    handles.append(Line2D([], [], color="black", marker="*", markersize=11, linestyle="",
                          label="best epoch"))
    if any(onset is not None for _, onset in marks.values()):
        handles.append(Line2D([], [], color="black", marker="v", markersize=8, linestyle="",
                              label="overfitting onset"))
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small",
               title="configuration" if len(order) > 1 else None, frameon=False)
    what = order[0] if len(order) == 1 else f"{len(order)} configurations"
    fig.suptitle(f"Train and validation curves, {what} ({seeds_phrase(rows)})")
    fig.tight_layout()
    return save(fig, out / "curves.png")


def _line(ax: Any, column: Any, scale: float, low: float | None, style: dict[str, Any],
          linestyle: str, alpha: float) -> None:
    """The mean over seeds with markers (a one-epoch run is a single point), and its band."""
    mean, std = column.mean() * scale, column.std() * scale
    ax.plot(mean.index, mean, color=style["color"], marker=style["marker"], markersize=4,
            markevery=max(1, len(mean) // 15), linestyle=linestyle, alpha=alpha)
    if std.notna().any():
        lower = mean - std if low is None else (mean - std).clip(lower=low)  # a loss is >= 0
        ax.fill_between(mean.index, lower, mean + std, color=style["color"], alpha=0.12)


def _marks(ax: Any, curve: pd.Series, marks: tuple[float | None, float | None], colour: Any
           ) -> None:
    """★ at the best epoch and ▼ at the onset, on the curve (nearest epoch to a median)."""
    for epoch, marker, size in ((marks[0], "*", 14), (marks[1], "v", 9)):
        if epoch is not None and len(curve):
            at = curve.index[abs(curve.index - epoch).argmin()]
            ax.plot([at], [curve[at]], marker=marker, markersize=size, color=colour,
                    markeredgecolor="black", linestyle="", zorder=5)


def swept_parameters(comp: Comparison) -> list[str]:
    """Numeric keys (not true/false) that take two or more values while the others stay put.

    In a comparison of presets each key changes together with others (dropout's conv and
    FC rates); a plot against one of them alone would mislead, so it is left out.
    """
    def numeric(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    out = []
    for key in comp.axes:
        if not all(numeric(c.get(key)) for c in comp.configs.values()):
            continue
        rest: dict[str, set[Any]] = {}
        for c in comp.configs.values():
            rest.setdefault(" ".join(fmt(c.get(k)) for k in comp.axes if k != key), set()).add(c[key])
        if any(len(xs) > 1 for xs in rest.values()):
            out.append(key)
    return out


def plot_against(comp: Comparison, key: str, out: Path) -> Path:
    """Validation accuracy and accuracy gap against one swept parameter, error bars over seeds.

    One line per combination of the other keys, drawn only where the parameter takes two or
    more values with those keys held fixed.
    """
    t = comp.table.copy()
    others = [k for k in comp.axes if k != key]
    t["x"] = [comp.configs[name][key] for name in t["config"]]
    t["rest"] = [tuple(fmt(comp.configs[name].get(k)) for k in others) for name in t["config"]]
    t = t[t.groupby("rest")["x"].transform("nunique") > 1]
    shown = [i for i, _ in enumerate(others) if t["rest"].str[i].nunique() > 1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    for i, (rest, g) in enumerate(t.sort_values("x").groupby("rest", sort=False)):
        name = " ".join(f"{others[j]}={rest[j]}" for j in shown)
        style = {"color": f"C{i % 10}", "marker": "o", "capsize": 4, "label": name or None}
        left.errorbar(g["x"], 100 * g["val_acc_mean"], yerr=100 * g["val_acc_std"].fillna(0), **style)
        right.errorbar(g["x"], 100 * g["gap_acc_mean"], yerr=100 * g["gap_acc_std"].fillna(0), **style)
    words = PARAM_WORDS.get(key, key)
    left.set_ylabel("validation accuracy (%)")
    right.set_ylabel("train − validation accuracy (points)")
    right.axhline(0, color="grey", linewidth=0.8)  # above 0: the model fits its training set better
    values = sorted(set(t["x"]))
    positive = [x for x in values if x > 0]
    for ax in (left, right):
        ax.set_xlabel(words)
        ax.grid(alpha=0.3)
        if positive and max(positive) / min(positive) >= 100:  # penalties, rates span decades
            if len(positive) < len(values):  # a zero among them: linear near 0, log beyond
                ax.set_xscale("symlog", linthresh=min(positive))
            else:
                ax.set_xscale("log")
        if len(values) <= 10:  # tick exactly the values that were run
            ax.set_xticks(values, [fmt(v) for v in values])
    if shown:
        left.legend(fontsize="small")
    fig.suptitle(f"Validation accuracy and overfitting gap against {words}\n"
                 "(mean over seeds at each run's best epoch, error bars = ± 1 std)", fontsize="medium")
    fig.tight_layout()
    return save(fig, out / f"vs_{re.sub(r'[^A-Za-z0-9_.-]', '_', key)}.png")


def sampled(comp: Comparison, key: str) -> bool:
    """Whether a parameter's values were drawn from a range (a random or Bayesian search)
    rather than set on a grid: four or more values, each its own, some not round to 4 places."""
    values = [c[key] for c in comp.configs.values()]
    unround = any(abs(v * 1e4 - round(v * 1e4)) > 1e-6 for v in values)
    return len(values) >= 4 and len(set(values)) == len(values) and unround


def plot_trials(comp: Comparison, key: str, out: Path) -> Path:
    """Validation accuracy and accuracy gap against a sampled parameter: one point per
    configuration (the mean over its seeds, each seed a faint dot) and a quadratic
    least-squares trend line, since error bars per value need repeated values."""
    runs_ = comp.runs.assign(x=[comp.configs[name][key] for name in comp.runs["label"]])
    means = runs_.groupby("x")[["val_acc", "gap_acc"]].mean().reset_index()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, column, words in zip(axes, ("val_acc", "gap_acc"),
                                 ("validation accuracy (%)", "train − validation accuracy (points)"),
                                 strict=True):
        ax.scatter(runs_["x"], 100 * runs_[column], color="C0", alpha=0.25, s=12)
        ax.scatter(means["x"], 100 * means[column], color="C0", label="trial (mean over seeds)")
        if len(means) >= 3:
            trend = Polynomial.fit(means["x"], 100 * means[column], deg=2)
            xs = np.linspace(means["x"].min(), means["x"].max(), 100)
            ax.plot(xs, trend(xs), color="C1", label="quadratic trend (least squares)")
        ax.set_xlabel(PARAM_WORDS.get(key, key))
        ax.set_ylabel(words)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize="small")
    fig.suptitle(f"Search trials: validation accuracy and overfitting gap against "
                 f"{PARAM_WORDS.get(key, key)}\n(at each run's best epoch)", fontsize="medium")
    fig.tight_layout()
    return save(fig, out / f"trials_{re.sub(r'[^A-Za-z0-9_.-]', '_', key)}.png")


def save(fig: Any, path: Path) -> Path:
    """Write the figure as a PNG and free its memory."""
    fig.savefig(path, dpi=110, bbox_inches="tight")  # the legend beside the panels included
    plt.close(fig)
    return path


def make_plots(comp: Comparison, out: Path) -> list[Path]:
    """Write every figure of the comparison into out/; returns their paths."""
    if comp.table.empty:
        return []
    out.mkdir(parents=True, exist_ok=True)
    paths = [plot_curves(comp, curves_frame(comp), out)]
    paths += [plot_trials(comp, key, out) if sampled(comp, key) else plot_against(comp, key, out)
              for key in swept_parameters(comp)]
    return paths
