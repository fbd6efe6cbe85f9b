"""What a run's curves show: its best epoch, the onset of overfitting, convergence,
instability, whether it learned at all, and the verdict that says so in words.

It reads metrics.csv rows (regbench.store.metrics.Row); the run's summary records what it
finds (regbench.training.record, regbench.training.session).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from regbench.store.metrics import Row
from regbench.store.runs import FINISHED
from regbench.text import number, plural

# A validation loss this much above its minimum (relative) counts as having risen.
ONSET_RISE = 0.01
# A model leading val by many points is memorising only once it fits its training data:
# below this train accuracy (a fraction) the gap comes from a model still learning.
MEMORISING_TRAIN_ACC = 0.80
# A run has converged at the first epoch whose val accuracy is this close to its best.
CONVERGED_WITHIN = 0.01
# Unstable training, from one epoch to the next: val accuracy falling by more than COLLAPSE
# (a fraction: 0.10 = 10 points; the default optimizer's largest fall on 500 mnist5k images
# is 3.25 points, SGD at 0.05 collapses by up to 35.5, docs/explanation/optimizer.md), or
# the eval-mode train loss rising by more than TRAIN_LOSS_RISE relative and
# TRAIN_LOSS_RISE_MIN absolute (nats). A model keeps fitting the data it trains on, so its
# train loss only rises when the steps overshoot; the floor keeps out the jitter of a
# nearly-zero loss.
COLLAPSE = 0.10
# A finished run learned nothing when its best val accuracy stays below the one-sided 99%
# bound of what guessing reaches on n val images: 1/K + CHANCE_Z * sqrt(p (1 - p) / n) with
# p = 1/K (the normal approximation of Binomial(n, p) / n); 13.1% on 500 images, 10 classes.
CHANCE_Z = 2.326
TRAIN_LOSS_RISE = 0.10
TRAIN_LOSS_RISE_MIN = 0.05


def best_index(rows: Sequence[Row], monitor: str = "val_loss") -> int | None:
    """Index of the best finite epoch by the monitored metric (first one on ties)."""
    finite = [i for i, r in enumerate(rows) if math.isfinite(r[monitor])]
    if not finite:
        return None
    pick = max if monitor.endswith("acc") else min
    return pick(finite, key=lambda i: rows[i][monitor])


def onset_epoch(rows: Sequence[Row]) -> int | None:
    """Epoch of minimum val loss if val loss later rose > 1% while train loss kept falling."""
    i = best_index(rows, "val_loss")
    if i is None or i == len(rows) - 1:
        return None
    low, last = rows[i], rows[-1]
    if last["val_loss"] > low["val_loss"] * (1 + ONSET_RISE) and last["train_loss"] < low["train_loss"]:
        return int(low["epoch"])
    return None


def convergence_epoch(rows: Sequence[Row], within: float = CONVERGED_WITHIN) -> int | None:
    """The first epoch whose val accuracy is within `within` (a fraction: 0.01 = 1 point) of
    the run's best val accuracy: how long the run took to get there, the cost of a
    regularizer that slows training."""
    finite = [r for r in rows if math.isfinite(r.val_acc)]
    if not finite:
        return None
    best = max(r.val_acc for r in finite)
    return next(int(r.epoch) for r in finite if r.val_acc >= best - within - 1e-12)  # float slack


def instability(rows: Sequence[Row]) -> str | None:
    """What shows the training unstable, in words, or None: the largest epoch-to-epoch fall
    of val accuracy beyond COLLAPSE, and the largest rise of train loss beyond
    TRAIN_LOSS_RISE (and TRAIN_LOSS_RISE_MIN)."""
    pairs = [(a, b) for a, b in zip(rows, rows[1:])
             if all(math.isfinite(x) for x in (a.val_acc, b.val_acc, a.train_loss, b.train_loss))]
    signs: list[str] = []
    falls = [(a.val_acc - b.val_acc, a, b) for a, b in pairs if a.val_acc - b.val_acc > COLLAPSE]
    if falls:
        _, a, b = max(falls, key=lambda f: f[0])
        signs.append(f"val accuracy fell from {100 * a.val_acc:.1f}% to {100 * b.val_acc:.1f}% "
                     f"in epoch {b.epoch}")
    rises = [(b.train_loss / a.train_loss - 1 if a.train_loss > 0 else math.inf, a, b)
             for a, b in pairs if b.train_loss - a.train_loss > TRAIN_LOSS_RISE_MIN
             and b.train_loss > a.train_loss * (1 + TRAIN_LOSS_RISE)]
    if rises:
        _, a, b = max(rises, key=lambda r: r[0])
        signs.append(f"train loss rose from {a.train_loss:.3f} to {b.train_loss:.3f} "
                     f"in epoch {b.epoch}")
    return " and ".join(signs) or None


def chance_bound(val_images: int, num_classes: int) -> float:
    """The highest val accuracy (fraction) that is still within noise of guessing."""
    p = 1 / num_classes
    return p + CHANCE_Z * math.sqrt(p * (1 - p) / max(val_images, 1))


def at_chance(rows: Sequence[Row], val_images: int, num_classes: int) -> bool:
    """Whether every epoch's val accuracy stayed within noise of chance (chance_bound)."""
    accs = [r.val_acc for r in rows if math.isfinite(r.val_acc)]
    return bool(accs) and max(accs) <= chance_bound(val_images, num_classes)


