"""The configuration schema's fixed sections: typed dataclasses, and the checks' wording.

The dataclasses hold the defaults and the types; the YAML files in ``conf/`` are presets
that Hydra merges into the schema (and so type-checks). The ``reg`` and ``model`` sections
are not here: each regularizer and each model declares its own keys, and
``regbench.training.schema`` assembles the whole schema (``RegbenchConfig``) from these
sections and the registries. ``regbench.training.validation`` checks the values that a
type cannot express (ranges, known names) before any work starts.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import OmegaConf

from regbench.errors import ConfigError

CONF_DIR = Path(__file__).parent.parent / "conf"

# The vocabulary of the fixed sections' string keys. Names of datasets, models, optimizers
# and regularizers' options are not here: each comes from its registry (regbench.data.datasets,
# regbench.training.models, regbench.training.optim, regbench.training.regularizers).
DEVICES = ("auto", "cpu", "cuda", "mps")
# trainer.precision: auto (bf16 autocast on CUDA, float32 elsewhere), fp32, bf16 (any device)
PRECISIONS = ("auto", "fp32", "bf16")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
T = TypeVar("T")


@dataclass
class DatasetConfig:
    """The dataset section: which data set, where its files are, how it is split."""

    name: str = "mnist5k"  # a registered data set; `regbench datasets` lists them
    # where data set files are looked for; dataset=folder: the image folder (train/, test/)
    root: str = "${oc.env:REGBENCH_DATA,data}"
    path: str | None = None  # dataset=npz: the .npz file (x_train, y_train, x_test, y_test)
    download: bool = True  # fetch missing torchvision data sets (false: never)
    train_size: int | None = None  # subsample the training split (seeded, stratified)
    val_fraction: float = 0.1  # share of the training pool held out for validation
    split_seed: int = 0  # fixes the split, so that every seed sees the same data
    augment: bool = False  # random shifts (grey) or crops + flips (colour), on the device


@dataclass
class OptimConfig:
    # AdamW: the one candidate that trains 500 images without collapses of val accuracy
    # (docs/explanation/optimizer.md); sgd (lr 0.05) swings by up to 35 points there
    name: str = "adamw"
    lr: float | None = None  # null: 1e-3 for adamw/adam, 0.05 for sgd
    momentum: float = 0.9  # sgd only
    nesterov: bool = False  # Nesterov momentum, sgd only
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # adam / adamw
    schedule: str = "none"  # none | step | cosine | onecycle
    warmup_epochs: float = 0.0  # the rate rises linearly to lr over these epochs (per batch)
    step_size: int = 5  # epochs between decays, schedule=step
    gamma: float = 0.1  # decay factor, schedule=step


@dataclass
class TrainerConfig:
    epochs: int = 10
    batch_size: int = 128  # training images per step
    eval_batch_size: int = 1024  # images per batch of the eval-mode passes
    train_eval_size: int | None = None  # measure train metrics on a fixed seeded subset
    device: str = "auto"  # auto (CUDA, then MPS, then CPU) | cpu | cuda | cuda:N | mps
    deterministic: bool = False  # deterministic algorithms: same seed, same metrics.csv
    compile: bool = False  # torch.compile the model (sequential runs only)
    # auto: bf16 autocast on CUDA, float32 elsewhere | fp32 | bf16 (also on a CPU); batch
    # norm normalises in float32 under bf16
    precision: str = "auto"
    checkpoint: bool = True  # write a checkpoint after every epoch, for resume
    progress: bool = True  # the progress bar (off in sweeps unless set)
    # a run diverges when its eval-mode train or val loss exceeds this many times a uniform
    # guess's ln(K) nats (or any loss, parameter or gradient stops being finite); inf: only
    # the finiteness checks (docs/how-to/troubleshooting.md gives the measurements behind 10)
    diverge_factor: float = 10.0


@dataclass
class EvalConfig:
    mc_samples: int = 0  # > 0: also test with the mean of this many passes with dropout on


@dataclass
class OutputConfig:
    root: str = "results"  # runs go to <root>/<experiment>/<run-id>/


@dataclass
class TensorBoardConfig:
    enabled: bool = False  # on with logger=NAME
    log_dir: str = "tensorboard"  # inside the run folder: `tensorboard --logdir` a sweep sees all


@dataclass
class MLflowConfig:
    enabled: bool = False  # on with logger=NAME
    # a local SQLite store by default; an http(s):// URI logs to a tracking server
    tracking_uri: str = "sqlite:///${output.root}/mlflow.db"
    experiment_name: str = "${experiment}"
    # where a new experiment of a local store keeps its artifacts (a server chooses its own)
    artifact_location: str = "${output.root}/mlruns"
    log_artifacts: bool = True  # copy the run folder's files to the MLflow run at the end


@dataclass
class LoggerConfig:
    """Experiment trackers, each off by default; `logger=[tensorboard,mlflow]` turns on both."""

    tensorboard: TensorBoardConfig = field(default_factory=TensorBoardConfig)
    mlflow: MLflowConfig = field(default_factory=MLflowConfig)


@dataclass
class SettleConfig:
    """`regbench sweep --settle`: add seeds in rounds only where a comparison is undecided.

    Round 1 runs start_seeds seeds of every configuration; each later round multiplies the
    seeds per configuration by growth (5, 10, 20, 40) for the configurations with an
    undecided comparison, and the baseline. It stops when every comparison on `metrics` is
    established or equivalent, at max_seeds, or once max_time_s of jobs have run. The
    error rate holds however many rounds run (regbench.study.sequential).
    """

    enabled: bool = False  # a preset may set it; `regbench sweep --settle` does
    metrics: list[str] = field(default_factory=lambda: ["val_acc", "gap_acc_last"])
    start_seeds: int = 5  # seeds per configuration in round 1
    max_seeds: int = 40  # seeds per configuration at most: the budget, and the last planned look
    growth: float = 2.0  # seeds per configuration grow by this factor each round
    max_time_s: float | None = None  # wall-time budget in seconds of jobs; null: none
    alpha: float = 0.05  # familywise error rate of each metric's verdicts
    spending: str = "pocock"  # alpha-spending function: pocock | obrien_fleming
    margin: float | None = None  # equivalence margin, points of accuracy; null: 0.5 per metric


@dataclass
class ClaimStudy:
    """One settle that a claim reads: overrides added to the preset's, and its baseline."""

    overrides: list[str] = field(default_factory=list)  # e.g. ['dataset.train_size=3600']
    baseline: str | None = None  # as --baseline takes it; null: the preset's `baseline`


