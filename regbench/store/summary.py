"""summary.json: a run's outcome as one typed object, written and read only here.

``Summary`` is the one definition of the file's fields, in the order they are written.
``best`` and ``last`` are metrics.csv rows (``Row``), stored under the CSV's column names.
A file carries ``format_version``; a folder written before the version existed reads as
version 1 (the same fields), and a key this version does not know is ignored, so older and
newer folders still load.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from regbench.errors import RunDirError
from regbench.store import run_config, runs
from regbench.store.metrics import INPUT_COLUMNS, Row, row_dict

FORMAT_VERSION = 4
FILE = runs.SUMMARY_FILE
# What a run that ended this way is called, for the terminal and the comparison.
FINISHED = runs.FINISHED
# The columns a Row cannot be built without.
REQUIRED = tuple(f.name for f in fields(Row) if f.init and f.default is MISSING)


@dataclass
class Summary:
    """What a run ended with: status, best and last epochs, test metrics, where it ran."""

    status: str  # completed | early_stopped | diverged | interrupted | failed | pruned | running
    epochs_run: int = 0  # epochs finished
    best_epoch: int | None = None  # by `monitor`
    stopped_epoch: int | None = None  # early stopping: the epoch it stopped after
    kept_epoch: int | None = None  # whose weights were tested
    monitor: str = "val_loss"  # the metric that defines the best epoch
    best: Row | None = None  # the metrics.csv row of the best epoch
    last: Row | None = None  # the metrics.csv row of the last epoch
    onset_epoch: int | None = None  # epoch of minimum val loss when it later rose (overfitting)
    test_loss: float | None = None  # cross-entropy on the test split, with the kept weights
    test_acc: float | None = None  # fraction, on the test split, with the kept weights
    test_ece: float | None = None  # weight scaling (dropout off)
    mc_dropout: dict[str, Any] | None = None  # eval.mc_samples > 0: T stochastic passes
    convergence_epoch: int | None = None  # first epoch within 1 point of the best val accuracy
    verdict: str = ""  # one sentence on what the curves show
    wall_time_s: float = 0.0  # seconds, the whole run
    train_images_per_s: float | None = None  # training images per second of the train passes
    n_params: int | None = None  # trainable parameters
    device: str | None = None  # where it trained (cpu, cuda:0, ...)
    machine: dict[str, Any] = field(default_factory=dict)  # host, platform, CPUs
    seed: int | None = None
    experiment: str | None = None  # results/<experiment>/
    error: str | None = None  # one line, for a failed run
    signal: str | None = None  # SIGINT or SIGTERM, for an interrupted run
    # version 4 on: val_images, at_chance, diverged_epoch, diverged_reason, plugins
    val_images: int | None = None  # size of the validation split
    # every epoch's val accuracy within noise of chance (regbench.training.curves.chance_bound): did not learn
    at_chance: bool | None = None
    diverged_epoch: int | None = None  # a diverged run: the epoch it diverged in
    diverged_reason: str | None = None  # a diverged run: what showed it (regbench.training.health)
    versions: dict[str, str] = field(default_factory=dict)  # Python and package versions
    # the plugins imported for it ({"module", "version"}); resume imports them again
    plugins: list[dict[str, Any]] = field(default_factory=list)
    val_loss_rise: float | None = None  # last minus minimum val loss (version 2 on)
    # the resolved configuration as dotted keys, config.yaml's content in a form read without
    # parsing YAML (version 3 on; None in older files: read config.yaml)
    config: dict[str, Any] | None = None
    format_version: int = FORMAT_VERSION  # of this file's layout

    @property
    def finished(self) -> bool:
        """Whether the run ended as planned, so that its metrics count in comparisons."""
        return self.status in FINISHED

    def why_unfinished(self) -> str:
        """The one-line reason the run did not finish."""
        if self.error:
            return self.error
        if self.status == runs.PRUNED:
            return (f"pruned by the search after epoch {self.epochs_run}: its val accuracy was "
                    "behind the other trials' at that epoch")
        if self.status == "diverged":
            return self.verdict or f"the loss became NaN or infinite in epoch {self.epochs_run + 1}"
        return self.verdict or f"status {self.status}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, keys in field order, rows under the metrics.csv column names."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["best"], out["last"] = row_dict(self.best), row_dict(self.last)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        """A summary from its JSON object (any format version); TypeError/ValueError if malformed."""
        if not isinstance(data, dict) or not isinstance(data.get("status"), str):
            raise ValueError("no 'status'")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values.setdefault("format_version", 1)
        values["best"], values["last"] = _row(data.get("best")), _row(data.get("last"))
        values["verdict"] = values.get("verdict") or ""
        _check(values)
        if not isinstance(values.get("config") or {}, dict):
            raise ValueError("config is not an object")
        return cls(**values)

    def run_config(self, run_dir: Path) -> dict[str, Any]:
        """The run's resolved configuration as dotted keys: this file's copy, else its
        config.yaml (RunDirError when neither is there or readable)."""
        return dict(self.config) if self.config is not None else run_config.read(run_dir)

    def write(self, run_dir: Path) -> None:
        """summary.json in run_dir, atomically."""
        runs.write_json(run_dir / FILE, self.to_dict())


SCALARS: dict[str, tuple[type, ...]] = {"int": (int,), "float": (int, float), "str": (str,),
                                        "bool": (bool,)}


def _checks(name: str, annotation: str) -> tuple[str, bool, tuple[type, ...]] | None:
    """How a field's JSON value is checked, from its annotation ('int | None', 'float', ...):
    its name, whether None fits and the types a value may have; None for a field of another
    type (a dict, a row), which is not checked here."""
    parts = [p.strip() for p in annotation.split("|")]
    kinds = [SCALARS[p] for p in parts if p in SCALARS]
    if not kinds or len(kinds) < len([p for p in parts if p != "None"]):
        return None
    return name, "None" in parts, tuple(t for k in kinds for t in k)


_TYPES = {f.name: str(f.type) for f in fields(Summary)}
_CHECKED = [c for name, annotation in _TYPES.items() if (c := _checks(name, annotation))]


def _check(values: dict[str, Any]) -> None:
    """ValueError naming the first scalar field whose value does not fit its annotation."""
    for name, none_fits, types in _CHECKED:
        if name not in values:
            continue
        value = values[name]
        fits = none_fits if value is None else isinstance(value, types) and not (
            isinstance(value, bool) and bool not in types)
        if not fits:
            raise ValueError(f"{name}={value!r} is not {_TYPES[name]}")


def _row(data: Any) -> Row | None:
    """A metrics row from its JSON object: a value the object lacks reads as NaN, and the
    gaps are the file's own when it has them."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ValueError("a row that is not an object")
    given = {k: (math.nan if v is None else v) for k, v in data.items()}
    row = Row(**{k: given.get(k, math.nan) for k in INPUT_COLUMNS
                 if k in given or k in REQUIRED}, )
    row.epoch = int(given.get("epoch", 0))
    for derived in ("gap_acc", "gap_loss"):
        if derived in given:
            setattr(row, derived, given[derived])
    return row


