"""Write tiny datasets in torchvision's own on-disk formats (IDX, CIFAR-10 pickles)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from regbench.launch.reference import write_cifar10_batches, write_idx


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
    batches = []
    for name, n in [(f"data_batch_{i}", per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        batches.append((name, rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8),
                        np.arange(n) % 10))
    write_cifar10_batches(root / "cifar-10-batches-py", batches)
    return batches[0][1], batches[0][2]
