"""settle.json: what a settle planned and each round it ran, in its sweep folder.

A settle (``regbench sweep --settle``) is a sweep whose jobs are added in rounds; the
sweep's sweep.json lists every job added so far (job n runs in folder n), and settle.json
says which configurations and seeds each round added, so that the sequential analysis
(regbench.study.settled) and ``sweep --resume`` can pick up from any point. This module
owns the file: every reader and writer goes through it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from regbench.errors import RunDirError
from regbench.store import runs

SETTLE_FILE = "settle.json"  # in a settle's sweep folder: its design and its rounds
RUNNING, SETTLED, OUT_OF_SEEDS, OUT_OF_TIME = "running", "settled", "out of seeds", "out of time"


@dataclass
class Round:
    """One round: the configurations that ran seeds [previous round's seeds, seeds)."""

    number: int  # 1, 2, ...
    seeds: int  # seeds per configuration once this round has run
    configs: list[int]  # indices into SettleRecord.configs (the baseline is always one)
    jobs: list[list[int]]  # jobs[i]: the job numbers (sweep folders, sweep.json lines) of configs[i]
    started_at: float  # unix time when the round was planned
    wall_time_s: float | None = None  # seconds its jobs took; None until they have all run
    interrupted_s: float = 0.0  # seconds of earlier attempts that were interrupted
    undecided: int | None = None  # comparisons still undecided after it; None until analysed

    @property
    def done(self) -> bool:
        return self.undecided is not None


@dataclass
class SettleRecord:
    """A settle's design (fixed when it starts) and the rounds run so far."""

    metrics: list[str]  # difference columns (regbench.study.compare.DIFFERENCES) that decide
    margins: dict[str, float]  # equivalence margin per metric, as a fraction (0.005 = 0.5 points)
    alpha: float  # familywise error rate per metric
    spending: str  # alpha-spending function (regbench.study.sequential.SPENDING)
    looks: list[int]  # planned seeds per configuration after each round; the last is the budget
    max_time_s: float | None  # wall-time budget: no round starts once it is spent
    configs: list[list[str]]  # each configuration's job overrides, the seed left out
    labels: list[str]  # each configuration's name in the table
    baseline: int  # index of the baseline configuration
    rounds: list[Round] = field(default_factory=list)
    status: str = RUNNING  # running | settled | out of seeds | out of time

    @property
    def comparisons(self) -> int:
        """k: the configurations compared with the baseline."""
        return len(self.configs) - 1

    @property
    def wall_time_s(self) -> float:
        """Seconds the rounds' jobs have taken so far (time between interruptions excluded)."""
        return sum(r.interrupted_s if r.wall_time_s is None else r.wall_time_s for r in self.rounds)

    def round_of_job(self) -> dict[int, int]:
        """Job number -> the round that added it."""
        return {job: r.number for r in self.rounds for jobs in r.jobs for job in jobs}

    def config_of_job(self) -> dict[int, int]:
        """Job number -> index of its configuration."""
        return {job: c for r in self.rounds for c, jobs in zip(r.configs, r.jobs, strict=True)
                for job in jobs}


def write(sweep_dir: Path, record: SettleRecord) -> None:
    """Write settle.json atomically: a reader sees the old record or the new, never half."""
    runs.write_json(sweep_dir / SETTLE_FILE, asdict(record))


def read(sweep_dir: Path) -> SettleRecord:
    """The settle recorded in sweep_dir, or a RunDirError naming the file."""
    path = sweep_dir / SETTLE_FILE
    try:
        data = json.loads(path.read_text())
        data["rounds"] = [Round(**r) for r in data.get("rounds", [])]
        return SettleRecord(**data)
    except FileNotFoundError as e:
        raise RunDirError(f"{sweep_dir}: no {SETTLE_FILE}; not a folder made by regbench sweep --settle") from e
    except (OSError, TypeError, KeyError, json.JSONDecodeError) as e:
        raise RunDirError(f"{path}: unreadable ({e})") from e


def is_settle(folder: Path) -> bool:
    """Whether the folder is a settle's sweep folder."""
    return (folder / SETTLE_FILE).is_file()
