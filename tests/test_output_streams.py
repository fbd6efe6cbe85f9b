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


def narrow() -> Console:
    """An 80-column terminal, its text readable back."""
    return Console(file=io.StringIO(), force_terminal=True, color_system=None, width=80)


def test_prose_at_80_columns_breaks_between_words_and_keeps_paths_and_commands_whole() -> None:
    run_dir = "/home/someone/projects/regbench/results/dropout_grid/20261206-213757-a7a313"
    resume = f"regbench resume {run_dir}"
    out = narrow()
    terminal.say(out, "verdict: no overfitting onset within 20 epochs, but train accuracy leads "
                      "val by 12.3 points: the model is memorising")
    terminal.say(out, f"files: {run_dir}/metrics.csv, summary.json, config.yaml, checkpoint.pt")
    terminal.say(out, f"no epoch finished; start it again with: {resume}", (resume,))
    text = out.file.getvalue()  # type: ignore[attr-defined]
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines if run_dir not in line)
    words = " ".join(text.split())
    for whole in ("12.3", "memorising", f"{run_dir}/metrics.csv,", resume):
        assert whole in words and any(whole in line for line in lines), whole
    assert f"{run_dir}/metrics.csv," in [line.strip() for line in lines]  # on its own line
    piped = Console(file=io.StringIO(), width=80)  # a pipe or a file: one line each
    terminal.say(piped, f"no epoch finished; start it again with: {resume}", (resume,))
    assert piped.file.getvalue().count("\n") == 1  # type: ignore[attr-defined]


def test_a_sweep_job_line_at_80_columns_never_splits_a_number(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    from test_compare import write_run

    write_run(tmp_path / "0", 0, 0.975, 1.0)
    out = narrow()
    monkeypatch.setattr(terminal, "Console", lambda **_: out)
    terminal.print_job_line(tmp_path / "0", "run", "[1/40] reg.dropout.fc=0.1717 seed=0")
    lines = out.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 2 and all(len(line) <= 80 for line in lines)
    tokens = " ".join(lines).split()
    assert "reg.dropout.fc=0.1717" in tokens and "97.50%" in tokens and "+2.50" in tokens
    for width in range(20, 70):  # every place the break can fall: a number keeps its words
        out = narrow()
        terminal.print_job_line(tmp_path / "0", "run", f"[1/40] {'k' * width}=1")
        lines = out.file.getvalue().splitlines()  # type: ignore[attr-defined]
        for phrase in ("val acc 97.50%", "best epoch 2", "gap +2.50 pts", "10.0 s"):
            assert any(phrase in line for line in lines), (phrase, lines)


def test_a_configuration_cell_breaks_between_tokens_never_inside_its_mark() -> None:
    cell = "reg=dropout reg.dropout.fc=0.5\n(best, did not learn)"
    assert terminal._units(cell) == ["reg=dropout", "reg.dropout.fc=0.5", "(best, did not learn)"]


def test_an_indented_line_keeps_its_indent_when_broken() -> None:
    text = "  " + " ".join(f"word{n}" for n in range(30))
    lines = terminal.wrapped(text, 40)
    assert lines[0].startswith("  word0") and all(x.startswith("    ") for x in lines[1:])
    assert " ".join(" ".join(lines).split()) == text.strip() and all(len(x) <= 40 for x in lines)
    # the indent counts: 'aaaa bbbb cccc dddd' fits 20 columns, but not after two spaces
    assert terminal.wrapped("  aaaa bbbb cccc dddd eeee", 20) == ["  aaaa bbbb cccc", "    dddd eeee"]


def test_the_epoch_line_writes_a_blown_up_loss_in_e_notation() -> None:
    from regbench.present.terminal import loss_text

    assert loss_text(0.123456) == "0.1235" and loss_text(9999.5) == "9999.5000"
    assert loss_text(5957417592421419354443999084544.0) == "5.96e+30"
    assert loss_text(float("inf")) == "inf" and loss_text(float("nan")) == "nan"
