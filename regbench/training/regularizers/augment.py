"""Data augmentation as a regularizer: reg.augment turns on the training batches' random
shifts (+-2 px, grey images) or 4 px padded crops and horizontal flips (colour images;
He et al., CVPR 2016, section 4.2), the same as dataset.augment.

The data loader draws the augmentation (regbench.data.batching), so this regularizer has
no hook of its own; the population engine does not draw it per member.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from regbench.training.regularizers.base import Regularizer, register


@dataclass
class AugmentKeys:
    augment: bool = False  # data augmentation as a regularizer (same as dataset.augment)


@register
class Augment(Regularizer):
    """Augmented training batches; the loader applies them (see the module docstring)."""

    name = "augment"
    keys = AugmentKeys
    order = 80

    @classmethod
    def from_config(cls, reg: Any, epochs: int) -> None:
        return None  # batching.load reads reg.augment

    @classmethod
    def population_blocker(cls, reg: Any) -> str | None:
        return "reg.augment=True" if reg.augment else None  # the loader's draws, not a hook
