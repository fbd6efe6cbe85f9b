"""DropBlock (Ghiasi, Lin & Le, "DropBlock: A regularization method for convolutional
networks", NeurIPS 2018): in training, contiguous squares of a conv feature map are zeroed
instead of single units, so that a unit's neighbours cannot fill in for it.

reg.dropblock.rate is the share of units dropped (the paper's 1 - keep_prob);
reg.dropblock.block_size the side of each square, in feature-map pixels (7 in the paper's
ResNet-50 on ImageNet; 3 suits the 14x14 and 7x7 maps of a CNN on 28x28 digits). Block
centres are drawn with the paper's rate gamma, so that about `rate` of the units fall in a
block; the kept units are scaled by (all units / kept units), as the paper's code does, so
that evaluation (with DropBlock off) sees the same expected activation. The layers sit
after each conv block's activation (the model's conv.post sites).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from regbench.plugin import Regularizer, Site, check, register_preset, register_regularizer

if TYPE_CHECKING:
    from torch import nn


@dataclass
class DropBlockConfig:
    rate: float = 0.0  # share of a conv feature map's units dropped, in blocks; 0: off
    block_size: int = 3  # side of each dropped square, feature-map pixels (odd)


@dataclass
class DropBlockKeys:
    dropblock: DropBlockConfig = field(default_factory=DropBlockConfig)


@register_regularizer
@dataclass
class DropBlock(Regularizer):
    """DropBlock2d after every conv block (the conv.post sites)."""

    name = "dropblock"
    keys = DropBlockKeys
    order = 15  # after dropout's keys in reg
    words = {"dropblock.rate": "DropBlock rate (share of conv units dropped, in blocks)",
             "dropblock.block_size": "DropBlock block side (feature-map pixels)"}

    rate: float
    block_size: int

    @classmethod
    def check(cls, reg: Any) -> None:
        d = reg.dropblock
        check(0.0 <= d.rate < 1.0, "reg.dropblock.rate", d.rate, "a drop share in [0, 1)")
        check(d.block_size >= 1 and d.block_size % 2 == 1, "reg.dropblock.block_size",
              d.block_size, "an odd integer >= 1 (feature-map pixels), e.g. 3, 5 or 7")

    @classmethod
    def from_config(cls, reg: Any, epochs: int) -> DropBlock | None:
        d = reg.dropblock
        return cls(d.rate, d.block_size) if d.rate > 0 else None

    def sites(self) -> dict[str, str]:
        return {"conv.post": f"reg.dropblock.rate={self.rate}"}

    def layers(self, site: Site) -> list[nn.Module]:
        from regbench_dropblock.layer import DropBlock2d

        if site.block == "conv" and site.slot == "post":
            return [DropBlock2d(self.rate, self.block_size)]
        return []


# reg=dropblock: the rate and block size used in docs/how-to/plugin.md
register_preset("reg", "dropblock", {"dropblock": {"rate": 0.15, "block_size": 3}})
