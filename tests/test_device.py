"""The fast paths give the results of the plain ones: channels_last, bf16 autocast, compile."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from regbench.data import batching as datamod
from regbench.training import device
from regbench.training import models
from regbench.store import runs
from regbench.present import terminal
from regbench.training import loop as train
from regbench.training import session, step
from regbench.training.models.cnn import CNNConfig
from regbench.training.regularizers import RegConfig
from regbench.training.schema import RegbenchConfig

CPU = torch.device("cpu")


def small_model(batchnorm: bool = True) -> torch.nn.Module:
    torch.manual_seed(0)
    return models.build(CNNConfig(channels=[8, 16], hidden=32), RegConfig(batchnorm=batchnorm), 3, (16, 16))


def loss_and_grads(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor
                   ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    with device.autocast(CPU):
        out = model(device.prepare_batch(x))
    loss = F.cross_entropy(out.float(), y)
    loss.backward()
    return out.float().detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.slow
def test_channels_last_gives_the_same_outputs_and_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    x, y = torch.randn(8, 3, 16, 16), torch.arange(8) % 10
    monkeypatch.setattr(device, "CHANNELS_LAST", set())
    plain = device.prepare_model(small_model(), CPU)
    assert plain[0].weight.is_contiguous() and device.prepare_batch(x).is_contiguous()
    out_plain, grads_plain = loss_and_grads(plain, x, y)
    monkeypatch.setattr(device, "CHANNELS_LAST", {"cpu"})
    fast = device.prepare_model(small_model(), CPU)
    assert fast[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert device.prepare_batch(x).is_contiguous(memory_format=torch.channels_last)
    out_fast, grads_fast = loss_and_grads(fast, x, y)
    assert torch.allclose(out_fast, out_plain, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grads_fast, grads_plain))


def test_bf16_autocast_keeps_batch_norm_in_float32(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "BF16_AUTOCAST", {"cpu"})
    assert device.train_dtype(CPU) == torch.bfloat16
    model = device.prepare_model(small_model(batchnorm=True), CPU)
    x, y = torch.randn(8, 3, 16, 16), torch.arange(8) % 10
    with device.autocast(CPU):
        conv_out = model[0](device.prepare_batch(x))
        out = model(device.prepare_batch(x))
    assert conv_out.dtype == torch.bfloat16 and out.dtype == torch.bfloat16  # autocast covers the convs
    F.cross_entropy(out.float(), y).backward()
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)):
        assert bn.weight.dtype == bn.running_mean.dtype == bn.weight.grad.dtype == torch.float32
    fp32 = small_model(batchnorm=True)
    ref = fp32(x)
    assert torch.allclose(out.float(), ref, atol=0.1)  # bf16 keeps ~3 significant digits


@pytest.mark.slow
def test_runs_with_fast_paths_match_plain_runs(make_cfg: Callable[..., RegbenchConfig], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = make_cfg("reg=batchnorm", "trainer.epochs=1")

    def last_row(name: str) -> dict[str, float]:
        return train.run(cfg, runs.make_run_dir(tmp_path / name, "t")).rows[-1]

    monkeypatch.setattr(device, "CHANNELS_LAST", set())
    plain = last_row("plain")
    monkeypatch.setattr(device, "CHANNELS_LAST", {"cpu"})
    fast = last_row("channels_last")
    assert fast["val_loss"] == pytest.approx(plain["val_loss"], rel=1e-3)
    monkeypatch.setattr(device, "BF16_AUTOCAST", {"cpu"})
    half = last_row("bf16")
    assert half["val_loss"] == pytest.approx(plain["val_loss"], rel=0.1)


def test_compile_unavailable_falls_back_with_one_line(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    def no_compile(*_: object, **__: object) -> None:
        raise RuntimeError("Windows not yet supported for torch.compile\nsecond line")

    monkeypatch.setattr(torch, "compile", no_compile)
    model = device.prepare_model(small_model(), CPU, compile=True)
    assert not device.is_compiled(model)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "torch.compile is not available" in err[0] and "Windows" in err[0]
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 10)


@pytest.mark.slow
def test_compile_failing_at_first_call_falls_back_to_eager(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    calls: list[int] = []

    def failing_compile(fn: Callable[..., torch.Tensor], **_: object) -> Callable[..., torch.Tensor]:
        def compiled(*args: object) -> torch.Tensor:
            calls.append(1)
            raise RuntimeError("InductorError: CppCompileError: C++ compile error (no cc)")
        return compiled

    monkeypatch.setattr(torch, "compile", failing_compile)
    eager = small_model()
    model = device.prepare_model(small_model(), CPU, compile=True)
    assert device.is_compiled(model)
    x = torch.randn(4, 3, 16, 16)
    out = model(x)
    assert torch.allclose(out, eager.to(memory_format=torch.channels_last)(x), atol=1e-5)
    model(x)
    assert calls == [1] and not device.is_compiled(model)  # tried once, then eager for good
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "torch.compile failed" in err[0] and "CppCompileError" in err[0]
    assert set(model.state_dict()) == set(eager.state_dict())  # checkpoints are unaffected


@pytest.mark.slow
def test_compile_true_run_completes_when_compilation_fails(
        make_cfg: Callable[..., RegbenchConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    def failing_compile(fn: Callable[..., torch.Tensor], **_: object) -> Callable[..., torch.Tensor]:
        def compiled(*args: object) -> torch.Tensor:
            raise RuntimeError("backend compiler failed")
        return compiled

    monkeypatch.setattr(torch, "compile", failing_compile)
    result = train.run(make_cfg("trainer.compile=true", "trainer.epochs=1"), runs.make_run_dir(tmp_path, "t"))
    assert result.status == "completed"
    assert capsys.readouterr().err.count("torch.compile failed") == 1


@pytest.mark.slow
def test_metrics_are_read_once_per_epoch_not_per_batch(make_cfg: Callable[..., RegbenchConfig],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # SGD: torch's AdamW reads its own step counter with .item() on every step, which is
    # the optimizer's affair; this test counts the reads regbench's loop makes
    cfg = make_cfg("trainer.batch_size=32", "trainer.eval_batch_size=64", "optim=sgd")
    d = datamod.load(cfg.dataset)
    model = device.prepare_model(models.build(cfg.model, cfg.reg, 1, (28, 28)), CPU)
    trainer = session.build_trainer(cfg, model, d)
    reads: list[int] = []
    real_item = torch.Tensor.item
    monkeypatch.setattr(torch.Tensor, "item", lambda t: reads.append(1) or real_item(t))
    monkeypatch.setattr(terminal, "LOSS_REFRESH_S", 1e9)  # the progress bar's once-a-second read
    progress = terminal.Progress(enabled=False)
    progress.on_train_start(1, datamod.num_batches(len(d.train), 32))
    progress.on_epoch_start(1)
    step.train_one(trainer, progress)
    progress.on_train_end()
    assert len(reads) == 2  # running loss and penalty, for 20+ batches
    reads.clear()
    session.evaluate(model, d.train, d, 64)
    assert len(reads) == 2  # loss and accuracy, for 10+ batches
