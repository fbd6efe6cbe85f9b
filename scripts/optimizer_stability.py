"""How stably candidate optimizer settings train a CNN on few images: the figures behind
regbench's default optimizer (docs/explanation/optimizer.md).

Each candidate is a list of config overrides. It trains every seed on mnist5k with
--train-size training images for --epochs epochs (no regularization, the default CNN and
batch size), one run after another, and prints per candidate:

- final val acc: mean and standard deviation over seeds of the last epoch's val accuracy,
- best val acc: mean over seeds of the best epoch's val accuracy,
- largest fall: the largest drop of val accuracy from one epoch to the next, over all
  epochs and seeds (points); an unstable optimizer shows it as a collapse,
- falls > 5: how many of the seeds x (epochs - 1) steps fell by more than 5 points,
- unstable: how many seeds' runs the verdict calls unstable training
  (regbench.store.curves.instability: a fall of more than 10 points, or train loss rising
  by more than 10%, from one epoch to the next),
- s/run: mean wall time of one run.

    python scripts/optimizer_stability.py                         every candidate, 500 images, 8 epochs
    python scripts/optimizer_stability.py --epochs 20 --only default sgd_lr0.05
    python scripts/optimizer_stability.py --train-size all --seeds 3 --epochs 5 --only default
    python scripts/optimizer_stability.py --epochs 20 --extra reg=dropout --only default

It uses one CPU thread (--threads), so that it shares a machine politely; a 500-image run
of 8 epochs takes a few seconds. Nothing is kept: runs go to a temporary folder.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from regbench import __version__
from regbench.launch.composition import compose
from regbench.store import metrics
from regbench.training import curves
from regbench.training import loop
from regbench.training.optim import learning_rate

# The candidates measured for the default: the old default (SGD, rate 0.05, momentum 0.9, a
# fixed rate), lower rates, a linear warm-up, schedules, and Adam-style optimizers at their
# usual rate. "default" is whatever the configuration gives with no override.
CANDIDATES: dict[str, list[str]] = {
    "default": [],
    "sgd_lr0.05": ["optim=sgd", "optim.lr=0.05", "optim.warmup_epochs=0", "optim.schedule=none"],
    "sgd_lr0.02": ["optim=sgd", "optim.lr=0.02", "optim.warmup_epochs=0", "optim.schedule=none"],
    "sgd_lr0.01": ["optim=sgd", "optim.lr=0.01", "optim.warmup_epochs=0", "optim.schedule=none"],
    "sgd_lr0.05_cosine": ["optim=sgd", "optim.lr=0.05", "optim.warmup_epochs=0",
                          "optim.schedule=cosine"],
    "sgd_lr0.05_warmup1": ["optim=sgd", "optim.lr=0.05", "optim.warmup_epochs=1",
                           "optim.schedule=none"],
    "sgd_lr0.05_warmup2": ["optim=sgd", "optim.lr=0.05", "optim.warmup_epochs=2",
                           "optim.schedule=none"],
    "sgd_lr0.05_warmup1_cosine": ["optim=sgd", "optim.lr=0.05", "optim.warmup_epochs=1",
                                  "optim.schedule=cosine"],
    "sgd_lr0.02_warmup1": ["optim=sgd", "optim.lr=0.02", "optim.warmup_epochs=1",
                           "optim.schedule=none"],
    "sgd_lr0.02_warmup1_cosine": ["optim=sgd", "optim.lr=0.02", "optim.warmup_epochs=1",
                                  "optim.schedule=cosine"],
    "adamw_lr1e-3": ["optim=adamw", "optim.lr=1e-3", "optim.warmup_epochs=0",
                     "optim.schedule=none"],
    "adamw_lr1e-3_warmup1": ["optim=adamw", "optim.lr=1e-3", "optim.warmup_epochs=1",
                             "optim.schedule=none"],
}
BIG_FALL = 0.05  # a fall of val accuracy larger than this (a fraction) counts in "falls > 5"
EXTRA: list[str] = []  # --extra: overrides added to every run (reg=dropout, ...)


@dataclass
class Measured:
    """One candidate over the seeds."""

    final: list[float]  # last epoch's val accuracy per seed
    best: list[float]  # best val accuracy per seed
    falls: list[float]  # every epoch-to-epoch change val_acc[e-1] - val_acc[e], all seeds
    unstable: int  # seeds whose curves the verdict calls unstable
    seconds: list[float]


def train(overrides: list[str], seed: int, train_size: str, epochs: int, root: Path
          ) -> list[metrics.Row]:
    """The metrics.csv rows of one run."""
    _, cfg = compose([*overrides, f"seed={seed}", "dataset=mnist5k", "reg=none",
                      f"dataset.train_size={train_size}", f"trainer.epochs={epochs}",
                      "trainer.progress=false", "trainer.checkpoint=false", "trainer.device=cpu",
                      f"output.root={root}", *EXTRA])
    run_dir = root / f"run-{time.monotonic_ns()}"
    run_dir.mkdir(parents=True)
    result = loop.run(cfg, run_dir)
    if result.status not in ("completed", "early_stopped"):
        raise SystemExit(f"{overrides} seed {seed}: {result.status} ({result.summary.get('error')})")
    return result.rows


def measure(overrides: list[str], seeds: int, train_size: str, epochs: int) -> Measured:
    m = Measured([], [], [], 0, [])
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(seeds):
            t0 = time.perf_counter()
            rows = train(overrides, seed, train_size, epochs, Path(tmp))
            m.seconds.append(time.perf_counter() - t0)
            m.unstable += curves.instability(rows) is not None
            curve = [r.val_acc for r in rows]
            m.final.append(curve[-1])
            m.best.append(max(curve))
            m.falls.extend(a - b for a, b in zip(curve, curve[1:]))
    return m


def header(args: argparse.Namespace) -> str:
    """Date, command, machine and versions: where the figures come from."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    dataset = next((e.split("=", 1)[1] for e in args.extra if e.startswith("dataset=")), "mnist5k")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return "\n".join([
        f"date: {now}",
        f"command: python {' '.join(sys.argv)}",
        f"machine: {cpu}, {torch.get_num_threads()} torch thread(s), load average {load}",
        f"versions: regbench {__version__}, torch {torch.__version__}, python {platform.python_version()}",
        f"data: {dataset}, {'all' if args.train_size == 'null' else args.train_size} "
        f"training images, {' '.join(args.extra) or 'reg=none'}, "
        f"seeds 0..{args.seeds - 1}, {args.epochs} epochs",
    ])


