"""`regbench sweep --settle`: a grid that adds seeds in rounds until every comparison is decided.

Round 1 runs every configuration with the first planned number of seeds (5). After each
round the runs are compared with the baseline by the sequential design of
regbench.study.sequential (repeated confidence intervals, valid however many rounds run);
the next round adds seeds (10, 20, 40) only to the configurations with a comparison still
undecided, and to the baseline, so every comparison stays paired by seed. It stops when
every comparison on the settle's metrics is established or equivalent, when the seeds per
configuration reach the budget (max_seeds), or once the wall-time budget is spent; a
question left undecided is a finding, reported with its seeds-needed estimate.

A round is one Hydra multirun of the jobs it adds, through whichever launcher the sweep
uses (``hydra/sweeper=regbench_list`` launches the jobs listed in its roundN.json). The
sweep folder holds sweep.json (every job so far), settle.json (the design and each round)
and a folder per job; `regbench sweep --resume` picks up from any point: a round whose jobs did not all
finish is relaunched (finished jobs are kept), a finished round is analysed, the next one
planned. Every decision is recomputed from the runs' files, so a resumed settle takes the
same path as one that was never interrupted.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from regbench.config.schema import check as config_check
from regbench.errors import ConfigError
from regbench.launch import sweep
from regbench.launch.composition import compose, split_args
from regbench.present import settle_view, terminal
from regbench.store import job_lists, run_config, runs, settle_record, summary
from regbench.store.settle_record import OUT_OF_SEEDS, OUT_OF_TIME, RUNNING, SETTLED, Round, SettleRecord
from regbench.study import compare, equivalence, labels, sequential, settled

SEED = "seed"
LIST_SWEEPER = "hydra/sweeper=regbench_list"  # launches a listed batch of jobs
TIME_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600}


def cli_overrides(on: bool, max_seeds: int | None, max_time: str | None) -> list[str]:
    """The settle.* overrides that `sweep --settle --max-seeds N --max-time T` stand for."""
    out = ["settle.enabled=true"] if on else []
    if max_seeds is not None:
        out.append(f"settle.max_seeds={max_seeds}")
    if max_time is not None:
        out.append(f"settle.max_time_s={seconds(max_time)}")
    return out


def seconds(text: str) -> float:
    """'900', '15m', '1.5h' -> seconds; ConfigError naming --max-time otherwise."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|min|h)?\s*", text)
    if not m or float(m.group(1)) <= 0:
        raise ConfigError(f"--max-time {text!r} is not allowed: a positive duration such as "
                          "900 (seconds), 15m or 2h")
    return float(m.group(1)) * TIME_UNITS[m.group(2) or "s"]


def check_settings(s: Any) -> None:
    """ConfigError (exit 2) naming the first settle.* value a settle cannot run with."""
    metrics = list(s.metrics)
    config_check(bool(metrics) and all(m in compare.DIFFERENCES for m in metrics), "settle.metrics",
                 metrics, "a non-empty list of " + ", ".join(compare.DIFFERENCES))
    config_check(s.start_seeds >= 2, "settle.start_seeds", s.start_seeds,
                 "an integer >= 2 (an interval needs 2 pairs)")
    config_check(s.max_seeds >= s.start_seeds, "settle.max_seeds", s.max_seeds,
                 f"an integer >= settle.start_seeds ({s.start_seeds})")
    config_check(s.growth > 1, "settle.growth", s.growth, "a number > 1")
    config_check(0 < s.alpha < 1, "settle.alpha", s.alpha, "a number in (0, 1)")
    config_check(s.spending in sequential.SPENDING, "settle.spending", s.spending,
                 "one of " + ", ".join(sequential.SPENDING))
    config_check(s.margin is None or s.margin > 0, "settle.margin", s.margin,
                 "a positive number of accuracy points, or null for the defaults")
    config_check(s.max_time_s is None or s.max_time_s > 0, "settle.max_time_s", s.max_time_s,
                 "a positive number of seconds, or null")


def without_seed(job: list[str]) -> list[str]:
    return [o for o in job if sweep.key_of(o) != SEED]


def grouping_keys(schema: Any) -> dict[str, Any]:
    """A composed configuration as the dotted keys compare groups runs by."""
    from omegaconf import OmegaConf

    flat = run_config.flatten(OmegaConf.to_container(OmegaConf.structured(schema)))
    return {k: v for k, v in flat.items()
            if k not in compare.IGNORED_KEYS and not k.startswith(compare.IGNORED_SECTIONS)}


