#!/usr/bin/env python3
"""Measure regbench on this machine's GPU in at most 8 minutes (run by scripts/gpu_check.sh).

Usage: python scripts/gpu_check.py [--cpu] [OUT]

Parts, each under a time limit of its own so that a slow part cannot eat the others:
the device, driver and torch versions; one MNIST `regbench run` of 10 epochs on the bundled
digits (wall time and images/s); `regbench bench` on both networks with populations of 1,
8, 24 and 80 (images/s, the population against the sequential loop, the bf16 share of the
data-sheet peak); the 8 x 3 dropout grid (experiment=dropout_grid at 8 rates x 3 seeds)
sequential against population. Every figure goes to OUT/gpu_check.json and, as the docs'
figure block, OUT/bench_gpu_check.txt (with its machine file); on a GPU also to
docs/figures/, spliced into docs/benchmarks/speed.md. A part that fails or runs out of
time is recorded as such and the next one starts.

--cpu runs the same sequence at tiny sizes on the CPU (under 2 minutes on 2 cores), so the
script is known to work before it meets a GPU; its figures stay in OUT.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RATES = "0.0,0.1,0.2,0.3,0.4,0.5,0.6,0.7"


@dataclass(frozen=True)
class Sizes:
    """What each part measures: the full check on a GPU, or the tiny one on a CPU."""

    run: list[str]
    bench: list[str]
    grid: list[str]
    limits: dict[str, int]  # seconds per part; the GPU's sum stays under 8 minutes


GPU = Sizes(
    run=["dataset=mnist5k", "trainer.epochs=10"],
    bench=["--model", "both", "--members", "1,8,24,80", "--reps", "3"],
    grid=["experiment=dropout_grid", f"reg.dropout.fc={RATES}", "seed=0,1,2"],
    limits={"info": 20, "run": 70, "bench": 180, "grid_sequential": 120, "grid_population": 70},
)
CPU = Sizes(
    run=["dataset=mnist5k", "dataset.train_size=300", "trainer.epochs=1"],
    bench=["--model", "both", "--images", "256", "--members", "1,2", "--reps", "1"],
    grid=["experiment=dropout_grid", "reg.dropout.fc=0.0,0.5", "seed=0",
          "dataset.train_size=200", "trainer.epochs=1"],
    limits={"info": 20, "run": 40, "bench": 90, "grid_sequential": 40, "grid_population": 40},
)


@dataclass
class Part:
    """One measured part: its command, how it ended, its figures."""

    name: str
    command: list[str]
    status: str = "not run"  # ok, failed (exit N), timed out after N s
    wall_s: float | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    tail: str = ""


def regbench() -> list[str]:
    """The regbench command: $REGBENCH, else this Python's module."""
    return os.environ["REGBENCH"].split() if os.environ.get("REGBENCH") else [
        sys.executable, "-m", "regbench"]


def timed(part: Part, limit: int, cwd: Path) -> subprocess.CompletedProcess[str] | None:
    """Run the part's command under its limit; record status and wall time."""
    t0 = time.perf_counter()
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
    try:
        proc = subprocess.run(part.command, cwd=cwd, capture_output=True, text=True,
                              timeout=limit, env=env)
    except subprocess.TimeoutExpired as e:
        part.status, part.wall_s = f"timed out after {limit} s", time.perf_counter() - t0
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        part.tail = out[-2000:]
        return None
    part.wall_s = time.perf_counter() - t0
    part.status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
    part.tail = (proc.stdout + proc.stderr)[-2000:]
    return proc


