"""Fault injection: signals, kills, corrupted files and bad paths never lose finished work."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import run_cli
from datafiles import write_cifar10, write_mnist
from regbench.store import metrics

LONG = ["run", "experiment=smoke", "trainer.progress=false", "model.channels=[8,16]", "model.hidden=32",
        "trainer.epochs=12", "trainer.deterministic=true", "reg=dropout", "dataset.augment=true"]


def strip_timing(path: Path) -> list[dict[str, float]]:
    return [{k: v for k, v in r.as_dict().items() if k not in metrics.TIMING_COLUMNS}
            for r in metrics.read_rows(path)]


def start_and_signal(tmp_path: Path, sig: int, after_rows: int = 2) -> tuple[int, Path]:
    """Start a real run, send `sig` once `after_rows` epochs are on disk; (exit code, run dir)."""
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "regbench", *LONG], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    run_dir = None
    while time.monotonic() < deadline and proc.poll() is None:
        found = list((tmp_path / "results" / "smoke").glob("*/metrics.csv"))
        if found and len(found[0].read_text().splitlines()) > after_rows:
            run_dir = found[0].parent
            proc.send_signal(sig)
            break
        time.sleep(0.02)
    code = proc.wait(timeout=120)
    assert run_dir is not None, "the run ended before the signal could be sent"
    return code, run_dir


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, float]]:
    """metrics.csv of the same run, never interrupted."""
    where = tmp_path_factory.mktemp("reference")
    assert run_cli(*LONG, cwd=where).returncode == 0
    (csv_path,) = (where / "results" / "smoke").glob("*/metrics.csv")
    return strip_timing(csv_path)


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_keeps_metrics_and_resume_matches_an_uninterrupted_run(
        tmp_path: Path, reference: list[dict[str, float]], sig: int, code: int) -> None:
    exit_code, run_dir = start_and_signal(tmp_path, sig)
    assert exit_code == code
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    kept = metrics.read_rows(run_dir / "metrics.csv")
    assert 2 <= len(kept) == summary["epochs_run"] < 12
    assert (run_dir / "checkpoint.pt").exists()
    resumed = run_cli("resume", str(run_dir), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"
    assert strip_timing(run_dir / "metrics.csv") == reference


def test_sigkill_at_any_moment_resumes_without_torn_or_duplicated_rows(
        tmp_path: Path, reference: list[dict[str, float]]) -> None:
    exit_code, run_dir = start_and_signal(tmp_path, signal.SIGKILL, after_rows=3)
    assert exit_code == -signal.SIGKILL
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "running"
    assert run_cli("resume", str(run_dir), cwd=tmp_path).returncode == 0
    rows = strip_timing(run_dir / "metrics.csv")
    assert [r["epoch"] for r in rows] == list(range(1, 13))
    assert rows == reference


def test_resume_refuses_what_it_cannot_resume(tmp_path: Path) -> None:
    not_a_run = run_cli("resume", str(tmp_path), cwd=tmp_path)
    assert not_a_run.returncode == 2 and "not a regbench run directory" in not_a_run.stderr
    assert run_cli("run", "experiment=smoke", "trainer.progress=false", "trainer.epochs=1",
                   cwd=tmp_path).returncode == 0
    (run_dir,) = (tmp_path / "results" / "smoke").iterdir()
    done = run_cli("resume", str(run_dir), cwd=tmp_path)
    assert done.returncode == 0 and "nothing to resume" in done.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    (run_dir / "checkpoint.pt").write_bytes(b"not a checkpoint")
    broken = run_cli("resume", str(run_dir), cwd=tmp_path)
    assert broken.returncode == 2 and "checkpoint.pt" in broken.stderr
    assert len(broken.stderr.strip().splitlines()) == 1


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_corrupted_files_are_named_with_the_fix(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_mnist(root)
    labels = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-7])  # wrong size
    line = one_line_error(run_cli("run", "dataset=mnist", f"dataset.root={root}", cwd=tmp_path))
    assert str(labels) in line and "delete it" in line

    write_cifar10(root)
    batch = root / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(b"garbage")
    line = one_line_error(run_cli("run", "dataset=cifar10", f"dataset.root={root}", cwd=tmp_path))
    assert str(batch) in line and "truncated or corrupted" in line


def test_bad_archive_checksum_is_reported_before_any_download(tmp_path: Path) -> None:
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    archive = raw / "train-images-idx3-ubyte.gz"
    archive.write_bytes(gzip.compress(b"not the real images"))
    line = one_line_error(run_cli("run", "dataset=fashion_mnist", f"dataset.root={tmp_path / 'data'}",
                                  cwd=tmp_path))
    assert str(archive) in line and "checksum mismatch" in line


def test_unusable_data_root_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    line = one_line_error(run_cli("run", "dataset=cifar10", f"dataset.root={blocker / 'sub'}",
                                  cwd=tmp_path))
    assert "dataset.root" in line and str(blocker / "sub") in line


def test_divergence_in_a_run_keeps_finished_epochs_and_exits_1(tmp_path: Path) -> None:
    proc = run_cli("run", "experiment=smoke", "trainer.progress=false", "optim=sgd",
                   "optim.lr=1e6", "trainer.epochs=3", cwd=tmp_path)  # SGD overflows at once
    assert proc.returncode == 1
    (run_dir,) = (tmp_path / "results" / "smoke").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "diverged"
    assert len(metrics.read_rows(run_dir / "metrics.csv")) == summary["epochs_run"]
    assert "diverged" in proc.stdout
