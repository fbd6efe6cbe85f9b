#!/usr/bin/env python3
"""Compare the runs under two result roots: are their metrics bit-identical?

Usage: python scripts/compare_runs.py BEFORE_ROOT AFTER_ROOT

A refactoring must not change what a deterministic run computes. This script pairs the
run folders of two roots (written by the same commands before and after a change) and
compares, file by file:
- metrics.csv: every column but epoch_time_s, as the exact text written;
- summary.json: every key but times, paths and the host (wall_time_s,
  train_images_per_s, machine, error, versions, and epoch_time_s inside best/last), and
  the keys added by summary formats 2 and 3 (format_version, val_loss_rise, config), so
  that runs written before those formats compare with runs written after them; the keys
  of format 4 (val_images, at_chance, diverged_epoch, diverged_reason, plugins) where
  only one of the two files has them.

Runs are paired by their path below the root with the run ids left out
(results/<experiment>/<run-id>/), so give each command its own experiment name, as
scripts/reference_runs.sh does; the jobs of a sweep
(.../sweeps/<sweep-id>/<job>/) by the values of its axes, read from each job's
.hydra/overrides.yaml, so that a sweep whose jobs were numbered in another order still
pairs. Prints one line per file, identical or different (with the first difference), and
exits 1 if any file differs or a run has no partner.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path
from typing import Any

RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")  # regbench.config.schema.new_run_id
SKIP_COLUMNS = {"epoch_time_s"}
SKIP_SUMMARY = {"wall_time_s", "train_images_per_s", "machine", "error", "versions",
                "format_version", "val_loss_rise", "config"}
# Keys added by summary format 4: compared where both files have them, so that runs
# written before that format compare with runs written after it.
FORMAT_4 = {"val_images", "at_chance", "diverged_epoch", "diverged_reason", "plugins"}


def run_key(run_dir: Path, root: Path) -> str:
    """The run's path below root without its run ids (a sweep job's number replaced by its
    axis values): equal for the same command's runs."""
    parts = [p for p in run_dir.relative_to(root).parts if not RUN_ID.match(p)]
    if len(parts) >= 2 and parts[-2] == "sweeps":
        parts[-1] = " ".join(job_axes(run_dir)) or parts[-1]
    return "/".join(parts) or "."


def overrides(job: Path) -> set[str]:
    """A sweep job's Hydra overrides (the lines of .hydra/overrides.yaml), or none."""
    path = job / ".hydra" / "overrides.yaml"
    if not path.exists():
        return set()
    return {line.removeprefix("- ").strip() for line in path.read_text().splitlines()
            if line.startswith("- ")}


def job_axes(job: Path) -> list[str]:
    """The job's overrides that not every job of its sweep shares: its axis values."""
    jobs = [d for d in job.parent.iterdir() if d.is_dir()]
    shared = set.intersection(*(overrides(d) for d in jobs))
    return sorted(overrides(job) - shared)


def find_runs(root: Path) -> dict[str, Path]:
    """Run folders (those with a metrics.csv) by run key; a key met twice is an error."""
    found: dict[str, Path] = {}
    for metrics in sorted(root.rglob("metrics.csv")):
        key = run_key(metrics.parent, root)
        if key in found:
            sys.exit(f"{root}: two runs at {key} ({found[key]}, {metrics.parent}); "
                     "give each command its own experiment name")
        found[key] = metrics.parent
    return found


def metrics_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return [{k: v for k, v in row.items() if k not in SKIP_COLUMNS} for row in csv.DictReader(f)]


def summary_fields(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    out = {k: v for k, v in data.items() if k not in SKIP_SUMMARY}
    for key in ("best", "last"):
        if isinstance(out.get(key), dict):
            out[key] = {k: v for k, v in out[key].items() if k not in SKIP_COLUMNS}
    return out


def first_difference(a: Any, b: Any, where: str = "") -> str | None:
    """Where two parsed files first differ, as 'path: a != b', or None when equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(dict.fromkeys([*a, *b])):
            d = first_difference(a.get(k), b.get(k), f"{where}.{k}" if where else str(k))
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} rows != {len(b)} rows"
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{where}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{where}: {a!r} != {b!r}"


def compare(before: Path, after: Path) -> int:
    """Print one line per compared file; the number of differences and unpaired runs."""
    old, new = find_runs(before), find_runs(after)
    problems = 0
    for key in sorted(set(old) | set(new)):
        if key not in old or key not in new:
            print(f"{key}: only under {before if key in old else after}")
            problems += 1
            continue
        for name, read in (("metrics.csv", metrics_rows), ("summary.json", summary_fields)):
            a, b = old[key] / name, new[key] / name
            if not a.exists() or not b.exists():
                print(f"{key}/{name}: missing under {before if not a.exists() else after}")
                problems += 1
                continue
            x, y = read(a), read(b)
            if name == "summary.json":
                for k in FORMAT_4 - (x.keys() & y.keys()):
                    x.pop(k, None), y.pop(k, None)
            diff = first_difference(x, y)
            print(f"{key}/{name}: {'identical' if diff is None else 'different (' + diff + ')'}")
            problems += diff is not None
    print(f"{len(set(old) & set(new))} runs paired, {problems} difference(s)")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    roots = [Path(a) for a in argv]
    for root in roots:
        if not root.is_dir():
            print(f"{root}: no such folder", file=sys.stderr)
            return 2
    return 1 if compare(*roots) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
