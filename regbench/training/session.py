"""One run folder being trained: its model, trainer, metrics log, checkpoint and summary.

The epoch driver (regbench.training.loop) opens a Session per run, has a step engine
train each epoch, and records it here with ``end_epoch``; ``close`` tests the kept weights
and writes summary.json. A run folder is the same whichever engine trained it.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from regbench.data import batching, datasets
from regbench.store import checkpoint, metrics, run_config, runs
from regbench.store.runlog import run_context
from regbench.store.summary import Summary
from regbench.training import calibration, curves, health, models, optim, plugins
from regbench.training.device import autocast, configure, prepare_batch, prepare_model
from regbench.training.layers import rate_in_force
from regbench.training.regularizers import Regularization, describe_groups
from regbench.training.record import RunResult
from regbench.training.schema import RegbenchConfig
from regbench.training.signals import Interrupted, signals_deferred, stop_on_signals

log = logging.getLogger("regbench")

def seed_everything(seed: int, deterministic: bool) -> None:
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


@torch.inference_mode()
def evaluate(model: nn.Module, split: batching.Split, data: batching.Data, batch_size: int,
             log_probs: list[Tensor] | None = None) -> tuple[float, float]:
    """Mean cross-entropy and accuracy in eval mode (dropout off, BN running statistics).

    ``log_probs``, when given, collects each batch's log-probabilities (for calibration).
    """
    model.eval()
    loss_sum = torch.zeros((), device=split.x.device)
    correct = torch.zeros((), device=split.x.device, dtype=torch.long)
    for x, y in batching.batches(split, batch_size, mean=data.mean, std=data.std):
        with autocast(x.device):
            logits = model(prepare_batch(x))
        loss_sum += F.cross_entropy(logits.float(), y, reduction="sum")
        correct += (logits.argmax(1) == y).sum()
        if log_probs is not None:
            log_probs.append(F.log_softmax(logits.float(), dim=1))
    n = max(len(split), 1)
    return loss_sum.item() / n, correct.item() / n


@dataclass
class Trainer:
    """What one training epoch needs, built once per run (regbench.training.step trains it)."""

    cfg: RegbenchConfig
    model: nn.Module
    data: batching.Data
    regs: Regularization
    optimizer: torch.optim.Optimizer
    scheduler: optim.Schedule
    generator: torch.Generator

    @property
    def steps_per_epoch(self) -> int:
        return batching.num_batches(len(self.data.train), self.cfg.trainer.batch_size)


def build_trainer(cfg: RegbenchConfig, model: nn.Module, data: batching.Data,
                  epochs: int | None = None) -> Trainer:
    """Regularizers, optimizer (with their parameter groups), schedule, batch-order generator."""
    regs = Regularization.from_config(cfg.reg, epochs or cfg.trainer.epochs)
    optimizer = optim.build_optimizer(cfg.optim, regs.param_groups(model))
    steps = batching.num_batches(len(data.train), cfg.trainer.batch_size)
    schedule = optim.Schedule(cfg.optim, optimizer, epochs or cfg.trainer.epochs, steps)
    generator = torch.Generator(device=data.train.x.device).manual_seed(cfg.seed)
    return Trainer(cfg, model, data, regs, optimizer, schedule, generator)


@dataclass
class Session:
    """One run folder being trained: its model, trainer, metrics log, counters and status.

    Every engine opens one per run, records each trained epoch with ``end_epoch`` and
    ``close``s it, so a run folder is the same whichever engine trained it. What a session
    logs goes to its own run.log only (regbench.store.runlog).
    """

    cfg: RegbenchConfig
    run_dir: Path
    device: torch.device
    data: batching.Data
    trainer: Trainer
    train_eval: batching.Split
    log_csv: metrics.MetricsLog
    start: int  # first epoch to train (after a checkpoint's epoch when resuming)
    extra: dict[str, Any]
    t_start: float
    next_epoch: int = 0
    status: str = "completed"
    error: str | None = None
    signame: str | None = None
    diverged: tuple[int, str] | None = None  # the epoch and reason it diverged (health)

    @classmethod
    def open(cls, cfg: RegbenchConfig, run_dir: Path, data: batching.Data, device: torch.device,
             *, resume: bool = False, t_start: float | None = None,
             compile: bool | None = None) -> Session:
        """Seed, build the model and trainer, load a checkpoint to resume, start the log.

        ``compile`` overrides trainer.compile (the population engine trains without it).
        """
        t_start = time.perf_counter() if t_start is None else t_start
        with run_context(run_dir):
            seed_everything(cfg.seed, cfg.trainer.deterministic)
            if not resume:  # written once the data is there, so a data error leaves no run behind
                run_config.write(run_dir, cfg)
            model = models.build(cfg.model, cfg.reg, data.in_channels, data.image_size,
                                 data.num_classes)
            configure(device, cfg.trainer.deterministic)
            compile = cfg.trainer.compile if compile is None else compile
            model = prepare_model(model, device, compile=compile)
            trainer = build_trainer(cfg, model, data)
            train_eval = batching.fixed_subset(data.train, cfg.trainer.train_eval_size, cfg.seed)
            log.info("model: %s", model)
            log.info("parameter groups: %s", describe_groups(trainer.optimizer.param_groups))
            start, extra = 1, new_counters()
            if resume:
                runs.remove_leftovers(run_dir)  # of a write its killed process left
                start, extra = load_checkpoint(run_dir, trainer)
            log_csv = metrics.MetricsLog(run_dir / runs.METRICS_FILE, keep_epochs=start - 1)
            write_summary(run_dir, cfg, log_csv.rows, "running", model, device, extra)
        return cls(cfg, run_dir, device, data, trainer, train_eval, log_csv, start, extra, t_start,
                   next_epoch=start)

    @property
    def model(self) -> nn.Module:
        return self.trainer.model

    @property
    def running(self) -> bool:
        """Whether the run goes on to another epoch."""
        return self.status == "completed" and self.next_epoch <= self.cfg.trainer.epochs

    def end_epoch(self, epoch: int, step: EpochStep, t0: float, train_time: float
                  ) -> metrics.Row | None:
        """Evaluate and record a trained epoch; sets the status when the run ends with it.

        Returns the epoch's row, or None when nothing finite was left to record: a loss,
        parameter or gradient that is NaN or infinite ends the run unrecorded. A finite
        epoch whose losses exploded (regbench.training.health) is recorded, then ends it.
        """
        reason = ("the training loss became NaN or infinite" if not step.finite
                  else health.non_finite(self.model))
        if reason is not None:
            self.diverge(epoch, reason)
            return None
        eval_size = self.cfg.trainer.eval_batch_size
        train_loss, train_acc = evaluate(self.model, self.train_eval, self.data, eval_size)
        val_loss, val_acc = evaluate(self.model, self.data.val, self.data, eval_size)
        reason = health.exploded({"train loss": train_loss, "val loss": val_loss},
                                 self.data.num_classes, self.cfg.trainer.diverge_factor)
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            self.diverge(epoch, reason or "a loss became NaN or infinite")
            return None
        row = metrics.Row(epoch=epoch, train_loss=train_loss, train_acc=train_acc,
                          val_loss=val_loss, val_acc=val_acc, train_loss_running=step.running,
                          penalty=step.penalty, lr=optim.current_lr(self.trainer.optimizer),
                          epoch_time_s=time.perf_counter() - t0,
                          dropout_rate=rate_in_force(self.model))
        with run_context(self.run_dir), signals_deferred():  # row and checkpoint land together
            self.log_csv.append(row)
            stop = self.trainer.regs.end_epoch(row, self.model)
            self.extra["train_time_s"] += train_time
            self.extra["train_images"] += len(self.data.train)
            if self.cfg.trainer.checkpoint and reason is None:
                save_checkpoint(self.run_dir, epoch, self.trainer, self.extra, self.t_start)
        self.next_epoch = epoch + 1
        if reason is not None:
            self.diverge(epoch, reason)
        elif stop:
            self.status = "early_stopped"
        return row

    def diverge(self, epoch: int, reason: str) -> None:
        """End the run as diverged at this epoch, for this reason (it goes to the summary)."""
        self.status, self.diverged = "diverged", (epoch, reason)
        with run_context(self.run_dir):
            log.warning("diverged at epoch %d: %s", epoch, reason)

    def stop(self, status: str) -> None:
        """End the run after its last recorded epoch with this status (e.g. pruned)."""
        self.status = status

    def stopped_by(self, e: BaseException) -> None:
        """Record why training ended early: a signal, or an error (logged with its traceback)."""
        if isinstance(e, (KeyboardInterrupt, Interrupted)):
            self.status = "interrupted"
            self.signame = e.args[0] if isinstance(e, Interrupted) else "SIGINT"
        else:
            self.status, self.error = "failed", f"{type(e).__name__}: {e}"
            with run_context(self.run_dir):
                log.error("run failed", exc_info=e)

    def close(self) -> RunResult:
        """Restore the best weights if asked, test a finished run, write summary.json.

        A signal during the test pass leaves the run interrupted (resuming it tests it); one
        that arrives while the summary is written is handled once the file is complete.
        """
        with run_context(self.run_dir):
            test: tuple[float | None, float | None] = (None, None)
            test_time: dict[str, Any] = {}
            try:
                with stop_on_signals():
                    if self.status in runs.FINISHED:
                        test, test_time = self.test()
            except (KeyboardInterrupt, Interrupted) as e:
                self.stopped_by(e)
                test, test_time = (None, None), {}
            self.extra["wall_time_s"] += time.perf_counter() - self.t_start
            with signals_deferred():
                summary = write_summary(self.run_dir, self.cfg, self.log_csv.rows, self.status,
                                        self.model, self.device, self.extra, test=test,
                                        test_time=test_time, error=self.error,
                                        signal_name=self.signame, diverged=self.diverged,
                                        val_images=len(self.data.val),
                                        num_classes=self.data.num_classes)
        return RunResult(self.run_dir, self.status, self.log_csv.rows, summary)

    def test(self) -> tuple[tuple[float, float], dict[str, Any]]:
        """The test set's loss and accuracy with the kept weights, and the test-time figures
        (calibration, MC dropout)."""
        stopper = self.trainer.regs.stopper
        if stopper.keep_best:
            stopper.restore(self.model)
        eval_size = self.cfg.trainer.eval_batch_size
        scaled: list[Tensor] = []  # the test pass's log-probabilities serve calibration too
        test = evaluate(self.model, self.data.test, self.data, eval_size, scaled)
        test_time = calibration.test_time(self.model, self.data.test, self.data, eval_size,
                                          self.cfg.eval.mc_samples, torch.cat(scaled))
        return test, test_time


@dataclass(frozen=True)
class EpochStep:
    """What a step engine reports of one member's training epoch."""

    running: float  # mean loss over the epoch's steps, regularization active
    penalty: float  # mean L1/L2 term
    finite: bool  # False: the loss became NaN or infinite (the run diverged)


