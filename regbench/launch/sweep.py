"""Sweeps: expand a Hydra multirun into its jobs, record them, and find what is left to run.

A sweep folder holds ``sweep.json`` (the overrides as typed and every job's overrides, in
Hydra's job order) and one run folder per job, named by the job's number. The jobs are
expanded here exactly as Hydra's basic sweeper expands them, so that every job can be
checked before any is launched, and a resumed sweep can tell which folders are finished.

A search (``hydra/sweeper=optuna``, regbench's Optuna sweeper plugin) picks its trials as
it goes, so its jobs are known only afterwards: before it starts, each searched key is
checked at the ends of its range (and each of its choices); afterwards sweep.json lists the
trials that ran. Trials are ordinary run folders named by their trial number; the
objective is the val accuracy at the run's best epoch (maximized); a trial stopped by the
pruner is 'pruned', one whose run did not finish is a failed trial. The study is kept in
the sweep folder (optuna.db), so a search resumes like a grid.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regbench.store import job_lists, runs, summary, sweeps
from regbench.store.sweeps import SweepPlan, job_dir, write_plan
from regbench.present import terminal
from regbench.launch import search
from regbench.launch.composition import (claim_plugin_names, compose, explain, rewrite_experiment,
                                         split_args)
from regbench.config.schema import check as config_check
from regbench.errors import ConfigError, RegbenchError
from regbench.launch.jobs import SWEEP_AXES_ENV, SWEEP_SIZE_ENV, SweepInterrupted, call_hydra
from regbench.study import failures
from regbench.study.labels import job_label, key_of
from regbench.training import plugins

SWEEP_FILE = runs.SWEEP_FILE
MAX_MEMBERS = "hydra.launcher.max_members"
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
OPTUNA_SWEEPER = "hydra_plugins.regbench_optuna.optuna_sweeper.OptunaSweeper"
LIST_SWEEPER = "hydra_plugins.regbench_list.list_sweeper.ListSweeper"  # a listed grid (confirm)
INTERRUPTED = 130  # exit code of a sweep stopped by Ctrl-C
STOPPED = (INTERRUPTED, 143)  # ... by Ctrl-C or by a SIGTERM its jobs handled


@dataclass
class Expansion:
    """A sweep's jobs (for a search: the probe jobs that check its ranges) and settings."""

    jobs: list[list[str]]
    hydra_overrides: list[str]
    sweeper: str = "basic"
    trials: int = 0
    confirm: dict[str, Any] = field(default_factory=dict)


def expand(overrides: list[str]) -> tuple[list[list[str]], list[str]]:
    """(each job's task overrides, Hydra's own overrides), as Hydra's sweeper expands them."""
    e = expand_sweep(overrides)
    return e.jobs, e.hydra_overrides


def expand_sweep(overrides: list[str]) -> Expansion:
    """The sweep's jobs as Hydra's basic sweeper expands them, or a search's probe jobs.

    ``hydra.sweeper.params`` set by an experiment preset come first, then the command line,
    which wins on a shared key; ``range()``, ``glob()`` and comma lists all become axes.
    """
    from hydra import initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode

    from regbench.config.schema import CONF_DIR

    claim_plugin_names()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        cfg = loader.load_configuration("config", overrides, run_mode=RunMode.MULTIRUN)
        target = cfg.hydra.sweeper.get("_target_")
        if target not in (BASIC_SWEEPER, OPTUNA_SWEEPER, LIST_SWEEPER):
            raise ConfigError(f"hydra/sweeper: {target!r} is not supported; regbench sweep "
                              "runs grids (Hydra's basic sweeper) and searches (hydra/sweeper=optuna)")
        parser = OverridesParser.create(config_loader=loader)
        parsed = parser.parse_overrides(overrides)
        hydra_overrides = [o.input_line or "" for o in parsed if o.is_hydra_override()]
        task = [o.input_line or "" for o in parsed if not o.is_hydra_override()]
        if target == LIST_SWEEPER:  # the jobs are listed in a file
            listed = job_lists.read(Path(str(cfg.hydra.sweeper.jobs_file)))
            return Expansion([[*job, *task] for job in listed], hydra_overrides, "jobs")
        params = [f"{k}={v}" for k, v in (cfg.hydra.sweeper.get("params") or {}).items()]
        if target == OPTUNA_SWEEPER:
            from omegaconf import OmegaConf

            trials = cfg.hydra.sweeper.n_trials
            config_check(isinstance(trials, int) and trials >= 1, "hydra.sweeper.n_trials",
                         trials, "an integer >= 1 (the number of trials to run)")
            confirm = OmegaConf.to_container(cfg.hydra.sweeper.confirm, resolve=True)
            assert isinstance(confirm, dict)
            return Expansion(probe_jobs(params + task), hydra_overrides, "optuna", trials,
                             {str(k): v for k, v in confirm.items()})
        swept = parser.parse_overrides(params + task)
        check_axes(swept, loader)
        (jobs,) = BasicSweeper.split_arguments(swept, None)
    return Expansion([list(j) for j in jobs], hydra_overrides)


