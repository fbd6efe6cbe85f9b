"""``hydra/launcher=ray``: each job of a sweep a Ray task, on a running cluster or a local one.

Hydra finds this module through its plugin namespace; ``register`` stores the launcher's
config under ``hydra/launcher=ray`` (again once every plugin is imported, so that Hydra's
own hydra-ray-launcher, where it is still installed, does not take the name; see
``regbench.launch.composition.claim_plugin_names``).

Each job is set up as Hydra's launchers set it up (its config, folder and ``.hydra/``
files) and runs as one Ray task asking for ``num_cpus`` and ``num_gpus``; with
``population=true`` the jobs are grouped as ``hydra/launcher=population`` groups them and
each population is one task. ``address`` picks the cluster: null joins the one that
RAY_ADDRESS names or starts a local one on this machine (``init`` sets its size), ``auto``
joins the cluster running on this machine, ``HOST:PORT`` or ``ray://HOST:PORT`` a remote
one. A job whose worker dies (killed, out of memory, node lost) is marked failed in its
folder and the sweep goes on; ``regbench sweep --resume`` runs it again. Ctrl-C cancels
the tasks, which save their runs as interrupted, so that the sweep resumes too.
"""

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, env_override, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

CANCEL_WAIT_S = 120  # how long Ctrl-C waits for cancelled jobs to save their runs


@dataclass
class RayInitConf:
    """A local cluster's size when the launcher starts one (null: Ray counts the machine's)."""

    num_cpus: int | None = None
    num_gpus: int | None = None
    include_dashboard: bool = False


@dataclass
class RayLauncherConf:
    _target_: str = "hydra_plugins.regbench_ray.ray_launcher.RayLauncher"
    # null: $RAY_ADDRESS's cluster or a new local one; auto: the cluster on this machine;
    # HOST:PORT or ray://HOST:PORT: that cluster
    address: str | None = None
    num_cpus: float = 1  # per task: one job, or one population with population=true
    num_gpus: float = 0
    max_retries: int = 0  # a job whose worker died is failed, not re-run (sweep --resume does)
    population: bool = False  # each population of jobs one task (hydra/launcher=population's grouping)
    max_members: int = 24  # with population=true: most jobs trained together
    init: RayInitConf = field(default_factory=RayInitConf)


def register() -> None:
    """Store the launcher's config in Hydra's ConfigStore as hydra/launcher=ray."""
    ConfigStore.instance().store(group="hydra/launcher", name="ray", node=RayLauncherConf,
                                 provider="regbench")


register()


def _run_job(hydra_context: HydraContext, sweep_config: DictConfig, task_function: TaskFunction,
             singleton_state: dict[Any, Any]) -> JobReturn:
    """One job in a Ray worker: Hydra's state as in the driver, then Hydra's run_job."""
    setup_globals()
    Singleton.set_state(singleton_state)
    HydraConfig.instance().set_config(sweep_config)
    return run_job(hydra_context=hydra_context, task_function=task_function, config=sweep_config,
                   job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")


def _run_population(pending: list[Any], max_members: int, env: dict[str, str]) -> list[Any]:
    """A group of jobs in a Ray worker, trained as populations; their outcomes."""
    from regbench.launch.jobs import run_sweep_jobs

    with env_override(env):
        return run_sweep_jobs(pending, population=True, max_members=max_members)


class RayLauncher(Launcher):
    """Runs each job (or each population of jobs) as a Ray task and gathers what they return."""

    def __init__(self, address: str | None, num_cpus: float, num_gpus: float, max_retries: int,
                 population: bool, max_members: int, init: DictConfig) -> None:
        from regbench.config.schema import check

        check(num_cpus >= 0 and num_gpus >= 0, "hydra.launcher.num_cpus/num_gpus",
              f"{num_cpus}/{num_gpus}", "numbers >= 0")
        check(max_members >= 1, "hydra.launcher.max_members", max_members, "an integer >= 1")
        self.address, self.population, self.max_members = address, population, max_members
        self.resources = {"num_cpus": num_cpus, "num_gpus": num_gpus, "max_retries": max_retries}
        self.init = OmegaConf.to_container(init, resolve=True) if init is not None else {}
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config, self.task_function, self.hydra_context = config, task_function, hydra_context

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
               ) -> Sequence[JobReturn]:
        import ray

        from regbench.launch.jobs import sweep_job_config

        assert self.config is not None and self.hydra_context is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        start_ray(self.address, self.init, Path(str(self.config.hydra.sweep.dir)))
        configs = [sweep_job_config(self.hydra_context, self.config, o, initial_job_idx + i)
                   for i, o in enumerate(job_overrides)]
        if self.population:
            return self.launch_populations(configs)
        remote = ray.remote(**self.resources)(_run_job)
        state = Singleton.get_state()
        refs = [remote.remote(self.hydra_context, cfg, self.task_function, state) for cfg in configs]
        log.info("ray launcher: %d jobs as Ray tasks", len(refs))
        return [ret if isinstance(ret, JobReturn) else failed_return(cfg, ret)
                for cfg, ret in zip(configs, gather(refs), strict=True)]

    def launch_populations(self, configs: list[DictConfig]) -> list[JobReturn]:
        """Set every job up here, then train each population of them as one Ray task."""
        import ray

        from regbench.launch.jobs import job_result, set_up_jobs

        assert self.hydra_context is not None
        returns, pending = set_up_jobs(self.hydra_context, configs)
        groups = population_groups(pending, self.max_members)
        remote = ray.remote(**self.resources)(_run_population)
        refs = [remote.remote([pending[k] for k in group], self.max_members,
                              {str(k): str(v) for k, v in configs[group[0]].hydra.job.env_set.items()})
                for group in groups]
        log.info("ray launcher: %d jobs as %d population tasks", len(pending), len(refs))
        for group, outcomes in zip(groups, gather(refs), strict=True):
            for k, outcome in zip(group, outcomes if isinstance(outcomes, list) else [outcomes] * len(group),
                                  strict=True):
                if isinstance(outcome, BaseException):
                    returns[k] = failed_return(returns[k].hydra_cfg or configs[k], outcome)
                else:
                    returns[k].status = JobStatus.COMPLETED
                    returns[k].return_value = job_result(outcome)
        return returns


