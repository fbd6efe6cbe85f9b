"""`hydra/launcher=ray`: regbench's own Ray launcher on current Ray, on a local cluster of
this machine's 2 CPUs: a 2 x 2 sweep, a job that diverges, and a job whose worker dies
while the others finish."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from helpers import TINY, run_cli
from regbench.training.schema import RegbenchConfig

ray = pytest.importorskip("ray")
# one local Ray cluster at a time: with pytest-xdist, these tests share one worker
pytestmark = pytest.mark.xdist_group("ray")


@pytest.mark.slow
def test_a_2x2_sweep_runs_as_ray_tasks_on_a_local_cluster(tmp_path: Path) -> None:
    proc = run_cli("sweep", "hydra/launcher=ray", "hydra.launcher.init.num_cpus=2",
                   "reg.dropout.fc=0.0,0.5", "seed=0,1", *TINY, "trainer.epochs=1",
                   "dataset.train_size=100", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (sweep_dir,) = (tmp_path / "results" / "default" / "sweeps").iterdir()
    statuses = [json.loads((sweep_dir / str(n) / "summary.json").read_text())["status"]
                for n in range(4)]
    assert statuses == ["completed"] * 4
    assert proc.stdout.count("_run_job pid=") == 4  # each job's line came from a Ray worker
    # Ray's own lines (its token warning, the local instance it started) are in sweep.log
    assert "Started a local Ray instance" not in proc.stdout + proc.stderr
    assert "Token authentication" not in proc.stdout + proc.stderr
    assert "Started a local Ray instance" in (sweep_dir / "sweep.log").read_text()
    assert len(pd.read_csv(sweep_dir / "summary.csv")) == 2
    resumed = run_cli("sweep", "--resume", str(sweep_dir), cwd=tmp_path)
    assert resumed.returncode == 0 and "4 of 4 jobs finished; running 0" in resumed.stdout



@pytest.mark.slow
def test_a_diverged_job_is_recorded_and_the_sweep_says_so(tmp_path: Path) -> None:
    # SGD at lr 1e6 makes the loss infinite in the first epoch: that job diverges, the other finishes
    proc = run_cli("sweep", "hydra/launcher=ray", "hydra.launcher.init.num_cpus=2", *TINY,
                   "trainer.epochs=1", "optim=sgd", "optim.lr=0.05,1e6", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    (folder,) = (tmp_path / "results" / "default" / "sweeps").iterdir()
    statuses = [json.loads((folder / str(n) / "summary.json").read_text())["status"] for n in (0, 1)]
    assert statuses == ["completed", "diverged"]
    assert len((folder / "0" / "metrics.csv").read_text().splitlines()) == 2
    assert (folder / "summary.csv").exists()
    assert "1 of 2 runs diverged and is not compared: optim.lr=1000000.0 seed 0" in proc.stdout

@pytest.mark.slow
def test_with_population_true_a_population_is_one_ray_task(tmp_path: Path) -> None:
    proc = run_cli("sweep", "hydra/launcher=ray", "hydra.launcher.population=true",
                   "hydra.launcher.init.num_cpus=2", "reg.dropout.fc=0.0,0.5", "seed=0,1", *TINY,
                   "trainer.epochs=1", "dataset.train_size=100", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    workers = re.findall(r"\(_run_population pid=(\d+)\).*: completed", proc.stdout)
    assert len(workers) == 4 and len(set(workers)) == 1  # the four members, one task


@pytest.mark.slow
def test_a_job_whose_worker_dies_is_failed_and_the_others_come_back(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from hydra_plugins.regbench_ray.ray_launcher import failed_return, gather, start_ray

    @ray.remote(max_retries=0)
    def job(n: int) -> int:
        if n == 1:
            os._exit(1)  # the worker process dies mid-task, as when it is killed
        return n

    start_ray(None, {"num_cpus": 2, "include_dashboard": False}, tmp_path)
    try:
        results = gather([job.remote(n) for n in range(3)])
    finally:
        ray.shutdown()
    assert results[0] == 0 and results[2] == 2
    assert isinstance(results[1], ray.exceptions.WorkerCrashedError)
    cfg = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path), "subdir": "1"},
                                      "overrides": {"task": ["seed=1"]}, "job": {"env_set": {}}}})
    ret = failed_return(cfg, results[1])
    summary = json.loads((tmp_path / "1" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"].startswith("the Ray worker running it died")
    assert ret.return_value == {"status": "failed", "value": None}  # the sweeper goes on


def test_jobs_that_can_train_together_are_one_population_task(
        make_cfg: Callable[..., RegbenchConfig], tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from hydra_plugins.regbench_ray.ray_launcher import population_groups
    from regbench.launch.jobs import PendingJob

    cfgs = [OmegaConf.structured(make_cfg(*TINY, f"reg.dropout.fc={p}", f"seed={s}"))
            for p in (0.0, 0.5) for s in (0, 1)]
    bad = OmegaConf.structured(make_cfg(*TINY))
    bad.trainer.epochs = 0  # fails validation: a group of its own
    pending = [PendingJob(cfg, tmp_path / str(n), []) for n, cfg in enumerate([*cfgs, bad])]
    assert population_groups(pending, 24) == [[0, 1, 2, 3], [4]]
    assert population_groups(pending, 3) == [[0, 1, 2], [3], [4]]
