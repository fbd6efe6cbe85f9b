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

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from regbench.store import job_lists, metrics
from regbench.training import curves
from regbench.store import runs
from regbench.store import summary as summary_file
from regbench.study import equivalence, stats
from regbench.errors import ConfigError, RunDirError
from regbench.study import failures
from regbench.study.labels import (config_key, differing_keys, key_of, matches, name_configs,
                                   reg_preset, shown_override)

# The rule for grouping runs: two runs are the same experiment when every key of their
# resolved configurations is equal except the seed (pooled over) and the keys below, which
# cannot change a run's numbers: where its files go (output.root, and the experiment
# folder name), whether data may be fetched, whether it writes checkpoints or shows a
# progress bar, the divergence threshold (it decides whether a run is evidence, not its
# numbers) and the baseline a study declares. Everything else counts, the data set's
# root included. This list and IGNORED_SECTIONS are the one place the rule lives.
IGNORED_KEYS = ("seed", "experiment", "baseline", "output.root", "dataset.download",
                "trainer.progress", "trainer.checkpoint", "trainer.diverge_factor")
# experiment trackers: where numbers are sent, not what they are; settle: how many seeds a
# sweep runs, not what one run does
IGNORED_SECTIONS = ("logger.", "settle.")
# Per-run metrics: column -> (summary.json key, key inside it or None).
# At the best epoch the gap hides what dropout does (it moves the best epoch later); at the
# last epoch every configuration has had the same training budget.
RUN_METRICS = {
    "val_acc": ("best", "val_acc"), "train_acc": ("best", "train_acc"),
    "gap_acc": ("best", "gap_acc"), "gap_loss": ("best", "gap_loss"),
    "best_epoch": ("best_epoch", None), "last_epoch": ("last", "epoch"),
    "kept_epoch": ("kept_epoch", None),  # whose weights were tested
    "val_acc_last": ("last", "val_acc"), "gap_acc_last": ("last", "gap_acc"),
    "gap_loss_last": ("last", "gap_loss"),
    "test_acc": ("test_acc", None), "wall_time_s": ("wall_time_s", None),
    "convergence_epoch": ("convergence_epoch", None), "onset_epoch": ("onset_epoch", None),
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
    axes: list[str]  # configuration keys that differ between the groups and that were typed
    runs: pd.DataFrame  # the finished runs counted: path, seed, label, metrics
    adjusted: bool = True  # differences adjusted for the number of comparisons
    comparisons: int = 0  # k: configurations compared with the baseline
    duplicates: list[str] = field(default_factory=list)  # one warning line per repeated seed
    swept: list[str] = field(default_factory=list)  # axes that a sweep varied key by key
    tested: str = "kept"  # whose weights test_acc is of: 'last', 'best' or 'kept' (mixed, unknown)
    margins: dict[str, float] = field(default_factory=dict)  # equivalence margin per metric (fraction)
    settle: Any = None  # a settle's design and rounds (regbench.study.settled), when it is one

    @property
    def damaged(self) -> list[str]:
        """One line per run folder whose files could not be read (skipped, not averaged)."""
        rows = self.failed[self.failed["status"] == "damaged"]
        return [str(e) for e in rows["error"]]


def load_runs(run_dirs: list[Path]) -> pd.DataFrame:
    """One row per run: path, status, error, seed, the metrics at its best epoch, its config."""
    records = []
    kept = Kept()
    for d in run_dirs:
        try:
            s = summary_file.read(d)
            cfg = s.run_config(d) if s.finished or s.config is not None \
                or (d / runs.CONFIG_FILE).exists() else {}
            if s.finished:
                check_metrics(d)
            rise = None if not s.finished else (
                s.val_loss_rise if s.format_version >= 2 else val_loss_rise(d))
        except RunDirError as e:  # one torn file must not cost the table of every other run
            # every key a run has (None), so that pandas does not fill the column with NaN
            records.append({"path": str(d), "status": "damaged", "seed": None, "error": str(e),
                            "typed": None, "sweep": None, "declared": None, "config": {},
                            "finished_at": 0.0, "at_chance": None})
            continue
        status = s.status
        rec: dict[str, Any] = {
            "path": str(d), "status": status, "seed": cfg.get("seed", s.seed),
            "error": None if s.finished else s.why_unfinished(),
            "typed": job_lists.read_overrides(d), "sweep": str(d.parent) if runs.sweep_id(d) else None,
            "declared": cfg.get("baseline"),  # the baseline its study declares, if any
            "config": kept(cfg),
        }
        for column, (key, inner) in RUN_METRICS.items():
            value = getattr(s, key)
            if inner is None:
                rec[column] = value
            elif isinstance(value, dict):
                rec[column] = value.get(inner)
            else:
                rec[column] = None if value is None else getattr(value, inner)
        if s.finished and rec["val_acc"] is None:
            raise RunDirError(f"{d / runs.SUMMARY_FILE}: status {status} but no 'best' row")
        rec["val_loss_rise"] = rise
        rec["at_chance"] = s.at_chance is True and s.finished  # did not learn (kept as data)
        rec["finished_at"] = (d / runs.SUMMARY_FILE).stat().st_mtime
        records.append(rec)
    return pd.DataFrame.from_records(records)


class Kept:
    """A configuration without the keys that never tell configurations apart (IGNORED_KEYS,
    IGNORED_SECTIONS). The keys kept are worked out once for each set of keys the runs have
    (a sweep's runs share one), not once per run."""

    def __init__(self) -> None:
        self.keys: tuple[str, ...] | None = None
        self.kept: list[str] = []

    def __call__(self, cfg: dict[str, Any]) -> dict[str, Any]:
        keys = tuple(cfg)
        if keys != self.keys:
            self.keys = keys
            self.kept = [k for k in cfg
                         if k not in IGNORED_KEYS and not k.startswith(IGNORED_SECTIONS)]
        return {k: cfg[k] for k in self.kept}


def check_metrics(run_dir: Path) -> None:
    """RunDirError unless the run's metrics.csv is there with its columns."""
    path = run_dir / runs.METRICS_FILE
    try:
        lacking = metrics.missing_columns(path)
    except OSError as e:
        raise RunDirError(f"{path}: unreadable ({e.strerror})") from e
    if lacking:
        raise RunDirError(f"{path}: damaged (no column {', '.join(lacking)})")


def val_loss_rise(run_dir: Path) -> float | None:
    """Last minus minimum validation loss over the run's epochs (0 when the last is lowest)."""
    path = run_dir / runs.METRICS_FILE
    try:
        rows = metrics.read_rows(path) if path.exists() else []
    except (OSError, KeyError, ValueError) as e:
        raise RunDirError(f"{path}: unreadable ({type(e).__name__}: {e})") from e
    return curves.val_loss_rise(rows)


def count_seeds_once(done: pd.DataFrame, by: str = "label") -> tuple[pd.DataFrame, list[str]]:
    """Keep one run per (configuration, seed), the newest finished; warn about the rest.

    by: the column that holds each run's configuration (its label, or its whole
    configuration as one string), so that only true duplicates are dropped.
    """
    done = done.sort_values("finished_at", kind="stable")
    keep = ~done.duplicated([by, "seed"], keep="last")
    warnings = []
    for _, g in done[done.duplicated([by, "seed"], keep=False)].groupby([by, "seed"], sort=False):
        used = g["path"].iloc[-1]
        others = ", ".join(g["path"].iloc[:-1])
        warnings.append(f"{len(g)} finished runs of {g['label'].iloc[0]} with seed "
                        f"{g['seed'].iloc[0]} count as one seed, being the same configuration and seed "
                        f"(the newest, {used}, is used; "
                        f"not counted: {others})")
    return done[keep].sort_index(), warnings


def choose_baseline(spec: str | None, configs: dict[str, dict[str, Any]],
                    declared: str | None = None) -> tuple[str | None, str]:
    """(label of the baseline, note when there is none); ConfigError if spec fits none or many.

    Without spec: the baseline the study declares (an experiment preset's ``baseline``)
    when it fits one configuration; else the one configuration without regularization;
    else, when one numeric key alone varies, its setting 0 (that knob off). Never the
    weakest of several settings none of which is off: a search's lowest drawn rate is no
    baseline.
    """
    if spec:
        hits = [name for name, c in configs.items() if matches(spec, c, name)]
        if len(hits) != 1:
            what = "no configuration" if not hits else f"{len(hits)} configurations"
            names = "; ".join(hits or configs)
            raise ConfigError(f"--baseline {spec!r} matches {what}; the configurations are: {names}")
        return hits[0], ""
    if len(configs) < 2:
        return None, "one configuration: nothing to compare against"
    missed = ""
    if declared:
        hits = [name for name, c in configs.items() if matches(declared, c, name)]
        if len(hits) == 1:
            return hits[0], ""
        missed = f"the study's baseline {declared} matches {len(hits) or 'none'} of them; "
    plain = [name for name, c in configs.items() if reg_preset(c) == "none"]
    if len(plain) == 1:
        return plain[0], ""
    axes = differing_keys(list(configs.values()))
    off = [name for name, c in configs.items() if len(axes) == 1 and _is_zero(c[axes[0]])]
    if not plain and len(off) == 1:  # one numeric knob swept: its setting 0 is the baseline
        return off[0], ""
    why = "no configuration without regularization" if not plain else \
        "several configurations without regularization"
    return None, f"{missed}{why}; pick a baseline with --baseline KEY=VALUE"


def _is_zero(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == 0


def compare(run_dirs: list[Path], baseline: str | None = None, adjust: bool = True,
            margin: float | None = None, named_with: Sequence[Path] = ()) -> Comparison:
    """Group the runs by configuration and compare each group with the baseline.

    margin: the equivalence margin in points of accuracy for every accuracy difference
    (None: the per-metric defaults of regbench.study.equivalence). named_with: runs of the
    same study that are neither compared nor listed (a sweep names its failed jobs
    itself), whose configurations the labels still tell apart.
    """
    df = load_runs(run_dirs)
    failed = df.loc[~df["status"].isin(runs.FINISHED), ["path", "status", "error", "seed"]]
    failed = failed.assign(label=failed_labels(df, failed.index),
                           seed=pd.Series([None if pd.isna(x) else int(x) for x in failed["seed"]],
                                          index=failed.index, dtype=object)).reset_index(drop=True)
    done = df[df["status"].isin(runs.FINISHED)].copy()
    keys = [config_key(c) for c in done["config"]]
    keyed = dict(zip(keys, done["config"], strict=True))
    typed: dict[str, list[str] | None] = {}
    for key, overrides in zip(keys, done["typed"], strict=True):
        typed.setdefault(key, overrides)  # a configuration's first run says what was typed
    # the configurations whose every run failed are named too, though not compared: they
    # are what the configurations left were swept against, so the labels keep that axis
    # (the lr=1e-3 runs left beside diverged lr=1e6 runs are 'optim.lr=0.001')
    lost = pd.concat([df.loc[~df["status"].isin(runs.FINISHED)], load_runs(list(named_with))])
    for config, overrides in zip(lost["config"], lost["typed"], strict=True):
        if config:
            keyed.setdefault(config_key(config), config)
            typed.setdefault(config_key(config), overrides)
    naming = name_configs(list(keyed.values()), [typed[k] for k in keyed])
    names = dict(zip(keyed, naming.labels, strict=True))
    done["label"] = [names[k] for k in keys]
    done["group"] = keys
    done, duplicates = count_seeds_once(done, by="group")
    configs = {names[key]: keyed[key] for key in dict.fromkeys(keys)}
    declared = {d for d in done["declared"] if d}
    base, note = choose_baseline(baseline, configs, declared.pop() if len(declared) == 1 else None)
    margins = equivalence.margins(margin)
    table, k = aggregate(done, base, adjust, margins)
    return Comparison(table, failed, base, note, configs, naming.axes, done, adjust, k, duplicates,
                      swept_axes(done, naming.axes), tested_weights(done), margins)


def failed_labels(df: pd.DataFrame, index: pd.Index) -> list[str]:
    """A label for each run left out: the overrides typed for it that not every run shares
    (the seed aside), else its folder's name."""
    typed = [set(t) for t in df["typed"] if isinstance(t, list)]
    common = set.intersection(*typed) if typed else set()
    out = []
    for i in index:
        own = df.at[i, "typed"] if isinstance(df.at[i, "typed"], list) else []
        shown = [shown_override(o) for o in own if o not in common and key_of(o) != "seed"]
        out.append(" ".join(shown) or Path(df.at[i, "path"]).name)
    return out


def diverged_text(comp: Comparison) -> str | None:
    """'1 of 4 runs diverged and are not compared: ...' for the runs of this comparison."""
    rows = comp.failed[comp.failed["status"] == failures.DIVERGED]
    left_out = [(str(r.label), r.seed) for r in rows.itertuples()]
    return failures.diverged_line(left_out, len(comp.runs) + len(comp.failed))


def swept_axes(done: pd.DataFrame, axes: list[str]) -> list[str]:
    """The axes that a sweep varied as keys of their own (a comma list, range() or a searched
    range on that very key), not through a preset; every axis for runs of unknown origin."""
    if any(t is None for t in done["typed"]):
        return list(axes)
    values: dict[tuple[str, str], set[str]] = {}  # (sweep, key) -> the overrides of its jobs
    for sweep, typed in zip(done["sweep"], done["typed"], strict=True):
        for o in typed if isinstance(sweep, str) else []:  # runs outside a sweep vary nothing
            values.setdefault((sweep, key_of(o)), set()).add(o)
    swept = {key for (_, key), overrides in values.items() if len(overrides) > 1}
    return [k for k in axes if k in swept]


def tested_weights(done: pd.DataFrame) -> str:
    """Whose weights every run's test accuracy is of: its 'best' epoch's (restored, or the
    last epoch was the best), its 'last' epoch's, or 'kept' (runs differ, or older
    summaries that do not say)."""
    kept, last, best = (done[c].astype(float) for c in ("kept_epoch", "last_epoch", "best_epoch"))
    if done.empty or kept.isna().any():
        return "kept"
    return "best" if (kept == best).all() else "last" if (kept == last).all() else "kept"


def aggregate(done: pd.DataFrame, baseline: str | None, adjust: bool = True,
              margins: dict[str, float] | None = None) -> tuple[pd.DataFrame, int]:
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
            judged = equivalence.judge(per_seed, baseline, established, (margins or {}).get(metric),
                                       adjust).reindex(table.index)
            table[f"{metric}_equivalent"] = judged["equivalent"].astype(object)
            table[f"{metric}_verdict"] = judged["verdict"].astype(object)
            table[f"{metric}_within_noise"] = [None if v is None or pd.isna(v) else v == "undecided"
                                               for v in judged["verdict"]]
            table[f"{metric}_seeds_needed"] = diffs["seeds_needed"]
            table[f"{metric}_seeds_to_equivalent"] = judged["seeds_to_equivalent"]
    if "at_chance" in done:  # runs that did not learn: kept as data, and counted
        table["at_chance_runs"] = grouped["at_chance"].agg(lambda a: sum(x is True for x in a))
    table = table.sort_values("val_acc_mean", ascending=False, kind="stable")
    table["best"] = [i == 0 for i in range(len(table))]
    table["baseline"] = table.index == baseline
    return table.rename_axis("config").reset_index(), k
