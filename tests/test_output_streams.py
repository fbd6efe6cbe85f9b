"""What reaches a pipe or a file while a run trains, and how a run started from a script stops."""

from __future__ import annotations

import io
import json
import signal
from pathlib import Path

import inject
import pytest
from rich.console import Console

from helpers import TINY, cli
from regbench.present import terminal
from regbench.store.metrics import Row


def test_each_epoch_line_reaches_a_pipe_when_the_epoch_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    piped = io.StringIO()  # not a terminal: a bar would only be drawn when training ends
    monkeypatch.setattr(terminal, "console", Console(file=piped, width=80))
    progress = terminal.Progress(enabled=True)
    progress.on_train_start(epochs=3, steps_per_epoch=2)
    for epoch in (1, 2):
        progress.on_epoch_start(epoch)
        for _ in range(2):
            progress.on_batch_end(16, lambda: 0.5)
        progress.on_epoch_end(Row(epoch=epoch, train_loss=0.4, train_acc=0.9, val_loss=0.5,
                                  val_acc=0.8, train_loss_running=0.45))
        lines = piped.getvalue().splitlines()
        assert len(lines) == epoch and lines[-1].startswith(f"epoch {epoch}/3 loss 0.4500 ")
        assert lines[-1].endswith("train/val acc 0.900/0.800")
    progress.on_train_end()
    assert len(piped.getvalue().splitlines()) == 2  # nothing drawn again at the end


def test_a_run_started_with_sigint_ignored_still_stops_on_sigint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a shell script's background job starts with SIGINT ignored; `kill -INT` must still stop it
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with monkeypatch.context() as patch:
            inject.install("first_epoch", signal.SIGINT, patch.setattr)
            code = cli("run", *TINY, "trainer.epochs=3", f"output.root={tmp_path}")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert code == 130
    (run_dir,) = (tmp_path / "default").iterdir()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "interrupted"