@dataclass
class ClaimPart:
    """One comparison a claim predicts: a configuration against its study's baseline (or,
    with `against`, one column against another of the same runs, paired by seed)."""

    config: str = ""  # which configuration, as --baseline names one: 'reg.dropout.fc=0.9'
    expect: str = "higher"  # higher | lower | not_higher | not_lower | equal | different
    study: str = "main"  # a key of claim.studies
    metric: str | None = None  # null: claim.metric
    against: str | None = None  # a run column (test_acc): a difference within each run


@dataclass
class ClaimConfig:
    """`regbench atlas`: a tutorial's claim about dropout, and the comparisons that decide it.

    Each part's verdict is read off its settled interval (regbench.study.claims); `combine`
    says how the parts make the claim's verdict: all of them must hold, or any one.
    """

    number: int = 0  # its place in the atlas (0: not a claim)
    title: str = ""  # a few words
    statement: str = ""  # the claim as tutorials state it
    reading: str = ""  # how the statement is read as the comparisons below
    metric: str = "val_acc"  # the parts' metric unless a part names its own
    combine: str = "all"  # all | any
    # name -> one settle {overrides: [...], baseline: KEY=VALUE}; none: one study, "main",
    # of the preset as it is
    studies: dict[str, ClaimStudy] = field(default_factory=dict)
    # the comparisons the claim predicts, each {config, expect, study, metric, against}:
    # expect is higher, lower, not_higher, not_lower, equal or different
    parts: list[ClaimPart] = field(default_factory=list)


def new_run_id() -> str:
    """A sortable id, unique across runs started in the same second or in parallel."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


# config.yaml names each run's folder with ${regbench_run_id:}
OmegaConf.register_new_resolver("regbench_run_id", new_run_id, use_cache=True, replace=True)


def load_preset(group: str, name: str, schema: type[T]) -> T:
    """A preset of conf/<group>/ merged onto its part of the schema, as a dataclass."""
    preset = OmegaConf.load(CONF_DIR / group / f"{name}.yaml")
    preset.pop("defaults", None)  # the schema it names is the one given here
    obj = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), preset))
    assert isinstance(obj, schema)
    return obj


def check(ok: bool, key: str, value: Any, allowed: str) -> None:
    """Raise ConfigError('KEY=VALUE is not allowed: ALLOWED') unless ok."""
    if not ok:
        raise ConfigError(f"{key}={value!r} is not allowed: {allowed}")


def one_of(key: str, value: Any, names: Iterable[str]) -> None:
    """Raise ConfigError unless value is one of names, listing them."""
    names = list(names)
    check(value in names, key, value, "known values are " + ", ".join(names))