def check_axes(parsed: list[Any], loader: Any) -> None:
    """ConfigError naming the first sweep axis a grid cannot expand: a search range
    (interval() without the Optuna sweeper) or one with no value (range(5,1), glob(zz*))."""
    for o in parsed:
        if o.is_sweep_override() and o.is_interval_sweep():
            raise ConfigError(f"{o.input_line}: interval() is a search range; add "
                              "hydra/sweeper=optuna to search it, or give a grid's values "
                              "(a comma list or range())")
        if not (o.is_sweep_override() and o.is_discrete_sweep()) or list(o.sweep_string_iterator()):
            continue
        key = o.get_key_element()
        line = o.input_line or key
        if "glob(" in line:
            names = loader.get_group_options(key)
            allowed = (f"a pattern that matches one of {', '.join(names)}" if names
                       else f"a key with presets (a config group); {key} has none")
        elif "range(" in line:
            allowed = "range(start,stop[,step]) with start < stop for a positive step, e.g. range(0,3)"
        else:
            allowed = "at least one value, e.g. a comma list such as 0,1,2"
        raise ConfigError(f"{line}: the sweep axis {key} has no value; allowed: {allowed}")


def probe_jobs(params: list[str]) -> list[list[str]]:
    """Jobs that try each searched key's probe values with the other keys at their first."""
    space = search.parse_params(params)
    probes = {k: [search.override_value(v) for v in search.probe_values(d)]
              for k, d in space.distributions.items()}
    first = {k: v[0] for k, v in probes.items()} | space.fixed
    jobs = [[f"{k}={v}" for k, v in first.items()]]
    for key, values in probes.items():
        jobs += [[f"{k}={value if k == key else v}" for k, v in first.items()] for value in values[1:]]
    return jobs


def sweep_axes(jobs: list[list[str]]) -> list[str]:
    """Keys whose value differs between jobs, in the order they appear."""
    values: dict[str, set[str]] = {}
    for job in jobs:
        for o in job:
            values.setdefault(key_of(o), set()).add(o)
    return [k for k, v in values.items() if len(v) > 1]


