"""Datasets held as uint8 tensors on the training device, batched by index.

Batches are taken by index, normalised per batch and augmented with batched tensor
operations, so the training loop runs no per-sample Python and no DataLoader workers.
Reading and splitting the files is regbench.data.datasets.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from regbench.data import datasets
from regbench.config.schema import DatasetConfig


@dataclass(frozen=True)
class Split:
    """Images as uint8 [N, C, H, W] and labels as int64 [N], on one device."""

    x: Tensor
    y: Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, idx: Tensor | np.ndarray) -> Split:
        index = torch.as_tensor(idx, dtype=torch.long, device=self.x.device)
        return Split(self.x[index], self.y[index])

    def to(self, device: torch.device) -> Split:
        return Split(self.x.to(device), self.y.to(device))


@dataclass(frozen=True)
class Data:
    """The three splits plus what is needed to normalise and augment a batch."""

    name: str
    train: Split
    val: Split
    test: Split
    mean: Tensor  # per channel, in [0, 1] units
    std: Tensor
    augment: str  # "none" | "shift" | "crop_flip"
    num_classes: int = datasets.NUM_CLASSES  # the largest label + 1

    @property
    def in_channels(self) -> int:
        return int(self.train.x.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.train.x.shape[2]), int(self.train.x.shape[3])

    def to(self, device: torch.device) -> Data:
        return replace(self, train=self.train.to(device), val=self.val.to(device),
                       test=self.test.to(device), mean=self.mean.to(device), std=self.std.to(device))


def normalize(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """uint8 [..., C, H, W] -> float32, scaled to [0, 1] then standardised per channel."""
    scale = (1.0 / (255.0 * std)).view(1, -1, 1, 1)
    shift = (-mean / std).view(1, -1, 1, 1)
    return torch.addcmul(shift, x.float(), scale)


def random_shift(x: Tensor, pad: int, generator: torch.Generator | None) -> Tensor:
    """Translate every image by its own random offset in [-pad, pad] pixels, zero-filled."""
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b, 1), device=x.device, generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (b, 1), device=x.device, generator=generator)
    rows = (dy + torch.arange(h, device=x.device)).view(b, 1, h, 1)
    cols = (dx + torch.arange(w, device=x.device)).view(b, 1, 1, w)
    batch = torch.arange(b, device=x.device).view(b, 1, 1, 1)
    chans = torch.arange(c, device=x.device).view(1, c, 1, 1)
    return padded[batch, chans, rows, cols]


def random_flip(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """Mirror each image left-right with probability 1/2."""
    flip = torch.rand(x.shape[0], device=x.device, generator=generator) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


def augment_batch(x: Tensor, kind: str, generator: torch.Generator | None) -> Tensor:
    """Batched augmentation on uint8 images: small shifts (digits) or crop + flip (CIFAR)."""
    if kind == "shift":  # +-2 px, the usual MNIST augmentation
        return random_shift(x, 2, generator)
    if kind == "crop_flip":  # 4 px padded random crop + horizontal flip (CIFAR-10 standard)
        return random_flip(random_shift(x, 4, generator), generator)
    return x


def batches(split: Split, batch_size: int, *, mean: Tensor, std: Tensor, shuffle: bool = False,
            augment: str = "none", generator: torch.Generator | None = None
            ) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield normalised (images, labels) batches taken by index from tensors on the device."""
    n = len(split)
    order = torch.randperm(n, device=split.x.device, generator=generator) if shuffle else None
    for batch in batch_slices(n, batch_size, shuffle):
        if order is None:
            x, y = split.x[batch], split.y[batch]
        else:
            idx = order[batch]
            x, y = split.x[idx], split.y[idx]
        if augment != "none":
            x = augment_batch(x, augment, generator)
        yield normalize(x, mean, std), y


def member_batches(split: Split, batch_size: int, *, mean: Tensor, std: Tensor,
                   generators: list[torch.Generator]) -> Iterator[tuple[Tensor, Tensor]]:
    """Shuffled batches of several runs at once: images [M, B, C, H, W], labels [M, B].

    Run m's batches are the ones ``batches(shuffle=True, generator=generators[m])`` yields
    (same order, same generator draws), gathered for all runs in one indexing operation.
    """
    n = len(split)
    orders = torch.stack([torch.randperm(n, device=split.x.device, generator=g)
                          for g in generators])
    for batch in batch_slices(n, batch_size, shuffle=True):
        idx = orders[:, batch]
        yield normalize(split.x[idx], mean, std), split.y[idx]


def batch_slices(n: int, batch_size: int, shuffle: bool) -> Iterator[slice]:
    """The batches' positions in an epoch of n images (in shuffled order, when shuffling)."""
    for start in range(0, n, batch_size):
        if shuffle and n - start == 1 and start > 0:
            break  # batch norm cannot normalise a batch of one image; it is reshuffled next epoch
        yield slice(start, start + batch_size)


def num_batches(n: int, batch_size: int) -> int:
    """Batches per training epoch, matching ``batches(shuffle=True)``."""
    full, rest = divmod(n, batch_size)
    return full + (1 if rest > 1 or (rest == 1 and full == 0) else 0)


def channel_stats(x: Tensor, chunk: int = 8192) -> tuple[Tensor, Tensor]:
    """Per-channel mean and std of uint8 images, in [0, 1] units, computed in chunks."""
    total = torch.zeros(x.shape[1], dtype=torch.float64)
    total_sq = torch.zeros_like(total)
    for start in range(0, x.shape[0], chunk):
        part = x[start:start + chunk].to(torch.float64).div_(255.0)
        total += part.sum(dim=(0, 2, 3))
        total_sq += part.square().sum(dim=(0, 2, 3))
    count = x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    std = (total_sq / count - mean.square()).clamp_min(1e-12).sqrt()
    return mean.float(), std.float()


def load(cfg: DatasetConfig, device: torch.device | str = "cpu", augment: bool | None = None
         ) -> Data:
    """Read, split (seeded, stratified) and move a dataset to the device.

    ``augment`` (default: ``cfg.augment``) turns on the training batches' augmentation.
    """
    train_x, train_y, test_x, test_y = datasets.read_arrays(cfg)
    kept, val = datasets.split_indices(cfg, train_y)
    train = Split(torch.from_numpy(train_x[kept]), torch.from_numpy(train_y[kept]))
    mean, std = channel_stats(train.x)
    kind = "none"
    if cfg.augment if augment is None else augment:
        kind = "crop_flip" if train.x.shape[1] == 3 else "shift"
    data = Data(name=cfg.name, train=train,
                val=Split(torch.from_numpy(train_x[val]), torch.from_numpy(train_y[val])),
                test=Split(torch.from_numpy(test_x), torch.from_numpy(test_y)),
                mean=mean, std=std, augment=kind,
                num_classes=max(int(train_y.max()), int(test_y.max()) if test_y.size else 0) + 1)
    return data.to(torch.device(device))


def fixed_subset(split: Split, size: int | None, seed: int) -> Split:
    """A seeded random subset of a split (the whole split when size is null or too large)."""
    if size is None or size >= len(split):
        return split
    g = torch.Generator().manual_seed(seed)
    return split.subset(torch.randperm(len(split), generator=g)[:size].sort().values)

