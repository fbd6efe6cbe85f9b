"""The claims atlas: each claim preset, its verdict rule, the `regbench atlas` command.

The verdict rules are checked on intervals given by hand and on settle folders of fake
runs whose intervals are recomputed here with scipy; a reduced atlas (two claims, two
seeds, one epoch of synthetic data) runs end to end in the slow tier.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from scipy import stats as sps

from regbench.config.schema import ClaimConfig, ClaimPart
from regbench.errors import ConfigError
from regbench.launch import atlas, sweep
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
    folder = tmp_path / "sweeps" / "20260101-000000-abcdef"
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
    assert result.verdict == claims.combine([between.verdict, within.verdict], "all")
    assert result.runs == 20 and result.wall_time_s == 20.0


def test_a_study_not_started_leaves_its_parts_undecided() -> None:
    claim = ClaimConfig(number=4, parts=[ClaimPart(config="reg.dropout.fc=0.5", expect="higher")])
    result = claims.judge("claim_x", claim, {"main": claims.read_study("main", None, None)})
    assert result.verdict == UNDECIDED and result.parts[0].look is None
    assert result.studies[0].status == "not started"
