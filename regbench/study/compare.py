"""Comparing runs: group them by configuration, pool the seeds, test against a baseline.

Finding run folders is regbench.store.runs, naming configurations regbench.study.labels, the
statistics regbench.study.stats, and showing the result regbench.present.tables / regbench.present.terminal.

Every number comes from the runs' own files: config.yaml, the ``best`` and ``last`` rows
of summary.json (the metrics.csv rows of the epoch the run counts as best, lowest val loss
or the early-stopping monitor, and of its last epoch) and metrics.csv. Seeds are the unit:
a configuration run twice with one seed counts once (the newest finished run). Spreads
are sample standard deviations (ddof=1); differences against the baseline are paired by
seed and adjusted for the number of comparisons (regbench.study.stats).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from regbench.store import metrics
from regbench.store import runs
from regbench.study import stats
from regbench.errors import ConfigError, RunDirError
from regbench.study.labels import config_key, differing_keys, label, matches, reg_preset

# Keys that never change a run's numbers (where files go, what the terminal shows) or that
# are pooled over (the seed); they are left out when grouping runs by configuration.
IGNORED_KEYS = ("seed", "experiment", "output.root", "dataset.root", "dataset.download",
                "trainer.progress", "trainer.checkpoint")
IGNORED_SECTIONS = ("logger.",)  # experiment trackers: where numbers are sent, not what they are
# Per-run metrics: column -> (summary.json key, key inside it or None).
# At the best epoch the gap hides what dropout does (it moves the best epoch later); at the
# last epoch every configuration has had the same training budget.
RUN_METRICS = {
    "val_acc": ("best", "val_acc"), "train_acc": ("best", "train_acc"),
    "gap_acc": ("best", "gap_acc"), "gap_loss": ("best", "gap_loss"),
    "best_epoch": ("best_epoch", None),
    "val_acc_last": ("last", "val_acc"), "gap_acc_last": ("last", "gap_acc"),
    "gap_loss_last": ("last", "gap_loss"),
    "test_acc": ("test_acc", None), "wall_time_s": ("wall_time_s", None),
    "convergence_epoch": ("convergence_epoch", None),
    "train_images_per_s": ("train_images_per_s", None),
    "test_ece": ("test_ece", None),
    "mc_test_acc": ("mc_dropout", "test_acc"), "mc_test_nll": ("mc_dropout", "test_nll"),
    "mc_test_ece": ("mc_dropout", "test_ece"),
}
# Computed from metrics.csv: how far val loss rose after its minimum (last - minimum).
CURVE_METRICS = ("val_loss_rise",)
# Differences against the baseline, paired by seed.
DIFFERENCES = ("val_acc", "gap_acc", "gap_acc_last", "convergence_epoch", "train_images_per_s")


@dataclass
class Comparison:
    """One row per configuration, best first, plus the runs that could not be averaged."""

    table: pd.DataFrame
    failed: pd.DataFrame  # path, status, error
    baseline: str | None  # the baseline configuration's label
    note: str  # why there is no baseline, when there is none
    configs: dict[str, dict[str, Any]]  # label -> flat configuration
    axes: list[str]  # configuration keys whose value differs between the groups
    runs: pd.DataFrame  # the finished runs counted: path, seed, label, metrics
    adjusted: bool = True  # differences adjusted for the number of comparisons
    comparisons: int = 0  # k: configurations compared with the baseline
    duplicates: list[str] = field(default_factory=list)  # one warning line per repeated seed


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
        rec["val_loss_rise"] = val_loss_rise(d) if status in runs.FINISHED else None
        rec["finished_at"] = (d / runs.SUMMARY_FILE).stat().st_mtime
        records.append(rec)
    return pd.DataFrame.from_records(records)


def val_loss_rise(run_dir: Path) -> float | None:
    """Last minus minimum validation loss over the run's epochs (0 when the last is lowest)."""
    path = run_dir / runs.METRICS_FILE
    rows = metrics.read_rows(path) if path.exists() else []
    finite = [r.val_loss for r in rows if math.isfinite(r.val_loss)]
    return rows[-1].val_loss - min(finite) if finite and math.isfinite(rows[-1].val_loss) else None


