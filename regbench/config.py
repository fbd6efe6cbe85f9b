"""The configuration schema: typed dataclasses registered in Hydra's ConfigStore.

The dataclasses hold the defaults and the types; the YAML files in ``conf/`` are presets
that Hydra merges into this schema (and so type-checks). ``validate`` checks the values
that a type cannot express (ranges, known names) before any work starts.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from regbench.errors import ConfigError

CONF_DIR = Path(__file__).parent / "conf"

DATASETS = ("mnist5k", "mnist", "fashion_mnist", "cifar10", "synthetic")
MODELS = ("cnn",)
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("none", "step", "cosine", "onecycle")
DEVICES = ("auto", "cpu", "cuda", "mps")
MONITORS = ("val_loss", "val_acc")
DROPOUT_KINDS = ("standard", "spatial")
DROPOUT_POSITIONS = ("after_bn", "before_bn")
# Learning rates used when optim.lr is null: the usual starting points for a small CNN.
DEFAULT_LR = {"sgd": 0.05, "adam": 1e-3, "adamw": 1e-3}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")


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
    name: str = "cnn"
    channels: list[int] = field(default_factory=lambda: [32, 64])
    hidden: int = 128


@dataclass
class DropoutConfig:
    """Drop probabilities (the chance that a unit is zeroed, as in torch.nn.Dropout)."""

    input: float = 0.0
    conv: float = 0.0
    fc: float = 0.0
    kind: str = "standard"  # standard | spatial (whole feature maps, conv blocks only)
    position: str = "after_bn"  # after_bn | before_bn (relative to each block's BN)


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
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)


@dataclass
class OptimConfig:
    name: str = "sgd"
    lr: float | None = None  # null: 0.05 for sgd, 1e-3 for adam/adamw
    momentum: float = 0.9
    nesterov: bool = False
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    schedule: str = "none"  # none | step | cosine | onecycle
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
class OutputConfig:
    root: str = "results"


@dataclass
class RegbenchConfig:
    # results/<experiment>/; a preset of conf/experiment/ sets it, else $REGBENCH_EXPERIMENT
    experiment: str = "${oc.env:REGBENCH_EXPERIMENT,default}"
    seed: int = 0
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    reg: RegConfig = field(default_factory=RegConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


def register() -> None:
    """Register the schema so that conf/config.yaml can name it in its defaults list."""
    ConfigStore.instance().store(name="regbench_schema", node=RegbenchConfig)


register()


def to_schema(cfg: DictConfig | dict[str, Any]) -> RegbenchConfig:
    """Turn a composed (or loaded) config into the typed dataclass tree."""
    merged = OmegaConf.merge(OmegaConf.structured(RegbenchConfig), cfg)
    obj = OmegaConf.to_object(merged)
    assert isinstance(obj, RegbenchConfig)
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


def _check(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key}={value!r} is not allowed: {allowed}")


def _one_of(key: str, value: Any, names: tuple[str, ...]) -> None:
    _check(value in names, key, value, "known values are " + ", ".join(names))


def validate(cfg: RegbenchConfig) -> None:
    """Check every value a type cannot express; raise ConfigError naming the first bad one."""
    _check(bool(NAME_RE.match(cfg.experiment)) and ".." not in cfg.experiment, "experiment",
           cfg.experiment, "a name of letters, digits, '_', '-' and '.', with no path separators")
    d = cfg.dataset
    _one_of("dataset.name", d.name, DATASETS)
    _check(0.0 < d.val_fraction < 1.0, "dataset.val_fraction", d.val_fraction, "a fraction in (0, 1)")
    _check(d.train_size is None or d.train_size >= 10, "dataset.train_size", d.train_size,
           "null or an integer >= 10 (at least one image per class)")
    _one_of("model.name", cfg.model.name, MODELS)
    _check(len(cfg.model.channels) >= 1 and all(c >= 1 for c in cfg.model.channels),
           "model.channels", list(cfg.model.channels), "a non-empty list of integers >= 1")
    _check(cfg.model.hidden >= 1, "model.hidden", cfg.model.hidden, "an integer >= 1")
    r = cfg.reg
    for part in ("input", "conv", "fc"):
        p = getattr(r.dropout, part)
        _check(0.0 <= p < 1.0, f"reg.dropout.{part}", p, "a drop probability in [0, 1)")
    _one_of("reg.dropout.kind", r.dropout.kind, DROPOUT_KINDS)
    _one_of("reg.dropout.position", r.dropout.position, DROPOUT_POSITIONS)
    for key in ("l1", "l2", "weight_decay", "label_smoothing"):
        _check(getattr(r, key) >= 0.0, f"reg.{key}", getattr(r, key), "a number >= 0")
    _check(r.label_smoothing < 1.0, "reg.label_smoothing", r.label_smoothing, "a number in [0, 1)")
    _check(r.max_norm is None or r.max_norm > 0, "reg.max_norm", r.max_norm, "null or a number > 0")
    es = r.early_stopping
    _one_of("reg.early_stopping.monitor", es.monitor, MONITORS)
    _check(es.patience >= 1, "reg.early_stopping.patience", es.patience, "an integer >= 1")
    _check(es.min_delta >= 0, "reg.early_stopping.min_delta", es.min_delta, "a number >= 0")
    o = cfg.optim
    _one_of("optim.name", o.name, OPTIMIZERS)
    _one_of("optim.schedule", o.schedule, SCHEDULES)
    _check(o.lr is None or o.lr > 0, "optim.lr", o.lr, "null or a number > 0")
    _check(0.0 <= o.momentum < 1.0, "optim.momentum", o.momentum, "a number in [0, 1)")
    _check(len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas), "optim.betas", list(o.betas),
           "two numbers in [0, 1)")
    _check(o.step_size >= 1, "optim.step_size", o.step_size, "an integer >= 1")
    _check(0 < o.gamma <= 1, "optim.gamma", o.gamma, "a number in (0, 1]")
    t = cfg.trainer
    _check(t.epochs >= 1, "trainer.epochs", t.epochs, "an integer >= 1")
    _check(t.batch_size >= 1, "trainer.batch_size", t.batch_size, "an integer >= 1")
    _check(t.eval_batch_size >= 1, "trainer.eval_batch_size", t.eval_batch_size, "an integer >= 1")
    _check(t.train_eval_size is None or t.train_eval_size >= 1, "trainer.train_eval_size",
           t.train_eval_size, "null or an integer >= 1")
    _one_of("trainer.device", t.device.split(":")[0], DEVICES)
    _check(bool(cfg.output.root), "output.root", cfg.output.root, "a directory path")


def learning_rate(cfg: OptimConfig) -> float:
    """The configured learning rate, or the optimizer's usual default when null."""
    return cfg.lr if cfg.lr is not None else DEFAULT_LR[cfg.name]

