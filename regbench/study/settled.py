"""A settle's comparison: its runs judged by its sequential design, not by fixed-seed tests.

The seeds of a settle were gathered by a stopping rule, so a fixed-sample interval on its
runs would be biased (optional stopping). Here every difference column of the table is
replaced by the repeated confidence interval (regbench.study.sequential) at each
configuration's latest look, with its verdict: established, equivalent or undecided. The
intervals of all looks hold together, so this is valid for every column, the metrics that
decided the rounds and the others alike. Everything is recomputed from the runs' own
files and the rounds of settle.json (regbench.store.settle_record).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from regbench.errors import ConfigError
from regbench.store import runs, settle_record, summary
from regbench.store.settle_record import SettleRecord
from regbench.study import compare, equivalence, failures, stats
from regbench.study.sequential import Design, Look, looks_of


@dataclass
class Settled:
    """What a settle's table, caption, plot and JSON need beyond the comparison."""

    record: SettleRecord
    design: Design
    looks: dict[str, dict[str, list[Look]]] = field(default_factory=dict)  # metric -> label -> looks

    def undecided(self) -> list[tuple[str, str]]:
        """(label, metric) of the deciding comparisons still undecided at their latest look."""
        return [(label, metric) for metric in self.record.metrics
                for label, looks in self.looks.get(metric, {}).items()
                if not looks or looks[-1].verdict == equivalence.UNDECIDED]


# A configuration gets no more seeds once at least this fraction of its ended runs diverged:
# its comparison could only be made on the seeds that happened not to explode.
KEEPS_DIVERGING = 0.5


def diverging(sweep_dir: Path, record: SettleRecord) -> dict[int, str]:
    """Configuration index -> why it gets no more seeds (most of its runs diverged); the
    baseline is never dropped, since every comparison is made against it."""
    ended: dict[int, list[summary.Summary]] = {}
    for job, c in record.config_of_job().items():
        s = summary.load(sweep_dir / str(job))
        if s is not None and (s.finished or s.status == failures.DIVERGED):
            ended.setdefault(c, []).append(s)
    out = {}
    for c, group in ended.items():
        bad = [s for s in group if s.status == failures.DIVERGED]
        if c != record.baseline and bad and len(bad) >= KEEPS_DIVERGING * len(group):
            out[c] = (f"{len(bad)} of {len(group)} runs diverged "
                      f"({failures.seeds_text([s.seed for s in bad])}: {bad[0].why_unfinished()})")
    return out


def design_of(record: SettleRecord) -> Design:
    return Design(alpha=record.alpha, comparisons=record.comparisons, max_pairs=record.looks[-1],
                  spending=record.spending)


def job_dirs(sweep_dir: Path, record: SettleRecord) -> list[Path]:
    """The folders of every job the recorded rounds added."""
    return [sweep_dir / str(job) for job in sorted(record.config_of_job())]


def compare_settle(sweep_dir: Path, record: SettleRecord, baseline: str | None = None,
                   margin: float | None = None) -> compare.Comparison:
    """Compare the finished runs of a settle with its baseline, sequentially.

    baseline must name the settle's own baseline if given (its seeds were planned for it);
    margin (points) replaces the recorded margins for the verdicts shown.
    """
    base_label = record.labels[record.baseline]
    done = [d for d in job_dirs(sweep_dir, record) if summary.status(d) in runs.FINISHED]
    try:
        comp = compare.compare(done, baseline or base_label, margin=margin)
    except ConfigError:
        if baseline is not None:
            raise
        # no finished run of the baseline yet: nothing to compare against
        comp = compare.compare(done, margin=margin)
        comp.table, _ = compare.aggregate(comp.runs.copy(), None)
        comp.baseline, comp.note = None, f"no finished run of the baseline {base_label} yet"
    if baseline is not None and config_index(comp, record).get(comp.baseline) != record.baseline:
        raise ConfigError(f"--baseline {baseline!r}: a settle compares against the baseline it "
                          f"planned its seeds for, {base_label!r}; leave --baseline out")
    margins = comp.margins if margin is not None else dict(record.margins)
    comp.margins = margins
    comp.settle = analyse(comp, record, margins)
    comp.comparisons = record.comparisons
    return comp


