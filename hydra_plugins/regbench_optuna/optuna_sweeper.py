"""``hydra/sweeper=optuna``: regbench's Optuna sweeper, on Optuna's ask-and-tell interface.

Hydra finds this module through its plugin namespace; ``register`` stores its configs in
Hydra's ConfigStore: ``hydra/sweeper=optuna``, the samplers
``hydra/sweeper/sampler=tpe|random|cmaes|qmc`` and the pruners
``hydra/sweeper/pruner=none|median|hyperband|successive_halving``. Hydra's own
hydra-optuna-sweeper, where it is still installed, stores configs under the same names;
regbench calls ``register`` again once Hydra has imported every plugin
(``regbench.launch.composition.claim_plugin_names``), so that regbench's are the ones used.

A search asks the study for trials (``n_jobs`` at a time), hands them to the launcher as
jobs whose number is the trial's number, and tells the study how each ended: its
objective (val accuracy at the run's best epoch), pruned, or failed. The study lives in
Optuna's RDB storage, by default SQLite in the sweep folder, so a search that was stopped
continues where it stopped: the trials it left running are run again under their own
numbers (their run folders resume from their checkpoints) and the sampler asks only for
the trials still missing. Each job reaches its trial through environment variables and
reports every epoch to it (``regbench.training.pruning``); the job's number is its trial's.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import MISSING, DictConfig, OmegaConf

log = logging.getLogger(__name__)

STORAGE_FILE = "optuna.db"  # in the sweep folder, unless hydra.sweeper.storage names another
RESULTS_FILE = "optimization_results.yaml"  # the best trial, as Hydra's plugin wrote it


# ---------------------------------------------------------------------------- schemas


@dataclass
class TPESamplerConf:
    """Tree-structured Parzen estimator (Bergstra et al., NeurIPS 2011): Optuna's default."""

    _target_: str = "optuna.samplers.TPESampler"
    seed: int | None = None
    n_startup_trials: int = 10  # random trials before the model is used
    n_ei_candidates: int = 24
    multivariate: bool = False


@dataclass
class RandomSamplerConf:
    """Independent uniform draws (Bergstra & Bengio, JMLR 2012)."""

    _target_: str = "optuna.samplers.RandomSampler"
    seed: int | None = None


@dataclass
class CmaEsSamplerConf:
    """CMA-ES over the float and int parameters (needs the cmaes package)."""

    _target_: str = "optuna.samplers.CmaEsSampler"
    seed: int | None = None
    n_startup_trials: int = 1
    sigma0: float | None = None


@dataclass
class QMCSamplerConf:
    """A quasi-Monte Carlo sequence (Sobol or Halton): even coverage of the ranges."""

    _target_: str = "optuna.samplers.QMCSampler"
    seed: int | None = None
    qmc_type: str = "sobol"
    scramble: bool = False


@dataclass
class NoPrunerConf:
    """Every trial trains to its last epoch."""

    name: str = "none"


@dataclass
class MedianPrunerConf:
    """Stop a trial whose best val accuracy so far is below the median of the earlier trials'
    at the same epoch. Dropout slows early training, so a few epochs are let pass first."""

    name: str = "median"
    n_startup_trials: int = 5  # trials that always finish, to have a median to compare with
    n_warmup_steps: int = 3  # epochs of every trial before it can be pruned
    interval_steps: int = 1


@dataclass
class HyperbandPrunerConf:
    """Hyperband (Li et al., JMLR 2018): successive halving over several brackets."""

    name: str = "hyperband"
    min_resource: int = 1  # epochs
    max_resource: int | None = None  # epochs; null: the job's trainer.epochs
    reduction_factor: int = 3


@dataclass
class SuccessiveHalvingPrunerConf:
    """Asynchronous successive halving (Li et al., MLSys 2020)."""

    name: str = "successive_halving"
    min_resource: int = 1  # epochs
    reduction_factor: int = 4
    min_early_stopping_rate: int = 0


@dataclass
class ConfirmConf:
    """The winner confirmed: the `top` best trials and the baseline re-run with `seeds` fresh
    seeds each, compared as a grid (regbench confirm SWEEP_DIR does it later too)."""

    top: int = 0  # 0: no confirmation at the end of the search
    seeds: int = 10
    # Overrides that turn the search's fixed settings into the baseline (searched keys dropped)
    baseline: list[str] = field(default_factory=lambda: ["reg=none"])


