"""`regbench bench`: regbench's training loop against the standard tutorial loop, measured.

Both loops train the same model object (weights reset between them) with the same batch
size and optimizer, in the same process, alternating, for several repetitions; medians are
reported. FLOPs are counted by ``torch.utils.flop_counter`` and compared with a large matmul
timed on the same device in the training dtype.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Subset
from torch.utils.flop_counter import FlopCounterMode

from regbench.data import batching as datamod
from regbench.data import datasets
from regbench.training import models
from regbench.launch import reference
from regbench.training.callbacks import Callback
from regbench.config.schema import DEVICES, DatasetConfig
from regbench.training.models import ModelConfig
from regbench.training.schema import RegbenchConfig
from regbench.training.device import (autocast, check_device, configure, memory_format, prepare_batch, prepare_model,
                             resolve_device, train_dtype)
from regbench.errors import ConfigError
from regbench.training.optim import build_optimizer
from regbench.training import step
from regbench.training.population import PopulationEngine
from regbench.training.session import Session, build_trainer, evaluate


@dataclass(frozen=True)
class BenchModel:
    """A benchmarked network: its preset in conf/model/, input shape and real dataset."""

    preset: str
    shape: tuple[int, int, int]  # channels, height, width
    datasets: tuple[str, ...]  # real datasets of that shape
    full_images: int  # training images in a full-size epoch (the real training set)
    cpu_images: int  # on a CPU with --full (a full-size epoch takes minutes there)
    quick_images: int  # on a CPU by default: the quick look


BENCH_MODELS: dict[str, BenchModel] = {
    "mnist": BenchModel("cnn", (1, 28, 28), ("mnist", "fashion_mnist", "mnist5k"), 60_000, 6_000,
                        1_000),
    "cifar": BenchModel("cnn_cifar", (3, 32, 32), ("cifar10",), 50_000, 1_500, 256),
}
SEED = 0
# Members trained as one population, as hydra/launcher=population does: up to a
# 24-job grid on a CPU (already slower at 8), up to an 80-job grid on a GPU.
POPULATION_SIZES = {"cpu": (1, 8, 24), "gpu": (1, 8, 24, 80)}
# A CPU's defaults are a quick look, about a minute on 2 cores: the mnist network alone, its
# quick_images, populations of 1 and 4. --full (or the options one by one) asks for the whole
# measurement, which takes 15 minutes and more on 2 cores.
QUICK_MODEL = "mnist"
QUICK_SIZES = (1, 4)
# Dense bf16 tensor-core peaks from the vendors' data sheets (FLOP/s, without sparsity),
# matched against torch.cuda.get_device_name: the first entry whose words all occur wins.
BF16_SPEC_PEAKS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("H100", "PCIe"), 756e12), (("H100", "NVL"), 835e12), (("H100",), 989e12),
    (("H200",), 989e12), (("GH200",), 989e12), (("A100",), 312e12), (("L40S",), 362e12),
    (("L4",), 121e12), (("A10",), 125e12),
)
WARMUP_BATCHES = 4  # untimed batches per loop first: allocator, cuDNN autotuning, worker start


@dataclass
class Timing:
    """Per-epoch seconds of one loop, one value per repetition."""

    train_s: list[float]
    full_s: list[float]

    def figures(self, images: int) -> dict[str, float]:
        """Medians: train-pass and full-epoch seconds and training images/s."""
        train, full = statistics.median(self.train_s), statistics.median(self.full_s)
        return {"train_epoch_s": train, "full_epoch_s": full, "train_images_per_s": images / train,
                "full_images_per_s": images / full}


def paired_ratio(num: list[float], den: list[float]) -> float:
    """Median over repetitions of num/den: each pair ran back to back, so load drifts cancel."""
    return statistics.median(a / b for a, b in zip(num, den))


def sync(device: torch.device) -> None:
    """Wait for queued device work, so that a clock read covers it (seconds)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_config(preset: str) -> ModelConfig:
    """The model preset from conf/model/, as regbench run would use it."""
    return models.preset(preset)


