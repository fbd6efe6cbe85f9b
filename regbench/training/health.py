"""When a run has stopped being a result: the divergence rule, checked after every epoch.

A run diverges when its loss, a parameter or a gradient stops being finite, or when its
eval-mode train or validation loss exceeds ``factor`` times a uniform guess's cross-entropy,
ln(K) for K classes (2.30 nats for 10). Adam-type optimizers at an absurd learning rate keep
the loss finite (about 5e30 on the bundled digits at lr 1e6), so finiteness alone misses
them. The default factor, trainer.diverge_factor = 10, leaves a wide margin over the largest
loss healthy runs reach (scripts/healthy_losses.py; docs/how-to/troubleshooting.md).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def uniform_loss(num_classes: int) -> float:
    """Cross-entropy of a model that gives every class the same probability: ln(K) nats."""
    return math.log(num_classes)


def non_finite(model: nn.Module) -> str | None:
    """The first parameter, or gradient of the last step, that holds NaN or inf, in words."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if not bool(torch.isfinite(p).all()):
                return f"parameter {name} became NaN or infinite"
            if p.grad is not None and not bool(torch.isfinite(p.grad).all()):
                return f"the gradient of {name} became NaN or infinite"
    return None


def exploded(losses: dict[str, float], num_classes: int, factor: float) -> str | None:
    """The first loss ('train loss', 'val loss') above factor x ln(K), in words, or None."""
    guess = uniform_loss(num_classes)
    for what, value in losses.items():
        if not math.isfinite(value):
            return f"{what} became NaN or infinite"
        if value > factor * guess:
            return (f"{what} {figure(value)}, more than {factor:g}x a uniform guess's "
                    f"{guess:.2f}")
    return None


def figure(x: float) -> str:
    """Two significant digits, an exponent without its '+' (5.9e30, 41, 0.52)."""
    return f"{x:.2g}".replace("e+", "e")
