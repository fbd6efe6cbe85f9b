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
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from regbench.training import schema as config_mod
from regbench.errors import RegbenchError
from regbench.present import terminal
from regbench.store import runs, summary
from regbench.store.runlog import run_log
from regbench.training import plugins, pruning, trackers
from regbench.study.labels import job_label
from regbench.training.callbacks import Callback
from regbench.training.validation import validate

if TYPE_CHECKING:  # torch is imported only when a run really starts
    from regbench.training.loop import Member
    from regbench.training.schema import RegbenchConfig
    from regbench.training.session import RunResult

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


class SweepInterrupted(KeyboardInterrupt):
    """A sweep's jobs were stopped by a signal they handled: 130 after Ctrl-C, 143 after
    SIGTERM (the exit code the sweep ends with)."""

    def __init__(self, exit_code: int) -> None:
        super().__init__(exit_code)
        self.exit_code = exit_code


def member(cfg: DictConfig, run_dir: Path, resume: bool, *, progress: bool = True) -> Member:
    """A job as a member of a training: its checked configuration and who listens to it.

    Raises ConfigError for a configuration that fails validation.
    """
    from regbench.training.loop import Member

    plugins.load()  # in a launcher's worker: the plugins REGBENCH_PLUGINS names
    schema = config_mod.to_schema(cfg)
    validate(schema)
    listeners: list[Callback] = [terminal.Progress(enabled=progress and schema.trainer.progress)]
    listeners += trackers.build(schema, run_dir, terminal.warn, runs.sweep_id(run_dir))
    reporter = pruning.from_env(terminal.warn, run_dir)  # a search's trial: last, it may stop the run
    listeners += [reporter] if reporter is not None else []
    return Member(schema, run_dir, resume, listeners)


def execute(cfg: DictConfig, run_dir: Path, *, resume: bool = False, show: bool = True) -> JobOutcome:
    """Validate, train and report one run; errors become an outcome, never an exception.

    A run that fails before it computed anything leaves no folder behind.
    """
    from regbench.training import loop
    from regbench.training.session import RunResult

    with run_log(run_dir):
        try:
            result: RunResult | Exception = loop.train([member(cfg, run_dir, resume)])[0]
        except RegbenchError as e:
            if os.environ.get("REGBENCH_DEBUG") == "1":
                traceback.print_exc()
            result = e
    outcome = outcome_of(run_dir, result, keep=False, resume=resume)
    if show and isinstance(result, RunResult):
        terminal.print_result(result.summary, str(run_dir))
    return outcome


def interrupted_before_start(cfg: RegbenchConfig, run_dir: Path, signal_name: str) -> None:
    """Leave a run stopped before its training began (while Hydra set it up or regbench
    loaded) resumable: its config.yaml and an interrupted summary, and say how to go on."""
    from regbench.training.record import write_unstarted

    if not run_dir.is_dir() or (run_dir / runs.SUMMARY_FILE).exists():
        return  # never made, or training began and recorded how it ended
    result = write_unstarted(run_dir, cfg, "interrupted", signal_name=signal_name)
    terminal.print_result(result.summary, str(run_dir))


def outcome_of(run_dir: Path, result: RunResult | Exception, *, keep: bool, resume: bool
               ) -> JobOutcome:
    """A job's outcome from its training result; a failure keeps its folder when `keep`."""
    from regbench.training.session import RunResult

    if isinstance(result, RunResult):
        return JobOutcome(run_dir, result.status, result.exit_code, result.summary.error)
    if isinstance(result, RegbenchError):
        message, code = str(result), result.exit_code
    else:
        message, code = f"{type(result).__name__}: {result}", 1
    if keep:
        summary.mark_failed(run_dir, " ".join(message.split()))
    elif not (run_dir / runs.METRICS_FILE).exists() and not resume:
        shutil.rmtree(run_dir, ignore_errors=True)  # nothing was computed: leave no husk
    return JobOutcome(run_dir, "failed", code, message)


@dataclass
class PendingJob:
    """A sweep job that Hydra has set up (folder, .hydra/ files) for a launcher to train."""

    cfg: DictConfig
    run_dir: Path
    task_overrides: list[str]


