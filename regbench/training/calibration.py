"""Test-time dropout: weight scaling against the average of many dropped networks.

A network trained with dropout is usually tested with dropout off, which (for inverted
dropout) is Srivastava et al.'s weight-scaling rule: one pass approximating the average
of the 2^n thinned networks. Monte Carlo averaging takes that average by sampling: T
passes with dropout on, their class probabilities averaged (Srivastava et al., JMLR 2014,
section 7.5 and Fig. 11; Gal & Ghahramani, ICML 2016, "Dropout as a Bayesian
Approximation"). Both are scored by accuracy, negative log-likelihood and the expected
calibration error of Guo et al. (ICML 2017), with 15 equal-width confidence bins.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from regbench.data import batching
from regbench.training.device import autocast, prepare_batch
from regbench.training.layers import dropout_layers

ECE_BINS = 15


def expected_calibration_error(probs: Tensor, labels: Tensor, bins: int = ECE_BINS) -> float:
    """ECE = sum over bins of |bin| / n * |accuracy(bin) - mean confidence(bin)|.

    The confidence is the largest class probability; bin m holds the confidences in
    (m / bins, (m + 1) / bins] (Guo et al., ICML 2017, eq. 3).
    """
    conf, pred = probs.double().max(1)
    correct = (pred == labels).double()
    inner_edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64, device=conf.device)[1:-1]
    which = torch.bucketize(conf, inner_edges)  # right-closed bins, as in the paper
    per_bin = torch.bincount(which, weights=correct - conf, minlength=bins)
    return float(per_bin.abs().sum() / max(len(labels), 1))


def scores(log_probs: Tensor, labels: Tensor) -> dict[str, float]:
    """Accuracy, mean negative log-likelihood and ECE of predicted log-probabilities."""
    return {"test_acc": float((log_probs.argmax(1) == labels).double().mean()),
            "test_nll": float(F.nll_loss(log_probs.double(), labels)),
            "test_ece": expected_calibration_error(log_probs.exp(), labels)}


def mc_log_probs(model: nn.Module, x: Tensor, samples: int) -> Tensor:
    """log of the mean over `samples` stochastic passes of softmax(model(x)), one batch.

    The T passes are one forward pass over the batch repeated T times, so that each copy
    of an image gets its own dropout masks; the caller sets the dropout layers' modes.
    """
    with autocast(x.device):
        logits = model(x.repeat(samples, *([1] * (x.dim() - 1)))).float()
    log_probs = F.log_softmax(logits, dim=1).view(samples, x.shape[0], -1)
    return torch.logsumexp(log_probs, dim=0) - math.log(samples)


@torch.inference_mode()
def predict(model: nn.Module, split: batching.Split, data: batching.Data, batch_size: int,
            samples: int = 0) -> tuple[Tensor, Tensor]:
    """(log-probabilities, labels) of a split.

    samples = 0: eval mode, dropout off (weight scaling). samples = T: the Monte Carlo
    average of T passes with only the dropout layers in training mode; batch norm keeps
    its running statistics and DropConnect its weight scaling.
    """
    model.eval()
    layers = dropout_layers(model) if samples else []
    chunk = max(1, batch_size // max(samples, 1))  # images per pass: T copies of each
    out, labels = [], []
    try:
        for m in layers:
            m.train()
        for x, y in batching.batches(split, chunk, mean=data.mean, std=data.std):
            x = prepare_batch(x)
            if samples:
                out.append(mc_log_probs(model, x, samples))
            else:
                with autocast(x.device):
                    out.append(F.log_softmax(model(x).float(), dim=1))
            labels.append(y)
    finally:
        model.eval()
    return torch.cat(out), torch.cat(labels)


def test_time(model: nn.Module, split: batching.Split, data: batching.Data, batch_size: int,
              samples: int, weight_scaled: Tensor | None = None) -> dict[str, Any]:
    """The summary's test-time keys: the weight-scaled ECE, and the MC scores when T > 0.

    ``weight_scaled``: the split's log-probabilities with dropout off, if already computed.
    """
    if weight_scaled is None:
        weight_scaled, _ = predict(model, split, data, batch_size)
    result: dict[str, Any] = {"test_ece": expected_calibration_error(weight_scaled.exp(), split.y),
                              "mc_dropout": None}
    if samples:
        result["mc_dropout"] = {"samples": samples,
                                **scores(*predict(model, split, data, batch_size, samples))}
    return result
