"""scripts/gpu_check.sh: the GPU measurement, run at tiny sizes on the CPU so that it works
the first time it meets a GPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "gpu_check.sh"
sys.path.insert(0, str(REPO / "scripts"))

import gpu_check  # noqa: E402  (from scripts/)


def test_the_gpu_parts_fit_in_eight_minutes_each_with_its_own_limit() -> None:
    assert set(gpu_check.GPU.limits) == set(gpu_check.CPU.limits)
    assert sum(gpu_check.GPU.limits.values()) <= 8 * 60
    assert sum(gpu_check.CPU.limits.values()) <= 4 * 60  # a timed-out tiny part fails fast
    assert "seed=0,1,2" in gpu_check.GPU.grid and len(gpu_check.RATES.split(",")) == 8


def test_without_cuda_it_says_so_in_one_line(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    proc = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "out")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "scripts/gpu_check.sh: no CUDA device here; --cpu runs the tiny check on the CPU"]


@pytest.mark.slow
def test_the_cpu_sequence_measures_every_part(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(["bash", str(SCRIPT), "--cpu", str(out)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((out / "gpu_check.json").read_text())
    parts = {p["name"]: p for p in result["parts"]}
    assert list(parts) == ["run", "bench", "grid_sequential", "grid_population"]
    assert all(p["status"] == "ok" for p in parts.values()), parts
    assert parts["run"]["figures"]["status"] == "completed"
    assert parts["run"]["figures"]["train_images_per_s"] > 0
    models = parts["bench"]["figures"]["models"]
    assert set(models) == {"mnist", "cifar"}
    assert all(set(m["population"]) == {"1", "2"} for m in models.values())
    for grid in ("grid_sequential", "grid_population"):
        assert parts[grid]["figures"] == {"jobs": 2, "completed": 2,
                                          "wall_s": parts[grid]["wall_s"]}
    figure = (out / "bench_gpu_check.txt").read_text().splitlines()
    assert figure[0] == "$ scripts/gpu_check.sh --cpu"
    assert any(line.startswith("grid: population") for line in figure)
    assert not (REPO / "docs" / "figures" / "bench_gpu_check.txt").exists() or \
        "--cpu" not in (REPO / "docs" / "figures" / "bench_gpu_check.txt").read_text()
