"""Comparing runs: group them by configuration, pool the seeds, test against a baseline.

Every number comes from the runs' own files: config.yaml, and the ``best`` row of
summary.json (the metrics.csv row of the epoch the run counts as best: lowest val loss, or
the early-stopping monitor). Spreads are sample standard deviations (ddof=1).
Differences against the baseline are paired by seed, with a Student-t interval on the
paired differences.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import OmegaConf
from scipy import stats

from regbench import runs
from regbench.errors import ConfigError, RunDirError

CONFIDENCE = 0.95
# Keys that never change a run's numbers (where files go, what the terminal shows) or that
# are pooled over (the seed); they are left out when grouping runs by configuration.
IGNORED_KEYS = ("seed", "experiment", "output.root", "dataset.root", "dataset.download",
                "trainer.progress", "trainer.checkpoint")
# Per-run metrics: column -> (summary.json key, key inside it or None).
RUN_METRICS = {
    "val_acc": ("best", "val_acc"), "train_acc": ("best", "train_acc"),
    "gap_acc": ("best", "gap_acc"), "gap_loss": ("best", "gap_loss"),
    "best_epoch": ("best_epoch", None), "test_acc": ("test_acc", None),
    "wall_time_s": ("wall_time_s", None),
}
# Differences against the baseline, paired by seed.
DIFFERENCES = ("val_acc", "gap_acc")


@dataclass
class Comparison:
    """One row per configuration, best first, plus the runs that could not be averaged."""

    table: pd.DataFrame
    failed: pd.DataFrame  # path, status, error
    baseline: str | None  # the baseline configuration's label
    note: str  # why there is no baseline, when there is none
    configs: dict[str, dict[str, Any]]  # label -> flat configuration
    axes: list[str]  # configuration keys whose value differs between the groups
    runs: pd.DataFrame  # the finished runs: path, seed, label, metrics


# ------------------------------------------------------------------------ reading runs


def find_runs(paths: list[Path]) -> list[Path]:
    """Run folders (folders holding summary.json) at or anywhere under each path."""
    found: list[Path] = []
    for p in paths:
        if not p.is_dir():
            raise RunDirError(f"{p}: no such folder; give run, sweep or experiment folders")
        here = [p] if (p / runs.SUMMARY_FILE).is_file() else sorted(
            (q.parent for q in p.rglob(runs.SUMMARY_FILE)), key=_natural)
        if not here:
            raise RunDirError(f"{p}: no run folders in it (folders holding {runs.SUMMARY_FILE})")
        found += [d for d in here if d not in found]
    return found


def _natural(path: Path) -> tuple[Any, ...]:
    """Sort key that puts sweep job 10 after job 9."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in path.parts)


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested configuration as {dotted key: value}, in the configuration's own order."""
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(flatten(value, f"{prefix}{key}."))
    return {k.rstrip("."): v for k, v in out.items()}


def read_config(run_dir: Path) -> dict[str, Any]:
    """A run's config.yaml as dotted keys (all of them, seed included)."""
    path = run_dir / runs.CONFIG_FILE
    try:
        return flatten(OmegaConf.to_container(OmegaConf.load(path), resolve=False))
    except FileNotFoundError as e:
        raise RunDirError(f"{run_dir}: no {runs.CONFIG_FILE}; not a regbench run directory") from e
    except Exception as e:
        raise RunDirError(f"{path}: unreadable ({type(e).__name__}: {e})") from e


def load_runs(run_dirs: list[Path]) -> pd.DataFrame:
    """One row per run: path, status, error, seed, the metrics at its best epoch, its config."""
    records = []
    for d in run_dirs:
        summary = runs.read_summary(d)
        status = str(summary.get("status", "unknown"))
        cfg = read_config(d) if status in runs.FINISHED or (d / runs.CONFIG_FILE).exists() else {}
        rec: dict[str, Any] = {
            "path": str(d), "status": status, "seed": cfg.get("seed", summary.get("seed")),
            "error": None if status in runs.FINISHED else runs.why_unfinished(summary),
            "config": {k: v for k, v in cfg.items() if k not in IGNORED_KEYS},
        }
        for column, (key, inner) in RUN_METRICS.items():
            value = summary.get(key)
            rec[column] = (value or {}).get(inner) if inner else value
        if status in runs.FINISHED and rec["val_acc"] is None:
            raise RunDirError(f"{d / runs.SUMMARY_FILE}: status {status} but no 'best' row")
        records.append(rec)
    return pd.DataFrame.from_records(records)


