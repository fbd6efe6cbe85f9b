"""The `regbench` command end to end, in real subprocesses."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from helpers import run_cli
from datafiles import write_mnist
from regbench.store import metrics

SMOKE = ["run", "experiment=smoke", "trainer.progress=false"]


def test_smoke_run_writes_curves_and_prints_the_gap_table(tmp_path: Path) -> None:
    proc = run_cli(*SMOKE, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = (tmp_path / "results" / "smoke").iterdir()
    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(metrics.COLUMNS) and len(rows) == 3
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_run"] == 2
    assert {"best", "last", "onset_epoch", "test_acc", "versions", "n_params"} <= set(summary)
    assert (run_dir / "config.yaml").exists() and (run_dir / "checkpoint.pt").exists()
    assert "Overfitting gap" in proc.stdout and "verdict:" in proc.stdout
    assert "\x1b[" not in proc.stdout  # NO_COLOR and a pipe: plain text


def test_parallel_runs_get_distinct_directories(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "regbench", *SMOKE, "trainer.epochs=1"]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for _ in range(4)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0, 0]
    dirs = list((tmp_path / "results" / "smoke").iterdir())
    assert len(dirs) == 4
    assert all(json.loads((d / "summary.json").read_text())["status"] == "completed" for d in dirs)


def test_missing_dataset_offline_exits_2_with_one_line(tmp_path: Path) -> None:
    proc = run_cli("run", "dataset=mnist", f"dataset.root={tmp_path / 'nowhere'}", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in lines[0]
    assert "regbench datasets download mnist" in lines[0]
    assert not any((tmp_path / "results").rglob("metrics.csv"))
    assert not list((tmp_path / "results" / "default").iterdir())  # no husk of a run left


def test_bad_overrides_exit_2_with_one_line_naming_the_key(tmp_path: Path) -> None:
    cases = {
        "reg.dropout.fc=1.5": "reg.dropout.fc=1.5",
        "reg.dropuot.fc=0.3": "did you mean reg.dropout.fc",
        "trainer.epochs=abc": "trainer.epochs",
        "reg=nonsense": "available: all, augment, batchnorm",
        "optim.name=rmsprop": "known values are sgd, adam, adamw",
        "reg.dropout.fc=0.1,0.2": "regbench sweep",
        "experiment=../../x": "experiment='../../x'",
    }
    for override, expected in cases.items():
        proc = run_cli("run", override, cwd=tmp_path)
        assert proc.returncode == 2, (override, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (override, lines)
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").rglob("*.csv"))


def test_a_real_mnist_format_dataset_trains_from_the_cli(tmp_path: Path) -> None:
    write_mnist(tmp_path / "data", n_train=300, n_test=50)
    proc = run_cli(*SMOKE, "dataset=mnist", "dataset.download=false", "trainer.epochs=1",
                   cwd=tmp_path, env={"REGBENCH_DATA": str(tmp_path / "data")})
    assert proc.returncode == 0, proc.stderr


def test_version_help_config_and_hydra_flags(tmp_path: Path) -> None:
    assert run_cli("--version", cwd=tmp_path).stdout.startswith("regbench ")
    helptext = run_cli("run", "--help", cwd=tmp_path).stdout
    assert "regbench run reg=dropout reg.dropout.fc=0.3" in helptext
    cfg = run_cli("config", "reg=dropout", "reg.dropout.fc=0.3", cwd=tmp_path)
    assert cfg.returncode == 0 and "fc: 0.3" in cfg.stdout and "conv: 0.25" in cfg.stdout
    job = run_cli("run", "reg=l2", "--cfg", "job", cwd=tmp_path)
    assert job.returncode == 0 and "l2: 0.0005" in job.stdout
    assert not (tmp_path / "results").exists()  # --cfg prints and trains nothing
    named = run_cli(*SMOKE, "experiment=my_study", "dataset=synthetic", "trainer.epochs=1", cwd=tmp_path)
    assert named.returncode == 0 and len(list((tmp_path / "results" / "my_study").iterdir())) == 1
    listing = run_cli("datasets", cwd=tmp_path)
    assert listing.returncode == 0 and "mnist5k" in listing.stdout and "cifar10" in listing.stdout
