"""Optimizers and learning-rate schedules, each registered by the name the config uses.

torch is imported inside the builders, so that checking a configuration against these
registries stays fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from regbench.config.schema import OptimConfig

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class OptimizerSpec:
    """An optimizer: its usual starting learning rate for a small CNN, and how to build it."""

    default_lr: float
    build: Callable[[OptimConfig, list[dict[str, Any]], float], torch.optim.Optimizer]


def _sgd(cfg: OptimConfig, groups: list[dict[str, Any]], lr: float) -> torch.optim.Optimizer:
    """SGD with momentum (Nesterov optional); decay is the plain update w <- w - lr * wd * w."""
    import torch

    return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum,
                           nesterov=cfg.nesterov and cfg.momentum > 0)


def _adamw(cfg: OptimConfig, groups: list[dict[str, Any]], lr: float) -> torch.optim.Optimizer:
    """Adam with decoupled decay (AdamW, Loshchilov & Hutter 2019); the coupled form is reg.l2."""
    import torch

    return torch.optim.AdamW(groups, lr=lr, betas=(cfg.betas[0], cfg.betas[1]))


OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec(0.05, _sgd),
    "adam": OptimizerSpec(1e-3, _adamw),
    "adamw": OptimizerSpec(1e-3, _adamw),
}
# Schedules the config may name; "none" keeps the rate fixed (after any warm-up).
SCHEDULES = ("none", "step", "cosine", "onecycle")


def learning_rate(cfg: OptimConfig) -> float:
    """The configured learning rate, or the optimizer's usual default when null."""
    return cfg.lr if cfg.lr is not None else OPTIMIZERS[cfg.name].default_lr


def build_optimizer(cfg: OptimConfig, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    """The optimizer named by cfg.name over the parameter groups (weight decay comes per group)."""
    return OPTIMIZERS[cfg.name].build(cfg, groups, learning_rate(cfg))


def warmup_steps(cfg: OptimConfig, steps_per_epoch: int) -> int:
    """optim.warmup_epochs in batches (0: no warm-up; a fraction of an epoch is at least 1)."""
    if cfg.warmup_epochs <= 0:
        return 0
    return max(round(cfg.warmup_epochs * steps_per_epoch), 1)


def lr_factor(cfg: OptimConfig, step: int, epochs: int, steps_per_epoch: int) -> float:
    """The share of the configured rate used for batch ``step`` (0-based), for none/step/cosine.

    A linear warm-up (Goyal et al. 2017, "Accurate, Large Minibatch SGD") multiplies the
    schedule's factor: batch i of W warm-up batches uses (i + 1) / W of the rate, so the
    first steps, taken from random weights where gradients are largest, cannot throw the
    weights far enough to undo what was learnt.
    """
    warm = warmup_steps(cfg, steps_per_epoch)
    factor = min(1.0, (step + 1) / warm) if warm else 1.0
    if cfg.schedule == "step":  # x gamma every step_size epochs, as torch's StepLR
        factor *= cfg.gamma ** (step // steps_per_epoch // cfg.step_size)
    elif cfg.schedule == "cosine":  # to 0 at the last batch, as torch's CosineAnnealingLR
        total = max(epochs * steps_per_epoch, 1)
        factor *= 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    return factor


class Schedule:
    """The learning rate batch by batch: an optional linear warm-up, then the named schedule.

    none, step and cosine are closed-form factors of the configured rate (``lr_factor``),
    set before every batch; onecycle is torch's OneCycleLR, which has a warm-up of its own
    (the first 30% of the steps) and so ignores optim.warmup_epochs.
    """

    def __init__(self, cfg: OptimConfig, optimizer: torch.optim.Optimizer, epochs: int,
                 steps_per_epoch: int) -> None:
        import torch

        self.cfg, self.optimizer = cfg, optimizer
        self.epochs, self.steps_per_epoch = epochs, max(steps_per_epoch, 1)
        self.base = [float(g["lr"]) for g in optimizer.param_groups]
        self.step = 0  # batches taken
        self.onecycle: torch.optim.lr_scheduler.OneCycleLR | None = None
        if cfg.schedule == "onecycle":
            self.onecycle = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=learning_rate(cfg),
                total_steps=max(epochs * self.steps_per_epoch, 1))
        self._apply()

    def _apply(self) -> None:
        """Set every group's rate for the next batch."""
        if self.onecycle is not None:
            return
        factor = lr_factor(self.cfg, self.step, self.epochs, self.steps_per_epoch)
        for group, base in zip(self.optimizer.param_groups, self.base, strict=True):
            group["lr"] = base * factor

    def batch_step(self) -> None:
        self.step += 1
        if self.onecycle is not None:
            self.onecycle.step()
        self._apply()

    def epoch_step(self) -> None:
        """Nothing: every schedule moves per batch (kept for the engines' epoch hook)."""

    def state_dict(self) -> dict[str, Any]:
        if self.onecycle is not None:
            return self.onecycle.state_dict()
        return {"step": self.step}

    def load_state_dict(self, state: dict[str, Any], epochs_done: int) -> None:
        """Continue from a checkpoint written after ``epochs_done`` epochs.

        Checkpoints of older versions hold torch's StepLR or CosineAnnealingLR state (or
        nothing for a fixed rate); every checkpoint is written at an epoch's end, so the
        batch count follows from the epochs done.
        """
        if self.onecycle is not None:
            self.onecycle.load_state_dict(state)
            return
        self.step = int(state.get("step", epochs_done * self.steps_per_epoch))
        self._apply()


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The learning rate of the first parameter group."""
    return float(optimizer.param_groups[0]["lr"])