def plan(args: list[str], flags: list[str], overrides: list[str],
         check: Callable[[list[str]], Any]) -> tuple[SweepPlan, Any]:
    """Expand the sweep and check every job's configuration; returns (plan, first job's config).

    ``args`` are the overrides as typed (kept for resume), ``overrides`` the same after the
    CLI's rewriting; ``check`` composes and validates one job, raising ConfigError.
    """
    for o in overrides:
        if key_of(o) == "hydra.sweep" or key_of(o).startswith("hydra.sweep."):
            raise ConfigError(f"{o}: regbench sweep chooses the folder itself "
                              "(results/<experiment>/sweeps/<sweep-id>/<job>); set output.root "
                              "or experiment instead")
        if key_of(o) == MAX_MEMBERS:  # the population launcher's bound, checked before any job
            value = o.split("=", 1)[1]
            config_check(value.isdigit() and int(value) >= 1, MAX_MEMBERS, value, "an integer >= 1")
    e = expand_sweep(overrides)
    if e.sweeper == "optuna" and importlib.util.find_spec("optuna") is None:
        raise ConfigError("hydra/sweeper=optuna needs optuna: pip install 'regbench[search]'")
    if "hydra/sweeper/sampler=cmaes" in overrides and importlib.util.find_spec("cmaes") is None:
        raise ConfigError("hydra/sweeper/sampler=cmaes needs the cmaes package: pip install cmaes")
    if e.sweeper == "optuna" and not sweep_axes(e.jobs):
        raise ConfigError("hydra/sweeper=optuna: nothing to search (no interval(), range() or "
                          "comma list among the overrides), so every trial would train the same "
                          "configuration; add one, e.g. 'reg.dropout.fc=interval(0,0.8)'")
    sweep_plan = SweepPlan(args=args, flags=flags, jobs=e.jobs, axes=sweep_axes(e.jobs),
                           sweeper=e.sweeper, trials=e.trials, confirm=e.confirm,
                           plugins=plugins.recorded())
    first = None
    for num, job in enumerate(e.jobs):
        try:
            schema = check(job + e.hydra_overrides)
        except ConfigError as err:
            what = f"job {num}" if e.sweeper == "basic" else "search range"
            raise ConfigError(f"{what} ({job_label(sweep_plan.jobs[num], sweep_plan.axes) or 'no axis'}): {err}") from err
        first = first if first is not None else schema
    if e.sweeper == "optuna":
        sweep_plan.jobs = []  # the trials are recorded once they have run
    return sweep_plan, first


def read_plan(sweep_dir: Path) -> SweepPlan:
    """The sweep recorded in sweep_dir, with the plugins its jobs used imported again."""
    sweep_plan = sweeps.read_plan(sweep_dir)
    plugins.load(plugins.modules_of(sweep_plan.plugins))
    return sweep_plan


def record_trials(sweep_dir: Path, sweep_plan: SweepPlan) -> None:
    """A search's trials as jobs, from each trial folder's .hydra/overrides.yaml, into sweep.json."""
    nums = sorted(int(d.name) for d in sweep_dir.iterdir() if d.is_dir() and d.name.isdigit())
    jobs = [job_lists.read_overrides(job_dir(sweep_dir, n)) or [] for n in range(max(nums, default=-1) + 1)]
    sweep_plan.jobs = jobs
    write_plan(sweep_dir, sweep_plan)


def pending(sweep_dir: Path, sweep_plan: SweepPlan) -> list[int]:
    """Numbers of the jobs that are missing or did not finish."""
    return [n for n in range(len(sweep_plan.jobs))
            if summary.next_action(job_dir(sweep_dir, n)) != "skip"]


def job_overrides(args: list[str]) -> list[str]:
    """The overrides as typed, rewritten for Hydra, with progress bars off by default.

    ``hydra.sweeper.sampler=NAME`` and ``hydra.sweeper.pruner=NAME`` (a search's sampler
    and pruner by name) become the config-group choices ``hydra/sweeper/sampler=NAME`` and
    ``hydra/sweeper/pruner=NAME`` that the Optuna plugin defines.
    """
    overrides = [re.sub(r"^hydra\.sweeper\.(sampler|pruner)=(\w+)$", r"hydra/sweeper/\1=\2", o)
                 for o in rewrite_experiment(args)]
    if not any(key_of(o) == "trainer.progress" for o in overrides):
        overrides.append("trainer.progress=false")  # one line per job instead of bars
    return overrides


def default_launcher(overrides: list[str], sweeper: str, device_type: str) -> list[str]:
    """``hydra/launcher=population`` for a grid on a GPU unless a launcher is chosen.

    On a GPU a small CNN's training step is mostly kernel-launch overhead, so training the
    grid as populations pays; on a CPU, already compute-bound, one job after another is
    faster and Hydra's basic launcher stays the default.
    """
    chosen = any(key_of(o) in ("hydra/launcher", "hydra.launcher") for o in overrides)
    if chosen or sweeper != "basic" or device_type != "cuda":
        return []
    return ["hydra/launcher=population"]


