"""The DropBlock layer (see regbench_dropblock.dropblock), kept apart so that importing the
plugin, to check a configuration, does not import torch."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def drop_block(x: Tensor, rate: float, block_size: int) -> Tensor:
    """Feature maps [N, C, H, W] with block_size x block_size squares zeroed (independently
    per image and channel, about `rate` of the units), the rest rescaled."""
    n, c, h, w = x.shape
    size = min(block_size, h - 1 + h % 2, w - 1 + w % 2)  # odd, and no larger than the map
    # the paper's gamma: centres are drawn where a whole block fits, and each dropped
    # centre zeroes size^2 units
    gamma = rate / size**2 * (h * w) / ((h - size + 1) * (w - size + 1))
    centres = torch.zeros(n, c, h, w, device=x.device, dtype=x.dtype)
    inner = centres[:, :, size // 2:h - size // 2, size // 2:w - size // 2]
    inner.bernoulli_(min(gamma, 1.0))
    blocks = nn.functional.max_pool2d(centres, size, stride=1, padding=size // 2)
    keep = 1.0 - blocks
    return x * keep * (keep.numel() / keep.sum().clamp_min(1.0))


class DropBlock2d(nn.Module):
    """drop_block in training; the input unchanged in evaluation or at rate 0."""

    def __init__(self, rate: float, block_size: int) -> None:
        super().__init__()
        self.rate, self.block_size = rate, block_size

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.rate == 0.0:
            return x
        return drop_block(x, self.rate, self.block_size)

    def extra_repr(self) -> str:
        return f"rate={self.rate}, block_size={self.block_size}"
