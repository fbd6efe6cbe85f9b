"""Test helpers: configs built with Hydra's compose API, shrunk to tiny sizes; the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from regbench.launch.composition import compose
from regbench.training.schema import RegbenchConfig

TINY = ["dataset=synthetic", "model.channels=[8,16]", "model.hidden=32", "trainer.epochs=2",
        "trainer.progress=false"]


def cfg_maker(tmp_path: Path) -> Callable[..., RegbenchConfig]:
    """Compose the real config with overrides, writing under tmp_path."""

    def make(*overrides: str, tiny: bool = True) -> RegbenchConfig:
        base = TINY if tiny else ["trainer.progress=false"]
        _, schema = compose([*base, f"output.root={tmp_path / 'results'}",
                             f"dataset.root={tmp_path / 'data'}", *overrides])
        return schema

    return make


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real `regbench` command in a subprocess."""
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120", **(env or {})}
    full_env.pop("REGBENCH_DATA", None)
    full_env.pop("REGBENCH_EXPERIMENT", None)
    return subprocess.run([sys.executable, "-m", "regbench", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
