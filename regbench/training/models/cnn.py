"""The CNN whose regularization regbench studies by default (model=cnn, model=cnn_cifar).

Conv blocks of the widths in model.channels (each halves the image), then one hidden
fully connected layer of model.hidden units: the shape of the PyTorch MNIST example and,
with three wider blocks, of the small VGG-style nets of Srivastava et al. (JMLR 2014).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from regbench.config.schema import check
from regbench.training.models.base import Layers, ModelConfig, register
from regbench.training.regularizers import Site

if TYPE_CHECKING:
    from torch import nn


@dataclass
class CNNConfig(ModelConfig):
    """Conv blocks of these widths, then one hidden FC layer."""

    name: str = "cnn"
    # output channels of each conv block
    channels: list[int] = field(default_factory=lambda: [32, 64])
    hidden: int = 128  # width of the hidden linear layer

    def check(self, shape: tuple[int, int, int]) -> None:
        check(len(self.channels) >= 1 and all(c >= 1 for c in self.channels),
              "model.channels", list(self.channels), "a non-empty list of integers >= 1")
        check(self.hidden >= 1, "model.hidden", self.hidden, "an integer >= 1")
        _, h, w = shape
        most = min(h, w).bit_length() - 1  # blocks that leave at least one pixel
        check(len(self.channels) <= most, "model.channels", list(self.channels),
              f"at most {most} conv blocks for {h}x{w} images (each block halves the image; "
              f"{len(self.channels)} shrink it to nothing)")


@register("cnn", CNNConfig, sites=("input.post", "conv.pre_norm", "conv.norm", "conv.post",
                                   "fc.pre_norm", "fc.norm", "fc.post"))
def cnn(cfg: CNNConfig, layers: Layers, in_channels: int, image_size: tuple[int, int],
        num_classes: int = 10) -> nn.Module:
    """Conv blocks then a classifier head; the regularizers insert their layers at sites.

    input:      [input site]
    conv block: conv 3x3 -> [pre_norm] -> [norm] -> ReLU -> max-pool 2x2 -> [post]
    head:       flatten -> linear -> [pre_norm] -> [norm] -> ReLU -> [post] -> linear
    A layer followed by a norm layer has no bias (the norm's shift replaces it).
    """
    from torch import nn

    from regbench.training.layers import Network

    modules: list[nn.Module] = list(layers(Site("input", "post", in_channels)))
    h, w = image_size
    c_in = in_channels
    for c_out in cfg.channels:
        norm = layers(Site("conv", "norm", c_out))
        modules += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=not norm),
                    *layers(Site("conv", "pre_norm", c_out)), *norm,
                    nn.ReLU(inplace=True), nn.MaxPool2d(2), *layers(Site("conv", "post", c_out))]
        c_in, h, w = c_out, h // 2, w // 2
    if h < 1 or w < 1:  # CNNConfig.check refuses this before training
        raise ValueError(f"{len(cfg.channels)} conv blocks shrink a {image_size} input to nothing")
    norm = layers(Site("fc", "norm", cfg.hidden))
    modules += [nn.Flatten(), nn.Linear(c_in * h * w, cfg.hidden, bias=not norm),
                *layers(Site("fc", "pre_norm", cfg.hidden)), *norm, nn.ReLU(inplace=True),
                *layers(Site("fc", "post", cfg.hidden)), nn.Linear(cfg.hidden, num_classes)]
    return Network("CNN", *modules)