def check(args: list[str], flags: list[str]) -> tuple[SweepPlan, Any]:
    """Expand the sweep and check every job; ConfigError (exit 2) before anything runs."""
    overrides = job_overrides(args)
    try:
        return plan(args, flags, overrides, check=lambda o: compose(o)[1])
    except RegbenchError:
        raise
    except Exception as e:
        raise ConfigError(explain(e, overrides)) from e


def resume_plan(sweep_dir: Path, args: list[str]) -> tuple[SweepPlan, list[str], list[str], list[int]]:
    """(recorded plan, flags, overrides for Hydra, pending job numbers) of a sweep to resume."""
    recorded = read_plan(sweep_dir)
    extra, flags = split_args(args)
    task = [o for o in extra if not key_of(o).startswith("hydra")]
    if task:
        raise ConfigError(f"{task[0]}: --resume runs the recorded jobs unchanged; only Hydra "
                          "settings such as hydra/launcher=joblib may be added")
    checked, first = check(recorded.args + extra, recorded.flags + flags)
    if recorded.sweeper == "optuna":  # the study in the sweep folder knows what is left
        recorded.trials, recorded.confirm = checked.trials, checked.confirm
    elif checked.jobs != recorded.jobs:
        raise ConfigError(f"{sweep_dir}: its jobs expand differently now (were the presets "
                          "changed?); start a new sweep instead")
    overrides = job_overrides(recorded.args + extra)
    overrides += default_launcher(overrides, recorded.sweeper, device_type(first))
    return recorded, recorded.flags + flags, overrides, pending(sweep_dir, recorded)


def device_type(cfg: Any) -> str:
    """'cuda', 'mps' or 'cpu': where a job with this configuration trains."""
    from regbench.training.device import resolve_device

    return resolve_device(cfg.trainer.device).type


FULL_ERROR = "HYDRA_FULL_ERROR"  # set: Hydra re-raises an error instead of printing it


def launch(sweep_dir: Path, sweep_plan: SweepPlan, flags: list[str], overrides: list[str]) -> int:
    """Run the multirun into sweep_dir; Ctrl-C stops it with a hint on resuming."""
    job_env = [f"++hydra.job.env_set.{SWEEP_AXES_ENV}='{' '.join(sweep_plan.axes)}'",
               f"++hydra.job.env_set.{SWEEP_SIZE_ENV}={sweep_plan.size}"]
    if plugins.from_env():  # every launcher's workers import them before they read a config
        job_env.append(f"++hydra.job.env_set.{plugins.ENV}='{','.join(plugins.from_env())}'")
    if sweep_plan.sweeper == "optuna":
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # the jobs' lines say enough
    # Ray folds similar log lines of its workers into one; every job's line should show
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    full_error = os.environ.get(FULL_ERROR)
    os.environ[FULL_ERROR] = "1"  # a launcher's exception reaches us, not Hydra's traceback
    try:
        return call_hydra(["--multirun", *flags, *overrides, *job_env,
                           f"hydra.sweep.dir='{sweep_dir}'"], report=False)
    except Exception as e:
        raise launcher_error(e, sweep_dir, sweep_plan, overrides) from e
    except KeyboardInterrupt as e:
        if sweep_plan.sweeper == "optuna":  # the study in its storage resumes too
            record_trials(sweep_dir, sweep_plan)
        terminal.err.print(f"regbench: sweep interrupted; continue it with: regbench sweep "
                           f"--resume {sweep_dir}", soft_wrap=True)
        return e.exit_code if isinstance(e, SweepInterrupted) else INTERRUPTED
    finally:
        if full_error is None:
            os.environ.pop(FULL_ERROR, None)
        else:
            os.environ[FULL_ERROR] = full_error


