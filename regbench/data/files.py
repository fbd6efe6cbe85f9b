"""The user's own images: a NumPy ``.npz`` file (dataset=npz) or an image folder (dataset=folder).

``npz``: ``dataset.path`` names a file holding ``x_train`` and ``y_train`` and optionally
``x_test`` and ``y_test``: uint8 images N x H x W (grey) or N x H x W x C, integer labels
0..K-1. ``folder``: ``dataset.root`` names a folder in torchvision's ImageFolder layout,
``train/<class>/<image>`` and optionally ``test/<class>/<image>``; classes are numbered in
the sorted order of their folder names, as ImageFolder numbers them.

Both come back as the built-in data sets do, uint8 [N, C, H, W] and int64 labels, and go
through the same split, normalisation, batching and augmentation. ``probe`` reads only
what validation needs (image shape, number of classes), checking the files on the way, so
a damaged or inconsistent file is refused with one line naming it before any work starts.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from regbench.config.schema import DatasetConfig
from regbench.errors import ConfigError, DataError

Shape = tuple[int, int, int]  # channels, height, width
Pair = tuple[np.ndarray, np.ndarray]  # images [N, C, H, W] uint8, labels [N] int64
# What torchvision's ImageFolder reads as images.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
GREY_MODES = ("1", "L", "I", "I;16", "F")


# ------------------------------------------------------------------------------- npz


def npz_path(cfg: DatasetConfig) -> Path:
    """The .npz file dataset.path names; ConfigError when none is named or it is not there."""
    if not cfg.path:
        raise ConfigError("dataset.path=None is not allowed with dataset=npz: give the .npz file "
                          "that holds x_train and y_train (and optionally x_test, y_test)")
    path = Path(cfg.path).expanduser().resolve()
    if not path.is_file():
        raise DataError(f"dataset.path={cfg.path!r}: no such file"
                        + ("" if not path.exists() else " (it is a folder)"))
    return path


def _members(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """name -> (shape, dtype) of each array in an .npz, read from the headers only."""
    out: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    try:
        with zipfile.ZipFile(path) as z:
            for member in z.namelist():
                if not member.endswith(".npy"):
                    continue
                with z.open(member) as f:
                    version = np.lib.format.read_magic(f)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(f)
                out[member.removesuffix(".npy")] = (tuple(shape), np.dtype(dtype))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable NumPy .npz file ({' '.join(str(e).split())}); "
                        "write it with numpy.savez(path, x_train=..., y_train=...)") from e
    return out


def _check_npz(path: Path, arrays: dict[str, tuple[tuple[int, ...], np.dtype]]) -> None:
    """DataError naming the first array that is missing, of the wrong type or length."""
    for key in ("x_train", "y_train"):
        if key not in arrays:
            raise DataError(f"{path}: no {key} array (it holds {', '.join(arrays) or 'none'}); "
                            "dataset=npz needs x_train and y_train, optionally x_test and y_test")
    if ("x_test" in arrays) != ("y_test" in arrays):
        have, lacks = ("x_test", "y_test") if "x_test" in arrays else ("y_test", "x_test")
        raise DataError(f"{path}: {have} without {lacks}; give both or neither")
    for split in ("train", "test"):
        if f"x_{split}" not in arrays:
            continue
        (xs, xt), (ys, yt) = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if xt != np.uint8:
            raise DataError(f"{path}: x_{split} is {xt}; expected uint8 images (0-255)")
        if len(xs) not in (3, 4):
            raise DataError(f"{path}: x_{split} has shape {xs}; expected N x H x W or N x H x W x C")
        if not np.issubdtype(yt, np.integer) or len(ys) != 1:
            raise DataError(f"{path}: y_{split} is {yt} of shape {ys}; expected one integer label "
                            "per image")
        if xs[0] != ys[0]:
            raise DataError(f"{path}: x_{split} holds {xs[0]} images but y_{split} {ys[0]} labels; "
                            "they must be of the same length")
        if xs[0] == 0:
            raise DataError(f"{path}: x_{split} holds no images")
    if "x_test" in arrays and arrays["x_test"][0][1:] != arrays["x_train"][0][1:]:
        raise DataError(f"{path}: x_test's images are {arrays['x_test'][0][1:]}, x_train's "
                        f"{arrays['x_train'][0][1:]}; they must be of one size")


def _labels(path: Path, key: str, y: np.ndarray) -> np.ndarray:
    if y.size and y.min() < 0:
        raise DataError(f"{path}: {key} holds the label {int(y.min())}; labels are 0..K-1")
    return y.astype(np.int64)


def _classes(path: Path, train_y: np.ndarray, test_y: np.ndarray | None) -> int:
    """Number of classes: the largest label + 1; DataError for fewer than two."""
    top = int(max(train_y.max(), test_y.max() if test_y is not None and test_y.size else 0))
    if top < 1:
        raise DataError(f"{path}: y_train holds one class; a classifier needs at least two")
    return top + 1


def _shape(xs: tuple[int, ...]) -> Shape:
    return (1, xs[1], xs[2]) if len(xs) == 3 else (xs[3], xs[1], xs[2])


def probe_npz(cfg: DatasetConfig) -> tuple[Shape, int]:
    """(image shape, number of classes) of an .npz, its headers and labels checked."""
    path = npz_path(cfg)
    arrays = _members(path)
    _check_npz(path, arrays)
    with np.load(path) as z:
        train_y = _labels(path, "y_train", z["y_train"])
        test_y = _labels(path, "y_test", z["y_test"]) if "y_test" in z else None
    return _shape(arrays["x_train"][0]), _classes(path, train_y, test_y)


def read_npz(cfg: DatasetConfig) -> tuple[Pair, Pair | None]:
    """(train, test or None) of an .npz file, as uint8 [N, C, H, W] and int64 arrays."""
    path = npz_path(cfg)
    _check_npz(path, _members(path))

    def nchw(x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2))

    try:
        with np.load(path) as z:
            train = nchw(z["x_train"]), _labels(path, "y_train", z["y_train"])
            test = ((nchw(z["x_test"]), _labels(path, "y_test", z["y_test"]))
                    if "x_test" in z else None)
    except (ValueError, OSError, zipfile.BadZipFile) as e:
        raise DataError(f"{path}: unreadable ({' '.join(str(e).split())})") from e
    return train, test


# ---------------------------------------------------------------------------- folder


def folder_root(cfg: DatasetConfig) -> Path:
    """The image folder dataset.root names; DataError when it has no train/ folder."""
    root = Path(cfg.root).expanduser().resolve()
    if not (root / "train").is_dir():
        raise DataError(f"dataset.root={cfg.root!r}: no train/ folder in {root}; dataset=folder "
                        "reads ROOT/train/<class>/<image> (and optionally ROOT/test/<class>/<image>)")
    return root


def _listing(split: Path) -> dict[str, list[Path]]:
    """class name -> its image files, in sorted order; DataError for a class without images."""
    classes = sorted(p for p in split.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{split}: no class folders; put each class's images in "
                        f"{split}/<class>/")
    out: dict[str, list[Path]] = {}
    for c in classes:
        images = sorted(p for p in c.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise DataError(f"{c}: no images in this class folder (looked for "
                            f"{', '.join(IMAGE_SUFFIXES)})")
        out[c.name] = images
    return out


def _splits(root: Path) -> dict[str, dict[str, list[Path]]]:
    """'train' (and 'test' when there) -> class -> images; DataError for a test class that
    the training images lack."""
    out = {"train": _listing(root / "train")}
    if (root / "test").is_dir():
        out["test"] = _listing(root / "test")
        extra = sorted(set(out["test"]) - set(out["train"]))
        if extra:
            raise DataError(f"{root / 'test' / extra[0]}: a class that train/ does not have "
                            f"(train/ has {', '.join(out['train'])})")
    if len(out["train"]) < 2:
        raise DataError(f"{root / 'train'}: one class folder; a classifier needs at least two")
    return out


def _header(path: Path) -> tuple[tuple[int, int], str]:
    """(width, height) and PIL mode of an image, reading its header only."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size, im.mode
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"{path}: not a readable image ({type(e).__name__})") from e


