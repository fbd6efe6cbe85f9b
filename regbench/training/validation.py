"""Checks of a whole configuration that its types cannot express, before any work starts.

Names are checked against the registries that build them (datasets, models, optimizers
and schedules), and each regularizer checks its own keys (regbench.training.regularizers),
so a new entry in a registry is checked here without a second list.
"""

from __future__ import annotations

import re

from regbench.config.schema import DEVICES, NAME_RE, PRECISIONS, check, one_of
from regbench.data import datasets
from regbench.errors import ConfigError
from regbench.training import optim, regularizers
from regbench.training.models import MODELS
from regbench.training.schema import RegbenchConfig


def validate(cfg: RegbenchConfig) -> None:
    """Check every value a type cannot express; raise ConfigError naming the first bad one."""
    check(bool(NAME_RE.match(cfg.experiment)) and ".." not in cfg.experiment, "experiment",
          cfg.experiment, "a name of letters, digits, '_', '-' and '.', with no path separators")
    d = cfg.dataset
    one_of("dataset.name", d.name, datasets.DATASET_INFO)
    check(0.0 < d.val_fraction < 1.0, "dataset.val_fraction", d.val_fraction, "a fraction in (0, 1)")
    check(d.train_size is None or d.train_size >= 10, "dataset.train_size", d.train_size,
          "null or an integer >= 10 (at least one image per class)")
    one_of("model.name", cfg.model.name, MODELS)
    model = MODELS[cfg.model.name]
    if not isinstance(cfg.model, model.config):
        raise ConfigError(f"model.name={cfg.model.name!r} does not fit the model section's keys; "
                          f"choose the model with model={cfg.model.name}")
    shape, classes = datasets.describe(d)  # a user's files are checked here, before any work
    cfg.model.check(shape)
    check(cfg.reg.mixup == 0 or classes == datasets.NUM_CLASSES, "reg.mixup", cfg.reg.mixup,
          f"0 with dataset={d.name}: mixup's soft targets are for {datasets.NUM_CLASSES} classes "
          f"and this data set has {classes}")
    regularizers.check_all(cfg.reg)
    regularizers.check_shape(cfg.reg, datasets.DATASET_INFO[d.name].shape, d.name)
    regularizers.check_sites(cfg.reg, model.sites, model.name)
    o = cfg.optim
    one_of("optim.name", o.name, optim.OPTIMIZERS)
    one_of("optim.schedule", o.schedule, optim.SCHEDULES)
    check(o.lr is None or o.lr > 0, "optim.lr", o.lr, "null or a number > 0")
    check(0.0 <= o.momentum < 1.0, "optim.momentum", o.momentum, "a number in [0, 1)")
    check(len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas), "optim.betas", list(o.betas),
          "two numbers in [0, 1)")
    check(o.warmup_epochs >= 0, "optim.warmup_epochs", o.warmup_epochs, "a number of epochs >= 0")
    check(o.step_size >= 1, "optim.step_size", o.step_size, "an integer >= 1")
    check(0 < o.gamma <= 1, "optim.gamma", o.gamma, "a number in (0, 1]")
    t = cfg.trainer
    check(t.epochs >= 1, "trainer.epochs", t.epochs, "an integer >= 1")
    check(t.batch_size >= 1, "trainer.batch_size", t.batch_size, "an integer >= 1")
    check(t.eval_batch_size >= 1, "trainer.eval_batch_size", t.eval_batch_size, "an integer >= 1")
    check(t.train_eval_size is None or t.train_eval_size >= 1, "trainer.train_eval_size",
          t.train_eval_size, "null or an integer >= 1")
    check(t.diverge_factor > 1, "trainer.diverge_factor", t.diverge_factor,
          "a number > 1 (times a uniform guess's loss ln K), or inf to check finiteness only")
    one_of("trainer.device", t.device.split(":")[0], DEVICES)
    one_of("trainer.precision", t.precision, PRECISIONS)
    check(cfg.eval.mc_samples >= 0, "eval.mc_samples", cfg.eval.mc_samples,
          "0 (off) or the number of stochastic passes, >= 1")
    check(":" not in t.device or bool(re.fullmatch(r"cuda:\d+", t.device)), "trainer.device",
          t.device, "auto, cpu, cuda, cuda:N or mps")
    if t.device not in ("auto", "cpu"):
        # only a named accelerator needs the device probe
        from regbench.training.device import check_device

        check_device("trainer.device", t.device)
    check(bool(cfg.output.root), "output.root", cfg.output.root, "a directory path")
