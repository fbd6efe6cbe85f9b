"""Each regularizer does what its docstring says."""

from __future__ import annotations

import torch
from torch import nn

from regbench.training import layers, regularizers
from regbench.training.models import build
from regbench.training.models.cnn import CNNConfig
from regbench.training.regularizers import RegConfig, describe_groups
from regbench.training.regularizers.dropout import DropoutConfig
from regbench.training.regularizers.early_stopping import EarlyStopping
from regbench.training.regularizers.max_norm import apply_max_norm
from regbench.training.regularizers.penalty import penalty


def tiny_cnn(batchnorm: bool = False, **dropout: object) -> nn.Sequential:
    reg = RegConfig(dropout=DropoutConfig(**dropout), batchnorm=batchnorm)  # type: ignore[arg-type]
    model = build(CNNConfig(channels=[4, 8], hidden=16), reg, in_channels=1, image_size=(28, 28))
    assert isinstance(model, nn.Sequential) and str(model).startswith("CNN(")
    return model


def param_groups(model: nn.Module, weight_decay: float, decay_bias_and_norm: bool = False
                 ) -> list[dict[str, object]]:
    reg = RegConfig(weight_decay=weight_decay, decay_bias_and_norm=decay_bias_and_norm)
    return regularizers.Regularization.from_config(reg).param_groups(model)


def test_dropout_is_active_in_train_mode_and_off_in_eval_mode() -> None:
    torch.manual_seed(0)
    model = tiny_cnn(input=0.2, conv=0.3, fc=0.5)
    x = torch.randn(16, 1, 28, 28)
    model.eval()
    assert torch.equal(model(x), model(x))  # deterministic: every unit used
    model.train()
    assert not torch.equal(model(x), model(x))  # a different thinned network each pass


def test_inverted_dropout_keeps_the_expected_activation() -> None:
    torch.manual_seed(0)
    drop = layers.make_dropout(0.5)
    drop.train()
    out = drop(torch.ones(200_000))
    assert set(out.unique().tolist()) == {0.0, 2.0}  # survivors scaled by 1 / (1 - p)
    assert abs(out.mean().item() - 1.0) < 0.01


def test_zero_rate_adds_no_layer_and_print_shows_rates() -> None:
    assert not any(isinstance(m, (nn.Dropout, nn.Dropout2d)) for m in tiny_cnn().modules())
    text = str(tiny_cnn(conv=0.25, fc=0.5, kind="spatial"))
    assert "Dropout2d(p=0.25" in text and "Dropout(p=0.5" in text


def test_dropout_position_relative_to_batch_norm() -> None:
    def kinds(model: nn.Sequential) -> list[str]:
        return [type(m).__name__ for m in model]

    after = kinds(tiny_cnn(batchnorm=True, conv=0.2, fc=0.5, position="after_bn"))
    before = kinds(tiny_cnn(batchnorm=True, conv=0.2, fc=0.5, position="before_bn"))
    assert after[:5] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d", "Dropout"]
    assert before[:5] == ["Conv2d", "Dropout", "BatchNorm2d", "ReLU", "MaxPool2d"]
    assert before[-5:] == ["Linear", "Dropout", "BatchNorm1d", "ReLU", "Linear"]
    assert after[-4:] == ["BatchNorm1d", "ReLU", "Dropout", "Linear"]


def test_l2_and_l1_penalty_match_a_hand_computation() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -2.0], [3.0, 0.5]]))
        model[0].bias.fill_(10.0)  # biases are not penalised
        model[1].weight.copy_(torch.tensor([[-1.0, 2.0]]))
    decayed, _ = regularizers.split_params(model)
    # sum of squares = 1 + 4 + 9 + 0.25 + 1 + 4 = 19.25; sum of |w| = 1 + 2 + 3 + 0.5 + 1 + 2 = 9.5
    assert abs(penalty(decayed, l2=0.1).item() - 0.05 * 19.25) < 1e-6
    assert abs(penalty(decayed, l1=0.01).item() - 0.095) < 1e-7
    assert abs(penalty(decayed, l2=0.1, l1=0.01).item() - (0.9625 + 0.095)) < 1e-6
    assert penalty(decayed) is None


def test_l2_gradient_is_lambda_times_w() -> None:
    w = nn.Parameter(torch.tensor([[2.0, -3.0]]))
    penalty([w], l2=0.5).backward()
    assert torch.allclose(w.grad, 0.5 * w.detach())


def test_biases_and_batch_norm_are_not_decayed_by_default() -> None:
    model = tiny_cnn(batchnorm=True)
    groups = param_groups(model, weight_decay=1e-3)
    decay, no_decay = groups[0], groups[1]
    assert decay["weight_decay"] == 1e-3 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decay["params"])
    bn_params = {id(p) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
                 for p in m.parameters()}
    assert bn_params and bn_params <= {id(p) for p in no_decay["params"]}
    biases = {id(m.bias) for m in model.modules() if isinstance(m, nn.Linear) and m.bias is not None}
    assert biases
    assert biases <= {id(p) for p in no_decay["params"]}
    everything = param_groups(model, 1e-3, decay_bias_and_norm=True)
    assert len(everything) == 1 and len(everything[0]["params"]) == len(list(model.parameters()))
    assert "no_decay" in describe_groups(groups)


def test_weight_decay_shrinks_decayed_weights_only() -> None:
    model = nn.Linear(3, 2)
    before_w, before_b = model.weight.detach().clone(), model.bias.detach().clone()
    opt = torch.optim.SGD(param_groups(model, weight_decay=0.1), lr=1.0)
    model.weight.grad = torch.zeros_like(model.weight)
    model.bias.grad = torch.zeros_like(model.bias)
    opt.step()
    assert torch.allclose(model.weight, before_w * 0.9)
    assert torch.equal(model.bias, before_b)


def test_max_norm_bounds_each_units_incoming_weights() -> None:
    w = torch.tensor([[3.0, 4.0], [0.3, 0.4]])  # norms 5 and 0.5
    apply_max_norm([w], 2.0)
    assert torch.allclose(w.norm(dim=1), torch.tensor([2.0, 0.5]), atol=1e-5)


def test_early_stopping_on_a_scripted_curve() -> None:
    es = EarlyStopping("val_loss", patience=2, min_delta=0.01)
    curve = [1.0, 0.8, 0.795, 0.9, 0.7]  # 0.795 is not better by min_delta
    stops = [es.step(v, epoch) for epoch, v in enumerate(curve[:4], start=1)]
    assert stops == [False, False, False, True]
    assert es.best_epoch == 2 and es.best == 0.8
    acc = EarlyStopping("val_acc", patience=1)
    assert [acc.step(v, e) for e, v in enumerate([0.5, 0.7, 0.6], 1)] == [False, False, True]
    assert acc.best_epoch == 2
