"""Every experiment preset trains: its last sweep job, one epoch, a shrunk model."""

from __future__ import annotations

from pathlib import Path

import pytest

from datafiles import write_cifar10
from regbench.store import runs
from regbench.launch import sweep
from regbench.training import loop as train
from regbench.launch.composition import compose
from regbench.config.schema import CONF_DIR

PRESETS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
SHRINK = ["trainer.epochs=1", "trainer.progress=false", "trainer.checkpoint=false"]


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_experiment_preset_runs_one_epoch(preset: str, tmp_path: Path) -> None:
    write_cifar10(tmp_path / "data")  # tiny files in torchvision's format, for CIFAR presets
    base = [f"experiment={preset}", f"output.root={tmp_path / 'results'}",
            f"dataset.root={tmp_path / 'data'}", "dataset.download=false"]
    jobs, _ = sweep.expand(base)
    last = [o for o in jobs[-1] if not o.startswith(("seed=",))]  # the most regularized setting
    _, cfg = compose([*last, *SHRINK, "model.hidden=16",
                      f"model.channels=[{','.join(['4'] * len(compose(last)[1].model.channels))}]"])
    result = train.run(cfg, runs.make_run_dir(cfg.output.root, cfg.experiment))
    assert result.status in runs.FINISHED, result.summary.error
    assert len(result.rows) == 1 and result.summary.test_acc is not None