def hydra_only(overrides: list[str]) -> list[str]:
    """The Hydra settings among overrides (launcher, its options): what every round passes."""
    return [o for o in overrides if sweep.key_of(o).startswith("hydra")]


def start(plan: sweep.SweepPlan, first: Any, args: list[str], flags: list[str],
          baseline: str | None) -> int:
    """Record a new settle of the checked sweep (plan, its first job's config), run its
    rounds; the exit code."""
    check_settings(first.settle)
    if plan.sweeper != "basic":
        raise ConfigError("--settle adds seeds to a grid of configurations; a search "
                          "(hydra/sweeper=optuna) picks its own trials: drop one of the two")
    configs = list({tuple(without_seed(job)): None for job in plan.jobs})
    if len(configs) < 2:
        raise ConfigError("--settle compares configurations with a baseline: give at least two, "
                          "e.g. reg.dropout.fc=0.0,0.5")
    hydra = hydra_only(sweep.job_overrides(args))
    flats = [grouping_keys(compose([*c, *hydra])[1]) for c in configs]
    names = labels.name_configs(flats, [list(c) for c in configs]).labels  # as summarize names them
    base, note = compare.choose_baseline(baseline, dict(zip(names, flats, strict=True)),
                                         first.baseline)
    if base is None:
        raise ConfigError(f"--settle compares every configuration with a baseline: {note}")
    s = first.settle
    record = SettleRecord(
        metrics=list(s.metrics), margins=equivalence.margins(s.margin), alpha=s.alpha,
        spending=s.spending, looks=sequential.planned_looks(s.start_seeds, s.growth, s.max_seeds),
        max_time_s=s.max_time_s, configs=[list(c) for c in configs], labels=names,
        baseline=names.index(base))
    sweep_dir = runs.make_run_dir(first.output.root, f"{first.experiment}/sweeps")
    plan.sweeper, plan.jobs = "settle", []
    plan.axes = [*sweep.sweep_axes([list(c) for c in configs]), SEED]
    sweep.write_plan(sweep_dir, plan)
    settle_record.write(sweep_dir, record)
    dropped = [o for o in args if sweep.key_of(o) == SEED]
    if dropped:
        terminal.warn(f"{' '.join(dropped)} is not used: a settle chooses the seeds (0, 1, ...)")
    terminal.say_measures(terminal.table_console(), settle_view.header(record, sweep_dir))
    launcher = sweep.default_launcher(hydra, "basic", sweep.device_type(first))
    return drive(sweep_dir, plan, record, flags, [*hydra, *launcher], baseline)


def resume(sweep_dir: Path, args: list[str], baseline: str | None) -> int:
    """Continue a settle from wherever it stopped; only Hydra settings may be added."""
    plan = sweep.read_plan(sweep_dir)
    record = settle_record.read(sweep_dir)
    extra, flags = split_args(args)
    task = [o for o in extra if not sweep.key_of(o).startswith("hydra")]
    if task:
        raise ConfigError(f"{task[0]}: --resume continues the recorded settle unchanged; only "
                          "Hydra settings such as hydra/launcher=joblib may be added")
    _, first = sweep.check(plan.args + extra, plan.flags + flags)
    planned = sum(len(jobs) for r in record.rounds for jobs in r.jobs)
    if len(plan.jobs) != planned:  # stopped between writing sweep.json and settle.json
        plan.jobs = plan.jobs[:planned]
        sweep.write_plan(sweep_dir, plan)
    hydra = hydra_only(sweep.job_overrides(plan.args + extra))
    launcher = sweep.default_launcher(hydra, "basic", sweep.device_type(first))
    done = sum(r.done for r in record.rounds)
    print(f"settle {sweep_dir}: {done} of {len(record.rounds)} planned rounds analysed; "
          f"status {record.status}", flush=True)
    return drive(sweep_dir, plan, record, plan.flags + flags, [*hydra, *launcher], baseline)


