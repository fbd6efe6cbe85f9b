"""What a run writes about itself without training: the summary of a run that ended before
its first epoch, with its config.yaml so it can be resumed, and what a run ended with
(RunResult).

This module imports no torch, so a run stopped while torch loads is still recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


from regbench.store import metrics, run_config, runs
from regbench.training import curves
from regbench.store.summary import Summary
from regbench.training import plugins
from regbench.training.schema import RegbenchConfig


EXIT_CODES = {"completed": 0, "early_stopped": 0, "pruned": 0, "diverged": 1, "failed": 1,
              "interrupted": 130}


@dataclass
class RunResult:
    """What training one run folder ended with."""

    run_dir: Path
    status: str
    rows: list[metrics.Row]
    summary: Summary

    @property
    def exit_code(self) -> int:
        if self.status == "interrupted" and self.summary.signal == "SIGTERM":
            return 143
        return EXIT_CODES.get(self.status, 1)


def write_unstarted(run_dir: Path, cfg: RegbenchConfig, status: str, *, error: str | None = None,
                    signal_name: str | None = None, wall_time_s: float = 0.0) -> RunResult:
    """The files of a run that ended before its first epoch (interrupted while its data
    loaded, say): its configuration, so it can be resumed, and its summary."""
    if not run_config.exists(run_dir):
        run_config.write(run_dir, cfg)
    rows = metrics.read_rows(run_dir / runs.METRICS_FILE) if (run_dir / runs.METRICS_FILE).exists() else []
    summary = Summary(status=status, epochs_run=len(rows), last=rows[-1] if rows else None,
                      verdict=curves.verdict(rows, status), wall_time_s=wall_time_s,
                      machine=runs.machine(), seed=cfg.seed, experiment=cfg.experiment,
                      error=error, signal=signal_name, versions=runs.versions(),
                      plugins=plugins.recorded(),
                      config=run_config.keys_of(cfg))
    summary.write(run_dir)
    return RunResult(run_dir, status, rows, summary)
