"""`regbench sweep hydra/sweeper=optuna`: regbench's own Optuna sweeper on current Optuna.

The params grammar against the old plugin's readings, a random search through the CLI,
pruning per epoch, an interrupted search resumed, and searches with nothing to show."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from typer.testing import CliRunner

from helpers import TINY, run_cli
from regbench.cli import app
from regbench.errors import ConfigError
from regbench.launch import search, sweep
from regbench.launch.jobs import JobOutcome, job_result

SEARCH = ["hydra/sweeper=optuna", "hydra.sweeper.sampler=random", "hydra.sweeper.sampler.seed=0",
          "hydra.sweeper.n_trials=4", "reg.dropout.fc=interval(0,0.8)", *TINY, "trainer.epochs=1",
          "dataset.train_size=100"]


def test_optuna_is_current() -> None:
    assert int(optuna.__version__.split(".")[0]) >= 4


# What hydra-optuna-sweeper 1.3.0 (with optuna 2.10) made of each params value, written in
# optuna 4's distributions: Uniform -> Float, LogUniform -> Float(log), IntUniform -> Int,
# DiscreteUniform -> Float(step). Only range() differs: the old plugin drew its stop value
# too (range(1,10) could give 10); here range() holds what Hydra's range() holds in a grid.
OLD_PLUGIN = [
    ("interval(0,0.8)", FloatDistribution(0.0, 0.8)),
    ("interval(1,10)", FloatDistribution(1.0, 10.0)),
    ("int(interval(1,10))", IntDistribution(1, 10)),
    ("tag(log,interval(1e-5,1e-1))", FloatDistribution(1e-5, 0.1, log=True)),
    ("tag(log, int(interval(1,100)))", IntDistribution(1, 100, log=True)),
    ("choice(1,2,x)", CategoricalDistribution([1, 2, "x"])),
    ("1,2,3", CategoricalDistribution([1, 2, 3])),
    ("choice(true,false)", CategoricalDistribution([True, False])),
    ("shuffle(range(3))", CategoricalDistribution([0, 1, 2])),
    ("range(0,1,0.25)", FloatDistribution(0.0, 0.75, step=0.25)),  # old: high 1.0
    ("range(0,10,3)", IntDistribution(0, 9, step=3)),  # old: the same (9 is the last value)
    ("range(1,10)", IntDistribution(1, 9)),  # old: high 10
]


@pytest.mark.parametrize("value, expected", OLD_PLUGIN)
def test_a_params_value_reads_as_the_old_plugin_read_it(value: str, expected: object) -> None:
    space = search.parse_params([f"a={value}"])
    assert space.distributions == {"a": expected} and space.fixed == {}


def test_plain_values_are_fixed_and_the_command_line_wins() -> None:
    space = search.parse_params(["a=interval(0,1)", "b=5", "c=[1,2]", "d=null", "e=true", "a=0.3",
                                 "b=1,2"])
    assert space.fixed == {"a": "0.3", "c": "[1,2]", "d": "null", "e": "true"}
    assert space.distributions == {"b": CategoricalDistribution([1, 2])}
    assert search.trial_overrides({"b": 2, "f": False}, {"a": "0.3"}) == ["b=2", "f=false", "a=0.3"]


@pytest.mark.parametrize("value, words", [
    ("interval(0.8,0.2)", "a=interval(0.8,0.2)"),
    ("tag(log,range(1,10))", "tag() applies to interval()"),
    ("tag(log,interval(0,1))", "a=tag(log,interval(0,1))"),
])
def test_an_impossible_range_is_one_line_naming_it(value: str, words: str) -> None:
    with pytest.raises(ConfigError, match=r"hydra.sweeper.params") as e:
        search.parse_params([f"a={value}"])
    assert words in str(e.value) and "\n" not in str(e.value)


def test_probe_jobs_try_each_choice_and_both_ends() -> None:
    jobs = sweep.probe_jobs(["reg.dropout.fc=interval(0,0.5)", "reg=none,l2", "seed=3"])
    assert jobs == [["reg.dropout.fc=0.0", "reg=none", "seed=3"],
                    ["reg.dropout.fc=0.4999995", "reg=none", "seed=3"],
                    ["reg.dropout.fc=0.0", "reg=l2", "seed=3"]]
    assert sweep.job_overrides(["hydra.sweeper.sampler=random", "hydra.sweeper.pruner=median"])[:2] \
        == ["hydra/sweeper/sampler=random", "hydra/sweeper/pruner=median"]


def test_a_job_hands_its_sweeper_its_status_and_objective(tmp_path: Path) -> None:
    assert job_result(JobOutcome(tmp_path, "diverged", 1)) == {"status": "diverged", "value": None}
    (tmp_path / "summary.json").write_text(json.dumps({"status": "completed", "best": {"val_acc": 0.9}}))
    assert job_result(JobOutcome(tmp_path, "completed", 0)) == {"status": "completed", "value": 0.9}


@pytest.mark.slow
def test_a_search_range_outside_the_allowed_values_stops_before_anything_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = [a.replace("interval(0,0.8)", "interval(0.2,1.5)") for a in SEARCH]
    result = CliRunner().invoke(app, ["sweep", *args])
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception).startswith("search range (reg.dropout.fc=1.5): "
                                            "reg.dropout.fc=1.4999987 is not allowed")
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_a_search_of_no_trial_is_bad_input(tmp_path: Path) -> None:
    proc = run_cli("sweep", *SEARCH, "hydra.sweeper.n_trials=0", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == ("regbench: error: hydra.sweeper.n_trials=0 is not allowed: "
                                   "an integer >= 1 (the number of trials to run)")
    assert not (tmp_path / "results").exists()


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


@pytest.mark.slow
def test_a_search_whose_trials_all_fail_ends_in_one_line(tmp_path: Path) -> None:
    # a learning rate this large makes the weights NaN after the first step: every trial
    # diverges in its second epoch
    proc = run_cli("sweep", *SEARCH, "hydra.sweeper.n_trials=2", "optim.lr=1e30",
                   "trainer.epochs=2", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == \
        "regbench: no trial of the search finished: nothing to compare"


@pytest.mark.slow
def test_a_random_search_runs_its_trials_as_run_folders_then_summarizes_and_plots(tmp_path: Path) -> None:
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
    study = optuna.load_study(study_name=sweep_dir.name, storage=f"sqlite:///{sweep_dir}/optuna.db")
    assert [t.params["reg.dropout.fc"] for t in study.trials] == rates  # trial n is job n
    table = pd.read_csv(sweep_dir / "summary.csv")
    assert len(table) == 4 and table["convergence_epoch_mean"].eq(1).all()
    assert (sweep_dir / "trials_reg.dropout.fc.png").stat().st_size > 0  # a scatter, not bars
    summarized = run_cli("summarize", str(sweep_dir), "--format", "csv", cwd=tmp_path)
    assert summarized.returncode == 0 and len(summarized.stdout.strip().splitlines()) == 5


PRUNED_SEARCH = ["hydra/sweeper=optuna", "hydra.sweeper.sampler=random",
                 "hydra.sweeper.sampler.seed=1", "hydra.sweeper.n_trials=6",
                 "hydra.sweeper.pruner=median", "hydra.sweeper.pruner.n_startup_trials=1",
                 "hydra.sweeper.pruner.n_warmup_steps=0", "reg.dropout.fc=interval(0,0.9)",
                 *TINY, "trainer.epochs=3", "dataset.train_size=200"]


@pytest.mark.slow
def test_a_pruner_stops_trials_that_trail_and_their_folders_say_pruned(tmp_path: Path) -> None:
    proc = run_cli("sweep", *PRUNED_SEARCH, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (sweep_dir,) = (tmp_path / "results" / "default" / "sweeps").iterdir()
    study = optuna.load_study(study_name=sweep_dir.name, storage=f"sqlite:///{sweep_dir}/optuna.db")
    pruned = [t.number for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned, [(t.number, t.state, t.intermediate_values) for t in study.trials]
    for n in pruned:
        summary = json.loads((sweep_dir / str(n) / "summary.json").read_text())
        rows = (sweep_dir / str(n) / "metrics.csv").read_text().strip().splitlines()[1:]
        assert summary["status"] == "pruned" and summary["test_acc"] is None
        assert summary["epochs_run"] == summary["stopped_epoch"] == len(rows) < 3
        assert len(study.trials[n].intermediate_values) == len(rows)  # one report per epoch
    assert f"Not averaged in ({len(pruned)} pruned):" in proc.stdout
    assert (sweep_dir / "trials_reg.dropout.fc.png").stat().st_size > 0  # pruned trials as x
    table = pd.read_csv(sweep_dir / "summary.csv")
    assert len(table) == 6 - len(pruned)  # pruned trials are never averaged
    summarized = run_cli("summarize", str(sweep_dir), cwd=tmp_path)
    assert summarized.returncode == 0
    for n in pruned:
        assert f"{sweep_dir / str(n)}: pruned: pruned by the search after epoch" in summarized.stdout


@pytest.mark.slow
def test_an_interrupted_search_resumes_without_running_a_trial_twice(tmp_path: Path) -> None:
    args = [*SEARCH, "hydra.sweeper.n_trials=5"]
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120"}
    proc = subprocess.Popen([sys.executable, "-m", "regbench", "sweep", *args], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("[2/5]"):  # Ctrl-C while the third trial starts
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "regbench sweep --resume" in err
    (sweep_dir,) = (tmp_path / "results" / "default" / "sweeps").iterdir()
    resumed = run_cli("sweep", "--resume", str(sweep_dir), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    study = optuna.load_study(study_name=sweep_dir.name, storage=f"sqlite:///{sweep_dir}/optuna.db")
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    rates = [t.params["reg.dropout.fc"] for t in study.trials]
    assert len(set(rates)) == 5  # the resumed sampler did not draw the first trials again
    assert sorted(int(d.name) for d in sweep_dir.iterdir() if d.name.isdigit()) == [0, 1, 2, 3, 4]
    assert len(json.loads((sweep_dir / "sweep.json").read_text())["jobs"]) == 5
    assert "already completed, kept" in resumed.stdout or "[3/5]" in resumed.stdout
