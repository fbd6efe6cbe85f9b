"""trainer.precision: the CUDA path's bf16 autocast, run on the CPU by both engines.

On CUDA, ``trainer.precision=auto`` trains in bf16 autocast; ``trainer.precision=bf16``
switches the same path on here, so the dtypes it promises are checked where CI runs:
convolutions and linear layers in bf16, batch norm with float32 parameters and running
statistics (a population's members normalise in float32), the loss and every metric in
float32, the optimizer's (stacked) parameters in float32.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import run_cli
from regbench.store import runs
from regbench.training import device, models, population
from regbench.training import loop as train
from regbench.training.schema import RegbenchConfig

TINY = ["dataset.train_size=300", "trainer.deterministic=true", "trainer.epochs=2",
        "reg.batchnorm=true"]
# bf16 keeps 8 bits of mantissa (relative rounding 2**-9 = 0.2% per operation). Measured on
# this tiny task, bf16 and float32 losses after 2 epochs differ by under 1.5%; 5% leaves
# room for other CPUs, while a float32 path that silently stayed on (difference 0) or a
# broken bf16 path (a loss off by tens of percent, or NaN) is caught by the tests below.
BF16_RTOL = 0.05
LOSSES = ["train_loss", "val_loss"]


class Seen:
    """The dtypes that reach each kind of layer and the loss during a training."""

    def __init__(self) -> None:
        self.conv: set[torch.dtype] = set()
        self.norm_in: set[torch.dtype] = set()
        self.norm_params: set[torch.dtype] = set()
        self.loss: set[torch.dtype] = set()

    def hook(self, model: nn.Module) -> nn.Module:
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.register_forward_hook(self.record_conv)
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                self.norm_params |= {p.dtype for p in (m.weight, m.running_mean) if p is not None}
        return model

    def record_conv(self, m: nn.Module, _args: Any, out: torch.Tensor) -> None:
        if m.training:  # the training step's convolutions (not a population's dry run)
            self.conv.add(out.dtype)


@contextmanager
def watching(monkeypatch: pytest.MonkeyPatch) -> Iterator[Seen]:
    seen = Seen()
    build, cross_entropy = models.build, F.cross_entropy
    norm_forward = nn.modules.batchnorm._BatchNorm.forward

    def built(*args: Any, **kwargs: Any) -> nn.Module:
        return seen.hook(build(*args, **kwargs))

    def loss(logits: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        seen.loss.add(logits.dtype)
        return cross_entropy(logits, *args, **kwargs)

    def normalise(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self.training:  # what the training step's batch-norm computation receives
            seen.norm_in.add(x.dtype)
        return norm_forward(self, x)

    monkeypatch.setattr(models, "build", built)
    monkeypatch.setattr(F, "cross_entropy", loss)
    monkeypatch.setattr(nn.modules.batchnorm._BatchNorm, "forward", normalise)
    yield seen


def rows(results: list[Any], columns: list[str] = LOSSES) -> np.ndarray:
    return np.array([[r[c] for c in columns] for res in results for r in res.rows], dtype=float)


def test_precision_selects_the_autocast_dtype_on_any_device() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert device.train_dtype(cpu, "auto") == torch.float32  # auto: bf16 on CUDA only
    assert device.train_dtype(cuda, "auto") == torch.bfloat16
    assert device.train_dtype(cuda, "fp32") == torch.float32
    assert device.train_dtype(cpu, "bf16") == torch.bfloat16
    with device.precision_in_force("bf16"):
        assert device.train_dtype(cpu) == torch.bfloat16
        with device.autocast(cpu):
            assert nn.Linear(4, 2)(torch.randn(3, 4)).dtype == torch.bfloat16
    assert device.train_dtype(cpu) == torch.float32  # restored on leaving
    with pytest.raises(ValueError, match="fp16"):
        device.uses_bf16(cpu, "fp16")


def test_an_unknown_precision_is_one_line(tmp_path: Path) -> None:
    r = run_cli("run", "dataset=synthetic", "trainer.precision=fp16", cwd=tmp_path)
    assert r.returncode == 2 and not (tmp_path / "results").exists()
    line = (r.stdout + r.stderr).strip().splitlines()
    assert len(line) == 1 and "trainer.precision" in line[0] and "fp16" in line[0]
    assert "auto, fp32, bf16" in line[0]


@pytest.mark.slow
def test_a_sequential_run_in_bf16_on_the_cpu(make_cfg: Callable[..., RegbenchConfig],
                                             tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    fp32 = train.run(make_cfg(*TINY, "trainer.precision=fp32"),
                     runs.make_run_dir(tmp_path / "fp32", "t"))
    auto = train.run(make_cfg(*TINY), runs.make_run_dir(tmp_path / "auto", "t"))
    assert rows([auto]).tolist() == rows([fp32]).tolist()  # auto on a CPU is float32, exactly
    with watching(monkeypatch) as seen:
        half = train.run(make_cfg(*TINY, "trainer.precision=bf16"),
                         runs.make_run_dir(tmp_path / "bf16", "t"))
    assert half.status == "completed"
    assert seen.conv == {torch.bfloat16}  # the convolutions ran in bf16
    assert seen.norm_params == {torch.float32}  # batch norm kept float32 weights and statistics
    assert seen.loss == {torch.float32}  # the loss (train, eval and test) from float32 logits
    assert half.summary.config["trainer.precision"] == "bf16"
    got, want = rows([half]), rows([fp32])
    assert np.isfinite(got).all() and not np.array_equal(got, want)  # bf16 did change the sums
    np.testing.assert_allclose(got, want, rtol=BF16_RTOL)
    assert abs(half.rows[-1]["val_acc"] - fp32.rows[-1]["val_acc"]) <= 0.1


@pytest.mark.slow
def test_a_population_in_bf16_on_the_cpu(make_cfg: Callable[..., RegbenchConfig],
                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def together(precision: str) -> list[Any]:
        cfgs = [make_cfg(*TINY, f"trainer.precision={precision}", f"seed={s}") for s in (1, 2)]
        members = [train.Member(c, runs.make_run_dir(tmp_path / precision, f"s{i}"))
                   for i, c in enumerate(cfgs)]
        return train.train(members, population.PopulationEngine())

    fp32 = together("fp32")
    stacked: set[torch.dtype] = set()
    stack = population.stack_parameters

    def stacking(*args: Any) -> dict[str, torch.Tensor]:
        out = stack(*args)
        stacked.update(t.dtype for t in out.values())
        return out

    monkeypatch.setattr(population, "stack_parameters", stacking)
    with watching(monkeypatch) as seen:
        half = together("bf16")
    assert [r.status for r in half] == ["completed", "completed"]
    assert stacked == {torch.float32}  # the stacked parameters the optimizer steps: float32
    assert seen.conv == {torch.bfloat16}
    assert seen.norm_in == {torch.float32}  # members normalise in float32 (Float32Norm)
    assert seen.loss == {torch.float32}
    got, want = rows(half), rows(fp32)
    assert np.isfinite(got).all() and not np.array_equal(got, want)
    np.testing.assert_allclose(got, want, rtol=BF16_RTOL)


@pytest.mark.slow
def test_a_compiled_sequential_run_matches_the_eager_one(
        make_cfg: Callable[..., RegbenchConfig], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[bool] = []
    prepare = device.prepare_model

    def prepared(model: nn.Module, dev: torch.device, *, compile: bool = False) -> nn.Module:
        out = prepare(model, dev, compile=compile)
        compiled.append(device.is_compiled(out))
        return out

    monkeypatch.setattr("regbench.training.session.prepare_model", prepared)
    cfg = ["dataset.train_size=200", "trainer.deterministic=true", "trainer.epochs=1"]
    eager = train.run(make_cfg(*cfg), runs.make_run_dir(tmp_path / "eager", "t"))
    fast = train.run(make_cfg(*cfg, "trainer.compile=true"),
                     runs.make_run_dir(tmp_path / "compiled", "t"))
    assert compiled == [False, True]  # torch.compile with this machine's C compiler
    assert fast.status == "completed"
    # inductor fuses and reorders float32 sums: losses agree to rounding, not bit for bit
    np.testing.assert_allclose(rows([fast]), rows([eager]), rtol=1e-3)
