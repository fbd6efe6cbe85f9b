"""metrics.csv: the metric columns and the per-epoch log (what the curves show is
regbench.training.curves).

``Row`` is the one definition of a metrics.csv row: its fields, in order, are the CSV
header, the keys of the summary's ``best``/``last`` objects, and what the tests check.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from regbench.store.runs import atomic_file


@dataclass
class Row:
    """One finished epoch: a metrics.csv row, built by keyword; the gaps are derived here."""

    epoch: int  # 1-based
    train_loss: float  # eval mode: dropout off, no penalty, no augmentation
    train_acc: float  # fraction in [0, 1], eval mode
    val_loss: float  # cross-entropy on the validation split
    val_acc: float  # fraction in [0, 1]
    gap_loss: float = field(init=False)  # val_loss - train_loss
    gap_acc: float = field(init=False)  # train_acc - val_acc
    train_loss_running: float = 0.0  # in-epoch average, regularization active
    penalty: float = 0.0  # mean L1/L2 term added to the loss
    lr: float = 0.0  # learning rate at the epoch's end (first parameter group)
    epoch_time_s: float = 0.0  # seconds: the train pass, both eval passes and the row
    dropout_rate: float = 0.0  # the largest drop probability in force during the epoch

    def __post_init__(self) -> None:
        self.gap_loss = self.val_loss - self.train_loss
        self.gap_acc = self.train_acc - self.val_acc

    def __getitem__(self, column: str) -> Any:
        """A column by name (``row[monitor]``)."""
        return getattr(self, column)

    def as_dict(self) -> dict[str, Any]:
        return {c: getattr(self, c) for c in COLUMNS}


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Row))
INPUT_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Row) if f.init)
# Columns added later: a metrics.csv written before them reads with the field's default.
LATER_COLUMNS = ("dropout_rate",)
TIMING_COLUMNS = ("epoch_time_s",)


class MetricsLog:
    """metrics.csv, one row appended and flushed to disk per finished epoch.

    Opening an existing log keeps only its complete rows up to ``keep_epochs``, so a run
    resumed after a crash never holds a torn or duplicated row.
    """

    def __init__(self, path: Path, keep_epochs: int | None = None) -> None:
        self.path = path
        self.rows: list[Row] = read_rows(path)[:keep_epochs] if path.exists() else []
        with atomic_file(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows({k: _fmt(v) for k, v in r.as_dict().items()} for r in self.rows)

    def append(self, row: Row) -> None:
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=COLUMNS).writerow({k: _fmt(v) for k, v in row.as_dict().items()})
            f.flush()
            os.fsync(f.fileno())
        self.rows.append(row)


def _fmt(v: float) -> str:
    return str(int(v)) if isinstance(v, int) else repr(float(v))


def missing_columns(path: Path) -> list[str]:
    """The columns a metrics.csv lacks (it may lack those added later); reads one line."""
    with open(path, newline="") as f:
        header = next(csv.reader(f), [])
    return [c for c in INPUT_COLUMNS if c not in header and c not in LATER_COLUMNS]


def read_rows(path: Path) -> list[Row]:
    """The complete rows of a metrics.csv (a torn last line is dropped); ValueError naming
    the columns a damaged file lacks."""
    rows: list[Row] = []
    if lacking := missing_columns(path):
        raise ValueError(f"no column {', '.join(lacking)}")
    with open(path, newline="") as f:
        for raw in csv.DictReader(f):
            try:
                values: dict[str, Any] = {k: float(raw[k]) for k in INPUT_COLUMNS
                                          if k not in LATER_COLUMNS or raw.get(k) is not None}
            except (TypeError, ValueError, KeyError):
                break
            values["epoch"] = int(values["epoch"])
            rows.append(Row(**values))
    return rows


def row_dict(row: Row | None) -> dict[str, Any] | None:
    """A row as a JSON-ready object with the metrics.csv key names."""
    if row is None:
        return None
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in row.as_dict().items()}
