"""A tutorial's claim judged by settled comparisons: the verdict rules of `regbench atlas`.

A claim (an experiment preset's ``claim`` section) names the comparisons it predicts, its
parts. Each part is one settled interval: a configuration against its study's baseline
(the settle's repeated confidence interval, regbench.study.settled), or, with
``against``, one column against another of the same runs, paired by seed, with the same
sequential design. The part's verdict is read off that interval, the margin M and the
direction the claim predicts (pos: the interval is above 0; neg: below 0; inside: it
lies within ±M):

============  ==========================  ==========================  ===========
expect        supported                   contradicted                no effect
============  ==========================  ==========================  ===========
higher        pos                         neg                         inside
lower         neg                         pos                         inside
not_higher    neg or inside               pos                         (never)
not_lower     pos or inside               neg                         (never)
equal         inside                      pos or neg                  (never)
different     pos or neg                  (never)                     inside
============  ==========================  ==========================  ===========

taken in that order (an interval above 0 that also lies inside ±M is an established,
small difference: "higher" is supported, "equal" too); anything else is undecided at the
budget. A claim's verdict combines its parts' (``combine``):

- ``all`` (a trend, or a claim with several clauses): contradicted if any part is, else
  undecided if any part is, else supported if every part is, else no effect;
- ``any`` (one of several alternatives): supported if any part is, else undecided if any
  part is, else contradicted if any part is, else no effect.

Every interval holds with the settle's error rate whatever its stopping rule (the
intervals of all looks cover together), so a verdict read here is wrong with probability
at most alpha per part.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regbench.config.schema import ClaimConfig, ClaimPart, ClaimStudy
from regbench.config.schema import check as config_check
from regbench.errors import ConfigError
from regbench.store import runs, settle_record, summary
from regbench.store.settle_record import SettleRecord
from regbench.study import compare, settled
from regbench.study.labels import matches
from regbench.study.sequential import Design, Look, looks_of

SUPPORTED, CONTRADICTED, NO_EFFECT, UNDECIDED = ("supported", "contradicted",
                                                  "no effect within the margin",
                                                  "undecided at the budget")
VERDICTS = (SUPPORTED, CONTRADICTED, NO_EFFECT, UNDECIDED)
EXPECTATIONS = ("higher", "lower", "not_higher", "not_lower", "equal", "different")
COMBINE = ("all", "any")
MAIN = "main"  # the one study of a claim that names none
# Columns of a run that `against` may pair (fractions: they take the accuracy margin).
WITHIN_RUN = ("test_acc", "mc_test_acc", "test_ece", "mc_test_ece", "val_acc", "val_acc_last")


def part_verdict(expect: str, low: float, high: float, margin: float | None) -> str:
    """A part's verdict from its interval (fractions), margin and predicted direction."""
    if math.isnan(low) or math.isnan(high):
        return UNDECIDED
    pos, neg = low > 0, high < 0
    inside = margin is not None and -margin < low and high < margin
    rules = {  # expect -> (supported, contradicted, no effect), tried in that order
        "higher": (pos, neg, inside), "lower": (neg, pos, inside),
        "not_higher": (neg or inside, pos, False), "not_lower": (pos or inside, neg, False),
        "equal": (inside, pos or neg, False), "different": (pos or neg, False, inside),
    }
    supported, contradicted, no_effect = rules[expect]
    return (SUPPORTED if supported else CONTRADICTED if contradicted
            else NO_EFFECT if no_effect else UNDECIDED)


def combine(verdicts: list[str], rule: str) -> str:
    """A claim's verdict from its parts' by rule 'all' or 'any' (see the module's table)."""
    if not verdicts:
        return UNDECIDED
    order = ((CONTRADICTED, UNDECIDED) if rule == "all" else (SUPPORTED, UNDECIDED, CONTRADICTED))
    for verdict in order:
        if verdict in verdicts:
            return verdict
    if rule == "all" and all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    return NO_EFFECT


def studies(claim: ClaimConfig) -> dict[str, ClaimStudy]:
    """The claim's settles by name: its own, or one study 'main' of the preset as it is."""
    return dict(claim.studies) or {MAIN: ClaimStudy()}


def check_claim(name: str, claim: ClaimConfig) -> None:
    """ConfigError (exit 2) naming the first claim.* value of preset `name` that is wrong."""
    config_check(claim.number > 0, f"{name}: claim.number", claim.number,
                 "a positive number (its place in the atlas)")
    config_check(bool(claim.parts), f"{name}: claim.parts", claim.parts,
                 "at least one comparison the claim predicts")
    config_check(claim.combine in COMBINE, f"{name}: claim.combine", claim.combine,
                 "one of " + ", ".join(COMBINE))
    known = studies(claim)
    for i, part in enumerate(claim.parts):
        key = f"{name}: claim.parts[{i}]"
        config_check(part.expect in EXPECTATIONS, f"{key}.expect", part.expect,
                     "one of " + ", ".join(EXPECTATIONS))
        config_check(part.study in known, f"{key}.study", part.study,
                     "one of claim.studies: " + ", ".join(known))
        metric = part.metric or claim.metric
        allowed = WITHIN_RUN if part.against else compare.DIFFERENCES
        config_check(metric in allowed, f"{key}.metric", metric, "one of " + ", ".join(allowed))
        config_check(part.against is None or part.against in WITHIN_RUN, f"{key}.against",
                     part.against, "one of " + ", ".join(WITHIN_RUN))


