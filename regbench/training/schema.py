"""The whole configuration schema, registered in Hydra's ConfigStore.

``RegbenchConfig`` is regbench.config.schema's fixed sections plus the two that the
registries assemble: ``reg`` (``RegConfig``: the keys every registered regularizer
declares) and ``model`` (the config dataclass of the model that model.name names). A
new regularizer or model is picked up here without an edit; one that a plugin registers
later (regbench.training.plugins) is picked up by ``refresh``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from regbench.config.schema import (ClaimConfig, DatasetConfig, EvalConfig, LoggerConfig,
                                    OptimConfig, OutputConfig, SettleConfig, TrainerConfig)
from regbench.config.schema import CONF_DIR
from regbench.data.datasets import DATASET_INFO
from regbench.training import regularizers
from regbench.training.models import MODELS, ModelConfig
from regbench.training.regularizers import RegConfig

DEFAULT_MODEL = "cnn"


@dataclass
class RegbenchConfig:
    # results/<experiment>/; a preset of conf/experiment/ sets it, else $REGBENCH_EXPERIMENT
    experiment: str = "${oc.env:REGBENCH_EXPERIMENT,default}"
    seed: int = 0  # initial weights, batch order, dropout masks, augmentation (not the split)
    # What a study's comparisons are made against, as --baseline takes it ('reg=none',
    # 'reg.dropout.position=after_bn'): an experiment preset names its own; None: the
    # configuration without regularization
    baseline: str | None = None
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=lambda: MODELS[DEFAULT_MODEL].config())
    # the current RegConfig, looked up when a config is made: plugins may rebuild it
    reg: RegConfig = field(default_factory=lambda: RegConfig())  # type: ignore[valid-type]
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    settle: SettleConfig = field(default_factory=SettleConfig)  # used by `regbench sweep` only
    claim: ClaimConfig = field(default_factory=ClaimConfig)  # used by `regbench atlas` only


def register() -> None:
    """Register the schemas that conf/ names in its defaults lists: the whole config, and
    `<name>_schema` for each model's preset."""
    store = ConfigStore.instance()
    schema = OmegaConf.structured(RegbenchConfig)
    # the model section as the base type, so that any model's preset (model=NAME) merges
    # onto it; typed as the default model's config, it would refuse every other model
    schema.model = OmegaConf.structured(ModelConfig)
    store.store(name="regbench_schema", node=schema)
    for name, spec in MODELS.items():
        store.store(group="model", name=f"{name}_schema", node=spec.config)
        if not (CONF_DIR / "model" / f"{name}.yaml").is_file():  # a plugin's model: model=NAME
            store.store(group="model", name=name, node=spec.config(name=name))
    for name in DATASET_INFO:  # a plugin's data set: dataset=NAME
        if not (CONF_DIR / "dataset" / f"{name}.yaml").is_file():
            store.store(group="dataset", name=name, node={"name": name})


register()


def refresh() -> None:
    """Reassemble the reg section and re-register the schemas, after a plugin registered
    regularizers or models (ValueError when two of them declare the same key)."""
    global RegConfig
    RegConfig = regularizers.RegConfig = regularizers.assemble_config()
    register()


def to_schema(cfg: DictConfig | dict[str, Any]) -> RegbenchConfig:
    """Turn a composed (or loaded) config into the typed dataclass tree.

    The model section is typed by its name (the model registry), so a config.yaml read back
    from a run folder gets the same model type that composition gave it.
    """
    if isinstance(cfg, DictConfig):  # plain values: a config made before a refresh holds old types
        cfg = OmegaConf.to_container(cfg, resolve=False)  # type: ignore[assignment]
    base = OmegaConf.structured(RegbenchConfig)
    name = OmegaConf.select(OmegaConf.create(cfg), "model.name", default=DEFAULT_MODEL)
    if name in MODELS:
        base.model = OmegaConf.structured(MODELS[name].config)
    obj = OmegaConf.to_object(OmegaConf.merge(base, cfg))
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
    for spec in MODELS.values():  # every model's keys, not only the default model's
        walk(OmegaConf.structured(spec.config), "model.")
    return list(dict.fromkeys(out))


def suggest_key(key: str) -> str:
    """' (did you mean X?)' for the nearest valid key, ' (a key of model=X)' for another
    model's key, or ''."""
    owners = [name for name, spec in MODELS.items()
              if key.startswith("model.") and key[6:] in {f.name for f in fields(spec.config)}]
    if owners:
        return f" (a key of model={' or model='.join(owners)})"
    match = difflib.get_close_matches(key, known_keys(), n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""
