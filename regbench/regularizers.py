"""Every regularizer regbench compares, each in one place.

- dropout (input, conv blocks, FC head; standard or spatial): ``make_dropout``
- L1 / L2 penalty added to the loss: ``penalty``
- decoupled weight decay and the decay / no-decay parameter split: ``param_groups``
- max-norm constraint on each unit's incoming weights: ``apply_max_norm``
- early stopping on a validation metric: ``EarlyStopping``
- label smoothing is the ``label_smoothing`` argument of the cross-entropy loss, and batch
  norm a switch of the model (``regbench.models``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn


def make_dropout(p: float, kind: str = "standard") -> nn.Module:
    """Dropout with drop probability p (Srivastava et al., JMLR 2014), as a module.

    Inverted dropout: in training each unit is zeroed with probability p and the survivors
    are scaled by 1/(1-p); in eval mode the module is the identity. ``kind="spatial"`` zeroes
    whole feature maps (``nn.Dropout2d``; Tompson et al., CVPR 2015), which suits conv maps
    whose neighbouring pixels are correlated. p = 0 gives ``nn.Identity``.
    """
    if p <= 0.0:
        return nn.Identity()
    return nn.Dropout2d(p) if kind == "spatial" else nn.Dropout(p)


def is_decayed(name: str, param: Tensor, decay_bias_and_norm: bool = False) -> bool:
    """Whether L2, L1 and weight decay apply: conv/linear weights (>= 2 dims) only, by default.

    Biases and batch-norm scale/shift are left alone (He et al. 2019, "Bag of Tricks").
    """
    return decay_bias_and_norm or param.ndim >= 2


def split_params(model: nn.Module, decay_bias_and_norm: bool = False
                 ) -> tuple[list[Tensor], list[Tensor]]:
    """(decayed, not decayed) trainable parameters of a model."""
    decay: list[Tensor] = []
    no_decay: list[Tensor] = []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (decay if is_decayed(name, p, decay_bias_and_norm) else no_decay).append(p)
    return decay, no_decay


def param_groups(model: nn.Module, weight_decay: float, decay_bias_and_norm: bool = False
                 ) -> list[dict[str, Any]]:
    """Optimizer parameter groups with decoupled weight decay on the decayed group only.

    Decoupled decay (Loshchilov & Hutter, ICLR 2019) shrinks weights in the update,
    w <- w - lr * wd * w, instead of adding a penalty gradient to the loss.
    """
    decay, no_decay = split_params(model, decay_bias_and_norm)
    groups = [{"params": decay, "weight_decay": weight_decay, "name": "decay"}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "name": "no_decay"})
    return groups


def describe_groups(groups: list[dict[str, Any]]) -> str:
    """One line saying what each parameter group holds, for the run's log."""
    parts = []
    for g in groups:
        n = sum(p.numel() for p in g["params"])
        parts.append(f"{g['name']}: {len(g['params'])} tensors, {n:,} values, "
                     f"weight_decay={g['weight_decay']:g}")
    return "; ".join(parts)


def penalty(params: Iterable[Tensor], l2: float = 0.0, l1: float = 0.0) -> Tensor | None:
    """The L2 / L1 penalty added to the loss: l2/2 * sum(w^2) + l1 * sum(|w|).

    L2 is Tikhonov / ridge regularization (Krogh & Hertz, NIPS 1991); L1 drives weights to
    exactly zero (Tibshirani 1996). Returns None when both coefficients are 0.
    """
    if l2 == 0.0 and l1 == 0.0:
        return None
    params = list(params)
    total = params[0].new_zeros(())
    if l2:
        total = total + 0.5 * l2 * torch.stack([p.square().sum() for p in params]).sum()
    if l1:
        total = total + l1 * torch.stack([p.abs().sum() for p in params]).sum()
    return total


@torch.no_grad()
def apply_max_norm(params: Iterable[Tensor], max_norm: float) -> None:
    """Rescale each unit's incoming weight vector to L2 norm <= max_norm, in place.

    The max-norm constraint used with dropout by Srivastava et al. (JMLR 2014), c ~ 3-4.
    Applied after every optimizer step to conv kernels and linear weights (dim 0 = unit).
    """
    for p in params:
        if p.ndim >= 2:
            p.copy_(torch.renorm(p, 2, 0, max_norm))


@dataclass
class EarlyStopping:
    """Stop when the monitored metric has not improved by min_delta for `patience` epochs.

    Keeps a copy of the best weights so they can be restored (Prechelt, "Early Stopping -
    But When?", 1998; the patience rule is his UP-style criterion on the validation curve).
    """

    monitor: str = "val_loss"
    patience: int = 5
    min_delta: float = 0.0
    best: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    best_state: dict[str, Tensor] | None = field(default=None, repr=False)

    @property
    def sign(self) -> float:
        """+1 when lower is better (losses), -1 when higher is better (accuracies)."""
        return -1.0 if self.monitor.endswith("acc") else 1.0

    def improved(self, value: float) -> bool:
        """Whether value beats the best so far by more than min_delta."""
        if not math.isfinite(value):
            return False
        return self.best_epoch == 0 or self.sign * (self.best - value) > self.min_delta

    def step(self, value: float, epoch: int, model: nn.Module | None = None) -> bool:
        """Record one epoch's metric; return True when training should stop."""
        if self.improved(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            if model is not None:
                self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def restore(self, model: nn.Module) -> bool:
        """Load the best weights into the model; False if none were kept."""
        if self.best_state is None:
            return False
        model.load_state_dict(self.best_state)
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
                "best_state": copy.copy(self.best_state)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = float(state["best"]), int(state["best_epoch"])
        self.bad_epochs, self.best_state = int(state["bad_epochs"]), state["best_state"]
