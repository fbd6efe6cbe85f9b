"""Early stopping (Prechelt, "Early Stopping - But When?", 1998): stop when the monitored
validation metric has not improved by reg.early_stopping.min_delta for `patience` epochs,
and keep (restore) the best epoch's weights.

The patience rule is Prechelt's UP-style criterion on the validation curve. The same
tracker finds the best epoch when early stopping is off: then it never stops a run.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from regbench.config.schema import check, one_of
from regbench.training.regularizers.base import STOPPER, Regularizer, register

if TYPE_CHECKING:
    from torch import Tensor, nn

    from regbench.store.metrics import Row

MONITORS = ("val_loss", "val_acc")


@dataclass
class EarlyStoppingConfig:
    enabled: bool = False  # stop when the monitored metric stops improving
    monitor: str = "val_loss"  # also what defines the best epoch
    patience: int = 5  # epochs without improvement before stopping
    min_delta: float = 0.0  # smallest change that counts as an improvement
    restore_best: bool = True  # test with the best epoch's weights


@dataclass
class EarlyStoppingKeys:
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)


@register
@dataclass
class EarlyStopping(Regularizer):
    """Stop when the monitored metric has not improved by min_delta for `patience` epochs.

    Keeps a copy of the best weights so they can be restored.
    """

    name = STOPPER
    keys = EarlyStoppingKeys
    order = 90
    member_keys = ("early_stopping",)
    words = {"early_stopping.patience": "early-stopping patience (epochs)"}

    monitor: str = "val_loss"
    patience: int = 5
    min_delta: float = 0.0
    best: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    best_state: dict[str, Tensor] | None = field(default=None, repr=False)
    enabled: bool = False
    keep_best: bool = False  # keep a copy of the best weights, to restore them at the end

    @classmethod
    def check(cls, reg: Any) -> None:
        es = reg.early_stopping
        one_of("reg.early_stopping.monitor", es.monitor, MONITORS)
        check(es.patience >= 1, "reg.early_stopping.patience", es.patience, "an integer >= 1")
        check(es.min_delta >= 0, "reg.early_stopping.min_delta", es.min_delta, "a number >= 0")

    @classmethod
    def from_config(cls, reg: Any, epochs: int) -> EarlyStopping:
        es = reg.early_stopping
        return cls(es.monitor, es.patience, es.min_delta, enabled=es.enabled,
                   keep_best=es.enabled and es.restore_best)

    def end_epoch(self, row: Row, model: nn.Module) -> bool:
        stop = self.step(row[self.monitor], int(row.epoch), model if self.keep_best else None)
        return self.enabled and stop

    @property
    def sign(self) -> float:
        """+1 when lower is better (losses), -1 when higher is better (accuracies)."""
        return -1.0 if self.monitor.endswith("acc") else 1.0

    def improved(self, value: float) -> bool:
        """Whether value beats the best so far by more than min_delta."""
        if not math.isfinite(value):
            return False
        return self.best_epoch == 0 or self.sign * (self.best - value) > self.min_delta

    def step(self, value: float, epoch: int, model: nn.Module | None = None) -> bool:
        """Record one epoch's metric; return True when training should stop."""
        if self.improved(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            if model is not None:
                self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def restore(self, model: nn.Module) -> bool:
        """Load the best weights into the model; False if none were kept."""
        if self.best_state is None:
            return False
        model.load_state_dict(self.best_state)
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
                "best_state": copy.copy(self.best_state)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = float(state["best"]), int(state["best_epoch"])
        self.bad_epochs, self.best_state = int(state["bad_epochs"]), state["best_state"]
