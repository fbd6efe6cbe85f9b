"""The largest losses healthy runs reach: the measurement behind the divergence rule
(trainer.diverge_factor, regbench.training.health; docs/how-to/troubleshooting.md).

Every optimizer preset (conf/optim/) at its default learning rate, under every regularizer
preset (conf/reg/), trains the default CNN for --epochs epochs on --train-size images of
two data sets: the bundled digits (mnist5k) and CIFAR-10-format files generated here (ten
colour classes, a blurred template per class plus noise, written as torchvision's pickled
batches and read through dataset=cifar10). The divergence rule is off for these runs
(trainer.diverge_factor=inf), so that nothing is cut short by what is being measured. For
each data set and optimizer it prints the largest eval-mode train loss and val loss over
every epoch and regularizer, which preset reached it, and that loss as a multiple of a
uniform guess's ln(10) = 2.30; then the same for runs that blew up (lr 1e6), for contrast.

    python scripts/healthy_losses.py                        4 epochs, 500 images, seed 0
    python scripts/healthy_losses.py --epochs 8 --seeds 2
    python scripts/healthy_losses.py --out docs/figures     also writes healthy_losses.txt
                                                            and healthy_losses.machine.txt

It uses one CPU thread (--threads) and writes its runs to a temporary folder; on 2 busy
cores the default takes about 15 minutes (102 runs).
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from regbench import __version__
from regbench.config.schema import CONF_DIR
from regbench.launch.composition import compose
from regbench.launch.reference import write_cifar10_batches
from regbench.training import loop

GUESS = math.log(10)  # a uniform guess's cross-entropy over 10 classes, nats
BLOW_UPS = [["optim=adamw", "optim.lr=1e6"], ["optim=adam", "optim.lr=1e6"]]


@dataclass
class Run:
    """What one run reached."""

    dataset: str
    optim: str
    reg: str
    status: str
    train_loss: float  # largest eval-mode train loss over its epochs
    val_loss: float  # largest val loss over its epochs
    val_acc: float  # best val accuracy


def write_generated_cifar10(root: Path, per_batch: int = 200, n_test: int = 200, seed: int = 0
                            ) -> None:
    """CIFAR-10-format files a CNN can learn: a blurred 8x8 colour template per class,
    upsampled to 32x32, plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    templates = rng.random((10, 3, 8, 8)).repeat(4, axis=2).repeat(4, axis=3)
    batches = []
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        y = rng.integers(0, 10, size=n)
        x = np.clip((templates[y] + rng.normal(0.0, 0.35, size=(n, 3, 32, 32))) * 200, 0, 255)
        batches.append((name, x.astype(np.uint8).reshape(n, -1), y))
    write_cifar10_batches(root / "cifar-10-batches-py", batches)


def train(dataset: list[str], overrides: list[str], seed: int, args: argparse.Namespace,
          root: Path) -> tuple[str, list[float], list[float], list[float]]:
    """(status, train losses, val losses, val accuracies) of one run."""
    _, cfg = compose([*dataset, *overrides, f"seed={seed}", f"dataset.train_size={args.train_size}",
                      f"trainer.epochs={args.epochs}", "trainer.progress=false",
                      "trainer.checkpoint=false", "trainer.device=cpu",
                      "trainer.diverge_factor=inf", f"output.root={root}"])
    run_dir = root / f"run-{time.monotonic_ns()}"
    run_dir.mkdir(parents=True)
    result = loop.run(cfg, run_dir)
    rows = result.rows
    return (result.status, [r.train_loss for r in rows], [r.val_loss for r in rows],
            [r.val_acc for r in rows])


