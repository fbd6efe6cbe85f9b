"""A population that does not fit is split, not crashed: the memory estimate, the cut
before training (an injected memory budget) and the halving after an out-of-memory error
(an injected one), on the CPU."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from helpers import TINY, cli
from regbench.store import metrics, runs, summary
from regbench.training import memory, models, population
from regbench.training.device import precision_in_force
from regbench.training.schema import RegbenchConfig

CPU = torch.device("cpu")


def param_bytes(cfg: RegbenchConfig) -> int:
    return models.count_params(models.build(cfg.model, cfg.reg, 1, (28, 28))) * 4


def test_the_estimate_counts_weights_optimizer_state_and_activations(
        make_cfg: Callable[..., RegbenchConfig]) -> None:
    adamw = make_cfg("optim=adamw")
    est = memory.estimate(adamw, 1, (28, 28), CPU)
    n = param_bytes(adamw)
    assert est.weights == 3 * n  # member's model, stacked copy, gradients
    assert est.optimizer == 2 * n  # Adam's two moments
    assert memory.estimate(make_cfg("optim=sgd"), 1, (28, 28), CPU).optimizer == n  # momentum
    assert memory.estimate(make_cfg("optim=sgd", "optim.momentum=0"), 1, (28, 28),
                           CPU).optimizer == 0
    double = memory.estimate(make_cfg("optim=adamw", "trainer.batch_size=256"), 1, (28, 28), CPU)
    assert double.activations == pytest.approx(2 * est.activations, rel=1e-6)  # per image
    with precision_in_force("bf16"):
        half = memory.estimate(adamw, 1, (28, 28), CPU)
    assert half.activations == pytest.approx(est.activations / 2, rel=1e-6)  # 2-byte elements
    # by hand for the CNN (conv-ReLU-pool twice, flatten, linear-ReLU, linear) on 28 x 28:
    # each leaf layer's output elements per image, in float32, x batch x the factor
    (c1, c2), h = adamw.model.channels, adamw.model.hidden
    per_image = (2 * c1 * 28 * 28 + c1 * 14 * 14 + 2 * c2 * 14 * 14 + c2 * 7 * 7
                 + c2 * 7 * 7 + 2 * h + 10)
    assert est.activations == per_image * 4 * 128 * memory.ACTIVATION_FACTOR
    assert est.total == est.weights + est.optimizer + est.activations


def test_members_that_fit_leave_the_margin_and_at_least_one() -> None:
    assert memory.members_that_fit(100, None) is None  # the CPU sets no limit
    assert memory.members_that_fit(100, 1000) == 8  # 80% of 1000 = 800 = 8 x 100
    assert memory.members_that_fit(100, 1000, data_bytes=300) == 5
    assert memory.members_that_fit(10_000, 1000) == 1  # one member alone still trains


@pytest.mark.slow
def test_a_population_beyond_the_memory_budget_is_cut_before_it_starts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> None:
    sizes: list[int] = []
    start = population.PopulationEngine.start

    def starting(self: population.PopulationEngine, sessions: list) -> None:
        sizes.append(len(sessions))
        start(self, sessions)

    def budget(device: torch.device) -> int:  # room for two members and a half, with margin
        per = memory.estimate(cfg_seen[0], 1, (28, 28), device).total
        return int(2.5 * per / memory.MARGIN)

    cfg_seen: list[RegbenchConfig] = []
    estimate = memory.estimate

    def estimating(cfg: RegbenchConfig, *args: object) -> memory.MemberMemory:
        cfg_seen.append(cfg)
        return estimate(cfg, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(memory, "estimate", estimating)
    monkeypatch.setattr(memory, "free_bytes", budget)
    monkeypatch.setattr(population.PopulationEngine, "start", starting)
    monkeypatch.chdir(tmp_path)
    code = cli("sweep", *TINY, "trainer.epochs=1", "seed=0,1,2,3,4", "hydra/launcher=population")
    out = capsys.readouterr()
    assert code == 0, out.err
    assert sorted(sizes) == [2, 2]  # 5 jobs: populations of 2, 2 and one job alone
    said = [line for line in out.err.splitlines() if "a population of 5 members" in line]
    assert len(said) == 1 and "3 populations of at most 2" in said[0]
    (sweep_dir,) = (tmp_path / "results" / "default" / "sweeps").iterdir()
    assert [summary.status(sweep_dir / str(j)) for j in range(5)] == ["completed"] * 5


@pytest.mark.slow
def test_an_out_of_memory_population_is_halved_and_resumed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> None:
    sizes: list[tuple[int, int]] = []
    train_epoch = population.PopulationEngine.train_epoch

    def training(self: population.PopulationEngine, sessions: list, epoch: int,
                 listeners: list) -> list:
        sizes.append((len(sessions), epoch))
        if len(sessions) > 2 and epoch == 2:  # as a GPU would, in the second epoch
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return train_epoch(self, sessions, epoch, listeners)

    monkeypatch.setattr(population.PopulationEngine, "train_epoch", training)
    monkeypatch.chdir(tmp_path)
    code = cli("sweep", *TINY, "trainer.epochs=3", "seed=0,1,2,3", "hydra/launcher=population")
    out = capsys.readouterr()
    assert code == 0, out.err
    # epoch 1 with 4 members, the error in epoch 2, then two halves from epoch 2 on
    assert sizes == [(4, 1), (4, 2), (2, 2), (2, 3), (2, 2), (2, 3)]
    said = [line for line in out.err.splitlines() if "out of memory" in line]
    assert len(said) == 1 and "populations of 2 and 2" in said[0]
    assert "Traceback" not in out.err
    (sweep_dir,) = (tmp_path / "results" / "default" / "sweeps").iterdir()
    for job in range(4):
        run = sweep_dir / str(job)
        assert summary.status(run) == "completed"
        rows = metrics.read_rows(run / runs.METRICS_FILE)
        assert [int(r["epoch"]) for r in rows] == [1, 2, 3]  # each epoch once: resumed
        assert json.loads((run / runs.SUMMARY_FILE).read_text())["epochs_run"] == 3
