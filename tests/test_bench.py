"""`regbench bench`: the reference loop's data, option checks, and one tiny real run."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import torch

from helpers import run_cli
from regbench.launch import bench
from regbench.launch import reference
from regbench.data import batching as datamod
from regbench.errors import ConfigError


@pytest.mark.slow
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


def test_the_cpu_default_is_a_quick_look_that_says_how_to_ask_for_more() -> None:
    quick = bench.plan()  # a CPU, no option given
    assert (quick.models, quick.images, quick.members) == (("mnist",), {"mnist": 1_000}, (1, 4))
    assert quick.note is not None and "`regbench bench --full`" in quick.note
    assert "populations up to 24" in quick.note and "both networks" in quick.note
    full = bench.plan(full=True)
    assert full.models == ("mnist", "cifar") and full.images == {"mnist": 6_000, "cifar": 1_500}
    assert full.members == (1, 8, 24) and full.note is None
    # the quick look trains a small fraction of what the full measurement trains (member-images
    # per repetition: the two sequential loops plus every population)
    def images(p: bench.Plan) -> int:
        return sum((2 + sum(p.members)) * n for n in p.images.values() if n is not None)
    assert images(quick) == 7_000 and images(full) == 35 * 7_500
    gpu = bench.plan(device_type="cuda")
    assert gpu.images == {"mnist": 60_000, "cifar": 50_000} and 80 in gpu.members
    assert gpu.note is None


def test_options_given_are_kept_and_the_others_stay_quick() -> None:
    cifar = bench.plan(model="cifar")
    assert cifar.images == {"cifar": 256} and cifar.members == (1, 4) and cifar.note
    assert bench.plan(dataset="cifar10").models == ("cifar",)  # the dataset picks the network
    real = bench.plan(dataset="mnist5k", full=True)
    assert real.images == {"mnist": None}  # --full on a real dataset: its training set in full
    chosen = bench.plan(model="both", images=512, members=(1, 8, 24))
    assert chosen.images == {"mnist": 512, "cifar": 512} and chosen.members == (1, 8, 24)
    assert chosen.note is None  # nothing was left to a quick default


def test_gpu_names_find_their_data_sheet_peak_and_gpus_measure_bigger_populations() -> None:
    assert bench.spec_peak("NVIDIA H100 80GB HBM3") == 989e12  # SXM
    assert bench.spec_peak("NVIDIA H100 PCIe") == 756e12
    assert bench.spec_peak("NVIDIA A100-SXM4-80GB") == 312e12
    assert bench.spec_peak("NVIDIA A10") == 125e12 and bench.spec_peak("NVIDIA L4") == 121e12
    assert bench.spec_peak("NVIDIA GeForce GTX 1080") is None
    assert bench.default_sizes(torch.device("cpu")) == (1, 8, 24)
    assert 80 in bench.default_sizes(torch.device("cuda"))


@pytest.mark.slow
def test_bench_json_figures_are_those_of_its_own_timings(tmp_path: Path) -> None:
    """Every rate and ratio in the JSON is recomputed from the per-repetition seconds it
    reports beside them (a median over repetitions, each pair run back to back)."""
    proc = run_cli("bench", "--json", "--model", "both", "--images", "256", "--reps", "1",
                   "--members", "1,2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["device"] == "cpu" and result["matmul_peak_flops_per_s"] > 0
    assert result["peak_rss_mb"] > 0 and set(result["models"]) == {"mnist", "cifar"}
    for m in result["models"].values():
        reps = m["repetitions"]
        assert all(len(reps[loop][k]) == 1 for loop in reps for k in ("train_s", "full_s"))
        for loop in ("regbench", "reference"):
            train, full = (statistics.median(reps[loop][k]) for k in ("train_s", "full_s"))
            assert m[loop]["train_epoch_s"] == pytest.approx(train)
            assert m[loop]["full_epoch_s"] == pytest.approx(full)
            assert m[loop]["train_images_per_s"] == pytest.approx(256 / train)
            assert m[loop]["full_images_per_s"] == pytest.approx(256 / full)

        def ratio(num: list[float], den: list[float]) -> float:
            return statistics.median(a / b for a, b in zip(num, den, strict=True))

        ours, ref = reps["regbench"], reps["reference"]
        assert m["ratio_train"] == pytest.approx(ratio(ref["train_s"], ours["train_s"]))
        assert m["ratio_full"] == pytest.approx(ratio(ref["full_s"], ours["full_s"]))
        assert m["full_vs_reference_train"] == pytest.approx(ratio(ours["full_s"], ref["train_s"]))
        rate = m["regbench"]["train_images_per_s"]
        assert m["train_flops_per_s"] == pytest.approx(m["train_flops_per_image"] * rate)
        assert m["ten_epoch_s"] == pytest.approx(10 * m["regbench"]["full_epoch_s"])
        assert m["flops_fraction_of_peak"] == pytest.approx(
            m["train_flops_per_s"] / result["matmul_peak_flops_per_s"])
        assert m["train_images"] == 256 and m["peak_device_mb"] is None
        assert m["flops_fraction_of_spec_peak"] is None  # a CPU has no bf16 data-sheet peak
        assert list(m["population"]) == ["1", "2"]
        for p in m["population"].values():
            assert p["vs_sequential"] == pytest.approx(p["member_images_per_s"] / rate)
    flops = {k: m["train_flops_per_image"] for k, m in result["models"].items()}
    assert flops["cifar"] > 5 * flops["mnist"]  # ~240 vs ~25 MFLOP per training image
