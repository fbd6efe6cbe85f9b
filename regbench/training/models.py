"""The models whose regularization regbench studies, registered by their config type."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from regbench.config.schema import CNNConfig, ModelConfig, RegConfig
from regbench.training.regularizers import Regularization, Site

Layers = Callable[[Site], list[nn.Module]]


class CNN(nn.Sequential):
    """Conv blocks then a classifier head; the regularizers insert their layers at sites.

    input:      [input site]
    conv block: conv 3x3 -> [pre_norm] -> [norm] -> ReLU -> max-pool 2x2 -> [post]
    head:       flatten -> linear -> [pre_norm] -> [norm] -> ReLU -> [post] -> linear
    A layer followed by a norm layer has no bias (the norm's shift replaces it).
    """

    def __init__(self, cfg: CNNConfig, layers: Layers, in_channels: int,
                 image_size: tuple[int, int], num_classes: int = 10) -> None:
        modules: list[nn.Module] = list(layers(Site("input", "post", in_channels)))
        h, w = image_size
        c_in = in_channels
        for c_out in cfg.channels:
            norm = layers(Site("conv", "norm", c_out))
            modules += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=not norm),
                        *layers(Site("conv", "pre_norm", c_out)), *norm,
                        nn.ReLU(inplace=True), nn.MaxPool2d(2), *layers(Site("conv", "post", c_out))]
            c_in, h, w = c_out, h // 2, w // 2
        if h < 1 or w < 1:
            raise ValueError(f"{len(cfg.channels)} conv blocks shrink a {image_size} input to nothing")
        norm = layers(Site("fc", "norm", cfg.hidden))
        modules += [nn.Flatten(), nn.Linear(c_in * h * w, cfg.hidden, bias=not norm),
                    *layers(Site("fc", "pre_norm", cfg.hidden)), *norm, nn.ReLU(inplace=True),
                    *layers(Site("fc", "post", cfg.hidden)), nn.Linear(cfg.hidden, num_classes)]
        super().__init__(*modules)


# Each model config type (regbench.config.schema.MODEL_CONFIGS) and the module class it builds.
MODELS: dict[type[ModelConfig], Callable[..., nn.Module]] = {CNNConfig: CNN}


def build(cfg: ModelConfig, reg: RegConfig, in_channels: int, image_size: tuple[int, int],
          num_classes: int = 10, layers: Layers | None = None) -> nn.Module:
    """The model that cfg describes, with the layers of the reg section, sized for the data.

    ``layers`` replaces the reg section's layer hook (the population engine swaps in its own
    dropout layers).
    """
    regs = Regularization.from_config(reg)
    model = MODELS[type(cfg)](cfg, layers or regs.layers, in_channels, image_size, num_classes)
    regs.attach(model)
    return model


def count_params(model: nn.Module) -> int:
    """Number of trainable parameter values."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
