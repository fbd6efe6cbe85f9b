"""Labels: what the user typed, at display precision, told apart; one job label everywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from regbench.cli import app
from regbench.launch import jobs, sweep
from regbench.present import report
from regbench.store import runs
from regbench.study import compare, labels
from test_compare import write_run

SEARCHED = 0.1716706251072333  # a rate as a search draws it


def preset(name: str, **changes: Any) -> dict[str, Any]:
    """A flat configuration: the reg preset's section, a few other keys, the changes."""
    return {**labels.reg_presets()[name], "trainer.epochs": 5, "dataset.name": "mnist5k",
            "model.hidden": 128, **changes}


def typed_run(folder: Path, seed: int, typed: list[str], val_acc: float = 0.9,
              **config: object) -> Path:
    """A finished run folder with the overrides typed for it, as Hydra keeps them."""
    write_run(folder, seed, val_acc, 1.0, **config)
    (folder / ".hydra").mkdir()
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in typed))
    return folder


def test_values_print_at_four_significant_digits_unless_shorter() -> None:
    assert labels.shown(SEARCHED) == "0.1717"
    assert [labels.shown(v) for v in (0.3, 0.0, 5e-05, 1000000.0, 3, True, None)] == \
        ["0.3", "0.0", "5e-05", "1000000.0", "3", "true", "null"]
    assert labels.shown([0.25, 1 / 3]) == "[0.25,0.3333]"
    assert labels.shown_override(f"reg.dropout.fc={SEARCHED}") == "reg.dropout.fc=0.1717"
    assert labels.shown_override("model.channels=[8,16]") == "model.channels=[8,16]"
    assert labels.shown_override("reg=dropout") == "reg=dropout"


