"""The winner confirmed: a search's best trials re-run with fresh seeds against the baseline.

A search runs each trial once, with one seed, on a noisy objective; the best of many such
trials is partly the luckiest, so its own score overestimates it (the winner's curse).
Confirmation re-runs the `top` best trials' configurations and the baseline (the search's
fixed settings with ``reg=none`` and the searched keys at their defaults) with `seeds`
seeds that no trial used, as one grid, through the search's launcher, and compares them
as ``summarize`` compares a grid (paired by seed, adjusted for the number of candidates).

The grid is a sweep folder of its own beside the search's, ``<sweep-id>-confirm``, so it
resumes like any sweep (``regbench sweep --resume``, or ``regbench confirm`` again) and
``summarize`` shows it alone. Its jobs are listed, not a product of axes, and launched by
``hydra/sweeper=regbench_list``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from regbench.errors import ConfigError
from regbench.launch import sweep
from regbench.launch.composition import split_args
from regbench.store import confirm_record, job_lists, run_config, runs, summary, sweeps
from regbench.store.confirm_record import ConfirmRecord
from regbench.store.sweeps import SweepPlan, job_dir, key_of, write_plan
from regbench.study import failures
from regbench.study.confirmation import Candidate, ConfirmRow, rows
from regbench.study.labels import job_label

SUFFIX = "-confirm"


def confirm_dir(sweep_dir: Path) -> Path:
    return sweep_dir.with_name(sweep_dir.name + SUFFIX)


def candidates(sweep_dir: Path, plan: SweepPlan, top: int) -> list[Candidate]:
    """The `top` finished trials with the best search-time score, best first."""
    scored = []
    for num, job in enumerate(plan.jobs):
        ended = summary.load(job_dir(sweep_dir, num))
        if ended is not None and ended.finished and ended.best is not None:
            values = [o for o in job if key_of(o) in plan.axes]
            scored.append(Candidate(num, values, float(ended.best.val_acc)))
    return sorted(scored, key=lambda c: -c.score)[:top]  # the objective is maximized


def fresh_seeds(sweep_dir: Path, plan: SweepPlan, n: int) -> list[int]:
    """n seeds after the largest one any trial used, so that no confirmation run repeats one."""
    used = [run_config.read(job_dir(sweep_dir, num)).get("seed", 0)
            for num in range(len(plan.jobs))
            if run_config.exists(job_dir(sweep_dir, num))]
    start = max((int(s) for s in used), default=0) + 1
    return list(range(start, start + n))


def grid(plan: SweepPlan, chosen: list[Candidate], seeds: list[int],
         baseline: list[str]) -> list[list[str]]:
    """The confirmation's jobs, seed by seed: the baseline, then each candidate.

    A candidate is its trial's overrides with a fresh seed; the baseline is the same
    overrides without the searched keys and the trial's seed, with ``baseline`` added.
    """
    def setting(trial: int, keep_searched: bool) -> list[str]:
        # the seed is replaced; trainer.progress is set again for every job of a sweep
        return [o for o in plan.jobs[trial] if key_of(o) not in ("seed", "trainer.progress")
                and (keep_searched or key_of(o) not in plan.axes)]

    base = setting(chosen[0].trial, keep_searched=False) + list(baseline)
    jobs = []
    for seed in seeds:
        jobs.append([*base, f"seed={seed}"])
        jobs += [[*setting(c.trial, keep_searched=True), f"seed={seed}"] for c in chosen]
    return jobs


def launcher_overrides(args: list[str]) -> list[str]:
    """The search's choice of launcher and its settings, for the confirmation's jobs."""
    return [o for o in args if key_of(o).startswith(("hydra/launcher", "hydra.launcher"))]


def prepare(sweep_dir: Path, top: int, seeds: int, extra: list[str], flags: list[str]
            ) -> tuple[Path, SweepPlan, list[Candidate]]:
    """Write the confirmation's jobs into its folder and check them; (folder, plan, candidates).

    Run again, it finds the same jobs in the folder (a finished job is kept, an
    interrupted one resumes); other settings than the first time's are refused.
    """
    plan = sweep.read_plan(sweep_dir)  # the search's plugins imported again
    if plan.sweeper != "optuna":
        raise ConfigError(f"{sweep_dir}: not a search (hydra/sweeper=optuna); confirm re-runs "
                          "a search's best trials")
    if top < 1 or seeds < 2:
        raise ConfigError(f"confirm top={top} seeds={seeds}: top must be >= 1 and seeds >= 2 "
                          "(a difference paired by seed needs two seeds)")
    sweep.record_trials(sweep_dir, plan)
    chosen = candidates(sweep_dir, plan, top)
    if not chosen:
        raise ConfigError(f"{sweep_dir}: no trial of the search finished; nothing to confirm")
    baseline = [str(o) for o in plan.confirm.get("baseline", ["reg=none"])]
    jobs = grid(plan, chosen, fresh_seeds(sweep_dir, plan, seeds), baseline)
    folder = confirm_dir(sweep_dir)
    folder.mkdir(exist_ok=True)
    record = ConfirmRecord(str(sweep_dir), top, seeds, baseline, [asdict(c) for c in chosen])
    previous = folder / confirm_record.JOBS_FILE
    if previous.exists() and job_lists.read(previous) != jobs:
        raise ConfigError(f"{folder}: a confirmation with other settings is there (see its "
                          f"{confirm_record.FILE}); remove the folder to confirm anew")
    confirm_record.write(folder, record)
    job_lists.write(previous, jobs)
    args = ["hydra/sweeper=regbench_list", f"hydra.sweeper.jobs_file='{previous}'",
            *launcher_overrides(plan.args), *extra]
    checked, _ = sweep.check(args, flags)
    # each job is named by the searched values, the baseline's settings and the seed
    checked.axes = [*plan.axes, *(key_of(o) for o in baseline), "seed"]
    write_plan(folder, checked)
    return folder, checked, chosen


def compare_grid(folder: Path, plan: SweepPlan, chosen: list[Candidate],
                 baseline: list[str]) -> tuple[Any, list[ConfirmRow]]:
    """Compare the confirmation's finished runs; (comparison or None, table rows)."""
    from regbench.study import compare

    per_seed = len(chosen) + 1  # jobs per seed: the baseline, then each candidate
    dirs = [job_dir(folder, n) for n in range(len(plan.jobs))]
    done = [d for d in dirs if summary.status(d) in runs.FINISHED]
    if not done:
        return None, []
    first = compare.compare(done)
    baseline_dirs = dirs[0::per_seed]
    base_label = next((lab for p, lab in zip(first.runs["path"], first.runs["label"], strict=True)
                       if Path(p) in baseline_dirs), None)
    comp = compare.compare(done, base_label) if base_label else first
    candidate_dirs = {c.trial: dirs[k + 1::per_seed] for k, c in enumerate(chosen)}
    return comp, rows(comp, chosen, baseline, baseline_dirs, candidate_dirs)