@dataclass
class OptunaSweeperConf:
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}, {"pruner": "none"}])
    _target_: str = "hydra_plugins.regbench_optuna.optuna_sweeper.OptunaSweeper"
    _recursive_: bool = False  # the sweeper builds its sampler itself (reseeded on resume)
    sampler: Any = MISSING
    pruner: Any = MISSING
    direction: str = "maximize"  # the objective is the val accuracy at the run's best epoch
    storage: str | None = None  # Optuna storage URL; null: sqlite:///<sweep folder>/optuna.db
    study_name: str | None = None  # null: the sweep folder's name
    n_trials: int = 20
    n_jobs: int = 1  # trials asked for and launched together
    max_failure_rate: float = 1.0  # stop asking when a larger share of the trials failed
    params: dict[str, str] | None = None
    confirm: ConfirmConf = field(default_factory=ConfirmConf)


SAMPLERS = {"tpe": TPESamplerConf, "random": RandomSamplerConf, "cmaes": CmaEsSamplerConf,
            "qmc": QMCSamplerConf}
PRUNERS = {"none": NoPrunerConf, "median": MedianPrunerConf, "hyperband": HyperbandPrunerConf,
           "successive_halving": SuccessiveHalvingPrunerConf}



def register() -> None:
    """Store the sweeper's, the samplers' and the pruners' configs in Hydra's ConfigStore."""
    store = ConfigStore.instance()
    store.store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="regbench")
    for name, node in SAMPLERS.items():
        store.store(group="hydra/sweeper/sampler", name=name, node=node, provider="regbench")
    for name, node in PRUNERS.items():
        store.store(group="hydra/sweeper/pruner", name=name, node=node, provider="regbench")


register()


# ---------------------------------------------------------------------------- the sweeper