def load(run_dir: Path) -> Summary | None:
    """The run's summary, or None when it is missing or unreadable."""
    try:
        return read(run_dir)
    except RunDirError:
        return None


def read(run_dir: Path) -> Summary:
    """The run's summary, or a RunDirError naming the file."""
    path = run_dir / FILE
    try:
        return Summary.from_dict(json.loads(path.read_text()))
    except FileNotFoundError as e:
        raise RunDirError(f"{run_dir}: no {FILE}; not a regbench run directory") from e
    except (OSError, ValueError, TypeError) as e:
        raise RunDirError(f"{path}: unreadable ({type(e).__name__}: {e}); the run's "
                          f"{runs.METRICS_FILE} is still there") from e


MISSING = "missing"  # the status of a job folder without summary.json


def status(run_dir: Path) -> str:
    """MISSING, or the status recorded in the run's summary.json."""
    s = load(run_dir)
    return MISSING if s is None else s.status


def mark_failed(run_dir: Path, error: str) -> None:
    """Record status 'failed' and the one-line error in the run's summary.json."""
    s = load(run_dir) or Summary(status="failed")
    s.status, s.error = "failed", error
    run_dir.mkdir(parents=True, exist_ok=True)
    s.write(run_dir)


def next_action(run_dir: Path) -> str:
    """What a sweep does with this job: 'skip' a finished or pruned run, 'resume' an
    interrupted one, start the rest 'fresh'."""
    state = status(run_dir)
    if state in FINISHED or state == runs.PRUNED:
        return "skip"
    if state in ("interrupted", "running") and (run_dir / runs.CONFIG_FILE).exists():
        return "resume"  # continues from its checkpoint, or from epoch 1 without one
    return "fresh"


def clear(run_dir: Path) -> None:
    """Remove what an earlier failed attempt left, so the job starts from nothing."""
    for name in (runs.METRICS_FILE, FILE, runs.CHECKPOINT_FILE):
        (run_dir / name).unlink(missing_ok=True)