def run(sweep_dir: Path, top: int, seeds: int, extra: list[str], flags: list[str]) -> int:
    """Confirm a search's best trials: run (or finish) the grid, show the table; exit code."""
    from regbench.present import plots, terminal
    from regbench.present.confirmation import print_confirmation

    folder, plan, chosen = prepare(sweep_dir, top, seeds, extra, flags)
    todo = sweep.pending(folder, plan)
    print(f"confirm: the best {len(chosen)} trials and the baseline, {seeds} fresh seeds each: "
          f"{len(plan.jobs)} jobs ({len(plan.jobs) - len(todo)} done) in {folder}", flush=True)
    code = sweep.launch(folder, plan, flags, sweep.job_overrides(plan.args)) if todo else 0
    if code in sweep.STOPPED:
        return code
    baseline = confirm_record.read(folder).baseline
    comp, table = compare_grid(folder, plan, chosen, baseline)
    unfinished = [(job_label(plan.jobs[n], plan.axes), summary.status(job_dir(folder, n)))
                  for n in sweep.pending(folder, plan)]
    dirs = [job_dir(folder, n) for n in range(len(plan.jobs))]
    diverged = failures.diverged_line(
        sweep.diverged_jobs(plan, dirs, [summary.status(d) for d in dirs]), len(dirs), "confirmed")
    if diverged:
        terminal.err.print(f"regbench: {diverged}", soft_wrap=True)
    for name, status in unfinished:
        if status != failures.DIVERGED:
            terminal.err.print(f"regbench: confirmation job {name}: {status} (not in the table)",
                               soft_wrap=True)
    if comp is None:
        terminal.err.print("regbench: no confirmation job finished: nothing to compare",
                           soft_wrap=True)
        return 1
    sweeps.write_comparison(folder, comp.table)
    plots.make_plots(comp, folder)
    path = confirm_record.write_table(folder, [{**asdict(r), "overestimate": r.overestimate}
                                               for r in table])
    print_confirmation(table, comp.comparisons)
    print(f"table: {path}; every run: regbench summarize {folder}", flush=True)
    return 1 if unfinished else code


def command(sweep_dir: Path, top: int | None, seeds: int | None, args: list[str]) -> int:
    """`regbench confirm`: the search's own top and seeds unless given; `args` may add Hydra
    settings (a launcher), never the configurations' keys."""
    extra, flags = split_args(args)
    task = [o for o in extra if not key_of(o).startswith("hydra")]
    if task:
        raise ConfigError(f"{task[0]}: confirm re-runs the search's configurations; only Hydra "
                          "settings such as hydra/launcher=joblib may be added")
    plan = sweep.read_plan(sweep_dir)
    top = top if top is not None else int(plan.confirm.get("top") or 3)
    seeds = seeds if seeds is not None else int(plan.confirm.get("seeds") or 10)
    return run(sweep_dir, top, seeds, extra, flags)
