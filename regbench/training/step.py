"""The training step, once for every engine: one pass over the training split.

``train_epoch`` is the batch loop and calls the regularizers' step hooks (batch transform,
data loss, loss term, after-step) for M members at once: one model (M = 1) for the
sequential engine, or the stacked members of a population. Tensors carry the members in
their first dimension: images [M, B, C, H, W], labels [M, B] (or soft targets [M, B, K]),
logits [M, B, K], losses [M]. What differs between engines is how a step runs, a
``Runner``: ``Plain`` (this module) runs one model with its own optimizer; the population's
runner (regbench.training.population) runs every member's parameters under ``torch.func.vmap``.
The other hooks have one caller each too: site layers and attach in models.build, parameter
groups in session.build_trainer, epoch start in loop.fit, end of epoch in Session.end_epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Protocol

import torch
from torch import Tensor
from torch.func import vmap

from regbench.data import batching
from regbench.training.callbacks import Callback
from regbench.training.device import autocast, prepare_batch
from regbench.training.session import EpochStep, Trainer


class Runner(Protocol):
    """How a step runs for the members of one epoch."""

    vectorised: bool  # losses of equal members in one vmapped call; means in float32

    def epoch(self) -> AbstractContextManager[None]:
        """What the epoch's steps need set up, and put back afterwards."""
        ...

    def batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        """The members' training batches, [M, B, ...] and [M, B]."""
        ...

    def forward(self, x: Tensor) -> Tensor:
        """Each member's logits for its images: [M, B, ...] -> [M, B, K]."""
        ...

    def backward(self, total: Tensor) -> None:
        """Each member's gradients of its loss total[m], then its optimizer's step."""
        ...


def train_epoch(trainers: Sequence[Trainer], runner: Runner,
                listeners: Sequence[Callback]) -> list[EpochStep]:
    """One pass over the training split for these members; one EpochStep each.

    Each member's listeners hear of every step (images per member, its running loss).
    """
    for t in trainers:
        t.model.train()
    device = trainers[0].data.train.x.device
    loss_sum = torch.zeros(len(trainers), device=device)
    pen_sum, steps = torch.zeros_like(loss_sum), 0
    data_losses = member_losses(trainers, runner.vectorised)
    with runner.epoch():
        for x, y in runner.batches():
            x, y = transform(trainers, x, y)  # batch-level regularizers (training only)
            with autocast(device):
                logits = runner.forward(prepare_batch(x))
            total = data_losses(logits.float(), y)
            pens = [t.regs.loss_term() for t in trainers]
            if any(p is not None for p in pens):
                pen = torch.stack([total.new_zeros(()) if p is None else p for p in pens])
                total = total + pen
                pen_sum += pen.detach()
            runner.backward(total)  # member m's loss depends on its parameters only
            for t in trainers:
                t.scheduler.batch_step()
                t.regs.after_step()
            loss_sum += total.detach()
            steps += 1
            for m, cb in enumerate(listeners):
                cb.on_batch_end(y.shape[1], lambda m=m, n=steps: loss_sum[m].item() / n)
        for t in trainers:
            t.scheduler.epoch_step()
    return [EpochStep(r, p, math.isfinite(r)) for r, p in zip(means(loss_sum, steps, runner),
                                                             means(pen_sum, steps, runner),
                                                             strict=True)]


def means(sums: Tensor, steps: int, runner: Runner) -> list[float]:
    """Each member's mean over the epoch's steps: the float32 quotient for a vectorised
    runner, the quotient of the sum read as a Python float for a plain one."""
    if runner.vectorised:
        return (sums / max(steps, 1)).tolist()
    return [s.item() / max(steps, 1) for s in sums]


def transform(trainers: Sequence[Trainer], x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Each member's batch through its batch transforms (none: the batch as it is)."""
    if not any(t.regs.transforms_batch for t in trainers):
        return x, y
    pairs = [t.regs.batch(x[m], y[m]) for m, t in enumerate(trainers)]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


def member_losses(trainers: Sequence[Trainer], vectorised: bool
                  ) -> Callable[[Tensor, Tensor], Tensor]:
    """Logits [M, B, K] and labels [M, B] to each member's data loss [M]: one vmapped call
    when the runner is vectorised and every member's data loss is the same function (e.g.
    equal label smoothing), else member by member."""
    losses = [t.regs.data_loss for t in trainers]
    parts = [t.regs.loss_parts for t in trainers]
    if vectorised and all(p == parts[0] for p in parts):
        return vmap(losses[0])
    return lambda logits, y: torch.stack([loss(logits[m], y[m]) for m, loss in enumerate(losses)])


class Plain:
    """One model's step as plain PyTorch runs it: forward, backward, its optimizer's step."""

    vectorised = False

    def __init__(self, trainer: Trainer) -> None:
        self.trainer = trainer

    def epoch(self) -> AbstractContextManager[None]:
        return nullcontext()

    def batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        t = self.trainer
        for x, y in batching.batches(t.data.train, t.cfg.trainer.batch_size, mean=t.data.mean,
                                     std=t.data.std, shuffle=True, augment=t.data.augment,
                                     generator=t.generator):
            yield x.unsqueeze(0), y.unsqueeze(0)

    def forward(self, x: Tensor) -> Tensor:
        return self.trainer.model(x[0]).unsqueeze(0)

    def backward(self, total: Tensor) -> None:
        self.trainer.optimizer.zero_grad(set_to_none=True)
        total.sum().backward()
        self.trainer.optimizer.step()


def train_one(trainer: Trainer, callbacks: Callback) -> EpochStep:
    """One model's training epoch (the sequential engine's)."""
    return train_epoch([trainer], Plain(trainer), [callbacks])[0]
