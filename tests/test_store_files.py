"""Every file a run or sweep leaves has one owner in regbench/store/: the checkpoint, the
configuration, job lists and a confirmation's files round-trip through their typed readers
and writers, a damaged one is one error naming the file, and no module outside the store
reads or writes these formats itself."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch

import regbench
from regbench.errors import RunDirError
from regbench.store import checkpoint, confirm_record, job_lists, run_config, runs
from regbench.store.checkpoint import Checkpoint
from regbench.store.confirm_record import ConfirmRecord

PACKAGE = Path(regbench.__file__).parent


def a_checkpoint(epoch: int = 3) -> Checkpoint:
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    return Checkpoint(epoch=epoch, model=model.state_dict(), optimizer=opt.state_dict(),
                      scheduler={"epochs_done": epoch}, early_stopping={"best": 0.5},
                      rng_cpu=torch.get_rng_state(), rng_generator=torch.Generator().get_state(),
                      rng_cuda=[], extra={"wall_time_s": 1.5, "train_images": 300})


def test_a_checkpoint_round_trips_and_a_run_without_one_has_none(tmp_path: Path) -> None:
    assert checkpoint.read(tmp_path, torch.device("cpu")) is None
    written = a_checkpoint()
    checkpoint.write(tmp_path, written)
    read = checkpoint.read(tmp_path, torch.device("cpu"))
    assert read is not None and read.epoch == 3 and read.extra == written.extra
    assert all(torch.equal(read.model[k], v) for k, v in written.model.items())
    assert torch.equal(read.rng_cpu, written.rng_cpu)
    momentum = read.optimizer["state"][0]["momentum_buffer"]
    assert torch.equal(momentum, written.optimizer["state"][0]["momentum_buffer"])
    assert not list(tmp_path.glob("*.tmp*"))  # written through a temporary file, renamed


def test_a_damaged_or_incomplete_checkpoint_is_one_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / runs.CHECKPOINT_FILE).write_bytes(b"not a checkpoint")
    with pytest.raises(RunDirError, match=r"checkpoint\.pt: cannot be loaded .*delete it"):
        checkpoint.read(tmp_path, torch.device("cpu"))
    torch.save({"epoch": 1, "model": {}}, tmp_path / runs.CHECKPOINT_FILE)  # keys missing
    with pytest.raises(RunDirError, match=r"cannot be loaded \(KeyError\)"):
        checkpoint.read(tmp_path, torch.device("cpu"))


def test_config_yaml_is_loaded_whole_and_a_damaged_one_named(tmp_path: Path) -> None:
    from regbench.training.schema import RegbenchConfig

    run_config.write(tmp_path, RegbenchConfig(seed=5))
    assert run_config.exists(tmp_path)
    cfg = run_config.load(tmp_path)
    assert cfg.seed == 5 and run_config.read(tmp_path)["seed"] == 5
    (tmp_path / runs.CONFIG_FILE).write_text("- a list\n- not a mapping\n")
    with pytest.raises(RunDirError, match=r"config\.yaml: unreadable \(a YAML mapping"):
        run_config.load(tmp_path)
    (tmp_path / runs.CONFIG_FILE).write_text("seed: [unclosed\n")
    with pytest.raises(RunDirError, match=r"config\.yaml: unreadable"):
        run_config.load(tmp_path)


def test_a_job_list_round_trips_and_a_damaged_one_is_named(tmp_path: Path) -> None:
    jobs = [["reg.dropout.fc=0.5", "seed=1"], ["reg=none", "'hydra.x=a b'"]]
    path = tmp_path / "round1.json"
    job_lists.write(path, jobs)
    assert job_lists.read(path) == jobs
    path.write_text('{"jobs": 1}')
    with pytest.raises(RunDirError, match="round1.json: not a job list"):
        job_lists.read(path)
    path.write_text("[[")
    with pytest.raises(RunDirError, match="round1.json: unreadable job list"):
        job_lists.read(path)


def test_a_confirmation_record_round_trips_and_a_damaged_one_is_named(tmp_path: Path) -> None:
    record = ConfirmRecord(search="/s/1", top=2, seeds=5, baseline=["reg=none"],
                           candidates=[{"trial": 3, "values": ["reg.dropout.fc=0.4"], "score": 0.9}])
    confirm_record.write(tmp_path, record)
    assert confirm_record.is_confirmation(tmp_path)
    assert confirm_record.read(tmp_path) == record
    data = json.loads((tmp_path / confirm_record.FILE).read_text())
    del data["seeds"]
    (tmp_path / confirm_record.FILE).write_text(json.dumps(data))
    with pytest.raises(RunDirError, match=r"confirm\.json: unreadable \(KeyError"):
        confirm_record.read(tmp_path)
    path = confirm_record.write_table(tmp_path, [{"trial": 3, "confirmed": 0.91}])
    assert path.read_text().splitlines() == ["trial,confirmed", "3,0.91"]


# What reads or writes a run's or a sweep's data formats; pages and figures (report.html,
# atlas pages, PNGs) are presentation's, and the data sets' own files are data's.
FORMAT_CALLS = {("torch", "save"), ("torch", "load"), ("json", "dump"), ("OmegaConf", "save"),
                ("runs", "write_atomic"), ("runs", "write_json"), ("runs", "atomic_file")}
FORMAT_METHODS = {"to_csv"}
OUTSIDE_THE_STORE = {  # module: the calls it may make, and why
    "present/report.py": {("runs", "write_atomic")},  # report.html, a page
    "present/atlas_view.py": {("runs", "write_atomic")},  # atlas.md and atlas.html, pages
}


def format_calls(path: Path) -> set[tuple[str, str]]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else ""
            if (name, node.func.attr) in FORMAT_CALLS:
                found.add((name, node.func.attr))
            elif node.func.attr in FORMAT_METHODS and (node.args or node.keywords and any(
                    k.arg == "path_or_buf" for k in node.keywords)):  # to a file, not a string
                found.add(("", node.func.attr))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in {"write_atomic", "write_json", "atomic_file"}:
            found.add(("runs", node.func.id))
    return found


def test_only_the_store_reads_and_writes_the_files_runs_and_sweeps_leave() -> None:
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("store/"):
            continue
        calls = format_calls(path) - OUTSIDE_THE_STORE.get(rel, set())
        if calls:
            offenders[rel] = sorted(calls)
    assert not offenders, f"file formats read or written outside regbench/store/: {offenders}"


def test_the_ownership_check_sees_a_format_written_elsewhere(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import torch, json\ndef f(x, p):\n    torch.save(x, p)\n"
                      "    x.to_csv(p)\n    text = x.to_csv(index=False)\n    write_atomic(p, 'x')\n")
    assert format_calls(module) == {("torch", "save"), ("", "to_csv"), ("runs", "write_atomic")}
