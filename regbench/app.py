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
from omegaconf import DictConfig, OmegaConf

from regbench import config as config_mod
from regbench import runs
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


def execute(cfg: DictConfig, run_dir: Path, *, resume: bool = False, show: bool = True) -> JobOutcome:
    """Validate, train and report one job; errors become an outcome, never an exception."""
    from regbench import report, train  # torch is imported only when a run really starts

    handler = setup_file_log(run_dir)
    try:
        schema = config_mod.to_schema(cfg)
        config_mod.validate(schema)
        result = train.run(schema, run_dir, resume=resume)
    except RegbenchError as e:
        if os.environ.get("REGBENCH_DEBUG") == "1":
            traceback.print_exc()
        if not (run_dir / runs.METRICS_FILE).exists() and not resume:
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing was computed: leave no husk
        return JobOutcome(run_dir, "failed", e.exit_code, str(e))
    finally:
        logging.getLogger("regbench").removeHandler(handler)
        handler.close()
    if show:
        report.print_result(result.summary, str(run_dir))
    return JobOutcome(run_dir, result.status, result.exit_code, result.summary.get("error"))


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def hydra_main(cfg: DictConfig) -> Any:
    """Run one job in the directory Hydra made for it."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    outcome = execute(cfg, run_dir)
    LAST.append(outcome)
    return outcome.status


if __name__ == "__main__":
    hydra_main()
