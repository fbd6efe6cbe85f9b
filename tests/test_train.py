"""The training loop: metrics done right, early stopping, checkpoints, learning."""

from __future__ import annotations

import copy
import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from regbench.data import batching
from regbench.store import metrics
from regbench.training import curves
from regbench.store import runs
from regbench.training import loop as train
from regbench.training import models
from regbench.training import session
from regbench.training.device import prepare_batch, prepare_model
from regbench.training.schema import RegbenchConfig


def run_dir_for(tmp_path: Path) -> Path:
    return runs.make_run_dir(tmp_path / "results", "test")


def test_run_writes_the_contract_files(make_cfg: Callable[..., RegbenchConfig], tmp_path: Path) -> None:
    cfg = make_cfg("reg=dropout", "reg.l2=1e-3", "dataset.train_size=200")
    result = train.run(cfg, run_dir_for(tmp_path))
    assert result.status == "completed" and result.exit_code == 0
    with open(result.run_dir / "metrics.csv") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == metrics.COLUMNS and len(rows) == 3
    summary = json.loads((result.run_dir / "summary.json").read_text())
    for key in ("status", "epochs_run", "best_epoch", "stopped_epoch", "best", "last", "onset_epoch",
                "test_loss", "test_acc", "wall_time_s", "train_images_per_s", "n_params", "device",
                "seed", "versions"):
        assert key in summary
    assert set(summary["best"]) == set(metrics.COLUMNS) == set(summary["last"])
    last = result.rows[-1]
    assert last["gap_acc"] == pytest.approx(last["train_acc"] - last["val_acc"])
    assert last["gap_loss"] == pytest.approx(last["val_loss"] - last["train_loss"])
    assert 0 <= last["train_acc"] <= 1 and last["penalty"] > 0
    assert (result.run_dir / "config.yaml").read_text().count("l2: 0.001") == 1


def full_pass(model: nn.Module, split: batching.Split, data: batching.Data, batch_size: int,
              *, train_mode: bool) -> tuple[float, float]:
    """Mean cross-entropy and accuracy over a split, computed here with the model in the given
    mode (the loop's own `evaluate` is what is under test, so it is not used)."""
    model.train(train_mode)
    loss_sum, correct = torch.zeros(()), 0
    with torch.no_grad():
        for x, y in batching.batches(split, batch_size, mean=data.mean, std=data.std):
            logits = model(prepare_batch(x))
            loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
            correct += int((logits.argmax(1) == y).sum())
    return loss_sum.item() / len(split), correct / len(split)


def test_the_evaluation_pass_runs_in_eval_mode_on_a_tiny_deterministic_model() -> None:
    # batch norm with its initial running statistics and dropout at 0.5: a train-mode pass
    # normalises with the batch's own statistics and drops units, so its loss differs
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * 4, 8),
                                torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Dropout(0.5),
                                torch.nn.Linear(8, 3))
    g = torch.Generator().manual_seed(1)
    split = batching.Split(torch.randint(0, 256, (48, 1, 4, 4), dtype=torch.uint8, generator=g),
                           torch.randint(0, 3, (48,), generator=g))
    data = batching.Data("tiny", split, split, split, torch.tensor([0.5]), torch.tensor([0.25]),
                         "none")
    model.train()  # as a training epoch leaves it
    loss, acc = session.evaluate(model, split, data, 16)
    with torch.no_grad():
        x = batching.normalize(split.x, data.mean, data.std)
        logits = model.eval()(x)
    assert loss == pytest.approx(F.cross_entropy(logits, split.y).item(), rel=1e-5)
    assert acc == int((logits.argmax(1) == split.y).sum()) / len(split)
    assert not model.training and len(model[2].running_mean.nonzero()) == 0  # stats untouched