class OptunaSweeper(Sweeper):
    """Asks the study for trials, launches them as jobs, tells the study how each ended."""

    def __init__(self, sampler: DictConfig, pruner: DictConfig, direction: str, storage: str | None,
                 study_name: str | None, n_trials: int, n_jobs: int, max_failure_rate: float,
                 params: DictConfig | None, confirm: DictConfig) -> None:
        from regbench.config.schema import check

        check(direction in ("maximize", "minimize"), "hydra.sweeper.direction", direction,
              "maximize or minimize")
        check(n_trials >= 1, "hydra.sweeper.n_trials", n_trials, "an integer >= 1")
        check(n_jobs >= 1, "hydra.sweeper.n_jobs", n_jobs, "an integer >= 1")
        check(0.0 <= max_failure_rate <= 1.0, "hydra.sweeper.max_failure_rate", max_failure_rate,
              "a number in [0, 1]")
        self.sampler_cfg, self.pruner_cfg = sampler, pruner
        self.direction, self.storage, self.study_name = direction, storage, study_name
        self.n_trials, self.n_jobs, self.max_failure_rate = n_trials, n_jobs, max_failure_rate
        self.params = dict(params or {})
        self.config: DictConfig | None = None
        self.launcher: Any = None
        self.sweep_dir = Path(".")

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function)
        self.sweep_dir = Path(str(config.hydra.sweep.dir))

    def sweep(self, arguments: list[str]) -> Any:
        import optuna

        from regbench.launch import search
        from regbench.training import pruning

        space = search.parse_params([f"{k}={v}" for k, v in self.params.items()] + list(arguments))
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        url = self.storage or f"sqlite:///{self.sweep_dir.resolve() / STORAGE_FILE}"
        name = self.study_name or self.sweep_dir.name
        storage = pruning.open_storage(url)
        existing = _existing_trials(storage, name)
        pruner_spec = self.pruner_spec()
        study = optuna.create_study(storage=storage, study_name=name, direction=self.direction,
                                    sampler=self.sampler(len(existing)),
                                    pruner=pruning.build_pruner(pruner_spec), load_if_exists=True)
        study.set_user_attr(pruning.PRUNER_ATTR, pruner_spec)
        env = [f"++hydra.job.env_set.{pruning.STORAGE_ENV}='{url}'",
               f"++hydra.job.env_set.{pruning.STUDY_ENV}='{name}'"]
        log.info("study %s in %s: %d trials there, %d asked for", name, url, len(existing),
                 self.n_trials)

        def launch(trials: list[tuple[int, dict[str, Any]]]) -> None:
            overrides = [search.trial_overrides(params, space.fixed) + env for _, params in trials]
            returns = self.launcher.launch(overrides, initial_job_idx=trials[0][0])
            for (number, _), ret in zip(trials, returns, strict=True):
                tell(study, number, ret)

        # trials an interrupted search left running: the same numbers and values, run again
        for trial in existing:
            if trial.state in (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING):
                launch([(trial.number, trial.params)])
        while len(study.trials) < self.n_trials and not self.too_many_failures(study):
            batch = min(self.n_jobs, self.n_trials - len(study.trials))
            asked = [study.ask(space.distributions) for _ in range(batch)]
            numbers = [t.number for t in asked]
            if numbers == list(range(numbers[0], numbers[0] + batch)):
                launch([(t.number, t.params) for t in asked])
            else:  # another process asked in between: job numbers must be trial numbers
                for t in asked:
                    launch([(t.number, t.params)])
        write_results(study, self.sweep_dir)
        return None

    def sampler(self, n_existing: int) -> Any:
        """The configured sampler; a resumed search's seed moves on by the trials already
        there, so that a seeded sampler does not draw the first trials' values again (QMC
        keeps its seed: its sequence position is kept in the study)."""
        from hydra.utils import instantiate

        from regbench.errors import ConfigError

        cfg = OmegaConf.to_container(self.sampler_cfg, resolve=True)
        assert isinstance(cfg, dict)
        if cfg.get("seed") is not None and n_existing and "QMC" not in str(cfg["_target_"]):
            cfg["seed"] = int(cfg["seed"]) + n_existing
        try:
            return instantiate(cfg)
        except Exception as e:
            cause = e.__cause__ or e
            raise ConfigError(f"hydra.sweeper.sampler ({cfg['_target_']}): "
                              f"{type(cause).__name__}: {cause}") from e

    def pruner_spec(self) -> dict[str, Any]:
        """The pruner's name and settings, as stored with the study for the jobs to rebuild it."""
        spec = OmegaConf.to_container(self.pruner_cfg, resolve=True)
        assert isinstance(spec, dict)
        if spec.get("name") == "hyperband" and spec.get("max_resource") is None:
            assert self.config is not None
            spec["max_resource"] = int(self.config.trainer.epochs)  # a trial's last step
        return {str(k): v for k, v in spec.items()}

    def too_many_failures(self, study: Any) -> bool:
        """Whether more than max_failure_rate of the ended trials failed (then stop asking)."""
        import optuna

        ended = [t for t in study.trials if t.state.is_finished()]
        failed = [t for t in ended if t.state == optuna.trial.TrialState.FAIL]
        if ended and len(failed) / len(ended) > self.max_failure_rate:
            log.error("search stopped: %d of %d trials failed (max_failure_rate=%s)",
                      len(failed), len(ended), self.max_failure_rate)
            return True
        return False


def _existing_trials(storage: Any, name: str) -> list[Any]:
    """The trials already in the study of that name (none when there is no such study yet)."""
    import optuna

    try:
        return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    except KeyError:
        return []


def job_result(ret: JobReturn) -> tuple[str, float | None]:
    """(run status, objective) of a launched job; a job that raised is 'failed'."""
    if ret.status != JobStatus.COMPLETED:
        return "failed", None
    value = ret.return_value
    if isinstance(value, dict):
        return str(value.get("status")), value.get("value")
    return str(value), None


def tell(study: Any, number: int, ret: JobReturn) -> None:
    """Tell the study how trial `number` ended: its objective, pruned, or failed."""
    import optuna

    from regbench.store import runs

    status, value = job_result(ret)
    state = optuna.trial.TrialState
    if status in runs.FINISHED and value is not None:
        study.tell(number, float(value))
    elif status == runs.PRUNED:
        study.tell(number, state=state.PRUNED)
    else:
        study.tell(number, state=state.FAIL)


def write_results(study: Any, sweep_dir: Path) -> None:
    """The best trial's values in optimization_results.yaml (when any trial completed)."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        return
    best = study.best_trial
    OmegaConf.save(OmegaConf.create({"name": "optuna", "best_trial": best.number,
                                     "best_params": best.params, "best_value": best.value}),
                   sweep_dir / RESULTS_FILE)

