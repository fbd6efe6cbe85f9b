"""The epoch loop, once: train an epoch, evaluate in eval mode, record, decide to stop.

``train`` drives one or more runs (members) through their epochs with a step engine. Both
engines train an epoch with the one training step (regbench.training.step) and differ in
how a step runs: the sequential engine runs one model per call, plainly; the population
engine (regbench.training.population) runs M models at once under vmap. Everything around the
step is here for both: loading the data, opening each run's Session, callbacks, early
stopping, divergence, signals, checkpoints (in Session.end_epoch) and the summary.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from regbench.training.schema import RegbenchConfig
from regbench.data import batching
from regbench.store.runs import PRUNED
from regbench.training import step
from regbench.training.callbacks import Callback, CallbackList, Pruned
from regbench.training import regularizers
from regbench.training.device import precision_in_force, resolve_device
from regbench.training.record import RunResult, write_unstarted
from regbench.training.session import EpochStep, Session
from regbench.training.signals import Interrupted, stop_on_signals

log = logging.getLogger("regbench")


@dataclass
class Member:
    """A run to train: its configuration, its folder, whether it resumes, who listens."""

    cfg: RegbenchConfig
    run_dir: Path
    resume: bool = False
    callbacks: list[Callback] = field(default_factory=list)


class StepEngine(Protocol):
    """How one epoch of training runs for the active members."""

    compiles: bool  # whether members' models may be compiled (trainer.compile)

    def start(self, sessions: list[Session]) -> None:
        """Prepare for training these sessions (all of them, before the first epoch)."""
        ...

    def train_epoch(self, sessions: list[Session], epoch: int,
                    listeners: list[CallbackList]) -> list[EpochStep]:
        """Train each session's model for one epoch; one EpochStep per session."""
        ...


class SequentialEngine:
    """One model at a time: the plain PyTorch step (regbench.training.step.Plain)."""

    compiles = True

    def start(self, sessions: list[Session]) -> None:
        return None

    def train_epoch(self, sessions: list[Session], epoch: int,
                    listeners: list[CallbackList]) -> list[EpochStep]:
        return [step.train_one(s.trainer, cb) for s, cb in zip(sessions, listeners, strict=True)]


def train(members: Sequence[Member], engine: StepEngine | None = None
          ) -> list[RunResult | Exception]:
    """Train members (one for the sequential engine) to their end; one result per member.

    Members share the data (their dataset section is equal). A member that cannot start (an
    unreadable checkpoint, say) gets its exception instead of a result, and the others
    train. A signal or an error at any moment, from loading the data on, ends every
    unfinished member with a summary that says so; what was recorded is kept. Every
    forward pass runs under the members' trainer.precision (one value: it is shared).
    """
    with precision_in_force(members[0].cfg.trainer.precision):
        return _train(members, engine or SequentialEngine())


def _train(members: Sequence[Member], engine: StepEngine) -> list[RunResult | Exception]:
    t_start = time.perf_counter()
    opened: list[Session | Exception | None] = [None] * len(members)
    listeners = [CallbackList(m.callbacks) for m in members]
    try:
        with stop_on_signals():
            cfg = members[0].cfg
            device = resolve_device(cfg.trainer.device)
            data = batching.load(cfg.dataset, device, augment=cfg.dataset.augment or cfg.reg.augment)
            shape = (data.in_channels, *data.image_size)  # the files' own, whatever was declared
            for m in members:
                regularizers.check_shape(m.cfg.reg, shape, cfg.dataset.name)
            for i, m in enumerate(members):
                try:
                    opened[i] = Session.open(m.cfg, m.run_dir, data, device, resume=m.resume,
                                             t_start=t_start, compile=None if engine.compiles else False)
                except Exception as e:
                    if len(members) == 1:
                        raise
                    opened[i] = e
    except (KeyboardInterrupt, Interrupted) as e:  # before the first epoch: say so on disk
        signame = e.args[0] if isinstance(e, Interrupted) else "SIGINT"
        return [s.close() if isinstance(s, Session) else s if isinstance(s, Exception)
                else write_unstarted(m.run_dir, m.cfg, "interrupted", signal_name=signame,
                                     wall_time_s=time.perf_counter() - t_start)
                for s, m in zip(opened, members, strict=True)]
    sessions = [s for s in opened if isinstance(s, Session)]
    if sessions:
        fit(sessions, engine, [cb for s, cb in zip(opened, listeners) if isinstance(s, Session)])
    results: list[RunResult | Exception] = []
    for s, cb in zip(opened, listeners, strict=True):
        if isinstance(s, Session):
            result = s.close()
            cb.on_summary(result.summary, s.run_dir)
            results.append(result)
        else:
            assert s is not None
            results.append(s)
    return results


def fit(sessions: list[Session], engine: StepEngine, listeners: list[CallbackList]) -> None:
    """The loop over epochs for these sessions, each ending at its own last epoch."""
    by_run = {id(s): cb for s, cb in zip(sessions, listeners, strict=True)}
    try:
        with stop_on_signals():
            engine.start(sessions)
            for s in sessions:
                by_run[id(s)].on_train_start(s.cfg.trainer.epochs, s.trainer.steps_per_epoch)
            last = max(s.cfg.trainer.epochs for s in sessions)
            for epoch in range(min(s.next_epoch for s in sessions), last + 1):
                active = [s for s in sessions if s.running and s.next_epoch == epoch]
                if not active:
                    continue
                t0 = time.perf_counter()
                for s in active:
                    s.trainer.regs.start_epoch(epoch, s.model)
                    by_run[id(s)].on_epoch_start(epoch)
                steps = engine.train_epoch(active, epoch, [by_run[id(s)] for s in active])
                train_time = time.perf_counter() - t0
                for s, step in zip(active, steps, strict=True):
                    row = s.end_epoch(epoch, step, time.perf_counter() - train_time, train_time)
                    if row is not None:
                        try:
                            by_run[id(s)].on_epoch_end(row)
                        except Pruned:  # a search's pruner ends this run (a last epoch stays)
                            if s.running:
                                s.stop(PRUNED)
    except (KeyboardInterrupt, Interrupted, Exception) as e:  # keep what was computed
        if isinstance(e, torch.cuda.OutOfMemoryError) and len(sessions) > 1:
            raise  # a population that does not fit: its launcher trains it in halves
        for s in sessions:
            if s.running:
                s.stopped_by(e)
    finally:
        for cb in listeners:
            cb.on_train_end()


def run(cfg: RegbenchConfig, run_dir: Path, *, resume: bool = False,
        callbacks: list[Callback] | None = None) -> RunResult:
    """Train one configuration into run_dir and write metrics.csv, summary.json, checkpoints."""
    result = train([Member(cfg, run_dir, resume, list(callbacks or []))])[0]
    if isinstance(result, Exception):
        raise result
    return result
