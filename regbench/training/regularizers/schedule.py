"""Dropout rates that change between epochs: curriculum, early, late and adaptive dropout.

The keys are reg.dropout.schedule and the reg.dropout.* settings beside it (they live in
the dropout section, next to the rates they change); every dropout layer follows the
schedule. ``constant`` (the default) is no schedule at all: the rates stay as built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from regbench.config.schema import check, one_of
from regbench.training.regularizers.base import Regularizer, register

if TYPE_CHECKING:
    from torch import nn

    from regbench.store.metrics import Row

SCHEDULES = ("constant", "curriculum", "early", "late", "adaptive")


def curriculum_rate(p: float, epoch: int, gamma: float) -> float:
    """Curriculum dropout (Morerio et al., ICCV 2017): p * (1 - exp(-gamma * (epoch - 1))).

    The paper's retain probability (1 - p) * exp(-gamma t) + ... rises the drop rate from 0
    at t = 0 towards p; here t counts finished epochs, and gamma = 10 / epochs (the paper's
    choice of 10 / T) brings it to p within the run.
    """
    return p * (1.0 - math.exp(-gamma * (epoch - 1)))


def phase_rate(p: float, epoch: int, epochs: int, switch_at: float, early: bool) -> float:
    """Early or late dropout (Liu et al., ICML 2023, "Dropout Reduces Underfitting"): p in the
    first ceil(switch_at * epochs) epochs and 0 after (early), or the reverse (late)."""
    in_first_part = epoch <= math.ceil(switch_at * epochs)
    return p if in_first_part == early else 0.0


def adaptive_rate(rate: float, gap: float, target: float, step: float, high: float) -> float:
    """The next epoch's rate from this epoch's accuracy gap (train - val, as a fraction).

    An experimental controller in the direction Srivastava et al. (2014, section 11) name
    as future work, "adjusting the drop probability from the network's state": the gap
    above the target raises the rate by `step`, a gap below half the target lowers it by
    `step`, in between it stays (a dead band, so the rate does not flip every epoch); the
    rate stays within [0, high].
    """
    if gap > target:
        return min(high, rate + step)
    if gap < target / 2:
        return max(0.0, rate - step)
    return rate


@register
@dataclass
class DropoutSchedule(Regularizer):
    """Every dropout layer's rate set at the start of each epoch.

    curriculum, early and late scale each layer's configured rate by the same factor
    (curriculum_rate, phase_rate); adaptive moves the largest rate with adaptive_rate after
    every epoch and scales the others in proportion.
    """

    name = "dropout_schedule"
    order = 11  # right after dropout, whose layers it changes

    schedule: str
    gamma: float | None
    switch_at: float
    target: float
    step: float
    high: float
    epochs: int = 1  # the run's length
    base: list[tuple[nn.Module, float]] = field(default_factory=list, repr=False)
    level: float = 0.0  # adaptive: the largest rate in force

    @classmethod
    def check(cls, reg: Any) -> None:
        d = reg.dropout
        one_of("reg.dropout.schedule", d.schedule, SCHEDULES)
        check(d.curriculum_gamma is None or d.curriculum_gamma > 0, "reg.dropout.curriculum_gamma",
              d.curriculum_gamma, "null or a number > 0")
        check(0.0 < d.switch_at < 1.0, "reg.dropout.switch_at", d.switch_at, "a fraction in (0, 1)")
        check(0.0 <= d.adaptive_target < 1.0, "reg.dropout.adaptive_target", d.adaptive_target,
              "an accuracy gap in [0, 1)")
        check(d.adaptive_step > 0, "reg.dropout.adaptive_step", d.adaptive_step, "a number > 0")
        check(0.0 < d.adaptive_max < 1.0, "reg.dropout.adaptive_max", d.adaptive_max,
              "a drop probability in (0, 1)")

    @classmethod
    def from_config(cls, reg: Any, epochs: int) -> DropoutSchedule | None:
        d = reg.dropout
        if d.schedule == "constant" or max(d.input, d.conv, d.fc) <= 0:
            return None
        return cls(d.schedule, d.curriculum_gamma, d.switch_at, d.adaptive_target,
                   d.adaptive_step, d.adaptive_max, epochs)

    @classmethod
    def population_blocker(cls, reg: Any) -> str | None:
        schedule = reg.dropout.schedule
        return None if schedule == "constant" else f"reg.dropout.schedule={schedule}"

    def rate(self, p: float, epoch: int) -> float:
        """The rate in force in `epoch` for a layer configured with rate p."""
        if self.schedule == "curriculum":
            return curriculum_rate(p, epoch, self.gamma or 10.0 / self.epochs)
        if self.schedule in ("early", "late"):
            return phase_rate(p, epoch, self.epochs, self.switch_at, self.schedule == "early")
        top = max(b for _, b in self.base)
        return p * self.level / top  # adaptive

    def start_epoch(self, epoch: int, model: nn.Module) -> None:
        from regbench.training.layers import dropout_layers

        if not self.base:  # the rates the model was built with
            self.base = [(m, float(m.p)) for m in dropout_layers(model)]
            self.level = min(self.high, max(b for _, b in self.base))
        for m, p in self.base:
            m.p = self.rate(p, epoch)

    def end_epoch(self, row: Row, model: nn.Module) -> bool:
        if self.schedule == "adaptive":
            self.level = adaptive_rate(self.level, row.gap_acc, self.target, self.step, self.high)
        return False
