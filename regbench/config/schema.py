"""The configuration schema: typed dataclasses registered in Hydra's ConfigStore.

The dataclasses hold the defaults and the types; the YAML files in ``conf/`` are presets
that Hydra merges into this schema (and so type-checks). ``regbench.training.validation`` checks the
values that a type cannot express (ranges, known names) before any work starts.
"""

from __future__ import annotations

import difflib
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from regbench.errors import ConfigError

CONF_DIR = Path(__file__).parent.parent / "conf"

# The vocabulary of the schema's string keys. Names of datasets, models and optimizers are
# not here: each comes from its registry (regbench.data.datasets, MODEL_CONFIGS, regbench.training.optim).
DEVICES = ("auto", "cpu", "cuda", "mps")
MONITORS = ("val_loss", "val_acc")
DROPOUT_KINDS = ("standard", "spatial", "gaussian")
DROPOUT_SCHEDULES = ("constant", "curriculum", "early", "late", "adaptive")
DROPOUT_POSITIONS = ("after_bn", "before_bn")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
T = TypeVar("T")


@dataclass
class DatasetConfig:
    name: str = "mnist5k"
    root: str = "${oc.env:REGBENCH_DATA,data}"
    download: bool = True
    train_size: int | None = None  # subsample the training split (seeded, stratified)
    val_fraction: float = 0.1  # share of the training pool held out for validation
    split_seed: int = 0  # fixes the split, so that every seed sees the same data
    augment: bool = False


@dataclass
class ModelConfig:
    """What every model's configuration has: its name. Each model subclasses it."""

    name: str = "cnn"

    def check(self) -> None:
        """Raise ConfigError naming the first value this model cannot be built with."""


@dataclass
class CNNConfig(ModelConfig):
    """The CNN of regbench.training.models: conv blocks of these widths, then one hidden FC layer."""

    name: str = "cnn"
    channels: list[int] = field(default_factory=lambda: [32, 64])
    hidden: int = 128

    def check(self) -> None:
        check(len(self.channels) >= 1 and all(c >= 1 for c in self.channels),
              "model.channels", list(self.channels), "a non-empty list of integers >= 1")
        check(self.hidden >= 1, "model.hidden", self.hidden, "an integer >= 1")


# The model registry's names: each model's configuration type. regbench.training.models maps each
# type to the module that builds it; a preset in conf/model/ starts from `<name>_schema`.
MODEL_CONFIGS: dict[str, type[ModelConfig]] = {"cnn": CNNConfig}


@dataclass
class DropoutConfig:
    """Drop probabilities (the chance that a unit is zeroed, as in torch.nn.Dropout)."""

    input: float = 0.0
    conv: float = 0.0
    fc: float = 0.0
    kind: str = "standard"  # standard | spatial (whole feature maps, conv blocks only) | gaussian
    position: str = "after_bn"  # after_bn | before_bn (relative to each block's BN)
    # how the rates change over training: constant | curriculum | early | late | adaptive
    schedule: str = "constant"
    curriculum_gamma: float | None = None  # rise speed per epoch; null: 10 / trainer.epochs
    switch_at: float = 0.5  # early: dropout stops, late: dropout starts after this share of epochs
    adaptive_target: float = 0.02  # adaptive: accuracy gap (fraction) the controller aims at
    adaptive_step: float = 0.05  # adaptive: change of the largest drop rate per epoch
    adaptive_max: float = 0.8  # adaptive: upper bound on any drop rate


@dataclass
class EarlyStoppingConfig:
    enabled: bool = False
    monitor: str = "val_loss"
    patience: int = 5  # epochs without improvement before stopping
    min_delta: float = 0.0  # smallest change that counts as an improvement
    restore_best: bool = True


@dataclass
class RegConfig:
    dropout: DropoutConfig = field(default_factory=DropoutConfig)
    l2: float = 0.0  # lambda: lambda/2 * sum(w^2) added to the loss
    l1: float = 0.0  # lambda: lambda * sum(|w|) added to the loss
    weight_decay: float = 0.0  # decoupled, applied by the optimizer
    decay_bias_and_norm: bool = False
    batchnorm: bool = False
    max_norm: float | None = None  # bound on each unit's incoming weight norm
    label_smoothing: float = 0.0
    dropconnect: float = 0.0  # drop probability of each weight of the FC head (DropConnect)
    augment: bool = False  # data augmentation as a regularizer (same as dataset.augment)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)


