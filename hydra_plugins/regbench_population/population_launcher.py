"""``hydra/launcher=population``: a sweep's jobs trained together as vectorised populations.

Hydra finds this module through its plugin namespace (``hydra_plugins``), registers the
launcher's config in the ConfigStore and instantiates ``PopulationLauncher`` from it. For
each job the launcher does what Hydra's own launchers do (the sweep config, the job's
folder and ``.hydra/`` files, through ``run_job``), but instead of calling the task
function per job it hands all the jobs to ``regbench.launch.jobs.run_sweep_jobs``, which
groups them and trains each group as one population (``regbench.training.population``).
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.core.utils import JobReturn, JobStatus, configure_log, env_override, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

log = logging.getLogger(__name__)


@dataclass
class PopulationLauncherConf:
    _target_: str = "hydra_plugins.regbench_population.population_launcher.PopulationLauncher"
    # Most members trained at once; a larger group is split into populations of this size
    # (lower it when a population does not fit in the device's memory).
    max_members: int = 24


ConfigStore.instance().store(group="hydra/launcher", name="population",
                             node=PopulationLauncherConf, provider="regbench")


class PopulationLauncher(Launcher):
    """Sets up every job as Hydra does, then trains them as populations."""

    def __init__(self, max_members: int = 24) -> None:
        from regbench.config.schema import check

        check(isinstance(max_members, int) and max_members >= 1, "hydra.launcher.max_members",
              max_members, "an integer >= 1")
        self.max_members = max_members
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config, self.task_function, self.hydra_context = config, task_function, hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
               ) -> Sequence[JobReturn]:
        from regbench.launch.jobs import job_result, run_sweep_jobs, set_up_jobs, sweep_job_config

        assert self.config is not None and self.hydra_context is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        configs = [sweep_job_config(self.hydra_context, self.config, o, initial_job_idx + i)
                   for i, o in enumerate(job_overrides)]
        returns, pending = set_up_jobs(self.hydra_context, configs)
        env = {str(k): str(v) for k, v in configs[-1].hydra.job.env_set.items()} if configs else {}
        log.info("population launcher: %d jobs, at most %d members at once", len(pending),
                 self.max_members)
        with env_override(env):
            outcomes = run_sweep_jobs(pending, population=True, max_members=self.max_members)
        for ret, outcome in zip(returns, outcomes, strict=True):
            ret.status = JobStatus.COMPLETED
            ret.return_value = job_result(outcome)
        return returns
