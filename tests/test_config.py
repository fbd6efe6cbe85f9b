"""The configuration: presets compose against the schema, and bad values are refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from regbench.data.datasets import DATASET_INFO
from regbench.launch.composition import compose, split_args
from regbench.config.schema import CONF_DIR
from regbench.training.schema import RegbenchConfig, suggest_key
from regbench.errors import ConfigError

GROUPS = ("dataset", "model", "reg", "optim", "experiment")
# Presets of data sets read from the user's files (npz, folder): tests/test_files.py gives them files.
USER_FILES = {name for name, info in DATASET_INFO.items() if info.where}


def quick_first(cases: list[Any], quick: int, key: Callable[[Any], Any] = lambda c: None
                ) -> list[Any]:
    """The cases as parameters, the first `quick` of each key in the quick loop and the rest
    marked slow (each composition costs a Hydra compose call, ~0.2 s on 2 cores)."""
    seen: dict[Any, int] = {}
    params = []
    for case in cases:
        seen[key(case)] = seen.get(key(case), 0) + 1
        marks = [] if seen[key(case)] <= quick else [pytest.mark.slow]
        params.append(pytest.param(*case, marks=marks))
    return params


@pytest.mark.parametrize("group,option", quick_first(
    [(g, p.stem) for g in GROUPS for p in sorted((CONF_DIR / g).glob("*.yaml"))
     if not (g == "dataset" and p.stem in USER_FILES)], 1,
    key=lambda case: case[0]))
def test_every_preset_composes_and_validates(group: str, option: str) -> None:
    _, schema = compose([f"{group}={option}"])
    assert isinstance(schema, RegbenchConfig)


def test_product_defaults() -> None:
    _, cfg = compose([])
    assert (cfg.experiment, cfg.seed, cfg.dataset.name, cfg.dataset.val_fraction) == ("default", 0, "mnist5k", 0.1)
    assert (cfg.model.channels, cfg.model.hidden, cfg.trainer.epochs, cfg.trainer.batch_size) == ([32, 64], 128, 10, 128)
    assert cfg.reg.dropout.position == "after_bn" and cfg.reg.early_stopping.monitor == "val_loss"


def test_typical_command_overrides_a_preset() -> None:
    _, cfg = compose(["reg=dropout", "reg.dropout.fc=0.3"])
    assert (cfg.reg.dropout.conv, cfg.reg.dropout.fc) == (0.25, 0.3)


BAD = [
    ("reg.dropout.input=1.0", "reg.dropout.input"), ("reg.dropout.conv=-0.1", "reg.dropout.conv"),
    ("reg.l2=-1", "reg.l2"), ("reg.l1=-1", "reg.l1"), ("reg.weight_decay=-1", "reg.weight_decay"),
    ("optim.lr=0", "optim.lr"), ("trainer.epochs=0", "trainer.epochs"),
    ("trainer.batch_size=0", "trainer.batch_size"), ("reg.early_stopping.patience=0", "patience"),
    ("dataset.val_fraction=1.0", "dataset.val_fraction"), ("dataset.name=imagenet", "dataset.name"),
    ("optim.schedule=warmup", "optim.schedule"), ("reg.early_stopping.monitor=loss", "monitor"),
    ("reg.dropout.kind=uniform", "reg.dropout.kind"), ("reg.dropout.position=middle", "position"),
    ("trainer.device=tpu", "trainer.device"), ("reg.max_norm=0", "reg.max_norm"),
    ("reg.label_smoothing=1.0", "reg.label_smoothing"), ("model.channels=[]", "model.channels"),
    ("model.channels=[8,0]", "model.channels"), ("model.hidden=0", "model.hidden"),
    ("model.name=resnet", "model.name"), ("dataset.val_fraction=0", "dataset.val_fraction"),
    ("dataset.train_size=5", "dataset.train_size"), ("optim.momentum=1.0", "optim.momentum"),
    ("optim.betas=[0.9,1.5]", "optim.betas"), ("optim.step_size=0", "optim.step_size"),
    ("optim.gamma=0", "optim.gamma"), ("trainer.eval_batch_size=0", "trainer.eval_batch_size"),
    ("trainer.train_eval_size=0", "trainer.train_eval_size"),
    ("reg.early_stopping.min_delta=-1", "min_delta"), ("reg.dropout.fc=-0.5", "reg.dropout.fc"),
    ("reg.dropout.fc=1", "reg.dropout.fc"), ("experiment=default", None),
]


@pytest.mark.parametrize("override,key", quick_first(BAD[:-1], 6) + [BAD[-1]])
def test_bad_values_name_the_key_and_what_is_allowed(override: str, key: str | None) -> None:
    if key is None:  # a good value, to show the check is not a blanket refusal
        compose([override])
        return
    with pytest.raises(ConfigError) as info:
        compose([override])
    message = str(info.value)
    assert key in message and override.split("=", 1)[1].strip("[]").split(",")[-1] in message
    assert "\n" not in message
    assert "allowed" in message or "known values" in message


def test_unknown_key_suggests_the_nearest() -> None:
    assert suggest_key("reg.dropout.fcc") == " (did you mean reg.dropout.fc?)"
    with pytest.raises(ConfigError, match="did you mean trainer.epochs"):
        compose(["trainer.epoch=3"])


def test_hydra_flags_are_kept_apart_from_overrides() -> None:
    assert split_args(["reg=l2", "--cfg", "job", "seed=1", "--info", "--resolve"]) == (
        ["reg=l2", "seed=1"], ["--cfg", "job", "--info", "--resolve"])


def test_schema_is_the_source_of_defaults(make_cfg: Callable[..., RegbenchConfig]) -> None:
    cfg = make_cfg("reg=l2")
    assert cfg.reg.l2 == 5e-4 and cfg.dataset.name == "synthetic"
