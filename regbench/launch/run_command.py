"""What `regbench run` and `regbench resume` do: train one configuration into a new run
folder, or the rest of an interrupted one.

Each function returns the command's exit code; regbench.cli only parses and calls them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from regbench.launch import jobs
from regbench.launch.composition import (NO_JOB_FLAGS, compose, refuse_sweep_preset,
                                         rewrite_experiment, split_args)
from regbench.present.terminal import err
from regbench.store import run_config, runs, summary
from regbench.training import plugins
from regbench.training.signals import Terminated, sigterm_as_interrupt


def run(args: list[str]) -> int:
    """Train the configuration of `args` (overrides and Hydra flags) in a new run folder."""
    task_overrides, flags = split_args(args)
    task_overrides = rewrite_experiment(task_overrides)
    if any(f in NO_JOB_FLAGS for f in flags):
        return jobs.call_hydra(flags + task_overrides)

    cfg, schema = compose(task_overrides, flags)
    refuse_sweep_preset(cfg)
    run_dir = runs.make_run_dir(schema.output.root, schema.experiment)
    try:
        with sigterm_as_interrupt():
            code = jobs.call_hydra(flags + task_overrides + [f"hydra.run.dir='{run_dir}'"])
    except KeyboardInterrupt as e:  # before training began, or after it: left to resume
        terminated = isinstance(e, Terminated)
        jobs.interrupted_before_start(schema, run_dir, "SIGTERM" if terminated else "SIGINT")
        if terminated:
            err.print("regbench: terminated (SIGTERM)")
            return 143
        raise
    if code != 0 and not any((run_dir / f).exists() for f in (runs.METRICS_FILE, runs.SUMMARY_FILE)):
        shutil.rmtree(run_dir, ignore_errors=True)  # the run never started: leave no husk
    return code


def resume(run_dir: Path) -> int:
    """Train an interrupted run on from its last finished epoch, with the plugins it had."""
    runs.check_run_dir(run_dir)
    state = summary.status(run_dir)
    if state in (*runs.FINISHED, runs.PRUNED):  # a pruned trial ended too
        err.print(f"regbench: {run_dir} already finished ({state}); nothing to resume",
                  soft_wrap=True)
        return 0
    cfg = run_config.load(run_dir)
    recorded = summary.load(run_dir)
    plugins.load(plugins.modules_of(recorded.plugins if recorded else []))  # as the run had them
    outcome = jobs.execute(cfg, run_dir, resume=True)
    if outcome.message:
        err.print(f"regbench: error: {outcome.message}", soft_wrap=True)
    return outcome.exit_code