# ------------------------------------------------------------------------- labelling


def fmt(value: Any) -> str:
    """A configuration value as it is written in an override: true, null, 0.3, [32,64]."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "[" + ",".join(fmt(v) for v in value) + "]"
    return str(value)


@cache
def reg_presets() -> dict[str, dict[str, str]]:
    """Each conf/reg/ preset as the flat reg.* section it produces."""
    from regbench.config import CONF_DIR, RegConfig

    out = {}
    for path in sorted(CONF_DIR.glob("reg/*.yaml"), key=lambda p: (p.stem != "none", p.stem)):
        merged = OmegaConf.merge(OmegaConf.structured(RegConfig), OmegaConf.load(path))
        out[path.stem] = {k: fmt(v) for k, v in flatten(OmegaConf.to_container(merged), "reg.").items()}
    return out


def reg_preset(config: dict[str, Any]) -> str | None:
    """The name of the reg preset that this configuration's reg section equals, if any."""
    for name, section in reg_presets().items():
        if all(fmt(config.get(k)) == v for k, v in section.items()):
            return name
    return None


def differing_keys(configs: list[dict[str, Any]]) -> list[str]:
    """Keys whose value is not the same in every configuration, in configuration order."""
    keys = list(dict.fromkeys(k for c in configs for k in c))
    return [k for k in keys if len({fmt(c.get(k)) for c in configs}) > 1]


def label(config: dict[str, Any], axes: list[str]) -> str:
    """Name a configuration by its values on the axes, e.g. 'reg.dropout.fc=0.3'.

    When several reg.* keys differ, a reg section equal to a preset is named by it
    ('reg=dropout'), and any other by its values that differ from no regularization.
    """
    reg_axes = [k for k in axes if k.startswith("reg.")]
    none = reg_presets()["none"]
    parts: list[str] = []
    for key in axes:
        if key in reg_axes and len(reg_axes) > 1:
            if key == reg_axes[0]:
                preset = reg_preset(config)
                parts += [f"reg={preset}"] if preset else [
                    f"{k}={fmt(config.get(k))}" for k in reg_axes if fmt(config.get(k)) != none.get(k)]
            continue
        parts.append(f"{key}={fmt(config.get(key))}")
    return " ".join(parts) or "all runs"


def matches(spec: str, config: dict[str, Any], name: str) -> bool:
    """Whether a configuration fits every KEY=VALUE of spec ('reg=none', 'reg.dropout.fc=0')."""
    for token in spec.split():
        key, _, want = token.partition("=")
        if token in name.split():
            continue
        if key == "reg" and reg_preset(config) == want:
            continue
        if key not in config or not _same(config[key], want):
            return False
    return True


def _same(value: Any, text: str) -> bool:
    if fmt(value) == text:
        return True
    try:
        return not isinstance(value, bool) and float(value) == float(text)
    except (TypeError, ValueError):
        return False


# ------------------------------------------------------------------------ statistics


def paired_difference(runs_a: pd.DataFrame, runs_b: pd.DataFrame, column: str
                      ) -> tuple[float, float, float, int]:
    """(mean, low, high, pairs) of a − b over the seeds both have; a 95% t-interval.

    With fewer than two pairs there is no interval (low and high are NaN). Repeated runs
    of one seed are averaged first.
    """
    a = runs_a.groupby("seed")[column].mean()
    b = runs_b.groupby("seed")[column].mean()
    d = (a - b).dropna()
    n = len(d)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(d.mean())
    if n < 2:
        return mean, math.nan, math.nan, 1
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df=n - 1) * d.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half, n


