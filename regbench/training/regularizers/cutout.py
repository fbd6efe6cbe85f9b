"""Cutout (DeVries & Taylor, "Improved Regularization of Convolutional Neural Networks with
Cutout", arXiv:1708.04552, 2017): in training, a square of reg.cutout x reg.cutout pixels
is zeroed in every image, at a random place drawn anew for each image and batch.

The square is zeroed after normalisation, so it takes the data's mean colour, as in the
paper's code; every channel loses the same square. Its centre is drawn uniformly over the
image, so the square may lie partly outside it: the paper found that this matters (a
patch always inside trains worse). The paper's sizes: 16 px on CIFAR-10 (32x32), 8 px on
SVHN; for 28x28 digits about 8 px. Evaluation sees the images untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from regbench.config.schema import check
from regbench.training.regularizers.base import Regularizer, register

if TYPE_CHECKING:
    from torch import Tensor


def cutout(x: Tensor, size: int) -> Tensor:
    """Images [N, C, H, W] with a size x size square zeroed in each, centred at a uniformly
    drawn pixel and clipped at the image's border."""
    import torch

    n, _, h, w = x.shape
    top = torch.randint(0, h, (n, 1, 1), device=x.device) - size // 2
    left = torch.randint(0, w, (n, 1, 1), device=x.device) - size // 2
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + size) & (cols >= left) & (cols < left + size)
    return x.masked_fill(inside.unsqueeze(1), 0.0)


@dataclass
class CutoutKeys:
    cutout: int = 0  # side of the zeroed square, pixels; 0: off (16 for CIFAR-10, 8 for 28x28)


@register
@dataclass
class Cutout(Regularizer):
    """Cutout on every training batch (see cutout); a batch transform, so the population
    engine trains such runs on their own."""

    name = "cutout"
    keys = CutoutKeys
    order = 82
    words = {"cutout": "Cutout square side (pixels)"}

    size: int

    @classmethod
    def check(cls, reg: Any) -> None:
        check(reg.cutout >= 0, "reg.cutout", reg.cutout,
              "0 (off) or the side of the zeroed square in pixels, e.g. 16 for CIFAR-10")

    @classmethod
    def check_shape(cls, reg: Any, shape: tuple[int, int, int], dataset: str) -> None:
        side = min(shape[1:])  # a square this large hides most of any image it is centred in
        check(reg.cutout < side, "reg.cutout", reg.cutout,
              f"the images of dataset={dataset} are {shape[1]}x{shape[2]}: 0 (off) or a side "
              f"below {side}, e.g. {max(side // 4, 1)}")

    @classmethod
    def from_config(cls, reg: Any, epochs: int) -> Cutout | None:
        return cls(reg.cutout) if reg.cutout > 0 else None

    def batch(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return cutout(x, self.size), y
