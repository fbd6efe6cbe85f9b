"""`regbench sweep`: real multiruns through the CLI, failures kept apart, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from helpers import TINY, Drawn, cli, png_size, run_cli
from regbench.launch import sweep
from regbench.cli import app
from regbench.errors import ConfigError

GRID = [*TINY, "trainer.epochs=1", "reg.dropout.fc=0.0,0.5", "seed=0,1"]


def the_sweep(tmp_path: Path) -> Path:
    (sweep_dir,) = (tmp_path / "results" / "default" / "sweeps").iterdir()
    return sweep_dir


def status(job: Path) -> str:
    return json.loads((job / "summary.json").read_text())["status"]


def mtimes(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*")}


@pytest.mark.slow
def test_sequential_grid_then_resume_runs_only_the_unfinished_jobs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], drawn: dict[str, Drawn]) -> None:
    assert cli("sweep", *GRID, f"output.root={tmp_path / 'results'}") == 0
    out = capsys.readouterr().out
    sweep_dir = the_sweep(tmp_path)
    jobs = [sweep_dir / str(n) for n in range(4)]
    for job in jobs:
        assert len((job / "metrics.csv").read_text().splitlines()) == 2  # header + 1 epoch
        assert status(job) == "completed"
    assert "reg.dropout.fc=0.0" in out and "reg.dropout.fc=0.5" in out
    assert "Comparison" in out
    assert len((sweep_dir / "summary.csv").read_text().splitlines()) == 3  # header + 2 configs
    assert png_size(sweep_dir / "curves.png") >= (600, 300)
    for fc in ("0.0", "0.5"):  # each configuration's mean val accuracy over its 2 seeds, in %
        val = [json.loads((sweep_dir / str(n) / "summary.json").read_text())["last"]["val_acc"]
               for n in range(4) if f"reg.dropout.fc={fc}" in plan_jobs(sweep_dir)[n]]
        assert drawn["curves.png"].has([1], [100 * sum(val) / len(val)])

    # job 1 was interrupted after its checkpoint; job 3 never ran
    summary = json.loads((jobs[1] / "summary.json").read_text())
    (jobs[1] / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    for p in sorted(jobs[3].rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    jobs[3].rmdir()
    kept = {**mtimes(jobs[0]), **mtimes(jobs[2])}
    assert cli("sweep", "--resume", str(sweep_dir)) == 0
    assert "2 of 4 jobs finished; running 2" in capsys.readouterr().out
    assert status(jobs[1]) == "completed" and status(jobs[3]) == "completed"
    assert len((jobs[1] / "metrics.csv").read_text().splitlines()) == 2  # continued, not redone
    assert {**mtimes(jobs[0]), **mtimes(jobs[2])} == kept


def plan_jobs(sweep_dir: Path) -> list[str]:
    """Each job's overrides as one line, from the sweep's plan."""
    return [" ".join(job) for job in json.loads((sweep_dir / "sweep.json").read_text())["jobs"]]


@pytest.mark.slow
def test_joblib_launcher_runs_the_grid_in_parallel_workers(tmp_path: Path) -> None:
    proc = run_cli("sweep", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", *GRID, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    sweep_dir = the_sweep(tmp_path)
    for n in range(4):
        assert len((sweep_dir / str(n) / "metrics.csv").read_text().splitlines()) == 2
    assert (sweep_dir / "summary.csv").exists() and "Comparison" in proc.stdout


@pytest.mark.slow
def test_failed_and_diverged_jobs_do_not_stop_the_others(tmp_path: Path) -> None:
    # SGD at lr 1e6 makes the loss infinite in the first epoch; mnist's files are absent here
    proc = run_cli("sweep", *TINY, "trainer.epochs=1", "dataset=synthetic,mnist",
                   "dataset.download=false", f"dataset.root={tmp_path / 'none'}",
                   "optim=sgd", "optim.lr=0.05,1e6", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    sweep_dir = the_sweep(tmp_path)
    assert [status(sweep_dir / str(n)) for n in range(4)] == ["completed", "diverged", "failed", "failed"]
    error = json.loads((sweep_dir / "2" / "summary.json").read_text())["error"]
    assert "MNIST/raw" in error and "\n" not in error
    assert "2 of 4 jobs did not finish" in proc.stdout  # the two failed; the diverged one:
    assert "1 of 4 runs diverged and is not compared: dataset=synthetic optim.lr=1000000.0 " \
        "seed 0" in proc.stdout
    assert "dataset=synthetic optim.lr=1000000.0: diverged" in proc.stdout
    assert "dataset=mnist optim.lr=0.05: failed: dataset mnist" in proc.stdout
    assert "Comparison" in proc.stdout and "regbench sweep --resume" in proc.stdout
    # the one configuration compared is named by the axes it was swept on with the others
    table = pd.read_csv(sweep_dir / "summary.csv")
    assert table["config"].tolist() == ["optim.lr=0.05"]  # not its reg section, reg=none


def test_a_bad_value_on_an_axis_stops_the_sweep_before_anything_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["sweep", *TINY, "reg.dropout.fc=0.1,1.5", "seed=0,1"])
    assert isinstance(result.exception, ConfigError)
    assert "job 2 (reg.dropout.fc=1.5 seed=0): reg.dropout.fc=1.5 is not allowed" in str(result.exception)
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(("axis", "allowed"), [("seed=range(5,1)", "start < stop"),
                                                ("reg=glob(zz*)", "dropout")])
def test_an_empty_sweep_axis_is_one_line_naming_it(
        axis: str, allowed: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli("sweep", *TINY, "trainer.epochs=1", axis) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"regbench: error: {axis}: the sweep axis {axis.split('=')[0]} has no value")
    assert allowed in err and err.count("\n") == 1 and "internal error" not in err
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_preset_studies_expand_to_their_grids() -> None:
    jobs, _ = sweep.expand(["experiment=dropout_grid"])
    assert len(jobs) == 40 and sweep.sweep_axes(jobs) == ["reg.dropout.fc", "seed"]
    assert "reg.dropout.fc=0.75" in jobs[-1] and "seed=9" in jobs[-1]  # ten seeds by default
    assert len(sweep.expand(["experiment=dropout_grid", "seed=range(0,3)"])[0]) == 12
    jobs, _ = sweep.expand(["experiment=reg_compare", "seed=0"])  # the command line wins
    assert [j[0] for j in jobs] == [f"reg={r}" for r in
                                    "none dropout l2 weight_decay batchnorm early_stopping augment all".split()]
    jobs, hydra = sweep.expand(["experiment=bn_dropout_order", "hydra/launcher=joblib"])
    assert len(jobs) == 20 and hydra == ["hydra/launcher=joblib"]
    assert len(sweep.expand(["experiment=cifar10_dropout"])[0]) == 18
    jobs, _ = sweep.expand(["reg=glob(l*)", "seed=range(0,2)"])
    assert [j[0] for j in jobs[::2]] == ["reg=l1", "reg=l2", "reg=label_smoothing"]
    assert [j[1] for j in jobs[:2]] == ["seed=0", "seed=1"]


def test_a_note_is_printed_once_per_sweep_not_once_per_job(capsys: pytest.CaptureFixture[str]) -> None:
    from regbench.present import terminal

    for _ in range(3):  # three jobs that the population trains on their own
        terminal.note_once("regbench: logger.tensorboard.enabled: not trained per member")
    assert capsys.readouterr().err.count("not trained per member") == 1
