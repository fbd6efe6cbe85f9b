"""summarize and plot on hand-written run folders whose numbers are known."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from typer.testing import CliRunner

from helpers import Drawn, png_size
from regbench.present import plots
from regbench.study import compare
from regbench.store import metrics
from regbench.store import runs
from regbench.cli import app
from regbench.training.schema import RegbenchConfig
from regbench.errors import ConfigError, RunDirError

# Student t quantiles for a two-sided 95% interval, from a printed t-table.
T975 = {1: 12.7062, 2: 4.3027}


def write_run(folder: Path, seed: int, val_acc: float, train_acc: float, status: str = "completed",
              **config: object) -> Path:
    """A run folder as regbench writes it: config.yaml, a 2-epoch metrics.csv, summary.json."""
    folder.mkdir(parents=True)
    cfg = OmegaConf.structured(RegbenchConfig)
    for key, value in {"seed": seed, "trainer.epochs": 2, **config}.items():
        OmegaConf.update(cfg, key, value)
    (folder / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    rows = [metrics.Row(epoch=1, train_loss=1.0, train_acc=train_acc - 0.1, val_loss=1.1,
                        val_acc=val_acc - 0.1, train_loss_running=1.2, lr=0.05, epoch_time_s=1.0),
            metrics.Row(epoch=2, train_loss=0.2, train_acc=train_acc, val_loss=0.5, val_acc=val_acc,
                        train_loss_running=0.4, lr=0.05, epoch_time_s=1.0)]
    log = metrics.MetricsLog(folder / "metrics.csv")
    for row in rows if status != "diverged" else []:
        log.append(row)
    done = status != "diverged"
    summary = {"status": status, "epochs_run": 2 if done else 0, "best_epoch": 2 if done else None,
               "best": metrics.row_dict(rows[1]) if done else None, "test_acc": val_acc - 0.01,
               "wall_time_s": 10.0 + seed, "seed": seed, "error": None}
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


@pytest.fixture
def study(tmp_path: Path) -> Path:
    """Four configurations: none (3 seeds), FC dropout (3 + 1 diverged), l2 (2), weight decay (1)."""
    root = tmp_path / "results" / "study"
    for seed, (val, train) in enumerate([(0.90, 1.0), (0.92, 1.0), (0.94, 1.0)]):
        write_run(root / f"none{seed}", seed, val, train)
    for seed, (val, train) in enumerate([(0.93, 0.97), (0.96, 0.98), (0.96, 0.99)]):
        write_run(root / f"dropout{seed}", seed, val, train, **{"reg.dropout.fc": 0.5})
    write_run(root / "dropout3", 3, 0.5, 0.5, status="diverged", **{"reg.dropout.fc": 0.5})
    for seed, val in enumerate([0.91, 0.95]):
        write_run(root / f"l2_{seed}", seed, val, 1.0, **{"reg.l2": 5e-4})
    write_run(root / "wd0", 0, 0.94, 1.0, **{"reg.weight_decay": 5e-2})
    return root


def by_config(comp: compare.Comparison) -> dict[str, dict[str, object]]:
    return {r["config"]: r for r in comp.table.to_dict(orient="records")}


def t_interval(diffs: list[float]) -> tuple[float, float, float]:
    """Mean and 95% interval of paired differences, by the textbook formula."""
    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = T975[n - 1] * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def test_groups_means_stds_and_paired_intervals_are_exact(study: Path) -> None:
    comp = compare.compare(runs.find_runs([study]), adjust=False)
    rows = by_config(comp)
    assert list(comp.table["config"]) == ["reg.dropout.fc=0.5", "reg=weight_decay", "reg=l2", "reg=none"]
    assert comp.baseline == "reg=none" and comp.table["best"].tolist() == [True, False, False, False]
    drop, none, l2, wd = (rows[k] for k in ("reg.dropout.fc=0.5", "reg=none", "reg=l2", "reg=weight_decay"))
    assert (drop["seeds"], none["seeds"], l2["seeds"], wd["seeds"]) == (3, 3, 2, 1)
    assert none["val_acc_mean"] == pytest.approx(0.92) and none["val_acc_std"] == pytest.approx(0.02)
    assert drop["val_acc_mean"] == pytest.approx(0.95)
    assert drop["val_acc_std"] == pytest.approx(math.sqrt((0.02**2 + 0.01**2 + 0.01**2) / 2))
    assert drop["gap_acc_mean"] == pytest.approx(0.03) and drop["gap_acc_std"] == pytest.approx(0.01)
    assert drop["wall_time_s_mean"] == pytest.approx(11.0) and drop["test_acc_mean"] == pytest.approx(0.94)

    mean, low, high = t_interval([0.03, 0.04, 0.02])  # dropout − none, seed by seed
    assert (drop["d_val_acc"], drop["d_val_acc_low"], drop["d_val_acc_high"]) == pytest.approx(
        (mean, low, high), abs=1e-5)
    assert low == pytest.approx(0.005159, abs=1e-5) and drop["val_acc_within_noise"] is False
    mean, low, high = t_interval([0.04 - 0.10, 0.02 - 0.08, 0.03 - 0.06])  # gaps
    assert (drop["d_gap_acc"], drop["d_gap_acc_low"], drop["d_gap_acc_high"]) == pytest.approx(
        (mean, low, high), abs=1e-5)
    mean, low, high = t_interval([0.01, 0.03])  # l2 has seeds 0 and 1 only
    assert (l2["d_val_acc"], l2["d_val_acc_low"], l2["d_val_acc_high"]) == pytest.approx(
        (mean, low, high), abs=1e-4)
    assert l2["val_acc_within_noise"] is True
    assert wd["d_val_acc"] == pytest.approx(0.04) and math.isnan(wd["d_val_acc_low"])
    assert wd["val_acc_within_noise"] is None

    assert comp.failed["status"].tolist() == ["diverged"]
    assert comp.failed["path"].iloc[0].endswith("dropout3")


def test_the_configuration_left_beside_one_that_failed_is_named_by_the_swept_key(tmp_path: Path) -> None:
    """optim.lr=0.001,1e6: every 1e6 run diverged, so one configuration is compared; its label
    still says what it was swept against, not its reg section ('reg=none')."""
    root = tmp_path / "results" / "lr"
    for seed in range(3):
        write_run(root / f"slow{seed}", seed, 0.9 + seed / 100, 1.0, **{"optim.lr": 0.001})
        write_run(root / f"fast{seed}", seed, 0.1, 0.1, status="diverged", **{"optim.lr": 1e6})
    comp = compare.compare(sorted(root.iterdir()))
    assert comp.table["config"].tolist() == ["optim.lr=0.001"]
    assert list(comp.configs) == ["optim.lr=0.001"] and "optim.lr" in comp.axes
    assert sorted(comp.failed["status"]) == ["diverged"] * 3
    alone = compare.compare(sorted(root.glob("slow*")))  # the same runs on their own
    assert alone.table["config"].tolist() == ["reg=none"]


@pytest.mark.slow
def test_baseline_by_key_and_value_and_refusals(study: Path) -> None:
    run_dirs = runs.find_runs([study])
    assert compare.compare(run_dirs, "reg.l2=0.0005").baseline == "reg=l2"
    assert compare.compare(run_dirs, "reg=l2").baseline == "reg=l2"
    assert compare.compare(run_dirs, "reg.dropout.fc=0.5").baseline == "reg.dropout.fc=0.5"
    with pytest.raises(ConfigError, match="matches no configuration; the configurations are"):
        compare.compare(run_dirs, "reg=all")
    with pytest.raises(ConfigError, match="matches 3 configurations"):
        compare.compare(run_dirs, "reg.dropout.fc=0.0")
    with pytest.raises(RunDirError, match="no such folder"):
        runs.find_runs([study / "nowhere"])


@pytest.mark.slow
def test_summarize_command_prints_the_table_and_formats(study: Path) -> None:
    runner = CliRunner()
    table = runner.invoke(app, ["summarize", str(study)], env={"COLUMNS": "160", "NO_COLOR": "1"})
    assert table.exit_code == 0, table.output
    assert "undecided" in table.output and "no interval" in table.output
    assert "ddof=1" in table.output and "diverged" in table.output
    out = runner.invoke(app, ["summarize", str(study), "--format", "csv", "--baseline", "reg=none"])
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [r["config"] for r in rows][0] == "reg.dropout.fc=0.5"
    assert float(rows[0]["val_acc_mean"]) == pytest.approx(0.95)
    md = runner.invoke(app, ["summarize", str(study), "--format", "markdown"]).stdout
    assert md.startswith("| configuration | seeds |") and "| reg=none (baseline) |" in md
    data = json.loads(runner.invoke(app, ["summarize", str(study), "--format", "json"]).stdout)
    assert data["baseline"] == "reg=none" and len(data["configurations"]) == 4


def test_plot_writes_curves_and_the_swept_parameter(tmp_path: Path,
                                                   drawn: dict[str, Drawn]) -> None:
    root = tmp_path / "grid"
    rates = [0.0, 0.3, 0.6]
    for fc in rates:
        for seed in (0, 1):
            write_run(root / f"fc{fc}_{seed}", seed, 0.9 + fc / 10 + seed / 100, 1.0,
                      **{"reg.dropout.fc": fc})
    result = CliRunner().invoke(app, ["plot", str(root), "--out", str(tmp_path / "figs")])
    assert result.exit_code == 0, result.output
    paths = [Path(p) for p in result.stdout.split()]
    assert [p.name for p in paths] == ["curves.png", "vs_reg.dropout.fc.png"]
    assert all(png_size(p) >= (600, 300) for p in paths)
    # the mean val accuracy over the two seeds (val_acc at epoch 2, 0.1 less at epoch 1), in %
    mean_val = [100 * (0.9 + fc / 10 + 0.005) for fc in rates]
    curves, against = drawn["curves.png"], drawn["vs_reg.dropout.fc.png"]
    assert curves.panels >= 3  # accuracy, loss, gap
    assert all(curves.has([1, 2], [v - 10, v]) for v in mean_val)
    assert against.has(rates, mean_val)


@pytest.mark.slow
def test_a_figure_changes_with_the_runs_it_draws(tmp_path: Path) -> None:
    import matplotlib.image

    def pixels(name: str, val_acc: float) -> np.ndarray:
        for seed in (0, 1):
            write_run(tmp_path / name / str(seed), seed, val_acc + seed / 100, 1.0)
        comp = compare.compare(runs.find_runs([tmp_path / name]))
        (path,) = plots.make_plots(comp, tmp_path / name / "figs")
        return matplotlib.image.imread(path)

    first, again, other = pixels("a", 0.9), pixels("b", 0.9), pixels("c", 0.6)
    assert np.array_equal(first, again)  # the same runs draw the same picture
    assert first.shape != other.shape or not np.array_equal(first, other)


@pytest.mark.slow
def test_one_swept_rate_without_an_unregularized_run_uses_its_lowest_value_as_baseline(
        tmp_path: Path) -> None:
    for rate in (0.5, 0.0, 0.3):
        for seed in (0, 1):
            write_run(tmp_path / f"fc{rate}_{seed}", seed, 0.9 + rate / 10, 1.0,
                      **{"reg.dropout.conv": 0.25, "reg.dropout.fc": rate})
    comp = compare.compare(runs.find_runs([tmp_path]))
    assert comp.baseline == "reg.dropout.fc=0.0"
    # two numeric keys varying at once: no rule picks one, the user must say
    write_run(tmp_path / "l2", 0, 0.9, 1.0, **{"reg.dropout.conv": 0.25, "reg.l2": 1e-3})
    assert compare.compare(runs.find_runs([tmp_path])).baseline is None


@pytest.mark.slow
def test_a_search_without_an_unregularized_trial_has_no_baseline(tmp_path: Path) -> None:
    # one seed per drawn rate, none of them 0: the lowest drawn rate is no baseline
    for n, rate in enumerate((0.1716706251072333, 0.3321, 0.05012, 0.6613)):
        write_run(tmp_path / str(n), 0, 0.9 + rate / 10, 1.0, **{"reg.dropout.fc": rate})
    comp = compare.compare(runs.find_runs([tmp_path]))
    assert comp.baseline is None and "no configuration without regularization" in comp.note
    assert not (comp.table["best"] & comp.table["baseline"]).any()
    assert "reg.dropout.fc=0.1717" in list(comp.table["config"])
    # a grid of one knob that includes 0 (that knob off) takes 0 as the baseline
    write_run(tmp_path / "off", 0, 0.9, 1.0, **{"reg.dropout.fc": 0.0})
    assert compare.compare(runs.find_runs([tmp_path])).baseline == "reg.dropout.fc=0.0"


@pytest.mark.slow
def test_a_study_declares_its_own_baseline_and_the_command_line_wins(tmp_path: Path) -> None:
    for position in ("after_bn", "before_bn"):
        for seed in (0, 1):
            write_run(tmp_path / f"{position}{seed}", seed, 0.9 + seed / 100, 1.0,
                      **{"reg.batchnorm": True, "reg.dropout.fc": 0.5, "reg.dropout.position": position,
                         "baseline": "reg.dropout.position=after_bn"})
    run_dirs = runs.find_runs([tmp_path])
    assert compare.compare(run_dirs).baseline == "reg.dropout.position=after_bn"
    assert compare.compare(run_dirs, "reg.dropout.position=before_bn").baseline == \
        "reg.dropout.position=before_bn"
    # the declared baseline is not among these runs: the usual choice, and a note saying so
    write_run(tmp_path / "fc", 0, 0.9, 1.0, **{"reg.batchnorm": True, "reg.dropout.fc": 0.25,
                                               "reg.dropout.position": "before_bn",
                                               "baseline": "reg.dropout.position=after_bn"})
    comp = compare.compare([d for d in runs.find_runs([tmp_path]) if "after" not in d.name])
    assert comp.baseline is None
    assert "the study's baseline reg.dropout.position=after_bn matches none of them" in comp.note
    from regbench.launch.composition import compose

    assert compose(["experiment=bn_dropout_order"])[1].baseline == "reg.dropout.position=after_bn"
