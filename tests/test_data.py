"""Datasets: the real torchvision loaders on files in their formats, splits, batching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from datafiles import write_cifar10, write_mnist
from regbench.data import batching as data
from regbench.data import datasets
from regbench.config.schema import DatasetConfig
from regbench.errors import ConfigError, DataError


def test_mnist_idx_files_are_read_by_torchvision(tmp_path: Path) -> None:
    x, y = write_mnist(tmp_path, n_train=200, n_test=50)
    d = data.load(DatasetConfig(name="mnist", root=str(tmp_path), download=False, val_fraction=0.1))
    assert d.train.x.dtype == torch.uint8 and d.train.x.shape[1:] == (1, 28, 28)
    assert len(d.train) + len(d.val) == 200 and len(d.val) == 20 and len(d.test) == 50
    # the images are the bytes the test wrote, in [N, C, H, W]
    train_and_val = torch.cat([d.train.x, d.val.x]).flatten(1)
    assert {bytes(r.numpy()) for r in train_and_val} == {bytes(r) for r in x.reshape(200, -1)}


def test_with_download_false_the_mnist_archives_in_raw_are_unpacked(tmp_path: Path) -> None:
    import gzip

    x, _ = write_mnist(tmp_path, n_train=200, n_test=50)
    raw = tmp_path / "MNIST" / "raw"
    for idx in list(raw.iterdir()):  # only the original downloads are in place, as gzip files
        (raw / f"{idx.name}.gz").write_bytes(gzip.compress(idx.read_bytes()))
        idx.unlink()
    d = data.load(DatasetConfig(name="mnist", root=str(tmp_path), download=False, val_fraction=0.1))
    assert len(d.train) + len(d.val) == 200 and len(d.test) == 50
    assert {bytes(r.numpy()) for r in torch.cat([d.train.x, d.val.x]).flatten(1)} == \
        {bytes(r) for r in x.reshape(200, -1)}
    (raw / "t10k-images-idx3-ubyte").unlink()  # a torn archive: one line naming it
    (raw / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08")
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz"):
        data.load(DatasetConfig(name="mnist", root=str(tmp_path), download=False))


def test_fashion_mnist_uses_its_own_folder(tmp_path: Path) -> None:
    write_mnist(tmp_path, folder="FashionMNIST")
    d = data.load(DatasetConfig(name="fashion_mnist", root=str(tmp_path), download=False))
    assert len(d.test) == 50


def test_cifar10_pickled_batches_are_read_by_torchvision(tmp_path: Path) -> None:
    x1, y1 = write_cifar10(tmp_path, per_batch=40, n_test=30)
    d = data.load(DatasetConfig(name="cifar10", root=str(tmp_path), download=False, val_fraction=0.2))
    assert d.train.x.shape[1:] == (3, 32, 32)
    assert len(d.train) + len(d.val) == 200 and len(d.val) == 40 and len(d.test) == 30
    assert d.augment == "none" and d.in_channels == 3
    # HWC rows of the pickle become CHW images: the first image's red plane is its first 1024 bytes
    all_x = torch.cat([d.train.x, d.val.x])
    assert any(torch.equal(img[0].flatten(), torch.from_numpy(x1[0, :1024])) for img in all_x)


def test_missing_files_offline_name_the_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=str(tmp_path / "MNIST" / "raw")):
        data.load(DatasetConfig(name="mnist", root=str(tmp_path), download=False))


def test_corrupted_file_is_reported(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1000])  # truncated
    with pytest.raises(DataError, match="corrupted"):
        data.load(DatasetConfig(name="mnist", root=str(tmp_path), download=False))


@pytest.mark.slow
def test_mnist5k_has_5000_digits_in_seeded_stratified_disjoint_splits() -> None:
    cfg = DatasetConfig(name="mnist5k", val_fraction=0.1)
    d = data.load(cfg)
    assert len(d.train) + len(d.val) + len(d.test) == 5000
    for split in (d.train, d.val, d.test):
        counts = torch.bincount(split.y, minlength=10)
        assert counts.min() >= 0.95 * counts.float().mean()  # stratified: 500 per class overall
    assert torch.unique(torch.cat([d.train.y, d.val.y, d.test.y])).tolist() == list(range(10))
    rows = lambda s: {bytes(r.numpy()) for r in s.x.flatten(1)}  # noqa: E731
    tr, va, te = rows(d.train), rows(d.val), rows(d.test)
    assert not (tr & va) and not (tr & te) and not (va & te)
    again = data.load(cfg)
    assert torch.equal(again.val.x, d.val.x)  # seeded
    other = data.load(DatasetConfig(name="mnist5k", split_seed=1))
    assert not torch.equal(other.val.x, d.val.x)


def test_train_size_subsamples_stratified_and_rejects_too_large() -> None:
    d = data.load(DatasetConfig(name="synthetic", train_size=100))
    assert len(d.train) == 100
    assert torch.bincount(d.train.y, minlength=10).tolist() == [10] * 10
    with pytest.raises(ConfigError, match="dataset.train_size=100000"):
        data.load(DatasetConfig(name="synthetic", train_size=100_000))


def test_uint8_normalisation_matches_torchvision_transforms() -> None:
    from PIL import Image
    from torchvision import transforms

    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
    mean, std = torch.tensor([0.1307]), torch.tensor([0.3081])
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    expected = torch.stack([tf(Image.fromarray(im, mode="L")) for im in imgs])
    got = data.normalize(torch.from_numpy(imgs[:, None]), mean, std)
    assert torch.allclose(got, expected, atol=1e-5)


def test_channel_stats_match_numpy() -> None:
    x = torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8)
    mean, std = data.channel_stats(x, chunk=7)
    ref = x.numpy().astype(np.float64) / 255
    assert np.allclose(mean.numpy(), ref.mean(axis=(0, 2, 3)), atol=1e-6)
    assert np.allclose(std.numpy(), ref.std(axis=(0, 2, 3)), atol=1e-6)


def test_augmentation_keeps_shapes_labels_and_values() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, 256, (64, 3, 32, 32), dtype=torch.uint8)
    out = data.augment_batch(x, "crop_flip", g)
    assert out.shape == x.shape and out.dtype == torch.uint8
    assert not torch.equal(out, x)
    assert set(out.unique().tolist()) <= set(x.unique().tolist()) | {0}  # pixels moved, pad is 0
    # a shift moves content: some image equals its original shifted by one pixel somewhere
    single = torch.arange(1, 17, dtype=torch.uint8).view(1, 1, 4, 4).repeat(200, 1, 1, 1)
    shifted = data.random_shift(single, 1, g)
    # per image over flatten(1): torch < 2.2 has no all()/any() over a tuple of dims
    assert (shifted == single).flatten(1).all(dim=1).any()  # offset 0 happens
    assert (shifted == 0).flatten(1).any(dim=1).any()  # and so do real shifts


def test_batches_cover_the_split_once_and_skip_a_lone_last_image() -> None:
    split = data.Split(torch.zeros(21, 1, 2, 2, dtype=torch.uint8), torch.arange(21))
    kw = {"mean": torch.zeros(1), "std": torch.ones(1)}
    seen = torch.cat([y for _, y in data.batches(split, 10, **kw)])
    assert seen.tolist() == list(range(21))  # evaluation sees every image, in order
    train = list(data.batches(split, 10, shuffle=True, generator=torch.Generator(), **kw))
    assert [len(y) for _, y in train] == [10, 10] == [10] * data.num_batches(21, 10)


def test_synthetic_is_learnable_shape() -> None:
    x, y = datasets.make_synthetic()
    assert x.shape == (1000, 1, 28, 28) and x.dtype == np.uint8
    assert np.bincount(y).tolist() == [100] * 10


@pytest.mark.slow
def test_synthetic_mnist_has_mnists_splits() -> None:
    train_x, train_y, test_x, test_y = datasets.read_arrays(DatasetConfig(name="synthetic_mnist"))
    assert train_x.shape == (60_000, 1, 28, 28) and test_x.shape == (10_000, 1, 28, 28)
    assert np.bincount(test_y).tolist() == [1_000] * 10  # stratified, as MNIST's test set nearly is
    d = data.load(DatasetConfig(name="synthetic_mnist", train_size=2_000))
    assert (len(d.train), len(d.val), len(d.test)) == (2_000, 6_000, 10_000)
