"""Every regularizer regbench compares, one module each, registered by importing it.

``base`` defines what a regularizer declares (keys, checks, hook points, whether the
population engine vectorises it) and the registry; each other module of this package is
one regularizer that registers itself. Importing the package imports them all, so adding
a regularizer is one module here, a preset in conf/reg/ and a test: ``RegConfig``, the
validation, the population engine and the figures' words pick it up from the registry.
"""

from __future__ import annotations

import importlib
import pkgutil

from regbench.training.regularizers.base import (REGISTRY, Regularization, Regularizer, Site,
                                                 assemble_config, check_all, check_shape,
                                                 check_sites, describe_groups, member_keys,
                                                 register, registered, split_params, words)

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

# The reg section's dataclass, assembled from the registered regularizers' keys.
RegConfig = assemble_config()

__all__ = ["REGISTRY", "RegConfig", "Regularization", "Regularizer", "Site", "assemble_config",
           "check_all", "check_shape", "check_sites", "describe_groups", "member_keys", "register",
           "registered", "split_params", "words"]
