"""The configurable CNN whose regularization regbench studies."""

from __future__ import annotations

from torch import nn

from regbench.config import DropoutConfig, ModelConfig
from regbench.regularizers import make_dropout


def _norm(kind: str, width: int, enabled: bool) -> nn.Module:
    if not enabled:
        return nn.Identity()
    return nn.BatchNorm2d(width) if kind == "2d" else nn.BatchNorm1d(width)


def _drop_then_norm(drop: nn.Module, norm: nn.Module, position: str) -> list[nn.Module]:
    """[dropout, norm] for position=before_bn, else [norm] (dropout goes after the block)."""
    return [drop, norm] if position == "before_bn" else [norm]


class CNN(nn.Sequential):
    """Conv blocks then a classifier head, with every regularizer switchable.

    conv block: conv 3x3 -> [BN] -> ReLU -> max-pool 2x2 -> [dropout]
    head:       flatten -> linear -> [BN] -> ReLU -> [dropout] -> linear
    With ``position=before_bn`` each block's dropout moves in front of its BN layer, where
    it causes the train/test "variance shift" of Li et al. (CVPR 2019).
    """

    def __init__(self, cfg: ModelConfig, dropout: DropoutConfig, batchnorm: bool,
                 in_channels: int, image_size: tuple[int, int], num_classes: int = 10) -> None:
        layers: list[nn.Module] = []
        if dropout.input > 0:  # element-wise: dropping a whole grey input channel blanks the image
            layers.append(make_dropout(dropout.input, "standard"))
        h, w = image_size
        c_in = in_channels
        before = dropout.position == "before_bn"
        for c_out in cfg.channels:
            drop = make_dropout(dropout.conv, dropout.kind)
            layers.append(nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batchnorm))
            layers += _drop_then_norm(drop, _norm("2d", c_out, batchnorm), dropout.position)
            layers += [nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            if not before:
                layers.append(drop)
            c_in, h, w = c_out, h // 2, w // 2
        if h < 1 or w < 1:
            raise ValueError(f"{len(cfg.channels)} conv blocks shrink a {image_size} input to nothing")
        drop = make_dropout(dropout.fc, "standard")
        layers += [nn.Flatten(), nn.Linear(c_in * h * w, cfg.hidden, bias=not batchnorm)]
        layers += _drop_then_norm(drop, _norm("1d", cfg.hidden, batchnorm), dropout.position)
        layers.append(nn.ReLU(inplace=True))
        if not before:
            layers.append(drop)
        layers.append(nn.Linear(cfg.hidden, num_classes))
        super().__init__(*[m for m in layers if not isinstance(m, nn.Identity)])


MODELS: dict[str, type[CNN]] = {"cnn": CNN}


def build(cfg: ModelConfig, dropout: DropoutConfig, batchnorm: bool, in_channels: int,
          image_size: tuple[int, int], num_classes: int = 10) -> CNN:
    """The model named by cfg.name, sized for the dataset's images."""
    return MODELS[cfg.name](cfg, dropout, batchnorm, in_channels, image_size, num_classes)


def count_params(model: nn.Module) -> int:
    """Number of trainable parameter values."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
