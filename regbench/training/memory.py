"""How much device memory a population member needs, and how many members fit.

A population holds, per member: its parameters twice (the member's own model and the
stacked copy the step trains), their gradients, the optimizer's state (two tensors per
parameter for Adam and AdamW, one for SGD with momentum) and the activations of one
training batch, which autograd keeps for the backward pass. The activations are measured
by one forward pass of the member's model over two images on the CPU, scaled to the batch
size, in the training dtype, times ACTIVATION_FACTOR for what the backward pass adds.
Before a grid trains as populations (regbench.launch.jobs), each population is cut to the
members that fit the device's free memory with a MARGIN; a device that reports no free
memory (the CPU) is not cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from regbench.training import models
from regbench.training.device import train_dtype
from regbench.training.schema import RegbenchConfig

# Share of the free memory a population may plan to use: the rest is for the allocator's
# fragmentation, cuDNN's workspaces and the evaluation passes.
MARGIN = 0.8
# The backward pass holds each saved activation and its gradient, and the elementwise
# layers (dropout masks, ReLU) keep masks of their own: 3x the forward activations.
ACTIVATION_FACTOR = 3
STATE_SLOTS = {"adam": 2, "adamw": 2}


@dataclass(frozen=True)
class MemberMemory:
    """Estimated bytes one population member needs on its device."""

    weights: int  # the member's parameters, the stacked copy and their gradients
    optimizer: int
    activations: int

    @property
    def total(self) -> int:
        return self.weights + self.optimizer + self.activations


def optimizer_slots(cfg: RegbenchConfig) -> int:
    """Tensors of optimizer state per parameter tensor."""
    if cfg.optim.name in STATE_SLOTS:
        return STATE_SLOTS[cfg.optim.name]
    return 1 if cfg.optim.momentum > 0 else 0


def estimate(cfg: RegbenchConfig, in_channels: int, image_size: tuple[int, int],
             device: torch.device) -> MemberMemory:
    """The memory one member of a population with this configuration needs on device."""
    model = models.build(cfg.model, cfg.reg, in_channels, image_size)
    n_param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    outputs: list[int] = []

    def count(_m: nn.Module, _args: Any, out: Any) -> None:
        if isinstance(out, Tensor):
            outputs.append(out.numel())

    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    try:
        model.train()
        with torch.no_grad():
            model(torch.zeros(2, in_channels, *image_size))
    finally:
        for h in hooks:
            h.remove()
    per_image = sum(outputs) / 2
    element = torch.empty((), dtype=train_dtype(device)).element_size()
    activations = int(per_image * cfg.trainer.batch_size * element * ACTIVATION_FACTOR)
    return MemberMemory(weights=3 * n_param_bytes,
                        optimizer=optimizer_slots(cfg) * n_param_bytes,
                        activations=activations)


def free_bytes(device: torch.device) -> int | None:
    """The device's free memory in bytes, or None where it sets no limit of its own (CPU)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return None


def members_that_fit(per_member: int, free: int | None, data_bytes: int = 0) -> int | None:
    """How many members fit in MARGIN of the free memory after the data; None: no limit.

    At least one: a member that does not fit alone still trains (as a sequential job would),
    and an out-of-memory error then says so.
    """
    if free is None:
        return None
    budget = free * MARGIN - data_bytes
    return max(1, int(budget // max(per_member, 1)))


def gib(n: float) -> str:
    """Bytes as GiB for a message: '1.25 GiB'."""
    return f"{n / 2**30:,.2f} GiB"
