"""Beyond a fixed rate: test-time dropout, schedules, Gaussian dropout, DropConnect."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from regbench.data import batching
from regbench.training import calibration
from regbench.training import regularizers
from regbench.training.layers import GaussianDropout, dropout_layers, make_dropout, rate_in_force
from regbench.store import runs
from regbench.training import loop as train
from regbench.training.models.cnn import CNNConfig
from regbench.training.regularizers import RegConfig
from regbench.training.regularizers.dropout import DropoutConfig
from regbench.training.regularizers.schedule import DropoutSchedule
from regbench.training.schema import RegbenchConfig
from regbench.store.metrics import Row
from regbench.training.curves import convergence_epoch
from regbench.training.models import build


def mlp(p: float) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 32), nn.ReLU(), nn.Dropout(p), nn.Linear(32, 3))


def toy_data(n: int = 12) -> batching.Data:
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (n, 1, 2, 2), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 3, (n,), generator=g)
    split = batching.Split(x, y)
    return batching.Data("toy", split, split, split, torch.tensor([0.5]), torch.tensor([0.3]), "none")


def test_mc_average_equals_a_hand_loop_over_the_same_masks() -> None:
    model, data, samples = mlp(0.5), toy_data(), 7
    masks: list[torch.Tensor] = []
    model[3].register_forward_hook(lambda m, inp, out: masks.append((out / inp[0]).nan_to_num()))
    torch.manual_seed(3)
    log_probs, labels = calibration.predict(model, data.test, data, batch_size=1024, samples=samples)
    (mask,) = masks  # one vectorised pass: T copies of the 12 images
    assert mask.shape == (samples * 12, 32) and not model[3].training  # dropout back off
    with torch.no_grad():  # the hand loop: one pass per mask
        x = batching.normalize(data.test.x, data.mean, data.std)
        hidden = model[2](model[1](model[0](x)))  # where ReLU gave 0 the mask does not matter
        probs = torch.stack([F.softmax(model[4](hidden * mask.view(samples, 12, 32)[t]), 1)
                             for t in range(samples)]).mean(0)
    torch.testing.assert_close(log_probs, probs.log(), rtol=1e-5, atol=1e-6)
    assert torch.equal(labels, data.test.y)
    assert len({m.sum().item() for m in mask.view(samples, -1)}) > 1  # the T masks differ


@pytest.mark.parametrize("kind", ["standard", "gaussian"])
def test_mc_average_with_every_rate_zero_is_weight_scaling(kind: str) -> None:
    reg = RegConfig(dropout=DropoutConfig(conv=0.3, fc=0.5, kind=kind))
    model = build(CNNConfig(channels=[4], hidden=8), reg, in_channels=1, image_size=(2, 2))
    data = toy_data()
    mc, _ = calibration.predict(model, data.test, data, 1024, samples=5)
    scaled, _ = calibration.predict(model, data.test, data, 1024)
    assert not torch.allclose(mc, scaled)  # dropout on: the passes differ from weight scaling
    for m in dropout_layers(model):
        m.p = 0.0
    mc, _ = calibration.predict(model, data.test, data, 1024, samples=5)
    torch.testing.assert_close(mc, scaled)


def test_ece_matches_a_hand_computation() -> None:
    # confidences 0.9, 0.9, 0.59, 0.56, 0.7 (none on a bin edge)
    probs = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.41, 0.59], [0.56, 0.44], [0.7, 0.3]])
    labels = torch.tensor([0, 1, 1, 1, 0])
    # bins (13/15, 14/15]: 0.9, 0.9 -> acc 1/2, conf 0.9; (8/15, 9/15]: 0.59, 0.56 -> acc 1/2,
    # conf 0.575; (10/15, 11/15]: 0.7 -> acc 1, conf 0.7
    hand = (2 * abs(0.5 - 0.9) + 2 * abs(0.5 - 0.575) + 1 * abs(1 - 0.7)) / 5
    assert calibration.expected_calibration_error(probs, labels) == pytest.approx(hand)
    assert calibration.expected_calibration_error(torch.eye(3), torch.arange(3)) == 0.0


def test_scores_nll_is_cross_entropy() -> None:
    logits = torch.randn(50, 10, generator=torch.Generator().manual_seed(0))
    y = torch.arange(50) % 10
    s = calibration.scores(F.log_softmax(logits, 1), y)
    assert s["test_nll"] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    assert s["test_acc"] == pytest.approx((logits.argmax(1) == y).float().mean().item())


def rates(schedule: str, epochs: int, gaps: list[float] | None = None, **kw: float) -> list[float]:
    reg = RegConfig(dropout=DropoutConfig(conv=0.2, fc=0.5, schedule=schedule, **kw))  # type: ignore[arg-type]
    model = build(CNNConfig(channels=[4], hidden=8), reg, in_channels=1, image_size=(4, 4))
    regs = regularizers.Regularization.from_config(reg, epochs)
    out = []
    for epoch in range(1, epochs + 1):
        regs.start_epoch(epoch, model)
        out.append(rate_in_force(model))
        conv = dropout_layers(model)[0].p
        assert conv == pytest.approx(0.4 * out[-1])  # every layer keeps its share of the head's rate
        gap = (gaps or [0.0] * epochs)[epoch - 1]
        regs.end_epoch(Row(epoch=epoch, train_loss=0, train_acc=0.5 + gap, val_loss=0, val_acc=0.5), model)
    return out


def test_each_schedules_rate_per_epoch_follows_its_formula() -> None:
    assert rates("curriculum", 4) == pytest.approx([0.5 * (1 - math.exp(-2.5 * t)) for t in range(4)])
    assert rates("curriculum", 3, curriculum_gamma=1.0) == pytest.approx(
        [0.0, 0.5 * (1 - math.exp(-1)), 0.5 * (1 - math.exp(-2))])
    assert rates("early", 5, switch_at=0.4) == [0.5, 0.5, 0.0, 0.0, 0.0]
    assert rates("late", 5, switch_at=0.4) == [0.0, 0.0, 0.5, 0.5, 0.5]
    # adaptive: gap 0.1 > target 0.02 raises by 0.1 (up to 0.7); 0.015 is in the dead band;
    # 0.0 < 0.01 lowers
    assert rates("adaptive", 6, gaps=[0.1, 0.1, 0.1, 0.015, 0.0, 0.0], adaptive_step=0.1,
                 adaptive_max=0.7) == pytest.approx([0.5, 0.6, 0.7, 0.7, 0.7, 0.6])
    assert rates("constant", 3) == [0.5, 0.5, 0.5]
    constant = regularizers.Regularization.from_config(RegConfig(dropout=DropoutConfig(fc=0.5)), 3)
    assert not any(isinstance(r, DropoutSchedule) for r in constant.active)


@pytest.mark.slow
def test_a_late_schedule_is_recorded_in_metrics_csv(make_cfg: Callable[..., RegbenchConfig],
                                                    tmp_path: Path) -> None:
    cfg = make_cfg("reg=dropout", "reg.dropout.schedule=late", "trainer.epochs=2",
                   "trainer.checkpoint=false", "dataset.train_size=100")
    (tmp_path / "run").mkdir()
    result = train.run(cfg, tmp_path / "run")
    assert pd.read_csv(tmp_path / "run" / runs.METRICS_FILE)["dropout_rate"].tolist() == [0.0, 0.5]
    assert result.summary.mc_dropout is None and 0 <= result.summary.test_ece <= 1


def test_gaussian_dropout_has_mean_one_and_the_variance_of_dropout() -> None:
    torch.manual_seed(0)
    drop = make_dropout(0.3, "gaussian")
    x = torch.ones(400_000)
    noise = drop(x)
    # standard errors: mean sqrt(0.43 / 4e5) ~ 0.001, variance ~ 0.43 * sqrt(2 / 4e5) ~ 0.001
    assert noise.mean().item() == pytest.approx(1.0, abs=0.005)
    assert noise.var().item() == pytest.approx(0.3 / 0.7, abs=0.005)
    bernoulli = make_dropout(0.3)(x)
    assert bernoulli.var().item() == pytest.approx(noise.var().item(), abs=0.01)
    drop.eval()
    assert torch.equal(drop(x), x)


def test_gaussian_kind_replaces_every_dropout_layer() -> None:
    reg = RegConfig(dropout=DropoutConfig(input=0.1, conv=0.2, fc=0.5, kind="gaussian"))
    model = build(CNNConfig(channels=[4], hidden=8), reg, in_channels=1, image_size=(4, 4))
    layers = dropout_layers(model)
    assert [type(m) for m in layers] == [GaussianDropout] * 3
    assert [m.p for m in layers] == [0.1, 0.2, 0.5]


def test_dropconnect_is_off_in_eval_mode_and_scaled_in_training() -> None:
    torch.manual_seed(0)
    model = build(CNNConfig(channels=[4], hidden=64), RegConfig(dropconnect=0.4), in_channels=1,
                  image_size=(4, 4))
    head = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(head) == 2
    layer = head[0]
    raw = layer.parametrizations.weight.original
    model.eval()
    assert torch.equal(layer.weight, raw)  # inference: the weights as trained (weight scaling)
    model.train()
    w = layer.weight
    kept = w != 0
    assert kept.float().mean().item() == pytest.approx(0.6, abs=0.03)  # 4,096 weights
    torch.testing.assert_close(w[kept], raw[kept] / 0.6)
    mean = torch.stack([layer.weight for _ in range(2000)]).mean(0)
    torch.testing.assert_close(mean, raw, atol=0.03, rtol=0)  # unbiased: E[mask / 0.6] = 1
    assert not dropout_layers(model)  # DropConnect is not activation dropout


def test_convergence_epoch_on_a_scripted_curve() -> None:
    accs = [0.50, 0.80, 0.925, 0.93, 0.915, 0.912]
    rows = [Row(epoch=i + 1, train_loss=0, train_acc=1, val_loss=0, val_acc=a) for i, a in enumerate(accs)]
    assert convergence_epoch(rows) == 3  # 0.925 is within 1 point of the best, 0.93
    assert convergence_epoch(rows, within=0.0) == 4
    assert convergence_epoch([]) is None


def test_reg_augment_turns_on_the_training_augmentation(make_cfg: Callable[..., RegbenchConfig]) -> None:
    cfg = make_cfg("reg=augment")
    assert cfg.reg.augment and not cfg.dataset.augment
    data = batching.load(cfg.dataset, augment=cfg.dataset.augment or cfg.reg.augment)
    assert data.augment == "shift" and batching.load(cfg.dataset).augment == "none"
