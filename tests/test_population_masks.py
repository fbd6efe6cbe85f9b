"""Population dropout: every member draws its own masks, at its own configured rate.

The masks are measured where the engine makes them: ``Population.noise`` draws each
member's rates and uniform noise, and each ``MemberDropout`` layer of the population's
model applies them under ``vmap`` with ``functional_call``, as a training step does. The
layers are fed ones, so a unit's output is 0 where it was dropped and 1/(1-p) where kept.

Tolerances come from the binomial distribution: over N units dropped independently with
probability p, the measured drop fraction has standard deviation sqrt(p(1-p)/N), and the
Pearson correlation of two independent masks has standard deviation about 1/sqrt(N). Each
check allows 5 standard deviations (a false alarm about once in 1.7 million checks; the
draws are seeded, so a passing test passes every time). N is at least 4,096 units here, so
5 sd is at most 0.023 for a rate of 0.1, 0.038 for 0.6 and 0.078 for a correlation, while
the faults these tests look for move a rate by 0.05 or more (a halved 0.1) and a shared
mask's correlation to 0.27 or more (1 between equal rates).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor
from torch.func import functional_call, vmap

from helpers import cfg_maker
from regbench.data import batching
from regbench.store import runs
from regbench.training import loop as train
from regbench.training import population
from regbench.training.session import Session

SIGMAS = 5.0
IMAGES = 128  # per member and draw: the fc site, the smallest, has 128 x 32 = 4,096 units
# Two members at the rates of the brief (0.1 and 0.6), crossed between the conv and fc
# blocks so that a rate taken from the wrong block shows too, and a third member at the
# second one's rates with its own seed, so that equal rates cannot hide shared masks.
MEMBERS = [(0, {"conv": 0.6, "fc": 0.1}), (1, {"conv": 0.1, "fc": 0.6}),
           (2, {"conv": 0.1, "fc": 0.6})]


@pytest.fixture(scope="module")
def pop(tmp_path_factory: pytest.TempPathFactory) -> tuple[population.Population, list[Session]]:
    """The population of MEMBERS as the engine builds it (it only draws masks, never trains)."""
    tmp_path = tmp_path_factory.mktemp("masks")
    make_cfg = cfg_maker(tmp_path)
    cfgs = [make_cfg("trainer.epochs=1", f"seed={seed}", *(f"reg.dropout.{b}={p}"
                                                           for b, p in rates.items()))
            for seed, rates in MEMBERS]
    data = batching.load(cfgs[0].dataset)
    sessions = [Session.open(c, runs.make_run_dir(tmp_path / "pop", "t"), data,
                             torch.device("cpu"), compile=False) for c in cfgs]
    return population.Population.build(sessions), sessions


def masks(pop: population.Population, inputs: dict[str, Tensor]) -> dict[str, Tensor]:
    """Each dropout site's output on ones, [M, images, ...], run as a training step runs it."""
    out = {}
    for name, layer in pop.random.items():
        own = {k.removeprefix(f"{name}."): v for k, v in inputs.items()
               if k.startswith(f"{name}.")}  # this layer's tensors, by its own names
        ones = torch.ones(IMAGES, *layer.noise_shape)

        def step(tensors: dict[str, Tensor]) -> Tensor:
            return functional_call(layer, tensors, (ones,))

        out[name] = vmap(step)(own)
    return out


def block(layer: torch.nn.Module) -> str:
    """The block of a dropout site of the CNN: the head's noise is one number per unit."""
    return "fc" if len(layer.noise_shape) == 1 else "conv"


def configured(name: str, pop: population.Population, sessions: list[Session]) -> list[float]:
    return [getattr(s.cfg.reg.dropout, block(pop.random[name])) for s in sessions]


def correlation(a: Tensor, b: Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]).float())[0, 1])


