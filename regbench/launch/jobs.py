"""Jobs: the Hydra entry point that runs one training job, and the call that starts Hydra.

Overrides, multirun and launchers all go through ``hydra_main``. The CLI hands Hydra the
argument vector unchanged, so everything Hydra can do on a command line (group overrides,
``--cfg job``, ``--multirun``, ``hydra/launcher=...``) works. A job's errors become an
outcome (status, exit code, one-line message), never a traceback.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from regbench.config import schema as config_mod
from regbench.store import runs
from regbench.present import terminal
from regbench.training import trackers
from regbench.errors import RegbenchError
from regbench.study.labels import job_label
from regbench.training.validation import validate

# Environment variables a sweep sets for its jobs (through hydra.job.env_set, so every
# launcher passes them on): the keys that vary between jobs, and how many jobs there are.
SWEEP_AXES_ENV = "REGBENCH_SWEEP_AXES"
SWEEP_SIZE_ENV = "REGBENCH_SWEEP_SIZE"


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
    from regbench.training import loop as train  # torch is imported only when a run really starts

    handler = setup_file_log(run_dir)
    try:
        schema = config_mod.to_schema(cfg)
        validate(schema)
        progress = terminal.Progress(enabled=schema.trainer.progress)
        listeners = [progress, *trackers.build(schema, run_dir, terminal.warn, runs.sweep_id(run_dir))]
        result = train.run(schema, run_dir, resume=resume, callbacks=listeners)
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
        terminal.print_result(result.summary, str(run_dir))
    return JobOutcome(run_dir, result.status, result.exit_code, result.summary.get("error"))


def _failed(run_dir: Path, message: str, code: int, *, keep: bool, resume: bool) -> JobOutcome:
    if keep:
        runs.mark_failed(run_dir, " ".join(message.split()))
    elif not (run_dir / runs.METRICS_FILE).exists() and not resume:
        shutil.rmtree(run_dir, ignore_errors=True)  # nothing was computed: leave no husk
    return JobOutcome(run_dir, "failed", code, message)


def job_name(run_dir: Path, task_overrides: list[str]) -> str:
    """'[3/8] reg.dropout.fc=0.2 seed=1': the job's number and its values on the sweep axes."""
    values = job_label(task_overrides, os.environ.get(SWEEP_AXES_ENV, "").split())
    size = os.environ.get(SWEEP_SIZE_ENV)
    if run_dir.name.isdigit() and size:
        return f"[{int(run_dir.name) + 1}/{size}] {values or 'job ' + run_dir.name}"
    return values or f"job {run_dir.name}"


def run_sweep_job(cfg: DictConfig, run_dir: Path, task_overrides: list[str]) -> JobOutcome:
    """One job of a sweep: kept if finished, resumed if interrupted, else run; one line printed."""
    action = runs.job_action(run_dir)
    if action == "skip":
        outcome = JobOutcome(run_dir, runs.job_status(run_dir), 0)
    else:
        if action == "fresh":
            runs.clear_job(run_dir)
        outcome = execute(cfg, run_dir, resume=action == "resume", show=False, keep_failed=True)
    terminal.print_job_line(run_dir, action, job_name(run_dir, task_overrides))
    if outcome.status == "interrupted":
        raise KeyboardInterrupt  # Ctrl-C or SIGTERM stops the whole sweep, not just this job
    return outcome


@dataclass
class PendingJob:
    """A sweep job that Hydra has set up (folder, .hydra/ files) for a launcher to train."""

    cfg: DictConfig
    run_dir: Path
    task_overrides: list[str]


