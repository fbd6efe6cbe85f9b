"""DropBlock as regbench sees it once the package is installed, and the layer itself."""

from __future__ import annotations

from importlib import metadata

import pytest
import torch
import torch.nn.functional as F

from regbench.errors import ConfigError
from regbench.launch.composition import compose
from regbench.training import models
from regbench_dropblock.layer import DropBlock2d, drop_block


def test_blocks_cover_about_the_rate_and_the_rest_is_rescaled() -> None:
    torch.manual_seed(0)
    x = torch.ones(64, 4, 14, 14)
    out = drop_block(x, 0.2, 3)
    zero = (out == 0).float()
    assert 0.14 < zero.mean().item() < 0.26
    assert out.mean().item() == pytest.approx(1.0, abs=1e-5)  # kept units scaled up
    # every zeroed unit lies in a 3x3 square that is zeroed whole: blocks, not single units
    whole = (F.avg_pool2d(zero, 3, stride=1) == 1).float()
    covered = F.max_pool2d(F.pad(whole, (2, 2, 2, 2)), 3, stride=1)
    assert bool((zero <= covered).all())


def test_it_is_off_in_evaluation_and_at_rate_zero() -> None:
    x = torch.randn(2, 3, 7, 7)
    layer = DropBlock2d(0.3, 3).eval()
    assert torch.equal(layer(x), x)
    assert torch.equal(DropBlock2d(0.0, 3).train()(x), x)
    assert "rate=0.3, block_size=3" in repr(layer)


def test_installed_it_is_found_and_its_keys_are_ordinary_keys() -> None:
    found = {ep.value for ep in metadata.entry_points(group="regbench.plugins")}
    assert "regbench_dropblock" in found
    _, cfg = compose(["reg=dropblock"])
    assert (cfg.reg.dropblock.rate, cfg.reg.dropblock.block_size) == (0.15, 3)
    with pytest.raises(ConfigError, match=r"reg\.dropblock\.block_size=4 is not allowed: an odd"):
        compose(["reg=dropblock", "reg.dropblock.block_size=4"])
    with pytest.raises(ConfigError, match=r"reg\.dropblock\.rate=1\.0 is not allowed"):
        compose(["reg.dropblock.rate=1.0"])


def test_the_cnn_gets_a_dropblock_after_each_conv_block() -> None:
    _, cfg = compose(["reg=dropblock", "model.channels=[8,16,16]"])
    net = models.build(cfg.model, cfg.reg, 1, (28, 28))
    assert sum(isinstance(m, DropBlock2d) for m in net.modules()) == 3
    net.train()
    assert net(torch.randn(4, 1, 28, 28)).shape == (4, 10)
