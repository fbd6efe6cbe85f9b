"""A confirmation's files: what it confirms (confirm.json), its listed jobs (jobs.json) and
its table (confirm.csv), in the confirmation's sweep folder ``<search>-confirm``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from regbench.errors import RunDirError
from regbench.store import runs

FILE = "confirm.json"  # the search it confirms, its candidates and baseline, --top and --seeds
JOBS_FILE = "jobs.json"  # the listed jobs, read by hydra/sweeper=regbench_list
TABLE_FILE = "confirm.csv"  # one row per candidate: confirmed against search-time score


@dataclass
class ConfirmRecord:
    """What a confirmation re-runs: the search's folder, how many of its best trials, with
    how many fresh seeds, against which baseline overrides."""

    search: str
    top: int
    seeds: int
    baseline: list[str]
    candidates: list[dict[str, Any]] = field(default_factory=list)  # trial, values, score


def write(folder: Path, record: ConfirmRecord) -> None:
    runs.write_json(folder / FILE, asdict(record))


def read(folder: Path) -> ConfirmRecord:
    """The folder's confirm.json; RunDirError naming the file when it is damaged."""
    path = folder / FILE
    try:
        data = json.loads(path.read_text())
        return ConfirmRecord(search=str(data["search"]), top=int(data["top"]),
                             seeds=int(data["seeds"]), baseline=[str(b) for b in data["baseline"]],
                             candidates=list(data.get("candidates", [])))
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RunDirError(f"{path}: unreadable ({type(e).__name__}: {e})") from e


def is_confirmation(folder: Path) -> bool:
    return (folder / FILE).is_file()


def write_table(folder: Path, rows: list[dict[str, Any]]) -> Path:
    """confirm.csv: the confirmation's table, one row per candidate."""
    import pandas as pd

    path = folder / TABLE_FILE
    pd.DataFrame(rows).to_csv(path, index=False)
    return path