def start_ray(address: str | None, init: dict[str, Any], sweep_dir: Path) -> None:
    """Connect to the cluster at address, or start a local one; ConfigError when there is none.

    Ray's own log lines (its token warning, 'Started a local Ray instance') go to the
    sweep's sweep.log, not the terminal, unless --debug; the jobs' own lines still show.
    """
    import ray

    from regbench.errors import ConfigError
    from regbench.store import runs

    if ray.is_initialized():
        return
    if os.environ.get("REGBENCH_DEBUG") != "1":
        to_sweep_log(logging.getLogger("ray"), sweep_dir / runs.SWEEP_LOG_FILE)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")  # every job's line shows, not one per kind
    local = {k: v for k, v in init.items() if v is not None} if address is None else {}
    try:
        ray.init(address=address, log_to_driver=True, **local)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ConfigError(f"hydra.launcher.address={address}: no Ray cluster there ({e}); "
                          "leave it null to start one on this machine") from e


def to_sweep_log(logger: logging.Logger, path: Path) -> None:
    """Send a third-party logger's records to the sweep's log file instead of the terminal."""
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False


def population_groups(pending: list[Any], max_members: int) -> list[list[int]]:
    """Indices of the jobs, grouped as the population engine would train them together; a
    job whose configuration is bad is a group of its own (it fails there, alone)."""
    from omegaconf.errors import OmegaConfBaseException

    from regbench.errors import RegbenchError
    from regbench.training import population
    from regbench.training.schema import to_schema
    from regbench.training.validation import validate

    valid, groups = [], []
    for k, job in enumerate(pending):
        try:
            cfg = to_schema(job.cfg)
            validate(cfg)
            valid.append((k, cfg))
        except (RegbenchError, OmegaConfBaseException):  # a bad configuration
            groups.append([k])
    groups += [[valid[i][0] for i in group]
               for group in population.split_groups([cfg for _, cfg in valid], max_members)]
    return sorted(groups)


def gather(refs: list[Any]) -> list[Any]:
    """Each task's result, or the exception that ended it (a dead worker among them).

    Ctrl-C cancels the tasks (each receives KeyboardInterrupt and saves its run as
    interrupted), waits for them, and raises KeyboardInterrupt.
    """
    import ray

    out: list[Any] = []
    try:
        for ref in refs:
            try:
                out.append(ray.get(ref))
            except (ray.exceptions.RayError, KeyboardInterrupt) as e:
                if isinstance(e, KeyboardInterrupt):
                    raise
                out.append(e)
    except KeyboardInterrupt:
        for ref in refs:
            ray.cancel(ref)
        ray.wait(refs, num_returns=len(refs), timeout=CANCEL_WAIT_S)
        raise
    return out


def failed_return(cfg: DictConfig, error: BaseException) -> JobReturn:
    """A job whose task did not come back: its folder says failed (an interrupted run stays
    interrupted, to resume), its line says why. The job itself ends as a job that failed
    inside regbench does, so that the sweeper goes on to the next."""
    from regbench.launch.jobs import job_name
    from regbench.present import terminal
    from regbench.store import summary

    run_dir = Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir)
    cause = getattr(error, "cause", None) or error
    why = "the Ray worker running it died" if _worker_died(error) else "its Ray task failed"
    if summary.status(run_dir) != "interrupted":
        summary.mark_failed(run_dir, " ".join(f"{why}: {type(cause).__name__}: {cause}".split())[:300])
    overrides = list(cfg.hydra.overrides.task)
    with env_override({str(k): str(v) for k, v in cfg.hydra.job.env_set.items()}):
        terminal.print_job_line(run_dir, "fresh", job_name(run_dir, overrides))
    ret = JobReturn(overrides=overrides, cfg=cfg, hydra_cfg=cfg, working_dir=str(run_dir),
                    status=JobStatus.COMPLETED)
    ret.return_value = {"status": summary.status(run_dir), "value": None}
    return ret


def _worker_died(error: BaseException) -> bool:
    import ray

    died = (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
            getattr(ray.exceptions, "OutOfMemoryError", ray.exceptions.WorkerCrashedError))
    return isinstance(error, died)
