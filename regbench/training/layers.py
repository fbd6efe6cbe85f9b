"""The torch layers that regularizers and models are made of (as timm's ``layers/``).

The dropout-like layers act in training mode only: each is a small typed function (what
it does to a tensor) plus a thin ``nn.Module`` that applies it in training mode and is the
identity in eval mode, as timm's ``layers/drop.py`` does. The regularizers of
``regbench.training.regularizers`` say where they go; schedules change a layer's ``p``
between epochs, and test-time Monte Carlo dropout (regbench.training.calibration) finds
them with ``dropout_layers``. The models of ``regbench.training.models`` are built from
torch's layers and the few below (a named sequence, a residual block, global pooling).
This module holds no configuration.
"""

from __future__ import annotations

import math

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
