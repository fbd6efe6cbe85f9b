"""The L2 and L1 penalties added to the loss: reg.l2 / 2 * sum(w^2) + reg.l1 * sum(|w|).

L2 is Tikhonov / ridge regularization (Krogh & Hertz, "A Simple Weight Decay Can Improve
Generalization", NIPS 1991); L1 drives weights to exactly zero (Tibshirani, "Regression
Shrinkage and Selection via the Lasso", 1996). Both act on the decayed weights (conv and
linear weights by default; see reg.decay_bias_and_norm).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from regbench.config.schema import check
from regbench.training.regularizers.base import Regularizer, register

if TYPE_CHECKING:
    from torch import Tensor


def penalty(params: Iterable[Tensor], l2: float = 0.0, l1: float = 0.0) -> Tensor | None:
    """The L2 / L1 penalty added to the loss: l2/2 * sum(w^2) + l1 * sum(|w|).

    Returns None when both coefficients are 0.
    """
    import torch

    if l2 == 0.0 and l1 == 0.0:
        return None
    params = list(params)
    total = params[0].new_zeros(())
    if l2:
        total = total + 0.5 * l2 * torch.stack([p.square().sum() for p in params]).sum()
    if l1:
        total = total + l1 * torch.stack([p.abs().sum() for p in params]).sum()
    return total


@dataclass
class PenaltyKeys:
    l2: float = 0.0  # lambda: lambda/2 * sum(w^2) added to the loss
    l1: float = 0.0  # lambda: lambda * sum(|w|) added to the loss


@register
@dataclass
class Penalty(Regularizer):
    """The L2 / L1 penalty over the decayed weights, added to the loss (see penalty)."""

    name = "penalty"
    keys = PenaltyKeys
    order = 20
    member_keys = ("l1", "l2")
    words = {"l2": "L2 penalty strength λ (λ/2·Σw² added to the loss)",
             "l1": "L1 penalty strength λ (λ·Σ|w| added to the loss)"}

    l2: float
    l1: float

    @classmethod
    def check(cls, reg: Any) -> None:
        for key in ("l1", "l2"):
            check(getattr(reg, key) >= 0.0, f"reg.{key}", getattr(reg, key), "a number >= 0")

    @classmethod
    def from_config(cls, reg: Any, epochs: int) -> Penalty | None:
        return cls(reg.l2, reg.l1) if reg.l2 or reg.l1 else None

    def loss_term(self, params: Sequence[Tensor]) -> Tensor | None:
        return penalty(params, l2=self.l2, l1=self.l1)