def run_population_jobs(pending: list[PendingJob], max_members: int) -> list[JobOutcome]:
    """A sweep's jobs trained as populations (regbench.training.population); one outcome per job.

    Finished jobs are kept, interrupted ones resume as members, and a job whose
    configuration or checkpoint is bad fails alone, as in the sequential sweep. The jobs
    are grouped by what they must share and trained max_members at a time; each prints its
    line when its population ends. Ctrl-C stops the sweep after saving every member.
    """
    from regbench.training import population

    outcomes: dict[int, JobOutcome] = {}
    actions = [runs.job_action(job.run_dir) for job in pending]
    members: list[tuple[int, Any]] = []
    for num, (job, action) in enumerate(zip(pending, actions, strict=True)):
        if action == "skip":
            outcomes[num] = JobOutcome(job.run_dir, runs.job_status(job.run_dir), 0)
            continue
        if action == "fresh":
            runs.clear_job(job.run_dir)
        try:
            schema = config_mod.to_schema(job.cfg)
            validate(schema)
        except RegbenchError as e:
            outcomes[num] = _failed(job.run_dir, str(e), e.exit_code, keep=True, resume=False)
            continue
        why = population.unsupported(schema)
        if why is not None:  # a setting the population does not vectorise: train it alone
            terminal.note_once(f"regbench: {why.split('=')[0]}: not trained per member by the "
                               "population engine; jobs that set it run on their own")
            outcomes[num] = execute(job.cfg, job.run_dir, resume=action == "resume", show=False,
                                    keep_failed=True)
            continue
        members.append((num, schema))
    for num in sorted(outcomes):  # kept and invalid jobs first: the populations take a while
        terminal.print_job_line(pending[num].run_dir, actions[num],
                                job_name(pending[num].run_dir, pending[num].task_overrides))
    groups = population.split_groups([schema for _, schema in members], max_members)
    for group in groups:
        nums = [members[k][0] for k in group]
        handlers = [setup_file_log(pending[n].run_dir) for n in nums]
        try:
            results: list[Any] = population.train(
                [(members[k][1], pending[n].run_dir, actions[n] == "resume")
                 for k, n in zip(group, nums, strict=True)])
        except Exception as e:  # the shared data failed to load: every member fails with it
            logging.getLogger("regbench").exception("population failed")
            results = [e] * len(nums)
        finally:
            for handler in handlers:
                logging.getLogger("regbench").removeHandler(handler)
                handler.close()
        for n, result in zip(nums, results, strict=True):
            outcomes[n] = _member_outcome(pending[n].run_dir, result)
            terminal.print_job_line(pending[n].run_dir, actions[n],
                                    job_name(pending[n].run_dir, pending[n].task_overrides))
        if any(outcomes[n].status == "interrupted" for n in nums):
            LAST.extend(outcomes.values())
            raise KeyboardInterrupt  # the remaining populations wait for sweep --resume
    ordered = [outcomes[n] for n in range(len(pending))]
    LAST.extend(ordered)
    return ordered


def _member_outcome(run_dir: Path, result: Any) -> JobOutcome:
    """A population member's outcome: its run's, or a failure that keeps its folder."""
    if isinstance(result, RegbenchError):
        return _failed(run_dir, str(result), result.exit_code, keep=True, resume=False)
    if isinstance(result, Exception):
        return _failed(run_dir, f"{type(result).__name__}: {result}", 1, keep=True, resume=False)
    return JobOutcome(run_dir, result.status, result.exit_code, result.summary.get("error"))


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def hydra_main(cfg: DictConfig) -> Any:
    """Run one job in the directory Hydra made for it (one of a sweep's under --multirun)."""
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        outcome = run_sweep_job(cfg, run_dir, list(hydra_cfg.overrides.task))
        LAST.append(outcome)
        if "optuna" in str(hydra_cfg.sweeper.get("_target_", "")):
            return search_objective(outcome)
        return outcome.status
    outcome = execute(cfg, run_dir)
    LAST.append(outcome)
    return outcome.status


def search_objective(outcome: JobOutcome) -> float | None:
    """What a search maximizes: the val accuracy at the run's best epoch. None (not a
    number) for a run that did not finish makes the sweeper record a failed trial."""
    if outcome.status not in runs.FINISHED:
        return None
    best = runs.read_summary(outcome.run_dir).get("best") or {}
    return best.get("val_acc")


def call_hydra(args: list[str], report: bool = True) -> int:
    """Run the @hydra.main entry with this argument vector; return the exit code.

    With ``report`` the errors of the jobs run in this process are printed, one line each.
    """
    LAST.clear()
    saved = sys.argv
    sys.argv = ["regbench", *args]
    try:
        hydra_main()
    except SystemExit as e:
        return int(e.code or 0) if not isinstance(e.code, str) else 1
    finally:
        sys.argv = saved
    for outcome in LAST if report else []:
        if outcome.message and outcome.exit_code == 2:
            terminal.err.print(f"regbench: error: {outcome.message}", soft_wrap=True)
        elif outcome.message:
            terminal.err.print(f"regbench: run {outcome.status}: {outcome.message} "
                               f"({outcome.run_dir})", soft_wrap=True)
    return max((o.exit_code for o in LAST), default=0)