def launcher_error(e: Exception, sweep_dir: Path, sweep_plan: SweepPlan,
                   overrides: list[str]) -> ConfigError:
    """One line for a launcher (or sweeper) that failed: where no job started, resuming
    would fail the same way, so only once some job ran is --resume the advice."""
    name = next((o.split("=", 1)[1] for o in reversed(overrides)
                 if key_of(o) == "hydra/launcher"), "basic")
    what = str(e) if isinstance(e, RegbenchError) else " ".join(f"{type(e).__name__}: {e}".split())
    started = any((job_dir(sweep_dir, n) / runs.SUMMARY_FILE).exists()
                  for n in range(len(sweep_plan.jobs)))
    if started:
        return ConfigError(f"hydra/launcher={name} failed during the sweep: {what}; once it "
                           f"works, continue with: regbench sweep --resume {sweep_dir}")
    return ConfigError(f"hydra/launcher={name} cannot start: {what}; run the sweep where it "
                       "can, or choose another launcher (hydra/launcher=joblib runs the jobs "
                       "on this machine)")


def diverged_jobs(plan: SweepPlan, dirs: list[Path], status: list[str]
                  ) -> list[tuple[str, int | None]]:
    """(label without the seed, seed) of each diverged job, for failures.diverged_line."""
    axes = [a for a in plan.axes if a != "seed"]
    out = []
    for n, st in enumerate(status):
        if st == failures.DIVERGED:
            s = summary.load(dirs[n])
            out.append((job_label(plan.jobs[n], axes) or f"job {n}", s.seed if s else None))
    return out


def finish(sweep_dir: Path, sweep_plan: SweepPlan, baseline: str | None,
           comparison: Any = None) -> int:
    """Compare the finished jobs, write summary.csv and the figures, show it all; exit code.

    comparison: the finished jobs' comparison when the caller made it (a settle judges
    its runs sequentially, regbench.study.settled).
    """
    from regbench.study import compare
    from regbench.present import plots

    if sweep_plan.sweeper == "optuna":
        record_trials(sweep_dir, sweep_plan)
    dirs = [job_dir(sweep_dir, n) for n in range(len(sweep_plan.jobs))]
    status = [summary.status(d) for d in dirs]
    done = [d for d, st in zip(dirs, status, strict=True) if st in runs.FINISHED]
    pruned = [d for d, st in zip(dirs, status, strict=True) if st == runs.PRUNED]
    failed = [d for d, st in zip(dirs, status, strict=True)
              if st not in (*runs.FINISHED, runs.PRUNED, summary.MISSING)]
    comp, figures = comparison, []
    if comp is None and done:  # pruned trials are listed under the table, never averaged in it
        try:
            comp = compare.compare(done + pruned, baseline, named_with=failed)
        except ConfigError as e:
            terminal.err.print(f"regbench: {e}; comparing without a baseline", soft_wrap=True)
            comp = compare.compare(done + pruned, named_with=failed)
    if comp is not None:
        sweeps.write_comparison(sweep_dir, comp.table)
        figures = plots.make_plots(comp, sweep_dir)
    unfinished = [
        (job_label(sweep_plan.jobs[n], sweep_plan.axes) or f"job {n}", st,
         s.why_unfinished() if (s := summary.load(dirs[n])) else
         "no summary.json: never started, or killed", dirs[n])
        for n, st in enumerate(status) if st not in runs.FINISHED and st != runs.PRUNED]
    what = "scored" if sweep_plan.sweeper == "optuna" else "compared"
    diverged = failures.diverged_line(diverged_jobs(sweep_plan, dirs, status), len(dirs), what)
    terminal.print_sweep_end(sweep_dir, comp, figures, unfinished, sweep_plan.size,
                             diverged=diverged)
    if comp is None:
        what = "trial of the search" if sweep_plan.sweeper == "optuna" else "job of the sweep"
        terminal.err.print(f"regbench: no {what} finished: nothing to compare", soft_wrap=True)
        return 1
    return 1 if unfinished else 0
