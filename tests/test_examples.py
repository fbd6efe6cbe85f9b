"""The worked example in examples/: its own tests pass against this regbench, installed."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "regbench-dropblock"


@pytest.mark.slow
def test_the_dropblock_example_passes_its_tests() -> None:
    try:
        metadata.version("regbench-dropblock")
    except metadata.PackageNotFoundError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"the example is not installed: python -m pip install -e {EXAMPLE}")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider",
                           str(EXAMPLE / "tests")], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
