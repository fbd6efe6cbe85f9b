"""Experiment trackers: TensorBoard and MLflow, as callbacks of the training loop.

Each tracker is opt-in (``logger=tensorboard``, ``logger=mlflow``, ``logger=[tensorboard,mlflow]``)
and written with the tracker's own client: ``torch.utils.tensorboard.SummaryWriter`` and
``mlflow.MlflowClient``. A tracker is a guest of the run: when its package is missing or
its store cannot be reached, it says so in one line and stops, and the run goes on with
all of its own files.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from regbench.store import run_config
from regbench.training.callbacks import Callback
from regbench.config.schema import MLflowConfig, TensorBoardConfig
from regbench.training.schema import RegbenchConfig
from regbench.store.metrics import COLUMNS, Row, row_dict
from regbench.store.summary import Summary

log = logging.getLogger("regbench")
Warn = Callable[[str], None]
EXTRA = "pip install 'regbench[track]'"
# Scalars of summary.json that both trackers record once, at the end of the run.
SUMMARY_METRICS = ("best_epoch", "epochs_run", "onset_epoch", "test_loss", "test_acc",
                   "wall_time_s", "train_images_per_s")
# An unreachable tracking server must cost seconds, not MLflow's default minutes of retries.
MLFLOW_HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
                        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                        "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
                        # table creation and 'View run at URL' are not news on a run's terminal
                        "MLFLOW_LOGGING_LEVEL": "WARNING",
                        "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}


def hparams(cfg: RegbenchConfig) -> dict[str, str | int | float | bool]:
    """The resolved configuration as flat dotted keys with scalar values (lists as text)."""
    flat = run_config.flatten(asdict(cfg))
    return {k: v if isinstance(v, str | int | float | bool) else str(v)
            for k, v in flat.items() if not k.startswith("logger.")}


def summary_metrics(summary: Summary) -> dict[str, float]:
    """The run's final numbers: the best epoch's row as best_<column>, and the summary scalars."""
    best = row_dict(summary.best) or {}
    out = {f"best_{k}": float(v) for k, v in best.items() if k != "epoch" and v is not None}
    out.update({k: float(v) for k in SUMMARY_METRICS if (v := getattr(summary, k)) is not None})
    return out


class Tracker(Callback):
    """A callback whose failures become one warning line, after which it stays silent."""

    name = "tracker"

    def __init__(self, cfg: RegbenchConfig, run_dir: Path, warn: Warn) -> None:
        self.cfg, self.run_dir, self.warn = cfg, run_dir, warn
        self.broken = False

    def guard(self, action: Callable[..., None], *args: Any) -> None:
        if self.broken:
            return
        try:
            action(*args)
        except Exception as e:  # any failure of the tracker, never one of the run
            self.broken = True
            message = " ".join(f"{type(e).__name__}: {e}".split())
            log.warning("logger %s stopped at %s: %s", self.name, self.target(), message)
            short = message if len(message) <= 100 else message[:99] + "…"
            self.warn(f"logger {self.name} stopped, {self.target()}: {short}; the run goes on "
                      "and its own files are complete")

    def on_train_start(self, epochs: int, steps_per_epoch: int) -> None:
        self.guard(self.start)

    def on_epoch_end(self, row: Row) -> None:
        self.guard(self.epoch, row)

    def on_summary(self, summary: Summary, run_dir: Path) -> None:
        self.guard(self.finish, summary)
        self.guard(self.close)

    def target(self) -> str:
        """Where the tracker writes, as the configuration key that sets it."""
        return ""

    def start(self) -> None:
        """Open the tracker's run and record the configuration."""

    def epoch(self, row: Row) -> None:
        """Record one epoch's metrics.csv row."""

    def finish(self, summary: Summary) -> None:
        """Record the summary metrics and the final status."""

    def close(self) -> None:
        """Release files and connections."""


