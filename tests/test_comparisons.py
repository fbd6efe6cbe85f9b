"""Comparisons that settle the question: seeds counted once, pairing on common seeds,
multiplicity-adjusted intervals and verdicts, the gap at the last epoch, seeds needed.

Every expected number is computed here independently with scipy (t quantiles, paired
t-tests) and Holm's procedure written out by hand.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf
from scipy import stats as sps
from typer.testing import CliRunner

from regbench.study import compare
from regbench.store import metrics
from regbench.training import curves
from regbench.store import runs
from regbench.study import stats
from regbench.present import tables
from regbench.cli import app
from regbench.training.schema import RegbenchConfig


def write_run(folder: Path, seed: int, curve: list[tuple[float, float, float, float]],
              **config: object) -> Path:
    """A finished run whose metrics.csv rows are (train_loss, train_acc, val_loss, val_acc)."""
    folder.mkdir(parents=True)
    cfg = OmegaConf.structured(RegbenchConfig)
    for key, value in {"seed": seed, **config}.items():
        OmegaConf.update(cfg, key, value)
    (folder / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    log = metrics.MetricsLog(folder / "metrics.csv")
    rows = [metrics.Row(epoch=i + 1, train_loss=tl, train_acc=ta, val_loss=vl, val_acc=va)
            for i, (tl, ta, vl, va) in enumerate(curve)]
    for r in rows:
        log.append(r)
    best = rows[curves.best_index(rows) or 0]
    summary = {"status": "completed", "epochs_run": len(rows), "best_epoch": best.epoch,
               "best": metrics.row_dict(best), "last": metrics.row_dict(rows[-1]),
               "test_acc": best.val_acc, "wall_time_s": 1.0, "seed": seed}
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def curve(val_acc: float, last_gap: float = 0.1) -> list[tuple[float, float, float, float]]:
    """Val loss falls to 0.5 at epoch 2 then rises to 0.8; last-epoch gap as given."""
    return [(1.0, 0.6, 1.0, 0.55), (0.5, 0.9, 0.5, val_acc), (0.2, val_acc - 0.01 + last_gap, 0.8,
                                                               val_acc - 0.01)]


BASE = [0.90, 0.92, 0.91, 0.93, 0.89]  # val acc of the baseline, seeds 0-4
GROUPS = {  # rate -> val acc per seed (None: seed missing)
    0.2: [0.93, 0.95, 0.93, 0.96, 0.92],  # clearly better
    0.4: [0.91, 0.92, 0.93, 0.92, None],  # 4 seeds only; small difference
    0.6: [0.90, 0.93, 0.90, 0.94, 0.88],  # about the same
}


@pytest.fixture
def grid(tmp_path: Path) -> Path:
    root = tmp_path / "grid"
    for seed, v in enumerate(BASE):
        write_run(root / f"r0_{seed}", seed, curve(v, last_gap=0.20), **{"reg.dropout.fc": 0.0})
    for rate, values in GROUPS.items():
        for seed, v in enumerate(values):
            if v is not None:
                write_run(root / f"r{rate}_{seed}", seed, curve(v, last_gap=0.20 - rate / 4),
                          **{"reg.dropout.fc": rate})
    return root


def expected(rate: float, level: float = 0.95) -> dict[str, float]:
    """Paired difference, interval at this level and p-value against the baseline, from scipy."""
    pairs = [(v, b) for v, b in zip(GROUPS[rate], BASE) if v is not None]
    a, b = [p[0] for p in pairs], [p[1] for p in pairs]
    d = [x - y for x, y in pairs]
    n = len(d)
    mean = sum(d) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    half = sps.t.ppf(1 - (1 - level) / 2, n - 1) * sd / math.sqrt(n)
    return {"d": mean, "low": mean - half, "high": mean + half, "p": sps.ttest_rel(a, b).pvalue,
            "n": n, "sd": sd}


def holm_by_hand(p: dict[float, float], alpha: float = 0.05) -> dict[float, tuple[bool, float]]:
    """Holm (1979): sort the p-values; reject while p_(i) <= alpha / (k - i); stop at the first not.

    With each verdict, the confidence of the interval shown beside it: 1 - alpha / (k - i) at
    the step that rejected it, or at the first step that failed.
    """
    out, k = {}, len(p)
    still, level = True, 0.0
    for i, (name, value) in enumerate(sorted(p.items(), key=lambda kv: kv[1])):
        if still:
            still, level = value <= alpha / (k - i), 1 - alpha / (k - i)
        out[name] = (still, level)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("adjust", [True, False])
def test_adjusted_intervals_and_verdicts_match_scipy_and_holm(grid: Path, adjust: bool) -> None:
    comp = compare.compare(runs.find_runs([grid]), adjust=adjust)
    rows = {r["config"]: r for r in comp.table.to_dict(orient="records")}
    assert comp.baseline == "reg.dropout.fc=0.0" and comp.comparisons == 3
    p = {rate: expected(rate)["p"] for rate in GROUPS}
    verdicts = holm_by_hand(p) if adjust else {r: (v <= 0.05, 0.95) for r, v in p.items()}
    for rate, (established, level) in verdicts.items():
        e = expected(rate, level)
        row = rows[f"reg.dropout.fc={rate}"]
        assert (row["d_val_acc"], row["d_val_acc_low"], row["d_val_acc_high"]) == pytest.approx(
            (e["d"], e["low"], e["high"]), abs=1e-9)
        assert row["d_val_acc_p"] == pytest.approx(e["p"], rel=1e-9)
        assert row["val_acc_established"] is bool(established)
        assert row["d_val_acc_level"] == pytest.approx(level)
        assert bool(row["d_val_acc_low"] > 0 or row["d_val_acc_high"] < 0) is bool(established)
        assert row["pairs"] == e["n"]  # only the seeds both groups have
    assert rows["reg.dropout.fc=0.2"]["val_acc_established"] is True
    assert rows["reg.dropout.fc=0.4"]["seeds"] == 4 and rows["reg.dropout.fc=0.4"]["pairs"] == 4


@pytest.mark.slow
def test_adjusted_intervals_are_wider_than_raw_ones(grid: Path) -> None:
    adj = compare.compare(runs.find_runs([grid])).table.set_index("config")
    raw = compare.compare(runs.find_runs([grid]), adjust=False).table.set_index("config")
    width = lambda t: t["d_val_acc_high"] - t["d_val_acc_low"]  # noqa: E731
    assert (width(adj).dropna() > width(raw).dropna()).all()


def test_seeds_needed_solves_the_t_based_formula() -> None:
    n = stats.seeds_needed(d=1.0, sd=2.0, alpha=0.05, power=0.8)

    def formula(m: float) -> float:  # ((t_{1-a/2} + t_{power}) * sd / d)^2 with m - 1 df
        return ((sps.t.ppf(0.975, m - 1) + sps.t.ppf(0.8, m - 1)) * 2.0) ** 2

    assert n >= formula(n) and n - 1 < formula(n - 1)  # the smallest n that satisfies it
    assert 31 < n < 40  # the normal approximation gives 31.4; t quantiles add a few
    assert stats.seeds_needed(0.0, 1.0) == math.inf
    assert math.isnan(stats.seeds_needed(1.0, math.nan))


@pytest.mark.slow
def test_within_noise_rows_say_how_many_seeds_would_resolve_them(grid: Path) -> None:
    table = compare.compare(runs.find_runs([grid])).table.set_index("config")
    for rate in (0.4, 0.6):
        row = table.loc[f"reg.dropout.fc={rate}"]
        assert row["val_acc_established"] is False
        e = expected(rate)
        alpha = 1 - row["d_val_acc_level"]  # 80% power at the level of the interval shown
        assert alpha == pytest.approx(0.05 / 2)  # fc=0.2 rejected at step 1, step 2 failed

        def formula(n: int) -> float:  # ((t_{1-a/2} + t_{0.8}) * sd / d)^2 with n - 1 df
            return ((sps.t.ppf(1 - alpha / 2, n - 1) + sps.t.ppf(0.8, n - 1)) * e["sd"] / e["d"]) ** 2

        # the smallest n >= 2 that satisfies it, by brute force; none up to the cap: inf
        n = next((m for m in range(2, stats.MAX_SEEDS + 1) if m >= formula(m)), math.inf)
        assert row["val_acc_seeds_needed"] == n
    assert table.loc["reg.dropout.fc=0.4", "val_acc_seeds_needed"] < math.inf  # +0.5 points
    assert table.loc["reg.dropout.fc=0.6", "val_acc_seeds_needed"] == math.inf  # a zero mean
    assert math.isnan(table.loc["reg.dropout.fc=0.2", "val_acc_seeds_needed"])  # established


@pytest.mark.slow
def test_last_epoch_gap_and_val_loss_rise(grid: Path) -> None:
    table = compare.compare(runs.find_runs([grid])).table.set_index("config")
    assert table.loc["reg.dropout.fc=0.0", "gap_acc_last_mean"] == pytest.approx(0.20)
    assert table.loc["reg.dropout.fc=0.6", "gap_acc_last_mean"] == pytest.approx(0.05)
    assert table.loc["reg.dropout.fc=0.6", "d_gap_acc_last"] == pytest.approx(-0.15)
    assert table.loc["reg.dropout.fc=0.2", "val_loss_rise_mean"] == pytest.approx(0.3)  # 0.8 - 0.5
    assert table.loc["reg.dropout.fc=0.2", "gap_acc_mean"] == pytest.approx(0.9 - sum(GROUPS[0.2]) / 5)  # best epoch


@pytest.mark.slow
def test_baseline_row_has_empty_difference_fields(grid: Path) -> None:
    runner = CliRunner()
    out = json.loads(runner.invoke(app, ["summarize", str(grid), "--format", "json"]).stdout)
    base = next(c for c in out["configurations"] if c["baseline"])
    diff_keys = [k for k in base if k.startswith("d_") or k.endswith(("_established",
                                                                         "_within_noise",
                                                                         "_seeds_needed"))]
    assert diff_keys and all(base[k] is None for k in diff_keys)
    assert out["adjusted"] is True and out["comparisons"] == 3
    rows = list(csv.DictReader(io.StringIO(runner.invoke(app, ["summarize", str(grid),
                                                               "--format", "csv"]).stdout)))
    base_csv = next(r for r in rows if r["baseline"] == "True")
    assert all(base_csv[k] == "" for k in diff_keys)


def test_a_seed_run_twice_counts_once_with_a_warning(tmp_path: Path) -> None:
    old = write_run(tmp_path / "a", 0, curve(0.50))
    new = write_run(tmp_path / "b", 0, curve(0.90))
    os.utime(old / "summary.json", (1, 1))  # a is the older run
    write_run(tmp_path / "c", 1, curve(0.80))
    comp = compare.compare(runs.find_runs([tmp_path]))
    row = comp.table.iloc[0]
    assert row["seeds"] == 2 and row["val_acc_mean"] == pytest.approx((0.90 + 0.80) / 2)
    assert len(comp.duplicates) == 1 and str(new) in comp.duplicates[0] and str(old) in comp.duplicates[0]
    result = CliRunner().invoke(app, ["summarize", str(tmp_path)], env={"COLUMNS": "80"})
    assert result.exit_code == 0 and "count as one seed" in result.output


NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


@pytest.mark.slow
@pytest.mark.parametrize("width", [80, 160])
def test_table_fits_the_terminal_and_never_splits_a_number(grid: Path, width: int) -> None:
    result = CliRunner().invoke(app, ["summarize", str(grid)], env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= width
    body = lines[lines.index(next(x for x in lines if x.startswith("─"))) + 1:]
    tokens = [t for line in body for t in line.replace("[", " ").replace("]", " ")
              .replace(",", " ").split()]
    # every label appears whole, and no number lost digits to a line break
    for label in ("reg.dropout.fc=0.0", "reg.dropout.fc=0.2", "reg.dropout.fc=0.4"):
        assert label in tokens
    assert all(len(t.split(".")[-1]) in (1, 2, 3) for t in tokens if NUMBER.match(t) and "." in t)
    if width == 80:
        assert "Not shown at this width" in " ".join(result.stdout.split())  # the caption wraps
    cells = body[:next(i for i, line in enumerate(body) if line.startswith("Mean"))]
    assert cells and not any("no effect" in line for line in cells)  # only the caption says it


def test_an_estimate_beyond_the_cap_reads_as_more_seeds_never_as_no_effect() -> None:
    from regbench.present import tables

    row = pd.Series({"baseline": False, "d_val_acc": 0.0, "d_val_acc_low": -0.02,
                     "d_val_acc_high": 0.02, "val_acc_established": False,
                     "val_acc_verdict": "undecided", "val_acc_seeds_needed": math.inf,
                     "val_acc_seeds_to_equivalent": math.inf})
    cell = tables.COLUMNS["d_val_acc"].cell(row, " ")
    assert cell == "+0.00 [-2.00, +2.00] undecided > 10,000 seeds"
    finite = tables.COLUMNS["d_val_acc"].cell(row.copy().replace({math.inf: 1234.0}), " ")
    assert finite.endswith("undecided ~1,234 seeds")


@pytest.mark.slow
def test_columns_option_selects_and_rejects(grid: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["summarize", str(grid), "--format", "markdown", "--columns",
                              "seeds,time"]).stdout
    assert out.splitlines()[0] == "| configuration | seeds | time s |"
    bad = runner.invoke(app, ["summarize", str(grid), "--columns", "speed"])
    assert bad.exit_code != 0


def test_every_column_rounds_to_zero_only_below_its_own_precision(tmp_path: Path) -> None:
    # val loss 0.5 at epoch 2, then 0.5049: a rise of 0.0049, which three decimals show
    for seed in (0, 1):
        write_run(tmp_path / f"r{seed}", seed, [(1.0, 0.6, 1.0, 0.55), (0.5, 0.9, 0.5, 0.9),
                                                (0.4, 0.89996, 0.5049, 0.9)])
    comp = compare.compare(runs.find_runs([tmp_path]))
    assert comp.table["val_loss_rise_mean"].iloc[0] == pytest.approx(0.0049)
    header, rows = tables.display_rows(comp, sep=" ", columns=["rise", "gap_loss_last", "gap_last"])
    # a gap of -0.004 points prints +0.00, never -0.00
    assert rows[0] == ["+0.005", "+0.105", "+0.00 ± 0.00"]
    assert header[0] == "val loss rise"


@pytest.mark.parametrize(("kept", "header", "words"), [
    ("last", "test acc last ep. %", "weights of each run's last epoch"),
    ("best", "test acc best ep. %", "weights of each run's best epoch"),
    (None, "test acc kept wts %", "weights each run kept")])
def test_the_test_column_says_whose_weights_were_tested(tmp_path: Path, kept: str | None,
                                                         header: str, words: str) -> None:
    folder = write_run(tmp_path / "r", 0, curve(0.9))  # best epoch 2 of 3
    summary = json.loads((folder / "summary.json").read_text())
    summary["kept_epoch"] = {"last": 3, "best": 2, None: None}[kept]
    (folder / "summary.json").write_text(json.dumps(summary))
    comp = compare.compare([folder])
    assert comp.tested == (kept or "kept")
    names, _ = tables.display_rows(comp, sep=" ", columns=["config", "test_acc"])
    assert names[1] == header and words in tables.caption(comp)
SPLIT_P = {0.1: 0.030, 0.2: 0.010, 0.3: 0.040, 0.4: 0.015}  # rate -> p-value against the baseline
BASE6 = [0.90, 0.92, 0.91, 0.93, 0.89, 0.94]


@pytest.fixture
def split_grid(tmp_path: Path) -> Path:
    """Four rates whose p-values make raw p < 0.05 (all four), Holm (0.2 and 0.4) and
    Bonferroni (0.2 only) disagree; built with scipy's t quantiles (see test_stats.with_p)."""
    from test_stats import with_p

    root = tmp_path / "split"
    for seed, v in enumerate(BASE6):
        write_run(root / f"r0_{seed}", seed, curve(v), **{"reg.dropout.fc": 0.0})
    for rate, p in SPLIT_P.items():
        for seed, v in enumerate(with_p(p, np.array(BASE6))):
            write_run(root / f"r{rate}_{seed}", seed, curve(float(v)), **{"reg.dropout.fc": rate})
    return root


