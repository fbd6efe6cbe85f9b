"""What a model is: its config dataclass, the sites it offers regularizers, and the registry.

A model is one module of this package holding a build function marked
``@register(name, config, sites)``. The function takes ``(cfg, layers,
in_channels, image_size, num_classes)``, returns the ``nn.Module`` and calls
``layers(Site(block, slot, width))`` wherever a regularizer may insert layers; ``sites``
lists those places ('conv.post'), so that a configured regularizer whose site the model
lacks is refused before training. The population engine trains a model whose layers it
can run for every member at once (regbench.training.layers.runs_per_member); a model that
holds random layers or batch norms of its own trains its jobs one by one. Its config is a
``ModelConfig`` subclass whose ``check`` gets the input's shape.

Nothing here imports torch, and build functions import it when they run (as the
optimizers do), so that composing and checking a configuration stays fast; the layers
they are made of are in regbench.training.layers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from omegaconf import OmegaConf

from regbench.config.schema import CONF_DIR, load_preset
from regbench.training.regularizers import Regularization, Site

if TYPE_CHECKING:
    from torch import nn

Layers = Callable[[Site], "list[nn.Module]"]
Build = Callable[..., "nn.Module"]  # (cfg, layers, in_channels, image_size, num_classes)
B = TypeVar("B", bound=Build)


@dataclass
class ModelConfig:
    """What every model's configuration has: its name. Each model subclasses it."""

    name: str = ""

    def check(self, shape: tuple[int, int, int]) -> None:
        """Raise ConfigError naming the first value this model cannot be built with for
        images of `shape` (channels, height, width)."""


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its config type, the function that builds it, the sites it
    offers."""

    name: str
    config: type[ModelConfig]
    build: Build
    sites: tuple[str, ...]


# Every model, by the name that model.name takes; each module adds its own with @register.
MODELS: dict[str, ModelSpec] = {}


def register(name: str, config: type[ModelConfig], sites: tuple[str, ...]) -> Callable[[B], B]:
    """Decorator of a build function: make a model known as model=<name>
    (conf/model/<name>.yaml)."""

    def add(build: B) -> B:
        if name in MODELS and MODELS[name].build is not build:
            raise ValueError(f"two models named {name!r}")
        MODELS[name] = ModelSpec(name, config, build, sites)
        return build

    return add


def build(cfg: ModelConfig, reg: Any, in_channels: int, image_size: tuple[int, int],
          num_classes: int = 10, members: Sequence[Any] = ()) -> nn.Module:
    """The model that cfg describes, with the layers of the reg section, sized for the data.

    ``members``, the reg sections of a population's members, makes it the population's
    model: at each site the layers of every member, each random one drawing every member's
    noise (regbench.training.layers.member_layers).
    """
    regs = Regularization.from_config(reg)
    own = [Regularization.from_config(r) for r in members] or [regs]

    def layers(site: Site) -> list[nn.Module]:
        per_member = [member_regs.layers(site) for member_regs in own]
        if not members:
            return per_member[0]
        from regbench.training.layers import member_layers

        return member_layers(per_member)

    model = MODELS[cfg.name].build(cfg, layers, in_channels, image_size, num_classes)
    regs.attach(model)
    return model


def preset(name: str) -> ModelConfig:
    """A preset of conf/model/ as its model's config, as regbench run would use it."""
    model = OmegaConf.load(Path(CONF_DIR) / "model" / f"{name}.yaml").get("name", name)
    return load_preset("model", name, MODELS[model].config)


def count_params(model: nn.Module) -> int:
    """Number of trainable parameter values."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