class TensorBoardTracker(Tracker):
    """Every metrics.csv column per epoch as a scalar, and the configuration as HParams."""

    name = "tensorboard"

    def __init__(self, cfg: RegbenchConfig, run_dir: Path, warn: Warn) -> None:
        super().__init__(cfg, run_dir, warn)
        self.settings: TensorBoardConfig = cfg.logger.tensorboard
        self.writer: Any = None

    def target(self) -> str:
        return f"logger.tensorboard.log_dir={self.run_dir / self.settings.log_dir}"

    def start(self) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(self.run_dir / self.settings.log_dir))

    def epoch(self, row: Row) -> None:
        for column in COLUMNS[1:]:  # every column but the epoch, which is the step
            self.writer.add_scalar(column, row[column], global_step=row.epoch)
        self.writer.flush()

    def finish(self, summary: Summary) -> None:
        values = summary_metrics(summary)
        metric_dict = {f"summary/{k}": v for k, v in values.items()}
        # run_name="." keeps the HParams session in this run's own log folder, so that one
        # run is one row of the HParams table when a whole sweep is opened
        self.writer.add_hparams({**hparams(self.cfg), "status": summary.status},
                                metric_dict, run_name=".")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class MLflowTracker(Tracker):
    """One MLflow run per regbench run: params, per-epoch metrics, summary, tags, artifacts."""

    name = "mlflow"
    STATUS = {"completed": "FINISHED", "early_stopped": "FINISHED", "interrupted": "KILLED"}

    def __init__(self, cfg: RegbenchConfig, run_dir: Path, warn: Warn, sweep_id: str | None) -> None:
        super().__init__(cfg, run_dir, warn)
        self.settings: MLflowConfig = cfg.logger.mlflow
        self.sweep_id = sweep_id
        self.client: Any = None
        self.run_id = ""

    def target(self) -> str:
        return f"logger.mlflow.tracking_uri={self.settings.tracking_uri}"

    def start(self) -> None:
        for key, value in MLFLOW_HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
        from mlflow import MlflowClient
        from mlflow.entities import Param

        uri = self.settings.tracking_uri
        with sqlite_lock(uri):  # the client creates the store's tables on first use
            self.client = MlflowClient(tracking_uri=uri)
            experiment_id = self.experiment_id()
        tag = {"regbench.run_dir": str(self.run_dir.resolve())}
        found = self.client.search_runs(  # a resumed run continues its MLflow run
            [experiment_id], filter_string=f"tags.`regbench.run_dir` = '{tag['regbench.run_dir']}'",
            max_results=1)
        if found:
            self.run_id = found[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
            return
        tags = {**tag, "regbench.status": "running", "regbench.experiment": self.cfg.experiment}
        if self.sweep_id:
            tags["regbench.sweep_id"] = self.sweep_id
        name = (f"{self.sweep_id}/{self.run_dir.name}" if self.sweep_id else self.run_dir.name)
        self.run_id = self.client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
        params = [Param(k, str(v)) for k, v in hparams(self.cfg).items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=params[i:i + 100])

    def experiment_id(self) -> str:
        """The experiment's id, created (with a local artifact folder for a local store) if new."""
        name = self.settings.experiment_name
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return str(found.experiment_id)
        local = not self.settings.tracking_uri.startswith(("http://", "https://", "databricks"))
        location = Path(self.settings.artifact_location).resolve().as_uri() if local else None
        try:
            return str(self.client.create_experiment(name, artifact_location=location))
        except Exception:  # created meanwhile by a parallel job of the same sweep
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return str(found.experiment_id)

    def epoch(self, row: Row) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[
            Metric(column, float(row[column]), now, row.epoch) for column in COLUMNS[1:]])

    def finish(self, summary: Summary) -> None:
        from mlflow.entities import Metric, RunTag

        now = int(time.time() * 1000)
        step = summary.epochs_run
        status = summary.status
        self.client.log_batch(
            self.run_id,
            metrics=[Metric(k, v, now, step) for k, v in summary_metrics(summary).items()],
            tags=[RunTag("regbench.status", status),
                  RunTag("regbench.verdict", summary.verdict[:5000])])
        if self.settings.log_artifacts:
            for path in sorted(self.run_dir.iterdir()):
                if path.is_file() and not path.name.startswith("."):  # not atomic-write temps
                    self.client.log_artifact(self.run_id, str(path))
        self.client.set_terminated(self.run_id, status=self.STATUS.get(status, "FAILED"))


@contextmanager
def sqlite_lock(uri: str) -> Iterator[None]:
    """Hold a lock file beside an SQLite store while it may be created.

    The first access creates the tables; parallel jobs of a sweep (joblib, Ray) doing that
    at once break MLflow's schema migration, so they take turns.
    """
    if not uri.startswith("sqlite:///"):
        yield
        return
    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)  # SQLite does not create the folder of its file
    try:
        import fcntl
    except ImportError:  # no POSIX file locks: parallel first runs may still collide
        yield
        return
    with open(db.with_name(db.name + ".lock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build(cfg: RegbenchConfig, run_dir: Path, warn: Warn, sweep_id: str | None = None
          ) -> list[Tracker]:
    """The trackers the configuration turns on; a missing package is one line naming the extra."""
    wanted: list[tuple[bool, str, Callable[[], Tracker]]] = [
        (cfg.logger.tensorboard.enabled, "tensorboard",
         lambda: TensorBoardTracker(cfg, run_dir, warn)),
        (cfg.logger.mlflow.enabled, "mlflow",
         lambda: MLflowTracker(cfg, run_dir, warn, sweep_id)),
    ]
    out = []
    for enabled, package, make in wanted:
        if not enabled:
            continue
        if not _installed(package):
            warn(f"logger {package} is off: the {package} package is not installed "
                 f"({EXTRA}); the run goes on without it")
            continue
        out.append(make())
    return out


def _installed(package: str) -> bool:
    from importlib.util import find_spec

    return find_spec(package) is not None