def _layout(root: Path) -> tuple[dict[str, dict[str, list[Path]]], Shape]:
    """The folder's images and their shape; DataError naming an image of another size."""
    splits = _splits(root)
    first: tuple[Path, tuple[int, int]] | None = None
    grey = True
    for classes in splits.values():
        for images in classes.values():
            for path in images:
                size, mode = _header(path)
                grey = grey and mode in GREY_MODES
                if first is None:
                    first = (path, size)
                elif size != first[1]:
                    raise DataError(f"{path}: {size[0]}x{size[1]} pixels, but {first[0]} is "
                                    f"{first[1][0]}x{first[1][1]}; the images must be of one size")
    assert first is not None
    (w, h) = first[1]
    return splits, (1 if grey else 3, h, w)


def probe_folder(cfg: DatasetConfig) -> tuple[Shape, int]:
    """(image shape, number of classes) of an image folder, every image's header checked."""
    splits, shape = _layout(folder_root(cfg))
    return shape, len(splits["train"])


def read_folder(cfg: DatasetConfig) -> tuple[Pair, Pair | None]:
    """(train, test or None) of an image folder, as uint8 [N, C, H, W] and int64 arrays."""
    from PIL import Image

    splits, (channels, _, _) = _layout(folder_root(cfg))
    index = {name: i for i, name in enumerate(splits["train"])}
    mode = "L" if channels == 1 else "RGB"

    def read(classes: dict[str, list[Path]]) -> Pair:
        xs, ys = [], []
        for name, images in classes.items():
            for path in images:
                try:
                    with Image.open(path) as im:
                        a = np.asarray(im.convert(mode), dtype=np.uint8)
                except OSError as e:
                    raise DataError(f"{path}: not a readable image ({type(e).__name__})") from e
                xs.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
                ys.append(index[name])
        return np.ascontiguousarray(np.stack(xs)), np.asarray(ys, dtype=np.int64)

    return read(splits["train"]), (read(splits["test"]) if "test" in splits else None)
