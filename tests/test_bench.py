"""`regbench bench`: the reference loop's data, option checks, and one tiny real run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from helpers import run_cli
from regbench.launch import bench
from regbench.launch import reference
from regbench.data import batching as datamod
from regbench.errors import ConfigError


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_reference_files_hold_the_same_images_as_regbench_tensors(tmp_path: Path,
                                                                  shape: tuple[int, int, int]) -> None:
    d = bench.synthetic_data(shape, 300, torch.device("cpu"))
    name = reference.write_torchvision_files(tmp_path, d.train, d.val)
    mean, std = d.mean.tolist(), d.std.tolist()
    train_ds = reference.tutorial_dataset(name, tmp_path, True, mean, std)
    val_ds = reference.tutorial_dataset(name, tmp_path, False, mean, std)
    assert len(train_ds) == 300 and len(val_ds) == 30  # type: ignore[arg-type]
    for i in (0, 7, 299):  # torchvision's PIL + ToTensor + Normalize == regbench's uint8 normalise
        x, y = train_ds[i]
        assert y == int(d.train.y[i])
        expected = datamod.normalize(d.train.x[i:i + 1], d.mean, d.std)[0]
        assert torch.allclose(x, expected, atol=1e-5)


def test_bad_options_name_the_option() -> None:
    with pytest.raises(ConfigError, match="--model 'vgg'"):
        bench.check("vgg", "synthetic", None, 1, 3)
    with pytest.raises(ConfigError, match="--dataset 'cifar10' is not allowed with --model mnist"):
        bench.check("mnist", "cifar10", None, 1, 3)
    with pytest.raises(ConfigError, match="--images 10"):
        bench.check("both", "synthetic", 10, 1, 3)
    with pytest.raises(ConfigError, match="--reps 0"):
        bench.check("both", "synthetic", None, 1, 0)
    with pytest.raises(ConfigError, match="--device 'tpu'"):
        bench.check("both", "synthetic", None, 1, 3, "tpu")
    assert bench.check("both", "cifar10", None, 1, 3) == ["cifar"]
    with pytest.raises(ConfigError, match="--members '1,0'"):
        bench.population_sizes("1,0")
    assert bench.population_sizes("1, 8,24") == (1, 8, 24)


def test_gpu_names_find_their_data_sheet_peak_and_gpus_measure_bigger_populations() -> None:
    assert bench.spec_peak("NVIDIA H100 80GB HBM3") == 989e12  # SXM
    assert bench.spec_peak("NVIDIA H100 PCIe") == 756e12
    assert bench.spec_peak("NVIDIA A100-SXM4-80GB") == 312e12
    assert bench.spec_peak("NVIDIA A10") == 125e12 and bench.spec_peak("NVIDIA L4") == 121e12
    assert bench.spec_peak("NVIDIA GeForce GTX 1080") is None
    assert bench.default_sizes(torch.device("cpu")) == (1, 8, 24)
    assert 80 in bench.default_sizes(torch.device("cuda"))


def test_bench_json_has_every_figure(tmp_path: Path) -> None:
    proc = run_cli("bench", "--json", "--images", "256", "--reps", "1", "--members", "1,2",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["device"] == "cpu" and result["matmul_peak_flops_per_s"] > 0
    assert result["peak_rss_mb"] > 0 and set(result["models"]) == {"mnist", "cifar"}
    for m in result["models"].values():
        for loop in ("regbench", "reference"):
            assert all(m[loop][k] > 0 for k in ("train_images_per_s", "train_epoch_s", "full_epoch_s"))
            assert m[loop]["full_epoch_s"] >= m[loop]["train_epoch_s"]
        for key in ("ratio_train", "ratio_full", "full_vs_reference_train", "train_flops_per_image",
                    "train_flops_per_s", "flops_fraction_of_peak"):
            assert m[key] > 0, key
        assert m["train_images"] == 256 and m["peak_device_mb"] is None
        assert m["flops_fraction_of_spec_peak"] is None  # a CPU has no bf16 data-sheet peak
        assert list(m["population"]) == ["1", "2"]
        assert all(p["member_images_per_s"] > 0 and p["vs_sequential"] > 0
                   for p in m["population"].values())
    flops = {k: m["train_flops_per_image"] for k, m in result["models"].items()}
    assert flops["cifar"] > 5 * flops["mnist"]  # ~240 vs ~25 MFLOP per training image