def count_seeds_once(done: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Keep one run per (configuration, seed), the newest finished; warn about the rest."""
    done = done.sort_values("finished_at", kind="stable")
    keep = ~done.duplicated(["label", "seed"], keep="last")
    warnings = []
    for (name, seed), g in done[done.duplicated(["label", "seed"], keep=False)].groupby(
            ["label", "seed"], sort=False):
        used = g["path"].iloc[-1]
        others = ", ".join(g["path"].iloc[:-1])
        warnings.append(f"{len(g)} finished runs of {name} with seed {seed} count as one seed "
                        f"(the newest, {used}, is used; not counted: {others})")
    return done[keep].sort_index(), warnings


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


def compare(run_dirs: list[Path], baseline: str | None = None, adjust: bool = True) -> Comparison:
    """Group the runs by configuration and compare each group with the baseline."""
    df = load_runs(run_dirs)
    failed = df.loc[~df["status"].isin(runs.FINISHED), ["path", "status", "error"]].reset_index(drop=True)
    done = df[df["status"].isin(runs.FINISHED)].copy()
    keyed = {config_key(c): c for c in done["config"]}
    axes = differing_keys(list(keyed.values()))
    names = {key: label(c, axes) for key, c in keyed.items()}
    done["label"] = [names[config_key(c)] for c in done["config"]]
    done, duplicates = count_seeds_once(done)
    configs = {names[key]: c for key, c in keyed.items()}
    base, note = choose_baseline(baseline, configs)
    table, k = aggregate(done, base, adjust)
    return Comparison(table, failed, base, note, configs, axes, done, adjust, k, duplicates)


def aggregate(done: pd.DataFrame, baseline: str | None, adjust: bool = True
              ) -> tuple[pd.DataFrame, int]:
    """One row per configuration: means and sample stds over seeds, differences vs baseline.

    Returns the table and k, the number of configurations compared with the baseline.
    Difference columns (d_<metric>, its interval and the interval's confidence level,
    established, seeds needed) are empty (NaN / None) on the baseline's own row.
    """
    if done.empty:
        return pd.DataFrame(columns=["config", "seeds"]), 0
    columns = [*RUN_METRICS, *CURVE_METRICS]
    done[columns] = done[columns].astype(float)
    grouped = done.groupby("label", sort=False)
    table = grouped[columns].agg(["mean", "std"])  # pandas' std is the sample std (ddof=1)
    table.columns = [f"{m}_{s}" for m, s in table.columns]
    table.insert(0, "seeds", grouped["seed"].nunique())
    k = 0
    if baseline is not None:
        for metric in DIFFERENCES:
            per_seed = {name: g.set_index("seed")[metric] for name, g in grouped}
            diffs = stats.compare_to_baseline(per_seed, baseline, adjust).set_index("config")
            k = max(k, int((diffs["pairs"] >= 2).sum()))
            if metric == DIFFERENCES[0]:  # pairs of the headline metric
                table["pairs"] = diffs["pairs"].astype("Int64")
            table[f"d_{metric}"] = diffs["d"]
            table[f"d_{metric}_low"] = diffs["low"]
            table[f"d_{metric}_high"] = diffs["high"]
            table[f"d_{metric}_level"] = diffs["level"]  # the interval's confidence
            table[f"d_{metric}_p"] = diffs["p"]
            established = diffs["established"].reindex(table.index)
            table[f"{metric}_established"] = established.astype(object)
            table[f"{metric}_within_noise"] = [None if e is None or pd.isna(e) else not e
                                               for e in established]
            table[f"{metric}_seeds_needed"] = diffs["seeds_needed"]
    table = table.sort_values("val_acc_mean", ascending=False, kind="stable")
    table["best"] = [i == 0 for i in range(len(table))]
    table["baseline"] = table.index == baseline
    return table.rename_axis("config").reset_index(), k
