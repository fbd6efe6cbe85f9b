"""Write tiny datasets in torchvision's own on-disk formats (IDX, CIFAR-10 pickles)."""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray) -> None:
    """An uncompressed IDX file (the MNIST format): magic, big-endian dims, uint8 data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, n_train: int = 200, n_test: int = 50, folder: str = "MNIST",
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-format files under root/<folder>/raw; returns the train images and labels."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    out = None
    for split, n in (("train", n_train), ("t10k", n_test)):
        x = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        y = np.arange(n, dtype=np.uint8) % 10
        write_idx(raw / f"{split}-images-idx3-ubyte", x)
        write_idx(raw / f"{split}-labels-idx1-ubyte", y)
        out = out or (x, y)
    assert out is not None
    return out


def write_cifar10(root: Path, per_batch: int = 40, n_test: int = 30, seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 pickled batches under root/cifar-10-batches-py; returns batch 1."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    first = None
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        x = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)
        y = [int(v) for v in np.arange(n) % 10]
        with open(folder / name, "wb") as f:
            pickle.dump({"data": x, "labels": y, "batch_label": name}, f)
        first = first or (x, np.array(y))
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)
    assert first is not None
    return first
