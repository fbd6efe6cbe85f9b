"""``hydra/sweeper=regbench_jobs``: launch jobs listed in a sweep's sweep.json, as they are.

A settle (regbench.launch.settle) adds seeds in rounds only where a comparison is still
undecided, so a round's jobs are a list, not a grid that Hydra's basic sweeper could
expand. This sweeper reads jobs ``first`` to ``last`` (exclusive) of the sweep.json in
``hydra.sweep.dir`` and hands them to whichever launcher the sweep uses (basic, joblib,
submitit, Ray, population) as one batch, numbered as in sweep.json, so job n runs in
folder n. It takes no overrides of its own: each listed job carries all of its overrides.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

SWEEP_FILE = "sweep.json"  # regbench.store.runs.SWEEP_FILE; plugins import no regbench module at load


@dataclass
class JobsSweeperConf:
    _target_: str = "hydra_plugins.regbench_jobs.jobs_sweeper.JobsSweeper"
    first: int = 0  # first job number to launch
    last: int = -1  # one past the last job number; -1: through the last job listed
    # an experiment preset's grid (hydra.sweeper.params) is accepted and left unused: the
    # jobs listed in sweep.json were expanded from it already
    params: Optional[Dict[str, str]] = None


ConfigStore.instance().store(group="hydra/sweeper", name="regbench_jobs", node=JobsSweeperConf,
                             provider="regbench")


class JobsSweeper(Sweeper):
    """Launches a slice of the jobs recorded in sweep.json as one batch."""

    def __init__(self, first: int = 0, last: int = -1, params: Optional[Dict[str, str]] = None
                 ) -> None:
        self.first, self.last = first, last
        self.config: Optional[DictConfig] = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> Any:
        assert self.config is not None and self.launcher is not None
        if arguments:
            raise ValueError(f"hydra/sweeper=regbench_jobs launches the jobs listed in {SWEEP_FILE}; "
                             f"it takes no overrides ({' '.join(arguments)})")
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        jobs = json.loads((sweep_dir / SWEEP_FILE).read_text())["jobs"]
        last = len(jobs) if self.last < 0 else self.last
        batch = [list(job) for job in jobs[self.first:last]]
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        return [self.launcher.launch(batch, initial_job_idx=self.first)] if batch else []
