"""Dropout (Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from
Overfitting", JMLR 2014) on the input, after each conv block and in the FC head.

reg.dropout.input / conv / fc are drop probabilities (the chance that a unit is zeroed,
as in torch.nn.Dropout). ``kind`` picks element-wise, channel-wise (spatial; Tompson et
al., CVPR 2015) or Gaussian dropout (section 10 of the paper); ``position`` puts each
block's dropout after its batch norm or in front of it, where it causes the train/test
"variance shift" of Li et al. (CVPR 2019). The schedule keys belong to the rate schedules
(regbench.training.regularizers.schedule).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from regbench.config.schema import check, one_of
from regbench.training.regularizers.base import Regularizer, Site, register

if TYPE_CHECKING:
    from torch import nn

KINDS = ("standard", "spatial", "gaussian")
POSITIONS = ("after_bn", "before_bn")
BLOCKS = ("input", "conv", "fc")  # the model blocks whose rate reg.dropout.<block> sets
MEMBER_KINDS = ("standard", "spatial")  # the kinds the population engine draws per member


@dataclass
class DropoutConfig:
    """Drop probabilities (the chance that a unit is zeroed, as in torch.nn.Dropout)."""

    input: float = 0.0  # on the input pixels
    conv: float = 0.0  # after each conv block
    fc: float = 0.0  # in the classifier head
    kind: str = "standard"  # standard | spatial (whole feature maps, conv blocks only) | gaussian
    position: str = "after_bn"  # after_bn | before_bn (relative to each block's BN)
    # how the rates change over training: constant | curriculum | early | late | adaptive
    schedule: str = "constant"
    curriculum_gamma: float | None = None  # rise speed per epoch; null: 10 / trainer.epochs
    switch_at: float = 0.5  # early: dropout stops, late: dropout starts after this share of epochs
    adaptive_target: float = 0.02  # adaptive: accuracy gap (fraction) the controller aims at
    adaptive_step: float = 0.05  # adaptive: change of the largest drop rate per epoch
    adaptive_max: float = 0.8  # adaptive: upper bound on any drop rate


@dataclass
class DropoutKeys:
    dropout: DropoutConfig = field(default_factory=DropoutConfig)


@register
@dataclass
class Dropout(Regularizer):
    """Dropout layers at the model's input, conv and fc sites (see layers.make_dropout).

    The input and the head always use element-wise dropout, the conv blocks ``kind``;
    ``kind="gaussian"`` puts Gaussian dropout everywhere.
    """

    name = "dropout"
    keys = DropoutKeys
    order = 10
    member_keys = ("dropout.input", "dropout.conv", "dropout.fc")
    words = {"dropout.fc": "dropout rate in the FC head (drop probability)",
             "dropout.conv": "dropout rate after each conv block (drop probability)",
             "dropout.input": "dropout rate on the input pixels (drop probability)"}

    input: float
    conv: float
    fc: float
    kind: str = "standard"
    position: str = "after_bn"

    @classmethod
    def check(cls, reg: Any) -> None:
        d = reg.dropout
        for block in BLOCKS:
            p = getattr(d, block)
            check(0.0 <= p < 1.0, f"reg.dropout.{block}", p, "a drop probability in [0, 1)")
        one_of("reg.dropout.kind", d.kind, KINDS)
        one_of("reg.dropout.position", d.position, POSITIONS)

    @classmethod
    def from_config(cls, reg: Any, epochs: int) -> Dropout | None:
        d = reg.dropout
        if max(d.input, d.conv, d.fc) <= 0:
            return None
        return cls(d.input, d.conv, d.fc, d.kind, d.position)

    @classmethod
    def population_blocker(cls, reg: Any) -> str | None:
        kind = reg.dropout.kind
        return None if kind in MEMBER_KINDS else f"reg.dropout.kind={kind}"

    @property
    def slot(self) -> str:
        """The slot of the conv and fc sites that takes the dropout layer."""
        return "pre_norm" if self.position == "before_bn" else "post"

    def sites(self) -> dict[str, str]:
        wanted = {}
        for block in BLOCKS:
            p = getattr(self, block)
            if p > 0:
                wanted[f"{block}.{'post' if block == 'input' else self.slot}"] = f"reg.dropout.{block}={p}"
        return wanted

    def layers(self, site: Site) -> list[nn.Module]:
        from regbench.training.layers import make_dropout

        if site.block == "input":
            # element-wise: dropping a whole grey input channel would blank the image
            return [make_dropout(self.input, self.element_kind)] if self.input > 0 else []
        p = {"conv": self.conv, "fc": self.fc}.get(site.block, 0.0)
        if site.slot != self.slot or p <= 0:
            return []
        return [make_dropout(p, self.kind if site.block == "conv" else self.element_kind)]

    @property
    def element_kind(self) -> str:
        """The kind for the input and the head, where whole maps do not exist."""
        return "gaussian" if self.kind == "gaussian" else "standard"
