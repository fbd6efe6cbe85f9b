"""Test helpers: configs built with Hydra's compose API, shrunk to tiny sizes; the real CLI."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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


def cli(*args: str, env: dict[str, str] | None = None) -> int:
    """Run the `regbench` command line in this process (``regbench.cli.main``); its exit code.

    For what a subprocess would add nothing to: errors, help, in-process signals (SIGINT).
    Output goes to this process's stdout/stderr (read it with pytest's capsys). The command
    passes some settings to its jobs through environment variables (REGBENCH_EXPERIMENT,
    REGBENCH_DEBUG, the sweep's axes); they are put back afterwards, as the end of a
    process would, so that no test depends on another having run before it.
    """
    from regbench.cli import main

    saved_argv, saved_env = sys.argv, dict(os.environ)
    for key in [k for k in os.environ if k.startswith("REGBENCH_")]:
        del os.environ[key]  # as run_cli does: the user's own settings stay out of tests
    os.environ.update(env or {})
    sys.argv = ["regbench", *args]
    try:
        main()
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else int(e.code is not None)
    finally:
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
    return 0


def png_size(path: Path) -> tuple[int, int]:
    """A PNG file's width and height in pixels, read from its header (IHDR)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path}: not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@dataclass
class Drawn:
    """What one saved figure draws, read from its matplotlib objects as it is saved."""

    panels: int  # axes with something drawn in them
    series: list[tuple[list[float], list[float]]]  # (x, y) of every line and scatter

    def has(self, xs: list[float], ys: list[float], scale: float = 100) -> bool:
        """Whether some series draws exactly these points (y in units or in units/scale)."""
        return any(len(x) == len(xs) and len(y) == len(ys) and np.allclose(x, xs)
                   and (np.allclose(y, ys) or np.allclose(np.asarray(y) * scale, ys))
                   for x, y in self.series)


def describe(fig: Any) -> Drawn:
    """The panels and plotted points of a matplotlib figure."""
    panels, series = 0, []
    for ax in fig.axes:
        found = [(list(line.get_xdata()), list(line.get_ydata())) for line in ax.get_lines()]
        for collection in ax.collections:
            offsets = np.asarray(collection.get_offsets())
            if offsets.ndim == 2 and len(offsets):
                found.append((list(offsets[:, 0]), list(offsets[:, 1])))
        panels += bool(found)
        series += [(list(map(float, x)), list(map(float, y))) for x, y in found
                   if all(isinstance(v, (int, float, np.number)) for v in [*x, *y])]
    return Drawn(panels, series)
