"""Decoupled weight decay (Loshchilov & Hutter, "Decoupled Weight Decay Regularization",
ICLR 2019): the optimizer shrinks the decayed weights in the update, w <- w - lr * wd * w,
instead of adding a penalty gradient to the loss. reg.weight_decay is wd.

reg.decay_bias_and_norm widens the decayed group, for weight decay and the L1/L2 penalties
alike, from conv and linear weights (the common practice: He et al. 2019, "Bag of Tricks")
to every parameter, biases and batch-norm scale and shift included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from regbench.config.schema import check
from regbench.training.regularizers.base import Groups, Regularizer, make_groups, register

if TYPE_CHECKING:
    from torch import nn


@dataclass
class WeightDecayKeys:
    weight_decay: float = 0.0  # decoupled, applied by the optimizer
    decay_bias_and_norm: bool = False  # also decay biases and batch-norm parameters


@register
@dataclass
class WeightDecay(Regularizer):
    """The decayed group's weight decay, and which parameters that group holds."""

    name = "weight_decay"
    keys = WeightDecayKeys
    order = 30
    member_keys = ("weight_decay",)
    words = {"weight_decay": "weight decay per step (decoupled)"}

    rate: float
    decay_bias_and_norm: bool = False

    @classmethod
    def check(cls, reg: Any) -> None:
        check(reg.weight_decay >= 0.0, "reg.weight_decay", reg.weight_decay, "a number >= 0")

    @classmethod
    def from_config(cls, reg: Any, epochs: int) -> WeightDecay | None:
        if not reg.weight_decay and not reg.decay_bias_and_norm:
            return None
        return cls(reg.weight_decay, reg.decay_bias_and_norm)

    def param_groups(self, model: nn.Module, groups: Groups) -> None:
        if self.decay_bias_and_norm:
            groups[:] = make_groups(model, decay_bias_and_norm=True)
        for g in groups:
            if g["name"] == "decay":
                g["weight_decay"] = self.rate
