"""Data sets from the user's files: dataset=npz (a NumPy .npz) and dataset=folder (ImageFolder).

Every file is written here, small, in tmp_path. Damaged or inconsistent files end in one
line naming the file and what is wrong, exit code 2, before any run folder is made.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from helpers import cli, run_cli
from regbench.config.schema import DatasetConfig


def learnable(n: int, classes: int, size: int, channels: int | None, seed: int = 0
              ) -> tuple[np.ndarray, np.ndarray]:
    """n uint8 images (N x H x W, or N x H x W x C) of `classes` blocky templates plus noise."""
    rng = np.random.default_rng(seed)
    c = channels or 1
    templates = rng.random((classes, size // 4, size // 4, c)).repeat(4, 1).repeat(4, 2)
    y = np.arange(n) % classes
    x = np.clip((templates[y] + rng.normal(0, 0.3, (n, size, size, c))) * 200, 0, 255)
    x = x.astype(np.uint8)
    return (x if channels else x[..., 0]), y.astype(np.int64)


def write_folder(root: Path, split: str, images: dict[str, list[np.ndarray]]) -> None:
    from PIL import Image

    for name, arrays in images.items():
        (root / split / name).mkdir(parents=True, exist_ok=True)
        for i, a in enumerate(arrays):
            Image.fromarray(a).save(root / split / name / f"{i}.png")


def one_error_line(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli("config", *args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_an_npz_of_grey_images_goes_through_the_same_split(tmp_path: Path) -> None:
    from regbench.data import batching, datasets

    x, y = learnable(300, 3, 16, None)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=y)
    cfg = DatasetConfig(name="npz", path=str(tmp_path / "d.npz"), train_size=100)
    assert datasets.describe(cfg) == ((1, 16, 16), 3)
    data = batching.load(cfg)
    assert (data.in_channels, data.image_size, data.num_classes) == (1, (16, 16), 3)
    assert (len(data.train), len(data.test)) == (100, 60)  # 20% held out for testing
    assert sorted(np.bincount(data.train.y.numpy()).tolist()) == [33, 33, 34]  # stratified
    # the images are the file's, untouched: each training image is one of the file's
    first = data.train.x[0, 0].numpy()
    assert any(np.array_equal(first, img) for img in x)


def test_an_npz_of_colour_images_with_its_own_test_split(tmp_path: Path) -> None:
    from regbench.data import batching

    x, y = learnable(120, 4, 8, 3)
    xt, yt = learnable(40, 4, 8, 3, seed=1)
    np.savez(tmp_path / "c.npz", x_train=x, y_train=y, x_test=xt, y_test=yt)
    data = batching.load(DatasetConfig(name="npz", path=str(tmp_path / "c.npz"), augment=True))
    assert (data.in_channels, data.num_classes, len(data.test), data.augment) == (3, 4, 40, "crop_flip")
    assert np.array_equal(data.test.x.numpy(), xt.transpose(0, 3, 1, 2))


@pytest.mark.parametrize("arrays,expected", [
    (lambda x, y: {"x_train": x, "y_train": y[:-1]}, "x_train holds 60 images but y_train 59 labels"),
    (lambda x, y: {"x_train": x.astype(np.float32), "y_train": y}, "x_train is float32; expected uint8"),
    (lambda x, y: {"x_train": x}, "no y_train array (it holds x_train)"),
    (lambda x, y: {"x_train": x, "y_train": y, "x_test": x}, "x_test without y_test"),
    (lambda x, y: {"x_train": x, "y_train": y - 1}, "y_train holds the label -1"),
    (lambda x, y: {"x_train": x, "y_train": y, "x_test": x[:, :8], "y_test": y},
     "x_test's images are (8, 16), x_train's (16, 16)"),
])
def test_a_bad_npz_is_one_line_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         arrays: object, expected: str) -> None:
    x, y = learnable(60, 3, 16, None)
    np.savez(tmp_path / "bad.npz", **arrays(x, y))  # type: ignore[operator]
    err = one_error_line(capsys, "dataset=npz", f"dataset.path={tmp_path / 'bad.npz'}")
    assert str(tmp_path / "bad.npz") in err and expected in err


def test_a_missing_or_damaged_npz_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = one_error_line(capsys, "dataset=npz")
    assert "dataset.path=None is not allowed with dataset=npz" in err
    err = one_error_line(capsys, "dataset=npz", f"dataset.path={tmp_path / 'none.npz'}")
    assert "none.npz'" in err and "no such file" in err
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    err = one_error_line(capsys, "dataset=npz", f"dataset.path={tmp_path / 'junk.npz'}")
    assert "junk.npz: not a readable NumPy .npz file" in err


def test_a_model_refuses_images_too_small_for_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x, y = learnable(60, 3, 4, None)
    np.savez(tmp_path / "tiny.npz", x_train=x[:, :2, :2].copy(), y_train=y)
    err = one_error_line(capsys, "dataset=npz", f"dataset.path={tmp_path / 'tiny.npz'}")
    assert "model.channels=[32, 64] is not allowed: at most 1 conv blocks for 2x2 images" in err


def test_an_image_folder_reads_as_imagefolder_numbers_it(tmp_path: Path) -> None:
    from regbench.data import batching, datasets

    x, y = learnable(90, 3, 8, 3)
    names = ["cat", "ant", "bee"]  # class indices follow the sorted names: ant 0, bee 1, cat 2
    write_folder(tmp_path / "imgs", "train", {names[k]: [x[i] for i in np.flatnonzero(y == k)]
                                              for k in range(3)})
    write_folder(tmp_path / "imgs", "test", {"ant": [x[1]], "cat": [x[0]]})
    cfg = DatasetConfig(name="folder", root=str(tmp_path / "imgs"))
    assert datasets.describe(cfg) == ((3, 8, 8), 3)
    data = batching.load(cfg)
    assert data.test.y.tolist() == [0, 2]
    assert np.array_equal(data.test.x[1].numpy(), x[0].transpose(2, 0, 1))  # cat, as written


def test_a_grey_folder_has_one_channel(tmp_path: Path) -> None:
    from regbench.data import datasets

    x, y = learnable(20, 2, 8, None)
    write_folder(tmp_path / "g", "train", {"a": list(x[y == 0]), "b": list(x[y == 1])})
    assert datasets.describe(DatasetConfig(name="folder", root=str(tmp_path / "g"))) == ((1, 8, 8), 2)


def test_a_bad_folder_is_one_line_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x, _ = learnable(10, 2, 8, None)
    root = tmp_path / "f"
    write_folder(root, "train", {"a": list(x[:5]), "b": list(x[5:])})
    (root / "train" / "empty").mkdir()
    err = one_error_line(capsys, "dataset=folder", f"dataset.root={root}")
    assert f"{root / 'train' / 'empty'}: no images in this class folder" in err
    (root / "train" / "empty").rmdir()
    from PIL import Image

    Image.fromarray(np.zeros((6, 8), dtype=np.uint8)).save(root / "train" / "b" / "odd.png")
    err = one_error_line(capsys, "dataset=folder", f"dataset.root={root}")
    assert "odd.png: 8x6 pixels" in err and "the images must be of one size" in err
    err = one_error_line(capsys, "dataset=folder", f"dataset.root={tmp_path / 'nothing'}")
    assert "no train/ folder" in err


@pytest.mark.slow
def test_a_cnn_learns_an_npz_well_above_chance(tmp_path: Path) -> None:
    x, y = learnable(600, 4, 16, None)
    np.savez(tmp_path / "easy.npz", x_train=x, y_train=y)
    done = run_cli("run", "dataset=npz", f"dataset.path={tmp_path / 'easy.npz'}", "trainer.epochs=3",
                   "trainer.progress=false", f"output.root={tmp_path / 'results'}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    [summary] = (tmp_path / "results" / "default").glob("*/summary.json")
    result = json.loads(summary.read_text())
    assert result["test_acc"] > 0.8  # chance: 0.25


def test_mixup_is_refused_for_another_number_of_classes(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    x, y = learnable(60, 3, 16, None)
    np.savez(tmp_path / "three.npz", x_train=x, y_train=y)
    err = one_error_line(capsys, "dataset=npz", f"dataset.path={tmp_path / 'three.npz'}", "reg.mixup=0.2")
    assert "reg.mixup=0.2 is not allowed: 0 with dataset=npz" in err and "has 3" in err