def synthetic_data(shape: tuple[int, int, int], n_train: int, device: torch.device) -> datamod.Data:
    """Random uint8 images and labels of the real shape: n_train to train, a tenth as many to validate."""
    g = torch.Generator().manual_seed(SEED)
    n_val = max(n_train // 10, 1)
    x = torch.randint(0, 256, (n_train + n_val, *shape), dtype=torch.uint8, generator=g)
    y = torch.randint(0, datasets.NUM_CLASSES, (n_train + n_val,), generator=g)
    train, val = datamod.Split(x[:n_train], y[:n_train]), datamod.Split(x[n_train:], y[n_train:])
    mean, std = datamod.channel_stats(train.x)
    return datamod.Data("synthetic", train, val, val, mean, std, "none").to(device)


def real_data(name: str, root: str, n_train: int | None, device: torch.device) -> datamod.Data:
    """A real dataset through regbench's loader, cut to n_train training images (seeded)."""
    d = datamod.load(DatasetConfig(name=name, root=root, download=False), device)
    if n_train is None:
        return d
    return replace(d, train=datamod.fixed_subset(d.train, n_train, SEED),
                   val=datamod.fixed_subset(d.val, max(n_train // 10, 1), SEED))


def matmul_peak(device: torch.device, dtype: torch.dtype) -> float:
    """Dense matmul FLOP/s: the best of several timed n x n products in the training dtype."""
    # large enough to reach the BLAS's full speed: ~1 TFLOP on a GPU, ~34 GFLOP on a CPU
    n = 8192 if device.type == "cuda" else 2560
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(10 if device.type == "cuda" else 3):
        sync(device)
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def spec_peak(name: str) -> float | None:
    """The data-sheet dense bf16 peak of a GPU named `name`, or None if it is not listed."""
    words = name.replace("-", " ").split()
    for keys, peak in BF16_SPEC_PEAKS:
        if all(k in words for k in keys):
            return peak
    return None


def default_sizes(device: torch.device) -> tuple[int, ...]:
    """The population sizes of the full measurement (--full; a GPU's default)."""
    return POPULATION_SIZES["cpu" if device.type == "cpu" else "gpu"]


@dataclass(frozen=True)
class Plan:
    """What one `regbench bench` measures, decided before anything is timed."""

    models: tuple[str, ...]  # keys of BENCH_MODELS
    images: dict[str, int | None]  # training images per network; None: a real set in full
    members: tuple[int, ...]  # population sizes
    note: str | None  # what a CPU's quick look leaves out, and how to ask for it


def plan(model: str | None = None, dataset: str = "synthetic", images: int | None = None,
         device_type: str = "cpu", members: tuple[int, ...] | None = None,
         full: bool = False) -> Plan:
    """The networks, training images and population sizes to measure.

    An option left out (None) takes its default: the full measurement on a GPU (or with
    ``full``), a quick look on a CPU (QUICK_MODEL, its quick_images, QUICK_SIZES). A real
    dataset picks the networks of its shape.
    """
    quick = device_type == "cpu" and not full
    keys = check_models(model or ("both" if dataset != "synthetic" or not quick else QUICK_MODEL),
                        dataset)
    sizes = members or (QUICK_SIZES if quick else default_sizes(torch.device(device_type)))
    counts: dict[str, int | None] = {}
    for key in keys:
        spec = BENCH_MODELS[key]
        if images is not None or quick:
            counts[key] = images or spec.quick_images
        elif dataset != "synthetic":
            counts[key] = None
        else:
            counts[key] = spec.full_images if device_type != "cpu" else spec.cpu_images
    note = None
    if quick and None in (model, images, members):
        shown = "; ".join(f"{k} network, {counts[k]:,} images" for k in keys)
        members_text = " and ".join(", ".join(map(str, sizes)).rsplit(", ", 1))
        note = (f"a quick look on a CPU ({shown}; populations of {members_text}); "
                "`regbench bench --full` measures both networks ("
                + " and ".join(f"{s.cpu_images:,}" for s in BENCH_MODELS.values())
                + f" images) and populations up to {max(POPULATION_SIZES['cpu'])}: 15 minutes "
                "and more on 2 cores")
    return Plan(tuple(keys), counts, tuple(sizes), note)


def flops_per_image(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> float:
    """FLOPs of one training step (forward + backward) per image, as torch counts them."""
    model.train()
    counter = FlopCounterMode(display=False)
    with counter:
        with autocast(device):
            loss = F.cross_entropy(model(prepare_batch(x)).float(), y)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / len(y)


def time_loop(epoch: Callable[[], None], evals: Callable[[], None], epochs: int,
              device: torch.device) -> tuple[float, float]:
    """(train-pass seconds, full-epoch seconds) per epoch, averaged over `epochs` epochs."""
    train_s = eval_s = 0.0
    for _ in range(epochs):
        sync(device)
        t0 = time.perf_counter()
        epoch()
        sync(device)
        t1 = time.perf_counter()
        evals()
        sync(device)
        train_s += t1 - t0
        eval_s += time.perf_counter() - t1
    return train_s / epochs, (train_s + eval_s) / epochs


class Loops:
    """The two loops on one model: each call resets the weights and the optimizer first."""

    def __init__(self, model: nn.Module, initial: dict[str, torch.Tensor], data: datamod.Data,
                 cfg: RegbenchConfig, files: Path, dataset_name: str, device: torch.device) -> None:
        self.model, self.initial, self.data, self.cfg, self.device = model, initial, data, cfg, device
        mean, std = data.mean.tolist(), data.std.tolist()
        self.ref_train = reference.tutorial_dataset(dataset_name, files, True, mean, std)
        self.ref_val = reference.tutorial_dataset(dataset_name, files, False, mean, std)
        bs = cfg.trainer.batch_size
        self.loaders = {
            "train": reference.tutorial_loader(self.ref_train, bs, device, shuffle=True),
            "train_eval": reference.tutorial_loader(self.ref_train, reference.TEST_BATCH_SIZE, device,
                                                    shuffle=False),
            "val": reference.tutorial_loader(self.ref_val, reference.TEST_BATCH_SIZE, device, shuffle=False),
            "warmup": reference.tutorial_loader(Subset(self.ref_train, range(self.warmup_images())), bs,
                                                device, shuffle=True),
        }

    def warmup_images(self) -> int:
        return min(WARMUP_BATCHES * self.cfg.trainer.batch_size, len(self.data.train))

    def reset(self, fmt: torch.memory_format) -> None:
        self.model.to(memory_format=fmt)
        self.model.load_state_dict(self.initial)

    def reference(self, epochs: int, loader: str = "train") -> tuple[float, float]:
        """The tutorial loop: contiguous model and inputs, float32, as the example writes it."""
        self.reset(torch.contiguous_format)
        opt = build_optimizer(self.cfg.optim, [{"params": list(self.model.parameters())}])
        train_loader = self.loaders[loader]

        def evals() -> None:
            reference.test_epoch(self.model, self.device, self.loaders["train_eval"])
            reference.test_epoch(self.model, self.device, self.loaders["val"])

        return time_loop(lambda: reference.train_epoch(self.model, self.device, train_loader, opt),
                         evals, epochs, self.device)

    def regbench(self, epochs: int, data: datamod.Data | None = None) -> tuple[float, float]:
        """regbench's own training step (regbench.training.step) and evaluate, on the data
        held on the device."""
        self.reset(memory_format(self.device))
        data = data or self.data
        cfg = replace(self.cfg, seed=SEED)
        trainer = build_trainer(cfg, self.model, data, epochs)
        quiet = Callback()

        def epoch() -> None:
            step.train_one(trainer, quiet)

        def evals() -> None:
            evaluate(self.model, data.train, data, cfg.trainer.eval_batch_size)
            evaluate(self.model, data.val, data, cfg.trainer.eval_batch_size)

        return time_loop(epoch, evals, epochs, self.device)

    def warm_up(self) -> None:
        """A few untimed batches through each loop."""
        n = self.warmup_images()
        small = datamod.Split(self.data.train.x[:n], self.data.train.y[:n])
        self.regbench(1, replace(self.data, train=small, val=small))
        self.reference(1, "warmup")


def bench_model(key: str, data: datamod.Data, device: torch.device, epochs: int, reps: int,
                members: tuple[int, ...]) -> dict[str, Any]:
    """Every figure for one network: both loops' medians, ratios, FLOP/s, device memory."""
    spec = BENCH_MODELS[key]
    cfg = replace(RegbenchConfig(), model=model_config(spec.preset))
    torch.manual_seed(SEED)
    model = prepare_model(models.build(cfg.model, cfg.reg, data.in_channels,
                                       data.image_size), device)
    initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    bs = cfg.trainer.batch_size
    flops = flops_per_image(model, datamod.normalize(data.train.x[:bs], data.mean, data.std),
                            data.train.y[:bs], device)
    with tempfile.TemporaryDirectory(prefix="regbench-bench-") as tmp:
        name = reference.write_torchvision_files(Path(tmp), data.train, data.val)
        loops = Loops(model, initial, data, cfg, Path(tmp), name, device)
        loops.warm_up()
        ref, rb = Timing([], []), Timing([], [])
        for rep in range(reps):  # alternate which loop goes first
            order = [(ref, loops.reference), (rb, loops.regbench)]
            for timing, loop in order if rep % 2 == 0 else order[::-1]:
                train_s, full_s = loop(epochs)
                timing.train_s.append(train_s)
                timing.full_s.append(full_s)
        del loops  # stops the reference's loader workers
    n = len(data.train)
    r, b = ref.figures(n), rb.figures(n)
    return {
        "model": spec.preset, "input": list(data.train.x.shape[1:]), "train_images": n,
        "val_images": len(data.val), "batch_size": bs, "eval_batch_size": cfg.trainer.eval_batch_size,
        "n_params": models.count_params(model),
        "regbench": b, "reference": r,
        "ratio_train": paired_ratio(ref.train_s, rb.train_s),
        "ratio_full": paired_ratio(ref.full_s, rb.full_s),
        "full_vs_reference_train": paired_ratio(rb.full_s, ref.train_s),
        "train_flops_per_image": flops,
        "train_flops_per_s": flops * b["train_images_per_s"],
        "reference_train_flops_per_s": flops * r["train_images_per_s"],
        "ten_epoch_s": 10 * b["full_epoch_s"],
        "peak_device_mb": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
        "repetitions": {"regbench": rb.__dict__, "reference": ref.__dict__},
        "population": population_rates(cfg, data, device, epochs, reps, b["train_images_per_s"],
                                       members),
    }


def population_sizes(text: str) -> tuple[int, ...]:
    """'1,8,24' -> (1, 8, 24); ConfigError naming --members unless integers >= 1."""
    parts = [p.strip() for p in text.split(",")]
    if not all(p.isdigit() and int(p) >= 1 for p in parts):
        raise ConfigError(f"--members {text!r} is not allowed: use comma-separated integers >= 1")
    return tuple(int(p) for p in parts)


def population_rates(cfg: RegbenchConfig, data: datamod.Data, device: torch.device, epochs: int,
                     reps: int, sequential_rate: float, sizes: tuple[int, ...]
                     ) -> dict[str, dict[str, float]]:
    """Member-images/s of the population engine's train pass for each size M (median of reps),
    and its ratio to regbench's sequential train pass (one model at a time)."""
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="regbench-population-") as tmp:
        for size in sizes:
            sessions = []
            for i in range(size):
                run_dir = Path(tmp) / f"{size}-{i}"
                run_dir.mkdir()
                sessions.append(Session.open(replace(cfg, seed=SEED + i), run_dir, data, device))
            engine = PopulationEngine()
            engine.start(sessions)
            quiet = [Callback() for _ in sessions]
            seconds = []
            for _ in range(reps):
                sync(device)
                t0 = time.perf_counter()
                for epoch in range(1, epochs + 1):
                    engine.train_epoch(sessions, epoch, quiet)
                sync(device)
                seconds.append((time.perf_counter() - t0) / epochs)
            rate = size * len(data.train) / statistics.median(seconds)
            out[str(size)] = {"member_images_per_s": rate, "vs_sequential": rate / sequential_rate}
    return out


def peak_rss_mb() -> float:
    """The process's peak resident memory so far, in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB on Linux


def load_average() -> float | None:
    """The host's 1-minute load average (runnable processes), where the platform has one."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def machine(device: torch.device) -> str:
    """The device in words: GPU name, or CPU model and thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = torch.get_num_threads()
    return f"{cpu}, {threads} thread{'s' if threads != 1 else ''}"


def check_models(model: str, dataset: str) -> list[str]:
    """The networks that --model names and --dataset fits; ConfigError naming a bad one."""
    if model not in (*BENCH_MODELS, "both"):
        raise ConfigError(f"--model {model!r} is not allowed: use mnist, cifar or both")
    keys = list(BENCH_MODELS) if model == "both" else [model]
    if dataset != "synthetic":
        fits = [k for k in keys if dataset in BENCH_MODELS[k].datasets]
        if dataset not in datasets.DATASET_INFO or not fits:
            allowed = ", ".join(d for k in keys for d in BENCH_MODELS[k].datasets)
            raise ConfigError(f"--dataset {dataset!r} is not allowed with --model {model}: "
                              f"use synthetic or {allowed}")
        keys = fits
    return keys


def check(model: str | None, dataset: str, images: int | None, epochs: int, reps: int,
          device_name: str = "auto", threads: int | None = None) -> list[str]:
    """The networks --model and --dataset name (None: both); ConfigError naming the first
    bad option."""
    if device_name.split(":")[0] not in DEVICES:
        raise ConfigError(f"--device {device_name!r} is not allowed: use auto, cpu, cuda, cuda:N or mps")
    check_device("--device", device_name)
    keys = check_models(model or "both", dataset)
    if images is not None and images < 256:
        raise ConfigError(f"--images {images} is not allowed: use at least 256 (two batches of 128)")
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads {threads} is not allowed: use an integer >= 1")
    if epochs < 1 or reps < 1:
        raise ConfigError(f"--epochs {epochs} / --reps {reps}: both must be at least 1")
    return keys


def run_bench(model: str | None = None, *, images: int | None = None, epochs: int = 1,
              reps: int = 3, dataset: str = "synthetic", root: str = "data",
              device_name: str = "auto", threads: int | None = None,
              members: tuple[int, ...] | None = None, full: bool = False) -> dict[str, Any]:
    """Measure regbench against the tutorial loop for the planned networks; a JSON-ready dict."""
    check(model, dataset, images, epochs, reps, device_name, threads)
    if threads is not None:  # both loops: a CPU shared with other jobs is faster with fewer
        torch.set_num_threads(threads)
    device = resolve_device(device_name)
    todo = plan(model, dataset, images, device.type, members, full)
    configure(device, deterministic=False)
    dtype = train_dtype(device)
    peak = matmul_peak(device, dtype)
    sheet = spec_peak(machine(device)) if device.type == "cuda" else None
    out: dict[str, Any] = {
        "device": str(device), "machine": machine(device), "torch": torch.__version__,
        "train_dtype": str(dtype).removeprefix("torch."), "dataset": dataset, "epochs": epochs,
        "reps": reps, "matmul_peak_flops_per_s": peak, "bf16_spec_peak_flops_per_s": sheet,
        "models": {}, "note": todo.note,
        "load_average": [load_average()],  # other processes share the device: read timings with it
    }
    for key in todo.models:
        n = todo.images[key]
        if dataset == "synthetic":
            d = synthetic_data(BENCH_MODELS[key].shape, n or BENCH_MODELS[key].full_images, device)
        else:
            d = real_data(dataset, root, n, device)
        out["models"][key] = bench_model(key, d, device, epochs, reps, todo.members)
    # measured again at the end: a busy machine can slow one measurement down
    peak = out["matmul_peak_flops_per_s"] = max(peak, matmul_peak(device, dtype))
    for m in out["models"].values():
        m["flops_fraction_of_peak"] = m["train_flops_per_s"] / peak
        m["reference_flops_fraction_of_peak"] = m["reference_train_flops_per_s"] / peak
        m["flops_fraction_of_spec_peak"] = m["train_flops_per_s"] / sheet if sheet else None
        for p in m["population"].values():
            p["flops_fraction_of_spec_peak"] = (
                p["member_images_per_s"] * m["train_flops_per_image"] / sheet if sheet else None)
    out["peak_rss_mb"] = peak_rss_mb()
    out["load_average"].append(load_average())
    return out
