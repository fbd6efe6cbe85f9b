"""ResNet-20 (He et al. 2016, section 4.2): its size, its dropout sites, and that it trains."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from regbench.errors import ConfigError
from regbench.launch.composition import compose
from regbench.store import runs
from regbench.training import loop as train
from regbench.training import models, population
from regbench.training.models.resnet20 import ResNet20Config
from regbench.training.regularizers import RegConfig
from regbench.training.regularizers.dropout import DropoutConfig
from regbench.training.schema import RegbenchConfig


def resnet20(in_channels: int = 3, size: int = 32, **dropout: object) -> nn.Module:
    reg = RegConfig(dropout=DropoutConfig(**dropout))  # type: ignore[arg-type]
    return models.build(ResNet20Config(), reg, in_channels, (size, size))


def count(model: nn.Module, kind: type[nn.Module]) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


@pytest.mark.slow
def test_resnet20_has_the_papers_layers_and_0_27m_parameters() -> None:
    model = resnet20()
    # 19 convs (a stem and 2 per block, 9 blocks), each followed by batch norm, and 1 linear
    assert (count(model, nn.Conv2d), count(model, nn.BatchNorm2d), count(model, nn.Linear)) == (19, 19, 1)
    by_hand = (3 * 16 * 9 + 2 * 16                           # stem conv (no bias) and its BN
               + 6 * (16 * 16 * 9 + 2 * 16)                  # stage 1: 6 convs 16 -> 16
               + 16 * 32 * 9 + 5 * 32 * 32 * 9 + 6 * 2 * 32  # stage 2
               + 32 * 64 * 9 + 5 * 64 * 64 * 9 + 6 * 2 * 64  # stage 3
               + 64 * 10 + 10)                               # classifier
    assert models.count_params(model) == by_hand
    assert abs(by_hand - 270_000) <= 10_000  # the paper's 0.27 M
    x = torch.randn(2, 3, 32, 32)
    assert model(x).shape == (2, 10)
    assert resnet20(1, 28)(torch.randn(2, 1, 28, 28)).shape == (2, 10)  # odd sizes halve too


@pytest.mark.slow
def test_the_dropout_options_reach_input_blocks_and_head() -> None:
    after = resnet20(input=0.1, conv=0.2, fc=0.5)
    rates = sorted(m.p for m in after.modules() if isinstance(m, nn.Dropout))
    assert rates == [0.1] + [0.2] * 9 + [0.5]  # the input, one per block's branch, the head
    before = resnet20(conv=0.2, fc=0.5, position="before_bn")
    assert count(before, nn.Dropout) == 19 + 1  # in front of every batch norm, and the head
    spatial = resnet20(conv=0.2, kind="spatial")
    assert count(spatial, nn.Dropout2d) == 9
    x = torch.randn(4, 3, 32, 32)
    after.eval()
    assert torch.equal(after(x), after(x))
    after.train()
    assert not torch.equal(after(x), after(x))


@pytest.mark.slow
def test_batch_norm_is_built_in_so_reg_batchnorm_is_refused() -> None:
    _, cfg = compose(["model=resnet20", "dataset=cifar10"])
    assert cfg.model.channels == [16, 32, 64] and cfg.model.blocks == 3
    with pytest.raises(ConfigError, match="reg.batchnorm=True is not allowed with model=resnet20"):
        compose(["model=resnet20", "reg=batchnorm"])
    with pytest.raises(ConfigError, match="model.blocks=0"):
        compose(["model=resnet20", "model.blocks=0"])


@pytest.mark.slow
def test_resnet20_trains_an_epoch_on_synthetic_data(make_cfg: Callable[..., RegbenchConfig],
                                                    tmp_path: Path) -> None:
    cfg = make_cfg("model=resnet20", "reg=dropout", "dataset=synthetic", "dataset.train_size=100",
                   "trainer.epochs=1", "trainer.batch_size=25", tiny=False)
    result = train.run(cfg, runs.make_run_dir(tmp_path / "results", "resnet20"))
    # grey images: the stem has 1 input channel instead of 3, 2 * 16 * 9 weights fewer
    assert result.status == "completed" and result.summary.n_params == 269_722 - 2 * 16 * 9
    assert 0.0 <= result.rows[0]["val_acc"] <= 1.0 and result.rows[0]["train_loss_running"] > 0
    assert population.unsupported(cfg) == "model=resnet20"  # its jobs train on their own
