"""The max-norm constraint (Srivastava et al., JMLR 2014, section 5.1): after every
optimizer step each unit's incoming weight vector is rescaled to L2 norm <= reg.max_norm.

Used with dropout, c ~ 3-4 works well; it bounds the weights so that large learning
rates cannot blow them up.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from regbench.config.schema import check
from regbench.training.regularizers.base import Regularizer, register

if TYPE_CHECKING:
    from torch import Tensor


def apply_max_norm(params: Iterable[Tensor], max_norm: float) -> None:
    """Rescale each unit's incoming weight vector to L2 norm <= max_norm, in place.

    Applied to conv kernels and linear weights (dim 0 = unit); other tensors are left alone.
    """
    import torch

    with torch.no_grad():
        for p in params:
            if p.ndim >= 2:
                p.copy_(torch.renorm(p, 2, 0, max_norm))


@dataclass
class MaxNormKeys:
    max_norm: float | None = None  # bound on each unit's incoming weight norm


@register
@dataclass
class MaxNorm(Regularizer):
    """The max-norm constraint after every optimizer step (see apply_max_norm)."""

    name = "max_norm"
    keys = MaxNormKeys
    order = 50
    member_keys = ("max_norm",)
    words = {"max_norm": "max-norm bound on each unit's incoming weights"}

    bound: float

    @classmethod
    def check(cls, reg: Any) -> None:
        check(reg.max_norm is None or reg.max_norm > 0, "reg.max_norm", reg.max_norm,
              "null or a number > 0")

    @classmethod
    def from_config(cls, reg: Any, epochs: int) -> MaxNorm | None:
        return cls(reg.max_norm) if reg.max_norm is not None else None

    def after_step(self, params: Sequence[Tensor]) -> None:
        apply_max_norm(params, self.bound)
