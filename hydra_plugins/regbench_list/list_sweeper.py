"""``hydra/sweeper=regbench_list``: launch a list of jobs written beforehand, in its order.

Hydra's basic sweeper launches the product of its axes; a confirmation (regbench confirm)
runs configurations that no product describes (a search's best trials and the baseline,
each over fresh seeds), nor does a settle's round (regbench sweep --settle: more seeds
for the configurations still undecided). regbench writes their task overrides into a JSON
file (a list of lists), and this sweeper hands them, each with the command line's
overrides, to whichever launcher is chosen, numbered from ``first``.

A job that carries a search's experiment preset also carries that preset's
``hydra.sweeper`` settings (n_trials, params, ...); they are meant for the search and are
ignored here, so the config is an open dictionary rather than a schema.
"""

import json
import logging
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

log = logging.getLogger(__name__)

ConfigStore.instance().store(
    group="hydra/sweeper", name="regbench_list", provider="regbench",
    node={"_target_": "hydra_plugins.regbench_list.list_sweeper.ListSweeper",
          "jobs_file": "???",  # a JSON list: each job's task overrides
          "first": 0})  # the first job's number (its folder); a settle's later rounds go on


class ListSweeper(Sweeper):
    """Launches the jobs listed in a JSON file, numbered in its order."""

    def __init__(self, jobs_file: str, first: int = 0, **search_settings: Any) -> None:
        self.jobs_file = Path(jobs_file)
        self.first = first
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function)

    def sweep(self, arguments: list[str]) -> Any:
        jobs = json.loads(self.jobs_file.read_text())
        log.info("launching the %d jobs of %s", len(jobs), self.jobs_file)
        return self.launcher.launch([[*job, *arguments] for job in jobs],
                                    initial_job_idx=self.first)
