"""What a plugin author needs: the parts' base classes, their registration, and the checks.

A plugin is a module of your own that regbench imports (named by ``REGBENCH_PLUGINS``, by
``--plugin MODULE``, or by an entry point in the group ``regbench.plugins``). It registers
its parts with the decorators here; their keys then are ordinary configuration keys::

    from dataclasses import dataclass
    from regbench.plugin import Regularizer, check, register_regularizer

    @dataclass
    class FlipKeys:
        flip: float = 0.0  # chance that a training image is mirrored; 0: off

    @register_regularizer
    @dataclass
    class Flip(Regularizer):
        name = "flip"
        keys = FlipKeys
        p: float

        @classmethod
        def check(cls, reg):
            check(0 <= reg.flip <= 1, "reg.flip", reg.flip, "a probability in [0, 1]")

        @classmethod
        def from_config(cls, reg, epochs):
            return cls(reg.flip) if reg.flip > 0 else None

        def batch(self, x, y):
            import torch
            flip = torch.rand(len(x), device=x.device) < self.p
            return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x), y

``regbench run --plugin mymodule reg.flip=0.5`` then trains with it, and ``regbench config
--plugin mymodule`` lists ``reg.flip``. The hook points a Regularizer may override
(``layers(site)`` with ``sites()``, ``attach``, ``batch``, ``data_loss``, ``loss_term``,
``param_groups``, ``after_step``, ``start_epoch``, ``end_epoch``) are described in
docs/reference/plugin-api.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from regbench.config.schema import DatasetConfig, check, one_of
from regbench.data.datasets import DATASET_INFO, NUM_CLASSES, Arrays, DatasetInfo
from regbench.data.datasets import register as _register_dataset
from regbench.errors import ConfigError, DataError
from regbench.training.models import MODELS, Layers, ModelConfig
from regbench.training.models import register as _register_model
from regbench.training.plugins import Clash
from regbench.training.regularizers import REGISTRY, Regularizer, Site
from regbench.training.regularizers import register as _register_regularizer

R = TypeVar("R", bound=type[Regularizer])
F = TypeVar("F", bound=Callable[..., Any])


def _refresh(registry: dict[str, Any], name: str, before: Any) -> None:
    """Rebuild the configuration schema with the part just registered as `name`; a part
    that clashes with another is taken out again (Clash, naming both)."""
    from regbench.training import schema

    try:
        schema.refresh()
    except ValueError as e:
        if before is None:
            registry.pop(name, None)
        else:
            registry[name] = before
        schema.refresh()
        raise Clash(str(e)) from e


def _add(registry: dict[str, Any], name: str, add: Callable[[], Any]) -> None:
    before = registry.get(name)
    try:
        add()
    except ValueError as e:
        raise Clash(str(e)) from e
    _refresh(registry, name, before)


def register_regularizer(cls: R) -> R:
    """Class decorator: a Regularizer subclass whose keys become keys of reg (reg.<field>)."""
    _add(REGISTRY, cls.name, lambda: _register_regularizer(cls))
    return cls


def register_model(name: str, config: type[ModelConfig], sites: tuple[str, ...]
                   ) -> Callable[[F], F]:
    """Decorator of a build function ``(cfg, layers, in_channels, image_size, num_classes)
    -> nn.Module``: the model becomes model=<name>, its config's fields keys of model.

    ``sites`` lists where it calls ``layers(Site(block, slot, width))`` ('conv.post'), so that
    a regularizer needing another site is refused before training. A model whose own
    layers are random or normalise (dropout, batch norm of its own) trains on its own rather
    than in a population: the population engine runs per member only the layers it knows.
    """
    add = _register_model(name, config, sites)

    def decorate(build: F) -> F:
        _add(MODELS, name, lambda: add(build))
        return build

    return decorate


def register_dataset(name: str, *, shape: tuple[int, int, int], classes: int = NUM_CLASSES,
                     source: str = "a plugin") -> Callable[[F], F]:
    """Decorator of a reader ``(dataset_cfg) -> (x, y)`` or ``(x_train, y_train, x_test,
    y_test)`` (uint8 images [N, C, H, W], int64 labels 0..classes-1): dataset=<name>, or
    dataset.name=<name>. Without a test split a fixed 20% is held out for testing."""

    def decorate(read: F) -> F:
        info = DatasetInfo(name, "", (), source, read, shape=shape, classes=classes)
        _add(DATASET_INFO, name, lambda: _register_dataset(info))
        return read

    return decorate


def register_preset(group: str, name: str, values: dict[str, Any]) -> None:
    """A preset that `group=name` picks (reg=dropblock), as conf/<group>/<name>.yaml would
    hold it: the values it sets in that section."""
    from hydra.core.config_store import ConfigStore

    one_of("the preset's group", group, ("reg", "model", "dataset", "optim", "experiment"))
    ConfigStore.instance().store(group=group, name=name, node=values)


__all__ = ["Arrays", "ConfigError", "DataError", "DatasetConfig", "Layers", "ModelConfig",
           "Regularizer", "Site", "check", "one_of", "register_dataset", "register_model",
           "register_preset", "register_regularizer"]
