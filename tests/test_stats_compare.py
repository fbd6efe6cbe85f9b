"""regbench.study.compare on small in-memory tables and minimal run folders, fast enough to
run for every mutant of the module (scripts/mutation.sh).

tests/test_compare.py and tests/test_comparisons.py check the same paths end to end
through the CLI; here every function is called directly and every expected number is
computed by hand or with scipy.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from regbench.errors import ConfigError, RunDirError
from regbench.store import metrics
from regbench.store.summary import Summary
from regbench.study import compare
from regbench.study.labels import reg_presets

METRIC_COLUMNS = (*compare.RUN_METRICS, *compare.CURVE_METRICS)


def done_runs(values: dict[str, list[float | None]], **per_metric: dict[str, list[float]]
              ) -> pd.DataFrame:
    """Finished runs as compare.load_runs gives them: label -> val_acc per seed 0, 1, ...

    None skips a seed. Every other metric equals val_acc unless per_metric gives it.
    """
    records = []
    for name, vals in values.items():
        for seed, v in enumerate(vals):
            if v is None:
                continue
            rec: dict[str, Any] = {"label": name, "seed": seed, "path": f"{name}/{seed}",
                                   "finished_at": float(len(records))}
            rec |= {m: v for m in METRIC_COLUMNS}
            for m, by_label in per_metric.items():
                rec[m] = by_label[name][seed]
            records.append(rec)
    return pd.DataFrame.from_records(records)


def t_interval(d: list[float], level: float) -> tuple[float, float, float]:
    """Mean and t-interval of paired differences at this level, by the textbook formula."""
    n = len(d)
    mean, sd = float(np.mean(d)), float(np.std(d, ddof=1))
    half = sps.t.ppf(1 - (1 - level) / 2, n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


BASE = [0.90, 0.92, 0.91, 0.93, 0.89]
VALUES = {
    "base": BASE,
    "up": [0.93, 0.95, 0.93, 0.96, 0.92],  # clearly better
    "flat": [0.90, 0.93, 0.90, 0.94, None],  # 4 seeds, within noise
}


def test_aggregate_means_spreads_and_paired_differences() -> None:
    table, k = compare.aggregate(done_runs(VALUES), "base")
    assert k == 2
    rows = table.set_index("config")
    assert list(table["config"]) == ["up", "flat", "base"]  # best val acc first
    assert list(table["best"]) == [True, False, False]
    assert list(table["baseline"]) == [False, False, True]
    assert list(rows["seeds"]) == [5, 4, 5]
    assert rows.loc["up", "val_acc_mean"] == pytest.approx(np.mean(VALUES["up"]))
    assert rows.loc["up", "val_acc_std"] == pytest.approx(np.std(VALUES["up"], ddof=1))
    assert rows.loc["flat", "pairs"] == 4 and rows.loc["up", "pairs"] == 5
    assert pd.isna(rows.loc["base", "pairs"])
    # Holm over k = 2: "up" (p ~ 1e-4) rejected at 0.05/2, "flat" tested at 0.05/1
    d_up = list(np.subtract(VALUES["up"], BASE))
    d_flat = list(np.subtract(VALUES["flat"][:4], BASE[:4]))
    p_up, p_flat = sps.ttest_1samp(d_up, 0).pvalue, sps.ttest_1samp(d_flat, 0).pvalue
    assert p_up <= 0.025 and p_flat > 0.05
    for name, d, level in (("up", d_up, 0.975), ("flat", d_flat, 0.95)):
        for metric in compare.DIFFERENCES:  # every metric equals val_acc here
            mean, low, high = t_interval(d, level)
            row = rows.loc[name]
            assert (row[f"d_{metric}"], row[f"d_{metric}_low"], row[f"d_{metric}_high"]) == \
                pytest.approx((mean, low, high))
            assert row[f"d_{metric}_level"] == pytest.approx(level)
            assert row[f"d_{metric}_p"] == pytest.approx(sps.ttest_1samp(d, 0).pvalue)
    assert rows.loc["up", "val_acc_established"] is True
    assert rows.loc["up", "val_acc_within_noise"] is False
    assert rows.loc["flat", "val_acc_established"] is False
    assert rows.loc["flat", "val_acc_within_noise"] is True
    assert math.isnan(rows.loc["up", "val_acc_seeds_needed"])
    assert rows.loc["flat", "val_acc_seeds_needed"] > 4  # more than it has: it is not resolved
    base = rows.loc["base"]
    assert base["val_acc_within_noise"] is None
    assert all(pd.isna(base[c]) for c in ("d_val_acc", "d_val_acc_low", "d_val_acc_level",
                                          "d_val_acc_p", "val_acc_seeds_needed",
                                          "val_acc_established"))


def test_aggregate_columns_and_pairs() -> None:
    # "two" has exactly 2 pairs: an interval, so it counts in k; convergence_epoch is missing
    # for one seed of "up" (an older run): the pairs shown are val acc's, the headline
    values = {"base": [0.9, 0.8, 0.7, 0.6, 0.5], "up": [0.95, 0.86, 0.71, 0.66, 0.52],
              "two": [0.91, 0.83, None, None, None]}
    gappy = {"base": [3.0] * 5, "up": [4.0, math.nan, 5.0, 4.0, 4.0], "two": [3.0] * 5}
    table, k = compare.aggregate(done_runs(values, convergence_epoch=gappy, gap_acc=gappy,
                                           train_images_per_s=gappy), "base")
    assert k == 2
    assert list(table.columns[:3]) == ["config", "seeds", "val_acc_mean"]
    assert table["pairs"].dtype == "Int64"  # whole numbers in CSV, empty for the baseline
    rows = table.set_index("config")
    assert rows.loc["up", "pairs"] == 5 and rows.loc["two", "pairs"] == 2
    assert rows.loc["up", "d_convergence_epoch"] == pytest.approx(np.mean([1.0, 2.0, 1.0, 1.0]))
    assert not math.isnan(rows.loc["two", "d_val_acc_level"])  # it has an interval


def test_aggregate_keeps_the_order_of_first_appearance_among_equal_val_acc() -> None:
    # 20 configurations, two values of val acc: within a value, the order they came in
    names = [f"c{i:02d}" for i in range(20)]
    order = names[::-1]  # listed from c19 down to c00, so sorting by name would differ
    values = {"base": [0.1, 0.2]} | {n: [0.5 + 0.1 * (int(n[1:]) % 2)] * 2 for n in order}
    table, _ = compare.aggregate(done_runs(values), "base")
    odd = [n for n in order if int(n[1:]) % 2]
    even = [n for n in order if not int(n[1:]) % 2]
    assert list(table["config"]) == [*odd, *even, "base"]


def test_aggregate_compares_each_metric_separately() -> None:
    gaps = {"base": [0.10, 0.12, 0.11, 0.13, 0.09], "up": [0.05, 0.06, 0.05, 0.07, 0.04],
            "flat": [0.11, 0.12, 0.12, 0.12, 0.0]}
    table, _ = compare.aggregate(done_runs(VALUES, gap_acc_last=gaps), "base")
    rows = table.set_index("config")
    d = list(np.subtract(gaps["up"], gaps["base"]))
    assert rows.loc["up", "d_gap_acc_last"] == pytest.approx(np.mean(d))
    assert rows.loc["up", "gap_acc_last_mean"] == pytest.approx(np.mean(gaps["up"]))
    assert rows.loc["up", "gap_acc_last_std"] == pytest.approx(np.std(gaps["up"], ddof=1))
    assert rows.loc["up", "d_gap_acc"] == pytest.approx(rows.loc["up", "d_val_acc"])
    assert rows.loc["up", "d_gap_acc_last"] != pytest.approx(rows.loc["up", "d_val_acc"])


def test_aggregate_counts_only_groups_with_an_interval_in_k() -> None:
    values = {"base": [0.9, 0.8, 0.7], "two": [0.95, 0.86, 0.71], "one": [None, None, 0.75]}
    table, k = compare.aggregate(done_runs(values), "base")
    assert k == 1  # "one" has a single pair: no p-value, not in the Holm family
    rows = table.set_index("config")
    assert rows.loc["one", "pairs"] == 1 and rows.loc["one", "val_acc_established"] is None
    assert rows.loc["one", "val_acc_within_noise"] is None
    assert rows.loc["two", "d_val_acc_level"] == pytest.approx(0.95)


def test_aggregate_without_baseline_or_runs() -> None:
    table, k = compare.aggregate(done_runs(VALUES), None)
    assert k == 0 and not any(c.startswith("d_") for c in table.columns)
    assert "pairs" not in table.columns and not table["baseline"].any()
    assert table["best"].tolist() == [True, False, False]
    empty, k = compare.aggregate(pd.DataFrame(), "base")
    assert k == 0 and empty.empty and list(empty.columns) == ["config", "seeds"]


def test_aggregate_without_adjustment_gives_95_percent_intervals() -> None:
    table, _ = compare.aggregate(done_runs(VALUES), "base", adjust=False)
    rows = table.set_index("config")
    assert rows.loc["up", "d_val_acc_level"] == pytest.approx(0.95)
    mean, low, high = t_interval(list(np.subtract(VALUES["up"], BASE)), 0.95)
    assert (rows.loc["up", "d_val_acc_low"], rows.loc["up", "d_val_acc_high"]) == pytest.approx(
        (low, high))


def test_count_seeds_once_keeps_the_newest_run_and_says_so() -> None:
    done = pd.DataFrame.from_records([
        {"label": "a", "seed": 0, "path": "old", "finished_at": 1.0, "val_acc": 0.5},
        {"label": "a", "seed": 1, "path": "other", "finished_at": 2.0, "val_acc": 0.7},
        {"label": "a", "seed": 0, "path": "new", "finished_at": 3.0, "val_acc": 0.9},
        {"label": "a", "seed": 0, "path": "middle", "finished_at": 2.5, "val_acc": 0.6},
        {"label": "b", "seed": 0, "path": "b0", "finished_at": 0.0, "val_acc": 0.8},
    ])
    kept, warnings = compare.count_seeds_once(done)
    assert list(kept["path"]) == ["other", "new", "b0"]  # input order, newest of each seed
    assert warnings == ["3 finished runs of a with seed 0 count as one seed, being the same "
                        "configuration and seed (the newest, new, "
                        "is used; not counted: old, middle)"]


def test_count_seeds_once_breaks_ties_by_listing_order_and_warns_in_order() -> None:
    # two runs of each of 20 seeds finished in the same second: the one listed last counts
    # (a sort that is not stable would mix them up once there are more than 16 rows)
    done = pd.DataFrame.from_records(
        [{"label": "a", "seed": s, "path": f"{which}-{s}", "finished_at": 1.0 + s % 2}
         for which in ("first", "second") for s in range(20)])
    kept, warnings = compare.count_seeds_once(done)
    assert sorted(kept["path"]) == sorted(f"second-{s}" for s in range(20))
    # warnings in the order the repeated seeds first appear, not sorted
    done = pd.DataFrame.from_records(
        [{"label": name, "seed": 0, "path": f"{name}{i}", "finished_at": float(i)}
         for name in ("b", "a") for i in range(2)])
    _, warnings = compare.count_seeds_once(done)
    assert [w.split(" with ")[0] for w in warnings] == ["2 finished runs of b", "2 finished runs of a"]


def none_config(**changes: Any) -> dict[str, Any]:
    """A flat configuration whose reg section is the 'none' preset, with changes."""
    return {**reg_presets()["none"], "model.name": "cnn", **changes}


def test_choose_baseline_rules() -> None:
    plain = none_config()
    drop = none_config(**{"reg.dropout.fc": "0.5"})
    l2 = none_config(**{"reg.l2": "0.001"})
    assert compare.choose_baseline(None, {"p": plain, "d": drop}) == ("p", "")
    assert compare.choose_baseline("reg.dropout.fc=0.5", {"p": plain, "d": drop}) == ("d", "")
    assert compare.choose_baseline(None, {"p": plain}) == (
        None, "one configuration: nothing to compare against")
    # no unregularized run; one numeric knob: its setting 0 (the knob off), never the weakest
    grid = {name: none_config(**{"reg.dropout.conv": 0.25, "reg.dropout.fc": r}) for name, r in
            (("a", 0.5), ("b", 0.0), ("c", 0.75))}
    assert compare.choose_baseline(None, grid) == ("b", "")
    assert compare.choose_baseline(None, {k: grid[k] for k in "ac"})[0] is None
    # the study's declared baseline first; one that fits nothing is said
    assert compare.choose_baseline(None, grid, "reg.dropout.fc=0.75") == ("c", "")
    assert compare.choose_baseline(None, grid, "reg.dropout.fc=0.3") == ("b", "")
    name, note = compare.choose_baseline(None, {k: grid[k] for k in "ac"}, "reg.dropout.fc=0.3")
    assert name is None and note.startswith("the study's baseline reg.dropout.fc=0.3 matches "
                                            "none of them; no configuration without")
    two = {"a": none_config(**{"reg.dropout.fc": 0.5, "reg.l2": 0.0}),
           "b": none_config(**{"reg.dropout.fc": 0.0, "reg.l2": 0.1})}
    assert compare.choose_baseline(None, two)[0] is None  # two numeric knobs: no rule
    # no unregularized run, two knobs: the user must choose
    name, note = compare.choose_baseline(None, {"d": drop, "l": l2})
    assert name is None and note == ("no configuration without regularization; pick a "
                                     "baseline with --baseline KEY=VALUE")
    name, note = compare.choose_baseline(None, {"p": plain, "q": none_config(**{"model.name": "x"})})
    assert name is None and note.startswith("several configurations without regularization;")
    # a knob whose values are not all numbers is not a rate grid
    names = {"a": none_config(**{"reg.dropout.kind": "spatial", "reg.dropout.fc": 0.5}),
             "b": none_config(**{"reg.dropout.kind": "standard", "reg.dropout.fc": 0.5})}
    assert compare.choose_baseline(None, names)[0] is None
    flags = {"t": none_config(**{"reg.dropout.fc": 0.5, "reg.batchnorm": True}),
             "f": none_config(**{"reg.dropout.fc": 0.5, "reg.batchnorm": False})}
    assert compare.choose_baseline(None, flags)[0] is None  # booleans are not a numeric knob


def test_choose_baseline_refuses_a_spec_that_fits_none_or_many() -> None:
    configs = {"p": none_config(), "d": none_config(**{"reg.dropout.fc": 0.5}),
               "e": none_config(**{"reg.dropout.fc": 0.5, "reg.l2": 0.1})}
    with pytest.raises(ConfigError, match=r"^--baseline 'reg.l2=9' matches no configuration; "
                                          r"the configurations are: p; d; e$"):
        compare.choose_baseline("reg.l2=9", configs)
    with pytest.raises(ConfigError, match=r"^--baseline 'reg.dropout.fc=0.5' matches 2 "
                                          r"configurations; the configurations are: d; e$"):
        compare.choose_baseline("reg.dropout.fc=0.5", configs)


def write_metrics(folder: Path, val_losses: list[float]) -> None:
    log = metrics.MetricsLog(folder / "metrics.csv")
    for i, v in enumerate(val_losses):
        log.append(metrics.Row(epoch=i + 1, train_loss=1.0, train_acc=0.5, val_loss=v, val_acc=0.5))


def test_val_loss_rise(tmp_path: Path) -> None:
    write_metrics(tmp_path, [1.0, 0.4, math.nan, 0.7])
    assert compare.val_loss_rise(tmp_path) == pytest.approx(0.3)  # 0.7 - 0.4; NaN epoch skipped
    (tmp_path / "metrics.csv").unlink()
    write_metrics(tmp_path, [1.0, 0.6, 0.5])
    assert compare.val_loss_rise(tmp_path) == 0.0  # the last is the lowest
    (tmp_path / "metrics.csv").unlink()
    write_metrics(tmp_path, [1.0, 0.6, math.inf])
    assert compare.val_loss_rise(tmp_path) is None  # the last epoch has no finite loss
    (tmp_path / "metrics.csv").unlink()
    assert compare.val_loss_rise(tmp_path) is None


def write_run(folder: Path, seed: int | None, status: str = "completed", val_acc: float = 0.9,
              config: str | None = None, **fields: Any) -> Path:
    """A run folder: summary.json (best epoch 2, last and kept epoch 3), config.yaml when
    config is given, and for a finished run a metrics.csv whose val loss rises 0.3."""
    folder.mkdir(parents=True)
    if config is not None:
        (folder / "config.yaml").write_text(config)
    if status in ("completed", "early_stopped"):
        write_metrics(folder, [1.0, 0.5, 0.8])
    best = metrics.Row(epoch=2, train_loss=0.5, train_acc=val_acc + 0.05, val_loss=0.5,
                       val_acc=val_acc)
    last = metrics.Row(epoch=3, train_loss=0.4, train_acc=val_acc + 0.05, val_loss=0.8,
                       val_acc=val_acc - 0.05)
    values: dict[str, Any] = {"epochs_run": 3, "best_epoch": 2, "kept_epoch": 3, "best": best,
                              "last": last, "test_acc": 0.88, "mc_dropout": {"test_acc": 0.89},
                              "seed": seed, "val_loss_rise": 0.25}
    Summary(status=status, **(values | fields)).write(folder)
    return folder


def test_load_runs_reads_metrics_config_and_status(tmp_path: Path) -> None:
    cfg = ("seed: 3\nexperiment: grid\nbaseline: reg=none\noutput:\n  root: out\n"
           "logger:\n  mlflow: true\nsettle:\n  rounds: 2\nreg:\n  dropout:\n    fc: 0.5\n")
    good = write_run(tmp_path / "good", None, config=cfg)
    os.utime(good / "summary.json", (5, 5))
    (good / ".hydra").mkdir()
    (good / ".hydra" / "overrides.yaml").write_text("- reg.dropout.fc=0.5\n")
    old = write_run(tmp_path / "old", 1, config="seed: 1\n", format_version=1, val_loss_rise=None)
    failed = write_run(tmp_path / "failed", 4, "failed", error="CUDA out of memory")
    killed = write_run(tmp_path / "killed", 2, "interrupted", config="seed: 7\nreg:\n  l2: 0.1\n")
    (tmp_path / "sweep.json").write_text("{}")  # tmp_path is a sweep: its folders are jobs
    df = compare.load_runs([good, old, failed, killed]).set_index("path")
    g, o, f, k = (df.loc[str(d)] for d in (good, old, failed, killed))
    assert g["status"] == "completed" and g["seed"] == 3 and pd.isna(g["error"])
    # seed, experiment, baseline, output, logger and settle are not part of the configuration
    assert g["config"] == {"reg.dropout.fc": 0.5} and g["declared"] == "reg=none"
    assert g["typed"] == ["reg.dropout.fc=0.5"] and g["sweep"] == str(tmp_path)
    assert (g["val_acc"], g["gap_acc"], g["val_acc_last"]) == pytest.approx((0.9, 0.05, 0.85))
    assert (g["best_epoch"], g["last_epoch"], g["kept_epoch"]) == (2, 3, 3)
    assert (g["test_acc"], g["mc_test_acc"]) == (0.88, 0.89)
    assert pd.isna(g["mc_test_nll"]) and pd.isna(g["train_images_per_s"])  # older runs lack them
    assert g["val_loss_rise"] == 0.25 and g["finished_at"] == 5  # as summary.json says
    assert o["val_loss_rise"] == pytest.approx(0.3)  # format 1: from metrics.csv
    assert pd.isna(o["typed"])  # no .hydra/overrides.yaml: unknown
    assert f["seed"] == 4 and f["error"] == "CUDA out of memory" and f["config"] == {}
    assert pd.isna(f["val_loss_rise"])  # not a finished run: no rise
    assert k["seed"] == 7 and k["config"] == {"reg.l2": 0.1}  # its config.yaml is read
    assert pd.isna(k["val_loss_rise"]) and k["error"] == "status interrupted"


def test_load_runs_reads_the_configuration_and_rise_summary_json_holds(tmp_path: Path) -> None:
    from regbench.store import summary as summaries

    held = write_run(tmp_path / "held", 9, "interrupted")  # no config.yaml: its copy is read
    s = summaries.read(held)
    s.config = {"seed": 9, "reg.l2": 0.2}
    s.write(held)
    lost = write_run(tmp_path / "lost", 3, format_version=2)  # no copy, config.yaml gone
    v2 = write_run(tmp_path / "v2", 4, config="seed: 4\n", format_version=2)
    df = compare.load_runs([held, lost, v2]).set_index("path")
    assert df.loc[str(held), "config"] == {"reg.l2": 0.2} and df.loc[str(held), "seed"] == 9
    assert df.loc[str(lost), "status"] == "damaged"
    assert df.loc[str(lost), "error"] == f"{lost}: no config.yaml; not a regbench run directory"
    assert df.loc[str(v2), "val_loss_rise"] == 0.25  # format 2 on: summary.json's, not 0.3


def test_load_runs_marks_damaged_folders_and_goes_on(tmp_path: Path) -> None:
    nameless = write_run(tmp_path / "nameless", 5)
    (nameless / "summary.json").write_text(json.dumps({"seed": 5}))  # no status
    torn = write_run(tmp_path / "torn", 6, config="seed: 6\n")
    (torn / "metrics.csv").write_text("epoch,train_loss\n1,0.5\n")  # columns missing
    bare = write_run(tmp_path / "bare", 7, "interrupted", config="seed: 7\n")
    Summary(status="completed", best=None, seed=7).write(bare)  # finished, no metrics.csv
    good = write_run(tmp_path / "good", 8, config="seed: 8\n")
    df = compare.load_runs([nameless, torn, bare, good]).set_index("path")
    assert list(df["status"]) == ["damaged", "damaged", "damaged", "completed"]
    assert "summary.json: unreadable" in df.loc[str(nameless), "error"]
    assert df.loc[str(torn), "error"].startswith(
        f"{torn / 'metrics.csv'}: damaged (no column train_acc, val_loss, val_acc")
    assert df.loc[str(bare), "error"].startswith(str(bare / "metrics.csv"))
    assert all(pd.isna(df.loc[str(d), "seed"]) and df.loc[str(d), "config"] == {}
               for d in (nameless, torn, bare))
    assert df.loc[str(torn), "typed"] is None and df.loc[str(torn), "declared"] is None
    assert df.loc[str(torn), "sweep"] is None and df.loc[str(torn), "finished_at"] == 0.0
    comp = compare.compare([nameless, torn, bare, good])
    assert comp.damaged == list(df["error"][:3]) and len(comp.table) == 1
    alone = compare.load_runs([nameless])  # a damaged run names the columns every run has
    assert list(alone.columns) == ["path", "status", "seed", "error", "typed", "sweep",
                                   "declared", "config", "finished_at", "at_chance"]
    with pytest.raises(RunDirError, match=r"metrics.csv: unreadable \(ValueError: no column "
                                          r"train_acc, val_loss, val_acc"):
        compare.val_loss_rise(torn)


def test_load_runs_refuses_a_finished_run_without_its_best_row(tmp_path: Path) -> None:
    bad = write_run(tmp_path / "bad", 0, config="seed: 0\n", best=None)
    with pytest.raises(RunDirError, match=r"summary.json: status completed but no 'best' row"):
        compare.load_runs([bad])


def test_which_weights_were_tested() -> None:
    def runs(kept: list[float], last: list[float], best: list[float]) -> pd.DataFrame:
        return pd.DataFrame({"kept_epoch": kept, "last_epoch": last, "best_epoch": best})

    assert compare.tested_weights(runs([10, 12], [10, 12], [4, 5])) == "last"
    assert compare.tested_weights(runs([4, 5], [10, 12], [4, 5])) == "best"
    assert compare.tested_weights(runs([10, 10], [10, 10], [10, 10])) == "best"  # last was best
    assert compare.tested_weights(runs([10, 5], [10, 12], [4, 5])) == "kept"  # mixed
    assert compare.tested_weights(runs([math.nan, 5], [10, 5], [4, 5])) == "kept"  # unknown
    assert compare.tested_weights(runs([], [], [])) == "kept"


def test_swept_axes_are_keys_a_sweep_varied_itself() -> None:
    done = pd.DataFrame({
        "sweep": ["s1", "s1", "s1", None, None],
        "typed": [["reg=dropout", "reg.dropout.fc=0.1", "seed=0", "reg.max_norm=3"],
                  ["reg=dropout", "reg.dropout.fc=0.3", "seed=0", "reg.max_norm=4"],
                  ["reg=dropout", "reg.dropout.fc=0.5", "+trainer.epochs=3", "reg.max_norm=4"],
                  ["reg.l2=0.1"], ["reg.l2=0.2"]]})
    axes = ["reg.dropout.fc", "reg.l2", "reg.max_norm", "trainer.epochs"]
    # fc took three values in the sweep and max_norm two; l2 varied only outside a sweep;
    # epochs took one value
    assert compare.swept_axes(done, axes) == ["reg.dropout.fc", "reg.max_norm"]
    unknown = done.assign(typed=[None, *done["typed"][1:]])
    assert compare.swept_axes(unknown, axes) == axes


def test_compare_groups_runs_and_finds_the_baseline(tmp_path: Path) -> None:
    for seed, (plain, drop) in enumerate([(0.90, 0.93), (0.92, 0.95), (0.91, 0.93)]):
        write_run(tmp_path / f"p{seed}", seed, val_acc=plain,
                  config=f"seed: {seed}\nreg:\n  dropout:\n    fc: 0.0\n")
        write_run(tmp_path / f"d{seed}", seed, val_acc=drop,
                  config=f"seed: {seed}\nreg:\n  dropout:\n    fc: 0.5\n")
    write_run(tmp_path / "x", 9, "diverged", config="seed: 9\nreg:\n  dropout:\n    fc: 0.5\n")
    comp = compare.compare(sorted(p for p in tmp_path.iterdir()))
    assert comp.baseline == "reg.dropout.fc=0.0" and comp.axes == ["reg.dropout.fc"]
    assert comp.comparisons == 1 and comp.adjusted and comp.note == "" and comp.duplicates == []
    assert comp.failed["path"].tolist() == [str(tmp_path / "x")]
    assert list(comp.failed.columns) == ["path", "status", "error", "seed", "label"]
    assert (comp.failed.at[0, "seed"], comp.failed.at[0, "label"]) == (9, "x")  # nothing typed
    assert compare.diverged_text(comp) == "1 of 7 runs diverged and is not compared: x seed 9"
    assert sorted(comp.runs["label"]) == ["reg.dropout.fc=0.0"] * 3 + ["reg.dropout.fc=0.5"] * 3
    assert comp.tested == "last" and comp.swept == ["reg.dropout.fc"]  # origin unknown: all axes
    assert comp.margins == {"val_acc": 0.005, "gap_acc": 0.005, "gap_acc_last": 0.005}
    row = comp.table.set_index("config").loc["reg.dropout.fc=0.5"]
    assert row["d_val_acc"] == pytest.approx(np.mean([0.03, 0.03, 0.02]))
    assert set(comp.configs) == {"reg.dropout.fc=0.0", "reg.dropout.fc=0.5"}
    chosen = compare.compare(sorted(p for p in tmp_path.iterdir()), "reg.dropout.fc=0.5",
                             margin=2.0)
    assert chosen.baseline == "reg.dropout.fc=0.5" and chosen.margins["val_acc"] == 0.02


def test_compare_names_configurations_by_what_was_typed(tmp_path: Path) -> None:
    # dataset.train_size differs too, though no typed override set it: the runs were not
    # made from one base configuration, and the label says so
    for rate, size in ((0.0, 100), (0.5, 200)):
        for seed in (0, 1):
            run = write_run(tmp_path / f"r{rate}_{seed}", seed, val_acc=0.9 + rate / 10 + seed / 100,
                            config=f"seed: {seed}\ndataset:\n  train_size: {size}\n"
                                   f"reg:\n  dropout:\n    fc: {rate}\n")
            (run / ".hydra").mkdir()
            (run / ".hydra" / "overrides.yaml").write_text(f"- reg.dropout.fc={rate}\n")
    comp = compare.compare(sorted(tmp_path.iterdir()))
    assert comp.axes == ["dataset.train_size", "reg.dropout.fc"]
    assert sorted(comp.table["config"]) == ["reg.dropout.fc=0.0 dataset.train_size=100",
                                            "reg.dropout.fc=0.5 dataset.train_size=200"]


def test_compare_and_aggregate_judge_equivalence_with_the_margins(tmp_path: Path) -> None:
    # +0.1 points, sd 0.2 points over 4 seeds: inside a 1-point margin, not established
    base = [0.90, 0.91, 0.92, 0.93]
    near = [0.903, 0.909, 0.9225, 0.9295]
    d = np.subtract(near, base)
    for seed, (b, v) in enumerate(zip(base, near, strict=True)):
        write_run(tmp_path / f"b{seed}", seed, val_acc=b, config=f"seed: {seed}\nreg:\n  l2: 0.0\n")
        write_run(tmp_path / f"n{seed}", seed, val_acc=v, config=f"seed: {seed}\nreg:\n  l2: 0.1\n")
    assert sps.ttest_1samp(d, 0).pvalue > 0.05
    row = compare.compare(sorted(tmp_path.iterdir()), margin=1.0).table.set_index("config").iloc[0]
    assert row["val_acc_equivalent"] is True and row["val_acc_verdict"] == "equivalent"
    tight = compare.compare(sorted(tmp_path.iterdir()), margin=0.01).table.set_index("config")
    assert tight.iloc[0]["val_acc_verdict"] == "undecided"
    # and through aggregate: the margin per metric, the adjustment passed on to the TOST
    values = {"base": base, "near": near, "other": [0.5, 0.6, 0.55, 0.65]}
    for adjust, level in ((True, 1 - 0.05 / 2), (False, 0.95)):
        _, low, high = t_interval(list(d), level)
        margin = (max(abs(low), abs(high)) + 1e-4) if adjust else 0.0045
        table, _ = compare.aggregate(done_runs(values), "base", adjust, {"val_acc": margin})
        near_row = table.set_index("config").loc["near"]
        inside = bool(-margin < low and high < margin)
        assert near_row["val_acc_equivalent"] is inside, (adjust, low, high, margin)
        assert near_row["val_acc_verdict"] == ("equivalent" if inside else "undecided")
        assert pd.isna(near_row["gap_acc_equivalent"])  # no margin for this metric: no verdict
        assert math.isnan(near_row["val_acc_seeds_to_equivalent"]) is inside
    # the Bonferroni interval at 97.5% reaches past 0.45 points; the 95% one does not
    _, low95, high95 = t_interval(list(d), 0.95)
    _, low975, high975 = t_interval(list(d), 0.975)
    assert max(abs(low95), abs(high95)) < 0.0045 < max(abs(low975), abs(high975))
    strict, _ = compare.aggregate(done_runs(values), "base", True, {"val_acc": 0.0045})
    assert strict.set_index("config").loc["near", "val_acc_verdict"] == "undecided"
    assert strict.set_index("config").loc["near", "val_acc_seeds_to_equivalent"] > 4


def test_compare_uses_the_baseline_the_study_declares(tmp_path: Path) -> None:
    for rate in (0.0, 0.3, 0.6):
        for seed in (0, 1):
            write_run(tmp_path / f"r{rate}_{seed}", seed, val_acc=0.9 + rate / 10,
                      config=f"seed: {seed}\nbaseline: reg.dropout.fc=0.3\n"
                             f"reg:\n  dropout:\n    fc: {rate}\n")
    assert compare.compare(sorted(tmp_path.iterdir())).baseline == "reg.dropout.fc=0.3"


def test_compare_passes_adjustment_and_repeated_seeds_through(tmp_path: Path) -> None:
    for rate, shift in ((0.0, 0.0), (0.3, 0.02), (0.6, 0.05)):
        for seed, v in enumerate([0.90, 0.92, 0.91]):
            write_run(tmp_path / f"r{rate}_{seed}", seed, val_acc=v + shift,
                      config=f"seed: {seed}\nreg:\n  dropout:\n    fc: {rate}\n")
    write_run(tmp_path / "again", 0, val_acc=0.5, config="seed: 0\nreg:\n  dropout:\n    fc: 0.0\n")
    os.utime(tmp_path / "again" / "summary.json", (1, 1))  # older: the first run of seed 0 counts
    run_dirs = sorted(p for p in tmp_path.iterdir())
    adjusted, raw = compare.compare(run_dirs), compare.compare(run_dirs, adjust=False)
    assert len(adjusted.duplicates) == 1 and "with seed 0" in adjusted.duplicates[0]
    assert adjusted.comparisons == 2
    levels = adjusted.table["d_val_acc_level"].dropna()
    # identical shifts: p = 0 for both, rejected at steps 1 (1 - 0.05/2) and 2 (1 - 0.05/1)
    assert sorted(levels) == pytest.approx([0.95, 0.975])
    assert list(raw.table["d_val_acc_level"].dropna()) == pytest.approx([0.95, 0.95])
