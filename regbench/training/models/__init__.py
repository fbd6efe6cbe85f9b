"""The models whose regularization regbench studies, one module each, registered by
importing it (see ``base``): adding one is a module here, a preset in conf/model/ and a test."""

from __future__ import annotations

import importlib
import pkgutil

from regbench.training.models.base import (MODELS, Layers, ModelConfig, ModelSpec, build,
                                           count_params, preset, register)

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["MODELS", "Layers", "ModelConfig", "ModelSpec", "build", "count_params", "preset",
           "register"]
