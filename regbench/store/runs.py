"""Run directories: unique creation, the files a run writes, and reading them back."""

from __future__ import annotations

import json
import os
import platform
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from regbench.config.schema import new_run_id
from regbench.errors import RunDirError

CONFIG_FILE = "config.yaml"  # the resolved configuration: enough to train the run again
METRICS_FILE = "metrics.csv"  # one row per finished epoch (regbench.store.metrics.Row)
SUMMARY_FILE = "summary.json"  # how the run ended (regbench.store.summary.Summary)
CHECKPOINT_FILE = "checkpoint.pt"  # model, optimizer, schedule and RNG state, for resume
LOG_FILE = "run.log"  # the model, the optimizer's parameter groups, errors
SWEEP_FILE = "sweep.json"  # in a sweep's folder, whose job folders are its run folders
SWEEP_LOG_FILE = "sweep.log"  # in a sweep's folder: third-party lines (Ray's) kept off the terminal
OVERRIDES_FILE = ".hydra/overrides.yaml"  # the overrides typed for the run, as Hydra keeps them
# Statuses of a run that ended as planned: its metrics count in comparisons.
FINISHED = ("completed", "early_stopped")
# A search's pruner stopped the run after an epoch: the folder is final (a resumed sweep
# keeps it) but its metrics are never averaged with finished runs'.
PRUNED = "pruned"


def make_run_dir(root: str | Path, experiment: str) -> Path:
    """Create results/<experiment>/<run-id>/ exclusively (never reuses an existing folder)."""
    parent = safe_join(root, experiment)
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"output.root={str(root)!r}: cannot create {parent} ({e.strerror}); "
                          "choose a writable folder") from e
    while True:
        path = parent / new_run_id()
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def safe_join(root: str | Path, *parts: str) -> Path:
    """root/parts..., refusing any part that would escape the output root."""
    base = Path(root).expanduser().resolve()
    path = base.joinpath(*parts).resolve()
    if path != base and base not in path.parents:
        raise RunDirError(f"{'/'.join(parts)!r} would write outside output.root={str(base)!r}; "
                          "use a plain name")
    return path


@contextmanager
def atomic_file(path: Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a file whose content appears at path all at once when the block ends.

    Readers see the old or the new content, never a torn one. The temporary file is created
    with open(), so the result has the user's umask, like every other file of a run.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(3)}.tmp")
    try:
        with open(tmp, mode.replace("w", "x"), **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def remove_leftovers(folder: Path) -> list[Path]:
    """Delete the temporary files of atomic writes that never finished in folder (its
    process was killed mid-write); the files removed. Call it only where no other process
    writes, such as a run folder being resumed."""
    left = sorted(folder.glob(".*.tmp"))
    for tmp in left:
        tmp.unlink(missing_ok=True)
    return left


def write_atomic(path: Path, text: str) -> None:
    """Write a text file atomically (see atomic_file)."""
    with atomic_file(path) as f:
        f.write(text)


def write_json(path: Path, obj: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(obj, indent=2, default=str) + "\n")


def check_run_dir(path: Path) -> None:
    """RunDirError unless path is a run folder: config.yaml and summary.json side by side."""
    if not path.is_dir():
        raise RunDirError(f"{path}: no such folder; give a run folder such as "
                          "results/default/<run-id>")
    missing = [n for n in (CONFIG_FILE, SUMMARY_FILE) if not (path / n).is_file()]
    if missing and (path / SWEEP_FILE).is_file():
        raise RunDirError(f"{path}: a sweep folder, not a run folder; continue a sweep with "
                          f"`regbench sweep --resume {path}`")
    if missing:
        parent = path.resolve().parent
        hint = (f"; did you mean {path.parent}?" if (parent / CONFIG_FILE).is_file()
                and (parent / SUMMARY_FILE).is_file() else "")
        raise RunDirError(f"{path}: not a regbench run directory (expected {CONFIG_FILE} and "
                          f"{SUMMARY_FILE}; no {' or '.join(missing)}){hint}")


def versions() -> dict[str, str]:
    """Versions of Python and the packages that decide a run's numbers."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("regbench", "torch", "torchvision", "numpy", "hydra-core"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def sweep_id(run_dir: Path) -> str | None:
    """The id of the sweep this run folder is a job of, or None."""
    return run_dir.parent.name if (run_dir.parent / SWEEP_FILE).is_file() else None


def machine() -> dict[str, Any]:
    """Where a run ran: host name, operating system, processor and CPU count."""
    return {"host": platform.node(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count()}


def find_runs(paths: list[Path]) -> list[Path]:
    """Run folders (folders holding summary.json) at or anywhere under each path."""
    found: list[Path] = []
    for p in paths:
        if not p.is_dir():
            raise RunDirError(f"{p}: no such folder; give run, sweep or experiment folders")
        here = sorted(_run_folders(p), key=_natural)
        if not here:
            raise RunDirError(f"{p}: no run folders in it (folders holding {SUMMARY_FILE})")
        found += [d for d in here if d not in found]
    return found


def _run_folders(top: Path) -> Iterator[Path]:
    """top if it is a run folder, else the run folders anywhere under it. A run folder's
    own subfolders, and hidden folders (.hydra), are not searched: runs do not nest."""
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = list(it)
        except OSError:
            continue
        if any(e.name == SUMMARY_FILE and e.is_file() for e in entries):
            yield folder
            continue
        stack += [Path(e.path) for e in entries
                  if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]


def _natural(path: Path) -> tuple[Any, ...]:
    """Sort key that puts sweep job 10 after job 9."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in path.parts)
