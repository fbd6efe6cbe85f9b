"""Comparing runs: group them by configuration, pool the seeds, test against a baseline.

Finding run folders is regbench.runs, naming configurations regbench.labels, the
statistics regbench.stats, and showing the result regbench.tables / regbench.terminal.

Every number comes from the runs' own files: config.yaml, and the ``best`` row of
summary.json (the metrics.csv row of the epoch the run counts as best: lowest val loss, or
the early-stopping monitor). Spreads are sample standard deviations (ddof=1).
Differences against the baseline are paired by seed, with a Student-t interval on the
paired differences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from regbench import runs
from regbench.errors import ConfigError, RunDirError
from regbench.labels import config_key, differing_keys, label, matches, reg_preset
from regbench.stats import paired_difference

# Keys that never change a run's numbers (where files go, what the terminal shows) or that
# are pooled over (the seed); they are left out when grouping runs by configuration.
IGNORED_KEYS = ("seed", "experiment", "output.root", "dataset.root", "dataset.download",
                "trainer.progress", "trainer.checkpoint")
IGNORED_SECTIONS = ("logger.",)  # experiment trackers: where numbers are sent, not what they are
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


def load_runs(run_dirs: list[Path]) -> pd.DataFrame:
    """One row per run: path, status, error, seed, the metrics at its best epoch, its config."""
    records = []
    for d in run_dirs:
        summary = runs.read_summary(d)
        status = str(summary.get("status", "unknown"))
        cfg = runs.read_config(d) if status in runs.FINISHED or (d / runs.CONFIG_FILE).exists() else {}
        rec: dict[str, Any] = {
            "path": str(d), "status": status, "seed": cfg.get("seed", summary.get("seed")),
            "error": None if status in runs.FINISHED else runs.why_unfinished(summary),
            "config": {k: v for k, v in cfg.items()
                       if k not in IGNORED_KEYS and not k.startswith(IGNORED_SECTIONS)},
        }
        for column, (key, inner) in RUN_METRICS.items():
            value = summary.get(key)
            rec[column] = (value or {}).get(inner) if inner else value
        if status in runs.FINISHED and rec["val_acc"] is None:
            raise RunDirError(f"{d / runs.SUMMARY_FILE}: status {status} but no 'best' row")
        records.append(rec)
    return pd.DataFrame.from_records(records)


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


