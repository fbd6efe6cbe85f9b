"""Every regularizer regbench compares, each entering at one place.

A regularizer is a small typed function (what it does to a tensor, a loss or a weight)
plus a ``Regularizer`` subclass that says where it enters, through the hook points the
model builder and the training loop call:

- ``layers(site)``: modules the model inserts at a site (dropout, batch norm);
- ``attach(model)``: a change to the built model's own layers (DropConnect's weight masks);
- ``data_loss(logits, y)``: a replacement for plain cross-entropy (label smoothing);
- ``loss_term(params)``: a term added to the loss (L1, L2);
- ``param_groups(groups)``: settings of the optimizer's parameter groups (weight decay);
- ``after_step(params)``: a change to the weights after each optimizer step (max-norm);
- ``start_epoch(epoch, model)``: a change at the start of each epoch (rate schedules);
- ``end_epoch(row, model)``: whether to stop, after each epoch's metrics (early stopping).

``REGULARIZERS`` lists them; ``Regularization.from_config`` builds the active ones from
the ``reg`` section. Adding one is a class here, a key in ``RegConfig``, a preset in
``conf/reg/`` and a test.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from regbench.config.schema import RegConfig

if TYPE_CHECKING:
    from regbench.store.metrics import Row


def make_dropout(p: float, kind: str = "standard") -> nn.Module:
    """Dropout with drop probability p (Srivastava et al., JMLR 2014), as a module.

    Inverted dropout: in training each unit is zeroed with probability p and the survivors
    are scaled by 1/(1-p); in eval mode the module is the identity. ``kind="spatial"`` zeroes
    whole feature maps (``nn.Dropout2d``; Tompson et al., CVPR 2015), which suits conv maps
    whose neighbouring pixels are correlated. ``kind="gaussian"`` multiplies by Gaussian
    noise instead (see GaussianDropout). p = 0 gives ``nn.Identity``.
    """
    if p <= 0.0:
        return nn.Identity()
    if kind == "gaussian":
        return GaussianDropout(p)
    return nn.Dropout2d(p) if kind == "spatial" else nn.Dropout(p)


def gaussian_noise(x: Tensor, p: float) -> Tensor:
    """x times noise drawn from N(1, p / (1 - p)), element-wise.

    Multiplicative Gaussian noise with the variance of inverted Bernoulli dropout at drop
    probability p (Srivastava et al., JMLR 2014, section 10): the mean stays x, as with
    dropout, so inference uses the weights unchanged.
    """
    return x * torch.randn_like(x).mul_(math.sqrt(p / (1.0 - p))).add_(1.0)


class RandomLayer(nn.Module):
    """A layer with a rate ``p`` that acts in training mode only (the identity in eval mode,
    like torch's dropout); ``p`` may change between epochs (schedules)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return self.randomize(x) if self.training and self.p > 0 else x

    def randomize(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"p={self.p}"


class GaussianDropout(RandomLayer):
    """Gaussian dropout as a module (see gaussian_noise); p is its drop-rate equivalent."""

    def randomize(self, x: Tensor) -> Tensor:
        return gaussian_noise(x, self.p)


# The modules whose ``p`` is a drop rate: what schedules change and MC dropout keeps on.
DROPOUT_MODULES: tuple[type[nn.Module], ...] = (nn.Dropout, nn.Dropout2d, GaussianDropout)


def dropout_layers(model: nn.Module) -> list[nn.Module]:
    """The model's dropout layers (standard, spatial and Gaussian), in order."""
    return [m for m in model.modules() if isinstance(m, DROPOUT_MODULES)]


def rate_in_force(model: nn.Module) -> float:
    """The largest drop probability among the model's dropout layers (0 when it has none)."""
    return max((float(m.p) for m in dropout_layers(model)), default=0.0)


def drop_connect(weight: Tensor, p: float) -> Tensor:
    """The weight matrix with each weight zeroed with probability p, survivors scaled 1/(1-p).

    DropConnect (Wan et al., ICML 2013) drops connections rather than activations. One
    mask is drawn per mini-batch (Wan et al. draw one per example, which costs a weight
    matrix per image). With the 1/(1-p) scaling in training, inference uses the weights as
    they are: the mean of the dropped networks' pre-activations, i.e. weight scaling, not
    the paper's Gaussian moment-matching inference.
    """
    keep = torch.empty_like(weight).bernoulli_(1.0 - p)
    return weight * keep / (1.0 - p)


class DropConnectMask(RandomLayer):
    """``drop_connect`` as a weight parametrization (torch.nn.utils.parametrize): active in
    training mode only, so ``model.eval()`` turns it off with dropout."""

    def randomize(self, x: Tensor) -> Tensor:
        return drop_connect(x, self.p)


def curriculum_rate(p: float, epoch: int, gamma: float) -> float:
    """Curriculum dropout (Morerio et al., ICCV 2017): p * (1 - exp(-gamma * (epoch - 1))).

    The paper's retain probability (1 - p) * exp(-gamma t) + ... rises the drop rate from 0
    at t = 0 towards p; here t counts finished epochs, and gamma = 10 / epochs (the paper's
    choice of 10 / T) brings it to p within the run.
    """
    return p * (1.0 - math.exp(-gamma * (epoch - 1)))


def phase_rate(p: float, epoch: int, epochs: int, switch_at: float, early: bool) -> float:
    """Early or late dropout (Liu et al., ICML 2023, "Dropout Reduces Underfitting"): p in the
    first ceil(switch_at * epochs) epochs and 0 after (early), or the reverse (late)."""
    in_first_part = epoch <= math.ceil(switch_at * epochs)
    return p if in_first_part == early else 0.0


def adaptive_rate(rate: float, gap: float, target: float, step: float, high: float) -> float:
    """The next epoch's rate from this epoch's accuracy gap (train - val, as a fraction).

    An experimental controller in the direction Srivastava et al. (2014, section 11) name
    as future work, "adjusting the drop probability from the network's state": the gap
    above the target raises the rate by `step`, a gap below half the target lowers it by
    `step`, in between it stays (a dead band, so the rate does not flip every epoch); the
    rate stays within [0, high].
    """
    if gap > target:
        return min(high, rate + step)
    if gap < target / 2:
        return max(0.0, rate - step)
    return rate


def is_decayed(name: str, param: Tensor, decay_bias_and_norm: bool = False) -> bool:
    """Whether L2, L1 and weight decay apply: conv/linear weights (>= 2 dims) only, by default.

    Biases and batch-norm scale/shift are left alone (He et al. 2019, "Bag of Tricks").
    """
    return decay_bias_and_norm or param.ndim >= 2


def split_params(model: nn.Module, decay_bias_and_norm: bool = False
                 ) -> tuple[list[Tensor], list[Tensor]]:
    """(decayed, not decayed) trainable parameters of a model."""
    decay: list[Tensor] = []
    no_decay: list[Tensor] = []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (decay if is_decayed(name, p, decay_bias_and_norm) else no_decay).append(p)
    return decay, no_decay


def describe_groups(groups: list[dict[str, Any]]) -> str:
    """One line saying what each parameter group holds, for the run's log."""
    parts = []
    for g in groups:
        n = sum(p.numel() for p in g["params"])
        parts.append(f"{g['name']}: {len(g['params'])} tensors, {n:,} values, "
                     f"weight_decay={g['weight_decay']:g}")
    return "; ".join(parts)


def penalty(params: Iterable[Tensor], l2: float = 0.0, l1: float = 0.0) -> Tensor | None:
    """The L2 / L1 penalty added to the loss: l2/2 * sum(w^2) + l1 * sum(|w|).

    L2 is Tikhonov / ridge regularization (Krogh & Hertz, NIPS 1991); L1 drives weights to
    exactly zero (Tibshirani 1996). Returns None when both coefficients are 0.
    """
    if l2 == 0.0 and l1 == 0.0:
        return None
    params = list(params)
    total = params[0].new_zeros(())
    if l2:
        total = total + 0.5 * l2 * torch.stack([p.square().sum() for p in params]).sum()
    if l1:
        total = total + l1 * torch.stack([p.abs().sum() for p in params]).sum()
    return total


@torch.no_grad()
def apply_max_norm(params: Iterable[Tensor], max_norm: float) -> None:
    """Rescale each unit's incoming weight vector to L2 norm <= max_norm, in place.

    The max-norm constraint used with dropout by Srivastava et al. (JMLR 2014), c ~ 3-4.
    Applied after every optimizer step to conv kernels and linear weights (dim 0 = unit).
    """
    for p in params:
        if p.ndim >= 2:
            p.copy_(torch.renorm(p, 2, 0, max_norm))


# ------------------------------------------------------------------------ hook points


@dataclass(frozen=True)
class Site:
    """A place in a model where regularizers may insert layers.

    block: "input" (the image), "conv" (a conv block) or "fc" (the hidden FC layer);
    slot: "norm" (right after the conv / linear layer), "pre_norm" (in front of the norm
    slot) or "post" (after the activation and pooling); width: channels or features there.
    """

    block: str
    slot: str
    width: int = 0


class Regularizer:
    """Base class: every hook point does nothing. Subclasses override the ones they use."""

    @classmethod
    def from_config(cls, reg: RegConfig) -> Regularizer | None:
        """The regularizer as the reg section configures it, or None when it is off."""
        raise NotImplementedError

    def layers(self, site: Site) -> list[nn.Module]:
        return []

    def attach(self, model: nn.Module) -> None:
        return None

    def data_loss(self, logits: Tensor, y: Tensor) -> Tensor | None:
        return None

    def loss_term(self, params: Sequence[Tensor]) -> Tensor | None:
        return None

    def param_groups(self, groups: list[dict[str, Any]]) -> None:
        return None

    def after_step(self, params: Sequence[Tensor]) -> None:
        return None

    def start_epoch(self, epoch: int, model: nn.Module) -> None:
        return None

    def end_epoch(self, row: Row, model: nn.Module) -> bool:
        return False


@dataclass
class Dropout(Regularizer):
    """Dropout on the input, after each conv block and in the FC head (see make_dropout).

    ``position="before_bn"`` puts each block's dropout in front of its batch norm, where it
    causes the train/test "variance shift" of Li et al. (CVPR 2019); the input and the head
    always use element-wise dropout, the conv blocks ``kind``; ``kind="gaussian"`` puts
    Gaussian dropout everywhere.
    """

    input: float
    conv: float
    fc: float
    kind: str = "standard"
    position: str = "after_bn"

    @classmethod
    def from_config(cls, reg: RegConfig) -> Dropout | None:
        d = reg.dropout
        if max(d.input, d.conv, d.fc) <= 0:
            return None
        return cls(d.input, d.conv, d.fc, d.kind, d.position)

    def layers(self, site: Site) -> list[nn.Module]:
        if site.block == "input":
            # element-wise: dropping a whole grey input channel would blank the image
            return [make_dropout(self.input, self.element_kind)] if self.input > 0 else []
        slot = "pre_norm" if self.position == "before_bn" else "post"
        p = self.conv if site.block == "conv" else self.fc
        if site.slot != slot or p <= 0:
            return []
        return [make_dropout(p, self.kind if site.block == "conv" else self.element_kind)]

    @property
    def element_kind(self) -> str:
        """The kind for the input and the head, where whole maps do not exist."""
        return "gaussian" if self.kind == "gaussian" else "standard"


@dataclass
class DropoutSchedule(Regularizer):
    """Drop rates that change between epochs; every dropout layer follows the schedule.

    curriculum, early and late scale each layer's configured rate by the same factor
    (curriculum_rate, phase_rate); adaptive moves the largest rate with adaptive_rate after
    every epoch and scales the others in proportion. ``constant`` (the default) is no
    schedule at all: the rates stay as built.
    """

    schedule: str
    gamma: float | None
    switch_at: float
    target: float
    step: float
    high: float
    epochs: int = 1  # the run's length; Regularization.from_config sets it
    base: list[tuple[nn.Module, float]] = field(default_factory=list, repr=False)
    level: float = 0.0  # adaptive: the largest rate in force

    @classmethod
    def from_config(cls, reg: RegConfig) -> DropoutSchedule | None:
        d = reg.dropout
        if d.schedule == "constant" or max(d.input, d.conv, d.fc) <= 0:
            return None
        return cls(d.schedule, d.curriculum_gamma, d.switch_at, d.adaptive_target,
                   d.adaptive_step, d.adaptive_max)

    def rate(self, p: float, epoch: int) -> float:
        """The rate in force in `epoch` for a layer configured with rate p."""
        if self.schedule == "curriculum":
            return curriculum_rate(p, epoch, self.gamma or 10.0 / self.epochs)
        if self.schedule in ("early", "late"):
            return phase_rate(p, epoch, self.epochs, self.switch_at, self.schedule == "early")
        top = max(b for _, b in self.base)
        return p * self.level / top  # adaptive

    def start_epoch(self, epoch: int, model: nn.Module) -> None:
        if not self.base:  # the rates the model was built with
            self.base = [(m, float(m.p)) for m in dropout_layers(model)]
            self.level = min(self.high, max(b for _, b in self.base))
        for m, p in self.base:
            m.p = self.rate(p, epoch)

    def end_epoch(self, row: Row, model: nn.Module) -> bool:
        if self.schedule == "adaptive":
            self.level = adaptive_rate(self.level, row.gap_acc, self.target, self.step, self.high)
        return False


@dataclass
class DropConnect(Regularizer):
    """DropConnect on every fully connected layer of the head (see drop_connect)."""

    p: float

    @classmethod
    def from_config(cls, reg: RegConfig) -> DropConnect | None:
        return cls(reg.dropconnect) if reg.dropconnect > 0 else None

    def attach(self, model: nn.Module) -> None:
        for layer in [m for m in model.modules() if isinstance(m, nn.Linear)]:
            parametrize.register_parametrization(layer, "weight", DropConnectMask(self.p),
                                                 unsafe=True)  # unsafe: no trial call, no mask drawn


@dataclass
class BatchNorm(Regularizer):
    """Batch normalization after every conv and the hidden linear layer (Ioffe & Szegedy,
    ICML 2015): normalizes each channel over the batch, then a learned scale and shift;
    in eval mode it uses running statistics. Mainly speeds up training; mildly regularizes."""

    @classmethod
    def from_config(cls, reg: RegConfig) -> BatchNorm | None:
        return cls() if reg.batchnorm else None

    def layers(self, site: Site) -> list[nn.Module]:
        if site.slot != "norm":
            return []
        return [nn.BatchNorm2d(site.width) if site.block == "conv" else nn.BatchNorm1d(site.width)]


@dataclass
class Penalty(Regularizer):
    """The L2 / L1 penalty l2/2 * sum(w^2) + l1 * sum(|w|) over the decayed weights, added
    to the loss (see penalty)."""

    l2: float
    l1: float

    @classmethod
    def from_config(cls, reg: RegConfig) -> Penalty | None:
        return cls(reg.l2, reg.l1) if reg.l2 or reg.l1 else None

    def loss_term(self, params: Sequence[Tensor]) -> Tensor | None:
        return penalty(params, l2=self.l2, l1=self.l1)


@dataclass
class WeightDecay(Regularizer):
    """Decoupled weight decay (Loshchilov & Hutter, ICLR 2019) on the decayed group only:
    the optimizer shrinks weights in the update, w <- w - lr * wd * w, instead of adding a
    penalty gradient to the loss."""

    rate: float

    @classmethod
    def from_config(cls, reg: RegConfig) -> WeightDecay | None:
        return cls(reg.weight_decay) if reg.weight_decay else None

    def param_groups(self, groups: list[dict[str, Any]]) -> None:
        for g in groups:
            if g["name"] == "decay":
                g["weight_decay"] = self.rate


@dataclass
class MaxNorm(Regularizer):
    """The max-norm constraint after every optimizer step (see apply_max_norm)."""

    bound: float

    @classmethod
    def from_config(cls, reg: RegConfig) -> MaxNorm | None:
        return cls(reg.max_norm) if reg.max_norm is not None else None

    def after_step(self, params: Sequence[Tensor]) -> None:
        apply_max_norm(params, self.bound)


@dataclass
class LabelSmoothing(Regularizer):
    """Cross-entropy against targets mixed with the uniform distribution by ``smoothing``
    (Szegedy et al., CVPR 2016, "Rethinking the Inception Architecture")."""

    smoothing: float

    @classmethod
    def from_config(cls, reg: RegConfig) -> LabelSmoothing | None:
        return cls(reg.label_smoothing) if reg.label_smoothing else None

    def data_loss(self, logits: Tensor, y: Tensor) -> Tensor | None:
        return F.cross_entropy(logits, y, label_smoothing=self.smoothing)


@dataclass
class EarlyStopping(Regularizer):
    """Stop when the monitored metric has not improved by min_delta for `patience` epochs.

    Keeps a copy of the best weights so they can be restored (Prechelt, "Early Stopping -
    But When?", 1998; the patience rule is his UP-style criterion on the validation curve).
    The same object tracks the best epoch when early stopping is off (``enabled=False``):
    then it never stops a run.
    """

    monitor: str = "val_loss"
    patience: int = 5
    min_delta: float = 0.0
    best: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    best_state: dict[str, Tensor] | None = field(default=None, repr=False)
    enabled: bool = False
    keep_best: bool = False  # keep a copy of the best weights, to restore them at the end

    @classmethod
    def from_config(cls, reg: RegConfig) -> EarlyStopping:
        es = reg.early_stopping
        return cls(es.monitor, es.patience, es.min_delta, enabled=es.enabled,
                   keep_best=es.enabled and es.restore_best)

    def end_epoch(self, row: Row, model: nn.Module) -> bool:
        stop = self.step(row[self.monitor], int(row.epoch), model if self.keep_best else None)
        return self.enabled and stop

    @property
    def sign(self) -> float:
        """+1 when lower is better (losses), -1 when higher is better (accuracies)."""
        return -1.0 if self.monitor.endswith("acc") else 1.0

    def improved(self, value: float) -> bool:
        """Whether value beats the best so far by more than min_delta."""
        if not math.isfinite(value):
            return False
        return self.best_epoch == 0 or self.sign * (self.best - value) > self.min_delta

    def step(self, value: float, epoch: int, model: nn.Module | None = None) -> bool:
        """Record one epoch's metric; return True when training should stop."""
        if self.improved(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            if model is not None:
                self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def restore(self, model: nn.Module) -> bool:
        """Load the best weights into the model; False if none were kept."""
        if self.best_state is None:
            return False
        model.load_state_dict(self.best_state)
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
                "best_state": copy.copy(self.best_state)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = float(state["best"]), int(state["best_epoch"])
        self.bad_epochs, self.best_state = int(state["bad_epochs"]), state["best_state"]


# The regularizers, in the order their hooks run.
REGULARIZERS: tuple[type[Regularizer], ...] = (
    Dropout, DropoutSchedule, DropConnect, BatchNorm, Penalty, WeightDecay, MaxNorm,
    LabelSmoothing, EarlyStopping)


@dataclass
class Regularization:
    """The active regularizers of a run, and the hook points that fan out to them."""

    active: list[Regularizer]
    decay_bias_and_norm: bool = False
    decayed: list[Tensor] = field(default_factory=list)  # set by param_groups

    @classmethod
    def from_config(cls, reg: RegConfig, epochs: int = 1) -> Regularization:
        """The active regularizers; ``epochs``, the run's length, is what schedules span."""
        found = [r for r in (r.from_config(reg) for r in REGULARIZERS) if r is not None]
        for r in found:
            if isinstance(r, DropoutSchedule):
                r.epochs = epochs
        return cls(found, reg.decay_bias_and_norm)

    @property
    def stopper(self) -> EarlyStopping:
        """The early-stopping tracker (always present: it also finds the best epoch)."""
        return next(r for r in self.active if isinstance(r, EarlyStopping))

    def layers(self, site: Site) -> list[nn.Module]:
        return [m for r in self.active for m in r.layers(site)]

    def attach(self, model: nn.Module) -> None:
        for r in self.active:
            r.attach(model)

    def data_loss(self, logits: Tensor, y: Tensor) -> Tensor:
        for r in self.active:
            loss = r.data_loss(logits, y)
            if loss is not None:
                return loss
        return F.cross_entropy(logits, y)

    def loss_term(self) -> Tensor | None:
        terms = [t for r in self.active if (t := r.loss_term(self.decayed)) is not None]
        return sum(terms[1:], terms[0]) if terms else None

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        """Optimizer groups: decayed weights (>= 2 dims by default) and the rest, no decay."""
        decay, no_decay = split_params(model, self.decay_bias_and_norm)
        self.decayed = decay
        groups = [{"params": decay, "weight_decay": 0.0, "name": "decay"}]
        if no_decay:
            groups.append({"params": no_decay, "weight_decay": 0.0, "name": "no_decay"})
        for r in self.active:
            r.param_groups(groups)
        return groups

    def after_step(self) -> None:
        for r in self.active:
            r.after_step(self.decayed)

    def start_epoch(self, epoch: int, model: nn.Module) -> None:
        for r in self.active:
            r.start_epoch(epoch, model)

    def end_epoch(self, row: Row, model: nn.Module) -> bool:
        """Run every end-of-epoch hook; True when one of them stops training."""
        return any([r.end_epoch(row, model) for r in self.active])
