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
from matplotlib.transforms import offset_copy  # noqa: E402
from numpy.polynomial import Polynomial  # noqa: E402
import pandas as pd  # noqa: E402

from regbench.store import run_config, runs  # noqa: E402
from regbench.store import summary as summary_file  # noqa: E402
from regbench.study.compare import Comparison  # noqa: E402
from regbench.study.labels import fmt, shown  # noqa: E402
from regbench.store.metrics import read_rows  # noqa: E402
from regbench.training import regularizers  # noqa: E402

# What a swept key means, for axis labels a student can read; each regularizer words its own.
PARAM_WORDS = {
    **regularizers.words(),
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
PANEL_IN = (5.0, 3.4)  # inches per panel, whatever the number of configurations: at the
# 110 dpi of save() a 2 x 2 figure is about 1,150 pixels wide, the report page's width
LEGEND_FONT_PT = 8.5
MIN_TREND_POINTS = 10  # trials below which no quadratic trend is fitted: 3 coefficients
# through a handful of points draw a curve that the noise alone could make
DPI = 110
QUALITATIVE = "tab10"  # distinct hues for configurations that have no order
SEQUENTIAL = "viridis"  # light to dark along one swept number

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
    """Configurations in the order of the swept value (numeric keys first), else the
    baseline first and the others by name; colours follow this order."""
    names = list(comp.table["config"])
    keys = swept_parameters(comp)
    if keys:
        return sorted(names, key=lambda n: tuple(comp.configs[n][k] for k in keys) + (n,))
    return sorted(names, key=lambda n: (n != comp.baseline, n))


def colour_scale(comp: Comparison) -> str:
    """'sequential' when the configurations lie along one swept number and nothing else
    tells them apart (a drop-rate grid), so colour reads as the value; else 'qualitative':
    presets or mixed keys have no order, and a sequential map would make them look alike."""
    keys = swept_parameters(comp)
    return "sequential" if len(keys) == 1 and comp.axes == keys else "qualitative"


def config_styles(comp: Comparison, order: list[str]) -> dict[str, dict[str, Any]]:
    """Colour, line style and marker per configuration: no two alike, so none hides another."""
    sequential = colour_scale(comp) == "sequential"
    cmap = plt.get_cmap(SEQUENTIAL if sequential else QUALITATIVE)
    styles = {}
    for i, name in enumerate(order):
        colour = cmap(0.9 * i / max(len(order) - 1, 1)) if sequential else cmap(i % cmap.N)
        styles[name] = {"color": colour, "marker": MARKERS[i % len(MARKERS)],
                        "linestyle": LINE_STYLES[(i // cmap.N) % len(LINE_STYLES)]
                        if not sequential else "-"}
    return styles


def best_and_onset(comp: Comparison) -> dict[str, tuple[float | None, float | None]]:
    """Per configuration: the median best epoch, and the median onset epoch over the seeds
    that had one when most of its seeds had one (else None: no onset to mark)."""
    out = {}
    for name, g in comp.runs.groupby("label"):
        onsets = [o for o in g["onset_epoch"] if o is not None and o == o]
        best = g["best_epoch"].dropna()
        out[str(name)] = (float(best.median()) if len(best) else None,
                          float(pd.Series(onsets).median()) if 2 * len(onsets) > len(g) else None)
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
    Panels keep one size (2 x 2, the legend in the fourth), so the text stays readable.
    """
    order = config_order(comp)
    styles = config_styles(comp, order)
    marks = best_and_onset(comp)
    fig, grid = plt.subplots(2, 2, figsize=(2 * PANEL_IN[0], 2 * PANEL_IN[1] + 0.6))
    axes, key = [grid[0, 0], grid[0, 1], grid[1, 0]], grid[1, 1]
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
        ax.set_title(f"{title}: train (dashed), validation (solid)", fontsize="medium")
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
                      linestyle=styles[n]["linestyle"], label=n) for n in order]
    several = rows.groupby("config")["seed"].nunique().max() > 1
    extra = [Line2D([], [], color="black", marker="*", markersize=11, linestyle="",
                    label="best epoch" + (" (median over seeds)" if several else ""))]
    if any(onset is not None for _, onset in marks.values()):
        extra.append(Line2D([], [], color="black", marker="v", markersize=8, linestyle="",
                            label="overfitting onset (median; drawn\nwhen most seeds had one)"))
    key.axis("off")
    what = order[0] if len(order) == 1 else f"{len(order)} configurations"
    fig.suptitle(f"Train and validation curves, {_short(what)} ({seeds_phrase(rows)})")
    fig.tight_layout()
    fit_legend(fig, key, handles, extra, "configuration" if len(order) > 1 else None)
    return save(fig, out / "curves.png")


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def fit_legend(fig: Any, ax: Any, handles: list[Line2D], extra: list[Line2D],
               title: str | None) -> Any:
    """A legend inside ax's box, never taller than it: one column, else two with labels
    wrapped narrower, else the first entries that fit and a last line saying how many
    more there are (summary.csv lists them all). `extra` entries (markers) always show."""
    renderer = fig.canvas.get_renderer()
    box = ax.get_window_extent(renderer)
    legend = None
    tries = [(1, len(handles))] + [(2, keep) for keep in range(len(handles), 0, -1)]
    for ncol, keep in tries:
        # characters per line: the column's width over the font's average character width
        wrap = max(12, int(box.width / ncol / (0.6 * LEGEND_FONT_PT * fig.dpi / 72)) - 5)
        entries = [_wrapped(h, wrap) for h in handles[:keep]]
        if keep < len(handles):
            entries.append(Line2D([], [], linestyle="", label=textwrap.fill(
                f"… and {len(handles) - keep} more (summary.csv lists them all)", wrap)))
        if legend is not None:
            legend.remove()
        legend = ax.legend(handles=entries + extra, loc="upper left", ncol=ncol,
                           fontsize=LEGEND_FONT_PT, title=title, frameon=False,
                           borderaxespad=0.0, title_fontsize=LEGEND_FONT_PT + 0.5,
                           alignment="left")
        if legend.get_window_extent(renderer).height <= box.height:
            break
    return legend


def _wrapped(handle: Line2D, width: int) -> Line2D:
    """A copy of a legend handle whose label wraps at width characters, between its words."""
    copy = Line2D([], [])
    copy.update_from(handle)
    copy.set_label(textwrap.fill(str(handle.get_label()), width, break_long_words=False))
    return copy


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
    """★ at the best epoch on the curve, ▼ just above the curve pointing at the onset
    (nearest epoch to each median): the onset is often the best epoch, and then the two
    marks stack instead of one hiding the other."""
    above = offset_copy(ax.transData, fig=ax.figure, y=11, units="points")
    for epoch, marker, size, where in ((marks[0], "*", 14, ax.transData), (marks[1], "v", 8, above)):
        if epoch is not None and len(curve):
            at = curve.index[abs(curve.index - epoch).argmin()]
            ax.plot([at], [curve[at]], marker=marker, markersize=size, color=colour,
                    markeredgecolor="black", linestyle="", zorder=5, transform=where)


def swept_parameters(comp: Comparison) -> list[str]:
    """Numeric keys (not true/false) that a sweep varied as keys of their own, taking two
    or more values while the other axes stay put.

    In a comparison of presets each key changes together with others (dropout's conv and
    FC rates); a plot against one of them alone would mislead, so it is left out, and so
    is a key that differs only between unrelated runs.
    """
    def numeric(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    out = []
    for key in comp.swept:
        if not all(numeric(c.get(key)) for c in comp.configs.values()):
            continue
        rest: dict[str, set[Any]] = {}
        for c in comp.configs.values():
            rest.setdefault(" ".join(fmt(c.get(k)) for k in comp.axes if k != key), set()).add(c[key])
        if any(len(xs) > 1 for xs in rest.values()):
            out.append(key)
    return out


# The gap panels of vs_<key>.png and trials_<key>.png: (column, label, marker fill, line).
# The table leads with the gap at the last epoch (the same budget for all); the gap at
# the best epoch depends on when each run peaked.
GAPS = (("gap_acc_last", "at the last epoch", "full", "-"),
        ("gap_acc", "at the best epoch", "none", "--"))


def plot_against(comp: Comparison, key: str, out: Path) -> Path:
    """Validation accuracy and accuracy gap (at the last and at the best epoch) against one
    swept parameter, error bars over seeds.

    One line per combination of the other keys, drawn only where the parameter takes two or
    more values with those keys held fixed.
    """
    t = comp.table.copy()
    others = [k for k in comp.axes if k != key]
    t["x"] = [comp.configs[name][key] for name in t["config"]]
    t["rest"] = [tuple(fmt(comp.configs[name].get(k)) for k in others) for name in t["config"]]
    t = t[t.groupby("rest")["x"].transform("nunique") > 1]
    varied = [i for i, _ in enumerate(others) if t["rest"].str[i].nunique() > 1]
    # several lines: a third, narrower cell beside the panels says which is which
    widths = [1.0, 1.0, 0.55] if varied else [1.0, 1.0]
    fig, cells = plt.subplots(1, len(widths), width_ratios=widths,
                              figsize=(sum(widths) * PANEL_IN[0], PANEL_IN[1] + 0.9))
    left, right = cells[:2]
    handles = []
    groups = sorted(t.sort_values("x").groupby("rest", sort=False),
                    key=lambda item: tuple(_sortable(v) for v in item[0]))
    for i, (rest, g) in enumerate(groups):
        name = " ".join(f"{others[j]}={rest[j]}" for j in varied)
        colour = f"C{i % 10}"
        left.errorbar(g["x"], 100 * g["val_acc_mean"], yerr=100 * g["val_acc_std"].fillna(0),
                      color=colour, marker="o", capsize=4)
        for (column, _, fill, ls), dx in zip(GAPS, (-3, 3), strict=True):
            # the two gaps side by side (3 points apart) so that their error bars stay apart
            bars = right.errorbar(g["x"], 100 * g[f"{column}_mean"],
                                  yerr=100 * g[f"{column}_std"].fillna(0), color=colour,
                                  marker="o", fillstyle=fill, linestyle=ls, capsize=4)
            for artist in bars.get_children():  # shifted once the axis limits are known
                artist.set_transform(offset_copy(right.transData, fig=fig, x=dx, units="points"))
        handles.append(Line2D([], [], color=colour, marker="o", label=name))
    words = PARAM_WORDS.get(key, key)
    left.set_ylabel("validation accuracy (%)\nat each run's best epoch")
    right.set_ylabel("train − validation accuracy (points)")
    right.axhline(0, color="grey", linewidth=0.8)  # above 0: the model fits its training set better
    right.legend(handles=[Line2D([], [], color="black", marker="o", fillstyle=f, linestyle=ls,
                                 label=f"gap {words_}") for _, words_, f, ls in GAPS],
                 fontsize=LEGEND_FONT_PT, loc="best")
    values = sorted(set(t["x"]))
    positive = [x for x in values if x > 0]
    for ax in (left, right):
        ax.set_xlabel(_wrap_label(words))
        ax.grid(alpha=0.3)
        if positive and max(positive) / min(positive) >= 100:  # penalties, rates span decades
            if len(positive) < len(values):  # a zero among them: linear near 0, log beyond
                ax.set_xscale("symlog", linthresh=min(positive))
            else:
                ax.set_xscale("log")
        if _tick_each(values, ax.get_xscale()):  # tick exactly the values that were run
            ax.set_xticks(values, [shown(v) for v in values])
    fig.suptitle(f"Validation accuracy and overfitting gap against {words}\n"
                 "(mean over seeds, error bars = ± 1 std)", fontsize="medium")
    fig.tight_layout()
    if varied:
        cells[2].axis("off")
        fit_legend(fig, cells[2], handles, [], None)
    return save(fig, out / f"vs_{re.sub(r'[^A-Za-z0-9_.-]', '_', key)}.png")


def _tick_each(values: list[float], scale: str) -> bool:
    """Whether each value can have its own tick: at most 10 of them, none closer to the next
    than a twelfth of the axis (on a log axis, in decades), so that no two labels overlap."""
    if not 1 < len(values) <= 10:
        return len(values) == 1
    xs = np.log10(np.asarray(values)) if scale == "log" else np.asarray(values, dtype=float)
    if scale == "symlog":
        xs = np.sign(xs) * np.log10(1 + np.abs(xs) / min(v for v in values if v > 0))
    return bool(np.diff(xs).min() >= (xs[-1] - xs[0]) / 12)


def _sortable(text: str) -> tuple[int, float, str]:
    """Values as labels print them, in numeric order where they are numbers."""
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


def _wrap_label(text: str, width: int = 55) -> str:
    return textwrap.fill(text, width, break_long_words=False)


def sampled(comp: Comparison, key: str) -> bool:
    """Whether a parameter's values were drawn from a range (a random or Bayesian search)
    rather than set on a grid: four or more values, each its own, some not round to 4 places."""
    values = [c[key] for c in comp.configs.values()]
    unround = any(abs(v * 1e4 - round(v * 1e4)) > 1e-6 for v in values)
    return len(values) >= 4 and len(set(values)) == len(values) and unround


def plot_trials(comp: Comparison, key: str, out: Path) -> Path:
    """Validation accuracy and accuracy gap against a sampled parameter: one point per
    trial (the mean over its seeds, each seed a faint dot); with MIN_TREND_POINTS trials
    or more, a quadratic least-squares trend line (error bars per value would need
    repeated values)."""
    runs_ = comp.runs.assign(x=[comp.configs[name][key] for name in comp.runs["label"]])
    columns = ["val_acc", *(c for c, *_ in GAPS)]
    means = runs_.groupby("x")[columns].mean().reset_index()
    fig, axes = plt.subplots(1, 2, figsize=(2 * PANEL_IN[0], PANEL_IN[1] + 0.9))
    series = ((axes[0], "val_acc", "trial (mean over its seeds)", "full"),
              *((axes[1], c, f"gap {w}", f) for c, w, f, _ in GAPS))
    for ax, column, name, fill in series:
        colour = "C0" if column != "gap_acc" else "C2"
        ax.scatter(runs_["x"], 100 * runs_[column].astype(float), color=colour, alpha=0.25, s=12)
        ax.plot(means["x"], 100 * means[column], color=colour, marker="o", linestyle="",
                fillstyle=fill, label=name)
    cut = pruned_trials(comp, key)
    if len(cut):
        axes[0].plot(cut["x"], 100 * cut["val_acc"], color="grey", marker="x", linestyle="",
                     label="pruned trial (its best epoch before it was stopped)")
    for ax, column, _, _ in series[:2] if len(means) >= MIN_TREND_POINTS else ():
        # one trend per panel, through the headline points (val acc, gap at the last epoch)
        trend = Polynomial.fit(means["x"], 100 * means[column], deg=2)
        xs = np.linspace(means["x"].min(), means["x"].max(), 100)
        ax.plot(xs, trend(xs), color="C1", label="quadratic trend (least squares)")
    for ax, words in zip(axes, ("validation accuracy (%)\nat each run's best epoch",
                                "train − validation accuracy (points)"), strict=True):
        ax.set_xlabel(_wrap_label(PARAM_WORDS.get(key, key)))
        ax.set_ylabel(words)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=LEGEND_FONT_PT, loc="best")
    axes[1].axhline(0, color="grey", linewidth=0.8)
    trend = "" if len(means) >= MIN_TREND_POINTS else \
        f"; no trend line under {MIN_TREND_POINTS} trials"
    fig.suptitle(f"Search trials: validation accuracy and overfitting gap against "
                 f"{PARAM_WORDS.get(key, key)}\n({len(means)} trials{trend})", fontsize="medium")
    fig.tight_layout()
    return save(fig, out / f"trials_{re.sub(r'[^A-Za-z0-9_.-]', '_', key)}.png")


def pruned_trials(comp: Comparison, key: str) -> pd.DataFrame:
    """x (the key's value) and the val accuracy at the best epoch of each pruned trial."""
    points = []
    for path in comp.failed.loc[comp.failed["status"] == runs.PRUNED, "path"]:
        ended = summary_file.load(Path(path))
        value = run_config.read(Path(path)).get(key)
        if ended is not None and ended.best is not None and isinstance(value, int | float):
            points.append({"x": value, "val_acc": ended.best.val_acc})
    return pd.DataFrame(points, columns=["x", "val_acc"])


def save(fig: Any, path: Path) -> Path:
    """Write the figure as a PNG and free its memory."""
    fig.savefig(path, dpi=DPI, bbox_inches="tight")  # the legend beside the panels included
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
