"""A diverged job in every kind of sweep: named, left out of the evidence, exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import TINY, run_cli

BLOW_UP = [*TINY, "trainer.epochs=1", "dataset.train_size=100", "optim.lr=0.05,1e6"]


def statuses(tmp_path: Path) -> list[str]:
    (sweep_dir,) = (tmp_path / "results" / "default" / "sweeps").iterdir()
    jobs = sorted((p for p in sweep_dir.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    return [json.loads((j / "summary.json").read_text())["status"] for j in jobs]


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["population", "joblib"])
def test_a_diverged_member_or_job_makes_the_sweep_exit_1_on_other_launchers(
        launcher: str, tmp_path: Path) -> None:
    proc = run_cli("sweep", f"hydra/launcher={launcher}", *BLOW_UP, cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert statuses(tmp_path) == ["completed", "diverged"]
    assert "1 of 2 runs diverged and is not compared: optim.lr=1000000.0 seed 0" in proc.stdout


@pytest.mark.slow
def test_a_settle_stops_giving_seeds_to_a_configuration_that_keeps_diverging(
        tmp_path: Path) -> None:
    proc = run_cli("sweep", "--settle", *BLOW_UP, "settle.start_seeds=2", "settle.max_seeds=4",
                   "--baseline", "optim.lr=0.05", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    # round 1 only: the exploding configuration would otherwise get seeds 2 and 3
    assert statuses(tmp_path) == ["completed", "completed", "diverged", "diverged"]
    assert "settle: optim.lr=1000000.0 gets no more seeds: 2 of 2 runs diverged (seeds 0, 1: " \
        "diverged at epoch 1" in proc.stdout
    assert "2 of 4 runs diverged and are not compared: optim.lr=1000000.0 seeds 0, 1" in proc.stdout


@pytest.mark.slow
def test_a_search_fails_a_diverged_trial_instead_of_scoring_it(tmp_path: Path) -> None:
    import optuna

    proc = run_cli("sweep", "hydra/sweeper=optuna", "hydra.sweeper.sampler=random",
                   "hydra.sweeper.sampler.seed=0", "hydra.sweeper.n_trials=4", *TINY,
                   "trainer.epochs=1", "dataset.train_size=100", "optim.lr=choice(0.05,1e6)",
                   cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    (sweep_dir,) = (tmp_path / "results" / "default" / "sweeps").iterdir()
    diverged = [n for n, s in enumerate(statuses(tmp_path)) if s == "diverged"]
    assert diverged, proc.stdout
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    failed = [t.number for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert failed == diverged  # a diverged trial is not scored
    scored = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert all(t.params["optim.lr"] == 0.05 for t in scored)
    assert f"{len(diverged)} of 4 runs diverged and " in proc.stdout
    assert "not scored: optim.lr=1000000.0" in proc.stdout