def drive(sweep_dir: Path, plan: sweep.SweepPlan, record: SettleRecord, flags: list[str],
          hydra: list[str], baseline: str | None) -> int:
    """Run, analyse and plan rounds until the settle stops; then the final table."""
    code = 0
    while record.status == RUNNING:
        if not record.rounds:
            plan_round(sweep_dir, plan, record, list(range(len(record.configs))))
        current = record.rounds[-1]
        if current.wall_time_s is None:
            launched = run_round(sweep_dir, plan, record, current, flags, hydra)
            if launched in sweep.STOPPED:
                return launched
            code = max(code, launched)
        need = None
        if not current.done:
            need = undecided_configs(sweep_dir, record, baseline)
            current.undecided = sum(need.values())
            settle_record.write(sweep_dir, record)
            terminal.say_measures(terminal.table_console(), settle_view.round_line(record, current))
            for c, why in settled.diverging(sweep_dir, record).items():
                if c in current.configs:
                    terminal.say_measures(terminal.table_console(),
                                          f"settle: {record.labels[c]} gets no more seeds: {why}")
        status = next_status(record, current)
        if status != RUNNING:
            record.status = status
            settle_record.write(sweep_dir, record)
            break
        need = need if need is not None else undecided_configs(sweep_dir, record, baseline)
        plan_round(sweep_dir, plan, record, [c for c, n in need.items() if n])
    return finish(sweep_dir, plan, record, baseline) or code


def next_status(record: SettleRecord, current: Round) -> str:
    """Whether another round runs (RUNNING) or why the settle stops."""
    if current.undecided == 0:
        return SETTLED
    if current.seeds >= record.looks[-1]:
        return OUT_OF_SEEDS
    if record.max_time_s is not None and record.wall_time_s >= record.max_time_s:
        return OUT_OF_TIME
    return RUNNING


def plan_round(sweep_dir: Path, plan: sweep.SweepPlan, record: SettleRecord, need: list[int]) -> None:
    """Record the next round: the next planned seeds for `need` and the baseline.

    sweep.json is written before settle.json: a stop between the two leaves jobs that no
    round lists, which resume drops and plans again.
    """
    number = len(record.rounds) + 1
    previous = record.rounds[-1].seeds if record.rounds else 0
    seeds = record.looks[number - 1]
    configs = sorted({*need, record.baseline})
    jobs = []
    for c in configs:
        start = len(plan.jobs)
        plan.jobs += [[*record.configs[c], f"{SEED}={s}"] for s in range(previous, seeds)]
        jobs.append(list(range(start, len(plan.jobs))))
    sweep.write_plan(sweep_dir, plan)
    record.rounds.append(Round(number, seeds, configs, jobs, time.time()))
    settle_record.write(sweep_dir, record)


def run_round(sweep_dir: Path, plan: sweep.SweepPlan, record: SettleRecord, current: Round,
              flags: list[str], hydra: list[str]) -> int:
    """Launch the round's jobs as one multirun (finished ones are kept); its exit code."""
    numbers = sorted(job for jobs in current.jobs for job in jobs)  # consecutive, in plan.jobs
    listed = sweep_dir / f"round{current.number}.json"
    job_lists.write(listed, [plan.jobs[n] for n in numbers])
    t0 = time.monotonic()
    code = sweep.launch(sweep_dir, plan, flags, [*hydra, LIST_SWEEPER, f"hydra.sweeper.jobs_file='{listed}'",
                                                 f"hydra.sweeper.first={numbers[0]}"])
    spent = time.monotonic() - t0
    if code in sweep.STOPPED:  # the time spent still counts against the budget
        current.interrupted_s += spent
    else:
        current.wall_time_s = current.interrupted_s + spent
    settle_record.write(sweep_dir, record)
    return code


def undecided_configs(sweep_dir: Path, record: SettleRecord, baseline: str | None) -> dict[int, int]:
    """Configuration index -> how many of its comparisons (one per metric) are undecided."""
    out = {c: len(record.metrics) for c in range(len(record.configs)) if c != record.baseline}
    for c in settled.diverging(sweep_dir, record):
        out[c] = 0  # it keeps diverging: more seeds would not decide it
    if not any(summary.status(d) in runs.FINISHED for d in settled.job_dirs(sweep_dir, record)):
        return out
    comp = settled.compare_settle(sweep_dir, record, baseline)
    index = settled.config_index(comp, record)
    for metric in record.metrics:
        for name, looks in comp.settle.looks.get(metric, {}).items():
            if looks and looks[-1].verdict != equivalence.UNDECIDED and out[index[name]]:
                out[index[name]] -= 1
    return out


def finish(sweep_dir: Path, plan: sweep.SweepPlan, record: SettleRecord, baseline: str | None) -> int:
    """The final table (sequential intervals and verdicts), the figures, what is undecided."""
    has_runs = any(summary.status(d) in runs.FINISHED for d in settled.job_dirs(sweep_dir, record))
    comp = settled.compare_settle(sweep_dir, record, baseline) if has_runs else None
    code = sweep.finish(sweep_dir, plan, baseline, comparison=comp)
    figure = settle_view.interval_plot(comp, sweep_dir) if comp is not None else None
    settle_view.print_end(record, comp, figure, terminal.table_console())
    return code
