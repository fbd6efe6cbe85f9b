"""Figures of a comparison: curves per configuration, and metrics against a swept parameter.

Bands and error bars are ± one sample standard deviation (ddof=1) over seeds; a
configuration with a single seed gets a line without a band.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display needed, works on servers and in CI

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from numpy.polynomial import Polynomial  # noqa: E402
import pandas as pd  # noqa: E402

from regbench import runs  # noqa: E402
from regbench.compare import Comparison  # noqa: E402
from regbench.labels import fmt  # noqa: E402
from regbench.metrics import read_rows  # noqa: E402

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
CURVES = (("train_acc", "train accuracy (%, eval mode)", 100),
          ("val_acc", "validation accuracy (%)", 100),
          ("train_loss", "train loss (cross-entropy, eval mode)", 1),
          ("val_loss", "validation loss (cross-entropy)", 1))


def curves_frame(comp: Comparison) -> pd.DataFrame:
    """Every finished run's metrics.csv rows, with the run's configuration label and seed."""
    frames = []
    for rec in comp.runs.itertuples():
        rows = pd.DataFrame(read_rows(Path(rec.path) / runs.METRICS_FILE))
        rows["config"], rows["seed"] = rec.label, rec.seed
        frames.append(rows)
    return pd.concat(frames, ignore_index=True)


def plot_curves(comp: Comparison, rows: pd.DataFrame, out: Path) -> Path:
    """Train and validation accuracy and loss against epoch, one colour per configuration."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharex=True)
    for i, name in enumerate(comp.table["config"]):
        g = rows[rows["config"] == name].groupby("epoch")
        for ax, (column, _, scale) in zip(axes.flat, CURVES, strict=True):
            mean, std = g[column].mean() * scale, g[column].std() * scale
            ax.plot(mean.index, mean, color=f"C{i % 10}", label=name)
            ax.fill_between(mean.index, mean - std, mean + std, color=f"C{i % 10}", alpha=0.2)
    for ax, (_, words, _) in zip(axes.flat, CURVES, strict=True):
        ax.set_ylabel(words)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize="small",
               title="configuration")
    fig.suptitle("Train and validation curves (mean over seeds, band = ± 1 std)")
    fig.tight_layout(rect=(0, 0.04 + 0.03 * math.ceil(len(labels) / 3), 1, 1))
    return save(fig, out / "curves.png")


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
    fig.savefig(path, dpi=110)
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
