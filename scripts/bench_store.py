"""How long `regbench summarize` takes over many run folders (reading is the store's job).

Trains one tiny run, copies its folder N times (seeds and one swept key varied in each
copy's config.yaml and summary.json), then times `regbench summarize` over the lot in a
fresh process. Prints the date, the machine and one line per N.

    python scripts/bench_store.py 1000 10000
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_template(root: Path) -> Path:
    subprocess.run(["regbench", "run", "dataset=synthetic", "trainer.epochs=2",
                    "trainer.progress=false", f"output.root={root}", "experiment=template"],
                   check=True, capture_output=True)
    (run,) = (root / "template").iterdir()
    return run


def fill(template: Path, folder: Path, n: int) -> None:
    """n copies of the template run: 5 dropout rates, each with n / 5 seeds."""
    config = (template / "config.yaml").read_text()
    summary = json.loads((template / "summary.json").read_text())
    metrics = (template / "metrics.csv").read_text()
    for i in range(n):
        run = folder / f"{i:05d}"
        run.mkdir(parents=True)
        seed, rate = i // 5, i % 5 / 10
        (run / "config.yaml").write_text(re.sub(r"(?m)^seed: 0$", f"seed: {seed}", config)
                                         .replace("fc: 0.0", f"fc: {rate}"))
        summary["seed"] = seed
        summary["config"].update({"seed": seed, "reg.dropout.fc": rate})
        (run / "summary.json").write_text(json.dumps(summary))
        (run / "metrics.csv").write_text(metrics)
        hydra = run / ".hydra"
        hydra.mkdir()
        (hydra / "overrides.yaml").write_text(f"- seed={seed}\n- reg.dropout.fc={rate}\n")


def main(sizes: list[int]) -> None:
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.node()}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="regbench-store-") as tmp:
        template = make_template(Path(tmp) / "t")
        for n in sizes:
            folder = Path(tmp) / f"runs{n}"
            fill(template, folder, n)
            t0 = time.perf_counter()
            proc = subprocess.run(["regbench", "summarize", str(folder)], capture_output=True,
                                  text=True, env={**os.environ, "COLUMNS": "200"})
            wall = time.perf_counter() - t0
            status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
            print(f"regbench summarize over {n:,} run folders: {wall:.1f} s ({status})")
            shutil.rmtree(folder)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 10000])
