"""Checks of a whole configuration that its types cannot express, before any work starts.

Names are checked against the registries that build them (datasets, models, optimizers
and schedules), so a new entry in a registry is accepted here without a second list.
"""

from __future__ import annotations

import re

from regbench.data import datasets
from regbench.training import optim
from regbench.config.schema import (DEVICES, DROPOUT_KINDS, DROPOUT_POSITIONS, DROPOUT_SCHEDULES,
                             MODEL_CONFIGS, MONITORS, NAME_RE, RegbenchConfig, check, one_of)
from regbench.errors import ConfigError


def validate(cfg: RegbenchConfig) -> None:
    """Check every value a type cannot express; raise ConfigError naming the first bad one."""
    check(bool(NAME_RE.match(cfg.experiment)) and ".." not in cfg.experiment, "experiment",
          cfg.experiment, "a name of letters, digits, '_', '-' and '.', with no path separators")
    d = cfg.dataset
    one_of("dataset.name", d.name, datasets.DATASET_INFO)
    check(0.0 < d.val_fraction < 1.0, "dataset.val_fraction", d.val_fraction, "a fraction in (0, 1)")
    check(d.train_size is None or d.train_size >= 10, "dataset.train_size", d.train_size,
          "null or an integer >= 10 (at least one image per class)")
    one_of("model.name", cfg.model.name, MODEL_CONFIGS)
    if not isinstance(cfg.model, MODEL_CONFIGS[cfg.model.name]):
        raise ConfigError(f"model.name={cfg.model.name!r} does not fit the model section's keys; "
                          f"choose the model with model={cfg.model.name}")
    cfg.model.check()
    r = cfg.reg
    for part in ("input", "conv", "fc"):
        p = getattr(r.dropout, part)
        check(0.0 <= p < 1.0, f"reg.dropout.{part}", p, "a drop probability in [0, 1)")
    one_of("reg.dropout.kind", r.dropout.kind, DROPOUT_KINDS)
    one_of("reg.dropout.position", r.dropout.position, DROPOUT_POSITIONS)
    d = r.dropout
    one_of("reg.dropout.schedule", d.schedule, DROPOUT_SCHEDULES)
    check(d.curriculum_gamma is None or d.curriculum_gamma > 0, "reg.dropout.curriculum_gamma",
          d.curriculum_gamma, "null or a number > 0")
    check(0.0 < d.switch_at < 1.0, "reg.dropout.switch_at", d.switch_at, "a fraction in (0, 1)")
    check(0.0 <= d.adaptive_target < 1.0, "reg.dropout.adaptive_target", d.adaptive_target,
          "an accuracy gap in [0, 1)")
    check(d.adaptive_step > 0, "reg.dropout.adaptive_step", d.adaptive_step, "a number > 0")
    check(0.0 < d.adaptive_max < 1.0, "reg.dropout.adaptive_max", d.adaptive_max,
          "a drop probability in (0, 1)")
    check(0.0 <= r.dropconnect < 1.0, "reg.dropconnect", r.dropconnect, "a drop probability in [0, 1)")
    for key in ("l1", "l2", "weight_decay", "label_smoothing"):
        check(getattr(r, key) >= 0.0, f"reg.{key}", getattr(r, key), "a number >= 0")
    check(r.label_smoothing < 1.0, "reg.label_smoothing", r.label_smoothing, "a number in [0, 1)")
    check(r.max_norm is None or r.max_norm > 0, "reg.max_norm", r.max_norm, "null or a number > 0")
    es = r.early_stopping
    one_of("reg.early_stopping.monitor", es.monitor, MONITORS)
    check(es.patience >= 1, "reg.early_stopping.patience", es.patience, "an integer >= 1")
    check(es.min_delta >= 0, "reg.early_stopping.min_delta", es.min_delta, "a number >= 0")
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
    one_of("trainer.device", t.device.split(":")[0], DEVICES)
    check(cfg.eval.mc_samples >= 0, "eval.mc_samples", cfg.eval.mc_samples,
          "0 (off) or the number of stochastic passes, >= 1")
    check(":" not in t.device or bool(re.fullmatch(r"cuda:\d+", t.device)), "trainer.device",
          t.device, "auto, cpu, cuda, cuda:N or mps")
    if t.device not in ("auto", "cpu"):
        # torch costs ~2 s to import; only a named accelerator needs it, so `regbench config`
        # stays fast in the usual case
        from regbench.training.device import check_device

        check_device("trainer.device", t.device)
    check(bool(cfg.output.root), "output.root", cfg.output.root, "a directory path")