def new_counters() -> dict[str, Any]:
    """The timing counters a run carries across resumes."""
    return {"train_time_s": 0.0, "train_images": 0, "wall_time_s": 0.0}


def write_summary(run_dir: Path, cfg: RegbenchConfig, rows: list[metrics.Row], status: str,
                  model: nn.Module, device: torch.device, extra: dict[str, Any], *,
                  test: tuple[float | None, float | None] = (None, None),
                  test_time: dict[str, Any] | None = None, error: str | None = None,
                  signal_name: str | None = None,
                  diverged: tuple[int, str] | None = None,
                  val_images: int | None = None,
                  num_classes: int = datasets.NUM_CLASSES) -> Summary:
    """Write summary.json from the run's rows and state, and return it."""
    monitor = cfg.reg.early_stopping.monitor
    best_i = curves.best_index(rows, monitor)
    best = rows[best_i] if best_i is not None else None
    kept = int(best["epoch"]) if best and cfg.reg.early_stopping.enabled \
        and cfg.reg.early_stopping.restore_best else (int(rows[-1]["epoch"]) if rows else None)
    diverged = diverged if status == "diverged" else None
    chance = (val_images, num_classes) if val_images else None
    summary = Summary(
        status=status,
        epochs_run=len(rows),
        best_epoch=int(best["epoch"]) if best else None,
        stopped_epoch=int(rows[-1]["epoch"]) if status in ("early_stopped", runs.PRUNED) and rows
        else None,
        kept_epoch=kept,
        monitor=monitor,
        best=best,
        last=rows[-1] if rows else None,
        onset_epoch=curves.onset_epoch(rows),
        test_loss=test[0],
        test_acc=test[1],
        test_ece=(test_time or {}).get("test_ece"),
        mc_dropout=(test_time or {}).get("mc_dropout"),
        convergence_epoch=curves.convergence_epoch(rows),
        verdict=curves.verdict(rows, status, kept if status == "early_stopped" else None,
                               diverged=diverged, chance=chance),
        wall_time_s=extra["wall_time_s"],
        train_images_per_s=(extra["train_images"] / extra["train_time_s"]
                            if extra["train_time_s"] else None),
        n_params=models.count_params(model),
        device=str(device),
        machine=runs.machine(),
        seed=cfg.seed,
        experiment=cfg.experiment,
        error=error,
        signal=signal_name,
        val_images=val_images,
        at_chance=curves.at_chance(rows, *chance) if chance and status in runs.FINISHED else None,
        diverged_epoch=diverged[0] if diverged else None,
        diverged_reason=diverged[1] if diverged else None,
        versions=runs.versions(),
        plugins=plugins.recorded(),
        val_loss_rise=curves.val_loss_rise(rows),
        config=run_config.keys_of(cfg),
    )
    summary.write(run_dir)
    return summary


