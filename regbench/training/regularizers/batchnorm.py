"""Batch normalization (Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network
Training by Reducing Internal Covariate Shift", ICML 2015) after every conv layer and the
hidden linear layer: reg.batchnorm switches it on.

It normalizes each channel over the batch, then applies a learned scale and shift; in eval
mode it uses running statistics. It mainly speeds up training and mildly regularizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from regbench.training.regularizers.base import Regularizer, Site, register

if TYPE_CHECKING:
    from torch import nn


@dataclass
class BatchNormKeys:
    batchnorm: bool = False  # batch norm in every conv block and in the head


@register
class BatchNorm(Regularizer):
    """A batch-norm layer at every norm site (2d in conv blocks, 1d in the head)."""

    name = "batchnorm"
    keys = BatchNormKeys
    order = 40

    @classmethod
    def from_config(cls, reg: Any, epochs: int) -> BatchNorm | None:
        return cls() if reg.batchnorm else None

    def sites(self) -> dict[str, str]:
        return {"conv.norm": "reg.batchnorm=True"}

    def layers(self, site: Site) -> list[nn.Module]:
        from torch import nn

        if site.slot != "norm":
            return []
        return [nn.BatchNorm2d(site.width) if site.block == "conv" else nn.BatchNorm1d(site.width)]
