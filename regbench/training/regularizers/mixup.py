"""mixup (Zhang, Cisse, Dauphin & Lopez-Paz, "mixup: Beyond Empirical Risk Minimization",
ICLR 2018): train on convex mixtures of pairs of images and of their one-hot labels,

    x = lam * x_i + (1 - lam) * x_j,    y = lam * e(y_i) + (1 - lam) * e(y_j),

with lam ~ Beta(alpha, alpha) drawn once per batch and j a random permutation of the
batch, as the paper's own code does. The mixed labels are soft targets: the data loss
(plain or label-smoothed cross-entropy) takes them as they are, which equals
lam * CE(x, y_i) + (1 - lam) * CE(x, y_j). reg.mixup is alpha; 0 is off, the paper uses
0.2-0.4 on ImageNet and 1.0 on CIFAR-10. Evaluation sees the images and labels untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from regbench.config.schema import check
from regbench.training.regularizers.base import Regularizer, register

if TYPE_CHECKING:
    from torch import Tensor


def mix(x: Tensor, y: Tensor, alpha: float, num_classes: int) -> tuple[Tensor, Tensor]:
    """A batch mixed with a permutation of itself, and its soft targets [N, num_classes]."""
    import torch
    import torch.nn.functional as F

    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    order = torch.randperm(len(y), device=x.device)
    targets = F.one_hot(y, num_classes).to(x.dtype)
    return (lam * x + (1 - lam) * x[order],
            lam * targets + (1 - lam) * targets[order])


@dataclass
class MixupKeys:
    mixup: float = 0.0  # alpha of the Beta(alpha, alpha) mixing weight; 0: off (1.0 for CIFAR-10)


@register
@dataclass
class Mixup(Regularizer):
    """mixup of every training batch (see mix); a batch transform, so the population engine
    trains such runs on their own."""

    name = "mixup"
    keys = MixupKeys
    order = 84
    words = {"mixup": "mixup α (mixing weight ~ Beta(α, α))"}

    alpha: float

    @classmethod
    def check(cls, reg: Any) -> None:
        check(reg.mixup >= 0, "reg.mixup", reg.mixup, "0 (off) or alpha > 0, e.g. 0.2 to 1.0")

    @classmethod
    def from_config(cls, reg: Any, epochs: int) -> Mixup | None:
        return cls(reg.mixup) if reg.mixup > 0 else None

    def batch(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        from regbench.data.datasets import NUM_CLASSES

        return mix(x, y, self.alpha, NUM_CLASSES)
