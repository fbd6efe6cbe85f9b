"""Optimizers and learning-rate schedules."""

from __future__ import annotations

from typing import Any

import torch

from regbench.config import OptimConfig, learning_rate


def build_optimizer(cfg: OptimConfig, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    """SGD (momentum, Nesterov) or Adam/AdamW; weight decay comes per group.

    SGD's decay is the plain update w <- w - lr * wd * w. With Adam the decay is always
    decoupled (AdamW, Loshchilov & Hutter 2019); the coupled form is ``reg.l2``.
    """
    lr = learning_rate(cfg)
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum,
                               nesterov=cfg.nesterov and cfg.momentum > 0)
    return torch.optim.AdamW(groups, lr=lr, betas=(cfg.betas[0], cfg.betas[1]))


class Schedule:
    """A learning-rate schedule stepped per batch (cosine, onecycle) or per epoch (step)."""

    def __init__(self, cfg: OptimConfig, optimizer: torch.optim.Optimizer, epochs: int,
                 steps_per_epoch: int) -> None:
        total = max(epochs * steps_per_epoch, 1)
        self.per_batch = cfg.schedule in ("cosine", "onecycle")
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
