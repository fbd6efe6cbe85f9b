"""Divergence by what training did (regbench.training.health), its summary and verdict, and
the line that names the runs a comparison leaves out (regbench.study.failures)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from helpers import TINY, cli, run_cli
from regbench.training import loop as train
from regbench.store import metrics
from regbench.training import curves
from regbench.study.failures import diverged_line
from regbench.training import health
from regbench.training.schema import RegbenchConfig


def test_a_loss_above_the_factor_times_ln_k_is_an_explosion_and_one_below_is_not() -> None:
    guess = math.log(10)  # 2.302...
    assert health.uniform_loss(10) == pytest.approx(2.302585)
    assert health.exploded({"train loss": 10 * guess - 1e-6, "val loss": 1.0}, 10, 10.0) is None
    why = health.exploded({"train loss": 0.4, "val loss": 5.9e30}, 10, 10.0)
    assert why == "val loss 5.9e30, more than 10x a uniform guess's 2.30"
    assert health.exploded({"train loss": 30.0, "val loss": 0.1}, 10, 20.0) is None
    assert health.exploded({"train loss": 47.0, "val loss": 0.1}, 10, 20.0) == (
        "train loss 47, more than 20x a uniform guess's 2.30")
    assert health.exploded({"train loss": 1e300, "val loss": 0.1}, 10, math.inf) is None
    assert "NaN or infinite" in (health.exploded({"train loss": math.nan}, 10, math.inf) or "")


def test_a_non_finite_parameter_or_gradient_is_named() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    assert health.non_finite(model) is None
    model[1].weight.grad = torch.tensor([[0.0, math.inf]])
    assert health.non_finite(model) == "the gradient of 1.weight became NaN or infinite"
    with torch.no_grad():
        model[0].bias[1] = math.nan
    assert health.non_finite(model) == "parameter 0.bias became NaN or infinite"


def test_the_verdict_and_the_summary_say_the_epoch_and_the_reason() -> None:
    rows = [metrics.Row(epoch=1, train_loss=5.9e30, train_acc=0.1, val_loss=6e30, val_acc=0.1)]
    reason = "train loss 5.9e30, more than 10x a uniform guess's 2.30"
    assert curves.verdict(rows, "diverged", diverged=(1, reason)) == f"diverged at epoch 1: {reason}"


def test_the_line_names_how_many_runs_diverged_and_which() -> None:
    assert diverged_line([], 12) is None
    assert diverged_line([("optim.lr=1e6", 1), ("optim.lr=1e6", 0)], 12) == (
        "2 of 12 runs diverged and are not compared: optim.lr=1e6 seeds 0, 1")
    assert diverged_line([("a", 0), ("b", None)], 3, "scored") == (
        "2 of 3 runs diverged and are not scored: a seed 0; b")


def test_an_adamw_blow_up_with_finite_losses_ends_the_run_as_diverged(
        make_cfg: Callable[..., RegbenchConfig], tmp_path: Path) -> None:
    cfg = make_cfg("optim.lr=1e6", "trainer.epochs=3", "dataset.train_size=100")
    (tmp_path / "run").mkdir()
    result = train.run(cfg, tmp_path / "run")
    assert result.status == "diverged" and result.exit_code == 1
    s = result.summary
    assert s.diverged_epoch == 1 and s.epochs_run == 1  # the exploded epoch's row is kept
    assert math.isfinite(result.rows[0].train_loss) and result.rows[0].train_loss > 23
    assert s.diverged_reason and "more than 10x a uniform guess's 2.30" in s.diverged_reason
    assert s.verdict == f"diverged at epoch 1: {s.diverged_reason}"
    assert s.test_acc is None  # a diverged run is not tested
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (on_disk["status"], on_disk["diverged_epoch"]) == ("diverged", 1)


def test_the_same_blow_up_under_an_infinite_factor_completes(
        make_cfg: Callable[..., RegbenchConfig], tmp_path: Path) -> None:
    cfg = make_cfg("optim.lr=1e6", "trainer.epochs=1", "dataset.train_size=100",
                   "trainer.diverge_factor=inf")
    (tmp_path / "run").mkdir()
    assert train.run(cfg, tmp_path / "run").status == "completed"


def test_a_factor_of_one_or_less_is_refused_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("run", *TINY, "trainer.diverge_factor=0.5", f"output.root={tmp_path}") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trainer.diverge_factor=0.5" in err[0] and "> 1" in err[0]


@pytest.mark.slow
def test_the_issue_sweep_reports_the_diverged_job_exits_1_and_leaves_it_out(tmp_path: Path) -> None:
    proc = run_cli("sweep", "dataset=synthetic", "trainer.epochs=2", "optim.lr=0.05,1e6",
                   "trainer.progress=false", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "optim.lr=1000000.0: diverged at epoch 1: train loss" in proc.stdout
    assert "1 of 2 runs diverged and is not compared: optim.lr=1000000.0 seed 0" in proc.stdout
    assert "jobs did not finish" not in proc.stdout  # nothing else to rerun


def test_the_chance_bound_is_the_binomial_bound_computed_by_hand() -> None:
    # 500 val images, 10 classes: 0.1 + 2.326 * sqrt(0.1 * 0.9 / 500) = 0.1 + 2.326 * 0.013416
    assert curves.chance_bound(500, 10) == pytest.approx(0.131206, abs=1e-6)
    # 80 images: 0.1 + 2.326 * sqrt(0.09 / 80) = 0.1 + 2.326 * 0.033541
    assert curves.chance_bound(80, 10) == pytest.approx(0.178017, abs=1e-6)

    def rows(*accs: float) -> list[metrics.Row]:
        return [metrics.Row(epoch=i + 1, train_loss=2.3, train_acc=a, val_loss=2.3, val_acc=a)
                for i, a in enumerate(accs)]

    assert curves.at_chance(rows(0.09, 0.131), 500, 10)
    assert not curves.at_chance(rows(0.09, 0.132), 500, 10)  # one epoch above the noise
    said = curves.verdict(rows(0.103, 0.1), "completed", chance=(500, 10))
    assert said == ("did not learn: val acc 10.3%, chance is 10% (within noise on 500 val "
                    "images: at most 13.1%)")
    assert not curves.verdict(rows(0.103, 0.5), "completed", chance=(500, 10)).startswith("did")
    assert curves.verdict(rows(0.103), "diverged", diverged=(1, "x")) == "diverged at epoch 1: x"


def test_a_configuration_that_did_not_learn_stays_in_the_comparison_marked(
        tmp_path: Path) -> None:
    from test_stats_compare import write_run

    from regbench.present import tables
    from regbench.study import compare

    for seed in (0, 1):
        write_run(tmp_path / f"p{seed}", seed, val_acc=0.9, at_chance=False,
                  config=f"seed: {seed}\nreg:\n  dropout:\n    fc: 0.0\n")
        write_run(tmp_path / f"d{seed}", seed, val_acc=0.1, at_chance=seed == 0,
                  config=f"seed: {seed}\nreg:\n  dropout:\n    fc: 0.9\n")
    comp = compare.compare(sorted(tmp_path.iterdir()))
    table = comp.table.set_index("config")
    assert table.loc["reg.dropout.fc=0.9", "seeds"] == 2  # kept as data
    assert table["at_chance_runs"].to_dict() == {"reg.dropout.fc=0.0": 0, "reg.dropout.fc=0.9": 1}
    assert tables.chance_text(comp) == ("did not learn (val accuracy within noise of chance; "
                                        "kept in the comparison): reg.dropout.fc=0.9 (1 of 2 seeds)\n")
    md = tables.markdown(comp)
    assert "| reg.dropout.fc=0.9 (did not learn) |" in md
    assert "| reg.dropout.fc=0.0 (best, baseline) |" in md  # one mark, not two
