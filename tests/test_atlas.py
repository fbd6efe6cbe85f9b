"""The claims atlas: each claim preset, its verdict rule, the `regbench atlas` command.

The verdict rules are checked on intervals given by hand and on settle folders of fake
runs whose intervals are recomputed here with scipy; a reduced atlas (two claims, two
seeds, one epoch of synthetic data) runs end to end in the slow tier.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from scipy import stats as sps

from regbench.config.schema import ClaimConfig, ClaimPart
from regbench.errors import ConfigError
from regbench.launch import atlas, sweep
from regbench.present import atlas_view
from regbench.store import metrics, settle_record
from regbench.store.settle_record import Round, SettleRecord
from regbench.study import claims, equivalence
from regbench.study.claims import CONTRADICTED, NO_EFFECT, SUPPORTED, UNDECIDED
from regbench.training.schema import RegbenchConfig

M = 0.005  # the default margin, half a point


@pytest.mark.parametrize("expect, interval, verdict", [
    ("higher", (0.01, 0.03), SUPPORTED), ("higher", (-0.03, -0.01), CONTRADICTED),
    ("higher", (-0.002, 0.003), NO_EFFECT), ("higher", (-0.01, 0.02), UNDECIDED),
    ("higher", (0.001, 0.003), SUPPORTED),  # established and small: still established
    ("lower", (-0.03, -0.01), SUPPORTED), ("lower", (0.01, 0.03), CONTRADICTED),
    ("lower", (-0.004, 0.004), NO_EFFECT),
    ("not_higher", (-0.004, 0.004), SUPPORTED), ("not_higher", (-0.05, -0.01), SUPPORTED),
    ("not_higher", (0.01, 0.02), CONTRADICTED), ("not_higher", (-0.01, 0.01), UNDECIDED),
    ("not_lower", (0.01, 0.02), SUPPORTED), ("not_lower", (-0.02, -0.01), CONTRADICTED),
    ("equal", (-0.004, 0.004), SUPPORTED), ("equal", (0.001, 0.004), SUPPORTED),
    ("equal", (0.002, 0.02), CONTRADICTED), ("equal", (-0.02, 0.02), UNDECIDED),
    ("different", (0.01, 0.02), SUPPORTED), ("different", (-0.02, -0.01), SUPPORTED),
    ("different", (-0.004, 0.004), NO_EFFECT), ("different", (-0.01, 0.02), UNDECIDED),
])
def test_a_part_verdict_is_read_off_its_interval(expect: str, interval: tuple[float, float],
                                                 verdict: str) -> None:
    assert claims.part_verdict(expect, *interval, M) == verdict


def test_without_a_margin_nothing_is_shown_equivalent() -> None:
    assert claims.part_verdict("higher", -0.1, 0.1, None) == UNDECIDED  # epochs: no margin
    assert claims.part_verdict("higher", 1.0, 3.0, None) == SUPPORTED
    assert claims.part_verdict("higher", math.nan, math.nan, M) == UNDECIDED


@pytest.mark.parametrize("parts, rule, verdict", [
    ([SUPPORTED, SUPPORTED], "all", SUPPORTED),
    ([SUPPORTED, CONTRADICTED, UNDECIDED], "all", CONTRADICTED),
    ([SUPPORTED, UNDECIDED], "all", UNDECIDED),
    ([SUPPORTED, NO_EFFECT], "all", NO_EFFECT),
    ([NO_EFFECT, NO_EFFECT], "all", NO_EFFECT),
    ([CONTRADICTED, SUPPORTED], "any", SUPPORTED),
    ([CONTRADICTED, UNDECIDED], "any", UNDECIDED),
    ([CONTRADICTED, NO_EFFECT], "any", CONTRADICTED),
    ([NO_EFFECT, NO_EFFECT], "any", NO_EFFECT),
    ([], "all", UNDECIDED),
])
def test_a_claim_combines_its_parts_by_its_rule(parts: list[str], rule: str, verdict: str) -> None:
    assert claims.combine(parts, rule) == verdict


# ----------------------------------------------------------------- the presets themselves

def test_there_are_twelve_claims_in_order_each_settled_with_a_statement() -> None:
    names = atlas.claim_names()
    assert len(names) == 12
    numbers = [atlas.claim_of(n).number for n in names]
    assert numbers == list(range(1, 13))
    for name in names:
        claim = atlas.claim_of(name)
        assert claim.statement and claim.reading and claim.title, name


@pytest.mark.slow
def test_every_claim_part_names_one_configuration_of_its_study(tmp_path: Path) -> None:
    for p in atlas.plans(atlas.claim_names(), [], tmp_path):
        atlas.check_plan(p)  # composes every configuration; ConfigError on a bad part
        _, first = sweep.check(p.args, [])
        assert first.settle.enabled and first.claim.number > 0


def test_a_bad_claim_section_is_named() -> None:
    claim = ClaimConfig(number=1, parts=[ClaimPart(config="reg.dropout.fc=0.5", expect="bigger")])
    with pytest.raises(ConfigError, match=r"claim.parts\[0\].expect='bigger'.*higher, lower"):
        claims.check_claim("claim_x", claim)
    claim.parts[0].expect, claim.parts[0].study = "higher", "large"
    with pytest.raises(ConfigError, match="study='large'.*main"):
        claims.check_claim("claim_x", claim)
    with pytest.raises(ConfigError, match="known claims are small_data, rates"):
        atlas.resolve(["smal_data"])
    assert atlas.resolve(["rates", "claim_rates", "l2"]) == ["claim_rates", "claim_l2"]


# ------------------------------------------------------- verdicts from a settle on known numbers

def fake_run(folder: Path, seed: int, fc: float, val_acc: float, test_acc: float,
             mc_acc: float) -> None:
    """A finished two-epoch run of reg.dropout.fc=fc with these accuracies."""
    folder.mkdir(parents=True)
    cfg = OmegaConf.structured(RegbenchConfig)
    OmegaConf.update(cfg, "seed", seed)
    OmegaConf.update(cfg, "reg.dropout.fc", fc)
    OmegaConf.update(cfg, "eval.mc_samples", 1)
    (folder / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    rows = [metrics.Row(epoch=1, train_loss=1.0, train_acc=0.5, val_loss=0.9, val_acc=val_acc - 0.1),
            metrics.Row(epoch=2, train_loss=0.4, train_acc=val_acc + 0.05, val_loss=0.5,
                        val_acc=val_acc)]
    log = metrics.MetricsLog(folder / "metrics.csv")
    for row in rows:
        log.append(row)
    summary = {"status": "completed", "epochs_run": 2, "best_epoch": 2, "seed": seed,
               "best": metrics.row_dict(rows[1]), "last": metrics.row_dict(rows[1]),
               "test_acc": test_acc, "wall_time_s": 1.0,
               "mc_dropout": {"samples": 1, "test_acc": mc_acc}}
    (folder / "summary.json").write_text(json.dumps(summary))


rng = np.random.default_rng(5)
SEEDS = 10
VAL = {0.0: 0.90 + rng.normal(0, 0.004, SEEDS), 0.5: 0.93 + rng.normal(0, 0.004, SEEDS)}
TEST = {fc: v + rng.normal(0, 0.002, SEEDS) for fc, v in VAL.items()}
MC = {fc: t - 0.02 * fc + rng.normal(0, 0.003, SEEDS) for fc, t in TEST.items()}


@pytest.fixture
def settle_dir(tmp_path: Path) -> Path:
    """A settle of fc=0.5 against 0.0 in two rounds (5 then 10 seeds)."""
    folder = tmp_path / "claim_x" / "sweeps" / "20260101-000000-abcdef"
    configs = [[f"reg.dropout.fc={fc}"] for fc in VAL]
    plan = sweep.SweepPlan(args=["reg.dropout.fc=0.0,0.5"], axes=["reg.dropout.fc", "seed"],
                           sweeper="settle")
    record = SettleRecord(metrics=["val_acc"], margins=equivalence.margins(), alpha=0.05,
                          spending="pocock", looks=[5, 10, 20], max_time_s=None, configs=configs,
                          labels=[c[0] for c in configs], baseline=0, status="out of seeds")
    for number, (low, high) in enumerate([(0, 5), (5, 10)], start=1):
        jobs = []
        for c, fc in enumerate(VAL):
            start = len(plan.jobs)
            for seed in range(low, high):
                fake_run(folder / str(len(plan.jobs)), seed, fc, VAL[fc][seed], TEST[fc][seed],
                         MC[fc][seed])
                plan.jobs.append([*configs[c], f"seed={seed}"])
            jobs.append(list(range(start, len(plan.jobs))))
        record.rounds.append(Round(number, high, [0, 1], jobs, 0.0, wall_time_s=10.0, undecided=1))
    sweep.write_plan(folder, plan)
    settle_record.write(folder, record)
    return folder


def pocock_interval(d: np.ndarray, n_prev: int, n_max: int, alpha: float) -> tuple[float, float]:
    """The repeated interval of look (n_prev -> len(d)), by hand: Pocock share, t quantile."""
    def spent(m: int) -> float:
        return alpha * math.log(1 + (math.e - 1) * m / n_max)
    share = spent(len(d)) - spent(n_prev)
    return sps.t.interval(1 - share, len(d) - 1, loc=d.mean(), scale=sps.sem(d))


def test_a_claim_is_judged_on_the_settled_interval_and_within_runs(settle_dir: Path) -> None:
    claim = ClaimConfig(number=1, combine="all", parts=[
        ClaimPart(config="reg.dropout.fc=0.5", expect="higher"),
        ClaimPart(config="reg.dropout.fc=0.5", metric="mc_test_acc", against="test_acc",
                  expect="lower"),
    ])
    study = claims.read_study("main", settle_dir, None)
    assert study.runs == 20 and study.seeds == {"reg.dropout.fc=0.0": 10, "reg.dropout.fc=0.5": 10}
    result = claims.judge("claim_x", claim, {"main": study})
    between, within = result.parts
    low, high = pocock_interval(VAL[0.5] - VAL[0.0], 5, 20, 0.05)  # k = 1 comparison
    assert (between.look.low, between.look.high) == pytest.approx((low, high))
    assert between.verdict == claims.part_verdict("higher", low, high, M) == SUPPORTED
    low, high = pocock_interval(MC[0.5] - TEST[0.5], 5, 20, 0.05)  # one within-run part
    assert (within.look.low, within.look.high) == pytest.approx((low, high))
    assert within.verdict == claims.part_verdict("lower", low, high, M) == SUPPORTED
    assert within.against == "test_acc" and within.look.pairs == 10
    # the words say how many dropout-on passes the column holds (eval.mc_samples of the runs)
    assert within.passes == 1
    assert atlas_view.metric_words(within) == "test acc, 1 pass with dropout on - test acc"
    assert atlas_view.metric_words(replace(within, passes=50)) == (
        "test acc, mean of 50 passes with dropout on - test acc")
    assert result.verdict == claims.combine([between.verdict, within.verdict], "all")
    assert result.runs == 20 and result.wall_time_s == 20.0


def test_a_study_not_started_leaves_its_parts_undecided() -> None:
    claim = ClaimConfig(number=4, parts=[ClaimPart(config="reg.dropout.fc=0.5", expect="higher")])
    result = claims.judge("claim_x", claim, {"main": claims.read_study("main", None, None)})
    assert result.verdict == UNDECIDED and result.parts[0].look is None
    assert result.studies[0].status == "not started"


# ------------------------------------------------------------------ the command, end to end

REDUCED = ["dataset=synthetic", "model.channels=[4,8]", "model.hidden=16", "trainer.epochs=1",
           "trainer.progress=false", "dataset.train_size=200", "settle.start_seeds=2"]


def job_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*/*/*/sweeps/*/*") if p.name.isdigit())


def test_a_bad_claim_or_override_stops_before_anything_runs(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from regbench.cli import app

    out = tmp_path / "atlas"
    result = CliRunner().invoke(app, ["atlas", "small_data", "dataset.train_size=-3", "--out", str(out)])
    assert isinstance(result.exception, ConfigError) and "dataset.train_size" in str(result.exception)
    result = CliRunner().invoke(app, ["atlas", "tiny_data", "--out", str(out)])
    assert isinstance(result.exception, ConfigError) and "known claims are" in str(result.exception)
    assert not job_folders(out)


@pytest.mark.slow
def test_a_reduced_atlas_keeps_its_budget_renders_in_80_columns_and_a_rerun_only_renders(
        tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from regbench.cli import app

    out = tmp_path / "atlas"
    args = ["atlas", "small_data", "rates", *REDUCED, "--max-seeds", "2", "--out", str(out)]
    names = ["claim_small_data", "claim_rates"]
    first = CliRunner().invoke(app, [*args, "--max-time", "1"], env={"COLUMNS": "80"})
    assert first.exit_code == 0, first.output
    small, rates = atlas.results(names, REDUCED, out)
    assert small.studies[0].status == "out of seeds" and small.runs == 4
    assert rates.studies[0].status == "not started" and rates.verdict == UNDECIDED
    assert "main: not started yet" in " ".join(first.output.split())

    second = CliRunner().invoke(app, args, env={"COLUMNS": "80"})  # no budget: rates runs
    assert second.exit_code == 0, second.output
    page = second.output[second.output.index("Claims atlas:"):]
    # a line may pass 80 columns only as one path, kept whole on its own line
    assert all(len(line) <= 80 or " " not in line.strip() for line in page.splitlines()), page
    assert "2 claims;" in page and " 1. dropout narrows the gap on small data" in page
    assert " 2. 0.2 to 0.5 is the right range" in page
    results = atlas.results(names, REDUCED, out)
    assert [len(r.parts) for r in results] == [1, 3] and [r.runs for r in results] == [4, 8]
    for r in results:
        assert r.verdict == claims.combine([p.verdict for p in r.parts], r.claim.combine)
        assert r.verdict.upper() in page
        for p in r.parts:
            assert p.look is not None and p.look.pairs == 2
            assert p.verdict == claims.part_verdict(p.part.expect, p.look.low, p.look.high, p.margin)
            assert f"{100 * p.look.low:+.2f}, {100 * p.look.high:+.2f}]" in page  # never split
    jobs = job_folders(out)
    assert len(jobs) == 4 + 8
    md = (out / "atlas.md").read_text()
    assert "| 2 | 0.2 to 0.5 is the right range, 0.5 the head's default |" in md
    assert "settle.png)" in md
    html = (out / "atlas.html").read_text()
    assert html.count("data:image/png;base64,") == 4 and "Rates between 0.2 and 0.5" in html
    note = f"Every study with {' '.join(REDUCED)}"  # the readings are the presets' own, not these
    assert note in " ".join(page.split()) and note in md and note in html

    again = CliRunner().invoke(app, args, env={"COLUMNS": "80"})
    assert again.exit_code == 0, again.output
    assert again.output.startswith("Claims atlas:")  # no settle ran: only the page
    assert job_folders(out) == jobs


def test_a_study_stopped_by_the_budget_goes_on_with_what_is_left(
        settle_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from regbench.config.schema import ClaimStudy
    from regbench.launch import settle

    record = settle_record.read(settle_dir)
    record.status, record.max_time_s = "out of time", 15.0
    settle_record.write(settle_dir, record)
    calls = []
    monkeypatch.setattr(settle, "resume", lambda folder, args, baseline: calls.append(folder) or 0)
    plan = atlas.StudyPlan("claim_x", "main", ClaimStudy(), tmp_path, [])
    assert plan.folder() == settle_dir
    assert atlas.run_study(plan, 0.0, None) == 0 and not calls  # nothing left: left as it is
    assert atlas.run_study(plan, 100.0, None) == 0 and calls == [settle_dir]
    record = settle_record.read(settle_dir)
    assert record.status == "running" and record.max_time_s == 20.0 + 100.0  # 20 s spent
    record.status = "settled"
    settle_record.write(settle_dir, record)
    assert atlas.run_study(plan, None, None) == 0 and calls == [settle_dir]  # finished: only read


def test_an_interrupted_study_resumes_and_one_started_otherwise_is_refused(
        settle_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from regbench.config.schema import ClaimStudy
    from regbench.launch import settle

    record = settle_record.read(settle_dir)
    record.status = "running"  # as Ctrl-C leaves it
    settle_record.write(settle_dir, record)
    calls = []
    monkeypatch.setattr(settle, "resume", lambda folder, args, baseline: calls.append(baseline) or 0)
    plan = atlas.StudyPlan("claim_x", "main", ClaimStudy(baseline="reg.dropout.fc=0.0"), tmp_path,
                           ["reg.dropout.fc=0.0,0.5", "settle.max_seeds=20"])
    atlas.check_plan(plan)  # the recorded overrides, a budget aside
    assert atlas.run_study(plan, None, None) == 0 and calls == ["reg.dropout.fc=0.0"]
    assert settle_record.read(settle_dir).max_time_s is None
    plan.args = ["reg.dropout.fc=0.0,0.5", "trainer.epochs=3"]
    with pytest.raises(ConfigError, match=r"started with 'reg\.dropout\.fc=0\.0,0\.5', not "
                       r"'reg\.dropout\.fc=0\.0,0\.5 trainer\.epochs=3'; use another --out"):
        atlas.check_plan(plan)  # what it was started with, and what is asked now