def config_index(comp: compare.Comparison, record: SettleRecord) -> dict[str, int]:
    """Table label -> index of the settle's configuration, through each run's job number."""
    of_job = record.config_of_job()
    return {name: of_job[int(Path(path).name)]
            for path, name in zip(comp.runs["path"], comp.runs["label"], strict=True)
            if Path(path).name.isdigit() and int(Path(path).name) in of_job}


def analyse(comp: compare.Comparison, record: SettleRecord, margins: dict[str, float]) -> Settled:
    """Replace each difference column by the configuration's latest repeated interval."""
    design = design_of(record)
    settled = Settled(record, design)
    if comp.baseline is None or comp.table.empty:
        return settled
    index = config_index(comp, record)
    rounds = [r for r in record.rounds if r.wall_time_s is not None]
    per_seed = {name: g.set_index("seed") for name, g in comp.runs.groupby("label", sort=False)}
    base = per_seed[comp.baseline]
    table = comp.table.set_index("config")
    for metric in compare.DIFFERENCES:
        margin = margins.get(metric)
        settled.looks[metric] = {}
        for name in table.index:
            if name == comp.baseline or name not in index:
                continue
            took_part = [(r.number, r.seeds) for r in rounds if index[name] in r.configs]
            looks = looks_of(per_seed[name][metric], base[metric], took_part, design, margin)
            settled.looks[metric][name] = looks
            _write_row(table, name, metric, looks[-1] if looks else None, margin, design)
    comp.table = table.reset_index()
    return settled


def _write_row(table: pd.DataFrame, name: str, metric: str, look: Look | None,
               margin: float | None, design: Design) -> None:
    """One configuration's difference columns from its latest look (empty without one)."""
    if look is None:
        values = dict(low=math.nan, high=math.nan, level=math.nan, verdict=None)
        d, needed, to_equivalent = math.nan, math.nan, math.nan
    else:
        values = dict(low=look.low, high=look.high, level=look.confidence, verdict=look.verdict)
        d = look.d
        undecided = look.verdict == equivalence.UNDECIDED
        needed = stats.seeds_needed(look.d, look.sd, design.alpha_each) if undecided else math.nan
        to_equivalent = (equivalence.seeds_to_show_equivalence(look.d, look.sd, margin, design.alpha_each)
                         if undecided and margin is not None else math.nan)
    verdict = values["verdict"]
    table.loc[name, f"d_{metric}"] = d
    table.loc[name, f"d_{metric}_low"] = values["low"]
    table.loc[name, f"d_{metric}_high"] = values["high"]
    table.loc[name, f"d_{metric}_level"] = values["level"]
    table.loc[name, f"d_{metric}_p"] = math.nan  # the intervals decide; there is no p-value
    table.at[name, f"{metric}_established"] = None if verdict is None else verdict == equivalence.ESTABLISHED
    table.at[name, f"{metric}_equivalent"] = (None if verdict is None or margin is None
                                              else verdict == equivalence.EQUIVALENT)
    table.at[name, f"{metric}_verdict"] = verdict
    table.at[name, f"{metric}_within_noise"] = None if verdict is None else verdict == equivalence.UNDECIDED
    table.loc[name, f"{metric}_seeds_needed"] = needed
    table.loc[name, f"{metric}_seeds_to_equivalent"] = to_equivalent
    if metric == compare.DIFFERENCES[0]:
        table.loc[name, "pairs"] = math.nan if look is None else look.pairs


def compare_paths(paths: list[Path], run_dirs: list[Path], baseline: str | None = None,
                  adjust: bool = True, margin: float | None = None) -> compare.Comparison:
    """The comparison `summarize` and `report` show: a settle's sequential one when the
    single folder given is a settle, else the fixed-seed comparison of run_dirs."""
    if len(paths) == 1 and settle_record.is_settle(paths[0]):
        if not adjust:
            raise ConfigError(f"--no-adjust: {paths[0]} is a settle, whose intervals are "
                              "planned for all its comparisons together; leave it out")
        return compare_settle(paths[0], settle_record.read(paths[0]), baseline, margin)
    return compare.compare(run_dirs, baseline, adjust, margin)
