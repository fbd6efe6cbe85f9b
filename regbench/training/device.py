"""Device-specific choices in one place: which device, memory format, precision, compilation.

On CUDA a small CNN is bound by memory traffic and kernel launches, so regbench trains in
bf16 autocast by default (``trainer.precision=auto``; batch norm keeps float32 parameters,
statistics and inputs), with channels_last
tensors (the layout cuDNN's fastest convolution kernels use) and cuDNN's autotuner. On the
CPU it trains in float32, also channels_last: oneDNN's convolutions run on NHWC without
reordering: measured with the benchmark's loops, ~15% faster training passes and ~20%
faster full epochs than NCHW for the default MNIST CNN on a 2-core x86 CPU. Each choice is a set of
device types so that tests can switch it on or off and check that results do not change.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch
from torch import Tensor, nn

from regbench.config.schema import PRECISIONS
from regbench.errors import ConfigError

log = logging.getLogger("regbench")

# Device types that train with channels_last images and weights.
CHANNELS_LAST: set[str] = {"cuda", "cpu"}
# Device types that run forward passes in bf16 autocast under trainer.precision=auto.
BF16_AUTOCAST: set[str] = {"cuda"}


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


def available_devices() -> list[str]:
    """The device names this machine can train on: cpu, then cuda:N and mps where present."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        names.append("mps")
    return names


def check_device(key: str, name: str) -> None:
    """ConfigError naming the key, the value and the devices present, unless name is usable."""
    if name == "auto" or name in available_devices():
        return
    raise ConfigError(f"{key}={name!r} is not available on this machine: available are "
                      f"auto, {', '.join(available_devices())}")


def configure(device: torch.device, deterministic: bool) -> None:
    """Backend switches for the device: cuDNN's autotuner unless results must be repeatable."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cuda.matmul.allow_tf32 = True  # float32 parts outside autocast
        torch.backends.cudnn.allow_tf32 = True


# The trainer.precision of the runs being trained: the epoch loop sets it around a
# training (regbench.training.loop.train), so every forward pass of those runs, the
# evaluation and test passes included, reads the same setting.
_PRECISION: ContextVar[str] = ContextVar("regbench_precision", default="auto")


@contextmanager
def precision_in_force(precision: str) -> Iterator[None]:
    """Forward passes inside run under this trainer.precision (auto, fp32 or bf16)."""
    uses_bf16(torch.device("cpu"), precision)  # an unknown value fails here, not mid-run
    token = _PRECISION.set(precision)
    try:
        yield
    finally:
        _PRECISION.reset(token)


def uses_bf16(device: torch.device, precision: str | None = None) -> bool:
    """Whether forward passes on this device run in bf16 autocast under trainer.precision
    (the one in force when None)."""
    precision = _PRECISION.get() if precision is None else precision
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    return precision == "bf16" or (precision == "auto" and device.type in BF16_AUTOCAST)


def autocast(device: torch.device, precision: str | None = None) -> Any:
    """bf16 autocast where the precision asks for it (batch norm stays in float32); else a
    no-op."""
    enabled = uses_bf16(device, precision)
    # a disabled CPU autocast is a no-op on every platform, whatever the device
    return torch.autocast(device.type if enabled else "cpu", dtype=torch.bfloat16, enabled=enabled)


def train_dtype(device: torch.device, precision: str | None = None) -> torch.dtype:
    """The dtype the convolutions and matrix products run in during training."""
    return torch.bfloat16 if uses_bf16(device, precision) else torch.float32


def memory_format(device: torch.device) -> torch.memory_format:
    """channels_last where CHANNELS_LAST says so, else the contiguous NCHW layout."""
    return torch.channels_last if device.type in CHANNELS_LAST else torch.contiguous_format


def prepare_batch(x: Tensor) -> Tensor:
    """An image batch [B, C, H, W] in the memory format its device trains with; for several
    runs' batches [M, B, C, H, W], each run's batch in that format."""
    fmt = memory_format(x.device)
    if x.dim() == 5 and fmt == torch.channels_last:
        return x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3)
    return x.contiguous(memory_format=fmt)


def prepare_model(model: nn.Module, device: torch.device, *, compile: bool = False) -> nn.Module:
    """Move the model to the device in its memory format and optionally compile its forward.

    The same module object is returned (its state_dict keys are unchanged), so checkpoints,
    early stopping and the benchmark work on it whether compiled or not.
    """
    model.to(device=device, memory_format=memory_format(device))
    if compile:
        compile_forward(model)
    return model


def warn(message: str) -> None:
    """One line on stderr and in the run's log."""
    log.warning(message)
    print(f"regbench: warning: {message}", file=sys.stderr)


def _reason(e: BaseException) -> str:
    """The exception's type and the first line of its message, at most ~160 characters."""
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0][:160]}" if lines else type(e).__name__


class _FallbackForward:
    """A compiled forward that switches to the eager one, with one warning, if it fails.

    Compilation happens at the first call for each new mode (train, eval, inference), so a
    missing C compiler or an unsupported operation shows up there, not at torch.compile().
    A failure that is not the compiler's raises again from the eager forward.
    """

    def __init__(self, eager: Callable[..., Tensor], compiled: Callable[..., Tensor]) -> None:
        self.eager, self.compiled = eager, compiled
        self.failed = False

    def __call__(self, *args: Any, **kwargs: Any) -> Tensor:
        if not self.failed:
            try:
                return self.compiled(*args, **kwargs)
            except Exception as e:  # compiler missing or failing: eager still trains correctly
                self.failed = True
                warn(f"trainer.compile=true: torch.compile failed ({_reason(e)}); "
                     "training continues without compilation")
        return self.eager(*args, **kwargs)


def compile_forward(model: nn.Module) -> bool:
    """Replace model.forward by its torch.compile'd version with an eager fallback."""
    try:
        compiled = torch.compile(model.forward)
    except Exception as e:  # unsupported platform or Python version
        warn(f"trainer.compile=true: torch.compile is not available here ({_reason(e)}); "
             "training continues without compilation")
        return False
    model.forward = _FallbackForward(model.forward, compiled)  # type: ignore[method-assign]
    return True


def is_compiled(model: nn.Module) -> bool:
    """Whether the model runs a compiled forward that has not fallen back to eager."""
    forward = model.__dict__.get("forward")
    return isinstance(forward, _FallbackForward) and not forward.failed
