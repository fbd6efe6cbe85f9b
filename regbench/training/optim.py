"""Optimizers and learning-rate schedules, each registered by the name the config uses.

torch is imported inside the builders, so that checking a configuration against these
registries stays fast.
"""

from __future__ import annotations

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
# Schedules and whether they step per batch (else per epoch); "none" keeps the rate fixed.
SCHEDULES: dict[str, bool] = {"none": False, "step": False, "cosine": True, "onecycle": True}


def learning_rate(cfg: OptimConfig) -> float:
    """The configured learning rate, or the optimizer's usual default when null."""
    return cfg.lr if cfg.lr is not None else OPTIMIZERS[cfg.name].default_lr


def build_optimizer(cfg: OptimConfig, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    """The optimizer named by cfg.name over the parameter groups (weight decay comes per group)."""
    return OPTIMIZERS[cfg.name].build(cfg, groups, learning_rate(cfg))


class Schedule:
    """A learning-rate schedule stepped per batch (cosine, onecycle) or per epoch (step)."""

    def __init__(self, cfg: OptimConfig, optimizer: torch.optim.Optimizer, epochs: int,
                 steps_per_epoch: int) -> None:
        import torch

        total = max(epochs * steps_per_epoch, 1)
        self.per_batch = SCHEDULES[cfg.schedule]
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        if cfg.schedule == "step":
            self.scheduler = torch.optim.lr_scheduler.StepLR(optimizer, cfg.step_size, cfg.gamma)
        elif cfg.schedule == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
        elif cfg.schedule == "onecycle":
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=learning_rate(cfg), total_steps=total)

    def batch_step(self) -> None:
        if self.scheduler is not None and self.per_batch:
            self.scheduler.step()

    def epoch_step(self) -> None:
        if self.scheduler is not None and not self.per_batch:
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict() if self.scheduler is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state)


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The learning rate of the first parameter group."""
    return float(optimizer.param_groups[0]["lr"])
