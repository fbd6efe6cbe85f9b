"""The standard PyTorch tutorial training loop, the baseline that `regbench bench` measures against.

Written as pytorch/examples ``mnist/main.py`` writes it: a torchvision dataset read from its
on-disk files, per-sample ``ToTensor`` + ``Normalize`` transforms behind a ``DataLoader``,
``loss.item()`` every ``log_interval`` batches while training, and ``.item()`` on every
batch of the evaluation pass.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from regbench.data.batching import Split
from regbench.data.datasets import torchvision_class

LOG_INTERVAL = 10  # batches between loss.item() calls, as in the example
TEST_BATCH_SIZE = 1000  # the example's --test-batch-size


def write_idx(path: Path, array: np.ndarray) -> None:
    """An uncompressed IDX file (the MNIST format): magic, big-endian dims, uint8 data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_cifar10_batches(folder: Path, batches: list[tuple[str, np.ndarray, np.ndarray]]) -> None:
    """CIFAR-10 pickled batches (name, images [n, 3072] uint8, labels) plus batches.meta."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, x, y in batches:
        with open(folder / name, "wb") as f:
            pickle.dump({"data": x, "labels": [int(v) for v in y], "batch_label": name}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)


def write_torchvision_files(root: Path, train: Split, test: Split) -> str:
    """Write two splits in torchvision's format (MNIST for grey, CIFAR-10 for colour); its name."""
    tx, ty = train.x.cpu().numpy(), train.y.cpu().numpy()
    vx, vy = test.x.cpu().numpy(), test.y.cpu().numpy()
    if tx.shape[1] == 1:
        raw = root / "MNIST" / "raw"
        for prefix, x, y in (("train", tx, ty), ("t10k", vx, vy)):
            write_idx(raw / f"{prefix}-images-idx3-ubyte", x[:, 0])
            write_idx(raw / f"{prefix}-labels-idx1-ubyte", y)
        return "mnist"
    flat = tx.reshape(len(tx), -1)  # [N, C, H, W] is CIFAR-10's row layout already
    parts = np.array_split(np.arange(len(flat)), 5)
    batches = [(f"data_batch_{i + 1}", flat[p], ty[p]) for i, p in enumerate(parts)]
    batches.append(("test_batch", vx.reshape(len(vx), -1), vy))
    write_cifar10_batches(root / "cifar-10-batches-py", batches)
    return "cifar10"


def tutorial_dataset(name: str, root: Path, train: bool, mean: list[float], std: list[float]
                     ) -> Dataset:
    """A torchvision dataset whose every sample goes through PIL, ToTensor and Normalize."""
    from torchvision import transforms

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    return torchvision_class(name)(str(root), train=train, download=False, transform=transform)


def tutorial_loader(dataset: Dataset, batch_size: int, device: torch.device, *, shuffle: bool
                    ) -> DataLoader:
    """The example's DataLoader: one pinned-memory worker on an accelerator, none on the CPU."""
    kwargs: dict[str, object] = {"batch_size": batch_size, "shuffle": shuffle}
    if device.type != "cpu":
        kwargs.update(num_workers=1, persistent_workers=True, pin_memory=True)
    return DataLoader(dataset, **kwargs)  # type: ignore[arg-type]


def train_epoch(model: nn.Module, device: torch.device, loader: DataLoader,
                optimizer: torch.optim.Optimizer) -> list[float]:
    """One training epoch the tutorial way; returns the logged losses."""
    model.train()
    logged = []
    for batch_idx, (x, y) in enumerate(loader):
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        if batch_idx % LOG_INTERVAL == 0:
            logged.append(loss.item())
    return logged


def test_epoch(model: nn.Module, device: torch.device, loader: DataLoader) -> tuple[float, float]:
    """Mean loss and accuracy in eval mode, summed with .item() per batch as the tutorial does."""
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            out = model(x)
            loss_sum += F.cross_entropy(out, y, reduction="sum").item()
            correct += int(out.argmax(dim=1).eq(y).sum().item())
    n = max(len(loader.dataset), 1)  # type: ignore[arg-type]
    return loss_sum / n, correct / n