def save_checkpoint(run_dir: Path, epoch: int, trainer: Trainer, extra: dict[str, Any],
                    t_start: float) -> None:
    """Everything needed to continue after `epoch` (regbench.store.checkpoint)."""
    checkpoint.write(run_dir, checkpoint.Checkpoint(
        epoch=epoch,
        model=trainer.model.state_dict(),
        optimizer=trainer.optimizer.state_dict(),
        scheduler=trainer.scheduler.state_dict(),
        early_stopping=trainer.regs.stopper.state_dict(),
        rng_cpu=torch.get_rng_state(),
        rng_generator=trainer.generator.get_state(),
        rng_cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        extra={**extra, "wall_time_s": extra["wall_time_s"] + time.perf_counter() - t_start},
    ))


def load_checkpoint(run_dir: Path, trainer: Trainer) -> tuple[int, dict[str, Any]]:
    """Restore a run's state; returns (first epoch to train, timing counters)."""
    state = checkpoint.read(run_dir, trainer.data.train.x.device)
    if state is None:
        return 1, new_counters()
    try:
        trainer.model.load_state_dict(state.model)
        trainer.optimizer.load_state_dict(state.optimizer)
        trainer.scheduler.load_state_dict(state.scheduler, int(state.epoch))
        trainer.regs.stopper.load_state_dict(state.early_stopping)
        torch.set_rng_state(state.rng_cpu.cpu())
        trainer.generator.set_state(state.rng_generator.cpu())
        if state.rng_cuda:
            torch.cuda.set_rng_state_all([s.cpu() for s in state.rng_cuda])
    except Exception as e:
        raise checkpoint.damaged(run_dir, e) from e
    return int(state.epoch) + 1, dict(state.extra)
