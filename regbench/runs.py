"""Run directories: unique creation, the files a run writes, and reading them back."""

from __future__ import annotations

import json
import os
import platform
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from regbench.errors import RunDirError

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.csv"
SUMMARY_FILE = "summary.json"
CHECKPOINT_FILE = "checkpoint.pt"
LOG_FILE = "run.log"
# Statuses of a run that ended as planned: its metrics count in comparisons.
FINISHED = ("completed", "early_stopped")


def new_run_id() -> str:
    """A sortable id, unique across runs started in the same second or in parallel."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


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


def write_atomic(path: Path, text: str) -> None:
    """Write a file so that readers see the old or the new content, never a torn one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(obj, indent=2, default=str) + "\n")


def load_summary(run_dir: Path) -> dict[str, Any] | None:
    """A run's summary.json, or None when it is missing or unreadable."""
    try:
        return json.loads((run_dir / SUMMARY_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def read_summary(run_dir: Path) -> dict[str, Any]:
    """A run's summary.json, or a RunDirError naming the folder."""
    path = run_dir / SUMMARY_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as e:
        raise RunDirError(f"{run_dir}: no {SUMMARY_FILE}; not a regbench run directory") from e
    except (OSError, json.JSONDecodeError) as e:
        raise RunDirError(f"{path}: unreadable ({e}); the run's metrics.csv is still there") from e


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


def mark_failed(run_dir: Path, error: str) -> None:
    """Record status 'failed' and the one-line error in the run's summary.json."""
    summary = load_summary(run_dir) or {}
    summary.update(status="failed", error=error)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / SUMMARY_FILE, summary)


def why_unfinished(summary: dict[str, Any]) -> str:
    """The one-line reason a run did not finish, from its summary.json."""
    if summary.get("error"):
        return str(summary["error"])
    if summary.get("status") == "diverged":
        return f"the loss became NaN or infinite in epoch {summary.get('epochs_run', 0) + 1}"
    return str(summary.get("verdict") or "no summary.json: never started, or killed")
