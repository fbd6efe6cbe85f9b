"""Experiment trackers: TensorBoard and MLflow read back with their own readers; failures cost
one warning line and never the run."""

from __future__ import annotations

import csv
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from regbench.training import trackers
from regbench.training import loop as train
from regbench.training import session
from regbench.training.schema import RegbenchConfig
from regbench.store.metrics import COLUMNS


def train_with_trackers(cfg: RegbenchConfig, run_dir: Path, sweep_id: str | None = None
                        ) -> tuple[session.RunResult, list[str]]:
    warnings: list[str] = []
    run_dir.mkdir(parents=True)
    found = trackers.build(cfg, run_dir, warnings.append, sweep_id)
    return train.run(cfg, run_dir, callbacks=list(found)), warnings


def csv_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_tensorboard_and_mlflow_hold_every_column_of_every_epoch(
        tmp_path: Path, make_cfg: Callable[..., RegbenchConfig]) -> None:
    from mlflow import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    cfg = make_cfg("logger=[tensorboard,mlflow]", f"logger.mlflow.tracking_uri={uri}",
                   "logger.mlflow.experiment_name=tracked", "reg.dropout.fc=0.25")
    run_dir = tmp_path / "sweep" / "0"
    result, warnings = train_with_trackers(cfg, run_dir, sweep_id="sweep")
    assert result.status == "completed" and warnings == []
    rows = csv_rows(run_dir)
    assert len(rows) == 2

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    for column in COLUMNS[1:]:
        logged = events.Scalars(column)
        assert [e.step for e in logged] == [1, 2], column
        assert [e.value for e in logged] == pytest.approx([float(r[column]) for r in rows],
                                                          rel=1e-6), column
    assert events.Scalars("summary/test_acc")[0].value == pytest.approx(result.summary.test_acc)
    assert events.PluginTagToContent("hparams")  # the session the HParams tab compares

    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("tracked").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["reg.dropout.fc"] == "0.25" and run.data.params["seed"] == "0"
    assert run.data.params["model.channels"] == "[8, 16]"
    assert run.data.tags["regbench.status"] == "completed"
    assert run.data.tags["regbench.sweep_id"] == "sweep"
    for column in COLUMNS[1:]:
        history = client.get_metric_history(run.info.run_id, column)
        assert [m.step for m in history] == [1, 2], column
        assert [m.value for m in history] == pytest.approx([float(r[column]) for r in rows]), column
    assert run.data.metrics["test_acc"] == pytest.approx(result.summary.test_acc)
    assert run.data.metrics["best_val_acc"] == pytest.approx(result.summary.best.val_acc)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"metrics.csv", "summary.json", "config.yaml", "checkpoint.pt"} <= artifacts
    stored = Path(client.download_artifacts(run.info.run_id, "metrics.csv", str(tmp_path)))
    assert stored.read_text() == (run_dir / "metrics.csv").read_text()


@pytest.mark.slow
def test_an_unreachable_tracking_server_costs_one_warning_and_never_the_run(
        tmp_path: Path, make_cfg: Callable[..., RegbenchConfig]) -> None:
    with socket.socket() as reserved:  # a port of this machine held and never listened on:
        reserved.bind(("127.0.0.1", 0))  # no server can be there, so every connection is refused
        uri = f"http://127.0.0.1:{reserved.getsockname()[1]}"
        cfg = make_cfg("logger=mlflow", f"logger.mlflow.tracking_uri={uri}")
        run_dir = tmp_path / "run"
        result, warnings = train_with_trackers(cfg, run_dir)
    assert result.status == "completed" and len(csv_rows(run_dir)) == 2
    assert (run_dir / "summary.json").exists() and (run_dir / "checkpoint.pt").exists()
    (line,) = warnings
    assert line.startswith(f"logger mlflow stopped, logger.mlflow.tracking_uri={uri}")
    assert "\n" not in line


@pytest.mark.slow
def test_a_tracker_failing_mid_run_warns_once_and_the_run_completes(
        tmp_path: Path, make_cfg: Callable[..., RegbenchConfig], monkeypatch: pytest.MonkeyPatch) -> None:
    def server_gone(self: trackers.Tracker, *args: object) -> None:
        raise ConnectionError("connection refused")

    monkeypatch.setattr(trackers.TensorBoardTracker, "epoch", server_gone)
    cfg = make_cfg("logger=tensorboard")
    result, warnings = train_with_trackers(cfg, tmp_path / "run")
    assert result.status == "completed" and len(csv_rows(tmp_path / "run")) == 2
    assert warnings == [f"logger tensorboard stopped, logger.tensorboard.log_dir="
                        f"{tmp_path / 'run' / 'tensorboard'}: ConnectionError: connection refused; "
                        "the run goes on and its own files are complete"]


def test_a_missing_package_names_the_extra_to_install(
        tmp_path: Path, make_cfg: Callable[..., RegbenchConfig], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trackers, "_installed", lambda package: package != "mlflow")
    warnings: list[str] = []
    built = trackers.build(make_cfg("logger=tensorboard_mlflow"), tmp_path, warnings.append)
    assert [t.name for t in built] == ["tensorboard"]
    assert warnings == ["logger mlflow is off: the mlflow package is not installed "
                        "(pip install 'regbench[track]'); the run goes on without it"]


def test_trackers_are_off_by_default_and_do_not_split_a_comparison(
        make_cfg: Callable[..., RegbenchConfig], tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from regbench.study import compare
    from regbench.store import runs

    assert trackers.build(make_cfg(), tmp_path, print) == []
    best = {"val_acc": 0.5, "train_acc": 0.6, "gap_acc": 0.1, "gap_loss": 0.2}
    for seed, logger in ((0, "none"), (1, "mlflow")):
        d = tmp_path / str(seed)
        d.mkdir()
        cfg = make_cfg(f"seed={seed}", f"logger={logger}")
        runs.write_atomic(d / "config.yaml", OmegaConf.to_yaml(OmegaConf.structured(cfg)))
        runs.write_json(d / "summary.json", {"status": "completed", "best": best, "best_epoch": 1})
        (d / "metrics.csv").write_text(",".join(COLUMNS) + "\n")
    comp = compare.compare([tmp_path / "0", tmp_path / "1"])
    assert list(comp.table["seeds"]) == [2]  # one configuration, whether tracked or not