def presets(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def measure(args: argparse.Namespace, root: Path) -> tuple[list[Run], list[Run]]:
    """The healthy runs and the blow-ups, every data set."""
    write_generated_cifar10(root / "data")
    datasets = {"mnist5k": ["dataset=mnist5k"],
                "cifar10 (generated)": ["dataset=cifar10", f"dataset.root={root / 'data'}",
                                        "dataset.download=false", "model=cnn_cifar"]}
    healthy, blown = [], []
    for name, dataset in datasets.items():
        for optim in presets("optim"):
            for reg in args.regs or presets("reg"):
                for seed in range(args.seeds):
                    healthy.append(one(name, dataset, [f"optim={optim}", f"reg={reg}"], optim,
                                       reg, seed, args, root))
        for overrides in BLOW_UPS:
            blown.append(one(name, dataset, [*overrides, "reg=none"], " ".join(overrides), "none",
                             0, args, root))
    return healthy, blown


def one(name: str, dataset: list[str], overrides: list[str], optim: str, reg: str, seed: int,
        args: argparse.Namespace, root: Path) -> Run:
    status, train_losses, val_losses, accs = train(dataset, overrides, seed, args, root)
    finite = [x for x in train_losses + val_losses if math.isfinite(x)]
    run = Run(name, optim, reg, status, max(train_losses, default=math.nan),
              max(val_losses, default=math.nan), max(accs, default=math.nan))
    print(f"  {name} {optim} reg={reg} seed {seed}: {status}, largest train loss "
          f"{run.train_loss:.3g}, val loss {run.val_loss:.3g}, best val acc "
          f"{100 * run.val_acc:.1f}%{'' if finite else ' (no finite epoch)'}",
          file=sys.stderr, flush=True)
    return run


def table(healthy: list[Run], blown: list[Run]) -> list[str]:
    """The figures: per data set and optimizer, the largest losses and where they arose."""
    lines = [f"{'data set':<20} {'optimizer':<9} {'largest train loss':<28} "
             f"{'largest val loss':<28}"]
    keys = list(dict.fromkeys((r.dataset, r.optim) for r in healthy))
    for dataset, optim in keys:
        group = [r for r in healthy if (r.dataset, r.optim) == (dataset, optim)]
        cells = []
        for field in ("train_loss", "val_loss"):
            top = max(group, key=lambda r: getattr(r, field))
            value = getattr(top, field)
            cells.append(f"{value:.2f} = {value / GUESS:.2f}x ln 10 ({top.reg})")
        lines.append(f"{dataset:<20} {optim:<9} {cells[0]:<28} {cells[1]:<28}")
    worst = max(healthy, key=lambda r: max(r.train_loss, r.val_loss))
    peak = max(worst.train_loss, worst.val_loss)
    statuses = sorted({r.status for r in healthy})
    lines += ["", f"healthy runs: {len(healthy)} (statuses: {', '.join(statuses)}); largest loss "
              f"{peak:.2f} = {peak / GUESS:.2f}x ln 10 ({worst.dataset}, optim={worst.optim}, "
              f"reg={worst.reg}); the default factor 10 leaves a margin of "
              f"{10 * GUESS / peak:.1f}x", "", "blown up, for contrast (reg=none):"]
    for r in blown:
        lines.append(f"{r.dataset:<20} {r.optim:<26} train loss {r.train_loss:.2g}, val loss "
                     f"{r.val_loss:.2g} ({r.status}), best val acc {100 * r.val_acc:.1f}%")
    return lines


def machine(args: argparse.Namespace, command: str) -> list[str]:
    """When, on what and with which versions: what scripts/splice_figures.py reads."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.processor())
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").exists() else "?"
    return [f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d}",
            f"cpu: {cpu} ({os.cpu_count()} cores)", f"system: {platform.system()} {platform.machine()}",
            f"load average at the start: {load}",
            f"versions: regbench {__version__}, torch {torch.__version__}",
            f"settings: {args.epochs} epochs, {args.train_size} images, {args.seeds} seed(s), "
            f"{args.threads} thread(s), CPU"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--train-size", type=int, default=500)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--regs", type=lambda s: s.split(","), default=None,
                        help="regularizer presets, comma-separated (default: every one)")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for healthy_losses.txt and healthy_losses.machine.txt")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    command = "$ python scripts/healthy_losses.py " + " ".join(
        a for a in sys.argv[1:] if not a.startswith("--out") and a != str(args.out))
    about = machine(args, command)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        healthy, blown = measure(args, Path(tmp))
    lines = [command.rstrip(), *table(healthy, blown),
             f"(wall time: {time.perf_counter() - t0:.0f} s)"]
    print("\n".join(lines))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "healthy_losses.txt").write_text("\n".join(lines) + "\n")
        (args.out / "healthy_losses.machine.txt").write_text("\n".join(about) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
