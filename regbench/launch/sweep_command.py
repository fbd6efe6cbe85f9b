"""What `regbench sweep` does: start a grid, a search or a settle, or go on with one, then
compare its jobs and, for a search asked to, confirm its best trials.

Every function returns the command's exit code; regbench.cli only parses and calls them.
"""

from __future__ import annotations

from pathlib import Path

from regbench.errors import ConfigError
from regbench.launch import confirm, settle, sweep
from regbench.launch.composition import NO_JOB_FLAGS, rewrite_experiment, split_args
from regbench.launch.jobs import call_hydra
from regbench.present import terminal
from regbench.store import runs, settle_record
from regbench.store.sweeps import SweepPlan


def start(args: list[str], baseline: str | None, settle_on: bool, max_seeds: int | None,
          max_time: str | None) -> int:
    """A new sweep of the typed overrides and flags (a settle with --settle or settle.*)."""
    task_overrides, flags = split_args(args)
    if any(f in NO_JOB_FLAGS for f in flags):  # Hydra takes these instead of --multirun
        return call_hydra([*flags, *rewrite_experiment(task_overrides)])
    task_overrides += settle.cli_overrides(settle_on, max_seeds, max_time)
    plan, first = sweep.check(task_overrides, flags)
    if first.settle.enabled:
        return settle.start(plan, first, task_overrides, flags, baseline)
    if max_seeds is not None or max_time is not None:
        raise ConfigError("--max-seeds and --max-time are budgets of a settle: add --settle")
    sweep_dir = runs.make_run_dir(first.output.root, f"{first.experiment}/sweeps")
    sweep.write_plan(sweep_dir, plan)
    what = f"{plan.trials} trials of an Optuna search" if plan.sweeper == "optuna" else f"{len(plan.jobs)} jobs"
    terminal.say(terminal.table_console(),
                 f"sweep: {what} over {', '.join(plan.axes) or 'no axis'} in {sweep_dir}")
    job_overrides = sweep.job_overrides(task_overrides)
    engine = sweep.default_launcher(job_overrides, plan.sweeper, sweep.device_type(first))
    if engine:
        print("sweep: on the GPU the jobs train as populations (hydra/launcher=population); "
              "hydra/launcher=basic trains them one at a time", flush=True)
    code = sweep.launch(sweep_dir, plan, flags, job_overrides + engine)
    if code in sweep.STOPPED:
        return code
    return end(sweep_dir, plan, baseline, flags, code)


def resume(resume_dir: Path, args: list[str], baseline: str | None) -> int:
    """Run the jobs of a sweep folder that are missing or did not finish (`sweep --resume`)."""
    if settle_record.is_settle(resume_dir):
        return settle.resume(resume_dir, args, baseline)
    plan, flags, hydra_args, todo = sweep.resume_plan(resume_dir, args)
    if plan.sweeper == "optuna":
        print(f"search {resume_dir}: {len(plan.jobs) - len(todo)} of {plan.trials} trials "
              "ended; running the rest", flush=True)
    else:
        print(f"sweep {resume_dir}: {len(plan.jobs) - len(todo)} of {len(plan.jobs)} jobs "
              f"finished; running {len(todo)}", flush=True)
    search = plan.sweeper == "optuna"  # its study, not sweep.json, knows the trials left
    if not search:  # the jobs' .hydra/ files are already there
        hydra_args.append("hydra.output_subdir=null")
    code = 0 if not todo and not search else sweep.launch(resume_dir, plan, flags, hydra_args)
    if code in sweep.STOPPED:
        return code
    return end(resume_dir, plan, baseline, flags, code)


def end(sweep_dir: Path, plan: SweepPlan, baseline: str | None, flags: list[str], code: int) -> int:
    """Compare the sweep's jobs; a search with hydra.sweeper.confirm.top > 0 is confirmed next."""
    code = sweep.finish(sweep_dir, plan, baseline) or code
    top = int(plan.confirm.get("top") or 0) if plan.sweeper == "optuna" else 0
    if top and confirm.candidates(sweep_dir, plan, 1):  # nothing to confirm when none finished
        code = max(code, confirm.run(sweep_dir, top, int(plan.confirm.get("seeds") or 10), [], flags))
    return code
