"""The Hydra entry point: overrides, multirun and launchers all go through ``hydra_main``.

The CLI hands Hydra the argument vector unchanged, so everything Hydra can do on a command
line (group overrides, ``--cfg job``, ``--multirun``, ``hydra/launcher=...``) works.
"""

from __future__ import annotations

import logging
import os
import shutil
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from regbench import config as config_mod
from regbench import runs, sweep
from regbench.errors import RegbenchError

OmegaConf.register_new_resolver("regbench_run_id", runs.new_run_id, use_cache=True, replace=True)


@dataclass
class JobOutcome:
    """What the last job in this process ended with, for the CLI's exit code."""

    run_dir: Path
    status: str
    exit_code: int
    message: str | None = None


LAST: list[JobOutcome] = []


def setup_file_log(run_dir: Path) -> logging.Handler:
    """Send the run's log (model, parameter groups, errors with tracebacks) to run.log."""
    handler = logging.FileHandler(run_dir / runs.LOG_FILE)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("regbench")
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return handler


def execute(cfg: DictConfig, run_dir: Path, *, resume: bool = False, show: bool = True,
            keep_failed: bool = False) -> JobOutcome:
    """Validate, train and report one job; errors become an outcome, never an exception.

    With ``keep_failed`` (sweep jobs) a failed job keeps its folder, with its status and the
    one-line error in summary.json, and unexpected exceptions are caught too, so that one
    job's failure never stops the others.
    """
    from regbench import report, train  # torch is imported only when a run really starts

    handler = setup_file_log(run_dir)
    try:
        schema = config_mod.to_schema(cfg)
        config_mod.validate(schema)
        result = train.run(schema, run_dir, resume=resume)
    except RegbenchError as e:
        if os.environ.get("REGBENCH_DEBUG") == "1":
            traceback.print_exc()
        return _failed(run_dir, str(e), e.exit_code, keep=keep_failed, resume=resume)
    except Exception as e:
        if not keep_failed:
            raise
        logging.getLogger("regbench").exception("job failed")
        return _failed(run_dir, f"{type(e).__name__}: {e}", 1, keep=True, resume=resume)
    finally:
        logging.getLogger("regbench").removeHandler(handler)
        handler.close()
    if show:
        report.print_result(result.summary, str(run_dir))
    return JobOutcome(run_dir, result.status, result.exit_code, result.summary.get("error"))


def _failed(run_dir: Path, message: str, code: int, *, keep: bool, resume: bool) -> JobOutcome:
    if keep:
        runs.mark_failed(run_dir, " ".join(message.split()))
    elif not (run_dir / runs.METRICS_FILE).exists() and not resume:
        shutil.rmtree(run_dir, ignore_errors=True)  # nothing was computed: leave no husk
    return JobOutcome(run_dir, "failed", code, message)


def run_sweep_job(cfg: DictConfig, run_dir: Path) -> JobOutcome:
    """One job of a sweep: kept if finished, resumed if interrupted, else run; one line printed."""
    from regbench import report

    action = sweep.job_action(run_dir)
    if action == "skip":
        outcome = JobOutcome(run_dir, sweep.job_status(run_dir), 0)
    else:
        if action == "fresh":
            sweep.clear_job(run_dir)
        outcome = execute(cfg, run_dir, resume=action == "resume", show=False, keep_failed=True)
    report.print_job_line(run_dir, action)
    if outcome.status == "interrupted":
        raise KeyboardInterrupt  # Ctrl-C or SIGTERM stops the whole sweep, not just this job
    return outcome


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def hydra_main(cfg: DictConfig) -> Any:
    """Run one job in the directory Hydra made for it (one of a sweep's under --multirun)."""
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        outcome = run_sweep_job(cfg, run_dir)
    else:
        outcome = execute(cfg, run_dir)
    LAST.append(outcome)
    return outcome.status


if __name__ == "__main__":
    hydra_main()
