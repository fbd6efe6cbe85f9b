"""The torch layers that regularizers and models are made of (as timm's ``layers/``).

The dropout-like layers act in training mode only: each is a small typed function (what
it does to a tensor) plus a thin ``nn.Module`` that applies it in training mode and is the
identity in eval mode, as timm's ``layers/drop.py`` does. The regularizers of
``regbench.training.regularizers`` say where they go; schedules change a layer's ``p``
between epochs, and test-time Monte Carlo dropout (regbench.training.calibration) finds
them with ``dropout_layers``. The population engine runs one model for all its members
(``member_layers``): each of its random layers is a ``MemberRandom`` that draws every
member's noise from that member's own generator, and its batch norms compute in float32.
The models of ``regbench.training.models`` are built from
torch's layers and the few below (a named sequence, a residual block, global pooling).
This module holds no configuration.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn


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


class MemberRandom(nn.Module):
    """A random layer of the population's model: each member's rate and noise enter it as
    tensors (``inputs``), drawn outside ``torch.func.vmap`` from each member's generator, so
    that a member's draws depend on its own seed alone."""

    def inputs(self, members: list[int], generators: list[torch.Generator]
               ) -> Callable[[int], dict[str, Tensor]]:
        """For an epoch of these members (their places among those the layer was built for)
        and their generators: a function from a batch of n images per member to this layer's
        tensors by name, [M, ...] each (vmap gives each member its slice)."""
        raise NotImplementedError


class MemberDropout(MemberRandom):
    """Dropout whose rate and uniform noise are per-member inputs of the population's model.

    The rule of ``nn.Dropout`` / ``nn.Dropout2d`` (Srivastava et al., JMLR 2014; Tompson et
    al., CVPR 2015): a unit (or, spatial, a whole feature map) is kept where its noise is
    >= p, and the kept ones are scaled by 1/(1-p); p = 0 keeps the input unchanged.
    """

    def __init__(self, rates: list[float], spatial: bool) -> None:
        super().__init__()
        self.rates, self.spatial = rates, spatial  # rates: each member's drop probability
        self.noise_shape: tuple[int, ...] | None = None  # per image, found by a dry run
        self.register_buffer("p", torch.zeros(()), persistent=False)
        self.register_buffer("noise", torch.ones(()), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.noise_shape is None:  # the dry run: learn the shape of this site's noise
            c, *rest = x.shape[1:]
            self.noise_shape = (c, *[1] * len(rest)) if self.spatial else tuple(x.shape[1:])
            return x
        if not self.training:
            return x
        return x * (self.noise >= self.p) / (1 - self.p)

    def inputs(self, members: list[int], generators: list[torch.Generator]
               ) -> Callable[[int], dict[str, Tensor]]:
        device = generators[0].device
        rates = torch.tensor([self.rates[m] for m in members], device=device)

        def draw(n: int) -> dict[str, Tensor]:
            assert self.noise_shape is not None, "the dry run first"
            noise = torch.empty((len(generators), n, *self.noise_shape), device=device)
            for m, g in enumerate(generators):  # as torch.rand(..., generator=g) would draw
                noise[m].uniform_(generator=g)
            return {"p": rates, "noise": noise}

        return draw

    def extra_repr(self) -> str:
        return f"p={self.rates}, spatial={self.spatial}"


class Float32Norm(nn.modules.batchnorm._BatchNorm):
    """Batch norm computed in float32 and returned in its input's dtype.

    Under bf16 (trainer.precision) a member's batch norm gets bf16 activations and float32
    weights; the plain layer accepts the mix, but vmap's batch-norm rule needs one dtype.
    Normalising in float32 is what the plain layer does inside, so members still train as
    their sequential runs do (to bf16 rounding).
    """

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.float()).to(x.dtype)


class Float32BatchNorm1d(Float32Norm, nn.BatchNorm1d):
    """nn.BatchNorm1d in float32 (see Float32Norm)."""


class Float32BatchNorm2d(Float32Norm, nn.BatchNorm2d):
    """nn.BatchNorm2d in float32 (see Float32Norm)."""


FLOAT32_NORMS: dict[type[nn.Module], type[Float32Norm]] = {
    nn.BatchNorm1d: Float32BatchNorm1d, nn.BatchNorm2d: Float32BatchNorm2d}


def member_layer(layer: nn.Module, members: list[nn.Module | None]) -> nn.Module:
    """The population's version of a site layer, from each member's layer of its kind there
    (None where a member has none): dropout with each member's rate (0 where it has none),
    batch norm in float32, any other layer as it is."""
    if type(layer) in (nn.Dropout, nn.Dropout2d):
        rates = [0.0 if m is None else float(cast(nn.Dropout, m).p) for m in members]
        return MemberDropout(rates, spatial=isinstance(layer, nn.Dropout2d))
    if type(layer) in FLOAT32_NORMS:
        norm = cast(nn.modules.batchnorm._BatchNorm, layer)
        return FLOAT32_NORMS[type(layer)](norm.num_features, norm.eps, norm.momentum,
                                          norm.affine, norm.track_running_stats)
    return layer


def member_layers(per_member: list[list[nn.Module]]) -> list[nn.Module]:
    """One site's layers in the population's model, from each member's layers there.

    Members share which kinds of layer a site holds, not whether a random one is on (a rate
    of 0 puts none): the longest list gives the layers, and the k-th layer of a kind is
    matched with each member's k-th layer of that kind.
    """
    longest = max(per_member, key=len)
    out = []
    for i, layer in enumerate(longest):
        k = sum(type(other) is type(layer) for other in longest[:i])
        kinds = [[m for m in layers if type(m) is type(layer)] for layers in per_member]
        out.append(member_layer(layer, [ms[k] if k < len(ms) else None for ms in kinds]))
    return out


def runs_per_member(module: nn.Module) -> bool:
    """Whether the population's model can run this layer for every member at once: not a
    random layer without a member version (whose draws vmap would share or refuse), not a
    layer of a class from outside torch.nn and regbench (a plugin's, which may draw), not a
    batch norm outside float32 (see Float32Norm)."""
    if isinstance(module, (nn.modules.dropout._DropoutNd, RandomLayer)):
        return False
    if not type(module).__module__.startswith(("torch.nn.", "regbench.")):
        return False  # a class of a plugin's own: its forward may draw random numbers
    return not (isinstance(module, nn.modules.batchnorm._BatchNorm)
                and not isinstance(module, Float32Norm))


class Network(nn.Sequential):
    """A model's layers in order, printed under the model's name (run.log shows it)."""

    def __init__(self, name: str, *modules: nn.Module) -> None:
        super().__init__(*modules)
        self.name = name

    def _get_name(self) -> str:
        return self.name


class Residual(nn.Module):
    """relu(branch(x) + shortcut(x)): a residual block (He et al., CVPR 2016).

    The shortcut is the identity, subsampled by ``stride`` and zero-padded with ``extra``
    channels where the branch changes the shape: the paper's parameter-free option A.
    """

    def __init__(self, branch: nn.Module, stride: int = 1, extra: int = 0) -> None:
        super().__init__()
        self.branch, self.stride, self.extra = branch, stride, extra

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x[:, :, ::self.stride, ::self.stride] if self.stride > 1 else x
        if self.extra:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra))
        return F.relu(self.branch(x) + shortcut)

    def extra_repr(self) -> str:
        return f"shortcut: stride {self.stride}, +{self.extra} zero channels"


class GlobalAvgPool(nn.Module):
    """The mean of each feature map: [N, C, H, W] -> [N, C]."""

    def forward(self, x: Tensor) -> Tensor:
        return x.mean((2, 3))