def choose_baseline(spec: str | None, configs: dict[str, dict[str, Any]]) -> tuple[str | None, str]:
    """(label of the baseline, note when there is none); ConfigError if spec fits none or many."""
    if spec:
        hits = [name for name, c in configs.items() if matches(spec, c, name)]
        if len(hits) != 1:
            what = "no configuration" if not hits else f"{len(hits)} configurations"
            names = "; ".join(hits or configs)
            raise ConfigError(f"--baseline {spec!r} matches {what}; the configurations are: {names}")
        return hits[0], ""
    if len(configs) < 2:
        return None, "one configuration: nothing to compare against"
    plain = [name for name, c in configs.items() if reg_preset(c) == "none"]
    if len(plain) == 1:
        return plain[0], ""
    axes = differing_keys(list(configs.values()))
    values = {name: c[axes[0]] for name, c in configs.items()} if len(axes) == 1 else {}
    if not plain and values and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                    for v in values.values()):
        # one numeric knob swept (a drop rate, an L2 strength): its weakest setting is the baseline
        return min(values, key=lambda name: values[name]), ""
    why = "no configuration without regularization" if not plain else \
        "several configurations without regularization"
    return None, f"{why}; pick a baseline with --baseline KEY=VALUE"


def config_key(config: dict[str, Any]) -> str:
    """A configuration as one hashable string: runs with equal keys form a group."""
    return json.dumps(config, sort_keys=True, default=str)


def compare(run_dirs: list[Path], baseline: str | None = None) -> Comparison:
    """Group the runs by configuration and compare each group with the baseline."""
    df = load_runs(run_dirs)
    failed = df.loc[~df["status"].isin(runs.FINISHED), ["path", "status", "error"]].reset_index(drop=True)
    done = df[df["status"].isin(runs.FINISHED)].copy()
    keyed = {config_key(c): c for c in done["config"]}
    axes = differing_keys(list(keyed.values()))
    names = {key: label(c, axes) for key, c in keyed.items()}
    done["label"] = [names[config_key(c)] for c in done["config"]]
    configs = {names[key]: c for key, c in keyed.items()}
    base, note = choose_baseline(baseline, configs)
    table = aggregate(done, base)
    return Comparison(table, failed, base, note, configs, axes, done)


def aggregate(done: pd.DataFrame, baseline: str | None) -> pd.DataFrame:
    """One row per configuration: means and sample stds over seeds, differences vs baseline."""
    columns = ["config", "seeds"]
    if done.empty:
        return pd.DataFrame(columns=columns)
    metrics = list(RUN_METRICS)
    done[metrics] = done[metrics].astype(float)
    grouped = done.groupby("label", sort=False)
    table = grouped[metrics].agg(["mean", "std"])  # pandas' std is the sample std (ddof=1)
    table.columns = [f"{m}_{s}" for m, s in table.columns]
    table.insert(0, "seeds", grouped.size())
    if baseline is not None:
        base_runs = done[done["label"] == baseline]
        for metric in DIFFERENCES:
            names = [f"d_{metric}", f"d_{metric}_low", f"d_{metric}_high", "pairs"]
            diffs = pd.DataFrame.from_dict(
                {name: paired_difference(g, base_runs, metric) for name, g in grouped},
                orient="index", columns=names)
            table = table.join(diffs[names[:3]])
            table["pairs"] = diffs["pairs"]
            table[f"{metric}_within_noise"] = [  # None: no interval (fewer than two pairs)
                None if math.isnan(lo) else bool(lo <= 0 <= hi)
                for lo, hi in zip(diffs[names[1]], diffs[names[2]], strict=True)]
    table = table.sort_values("val_acc_mean", ascending=False, kind="stable")
    table["best"] = [i == 0 for i in range(len(table))]
    table["baseline"] = table.index == baseline
    return table.rename_axis("config").reset_index()


# ------------------------------------------------------------------------- rendering


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


def rich_table(comp: Comparison) -> Any:
    """The comparison as a rich Table, best configuration first."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    header, rows = display_rows(comp)
    table = Table(title="Comparison", title_justify="left", box=box.SIMPLE_HEAVY,
                  collapse_padding=True, caption=Text(caption(comp)), caption_justify="left")
    longest = max((len(cells[0].split("\n")[0]) for cells in rows), default=0)
    table.add_column(header[0], justify="left", overflow="fold", min_width=min(longest, 40))
    for name in header[1:]:
        table.add_column(name, justify="right", overflow="fold")
    for cells, best in zip(rows, comp.table["best"], strict=True):
        table.add_row(*map(Text, cells), style="bold" if best else None)
    return table


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