@dataclass
class OptimConfig:
    # AdamW: the one candidate that trains 500 images without collapses of val accuracy
    # (docs/explanation/optimizer.md); sgd (lr 0.05) swings by up to 35 points there
    name: str = "adamw"
    lr: float | None = None  # null: 1e-3 for adamw/adam, 0.05 for sgd
    momentum: float = 0.9
    nesterov: bool = False
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    schedule: str = "none"  # none | step | cosine | onecycle
    warmup_epochs: float = 0.0  # the rate rises linearly to lr over these epochs (per batch)
    step_size: int = 5  # epochs between decays, schedule=step
    gamma: float = 0.1  # decay factor, schedule=step


@dataclass
class TrainerConfig:
    epochs: int = 10
    batch_size: int = 128
    eval_batch_size: int = 1024
    train_eval_size: int | None = None  # measure train metrics on a fixed seeded subset
    device: str = "auto"
    deterministic: bool = False
    compile: bool = False
    checkpoint: bool = True  # write a checkpoint after every epoch, for resume
    progress: bool = True


@dataclass
class EvalConfig:
    mc_samples: int = 0  # > 0: also test with the mean of this many passes with dropout on


@dataclass
class OutputConfig:
    root: str = "results"


@dataclass
class TensorBoardConfig:
    enabled: bool = False
    log_dir: str = "tensorboard"  # inside the run folder: `tensorboard --logdir` a sweep sees all


@dataclass
class MLflowConfig:
    enabled: bool = False
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
class RegbenchConfig:
    # results/<experiment>/; a preset of conf/experiment/ sets it, else $REGBENCH_EXPERIMENT
    experiment: str = "${oc.env:REGBENCH_EXPERIMENT,default}"
    seed: int = 0
    # What a study's comparisons are made against, as --baseline takes it ('reg=none',
    # 'reg.dropout.position=after_bn'): an experiment preset names its own; None: the
    # configuration without regularization
    baseline: str | None = None
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=CNNConfig)
    reg: RegConfig = field(default_factory=RegConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)


def register() -> None:
    """Register the schemas that conf/ names in its defaults lists, and the run-id resolver."""
    store = ConfigStore.instance()
    store.store(name="regbench_schema", node=RegbenchConfig)
    for name, schema in MODEL_CONFIGS.items():
        store.store(group="model", name=f"{name}_schema", node=schema)
    OmegaConf.register_new_resolver("regbench_run_id", new_run_id, use_cache=True, replace=True)


def new_run_id() -> str:
    """A sortable id, unique across runs started in the same second or in parallel."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


register()


def to_schema(cfg: DictConfig | dict[str, Any]) -> RegbenchConfig:
    """Turn a composed (or loaded) config into the typed dataclass tree.

    The model section is typed by its name (MODEL_CONFIGS), so a config.yaml read back from
    a run folder gets the same model type that composition gave it.
    """
    base = OmegaConf.structured(RegbenchConfig)
    name = OmegaConf.select(OmegaConf.create(cfg) if isinstance(cfg, dict) else cfg, "model.name",
                            default="cnn")
    if name in MODEL_CONFIGS:
        base.model = OmegaConf.structured(MODEL_CONFIGS[name])
    obj = OmegaConf.to_object(OmegaConf.merge(base, cfg))
    assert isinstance(obj, RegbenchConfig)
    return obj


def load_preset(group: str, name: str, schema: type[T]) -> T:
    """A preset of conf/<group>/ merged onto its part of the schema, as a dataclass."""
    preset = OmegaConf.load(CONF_DIR / group / f"{name}.yaml")
    preset.pop("defaults", None)  # the schema it names is the one given here
    obj = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), preset))
    assert isinstance(obj, schema)
    return obj


def known_keys() -> list[str]:
    """All dotted keys of the schema, for suggestions on a mistyped override."""
    out: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        for key in node:
            path = f"{prefix}{key}"
            child = node[key] if not OmegaConf.is_missing(node, key) else None
            if isinstance(child, DictConfig):
                walk(child, path + ".")
            else:
                out.append(path)

    walk(OmegaConf.structured(RegbenchConfig), "")
    return out


def suggest_key(key: str) -> str:
    """' (did you mean X?)' for the nearest valid key, or ''."""
    match = difflib.get_close_matches(key, known_keys(), n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""


def check(ok: bool, key: str, value: Any, allowed: str) -> None:
    """Raise ConfigError('KEY=VALUE is not allowed: ALLOWED') unless ok."""
    if not ok:
        raise ConfigError(f"{key}={value!r} is not allowed: {allowed}")


def one_of(key: str, value: Any, names: Iterable[str]) -> None:
    """Raise ConfigError unless value is one of names, listing them."""
    names = list(names)
    check(value in names, key, value, "known values are " + ", ".join(names))

