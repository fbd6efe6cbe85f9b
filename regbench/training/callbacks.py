"""How the training loop reports: a small callback interface, in the spirit of Keras' and
Lightning's ``Callback``. The terminal's progress bar, experiment trackers and tests all
implement it; the loop itself knows nothing of who listens."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from regbench.store.metrics import Row
    from regbench.store.summary import Summary


class Pruned(Exception):
    """Raised by a callback's on_epoch_end to end the run there, as 'pruned' (a search's
    pruner judged the trial unpromising); the epoch's row is already recorded."""


class Callback:
    """Every method is a no-op; a listener overrides the ones it needs."""

    def on_train_start(self, epochs: int, steps_per_epoch: int) -> None:
        """Before the first epoch (of this process: a resumed run starts mid-way)."""

    def on_epoch_start(self, epoch: int) -> None:
        """Before epoch `epoch` (1-based) trains."""

    def on_batch_end(self, n_images: int, running_loss: Callable[[], float]) -> None:
        """After each optimizer step; calling running_loss() waits for the device."""

    def on_epoch_end(self, row: Row) -> None:
        """After the epoch's row is in metrics.csv."""

    def on_train_end(self) -> None:
        """After the last epoch, also when training stopped on an error or a signal."""

    def on_summary(self, summary: Summary, run_dir: Path) -> None:
        """After summary.json is written at the end of the run."""


class CallbackList(Callback):
    """Several callbacks called in order, as one."""

    def __init__(self, callbacks: list[Callback] | None = None) -> None:
        self.callbacks = list(callbacks or [])

    def on_train_start(self, epochs: int, steps_per_epoch: int) -> None:
        for c in self.callbacks:
            c.on_train_start(epochs, steps_per_epoch)

    def on_epoch_start(self, epoch: int) -> None:
        for c in self.callbacks:
            c.on_epoch_start(epoch)

    def on_batch_end(self, n_images: int, running_loss: Callable[[], float]) -> None:
        for c in self.callbacks:
            c.on_batch_end(n_images, running_loss)

    def on_epoch_end(self, row: Row) -> None:
        for c in self.callbacks:
            c.on_epoch_end(row)

    def on_train_end(self) -> None:
        for c in self.callbacks:
            c.on_train_end()

    def on_summary(self, summary: Summary, run_dir: Path) -> None:
        for c in self.callbacks:
            c.on_summary(summary, run_dir)