def test_holm_not_raw_nor_bonferroni_decides_and_the_printed_interval_agrees(split_grid: Path) -> None:
    comp = compare.compare(runs.find_runs([split_grid]))
    rows = comp.table.set_index("config")
    p = {rate: rows.loc[f"reg.dropout.fc={rate}", "d_val_acc_p"] for rate in SPLIT_P}
    assert p == pytest.approx(SPLIT_P, rel=1e-4)
    assert {r for r, v in p.items() if v < 0.05} == {0.1, 0.2, 0.3, 0.4}  # raw
    assert {r for r, v in p.items() if v <= 0.05 / 4} == {0.2}  # Bonferroni
    holm = {r for r, (e, _) in holm_by_hand(p).items() if e}
    assert holm == {0.2, 0.4}
    assert {r for r in SPLIT_P if rows.loc[f"reg.dropout.fc={r}", "val_acc_established"]} == holm
    # what a reader sees: each printed interval excludes 0 exactly when "established" is printed
    out = CliRunner().invoke(app, ["summarize", str(split_grid), "--format", "markdown",
                                   "--columns", "config,d_val_acc"]).stdout
    cells = re.findall(r"\| reg\.dropout\.fc=(0\.\d)(?: \(best\))? \| [+-][\d.]+ \[([+-][\d.]+), ([+-][\d.]+)\] "
                       r"(established|undecided|equivalent)", out)
    assert len(cells) == 4
    for rate, low, high, verdict in cells:
        assert (float(low) > 0 or float(high) < 0) is (verdict == "established"), (rate, low, high)
        assert (verdict == "established") is (float(rate) in holm)
    assert "Holm-adjusted" in out and "97.50%, 98.33%, 98.75%" in out  # the levels used