def train_size(text: str) -> str:
    """--train-size as the value of dataset.train_size: a count, or null for 'all'."""
    if text == "all":
        return "null"
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of images or 'all'")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-size", default="500", type=train_size,
                        help="training images, or 'all' (3,600 for mnist5k; default 500)")
    parser.add_argument("--epochs", type=int, default=8, help="epochs per run (default 8)")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--extra", nargs="+", default=[], metavar="OVERRIDE",
                        help="overrides for every run, e.g. reg=dropout (default: reg=none)")
    parser.add_argument("--only", nargs="+", choices=sorted(CANDIDATES), metavar="NAME",
                        help=f"candidates to measure (default all): {', '.join(CANDIDATES)}")
    args = parser.parse_args()
    EXTRA.extend(args.extra)
    torch.set_num_threads(args.threads)
    print(header(args), flush=True)
    names = args.only or list(CANDIDATES)
    width = max(len(n) for n in [*names, "candidate"])
    print(f"\n{'candidate':<{width}}  final val acc  best val acc  largest fall  falls > 5"
          "  unstable  s/run")
    for name in names:
        m = measure(CANDIDATES[name], args.seeds, args.train_size, args.epochs)
        sd = statistics.stdev(m.final) if len(m.final) > 1 else 0.0
        big = sum(f > BIG_FALL for f in m.falls)
        largest = max(m.falls, default=0.0)
        print(f"{name:<{width}}  {100 * statistics.mean(m.final):6.2f} ± {100 * sd:4.2f}"
              f"  {100 * statistics.mean(m.best):12.2f}  {100 * largest:+12.2f}"
              f"  {big:4d}/{len(m.falls):<4d}  {m.unstable:4d}/{args.seeds:<3d}"
              f"  {statistics.mean(m.seconds):5.1f}", flush=True)
    print(f"\ndefault: {' '.join(default_optim())}")


def default_optim() -> list[str]:
    """The default optimizer settings, as overrides."""
    _, cfg = compose([])
    o = cfg.optim
    return [f"optim.name={o.name}", f"optim.lr={learning_rate(o)}", f"optim.momentum={o.momentum}",
            f"optim.schedule={o.schedule}", f"optim.warmup_epochs={o.warmup_epochs}"]


if __name__ == "__main__":
    main()