def verdict(rows: Sequence[Row], status: str, kept_epoch: int | None = None,
            diverged: tuple[int, str] | None = None,
            chance: tuple[int, int] | None = None) -> str:
    """One plain-words sentence on what the curves show; `diverged`: the epoch and reason
    of a diverged run; `chance`: (val images, classes), to name a run that did not learn."""
    n = int(rows[-1]["epoch"]) if rows else 0
    if status == "diverged":
        if diverged is not None:
            return f"diverged at epoch {diverged[0]}: {diverged[1]}"
        return f"training diverged in epoch {n + 1}: the loss became NaN or infinite"
    if not rows:
        return f"no epoch finished (status: {status})"
    last = rows[-1]
    prefix = ""
    if status == "early_stopped":
        prefix = f"early stopping ended the run at epoch {n}"
        prefix += f" and kept the weights of epoch {kept_epoch}; " if kept_epoch else "; "
    elif status == "interrupted":
        prefix = f"interrupted after epoch {n}; "
    elif status == "pruned":
        prefix = f"pruned by the search after epoch {n}; "
    if chance is not None and status in FINISHED and at_chance(rows, *chance):
        best = max(r.val_acc for r in rows if math.isfinite(r.val_acc))
        return prefix + (f"did not learn: val acc {100 * best:.1f}%, chance is "
                         f"{100 / chance[1]:.0f}% (within noise on {chance[0]} val images: "
                         f"at most {100 * chance_bound(*chance):.1f}%)")
    unstable = instability(rows)
    if unstable is not None:
        return prefix + (f"unstable training: {unstable}; the gap on these curves is "
                         "optimization noise, not overfitting (a lower optim.lr steadies it)")
    onset = onset_epoch(rows)
    gap_pts = 100 * last["gap_acc"]
    if onset is not None:
        low = next(r for r in rows if r["epoch"] == onset)
        rise = 100 * (last["val_loss"] / low["val_loss"] - 1)
        return (prefix + f"val loss bottomed at epoch {onset} and rose {rise:.0f}% by epoch {n} "
                f"while train loss kept falling: overfitting (accuracy gap {number(gap_pts, '.1f')} "
                "points)")
    if status == "early_stopped" and (i := best_index(rows, "val_loss")) is not None \
            and i < len(rows) - 1 and last["val_loss"] > rows[i]["val_loss"]:
        low = rows[i]  # the rise that stopped it, though not the onset's (> 1%, train falling)
        rise = 100 * (last["val_loss"] / low["val_loss"] - 1)
        return prefix + (f"val loss was lowest at epoch {low['epoch']} and rose "
                         f"{number(rise, '.1f')}% by epoch {n} (accuracy gap "
                         f"{number(gap_pts, '.1f')} points)")
    if gap_pts > 5 and last["train_acc"] >= MEMORISING_TRAIN_ACC:
        return prefix + (f"no overfitting onset within {plural(n, 'epoch')}, but train accuracy "
                         f"leads val by {gap_pts:.1f} points: the model is memorising")
    if gap_pts > 5:
        return prefix + (f"no overfitting onset within {plural(n, 'epoch')}; train accuracy "
                         f"leads val by {gap_pts:.1f} points but is still "
                         f"{100 * last['train_acc']:.1f}%: the model has not fit its training "
                         "data yet (more epochs, or less regularization)")
    return prefix + (f"no overfitting within {plural(n, 'epoch')} "
                     f"(accuracy gap {number(gap_pts, '.1f')} points)")


def val_loss_rise(rows: Sequence[Row]) -> float | None:
    """Last minus minimum validation loss over the epochs (0 when the last is lowest)."""
    finite = [r.val_loss for r in rows if math.isfinite(r.val_loss)]
    return rows[-1].val_loss - min(finite) if finite and math.isfinite(rows[-1].val_loss) else None

