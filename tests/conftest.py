"""Fixtures; the helpers they use live in helpers.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import cfg_maker
from regbench.training.schema import RegbenchConfig


@pytest.fixture
def make_cfg(tmp_path: Path) -> Callable[..., RegbenchConfig]:
    """Compose the real config with overrides, writing under tmp_path."""
    return cfg_maker(tmp_path)
