"""`regbench sweep hydra/sweeper=optuna`: a random search through the CLI, then summarize
and plot; ranges checked before anything runs; a search refuses --resume."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from helpers import TINY, png_size, run_cli
from regbench.launch import sweep
from regbench.cli import app
from regbench.errors import ConfigError
from regbench.launch.jobs import JobOutcome, search_objective

SEARCH = ["hydra/sweeper=optuna", "hydra.sweeper.sampler=random", "hydra.sweeper.sampler.seed=0",
          "hydra.sweeper.n_trials=4", "reg.dropout.fc=interval(0,0.8)", *TINY, "trainer.epochs=1",
          "dataset.train_size=100"]


@pytest.mark.slow
def test_a_random_search_runs_its_trials_as_run_folders_then_summarizes_and_plots(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proc = run_cli("sweep", *SEARCH, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "4 trials of an Optuna search over reg.dropout.fc" in proc.stdout
    (sweep_dir,) = (tmp_path / "results" / "default" / "sweeps").iterdir()
    plan = json.loads((sweep_dir / "sweep.json").read_text())
    assert plan["sweeper"] == "optuna" and len(plan["jobs"]) == 4
    rates = []
    for n in range(4):
        summary = json.loads((sweep_dir / str(n) / "summary.json").read_text())
        assert summary["status"] == "completed"
        rates.append(float(next(o for o in plan["jobs"][n] if o.startswith("reg.dropout.fc="))[15:]))
    assert len(set(rates)) == 4 and all(0 <= r < 0.8 for r in rates)  # drawn from the range
    table = pd.read_csv(sweep_dir / "summary.csv")
    assert len(table) == 4 and table["convergence_epoch_mean"].eq(1).all()
    assert png_size(sweep_dir / "trials_reg.dropout.fc.png") >= (600, 300)  # a scatter, not bars
    assert not (sweep_dir / "vs_reg.dropout.fc.png").exists()
    summarized = run_cli("summarize", str(sweep_dir), "--format", "csv", cwd=tmp_path)
    assert summarized.returncode == 0 and len(summarized.stdout.strip().splitlines()) == 5
    monkeypatch.chdir(tmp_path)
    resumed = CliRunner().invoke(app, ["sweep", "--resume", str(sweep_dir)])
    assert isinstance(resumed.exception, ConfigError) and "cannot be resumed" in str(resumed.exception)


@pytest.mark.slow
def test_a_search_range_outside_the_allowed_values_stops_before_anything_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = [a.replace("interval(0,0.8)", "interval(0.2,1.5)") for a in SEARCH]
    result = CliRunner().invoke(app, ["sweep", *args])
    assert isinstance(result.exception, ConfigError)
    assert "search range (reg.dropout.fc=1.5): reg.dropout.fc=1.4999987 is not allowed" \
        in str(result.exception)
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_probe_jobs_try_each_choice_and_both_ends() -> None:
    jobs = sweep.probe_jobs(["reg.dropout.fc=interval(0,0.5)", "reg=none,l2", "seed=3"])
    assert jobs == [["reg.dropout.fc=0.0", "reg=none", "seed=3"],
                    ["reg.dropout.fc=0.4999995", "reg=none", "seed=3"],
                    ["reg.dropout.fc=0.0", "reg=l2", "seed=3"]]
    assert sweep.job_overrides(["hydra.sweeper.sampler=random"])[0] == "hydra/sweeper/sampler=random"


def test_an_unfinished_trial_is_a_failed_trial(tmp_path: Path) -> None:
    # None is not a number: the Optuna sweeper records the trial as failed and goes on
    assert search_objective(JobOutcome(tmp_path, "diverged", 1)) is None
    (tmp_path / "summary.json").write_text(json.dumps({"status": "completed", "best": {"val_acc": 0.9}}))
    assert search_objective(JobOutcome(tmp_path, "completed", 0)) == 0.9


def test_a_search_with_nothing_to_search_is_refused_before_anything_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["sweep", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=20",
                                      *TINY])
    assert isinstance(result.exception, ConfigError)
    assert "nothing to search" in str(result.exception) and "\n" not in str(result.exception)
    assert not (tmp_path / "results").exists()


def test_the_search_example_of_sweep_help_is_continued_within_80_columns() -> None:
    result = CliRunner().invoke(app, ["sweep", "-h"], env={"COLUMNS": "80", "NO_COLOR": "1"})
    lines = result.stdout.splitlines()
    assert result.exit_code == 0 and max(len(line) for line in lines) <= 80
    first = next(i for i, line in enumerate(lines) if "hydra/sweeper=optuna" in line)
    assert lines[first].rstrip().endswith("\\") and "interval(0,0.8)" in lines[first + 1]
