"""Fault injection: signals, kills, corrupted files and bad paths never lose finished work."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import inject
from helpers import TINY, cli
from datafiles import write_cifar10, write_mnist
from regbench.store import metrics, runs
from regbench.store import summary as summaries

# A deterministic CPU run of 3 epochs on the generated data, with dropout and augmentation so
# that a resumed run must restore the model, optimizer and every random stream to match.
RUN = ["run", "dataset=synthetic", "model.channels=[8,16]", "model.hidden=32", "trainer.epochs=3",
       "trainer.deterministic=true", "reg=dropout", "dataset.augment=true",
       "dataset.train_size=300", "trainer.progress=false"]
# A population sweep: a member without dropout and one with, trained as one population
# (epoch 2, where the moments fall, is its last).
SWEEP = ["sweep", "hydra/launcher=population", "dataset=synthetic", "model.channels=[8,16]",
         "model.hidden=32", "trainer.epochs=2", "trainer.deterministic=true",
         "dataset.train_size=300", "trainer.progress=false", "reg.dropout.fc=0.0,0.5"]
JOBS = 2
INJECT = Path(__file__).with_name("inject.py")


def strip_timing(path: Path) -> list[dict[str, float]]:
    return [{k: v for k, v in r.as_dict().items() if k not in metrics.TIMING_COLUMNS}
            for r in metrics.read_rows(path)]


def only_folder(parent: Path) -> Path:
    (folder,) = parent.iterdir()
    return folder


def jobs_metrics(sweep_dir: Path) -> list[list[dict[str, float]]]:
    return [strip_timing(sweep_dir / str(n) / runs.METRICS_FILE) for n in range(JOBS)]


def interrupted(args: list[str], root: Path, moment: str, sig: signal.Signals,
                monkeypatch: pytest.MonkeyPatch) -> int:
    """Run the command with the signal sent at the moment: SIGINT in this process (as Ctrl-C
    arrives), SIGTERM and SIGKILL in a real process of its own; the exit code."""
    args = [*args, f"output.root={root}"]
    if sig == signal.SIGINT:
        with monkeypatch.context() as patch:
            inject.install(moment, sig, patch.setattr)
            return cli(*args)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGBENCH_")}
    proc = subprocess.run([sys.executable, str(INJECT), moment, sig.name, *args], cwd=root.parent,
                          env={**env, "NO_COLOR": "1"}, capture_output=True, text=True,
                          timeout=300)
    return proc.returncode


def expected_codes(sig: signal.Signals) -> tuple[int, ...]:
    """130 after Ctrl-C, 143 after a SIGTERM the run handled (or death by it where it had no
    handler in place yet), death by SIGKILL."""
    return {signal.SIGINT: (130,), signal.SIGTERM: (143, -signal.SIGTERM),
            signal.SIGKILL: (-signal.SIGKILL,)}[sig]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, float]]:
    """metrics.csv of the same run, never interrupted."""
    root = tmp_path_factory.mktemp("reference") / "results"
    assert cli(*RUN, f"output.root={root}") == 0
    return strip_timing(only_folder(root / "default") / runs.METRICS_FILE)


@pytest.fixture(scope="module")
def sweep_reference(tmp_path_factory: pytest.TempPathFactory) -> list[list[dict[str, float]]]:
    """Each job's metrics.csv of the same population sweep, never interrupted."""
    root = tmp_path_factory.mktemp("sweep_reference") / "results"
    assert cli(*SWEEP, f"output.root={root}") == 0
    return jobs_metrics(only_folder(root / "default" / "sweeps"))


# Ctrl-C at every moment (in this process, cheap); SIGKILL wherever a file is being written
# or is about to be; SIGTERM where its handling differs: raised in an epoch or in the test
# pass, held during the row, checkpoint and summary writes. Each killed run costs a process.
STOPS = {
    signal.SIGINT: list(inject.MOMENTS),
    signal.SIGKILL: ["first_epoch", "after_row", "checkpoint_write", "summary_write"],
    signal.SIGTERM: ["before_training", "startup", "first_epoch", "checkpoint_write",
                     "before_summary", "summary_write"],
}


def moment_params() -> list[Any]:
    return [pytest.param(moment, sig, id=f"{moment}-{sig.name}")
            for sig, moments in STOPS.items() for moment in moments]


@pytest.mark.slow
@pytest.mark.parametrize("moment,sig", moment_params())
def test_a_run_stopped_at_any_moment_resumes_to_the_uninterrupted_metrics(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference: list[dict[str, float]],
        moment: str, sig: signal.Signals) -> None:
    root = tmp_path / "results"
    assert interrupted(RUN, root, moment, sig, monkeypatch) in expected_codes(sig)
    run_dir = only_folder(root / "default")
    status = summaries.read(run_dir).status  # a summary is there, whatever the moment
    logged = run_dir / runs.METRICS_FILE
    rows = strip_timing(logged) if logged.exists() else []  # none before the first epoch
    assert rows == reference[:len(rows)]  # what was kept is what the full run computed
    assert cli("resume", str(run_dir)) == 0
    assert summaries.read(run_dir).status == "completed"
    assert strip_timing(run_dir / runs.METRICS_FILE) == reference
    assert not list(run_dir.glob(".*.tmp"))  # a killed write's leftovers are gone
    if sig != signal.SIGKILL:  # a signal the run can catch leaves it marked as interrupted,
        # or completed when it came while the complete run's summary was being written
        assert status == ("completed" if moment == "summary_write" else "interrupted")


