"""Job lists: the overrides of each job, as a sweep's workers read them.

A listed sweep (``hydra/sweeper=regbench_list``: a settle's rounds, a confirmation) reads
its jobs from a JSON list of override lists; every job folder holds the overrides typed for
it as Hydra keeps them (``.hydra/overrides.yaml``).
"""

from __future__ import annotations

import json
from pathlib import Path

from regbench.errors import RunDirError
from regbench.store.runs import OVERRIDES_FILE, write_atomic


def write(path: Path, jobs: list[list[str]]) -> None:
    """A job list (one list of overrides per job), written atomically."""
    write_atomic(path, json.dumps(jobs, indent=1) + "\n")


def read(path: Path) -> list[list[str]]:
    """A job list as written by `write`."""
    try:
        jobs = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RunDirError(f"{path}: unreadable job list ({type(e).__name__}: {e})") from e
    if not isinstance(jobs, list) or not all(isinstance(j, list) for j in jobs):
        raise RunDirError(f"{path}: not a job list (a JSON list of override lists)")
    return [[str(o) for o in job] for job in jobs]


def read_overrides(run_dir: Path) -> list[str] | None:
    """The overrides typed for the run (Hydra's .hydra/overrides.yaml), None when unknown."""
    import yaml

    try:
        text = (run_dir / OVERRIDES_FILE).read_text()
        typed = _plain_list(text)
        if typed is None:
            typed = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, yaml.YAMLError):
        return None
    return [str(o) for o in typed] if isinstance(typed, list) else None


# A character that may make an item of a YAML list more than the plain text it shows.
_YAML_MARKS = set("'\"[]{}&*!|>%@`#:,")


def _plain_list(text: str) -> list[str] | None:
    """A YAML list of plain 'key=value' items ("- seed=1" lines, as Hydra writes most
    overrides) read without a YAML parser; None when an item needs one."""
    items = [line[2:] for line in text.splitlines()]
    if not items or any(not line.startswith("- ") for line in text.splitlines()):
        return None
    if any("=" not in item or item != item.strip() or _YAML_MARKS & set(item) for item in items):
        return None
    return items
