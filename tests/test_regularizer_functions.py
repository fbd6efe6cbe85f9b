"""The dropout and regularizer functions, one by one, against hand computations.

Random functions are checked exactly: the same seed draws the same mask or noise, and the
expected tensor is built here from that draw with the formula the docstring states.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from regbench.training import layers as L
from regbench.training.regularizers import base
from regbench.training.regularizers import schedule as schedules
from regbench.training.regularizers.dropout import Dropout
from regbench.training.regularizers.early_stopping import EarlyStopping
from regbench.training.regularizers.max_norm import apply_max_norm
from regbench.training.regularizers.penalty import penalty


def test_make_dropout_by_rate_and_kind() -> None:
    assert isinstance(L.make_dropout(0.0), nn.Identity)
    assert isinstance(L.make_dropout(-0.1, "gaussian"), nn.Identity)
    standard, spatial, gaussian = (L.make_dropout(0.3, k) for k in ("standard", "spatial", "gaussian"))
    assert type(standard) is nn.Dropout and type(spatial) is nn.Dropout2d
    assert type(gaussian) is L.GaussianDropout
    assert standard.p == spatial.p == gaussian.p == 0.3
    assert type(L.make_dropout(1e-6)) is nn.Dropout  # any positive rate is a layer


def test_gaussian_noise_is_x_times_one_plus_scaled_normal_noise() -> None:
    x = torch.linspace(-2.0, 2.0, 50)
    torch.manual_seed(3)
    noise = torch.randn(50)
    torch.manual_seed(3)
    out = L.gaussian_noise(x, 0.2)
    torch.testing.assert_close(out, x * (1.0 + math.sqrt(0.2 / 0.8) * noise))


def test_random_layers_act_in_training_mode_only_and_show_their_rate() -> None:
    layer = L.GaussianDropout(0.5)
    x = torch.ones(1000)
    assert not torch.equal(layer(x), x)  # training (the default): noise
    layer.eval()
    assert torch.equal(layer(x), x)
    off = L.GaussianDropout(0.0)
    state = torch.get_rng_state()
    assert torch.equal(off(x), x)  # rate 0: nothing, even in training
    assert torch.equal(torch.get_rng_state(), state)  # and no noise drawn (the stream unchanged)
    assert "p=0.5" in repr(layer)


def test_dropout_layers_and_the_rate_in_force() -> None:
    model = nn.Sequential(nn.Dropout(0.2), nn.Linear(2, 2), L.GaussianDropout(0.6),
                          nn.Dropout2d(0.4), nn.ReLU())
    assert [type(m) for m in L.dropout_layers(model)] == [nn.Dropout, L.GaussianDropout, nn.Dropout2d]
    assert L.rate_in_force(model) == 0.6
    assert L.rate_in_force(nn.Sequential(nn.Linear(2, 2))) == 0.0


def test_drop_connect_zeroes_weights_and_scales_the_survivors() -> None:
    w = torch.arange(1.0, 201.0).reshape(10, 20)
    torch.manual_seed(1)
    keep = torch.empty_like(w).bernoulli_(0.75)
    torch.manual_seed(1)
    out = L.drop_connect(w, 0.25)
    torch.testing.assert_close(out, w * keep / 0.75)
    assert 0 < int(keep.sum()) < w.numel()  # the draw kept some and dropped some
    mask = L.DropConnectMask(0.25)
    torch.manual_seed(1)
    torch.testing.assert_close(mask(w), w * keep / 0.75)
    mask.eval()
    assert torch.equal(mask(w), w)


def test_curriculum_rate_rises_from_zero_towards_p() -> None:
    assert schedules.curriculum_rate(0.5, 1, 0.3) == 0.0  # no finished epoch yet
    assert schedules.curriculum_rate(0.5, 3, 0.3) == pytest.approx(0.5 * (1 - math.exp(-0.6)))
    assert schedules.curriculum_rate(0.5, 200, 0.3) == pytest.approx(0.5)


def test_phase_rate_switches_after_the_first_part() -> None:
    # 10 epochs, switch at 0.25: the first part is ceil(2.5) = 3 epochs
    early = [schedules.phase_rate(0.4, e, 10, 0.25, early=True) for e in range(1, 6)]
    late = [schedules.phase_rate(0.4, e, 10, 0.25, early=False) for e in range(1, 6)]
    assert early == [0.4, 0.4, 0.4, 0.0, 0.0] and late == [0.0, 0.0, 0.0, 0.4, 0.4]
    assert schedules.phase_rate(0.4, 2, 10, 0.2, early=True) == 0.4  # exactly 2 epochs: epoch 2 is in


@pytest.mark.parametrize(("gap", "expected"), [
    (0.30, 0.6),  # above the target: up by the step, at most high
    (0.11, 0.5),  # above the target, room for a step
    (0.10, 0.4),  # at the target: dead band, unchanged
    (0.05, 0.4),  # at half the target: still the dead band
    (0.04, 0.3),  # below half: down by the step
])
def test_adaptive_rate_moves_by_a_step_outside_the_dead_band(gap: float, expected: float) -> None:
    high = 0.6 if gap == 0.30 else 0.9
    rate = 0.55 if gap == 0.30 else 0.4
    assert schedules.adaptive_rate(rate, gap, target=0.1, step=0.1, high=high) == pytest.approx(expected)


def test_adaptive_rate_stays_within_zero_and_high() -> None:
    assert schedules.adaptive_rate(0.05, 0.0, target=0.1, step=0.1, high=0.5) == 0.0
    assert schedules.adaptive_rate(0.45, 1.0, target=0.1, step=0.1, high=0.5) == 0.5


def test_decayed_parameters_are_weights_unless_asked_otherwise() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 3))
    model[1].weight.requires_grad_(False)  # frozen: in neither group
    decay, no_decay = base.split_params(model)
    assert [tuple(p.shape) for p in decay] == [(2, 1, 3, 3), (3, 2)]
    assert [tuple(p.shape) for p in no_decay] == [(2,), (2,), (3,)]  # conv bias, bn bias, fc bias
    everything, none = base.split_params(model, decay_bias_and_norm=True)
    assert len(everything) == 5 and none == []
    assert base.is_decayed(torch.zeros(2, 2)) and not base.is_decayed(torch.zeros(2))
    assert base.is_decayed(torch.zeros(2), decay_bias_and_norm=True)


def test_penalty_sums_over_every_tensor() -> None:
    a, b = torch.tensor([[1.0, -2.0]]), torch.tensor([[3.0], [-0.5]])
    # l2/2 * (1 + 4 + 9 + 0.25) + l1 * (1 + 2 + 3 + 0.5)
    assert penalty([a, b], l2=0.2).item() == pytest.approx(0.1 * 14.25)
    assert penalty([a, b], l1=0.3).item() == pytest.approx(0.3 * 6.5)
    assert penalty([a, b], l2=0.2, l1=0.3).item() == pytest.approx(1.425 + 1.95)
    assert penalty(iter([a, b]), l2=0.2).item() == pytest.approx(1.425)  # any iterable
    assert penalty([a], l2=0.0, l1=0.0) is None


def test_max_norm_rescales_only_rows_above_the_bound_and_skips_vectors() -> None:
    w = torch.tensor([[6.0, 8.0], [0.6, 0.8], [3.0, 0.0]])  # norms 10, 1, 3
    bias = torch.tensor([30.0, 40.0])
    apply_max_norm([w, bias], 3.0)
    torch.testing.assert_close(w, torch.tensor([[1.8, 2.4], [0.6, 0.8], [3.0, 0.0]]))
    assert torch.equal(bias, torch.tensor([30.0, 40.0]))


def test_dropout_enters_at_its_sites() -> None:
    after = Dropout(input=0.1, conv=0.2, fc=0.5, kind="spatial")
    kinds = {(b, s): [(type(m).__name__, m.p) for m in after.layers(base.Site(b, s, 4))]
             for b in ("input", "conv", "fc") for s in ("norm", "pre_norm", "post")}
    assert kinds[("input", "post")] == [("Dropout", 0.1)]  # element-wise on the image
    assert kinds[("conv", "post")] == [("Dropout2d", 0.2)]
    assert kinds[("fc", "post")] == [("Dropout", 0.5)]  # the head: element-wise
    assert kinds[("conv", "pre_norm")] == kinds[("fc", "norm")] == []
    before = Dropout(input=0.0, conv=0.2, fc=0.0, position="before_bn")
    assert [type(m) for m in before.layers(base.Site("conv", "pre_norm", 4))] == [nn.Dropout]
    assert before.layers(base.Site("conv", "post", 4)) == []
    assert before.layers(base.Site("input", "post", 1)) == []  # input rate 0
    assert before.layers(base.Site("fc", "pre_norm", 8)) == []  # fc rate 0
    # a block of another name (a model's own sites) gets no dropout from these rates
    assert after.layers(base.Site("stage", "post", 4)) == []
    gauss = Dropout(input=0.1, conv=0.2, fc=0.3, kind="gaussian")
    assert {type(m) for b in ("input", "conv", "fc") for m in gauss.layers(base.Site(b, "post", 2))} \
        == {L.GaussianDropout}


def schedule(kind: str, gamma: float | None = None) -> schedules.DropoutSchedule:
    return schedules.DropoutSchedule(kind, gamma, switch_at=0.5, target=0.1, step=0.1, high=0.9, epochs=4)


def test_schedule_rates() -> None:
    assert schedule("curriculum").rate(0.5, 2) == pytest.approx(0.5 * (1 - math.exp(-10 / 4)))
    assert schedule("curriculum", 1.0).rate(0.5, 2) == pytest.approx(0.5 * (1 - math.exp(-1)))
    assert [schedule("early").rate(0.5, e) for e in (2, 3)] == [0.5, 0.0]
    assert [schedule("late").rate(0.5, e) for e in (2, 3)] == [0.0, 0.5]
    adaptive = schedule("adaptive")
    adaptive.base = [(nn.Dropout(0.2), 0.2), (nn.Dropout(0.5), 0.5)]
    adaptive.level = 0.3
    assert adaptive.rate(0.2, 1) == pytest.approx(0.2 * 0.3 / 0.5)  # its share of the top rate


def test_early_stopping_improvement_and_patience() -> None:
    loss = EarlyStopping("val_loss", patience=2, min_delta=0.1)
    assert loss.sign == 1.0 and EarlyStopping("train_acc").sign == -1.0
    assert not loss.improved(math.nan)  # nothing non-finite counts, not even first
    assert loss.improved(5.0)  # the first finite value always does
    model = nn.Linear(1, 1)
    assert loss.step(1.0, 1, model) is False
    assert loss.best == 1.0 and loss.best_epoch == 1 and loss.best_state is not None
    torch.testing.assert_close(loss.best_state["weight"], model.weight.detach())
    with torch.no_grad():
        model.weight.add_(1.0)  # the kept copy must not follow the model
    assert not torch.equal(loss.best_state["weight"], model.weight)
    assert not loss.improved(0.9)  # better by exactly min_delta: not by more
    assert loss.improved(0.85)
    assert loss.step(0.95, 2) is False and loss.bad_epochs == 1
    assert loss.step(math.inf, 3) is True and loss.bad_epochs == 2  # patience 2 reached
    assert loss.step(0.5, 4) is False and loss.bad_epochs == 0 and loss.best_epoch == 4
    acc = EarlyStopping("val_acc", patience=1)
    acc.step(0.5, 1)
    assert acc.improved(0.6) and not acc.improved(0.5) and not acc.improved(0.4)
