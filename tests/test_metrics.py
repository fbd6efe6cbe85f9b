"""What regbench.store.metrics derives from the curves, on hand-written rows.

The gaps, the best epoch, the overfitting onset and the convergence epoch decide what a
summary and a comparison report; every expected value here is worked out by hand.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from regbench.store import metrics
from regbench.training import curves
from regbench.text import number
from regbench.store.metrics import Row


def rows(val_losses: list[float], train_losses: list[float] | None = None,
         val_accs: list[float] | None = None) -> list[Row]:
    """Epochs 1, 2, ... with these losses (train loss 1.0, accuracies 0.5 unless given)."""
    n = len(val_losses)
    train = train_losses or [1.0] * n
    acc = val_accs or [0.5] * n
    return [Row(epoch=i + 1, train_loss=train[i], train_acc=0.9, val_loss=val_losses[i],
                val_acc=acc[i]) for i in range(n)]


def test_gaps_are_val_minus_train_loss_and_train_minus_val_accuracy() -> None:
    r = Row(epoch=3, train_loss=0.25, train_acc=0.99, val_loss=0.75, val_acc=0.90)
    assert r.gap_loss == pytest.approx(0.5) and r.gap_acc == pytest.approx(0.09)
    assert r["gap_acc"] == r.gap_acc and r.as_dict()["gap_loss"] == r.gap_loss


def test_best_index_lowest_loss_or_highest_accuracy_first_on_ties() -> None:
    curve = rows([0.9, 0.5, 0.7, 0.5, math.nan], val_accs=[0.1, 0.8, 0.9, 0.9, 0.95])
    assert curves.best_index(curve) == 1  # 0.5 first reached at index 1
    assert curves.best_index(curve, "val_acc") == 4  # accuracies: the highest
    assert curves.best_index(curve[:4], "val_acc") == 2  # ties: the first
    assert curves.best_index(rows([math.nan, math.inf])) is None
    assert curves.best_index([]) is None


def test_onset_needs_a_rise_above_one_percent_while_train_loss_falls() -> None:
    # val loss bottoms at epoch 2 (0.5) and ends 2% higher; train loss keeps falling
    assert curves.onset_epoch(rows([0.8, 0.5, 0.6, 0.51], [1.0, 0.8, 0.6, 0.4])) == 2
    # exactly 1% is not a rise (0.505 = 0.5 * 1.01)
    assert curves.onset_epoch(rows([0.8, 0.5, 0.6, 0.505], [1.0, 0.8, 0.6, 0.4])) is None
    # train loss not lower at the end than at the minimum: not overfitting
    assert curves.onset_epoch(rows([0.8, 0.5, 0.6, 0.7], [1.0, 0.4, 0.6, 0.4])) is None
    assert curves.onset_epoch(rows([0.8, 0.7, 0.5], [1.0, 0.8, 0.6])) is None  # still falling
    assert curves.onset_epoch(rows([math.nan, math.nan])) is None
    # the minimum one epoch before the last, and at the first epoch, count too
    assert curves.onset_epoch(rows([0.8, 0.5, 0.6], [1.0, 0.8, 0.6])) == 2
    assert curves.onset_epoch(rows([0.4, 0.5, 0.6], [1.0, 0.8, 0.6])) == 1


def test_convergence_epoch_is_the_first_within_one_point_of_the_best() -> None:
    curve = rows([1.0] * 5, val_accs=[0.5, 0.885, 0.89, 0.9, 0.895])
    assert curves.convergence_epoch(curve) == 3  # 0.89 = 0.90 - 0.01, float slack included
    assert curves.convergence_epoch(curve, within=0.02) == 2
    assert curves.convergence_epoch(curve, within=0.0) == 4
    assert curves.convergence_epoch(rows([1.0] * 3, val_accs=[math.nan, 0.7, 0.2])) == 2
    assert curves.convergence_epoch(rows([1.0], val_accs=[math.nan])) is None


def test_number_never_prints_a_negative_zero() -> None:
    assert number(-0.001, ".2f") == "0.00" and number(0.0, "+.1f") == "+0.0"
    assert number(-0.006, ".2f") == "-0.01" and number(2.5, ".1f") == "2.5"


def test_row_dict_keeps_the_columns_and_writes_null_for_non_finite() -> None:
    r = Row(epoch=2, train_loss=math.inf, train_acc=0.9, val_loss=math.nan, val_acc=0.8)
    d = metrics.row_dict(r)
    assert d is not None and list(d) == list(metrics.COLUMNS)
    assert d["epoch"] == 2 and d["train_loss"] is None and d["val_loss"] is None
    assert d["val_acc"] == 0.8 and d["gap_acc"] == pytest.approx(0.1)
    assert metrics.row_dict(None) is None


def test_read_rows_drops_a_torn_line_and_reads_older_files(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    log = metrics.MetricsLog(path)
    for r in rows([0.9, 0.7], [1.0, 0.5]):
        r.dropout_rate = 0.25
        log.append(r)
    with open(path, "a") as f:
        f.write("3,0.4,0.9")  # a row cut short by a crash
    back = metrics.read_rows(path)
    assert [r.epoch for r in back] == [1, 2] and isinstance(back[0].epoch, int)
    assert back[1].val_loss == 0.7 and back[1].dropout_rate == 0.25
    assert back[1].gap_loss == pytest.approx(0.2)  # derived again on reading
    # a metrics.csv written before the dropout_rate column reads with its default
    header = ",".join(c for c in metrics.COLUMNS if c != "dropout_rate")
    values = "1,1.0,0.9,0.9,0.5,-0.1,0.4,0.0,0.0,0.1,2.0"
    old = tmp_path / "old.csv"
    old.write_text(f"{header}\n{values}\n")
    (r,) = metrics.read_rows(old)
    assert r.dropout_rate == 0.0 and r.epoch_time_s == 2.0 and r.lr == 0.1
    # reopening keeps only complete rows, up to keep_epochs
    assert [r.epoch for r in metrics.MetricsLog(path, keep_epochs=1).rows] == [1]


def test_val_loss_rise_is_last_minus_the_lowest_finite() -> None:
    assert curves.val_loss_rise(rows([1.0, 0.4, math.nan, 0.7])) == pytest.approx(0.3)
    assert curves.val_loss_rise(rows([1.0, 0.6, 0.5])) == 0.0  # the last is the lowest
    assert curves.val_loss_rise(rows([1.0, 0.6, math.inf])) is None  # no finite last epoch
    assert curves.val_loss_rise(rows([math.nan, math.nan])) is None


def test_missing_columns_names_what_a_damaged_file_lacks(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,train_loss,val_loss\n1,0.5,0.6\n")
    assert metrics.missing_columns(path) == ["train_acc", "val_acc", "train_loss_running",
                                             "penalty", "lr", "epoch_time_s"]
    with pytest.raises(ValueError, match="^no column train_acc, val_acc, train_loss_running"):
        metrics.read_rows(path)
    path.write_text("")  # created, then the run was killed before the header was written
    assert metrics.missing_columns(path) == [c for c in metrics.INPUT_COLUMNS
                                             if c not in metrics.LATER_COLUMNS]


def curve(train_acc: list[float], val_acc: list[float], val_loss: list[float],
          train_loss: list[float] | None = None) -> list[metrics.Row]:
    """Rows of a run whose curves are given epoch by epoch."""
    train_loss = train_loss or [1.0 - 0.1 * i for i in range(len(val_loss))]
    return [metrics.Row(epoch=i + 1, train_loss=tl, train_acc=ta, val_loss=vl, val_acc=va)
            for i, (ta, va, vl, tl) in enumerate(zip(train_acc, val_acc, val_loss, train_loss))]


def test_a_gap_under_80_percent_train_accuracy_is_not_called_memorising() -> None:
    learning = curve([0.40, 0.62], [0.35, 0.50], [1.5, 1.2])  # leads val by 12 points at 62%
    said = curves.verdict(learning, "completed")
    assert "memorising" not in said and "62.0%" in said and "12.0 points" in said
    fitted = curve([0.85, 0.97], [0.80, 0.85], [0.8, 0.6])
    assert curves.verdict(fitted, "completed").endswith("the model is memorising")


def test_an_early_stopped_run_whose_val_loss_rose_is_not_told_no_onset() -> None:
    # val loss lowest at epoch 2, then up 0.5% (under the onset's 1%): early stopping fired
    rows = curve([0.90, 0.92, 0.93, 0.93], [0.89, 0.90, 0.90, 0.90], [0.50, 0.40, 0.401, 0.402])
    said = curves.verdict(rows, "early_stopped", kept_epoch=2)
    assert "no overfitting onset" not in said and "no overfitting" not in said
    assert "val loss was lowest at epoch 2 and rose 0.5% by epoch 4" in said
    assert said.startswith("early stopping ended the run at epoch 4 and kept the weights of epoch 2")
