"""What the terminal shows: a progress bar while training, then the overfitting-gap table."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

from regbench.errors import RegbenchError
from regbench.metrics import Row

# Seconds between reads of the running loss: each read waits for the device to catch up.
LOSS_REFRESH_S = 1.0

console = Console(stderr=True)


class Progress:
    """One bar line per epoch: batches done, running loss, images/s, then val metrics."""

    def __init__(self, epochs: int, steps_per_epoch: int, enabled: bool = True) -> None:
        self.epochs, self.steps = epochs, steps_per_epoch
        self.bar = RichProgress(
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(bar_width=12), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[speed]}"),
            TextColumn("{task.fields[val]}"),
            console=console, disable=not enabled, transient=False)
        self.task: Any = None
        self.images = 0
        self.t0 = self.last_read = self.t_last = 0.0

    def __enter__(self) -> Progress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)

    def start_epoch(self, epoch: int) -> None:
        self.task = self.bar.add_task("", total=self.steps, epoch=epoch, epochs=self.epochs,
                                      loss="-", speed="", val="")
        self.images, self.t0 = 0, time.perf_counter()
        self.last_read = self.t0

    def advance(self, n_images: int, running_loss: Callable[[], float]) -> None:
        """Count a finished batch; read the running loss at most once per LOSS_REFRESH_S."""
        self.images += n_images
        now = self.t_last = time.perf_counter()
        fields: dict[str, Any] = {}
        if now - self.last_read >= LOSS_REFRESH_S:
            self.last_read = now
            fields = {"loss": f"{running_loss():.4f}",
                      "speed": f"{self.images / (now - self.t0):,.0f} img/s"}
        self.bar.update(self.task, advance=1, **fields)

    def end_epoch(self, row: Row) -> None:
        speed = self.images / max(self.t_last - self.t0, 1e-9)
        self.bar.update(self.task, completed=self.steps, loss=f"{row['train_loss_running']:.4f}",
                        speed=f"{speed:,.0f} img/s",
                        val=f"train/val acc {row['train_acc']:.3f}/{row['val_acc']:.3f}")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _num(x: float | None, fmt: str = ".4f") -> str:
    return "-" if x is None else format(x, fmt)


def gap_table(summary: dict[str, Any]) -> Table:
    """The overfitting gap at the best and at the last epoch, plus onset and test accuracy."""
    table = Table(title="Overfitting gap", box=box.SIMPLE_HEAVY, title_justify="left")
    table.add_column("")
    table.add_column("epoch", justify="right")
    for name in ("train acc", "val acc", "gap acc (pts)", "train loss", "val loss", "gap loss"):
        table.add_column(name, justify="right")
    for label, key in (("best", "best"), ("last", "last")):
        r = summary.get(key)
        if not r:
            continue
        table.add_row(f"{label}", str(r["epoch"]), _pct(r["train_acc"]), _pct(r["val_acc"]),
                      _num(100 * r["gap_acc"], "+.2f"), _num(r["train_loss"]), _num(r["val_loss"]),
                      _num(r["gap_loss"], "+.4f"))
    onset = summary.get("onset_epoch")
    table.caption = (f"best = lowest {summary.get('monitor', 'val_loss').replace('_', ' ')}; "
                     f"train metrics measured in eval mode (dropout off); "
                     f"overfitting onset: {'epoch ' + str(onset) if onset else 'none'}; "
                     f"test acc: {_pct(summary.get('test_acc'))}")
    table.caption_justify = "left"
    return table


def print_result(summary: dict[str, Any], run_dir: str, out: Console | None = None) -> None:
    """The gap table, the verdict line and where the files are."""
    out = out or Console()
    if summary["epochs_run"]:
        out.print(gap_table(summary))
    out.print(f"[bold]verdict:[/bold] {summary['verdict']}")
    speed = summary.get("train_images_per_s")
    out.print(f"status {summary['status']}, {summary['epochs_run']} epochs in "
              f"{summary['wall_time_s']:.1f} s"
              + (f" ({speed:,.0f} train images/s on {summary['device']})" if speed else ""))
    out.print(f"files: {run_dir}/metrics.csv, summary.json, config.yaml", soft_wrap=True)
    if summary["status"] == "interrupted":
        out.print(f"continue it with: regbench resume {run_dir}", soft_wrap=True)


def job_line(run_dir: Path, action: str) -> str:
    """One line on a finished sweep job: its axis values, status, val accuracy and gap."""
    from regbench import runs, sweep

    name = f"job {run_dir.name}"
    try:
        plan = sweep.read_plan(run_dir.parent)
        num = int(run_dir.name)
        name = f"[{num + 1}/{len(plan.jobs)}] {plan.label(num) or 'job ' + run_dir.name}"
    except (RegbenchError, ValueError, IndexError):
        pass  # a folder layout of the user's own: the folder name is enough
    s = runs.load_summary(run_dir)
    if s is None:
        return f"{name}: no summary.json ({run_dir})"
    status, best = s.get("status", "?"), s.get("best")
    if action == "skip":
        return f"{name}: already {status}, kept"
    if status not in runs.FINISHED or not best:
        return f"{name}: {status}: {runs.why_unfinished(s)}"
    return (f"{name}: {status}, val acc {_pct(best['val_acc'])} at best epoch {best['epoch']}, "
            f"gap {100 * best['gap_acc']:+.2f} pts, {s.get('wall_time_s', 0):.1f} s")


def print_job_line(run_dir: Path, action: str) -> None:
    """Print a sweep job's one line (jobs in parallel workers each print their own)."""
    Console(highlight=False).print(job_line(run_dir, action), soft_wrap=True)


def table_console() -> Console:
    """stdout for wide tables: the terminal's width, or 160 columns when piped to a file."""
    import sys

    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)
