"""Regularizers and models register themselves: one module each, picked up everywhere."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf
from omegaconf.errors import ValidationError

from regbench import cli
from regbench.config.schema import check
from regbench.errors import ConfigError
from regbench.launch.composition import compose
from regbench.training import models, population, regularizers, schema
from regbench.training.regularizers import REGISTRY, Regularization, Regularizer
from regbench.training.schema import RegbenchConfig
from regbench.training.validation import validate


@dataclass
class ToyKeys:
    toy: float = 0.0  # a made-up noise level


class Toy(Regularizer):
    """A regularizer that exists only in this test."""

    name = "toy"
    keys = ToyKeys
    order = 85
    words = {"toy": "toy noise level"}

    @classmethod
    def check(cls, reg: Any) -> None:
        check(reg.toy >= 0, "reg.toy", reg.toy, "a number >= 0")

    @classmethod
    def from_config(cls, reg: Any, epochs: int) -> Toy | None:
        return cls() if reg.toy else None

    def batch(self, x: Any, y: Any) -> tuple[Any, Any]:
        return x, y  # a batch transform: the population cannot draw it per member


def test_a_regularizer_registered_elsewhere_reaches_config_validation_and_population(
        make_cfg: Callable[..., RegbenchConfig], monkeypatch: pytest.MonkeyPatch) -> None:
    base = make_cfg()  # composed before the toy exists
    monkeypatch.setitem(REGISTRY, "toy", Toy)
    reg_config = regularizers.assemble_config()
    names = [f.name for f in fields(reg_config)]
    assert names[-2:] == ["toy", "early_stopping"] and "dropout" in names  # in its order
    typed = OmegaConf.structured(reg_config)
    assert OmegaConf.merge(typed, {"toy": 0.3}).toy == 0.3
    with pytest.raises(ValidationError):
        OmegaConf.merge(typed, {"toy": "loud"})  # typed like every other key

    with pytest.raises(ConfigError, match=r"^reg.toy=-1.0 is not allowed: a number >= 0$"):
        validate(replace(base, reg=reg_config(toy=-1.0)))
    on = replace(base, reg=reg_config(toy=0.3))
    validate(on)
    assert any(isinstance(r, Toy) for r in Regularization.from_config(on.reg).active)
    assert regularizers.words()["reg.toy"] == "toy noise level"

    # a batch transform: a job that turns it on trains on its own, one that leaves it off does not
    assert population.unsupported(on) == "reg.toy=0.3"
    assert population.unsupported(replace(base, reg=reg_config())) is None
    # no hook outside the per-member ones, with toy as a member key: jobs differing in it
    # share one population
    monkeypatch.delattr(Toy, "batch")
    other = replace(base, reg=reg_config(toy=0.1))
    assert population.unsupported(on) is None
    assert population.group_key(on) != population.group_key(other)
    monkeypatch.setattr(Toy, "member_keys", ("toy",))
    assert population.group_key(on) == population.group_key(other)


def test_every_module_of_the_package_is_one_registered_regularizer() -> None:
    modules = {m.name for m in pkgutil.iter_modules(regularizers.__path__)} - {"base"}
    owners = [r.__module__.rsplit(".", 1)[1] for r in regularizers.registered()
              if r.__module__.startswith("regbench.")]  # not an installed plugin's
    assert sorted(owners) == sorted(modules)


def test_reg_keys_are_those_of_the_product_contract() -> None:
    section = regularizers.RegConfig()
    contract = ["dropout", "l2", "l1", "weight_decay", "decay_bias_and_norm", "batchnorm",
                "max_norm", "label_smoothing", "dropconnect", "augment", "early_stopping"]
    # in this order, new regularizers' keys in between
    assert [f.name for f in fields(section) if f.name in contract] == contract
    assert (section.dropout.kind, section.dropout.position, section.dropout.schedule) == (
        "standard", "after_bn", "constant")
    assert section.max_norm is None and section.early_stopping.patience == 5


@pytest.mark.slow
def test_composing_checking_and_naming_a_configuration_do_not_import_torch() -> None:
    # regbench config, every refused override, summarize, plot and report go through the
    # registries; torch costs ~2 s of CPU to import
    code = ("import sys\n"
            "from regbench.launch.composition import compose\n"
            "import regbench.study.labels\n"
            "compose(['model=resnet20', 'reg=cutout', 'reg.mixup=0.2'])\n"
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_a_regularizer_needing_a_site_the_model_lacks_is_refused() -> None:
    reg = regularizers.RegConfig(batchnorm=True)
    with pytest.raises(ConfigError, match=r"^reg.batchnorm=True is not allowed with model=mlp: "
                                          r"it has no conv.norm site \(it offers input.post, fc.post\)$"):
        regularizers.check_sites(reg, ("input.post", "fc.post"), "mlp")
    regularizers.check_sites(regularizers.RegConfig(), ("input.post", "fc.post"), "mlp")


@pytest.mark.parametrize("dataset,blocks,allowed", [("synthetic", 4, True), ("synthetic", 5, False),
                                                   ("cifar10", 5, True), ("cifar10", 6, False)])
def test_conv_blocks_that_shrink_the_image_to_nothing_are_refused(
        dataset: str, blocks: int, allowed: bool) -> None:
    overrides = [f"dataset={dataset}", f"model.channels=[{','.join(['4'] * blocks)}]"]
    if allowed:
        compose(overrides)
        return
    with pytest.raises(ConfigError, match="conv blocks for (28x28|32x32) images"):
        compose(overrides)


def test_too_deep_a_model_is_one_line_and_exit_2_before_training(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["regbench", "run", "model.channels=[8,8,8,8,8,8]",
                                      f"output.root={tmp_path / 'results'}"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["regbench: error: model.channels=[8, 8, 8, 8, 8, 8] is not allowed: at most 4 "
                     "conv blocks for 28x28 images (each block halves the image; 6 shrink it to "
                     "nothing)"]
    assert not (tmp_path / "results").exists()


def test_a_key_of_another_model_says_whose_it_is() -> None:
    assert schema.suggest_key("model.hidden") == " (a key of model=cnn)"
    assert schema.suggest_key("model.hiden") == " (did you mean model.hidden?)"


def test_a_run_written_before_a_regularizer_existed_still_names_its_preset() -> None:
    from regbench.store.run_config import flatten
    from regbench.study import labels

    config = flatten(OmegaConf.to_container(OmegaConf.structured(regularizers.RegConfig(l1=1e-5))),
                     "reg.")
    newest = next(f.name for f in reversed(fields(regularizers.RegConfig))
                  if f.name != "early_stopping")
    del config[f"reg.{newest}"]  # as a run folder from before that key was added
    assert labels.reg_preset(config) == "l1"
    assert labels.reg_label(config) == "reg=l1"
