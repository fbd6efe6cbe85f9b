"""checkpoint.pt: everything a run needs to continue after its last finished epoch.

Written after every epoch (``trainer.checkpoint``), atomically, and read by ``regbench
resume``, ``sweep --resume`` and a population cut in half by an out-of-memory error.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from regbench.errors import RunDirError
from regbench.store.runs import CHECKPOINT_FILE, atomic_file


@dataclass
class Checkpoint:
    """A run's state after `epoch`: its weights, its optimizer, schedule and early-stopping
    state, its random generators, and its timing counters (`extra`)."""

    epoch: int
    model: dict[str, Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    early_stopping: dict[str, Any]
    rng_cpu: Tensor
    rng_generator: Tensor
    rng_cuda: list[Tensor]
    extra: dict[str, Any]


def path(run_dir: Path) -> Path:
    return run_dir / CHECKPOINT_FILE


def write(run_dir: Path, state: Checkpoint) -> None:
    """The checkpoint, written atomically (a temporary file renamed over the old one)."""
    content = {field.name: getattr(state, field.name) for field in fields(Checkpoint)}
    with atomic_file(path(run_dir), "wb") as out:
        torch.save(content, out)


def read(run_dir: Path, device: torch.device) -> Checkpoint | None:
    """The run's checkpoint with its tensors on `device`; None when the run has none."""
    file = path(run_dir)
    if not file.exists():
        return None
    try:
        state = torch.load(file, map_location=device, weights_only=True)
        return Checkpoint(**{f.name: state[f.name] for f in fields(Checkpoint)})
    except Exception as e:
        raise damaged(run_dir, e) from e


def damaged(run_dir: Path, e: Exception) -> RunDirError:
    """The one-line error of a checkpoint that cannot be loaded (or applied to the run)."""
    return RunDirError(f"{path(run_dir)}: cannot be loaded ({type(e).__name__}); delete it to "
                       "restart the run from epoch 1")