@pytest.mark.slow
@pytest.mark.parametrize("overrides", [
    ["reg.dropout.fc=0.5", "reg.dropout.conv=0.25"],  # dropout: train mode drops units
    ["reg.batchnorm=true"],  # batch norm: train mode normalises with the batch's statistics
], ids=["dropout", "batchnorm"])
def test_train_metrics_are_an_eval_mode_pass_and_not_a_train_mode_one(
        make_cfg: Callable[..., RegbenchConfig], tmp_path: Path, overrides: list[str]) -> None:
    # AdamW at 1e-2 fits the synthetic data in two epochs, so dropout and batch statistics
    # move the outputs of a trained model, not of a near-uniform one
    cfg = make_cfg(*overrides, "optim.lr=0.01", "trainer.train_eval_size=300",
                   "trainer.compile=false")
    result = train.run(cfg, run_dir_for(tmp_path))
    last = result.rows[-1]
    # the last epoch's weights and batch-norm statistics, as the checkpoint after it holds them
    data = batching.load(cfg.dataset)
    model = prepare_model(models.build(cfg.model, cfg.reg, data.in_channels, data.image_size),
                          torch.device("cpu"))
    model.load_state_dict(torch.load(result.run_dir / runs.CHECKPOINT_FILE,
                                     weights_only=True)["model"])
    size = cfg.trainer.eval_batch_size
    subset = batching.fixed_subset(data.train, cfg.trainer.train_eval_size, cfg.seed)
    in_train_mode = full_pass(copy.deepcopy(model), subset, data, size, train_mode=True)
    assert (last["train_loss"], last["train_acc"]) == full_pass(model, subset, data, size,
                                                                train_mode=False)
    assert (last["val_loss"], last["val_acc"]) == full_pass(model, data.val, data, size,
                                                            train_mode=False)
    assert abs(in_train_mode[0] - last["train_loss"]) > 0.02 * last["train_loss"]


