"""A search trial reports each epoch to its Optuna study, so the study's pruner can stop it.

The Optuna sweeper (``hydra_plugins.regbench_optuna``) hands every job the study's
storage and name through environment variables set with ``hydra.job.env_set``, which every
Hydra launcher passes on to the job's process (this machine, a joblib worker, a SLURM
node, a Ray worker, a population), and launches trial n as job n, so that a job's folder
name is its trial number. After each epoch the job reports
its val accuracy as the trial's intermediate value at that step (the epoch); when the
study's pruner finds the trial behind the others at that epoch, ``TrialReporter`` raises
``Pruned`` and the training loop ends the run there, as status 'pruned'.

The pruner is not kept in Optuna's storage, so the sweeper stores its name and settings
as a study attribute, and each job builds the same pruner from it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regbench.training.callbacks import Callback, Pruned

if TYPE_CHECKING:
    import optuna

    from regbench.store.metrics import Row

log = logging.getLogger("regbench")

STORAGE_ENV = "REGBENCH_STUDY_STORAGE"  # the study's storage URL, e.g. sqlite:///<sweep>/optuna.db
STUDY_ENV = "REGBENCH_STUDY_NAME"
PRUNER_ATTR = "regbench_pruner"  # study user attribute: {"name": ..., settings...}
METRIC = "val_acc"  # what a trial reports per epoch and what the search maximizes
PRUNERS = ("none", "median", "hyperband", "successive_halving")
# How long a job waits for SQLite's lock while other jobs report at the same moment (s).
SQLITE_TIMEOUT_S = 60


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """Optuna's RDB storage at url; SQLite waits for its lock instead of failing at once."""
    import optuna

    engine = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}} if url.startswith("sqlite") else None
    return optuna.storages.RDBStorage(url, engine_kwargs=engine)


def build_pruner(spec: dict[str, Any]) -> optuna.pruners.BasePruner:
    """The Optuna pruner named by spec['name'], built with the rest of spec as its settings."""
    import optuna

    classes = {"none": optuna.pruners.NopPruner, "median": optuna.pruners.MedianPruner,
               "hyperband": optuna.pruners.HyperbandPruner,
               "successive_halving": optuna.pruners.SuccessiveHalvingPruner}
    settings = {k: v for k, v in spec.items() if k != "name"}
    return classes[str(spec.get("name", "none"))](**settings)


class TrialReporter(Callback):
    """Reports the epoch's val accuracy to the trial and raises Pruned when the pruner says so."""

    def __init__(self, trial: optuna.trial.Trial) -> None:
        self.trial = trial

    def on_epoch_end(self, row: Row) -> None:
        self.trial.report(float(row[METRIC]), step=int(row["epoch"]))
        if self.trial.should_prune():
            raise Pruned(f"trial {self.trial.number} pruned after epoch {row['epoch']}")


def from_env(warn: Callable[[str], None], run_dir: Path) -> TrialReporter | None:
    """The reporter for the trial trained in run_dir when it is a search's job, else None.

    A study that cannot be reached costs the trial its pruning, never its run: one warning.
    """
    url, name = os.environ.get(STORAGE_ENV), os.environ.get(STUDY_ENV)
    if not (url and name and run_dir.name.isdigit()):
        return None
    number = run_dir.name
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = open_storage(url)
        study = optuna.load_study(study_name=name, storage=storage)
        spec = study.user_attrs.get(PRUNER_ATTR) or {"name": "none"}
        if spec.get("name", "none") == "none":
            return None
        study.pruner = build_pruner(spec)
        study_id = storage.get_study_id_from_name(name)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, int(number))
        return TrialReporter(optuna.trial.Trial(study, trial_id))
    except Exception as e:
        log.exception("cannot reach the search's study")
        warn(f"trial {number}: cannot reach study {name!r} in {url} ({type(e).__name__}: {e}); "
             "this trial trains to the end without pruning")
        return None