@pytest.mark.slow
@pytest.mark.parametrize("moment,sig", [
    ("mid_run", signal.SIGINT), ("after_row", signal.SIGTERM), ("checkpoint_write", signal.SIGKILL),
], ids=lambda v: v.name if isinstance(v, signal.Signals) else v)
def test_a_population_sweep_stopped_at_any_moment_resumes_to_the_uninterrupted_metrics(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        sweep_reference: list[list[dict[str, float]]], moment: str, sig: signal.Signals) -> None:
    root = tmp_path / "results"
    assert interrupted(SWEEP, root, moment, sig, monkeypatch) in expected_codes(sig)
    sweep_dir = only_folder(root / "default" / "sweeps")
    assert cli("sweep", "--resume", str(sweep_dir)) == 0
    assert [summaries.read(sweep_dir / str(n)).status for n in range(JOBS)] == ["completed"] * JOBS
    assert jobs_metrics(sweep_dir) == sweep_reference


def one_line_error(code: int, capsys: pytest.CaptureFixture[str]) -> str:
    """The single line a bad input gives (exit 2, no traceback)."""
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def interrupted_run_dir(tmp_path: Path, make_cfg: Any) -> Path:
    """A run folder as an interrupted run leaves it before its first checkpoint."""
    from omegaconf import OmegaConf

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    runs.write_atomic(run_dir / runs.CONFIG_FILE, OmegaConf.to_yaml(OmegaConf.structured(make_cfg())))
    runs.write_json(run_dir / runs.SUMMARY_FILE, {"status": "interrupted"})
    return run_dir


def test_resume_refuses_what_it_cannot_resume(tmp_path: Path, make_cfg: Any,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line_error(cli("resume", str(tmp_path)), capsys)
    assert "not a regbench run directory" in line
    run_dir = interrupted_run_dir(tmp_path, make_cfg)
    (run_dir / runs.CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    assert str(run_dir / runs.CHECKPOINT_FILE) in one_line_error(cli("resume", str(run_dir)), capsys)
    runs.write_json(run_dir / runs.SUMMARY_FILE, {"status": "completed"})
    assert cli("resume", str(run_dir)) == 0
    assert "nothing to resume" in capsys.readouterr().err


class Payload:
    """Unpickled, it creates the file it names: code that a checkpoint must never run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return open, (str(self.marker), "w")


def test_a_checkpoint_carrying_code_is_refused_and_runs_nothing(
        tmp_path: Path, make_cfg: Any, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = interrupted_run_dir(tmp_path, make_cfg)
    marker = tmp_path / "payload_ran"
    checkpoint = run_dir / runs.CHECKPOINT_FILE
    torch.save({"epoch": 1, "model": {}, "extra": Payload(marker)}, checkpoint)
    line = one_line_error(cli("resume", str(run_dir)), capsys)
    assert str(checkpoint) in line and "delete it" in line
    assert not marker.exists()  # refused before any of its code ran
    torch.load(checkpoint, weights_only=False)  # the payload is real: loaded without the
    assert marker.exists()                      # weights-only check, it writes its file


@pytest.mark.slow
def test_corrupted_files_are_named_with_the_fix(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "data"
    write_mnist(root)
    labels = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    labels.write_bytes(labels.read_bytes()[:-7])  # wrong size
    out = f"output.root={tmp_path / 'results'}"
    line = one_line_error(cli("run", "dataset=mnist", f"dataset.root={root}", out), capsys)
    assert str(labels) in line and "delete it" in line

    write_cifar10(root)
    batch = root / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(b"garbage")
    line = one_line_error(cli("run", "dataset=cifar10", f"dataset.root={root}", out), capsys)
    assert str(batch) in line and "truncated or corrupted" in line


@pytest.mark.slow
def test_bad_archive_checksum_is_reported_before_any_download(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    archive = raw / "train-images-idx3-ubyte.gz"
    archive.write_bytes(gzip.compress(b"not the real images"))
    line = one_line_error(cli("run", "dataset=fashion_mnist", f"dataset.root={tmp_path / 'data'}",
                              f"output.root={tmp_path / 'results'}"), capsys)
    assert str(archive) in line and "checksum mismatch" in line


def test_unusable_data_root_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    line = one_line_error(cli("run", "dataset=cifar10", f"dataset.root={blocker / 'sub'}",
                              f"output.root={tmp_path / 'results'}"), capsys)
    assert "dataset.root" in line and str(blocker / "sub") in line


@pytest.mark.slow
def test_divergence_in_a_run_keeps_finished_epochs_and_exits_1(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "results"
    assert cli("run", "experiment=smoke", *TINY, "optim=sgd", "optim.lr=1e6", "trainer.epochs=3",
               f"output.root={root}") == 1  # SGD overflows at once
    run_dir = only_folder(root / "smoke")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "diverged"
    assert len(metrics.read_rows(run_dir / "metrics.csv")) == summary["epochs_run"]
    assert "diverged" in capsys.readouterr().out