def sweep_job_config(hydra_context: Any, config: DictConfig, overrides: Sequence[str],
                     num: int) -> DictConfig:
    """Job `num`'s config, as Hydra's own launchers compose it."""
    from omegaconf import open_dict

    cfg = hydra_context.config_loader.load_sweep_config(config, list(overrides))
    with open_dict(cfg):
        cfg.hydra.job.id = f"{cfg.hydra.job.name}_{num}"
        cfg.hydra.job.num = num
    return cfg


def set_up_jobs(hydra_context: Any, configs: list[DictConfig]) -> tuple[list[Any], list[PendingJob]]:
    """Each job's folder and .hydra/ files, made as Hydra's launchers make them, without
    training it: Hydra's JobReturn of each, and the jobs for run_sweep_jobs to train."""
    from hydra.core.utils import run_job

    pending: list[PendingJob] = []

    def collect(cfg: DictConfig) -> Any:
        hydra_cfg = HydraConfig.get()
        pending.append(PendingJob(cfg, Path(hydra_cfg.runtime.output_dir),
                                  list(hydra_cfg.overrides.task)))
        return "pending"

    returns = [run_job(hydra_context=hydra_context, config=cfg, task_function=collect,
                       job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir")
               for cfg in configs]
    return returns, pending


def run_sweep_jobs(pending: list[PendingJob], *, population: bool = False,
                   max_members: int = 1) -> list[JobOutcome]:
    """A sweep's jobs, one outcome each, alone or trained together as populations.

    Finished jobs are kept, interrupted ones resume, and a job whose configuration or
    checkpoint is bad fails alone. With ``population`` the jobs are grouped by what they
    must share and trained max_members at a time (regbench.training.population); a job
    whose settings the population does not vectorise trains on its own. A population that
    would not fit in the device's free memory is cut before it starts, and one that runs out
    of memory is trained again as two halves, each resumed from its members' last finished
    epoch (their checkpoints). Each job prints
    its line when its training ends. Ctrl-C stops the sweep after saving every job.
    """
    import torch

    from regbench.training import loop
    from regbench.training import population as pop

    outcomes: dict[int, JobOutcome] = {}
    actions = [summary.next_action(job.run_dir) for job in pending]
    members: list[tuple[int, Member]] = []
    alone: list[tuple[int, str]] = []
    for num, (job, action) in enumerate(zip(pending, actions, strict=True)):
        if action == "skip":
            outcomes[num] = JobOutcome(job.run_dir, summary.status(job.run_dir), 0)
            continue
        if action == "fresh":
            summary.clear(job.run_dir)
        try:
            m = member(job.cfg, job.run_dir, action == "resume", progress=not members)
        except Exception as e:  # a bad configuration fails its job alone
            outcomes[num] = outcome_of(job.run_dir, e, keep=True, resume=False)
            continue
        members.append((num, m))
        if population and (why := pop.unsupported(m.cfg)) is not None:
            alone.append((num, why))
    if alone:
        reasons = sorted({why for _, why in alone})
        terminal.warn(f"{len(alone)} of {len(pending)} jobs train on their own, not as "
                      f"population members ({'; '.join(reasons)}: not vectorised)")
    for num in sorted(outcomes):  # kept and invalid jobs first: the trainings take a while
        _print_line(pending[num], actions[num])
    lone = {num for num, _ in alone}
    together = [k for k, (num, _) in enumerate(members) if num not in lone]
    groups = ([[together[i] for i in g]
               for g in pop.split_groups([members[k][1].cfg for k in together], max_members)]
              if population else [])
    groups = [part for g in groups for part in fit_in_memory(g, [members[k][1].cfg for k in g])]
    groups += [[k] for k, (num, _) in enumerate(members) if not population or num in lone]
    queue = sorted(groups)
    while queue:
        group = queue.pop(0)
        nums = [members[k][0] for k in group]
        engine = pop.PopulationEngine() if population and len(group) > 1 else None
        with ExitStack() as logs:
            for n in nums:
                logs.enter_context(run_log(pending[n].run_dir))
            try:
                results: list[RunResult | Exception] = loop.train(
                    [members[k][1] for k in group], engine)
            except torch.cuda.OutOfMemoryError:  # a population: train it as two halves, resumed
                halves = [group[:len(group) // 2], group[len(group) // 2:]]
                free_cached_memory()
                terminal.warn(f"out of memory with {len(group)} population members: training "
                              f"them as populations of {len(halves[0])} and {len(halves[1])}, "
                              "each resumed from its last finished epoch")
                for k in group:
                    num = members[k][0]
                    members[k] = (num, member(pending[num].cfg, pending[num].run_dir, True,
                                              progress=False))
                queue[:0] = halves
                continue
            except Exception as e:  # the shared data failed to load: every member fails with it
                logging.getLogger("regbench").exception("training failed")
                results = [e] * len(nums)
        for n, result in zip(nums, results, strict=True):
            outcomes[n] = outcome_of(pending[n].run_dir, result, keep=True, resume=False)
            _print_line(pending[n], actions[n])
        stopped = [outcomes[n].exit_code for n in nums if outcomes[n].status == "interrupted"]
        if stopped:
            LAST.extend(outcomes.values())
            raise SweepInterrupted(max(stopped))  # the remaining jobs wait for sweep --resume
    ordered = [outcomes[n] for n in range(len(pending))]
    LAST.extend(ordered)
    return ordered


def fit_in_memory(group: list[int], cfgs: list[RegbenchConfig]) -> list[list[int]]:
    """A population cut into populations that fit the device's free memory (with
    regbench.training.memory's margin), with one line saying so; else unchanged."""
    from regbench.data.datasets import DATASET_INFO
    from regbench.training import memory
    from regbench.training.device import resolve_device

    if len(group) < 2 or cfgs[0].dataset.name not in DATASET_INFO:
        return [group]
    device = resolve_device(cfgs[0].trainer.device)
    channels, *size = DATASET_INFO[cfgs[0].dataset.name].shape
    need = memory.estimate(cfgs[0], channels, (size[0], size[1]), device)
    fit = memory.members_that_fit(need.total, memory.free_bytes(device))
    if fit is None or fit >= len(group):
        return [group]
    parts = [group[i:i + fit] for i in range(0, len(group), fit)]
    terminal.warn(f"a population of {len(group)} members needs about "
                  f"{memory.gib(need.total * len(group))} and {device} has "
                  f"{memory.gib(memory.free_bytes(device) or 0)} free: training it as "
                  f"{len(parts)} populations of at most {fit} "
                  f"({memory.gib(need.total)} per member, estimated)")
    return parts


def free_cached_memory() -> None:
    """Give the memory of a population that ran out of it back to the device."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _print_line(job: PendingJob, action: str) -> None:
    terminal.print_job_line(job.run_dir, action, job_name(job.run_dir, job.task_overrides))


def job_name(run_dir: Path, task_overrides: list[str]) -> str:
    """'[3/8] reg.dropout.fc=0.2 seed=1': the job's number and its values on the sweep axes."""
    values = job_label(task_overrides, os.environ.get(SWEEP_AXES_ENV, "").split())
    size = os.environ.get(SWEEP_SIZE_ENV)
    if run_dir.name.isdigit() and size:
        return f"[{int(run_dir.name) + 1}/{size}] {values or 'job ' + run_dir.name}"
    return values or f"job {run_dir.name}"


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def hydra_main(cfg: DictConfig) -> Any:
    """Run one job in the directory Hydra made for it (one of a sweep's under --multirun)."""
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    if hydra_cfg.mode == RunMode.MULTIRUN:
        outcome = run_sweep_jobs([PendingJob(cfg, run_dir, list(hydra_cfg.overrides.task))])[0]
        return job_result(outcome)
    outcome = execute(cfg, run_dir)
    LAST.append(outcome)
    return outcome.status


def search_objective(outcome: JobOutcome) -> float | None:
    """What a search maximizes: the val accuracy at the run's best epoch; None for a run
    that did not finish (the sweeper records it as pruned or failed, after its status)."""
    if outcome.status not in runs.FINISHED:
        return None
    best = summary.read(outcome.run_dir).best
    return None if best is None else best.val_acc


def job_result(outcome: JobOutcome) -> dict[str, Any]:
    """What a sweep job hands back to its sweeper: its status and its objective."""
    return {"status": outcome.status, "value": search_objective(outcome)}


def call_hydra(args: list[str], report: bool = True) -> int:
    """Run the @hydra.main entry with this argument vector; return the exit code.

    With ``report`` the errors of the jobs run in this process are printed, one line each.
    """
    from regbench.launch.composition import claim_plugin_names

    LAST.clear()
    claim_plugin_names()
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
