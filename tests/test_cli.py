"""The `regbench` command: end to end in real processes, errors and help in this process."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from datafiles import write_mnist
from helpers import TINY, cli, run_cli
from regbench.store import metrics

SMOKE = ["run", "experiment=smoke", "trainer.progress=false"]


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.slow
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


@pytest.mark.slow
def test_parallel_runs_get_distinct_directories(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "regbench", *SMOKE, *TINY, "trainer.epochs=1"]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for _ in range(4)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0, 0]
    dirs = list((tmp_path / "results" / "smoke").iterdir())
    assert len(dirs) == 4
    assert all(json.loads((d / "summary.json").read_text())["status"] == "completed" for d in dirs)


def test_missing_dataset_with_downloads_off_exits_2_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results"
    code = cli("run", "dataset=mnist", "dataset.download=false",
               f"dataset.root={tmp_path / 'nowhere'}", f"output.root={out}")
    assert code == 2
    line = one_line(capsys.readouterr().err)
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in line and "dataset.download is false" in line
    assert "regbench datasets download mnist" in line
    assert not any(out.rglob("metrics.csv"))
    assert not list((out / "default").iterdir())  # no husk of a run left


def test_missing_dataset_without_a_network_exits_2_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], offline: list[str]) -> None:
    """dataset.download=true (the default) on a machine whose network is cut (see conftest)."""
    out = tmp_path / "results"
    code = cli("run", "dataset=mnist", f"dataset.root={tmp_path / 'nowhere'}", f"output.root={out}")
    assert code == 2
    line = one_line(capsys.readouterr().err)
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in line and "the download failed" in line
    assert "on a machine with internet" in line
    assert offline, "the download was never tried"
    offline.clear()  # the attempts this test meant to make
    assert not any(out.rglob("metrics.csv"))


def test_the_tests_cannot_reach_the_network(offline: list[str]) -> None:
    """The guard behind every test (conftest.offline): a download fails as it would offline."""
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen("https://ossci-datasets.s3.amazonaws.com/mnist/", timeout=5)
    assert offline == ["'ossci-datasets.s3.amazonaws.com'"]
    offline.clear()


def test_bad_overrides_exit_2_with_one_line_naming_the_key(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = {
        "reg.dropout.fc=1.5": "reg.dropout.fc=1.5",
        "reg.dropuot.fc=0.3": "did you mean reg.dropout.fc",
        "trainer.epochs=abc": "trainer.epochs",
        "reg=nonsense": "available: all, augment, batchnorm",
        "optim.name=rmsprop": "known values are sgd, adam, adamw",
        "reg.dropout.fc=0.1,0.2": "regbench sweep",
        "experiment=../../x": "experiment='../../x'",
    }
    out = tmp_path / "results"
    for override, expected in cases.items():
        assert cli("run", override, f"output.root={out}") == 2, override
        assert expected in one_line(capsys.readouterr().err), override
    assert not out.exists() or not any(out.rglob("*.csv"))


@pytest.mark.slow
def test_a_real_mnist_format_dataset_trains_from_the_cli(tmp_path: Path) -> None:
    write_mnist(tmp_path / "data", n_train=300, n_test=50)
    assert cli(*SMOKE, "dataset=mnist", "dataset.download=false", "trainer.epochs=1",
               *TINY[1:3], f"output.root={tmp_path / 'results'}",
               env={"REGBENCH_DATA": str(tmp_path / "data")}) == 0


def test_version_help_config_and_hydra_flags(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli("--version") == 0 and capsys.readouterr().out.startswith("regbench ")
    assert cli("run", "--help") == 0
    assert "regbench run reg=dropout reg.dropout.fc=0.3" in capsys.readouterr().out
    assert cli("config", "reg=dropout", "reg.dropout.fc=0.3") == 0
    printed = capsys.readouterr().out
    assert "fc: 0.3" in printed and "conv: 0.25" in printed
    assert cli("run", "reg=l2", "--cfg", "job") == 0 and "l2: 0.0005" in capsys.readouterr().out
    assert not (tmp_path / "results").exists()  # --cfg prints and trains nothing
    assert cli("datasets") == 0
    listing = capsys.readouterr().out
    assert "mnist5k" in listing and "cifar10" in listing


@pytest.mark.slow
def test_a_named_experiment_gets_its_own_folder(tmp_path: Path) -> None:
    root = tmp_path / "results"
    assert cli(*SMOKE, "experiment=my_study", *TINY, "trainer.epochs=1", "dataset.train_size=100",
               f"output.root={root}") == 0
    assert [p.name for p in root.iterdir()] == ["my_study"]
    assert len(list((root / "my_study").iterdir())) == 1
