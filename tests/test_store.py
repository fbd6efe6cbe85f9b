"""The store: summary.json and sweep.json as typed objects, config.yaml read fast, damaged
folders reported and skipped."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from regbench.cli import app
from regbench.training.schema import RegbenchConfig
from regbench.errors import RunDirError
from regbench.store import job_lists, metrics, run_config, runs, summary, sweeps
from regbench.store.summary import Summary
from regbench.training import loop

ROW = {"epoch": 3, "train_loss": 0.25, "train_acc": 0.9, "val_loss": 0.5, "val_acc": 0.8,
       "train_loss_running": 0.3, "penalty": 0.0, "lr": 0.05, "epoch_time_s": 1.5}


def test_a_summary_round_trips_through_its_file(tmp_path: Path) -> None:
    row = metrics.Row(**ROW)
    written = Summary(status="completed", epochs_run=3, best_epoch=3, best=row, last=row,
                      test_acc=0.79, seed=4, machine={"cpus": 2}, versions={"torch": "x"})
    written.write(tmp_path)
    data = json.loads((tmp_path / runs.SUMMARY_FILE).read_text())
    assert data["format_version"] == summary.FORMAT_VERSION
    assert data["best"]["gap_acc"] == pytest.approx(0.1) and set(data["best"]) == set(metrics.COLUMNS)
    read = summary.read(tmp_path)
    assert read == written and read.best is not None and read.best.gap_loss == pytest.approx(0.25)


def test_a_summary_written_before_format_versions_still_loads(tmp_path: Path) -> None:
    old = {"status": "early_stopped", "epochs_run": 2, "best_epoch": 1, "stopped_epoch": 2,
           "monitor": "val_loss", "best": {**ROW, "epoch": 1}, "last": {**ROW, "epoch": 2},
           "test_acc": 0.5, "verdict": None, "a_key_from_a_newer_version": [1, 2]}
    (tmp_path / runs.SUMMARY_FILE).write_text(json.dumps(old))
    s = summary.read(tmp_path)
    assert (s.format_version, s.status, s.stopped_epoch, s.verdict) == (1, "early_stopped", 2, "")
    assert s.best is not None and s.best.dropout_rate == 0.0  # a column added later: its default
    assert s.best.epoch == 1 and s.best.val_acc == 0.8
    assert s.finished


@pytest.mark.parametrize("text", ['{"status": "compl', '[1, 2]', '{"epochs_run": 3}',
                                  '{"status": "completed", "best": [0.5]}',
                                  '{"status": "completed", "epochs_run": "three", "x": 1}'])
def test_a_damaged_summary_is_one_error_naming_the_file(tmp_path: Path, text: str) -> None:
    (tmp_path / runs.SUMMARY_FILE).write_text(text)
    with pytest.raises(RunDirError, match=r"summary\.json: unreadable"):
        summary.read(tmp_path)
    assert summary.load(tmp_path) is None and summary.status(tmp_path) == "missing"


def test_the_next_action_of_a_job_follows_its_summary(tmp_path: Path) -> None:
    assert summary.next_action(tmp_path) == "fresh"
    Summary(status="interrupted").write(tmp_path)
    assert summary.next_action(tmp_path) == "fresh"  # no config.yaml: nothing to resume from
    (tmp_path / runs.CONFIG_FILE).write_text("seed: 0\n")
    assert summary.next_action(tmp_path) == "resume"
    Summary(status="early_stopped").write(tmp_path)
    assert summary.next_action(tmp_path) == "skip"
    summary.mark_failed(tmp_path, "RuntimeError: boom")
    s = summary.read(tmp_path)
    assert (s.status, s.error, s.why_unfinished()) == ("failed", "RuntimeError: boom",
                                                        "RuntimeError: boom")


def test_the_sweep_plan_round_trips_and_names_its_job_folders(tmp_path: Path) -> None:
    plan = sweeps.SweepPlan(args=["reg.dropout.fc=0.0,0.5", "seed=0,1"],
                            jobs=[["reg.dropout.fc=0.0", "seed=0", "trainer.progress=false"],
                                  ["+reg.dropout.fc=0.5", "seed=1"]],
                            axes=["reg.dropout.fc", "seed"])
    sweeps.write_plan(tmp_path, plan)
    assert sweeps.is_sweep(tmp_path) and sweeps.read_plan(tmp_path) == plan
    assert [sweeps.key_of(o) for o in plan.jobs[1]] == ["reg.dropout.fc", "seed"]
    assert plan.job_dirs(tmp_path) == [tmp_path / "0", tmp_path / "1"]
    (tmp_path / sweeps.FILE).write_text('{"args": 3, "jobs": "x"')
    with pytest.raises(RunDirError, match="sweep.json: unreadable"):
        sweeps.read_plan(tmp_path)


def test_config_yaml_reads_as_omegaconf_reads_it(make_cfg: Callable[..., RegbenchConfig],
                                                 tmp_path: Path) -> None:
    cfg = make_cfg("reg=all", "reg.l2=1e-5", "optim.lr=0.001", "dataset.train_size=null")
    (tmp_path / runs.CONFIG_FILE).write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    fast = run_config.read(tmp_path)
    slow = run_config.flatten(OmegaConf.to_container(OmegaConf.load(tmp_path / runs.CONFIG_FILE)))
    assert fast == slow and fast["reg.l2"] == 1e-5 and fast["dataset.train_size"] is None


@pytest.mark.parametrize("typed", [
    ["seed=1", "reg.dropout.fc=0.0", "optim.lr=1e-3"],
    ["model.channels=[8,16]", "reg=dropout"], ["+extra='a b'", "x=1 # not a comment"],
    ["experiment=smoke", "key=", "a=b=c", "t=true", "n=null"], ["x=y: z", "~reg.l2"],
])
def test_overrides_read_as_hydra_wrote_them(tmp_path: Path, typed: list[str]) -> None:
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(OmegaConf.create(typed), tmp_path / runs.OVERRIDES_FILE)  # as Hydra does
    assert job_lists.read_overrides(tmp_path) == typed


def test_run_folders_are_found_at_any_depth_but_never_inside_a_run(tmp_path: Path) -> None:
    for folder in ["a/sweeps/s1/0", "a/sweeps/s1/10", "a/sweeps/s1/2", "b/r1", "b/r1/inner"]:
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / runs.SUMMARY_FILE).write_text("{}")
    (tmp_path / "b/r1/.hydra").mkdir()
    assert [p.relative_to(tmp_path).as_posix() for p in runs.find_runs([tmp_path])] == [
        "a/sweeps/s1/0", "a/sweeps/s1/2", "a/sweeps/s1/10", "b/r1"]
    assert runs.find_runs([tmp_path / "b/r1"]) == [tmp_path / "b/r1"]


def test_summary_json_holds_config_yaml_and_older_folders_read_the_yaml(
        make_cfg: Callable[..., RegbenchConfig], tmp_path: Path) -> None:

    cfg = make_cfg("reg=all", "reg.l2=1e-5", "optim.lr=0.001", "dataset.train_size=null")
    run_config.write(tmp_path, cfg)
    Summary(status="failed", config=run_config.keys_of(cfg)).write(tmp_path)
    held = json.loads((tmp_path / runs.SUMMARY_FILE).read_text())["config"]
    assert held == run_config.read(tmp_path) and held["reg.l2"] == 1e-5
    (tmp_path / runs.CONFIG_FILE).write_text("seed: 7\n")  # the copy in summary.json is read
    assert summary.read(tmp_path).run_config(tmp_path) == held
    Summary(status="failed").write(tmp_path)  # an older summary, without the copy
    assert summary.read(tmp_path).run_config(tmp_path) == {"seed": 7}
    (tmp_path / runs.SUMMARY_FILE).write_text('{"status": "failed", "config": [1]}')
    with pytest.raises(RunDirError, match="config is not an object"):
        summary.read(tmp_path)


@pytest.mark.slow
def test_damaged_folders_are_skipped_with_one_warning_in_summarize_plot_and_report(
        make_cfg: Callable[..., RegbenchConfig], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "results"
    for seed in range(4):
        cfg = make_cfg("trainer.epochs=1", f"seed={seed}", f"reg.dropout.fc={0.5 * (seed % 2)}")
        loop.run(cfg, runs.make_run_dir(root, "t"))
    torn, cut = sorted((root / "t").iterdir())[:2]
    text = (torn / runs.SUMMARY_FILE).read_text()
    (torn / runs.SUMMARY_FILE).write_text(text[: len(text) // 2])
    with open(cut / runs.METRICS_FILE, "w") as f:
        f.write("epoch,train_loss\n1,0.5\n")
    (cut / runs.SUMMARY_FILE).write_text(text.replace('"format_version": 2', '"format_version": 1'))
    from typer.testing import CliRunner

    runner = CliRunner()
    for args in (["summarize", str(root)], ["plot", str(root)],
                 ["report", str(root / "t"), "--format", "markdown"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
        assert "2 damaged run folder(s) skipped" in result.output
        assert str(torn) in result.output and str(cut) in result.output
    summarize = runner.invoke(app, ["summarize", str(root), "--format", "json"])
    data = json.loads(summarize.stdout[summarize.stdout.index("{"):])
    assert sum(row["seeds"] for row in data["configurations"]) == 2
    assert math.isfinite(data["configurations"][0]["val_acc_mean"])
    assert sorted(r["status"] for r in data["not_averaged"]) == ["damaged", "damaged"]