@pytest.mark.slow
def test_early_stopping_stops_on_a_scripted_curve_and_restores_best(
        make_cfg: Callable[..., RegbenchConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    val_curve = [1.0, 0.5, 0.7, 0.8, 0.9, 0.95]
    real_evaluate = session.evaluate
    calls: list[torch.Tensor] = []

    def scripted(model: torch.nn.Module, split: object, data: object, bs: int,
                 *rest: object) -> tuple[float, float]:
        loss, acc = real_evaluate(model, split, data, bs, *rest)  # type: ignore[arg-type]
        calls.append(torch.cat([p.detach().flatten().clone() for p in model.parameters()]))
        n = len(calls)
        if n % 2 == 0 and n // 2 <= len(val_curve):  # every second call is the val pass
            return val_curve[n // 2 - 1], acc
        return loss, acc

    monkeypatch.setattr(session, "evaluate", scripted)
    cfg = make_cfg("reg=early_stopping", "reg.early_stopping.patience=2", "trainer.epochs=6")
    result = train.run(cfg, run_dir_for(tmp_path))
    s = result.summary
    assert (result.status, s.best_epoch, s.stopped_epoch, s.epochs_run) == ("early_stopped", 2, 4, 4)
    assert len(metrics.read_rows(result.run_dir / "metrics.csv")) == 4
    assert len(calls) == 9  # 4 epochs x (train, val) + the test pass
    assert torch.equal(calls[-1], calls[3])  # tested with the weights seen at epoch 2's val pass
    assert not torch.equal(calls[-1], calls[7])
    assert "kept the weights of epoch 2" in s.verdict


@pytest.mark.slow
def test_divergence_stops_at_once_and_keeps_finished_epochs(
        make_cfg: Callable[..., RegbenchConfig], tmp_path: Path) -> None:
    cfg = make_cfg("optim=sgd", "optim.lr=1e6", "trainer.epochs=4",
                   "dataset.train_size=200")  # overflows at once
    result = train.run(cfg, run_dir_for(tmp_path))
    assert result.status == "diverged" and result.exit_code == 1
    assert len(metrics.read_rows(result.run_dir / "metrics.csv")) == result.summary.epochs_run < 4


@pytest.mark.slow
def test_same_seed_same_metrics_other_seed_differs(make_cfg: Callable[..., RegbenchConfig],
                                                   tmp_path: Path) -> None:
    def curve(seed: int) -> list[dict[str, float]]:
        cfg = make_cfg(f"seed={seed}", "trainer.deterministic=true", "reg=dropout")
        rows = train.run(cfg, run_dir_for(tmp_path)).rows
        return [{k: v for k, v in r.as_dict().items() if k not in metrics.TIMING_COLUMNS} for r in rows]

    assert curve(3) == curve(3)
    assert curve(3) != curve(4)


@pytest.mark.slow
def test_resume_continues_from_the_checkpoint(make_cfg: Callable[..., RegbenchConfig],
                                              tmp_path: Path) -> None:
    def strip(rows: list[dict[str, float]]) -> list[dict[str, float]]:
        return [{k: v for k, v in r.as_dict().items() if k not in metrics.TIMING_COLUMNS} for r in rows]

    full = train.run(make_cfg("trainer.epochs=3", "trainer.deterministic=true", "reg=dropout",
                              "dataset.augment=true"), run_dir_for(tmp_path))
    part_dir = run_dir_for(tmp_path)
    train.run(make_cfg("trainer.epochs=2", "trainer.deterministic=true", "reg=dropout",
                       "dataset.augment=true"), part_dir)
    resumed = train.run(make_cfg("trainer.epochs=3", "trainer.deterministic=true", "reg=dropout",
                                 "dataset.augment=true"), part_dir, resume=True)
    assert strip(resumed.rows) == strip(full.rows)
    assert resumed.summary.test_acc == full.summary.test_acc


@pytest.mark.slow
@pytest.mark.parametrize("override", [
    "reg=all", "reg=max_norm", "reg=spatial_dropout", "reg=l1", "reg=label_smoothing",
    "reg.dropout.position=before_bn", "optim=adam", "optim=adamw", "optim.schedule=onecycle",
    "optim.schedule=cosine", "optim.schedule=step", "optim.nesterov=true", "reg.weight_decay=1e-3",
    "trainer.train_eval_size=100", "trainer.compile=false",
])
def test_every_regularizer_and_optimizer_trains(make_cfg: Callable[..., RegbenchConfig],
                                                tmp_path: Path, override: str) -> None:
    overrides = [override] + (["reg.batchnorm=true"] if "position" in override else [])
    result = train.run(make_cfg(*overrides), run_dir_for(tmp_path))
    assert result.status in ("completed", "early_stopped")
    assert result.summary.test_acc > 0.3  # synthetic data is learnable in two epochs


def test_onset_and_verdict_on_known_curves() -> None:
    def rows(train_loss: list[float], val_loss: list[float]) -> list[metrics.Row]:
        return [metrics.Row(epoch=i + 1, train_loss=t, train_acc=0.9, val_loss=v, val_acc=0.8,
                            train_loss_running=t, lr=0.1, epoch_time_s=1.0)
                for i, (t, v) in enumerate(zip(train_loss, val_loss))]

    over = rows([1.0, 0.5, 0.3, 0.2], [1.0, 0.6, 0.7, 0.8])
    assert curves.onset_epoch(over) == 2
    assert curves.verdict(over, "completed").startswith("val loss bottomed at epoch 2 and rose 33% by epoch 4")
    assert curves.onset_epoch(rows([1.0, 0.5, 0.3], [1.0, 0.6, 0.605])) is None  # < 1% rise
    assert curves.onset_epoch(rows([1.0, 0.5, 0.6], [1.0, 0.6, 0.7])) is None  # train rose too
    assert curves.verdict(rows([1.0, 0.5], [1.0, 0.6]), "completed").startswith(
        "no overfitting onset within 2 epochs, but train accuracy leads val by 10.0 points")
    close = rows([1.0, 0.5], [1.0, 0.6])
    for r in close:
        r.train_acc = r.val_acc + 0.01
        r.__post_init__()
    assert curves.verdict(close, "completed") == "no overfitting within 2 epochs (accuracy gap 1.0 points)"


@pytest.mark.slow
def test_learns_real_mnist_digits(make_cfg: Callable[..., RegbenchConfig], tmp_path: Path) -> None:
    cfg = make_cfg("dataset=mnist5k", "trainer.epochs=3", tiny=False)
    result = train.run(cfg, run_dir_for(tmp_path))
    assert result.summary.best.val_acc >= 0.85
    assert result.summary.test_acc >= 0.85