def device_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                            "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
                            "machine": platform.machine(), "cpus": os.cpu_count()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
        info["bf16_supported"] = torch.cuda.is_bf16_supported()
    smi = shutil.which("nvidia-smi")
    if smi:
        q = subprocess.run([smi, "--query-gpu=name,driver_version,memory.total",
                            "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
        info["nvidia_smi"] = q.stdout.strip()
    return info


def run_part(sizes: Sizes, work: Path) -> Part:
    part = Part("run", [*regbench(), "run", *sizes.run, "trainer.progress=false",
                        f"output.root={work / 'run'}", "experiment=gpu_check"])
    if timed(part, sizes.limits["run"], work) and part.status == "ok":
        (summary,) = (work / "run").rglob("summary.json")
        s = json.loads(summary.read_text())
        part.figures = {"status": s["status"], "epochs": s["epochs_run"],
                        "wall_s": s["wall_time_s"], "train_images_per_s": s["train_images_per_s"],
                        "val_acc": (s.get("best") or {}).get("val_acc"), "device": s["device"]}
    return part


def bench_part(sizes: Sizes, work: Path) -> Part:
    part = Part("bench", [*regbench(), "bench", *sizes.bench, "--json"])
    proc = timed(part, sizes.limits["bench"], work)
    if proc is not None and part.status == "ok":
        result = json.loads(proc.stdout)
        part.figures = {"device": result["machine"], "train_dtype": result["train_dtype"],
                        "models": {}}
        for key, m in result["models"].items():
            part.figures["models"][key] = {
                "train_images_per_s": m["regbench"]["train_images_per_s"],
                "reference_train_images_per_s": m["reference"]["train_images_per_s"],
                "ratio_train": m["ratio_train"],
                "flops_fraction_of_peak": m.get("flops_fraction_of_peak"),
                "flops_fraction_of_spec_peak": m.get("flops_fraction_of_spec_peak"),
                "population": {n: {"member_images_per_s": p["member_images_per_s"],
                                   "vs_sequential": p["vs_sequential"]}
                               for n, p in (m.get("population") or {}).items()},
            }
    return part


def grid_part(sizes: Sizes, work: Path, launcher: str) -> Part:
    name = f"grid_{'population' if launcher == 'population' else 'sequential'}"
    part = Part(name, [*regbench(), "sweep", *sizes.grid, f"hydra/launcher={launcher}",
                       f"output.root={work / name}"])
    if timed(part, sizes.limits[name], work) and part.status == "ok":
        summaries = [json.loads(p.read_text()) for p in (work / name).rglob("summary.json")]
        part.figures = {"jobs": len(summaries),
                        "completed": sum(s["status"] == "completed" for s in summaries),
                        "wall_s": part.wall_s}
    return part


def figure_text(info: dict[str, Any], parts: list[Part], cpu: bool) -> str:
    """The docs' figure block: the command on its first line, then one line per figure."""
    lines = [f"$ scripts/gpu_check.sh{' --cpu' if cpu else ''}",
             f"# {info.get('gpu') or 'no GPU'}; torch {info['torch']}, CUDA {info['cuda']}"]
    for p in parts:
        wall = f"{p.wall_s:.1f} s" if p.wall_s is not None else "-"
        lines.append(f"{p.name}: {p.status}, {wall}")
        f = p.figures
        if p.name == "run" and f:
            lines.append(f"  {f['epochs']} epoch{'s' * (f['epochs'] != 1)} on {f['device']}: {f['wall_s']:.1f} s wall, "
                         f"{f['train_images_per_s']:,.0f} train images/s, "
                         f"val acc {100 * (f['val_acc'] or 0):.1f}%")
        if p.name == "bench" and f:
            for key, m in f["models"].items():
                spec = m["flops_fraction_of_spec_peak"]
                share = f", {100 * spec:.1f}% of the bf16 data-sheet peak" if spec else ""
                lines.append(f"  {key}: {m['train_images_per_s']:,.0f} img/s "
                             f"({m['ratio_train']:.2f}x the reference loop){share}")
                for n, pop in m["population"].items():
                    lines.append(f"    population M={n}: {pop['member_images_per_s']:,.0f} "
                                 f"member-img/s, {pop['vs_sequential']:.2f}x sequential")
        if p.name.startswith("grid") and f:
            lines.append(f"  {f['completed']} of {f['jobs']} jobs completed")
    seq, pop = (next((p for p in parts if p.name == n), None)
                for n in ("grid_sequential", "grid_population"))
    if seq and pop and seq.status == pop.status == "ok" and seq.wall_s and pop.wall_s:
        lines.append(f"grid: population {seq.wall_s / pop.wall_s:.2f}x as fast as sequential")
    return "\n".join(lines) + "\n"


def machine_text(info: dict[str, Any]) -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else "?"
    cpu = platform.processor() or platform.machine()
    return (f"date: {time.strftime('%Y-%m-%d', time.gmtime())}\n"
            f"cpu: {cpu} ({os.cpu_count()} cores)\nsystem: {platform.system()} "
            f"{platform.machine()}\nload average at the start: {load}\n"
            f"versions: torch {info['torch']}, CUDA {info['cuda']}\n"
            f"settings: {info.get('nvidia_smi') or info.get('gpu') or 'no GPU'}\n")


def main(argv: list[str]) -> int:
    cpu = "--cpu" in argv
    args = [a for a in argv if a != "--cpu"]
    out = Path(args[0] if args else os.environ.get("OUT", "gpu_check")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    sizes = CPU if cpu else GPU
    t0 = time.perf_counter()
    info = device_info()
    if not cpu and not info["cuda_available"]:
        print("scripts/gpu_check.sh: no CUDA device here; --cpu runs the tiny check on the CPU",
              file=sys.stderr)
        return 2
    print(f"device: {info.get('nvidia_smi') or info.get('gpu') or 'CPU'}; torch {info['torch']}",
          flush=True)
    parts: list[Part] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for make in (run_part, bench_part,
                     lambda s, w: grid_part(s, w, "basic"),
                     lambda s, w: grid_part(s, w, "population")):
            part = make(sizes, work)
            parts.append(part)
            print(f"{part.name}: {part.status}"
                  + (f", {part.wall_s:.1f} s" if part.wall_s is not None else ""), flush=True)
    result = {"mode": "cpu" if cpu else "gpu", "info": info, "wall_s": time.perf_counter() - t0,
              "parts": [vars(p) for p in parts]}
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")
    figure, machine = figure_text(info, parts, cpu), machine_text(info)
    (out / "bench_gpu_check.txt").write_text(figure)
    (out / "bench_gpu_check.machine.txt").write_text(machine)
    print(figure, end="")
    if not cpu:  # the docs carry GPU figures only
        figures = REPO / "docs" / "figures"
        (figures / "bench_gpu_check.txt").write_text(figure)
        (figures / "bench_gpu_check.machine.txt").write_text(machine)
        sys.path.insert(0, str(REPO / "scripts"))
        import splice_figures

        splice_figures.add_block(REPO / "docs" / "benchmarks" / "speed.md", "## GPU",
                                 "bench_gpu_check")
        subprocess.run([sys.executable, str(REPO / "scripts" / "splice_figures.py"), str(REPO)],
                       check=False)
    print(f"(wall time: {time.perf_counter() - t0:.0f} s; figures in {out})")
    return 0 if all(p.status == "ok" for p in parts) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
