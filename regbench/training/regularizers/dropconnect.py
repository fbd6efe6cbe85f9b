"""DropConnect (Wan et al., "Regularization of Neural Networks using DropConnect", ICML
2013) on every fully connected layer: reg.dropconnect is the drop probability of each weight.

The masks are weight parametrizations (layers.DropConnectMask), drawn in training mode only.
The population engine does not draw them per member: such runs train on their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from regbench.config.schema import check
from regbench.training.regularizers.base import Regularizer, register

if TYPE_CHECKING:
    from torch import nn


@dataclass
class DropConnectKeys:
    dropconnect: float = 0.0  # drop probability of each weight of the FC head (DropConnect)


@register
@dataclass
class DropConnect(Regularizer):
    """DropConnect on every linear layer of the model (see layers.drop_connect)."""

    name = "dropconnect"
    keys = DropConnectKeys
    order = 70

    p: float

    @classmethod
    def check(cls, reg: Any) -> None:
        check(0.0 <= reg.dropconnect < 1.0, "reg.dropconnect", reg.dropconnect,
              "a drop probability in [0, 1)")

    @classmethod
    def from_config(cls, reg: Any, epochs: int) -> DropConnect | None:
        return cls(reg.dropconnect) if reg.dropconnect > 0 else None

    def attach(self, model: nn.Module) -> None:
        from torch import nn
        from torch.nn.utils import parametrize

        from regbench.training.layers import DropConnectMask

        for layer in [m for m in model.modules() if isinstance(m, nn.Linear)]:
            parametrize.register_parametrization(layer, "weight", DropConnectMask(self.p),
                                                 unsafe=True)  # unsafe: no trial call, no mask drawn
