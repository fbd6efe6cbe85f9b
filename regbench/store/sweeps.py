"""sweep.json: what a sweep runs, written and read only here, and its job folders.

A sweep folder holds sweep.json (the overrides as typed and every job's overrides, in
Hydra's job order) and one run folder per job, named by the job's number.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from regbench.errors import RunDirError
from regbench.store import confirm_record, runs

FILE = runs.SWEEP_FILE
COMPARISON_FILE = "summary.csv"  # a sweep's comparison table, every column (summarize --format csv)


def key_of(override: str) -> str:
    """The configuration key an override sets ('+a.b=1' -> 'a.b')."""
    return override.split("=", 1)[0].lstrip("+~")


@dataclass
class SweepPlan:
    """What a sweep will run: the overrides as typed and each job's task overrides."""

    args: list[str]  # the command line's overrides, as the user typed them
    flags: list[str] = field(default_factory=list)  # Hydra flags other than --multirun
    jobs: list[list[str]] = field(default_factory=list)
    axes: list[str] = field(default_factory=list)  # keys that take more than one value
    sweeper: str = "basic"  # basic (a grid) | optuna (a search: jobs filled in afterwards) | jobs (listed)
    trials: int = 0  # optuna: hydra.sweeper.n_trials
    confirm: dict[str, Any] = field(default_factory=dict)  # optuna: hydra.sweeper.confirm
    # the plugins its jobs import ({"module", "version"}), imported again on resume
    plugins: list[dict[str, Any]] = field(default_factory=list)

    @property
    def size(self) -> int:
        """How many jobs the sweep runs."""
        return self.trials if self.sweeper == "optuna" else len(self.jobs)

    def job_dirs(self, sweep_dir: Path) -> list[Path]:
        """Every job's run folder, in job order."""
        return [job_dir(sweep_dir, n) for n in range(len(self.jobs))]


def job_dir(sweep_dir: Path, num: int) -> Path:
    """Where Hydra puts job `num` (hydra.sweep.subdir is the job number)."""
    return sweep_dir / str(num)


def is_sweep(folder: Path) -> bool:
    return (folder / FILE).is_file()


def write_plan(sweep_dir: Path, plan: SweepPlan) -> None:
    """Record the sweep in sweep.json, for resume and for each job's progress line."""
    runs.write_json(sweep_dir / FILE, asdict(plan))


def read_plan(sweep_dir: Path) -> SweepPlan:
    """The sweep recorded in sweep_dir, or a RunDirError naming the folder."""
    path = sweep_dir / FILE
    try:
        data = json.loads(path.read_text())
        known = {f.name for f in fields(SweepPlan)}
        return SweepPlan(**{k: v for k, v in data.items() if k in known})
    except FileNotFoundError as e:
        raise RunDirError(f"{sweep_dir}: no {FILE}; not a folder made by regbench sweep") from e
    except (OSError, TypeError, AttributeError, json.JSONDecodeError) as e:
        raise RunDirError(f"{path}: unreadable ({e})") from e


def command(folder: Path, plan: SweepPlan) -> list[str]:
    """The command that ran a sweep folder's jobs: `regbench confirm SEARCH ...` for a
    confirmation (its jobs are listed, not typed), else `regbench sweep` and its overrides."""
    try:
        record = confirm_record.read(folder)
    except RunDirError:
        return ["regbench", "sweep", *plan.flags, *plan.args]
    typed = [a for a in plan.args if not a.startswith(("hydra/sweeper=", "hydra.sweeper.jobs_file="))]
    return ["regbench", "confirm", record.search, "--top", str(record.top), "--seeds",
            str(record.seeds), *plan.flags, *typed]


def write_comparison(folder: Path, table: Any) -> Path:
    """summary.csv: a comparison's table (a pandas DataFrame), every column."""
    path = folder / COMPARISON_FILE
    table.to_csv(path, index=False)
    return path