@pytest.mark.slow
def test_one_job_label_serves_the_job_line_and_the_report(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    job = [f"reg.dropout.fc={SEARCHED}", "seed=1", "dataset=synthetic"]
    axes = ["reg.dropout.fc", "seed"]
    assert labels.job_label(job, axes) == "reg.dropout.fc=0.1717 seed=1"
    plan = sweep.SweepPlan(args=[], jobs=[job], axes=axes)
    monkeypatch.setenv(jobs.SWEEP_AXES_ENV, " ".join(axes))
    monkeypatch.setenv(jobs.SWEEP_SIZE_ENV, "4")
    assert jobs.job_name(tmp_path / "0", job) == "[1/4] reg.dropout.fc=0.1717 seed=1"
    folder = tmp_path / "sweep"
    typed_run(folder / "0", 1, job, **{"reg.dropout.fc": SEARCHED})
    sweep.write_plan(folder, plan)
    assert report.gather(folder).runs[0].values == "reg.dropout.fc=0.1717 seed=1"


def test_a_typed_preset_with_a_change_keeps_the_preset_the_user_named() -> None:
    late = preset("dropout", **{"reg.dropout.schedule": "late"})
    naming = labels.name_configs([late, preset("none")], [["reg=dropout", "reg.dropout.schedule=late"],
                                                         ["reg=none"]])
    assert naming.labels == ["reg=dropout reg.dropout.schedule=late", "reg=none"]
    # unknown overrides: named by the nearest preset, which may be another one
    assert labels.name_configs([late, preset("none")], [None, None]).labels[1] == "reg=none"


def test_unrelated_runs_are_named_by_what_was_typed_for_each() -> None:
    synthetic = preset("none", **{"dataset.name": "synthetic", "trainer.epochs": 3})
    l2 = preset("l2", **{"trainer.epochs": 6, "model.hidden": 32})
    naming = labels.name_configs([synthetic, l2], [["dataset=synthetic", "trainer.epochs=3"],
                                                  ["reg=l2", "trainer.epochs=6", "model.hidden=32"]])
    assert naming.labels == ["dataset=synthetic trainer.epochs=3",
                             "reg=l2 trainer.epochs=6 model.hidden=32"]
    # without the typed overrides every differing key is in every label
    assert labels.name_configs([synthetic, l2], [None, None]).labels[0] == \
        "reg.l2=0.0 trainer.epochs=3 dataset.name=synthetic model.hidden=128"


def test_overrides_typed_alike_everywhere_and_keys_nobody_typed_stay_out() -> None:
    fc0, fc5 = preset("dropout", **{"reg.dropout.fc": 0.0}), preset("dropout")
    naming = labels.name_configs([fc0, fc5], [["reg=dropout", "reg.dropout.fc=0.0", "seed=0"],
                                             ["reg=dropout", "seed=0"]])
    assert naming.labels == ["reg.dropout.fc=0.0", "reg.dropout.fc=0.5"]
    # an older run's config lacks a key: it differs, but nobody typed it
    old = {k: v for k, v in preset("l2").items() if k != "model.hidden"}
    naming = labels.name_configs([old, preset("none")], [["reg=l2"], ["reg=none"]])
    assert naming.labels == ["reg=l2", "reg=none"] and "model.hidden" not in naming.axes


def test_labels_that_would_be_equal_name_the_keys_or_digits_that_tell_them_apart() -> None:
    a, b = preset("dropout"), preset("dropout", **{"model.hidden": 64})
    # reg=dropout was typed for both: the key nobody typed is what tells them apart
    assert labels.name_configs([a, b], [["reg=dropout"], ["reg=dropout"]]).labels == \
        ["model.hidden=128", "model.hidden=64"]
    near = [preset("none", **{"reg.dropout.fc": x}) for x in (0.171670, 0.171674, 0.5)]
    typed = [[f"reg.dropout.fc={x}"] for x in (0.171670, 0.171674, 0.5)]
    assert labels.name_configs(near, typed).labels == \
        ["reg.dropout.fc=0.17167", "reg.dropout.fc=0.171674", "reg.dropout.fc=0.5"]


def test_summarize_over_unrelated_runs_uses_their_typed_overrides(tmp_path: Path) -> None:
    typed_run(tmp_path / "a", 0, ["dataset=synthetic", "trainer.epochs=3"],
              **{"dataset.name": "synthetic", "trainer.epochs": 3})
    typed_run(tmp_path / "b", 0, ["reg=dropout", "reg.dropout.schedule=late", "trainer.epochs=3"],
              **{"reg.dropout.fc": 0.5, "reg.dropout.conv": 0.25, "reg.dropout.schedule": "late",
                 "trainer.epochs": 3})
    comp = compare.compare(runs.find_runs([tmp_path]))
    # trainer.epochs=3 was typed for both: it tells nothing apart
    assert sorted(comp.table["config"]) == ["dataset=synthetic",
                                            "reg=dropout reg.dropout.schedule=late"]
    assert comp.swept == []  # neither is a sweep: no key was varied on purpose


def test_the_axes_a_sweep_varied_key_by_key_are_its_swept_parameters(tmp_path: Path) -> None:
    folder = tmp_path / "sweep"
    for n, (reg, fc) in enumerate([("dropout", 0.0), ("dropout", 0.5), ("none", 0.0)]):
        typed_run(folder / str(n), 0, [f"reg={reg}", f"reg.dropout.fc={fc}", "seed=0"],
                  **({"reg.dropout.conv": 0.25} if reg == "dropout" else {}), **{"reg.dropout.fc": fc})
    (folder / runs.SWEEP_FILE).write_text(json.dumps({"args": [], "jobs": []}))
    comp = compare.compare(runs.find_runs([folder]))
    assert comp.swept == ["reg.dropout.fc"]  # reg.dropout.conv changed only through a preset
    assert set(comp.axes) == {"reg.dropout.conv", "reg.dropout.fc"}


DROPOUT = {"reg.dropout.conv": 0.25, "reg.dropout.fc": 0.5}  # what reg=dropout sets


def test_a_run_retrained_from_its_own_config_is_grouped_and_named_by_what_it_is(
        tmp_path: Path) -> None:
    # `regbench run --config-path RUN_DIR --config-name config trainer.epochs=3` on a dropout
    # run: Hydra keeps only trainer.epochs=3 as typed, but the run is a dropout run
    typed_run(tmp_path / "dropout2", 0, ["reg=dropout", "trainer.epochs=2"],
              **DROPOUT, **{"trainer.epochs": 2})
    typed_run(tmp_path / "again3", 0, ["trainer.epochs=3"], **DROPOUT, **{"trainer.epochs": 3})
    typed_run(tmp_path / "none3", 0, ["trainer.epochs=3"], **{"trainer.epochs": 3})
    comp = compare.compare(runs.find_runs([tmp_path]))
    assert comp.duplicates == [] and list(comp.table["seeds"]) == [1, 1, 1]
    by_path = dict(zip(comp.runs["path"], comp.runs["label"], strict=True))
    again, none = by_path[str(tmp_path / "again3")], by_path[str(tmp_path / "none3")]
    assert "trainer.epochs=3" in again.split() and "reg=dropout" in again.split()
    assert "trainer.epochs=3" in none.split() and "dropout" not in none
    out = CliRunner().invoke(app, ["summarize", str(tmp_path), "--columns", "val_acc"],
                             env={"COLUMNS": "100"}).output
    assert "count as one seed" not in out and again in out and none in out


def test_a_rerun_from_a_dropout_config_is_named_by_its_dropout_beside_typed_presets(
        tmp_path: Path) -> None:
    # as above, but every other run typed its reg preset: only the re-run leaves reg alone,
    # so nothing disagrees with it there; its dropout is named because it is not reg=none
    typed_run(tmp_path / "dropout2", 0, ["reg=dropout", "trainer.epochs=2"],
              **DROPOUT, **{"trainer.epochs": 2})
    typed_run(tmp_path / "again3", 0, ["trainer.epochs=3"], **DROPOUT, **{"trainer.epochs": 3})
    typed_run(tmp_path / "none3", 0, ["reg=none", "trainer.epochs=3"], **{"trainer.epochs": 3})
    comp = compare.compare(runs.find_runs([tmp_path]))
    names = dict(zip(comp.runs["path"], comp.runs["label"], strict=True))
    assert "reg=dropout" in names[str(tmp_path / "again3")].split(), names
    assert "reg=none" in names[str(tmp_path / "none3")].split(), names


def test_runs_on_two_data_roots_are_two_configurations(tmp_path: Path) -> None:
    typed_run(tmp_path / "a", 0, ["dataset=synthetic"], **{"dataset.root": "/data/a"})
    typed_run(tmp_path / "b", 0, ["dataset=synthetic", "dataset.root=/data/b"],
              **{"dataset.root": "/data/b"})
    typed_run(tmp_path / "c", 0, ["dataset=synthetic", "dataset.root=/data/c"],
              **{"dataset.root": "/data/c"})
    comp = compare.compare(runs.find_runs([tmp_path]))
    assert comp.duplicates == [] and len(comp.table) == 3 and "dataset.root" in comp.axes
    names = dict(zip(comp.runs["path"], comp.runs["label"], strict=True))
    assert "dataset.root=/data/b" in names[str(tmp_path / "b")].split()
    assert "dataset.root=/data/a" in names[str(tmp_path / "a")].split()  # typed by nobody


def test_a_preset_and_its_values_typed_as_keys_are_one_configuration(tmp_path: Path) -> None:
    typed_run(tmp_path / "preset0", 0, ["reg=dropout"], **DROPOUT)
    typed_run(tmp_path / "keys1", 1, ["reg.dropout.conv=0.25", "reg.dropout.fc=0.5"], **DROPOUT)
    typed_run(tmp_path / "none0", 0, ["reg=none"])
    comp = compare.compare(runs.find_runs([tmp_path]))
    assert len(comp.table) == 2 and comp.duplicates == []
    assert dict(zip(comp.table["config"], comp.table["seeds"], strict=True))[
        comp.runs.set_index("path").loc[str(tmp_path / "keys1"), "label"]] == 2
    # the same configuration with a seed already counted: a true duplicate, dropped and said
    typed_run(tmp_path / "keys0", 0, ["reg.dropout.conv=0.25", "reg.dropout.fc=0.5"], **DROPOUT)
    comp = compare.compare(runs.find_runs([tmp_path]))
    assert len(comp.duplicates) == 1 and "same configuration and seed" in comp.duplicates[0]
    out = CliRunner().invoke(app, ["summarize", str(tmp_path)], env={"COLUMNS": "80"}).output
    assert "Counted once (true duplicates):" in out and "not counted:" in out


@pytest.mark.slow
def test_the_tutorial_s_config_path_rerun_is_summarized_as_the_dropout_run_it_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from helpers import TINY, cli

    monkeypatch.chdir(tmp_path)
    tiny = [*TINY, "trainer.progress=false"]
    assert cli("run", *tiny, "reg=dropout", "trainer.epochs=1") == 0
    (first,) = (tmp_path / "results" / "default").iterdir()
    assert cli("run", "--config-path", str(first), "--config-name", "config",
               "trainer.epochs=2") == 0
    assert cli("run", *tiny, "trainer.epochs=2") == 0  # no regularization, 2 epochs, seed 0
    assert cli("run", *tiny, "trainer.epochs=2", f"dataset.root={tmp_path / 'other'}") == 0
    capsys.readouterr()
    comp = compare.compare(runs.find_runs([tmp_path / "results"]))
    assert comp.duplicates == [] and len(comp.table) == 4 and set(comp.table["seeds"]) == {1}
    names = dict(zip(comp.runs["path"], comp.runs["label"], strict=True))
    assert "reg=dropout" in names[str(first)].split(), names
    (rerun,) = [n for p, n in names.items() if "reg=dropout" in n.split() and p != str(first)]
    assert "trainer.epochs=2" in rerun.split(), names
    assert cli("summarize", str(tmp_path / "results"), env={"COLUMNS": "80"}) == 0
    assert "count as one seed" not in capsys.readouterr().out


def test_of_two_overrides_on_one_key_the_last_names_the_run() -> None:
    # TINY's trainer.epochs=2, then trainer.epochs=1: the run trained 1 epoch, so 2 was not
    # typed alike for every configuration
    first = preset("dropout", **{"trainer.epochs": 1})
    rerun, plain = preset("dropout", **{"trainer.epochs": 2}), preset("none", **{"trainer.epochs": 2})
    naming = labels.name_configs([first, rerun, plain], [
        ["trainer.epochs=2", "reg=dropout", "trainer.epochs=1"], ["trainer.epochs=2"],
        ["trainer.epochs=2"]])
    assert set(naming.labels[1].split()) == {"trainer.epochs=2", "reg=dropout"}
    assert naming.labels[0] == "reg=dropout trainer.epochs=1"