def find_config(spec: str, configs: dict[str, dict[str, Any]], what: str) -> str:
    """The label of the one configuration that spec names; ConfigError naming `what` else."""
    hits = [label for label, c in configs.items() if matches(spec, c, label)]
    if len(hits) != 1:
        found = "none" if not hits else f"{len(hits)}"
        raise ConfigError(f"{what}={spec!r} is not allowed: it must name one configuration of "
                          f"its study ({found} match); they are: {'; '.join(configs)}")
    return hits[0]


@dataclass
class StudyResult:
    """One settle of a claim as the atlas shows it."""

    name: str
    folder: Path | None  # None: not started yet (not run, or the time budget was spent)
    status: str  # the settle's status, or 'not started'
    runs: int = 0  # finished runs counted
    unfinished: int = 0  # runs that failed, diverged or were interrupted (never pooled)
    seeds: dict[str, int] = field(default_factory=dict)  # configuration -> seeds counted
    baseline: str | None = None
    wall_time_s: float = 0.0  # seconds of jobs
    comparison: compare.Comparison | None = None
    record: SettleRecord | None = None


@dataclass
class PartResult:
    """One predicted comparison, its deciding interval and its verdict."""

    part: ClaimPart
    metric: str
    config: str | None  # the configuration's label in its study
    against: str  # what it is compared with: the study's baseline or the other column
    look: Look | None
    margin: float | None  # fraction; None: no equivalence margin (epochs)
    verdict: str
    passes: int = 0  # the configuration's eval.mc_samples: the dropout-on passes averaged


@dataclass
class ClaimResult:
    """A claim, its studies, its parts and its verdict."""

    name: str  # the preset, claim_*
    claim: ClaimConfig
    studies: list[StudyResult]
    parts: list[PartResult]

    @property
    def verdict(self) -> str:
        return combine([p.verdict for p in self.parts], self.claim.combine)

    @property
    def wall_time_s(self) -> float:
        return sum(s.wall_time_s for s in self.studies)

    @property
    def runs(self) -> int:
        return sum(s.runs for s in self.studies)


def read_study(name: str, folder: Path | None, baseline: str | None) -> StudyResult:
    """A claim's settle folder read back: its record and its sequential comparison."""
    if folder is None:
        return StudyResult(name, None, "not started")
    record = settle_record.read(folder)
    dirs = settled.job_dirs(folder, record)
    statuses = [summary.status(d) for d in dirs]
    done = sum(s in runs.FINISHED for s in statuses)
    comp = settled.compare_settle(folder, record, baseline) if done else None
    seeds = ({} if comp is None else
             {str(r["config"]): int(r["seeds"]) for _, r in comp.table.iterrows()})
    return StudyResult(name, folder, record.status, done, len(statuses) - done, seeds,
                       None if comp is None else comp.baseline, record.wall_time_s, comp, record)


def judge(name: str, claim: ClaimConfig, results: dict[str, StudyResult]) -> ClaimResult:
    """Each part's interval and verdict, read off its study's settled comparison."""
    parts = []
    within = {s: sum(1 for p in claim.parts if p.study == s and p.against) for s in results}
    for part in claim.parts:
        parts.append(judge_part(part, claim.metric, results[part.study], within[part.study]))
    return ClaimResult(name, claim, list(results.values()), parts)


def judge_part(part: ClaimPart, default_metric: str, study: StudyResult, within: int) -> PartResult:
    """One part: the configuration's latest look, or the within-run difference's."""
    metric = part.metric or default_metric
    comp, record = study.comparison, study.record
    against = part.against or (study.baseline or "the baseline")
    if comp is None or record is None or comp.baseline is None:
        return PartResult(part, metric, None, against, None, None, UNDECIDED)
    label = find_config(part.config, comp.configs, f"claim.parts[{part.study}].config")
    margins = record.margins
    if part.against is None:
        margin = margins.get(metric)
        looks = comp.settle.looks.get(metric, {}).get(label) or []
    else:  # a fraction of the test set, like the val accuracy: the accuracy margin
        margin = margins.get(metric, margins.get("val_acc"))
        looks = within_run_looks(comp, record, label, metric, part.against, within, margin)
    look = looks[-1] if looks else None
    verdict = (UNDECIDED if look is None
               else part_verdict(part.expect, look.low, look.high, margin))
    passes = int(comp.configs[label].get("eval.mc_samples") or 0)
    return PartResult(part, metric, label, against, look, margin, verdict, passes)


def within_run_looks(comp: compare.Comparison, record: SettleRecord, label: str, metric: str,
                     against: str, comparisons: int, margin: float | None) -> list[Look]:
    """Looks of metric - against in the runs of one configuration, paired by seed, after
    each round it took part in; alpha is split over the study's within-run parts."""
    index = settled.config_index(comp, record)
    mine = comp.runs[comp.runs["label"] == label].set_index("seed")
    rounds = [(r.number, r.seeds) for r in record.rounds
              if r.wall_time_s is not None and index.get(label) in r.configs]
    design = Design(alpha=record.alpha, comparisons=max(comparisons, 1),
                    max_pairs=record.looks[-1], spending=record.spending)
    return looks_of(mine[metric].astype(float), mine[against].astype(float), rounds, design, margin)