def test_the_population_has_a_dropout_layer_at_every_site_a_member_uses(
        pop: tuple[population.Population, list[Session]]) -> None:
    engine, _ = pop
    blocks = sorted(block(d) for d in engine.random.values())
    assert blocks == ["conv", "conv", "fc"]  # after each of the two conv blocks, in the head
    assert all(d.training for d in engine.random.values())


def test_each_member_drops_units_at_its_own_configured_rate(
        pop: tuple[population.Population, list[Session]]) -> None:
    engine, sessions = pop
    out = masks(engine, engine.noise(sessions, epoch=1)(IMAGES))
    for name, site in out.items():
        for m, p in enumerate(configured(name, engine, sessions)):
            kept = site[m] != 0
            # kept units are scaled by 1/(1-p) of the member's own rate (inverted dropout)
            assert torch.allclose(site[m][kept], torch.tensor(1 / (1 - p))), (name, m, p)
            n = site[m].numel()
            dropped = 1 - kept.float().mean().item()
            tolerance = SIGMAS * math.sqrt(p * (1 - p) / n)
            assert abs(dropped - p) < tolerance, (name, m, p, dropped, tolerance)


def test_members_draw_independent_masks_on_the_same_batch(
        pop: tuple[population.Population, list[Session]]) -> None:
    engine, sessions = pop
    out = masks(engine, engine.noise(sessions, epoch=1)(IMAGES))
    for name, site in out.items():
        kept = site != 0
        tolerance = SIGMAS / math.sqrt(kept[0].numel())
        for a, b in ((0, 1), (0, 2), (1, 2)):
            assert abs(correlation(kept[a], kept[b])) < tolerance, (name, a, b)


def test_masks_are_new_in_every_step_and_every_epoch_and_follow_the_seed(
        pop: tuple[population.Population, list[Session]]) -> None:
    engine, sessions = pop
    epoch1 = engine.noise(sessions, epoch=1)
    first, second = masks(engine, epoch1(IMAGES)), masks(engine, epoch1(IMAGES))
    again = masks(engine, engine.noise(sessions, epoch=1)(IMAGES))
    epoch2 = masks(engine, engine.noise(sessions, epoch=2)(IMAGES))
    for name in first:
        assert torch.equal(first[name], again[name])  # (seed, epoch) fix the masks: resume
        tolerance = SIGMAS / math.sqrt(first[name][0].numel())
        for other in (second, epoch2):
            for m in range(len(sessions)):
                assert abs(correlation(first[name][m] != 0, other[name][m] != 0)) < tolerance


@pytest.mark.slow
def test_a_member_without_dropout_trains_as_alone_beside_one_with_heavy_dropout(
        tmp_path: Path) -> None:
    """End to end through ``population.train``: the rates reach the member they belong to.

    A member at rate 0 must train exactly as its sequential run (up to the float32 rounding
    of batched convolutions, see test_population.py) while it shares the population with a
    member at 0.8; given that member's rate, or its masks, its losses would move by far more.
    """
    make_cfg = cfg_maker(tmp_path)
    base = ["trainer.epochs=1", "dataset.train_size=300", "trainer.deterministic=true",
            "trainer.checkpoint=false"]
    plain = make_cfg(*base, "seed=0")
    heavy = make_cfg(*base, "seed=1", "reg.dropout.fc=0.8", "reg.dropout.conv=0.5")
    dirs = [runs.make_run_dir(tmp_path / "pop", "t") for _ in range(2)]
    results = train.train([train.Member(plain, dirs[0]), train.Member(heavy, dirs[1])],
                          population.PopulationEngine())
    alone = train.run(plain, runs.make_run_dir(tmp_path / "seq", "t"))
    assert all(isinstance(r, train.RunResult) and r.status == "completed" for r in results)
    columns = ["train_loss", "val_loss", "train_loss_running"]
    np.testing.assert_allclose([[r[c] for c in columns] for r in results[0].rows],  # type: ignore[union-attr]
                               [[r[c] for c in columns] for r in alone.rows], rtol=1e-4)
