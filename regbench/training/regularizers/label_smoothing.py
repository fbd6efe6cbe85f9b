"""Label smoothing (Szegedy et al., "Rethinking the Inception Architecture for Computer
Vision", CVPR 2016): cross-entropy against targets mixed with the uniform distribution,
(1 - s) * target + s / K, where s is reg.label_smoothing and K the number of classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from regbench.config.schema import check
from regbench.training.regularizers.base import Regularizer, register

if TYPE_CHECKING:
    from torch import Tensor


@dataclass
class LabelSmoothingKeys:
    label_smoothing: float = 0.0  # share of the target spread over all classes


@register
@dataclass
class LabelSmoothing(Regularizer):
    """The data loss against smoothed targets (class indices or soft targets alike)."""

    name = "label_smoothing"
    keys = LabelSmoothingKeys
    order = 60
    member_keys = ("label_smoothing",)
    words = {"label_smoothing": "label smoothing"}

    smoothing: float

    @classmethod
    def check(cls, reg: Any) -> None:
        s = reg.label_smoothing
        check(s >= 0.0, "reg.label_smoothing", s, "a number >= 0")
        check(s < 1.0, "reg.label_smoothing", s, "a number in [0, 1)")

    @classmethod
    def from_config(cls, reg: Any, epochs: int) -> LabelSmoothing | None:
        return cls(reg.label_smoothing) if reg.label_smoothing else None

    def data_loss(self, logits: Tensor, y: Tensor) -> Tensor | None:
        import torch.nn.functional as F

        return F.cross_entropy(logits, y, label_smoothing=self.smoothing)
