"""Cutout (DeVries & Taylor 2017): one square zeroed in each training image, none in eval."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import Tensor

from regbench.data import batching
from regbench.store import runs
from regbench.training import loop as train
from regbench.training import population
from regbench.training.regularizers import RegConfig, Regularization
from regbench.training.regularizers import cutout as cutout_module
from regbench.training.schema import RegbenchConfig


def test_cutout_zeroes_one_square_of_the_configured_side_in_each_image() -> None:
    torch.manual_seed(0)
    n, side = 400, 16
    x = torch.rand(n, 3, 32, 32) + 1.0  # no zero anywhere before
    y = torch.arange(n) % 10
    out, labels = Regularization.from_config(RegConfig(cutout=side)).batch(x, y)
    assert torch.equal(labels, y)
    zero = out == 0
    assert torch.equal(zero, zero[:, :1].expand_as(zero))  # the same square in every channel
    assert torch.equal(out[~zero], x[~zero])  # the rest untouched
    whole = 0
    for mask in zero[:, 0]:
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        # one rectangle: contiguous rows and columns, every pixel inside it zeroed
        assert rows.max() - rows.min() + 1 == len(rows) and cols.max() - cols.min() + 1 == len(cols)
        assert int(mask.sum()) == len(rows) * len(cols)
        assert side // 2 <= len(rows) <= side and side // 2 <= len(cols) <= side  # centre inside
        whole += len(rows) == side and len(cols) == side
    # centres uniform over the 32 x 32 pixels: the square lies wholly inside for 17 of 32
    # positions per axis; the share of whole squares is within 4 binomial standard errors
    p = (17 / 32) ** 2
    assert abs(whole / n - p) < 4 * math.sqrt(p * (1 - p) / n)


def test_cutout_off_and_bad_sizes() -> None:
    x = torch.rand(4, 1, 28, 28)
    out, _ = Regularization.from_config(RegConfig()).batch(x, torch.zeros(4, dtype=torch.long))
    assert out is x  # 0: no transform at all
    with pytest.raises(Exception, match=r"reg.cutout=-1 is not allowed"):
        cutout_module.Cutout.check(RegConfig(cutout=-1))


@pytest.mark.slow
def test_cutout_acts_on_training_batches_only(make_cfg: Callable[..., RegbenchConfig],
                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real = cutout_module.cutout

    def counted(x: Tensor, size: int) -> Tensor:
        seen.append(len(x))
        return real(x, size)

    monkeypatch.setattr(cutout_module, "cutout", counted)
    cfg = make_cfg("reg=cutout", "dataset.train_size=100", "trainer.epochs=1",
                   "trainer.batch_size=32")
    result = train.run(cfg, runs.make_run_dir(tmp_path / "results", "cutout"))
    assert result.status == "completed"
    # every training batch, and nothing of the eval passes (train-eval, val, test)
    assert sum(seen) == 100 and len(seen) == batching.num_batches(100, 32)
    assert population.unsupported(cfg) == "reg.cutout=8"  # a population trains it on its own


@pytest.mark.parametrize("args, words", [
    (["dataset=synthetic", "reg.cutout=100"], "reg.cutout=100 is not allowed: the images of "
     "dataset=synthetic are 28x28: 0 (off) or a side below 28"),
    (["dataset=synthetic", "reg.cutout=28"], "a side below 28"),
    (["dataset=cifar10", "reg.cutout=32"], "dataset=cifar10 are 32x32: 0 (off) or a side below 32"),
    (["dataset=synthetic", "reg.mixup=-0.5"], "reg.mixup=-0.5 is not allowed"),
])
def test_a_value_that_blanks_the_images_is_refused_in_one_line_before_anything_runs(
        args: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from helpers import cli

    assert cli("run", *args, f"output.root={tmp_path / 'results'}",
               f"dataset.root={tmp_path / 'data'}") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
    assert not (tmp_path / "results").exists()  # nothing ran, no folder was made


def test_the_cutout_side_is_checked_against_the_shape_the_data_turns_out_to_have() -> None:
    from regbench.errors import ConfigError
    from regbench.training import regularizers

    reg = RegConfig(cutout=16)
    regularizers.check_shape(reg, (3, 32, 32), "cifar10")
    with pytest.raises(ConfigError, match=r"reg.cutout=16 .* dataset=mine are 16x20: .* below 16"):
        regularizers.check_shape(reg, (3, 16, 20), "mine")
