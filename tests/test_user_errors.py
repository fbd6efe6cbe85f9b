"""Commands a new user typed wrong: each is one line naming what was given and what to do
instead, exit 2, nothing written; and options that do what they say."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from helpers import TINY, cli
from regbench.store import runs
from test_compare import write_run


def one_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.startswith("regbench: error: ") and err.count("\n") == 1, err
    assert "internal error" not in err and "Traceback" not in err
    return err


def test_resume_given_a_sweep_folder_points_to_sweep_resume(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "sweeps" / "s1"
    folder.mkdir(parents=True)
    (folder / runs.SWEEP_FILE).write_text(json.dumps({"args": [], "jobs": []}))
    assert cli("resume", str(folder)) == 2
    assert f"`regbench sweep --resume {folder}`" in one_error(capsys)


def test_interval_without_the_optuna_sweeper_says_to_add_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli("sweep", *TINY, "reg.dropout.fc=interval(0,0.8)") == 2
    err = one_error(capsys)
    assert "reg.dropout.fc=interval(0,0.8)" in err and "hydra/sweeper=optuna" in err
    assert not (tmp_path / "results").exists()


def test_an_unknown_key_added_with_plus_is_not_told_to_use_plus(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli("config", "+foo=1") == 2
    err = one_error(capsys)
    assert "+foo=1" in err and "'foo'" in err and "+key=value" not in err
    assert cli("config", "foo=1") == 2  # without +: nor told to add it, the schema takes no new key
    err = one_error(capsys)
    assert "'foo'" in err and "+key=value" not in err and "`regbench config` lists every key" in err


def test_plot_out_onto_an_existing_file_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_run(tmp_path / "runs" / "a", 0, 0.9, 1.0)
    target = tmp_path / "figure.png"
    target.write_bytes(b"mine")
    assert cli("plot", str(tmp_path / "runs"), "--out", str(target)) == 2
    assert str(target) in one_error(capsys) and target.read_bytes() == b"mine"


def test_columns_all_shows_every_column_in_blocks_and_never_suggests_itself(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from regbench.present import tables

    for seed in (0, 1):
        write_run(tmp_path / f"none{seed}", seed, 0.9 + seed / 100, 1.0)
        write_run(tmp_path / f"fc{seed}", seed, 0.92 + seed / 100, 0.97, **{"reg.dropout.fc": 0.5})
    assert cli("summarize", str(tmp_path), "--columns", "all", env={"COLUMNS": "80"}) == 0
    out = capsys.readouterr().out
    assert "--columns all" not in out and "Not shown at this width" not in out
    assert all(len(line) <= 80 for line in out.splitlines())
    for name in ("test_ece", "mc_test_acc", "mc_test_nll", "mc_test_ece", "time"):
        header = tables.COLUMNS[name].header.split("|")[0]
        assert " ".join(header.split()) in " ".join(out.split()), name
    assert cli("summarize", str(tmp_path), env={"COLUMNS": "80"}) == 0  # the default: cut to fit
    assert "--columns all" in capsys.readouterr().out


@pytest.mark.parametrize("launcher", [
    ["hydra/launcher=submitit_slurm"],
    pytest.param(["hydra/launcher=ray", "hydra.launcher.address=auto"], marks=pytest.mark.slow),
])
def test_a_launcher_that_cannot_start_is_one_line_without_resume_advice(
        launcher: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # no srun, no SLURM
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert cli("sweep", *TINY, "trainer.epochs=1", "seed=0,1", *launcher) == 2
    err = one_error(capsys)
    assert err.startswith(f"regbench: error: {launcher[0]} cannot start: ")
    assert "--resume" not in err and "hydra/launcher=joblib" in err
