"""Population training: members match their sequential runs; the launcher through the CLI."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from helpers import TINY, run_cli
from regbench.store import metrics
from regbench.training import population
from regbench.store import runs, summary
from regbench.training import trackers
from regbench.training import loop as train
from regbench.training import session
from regbench.training.schema import RegbenchConfig

# A member's run equals its sequential run up to float32 rounding: under vmap the
# convolutions run as one batched (grouped) call whose sums are ordered differently, which
# moves losses by ~1e-5 relative after a few epochs (measured: <= 2e-5); 1e-4 leaves room
# for other CPUs while any real difference (a missed penalty, a wrong rate) is far larger.
# The same rounding can flip one image whose two top logits nearly tie, so accuracies may
# differ by one image of the 100-image validation split (0.01); the gap columns are
# differences of these and are not compared.
RTOL, ATOL = 1e-4, 1e-5
LOSSES = ["train_loss", "val_loss", "train_loss_running", "penalty", "lr"]
ACCURACIES, ONE_IMAGE = ["train_acc", "val_acc"], 0.011
TINY_DATA = ["dataset.train_size=500", "trainer.deterministic=true"]


def values(rows: list[metrics.Row], columns: list[str] = LOSSES) -> np.ndarray:
    return np.array([[r[c] for c in columns] for r in rows], dtype=float)


def assert_same_rows(pop: list[metrics.Row], seq: list[metrics.Row]) -> None:
    np.testing.assert_allclose(values(pop), values(seq), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(values(pop, ACCURACIES), values(seq, ACCURACIES), atol=ONE_IMAGE)


def assert_same_run(pop: session.RunResult, seq: session.RunResult) -> None:
    assert pop.status == seq.status
    assert_same_rows(pop.rows, seq.rows)
    for key in ("best_epoch", "stopped_epoch", "kept_epoch", "epochs_run"):
        assert getattr(pop.summary, key) == getattr(seq.summary, key), key
    if seq.summary.test_loss is not None:
        assert pop.summary.test_loss == pytest.approx(seq.summary.test_loss, rel=RTOL)


def population_train(members: list[tuple[RegbenchConfig, Path, bool]]
                     ) -> list[session.RunResult | Exception]:
    """Members trained together by the epoch loop with the population engine."""
    return train.train([train.Member(c, d, r) for c, d, r in members], population.PopulationEngine())


def sequential(cfg: RegbenchConfig, tmp_path: Path) -> session.RunResult:
    return train.run(cfg, runs.make_run_dir(tmp_path / "seq", "t"))


def together(cfgs: list[RegbenchConfig], tmp_path: Path, resume: bool = False,
             dirs: list[Path] | None = None) -> list[session.RunResult]:
    dirs = dirs or [runs.make_run_dir(tmp_path / "pop", "t") for _ in cfgs]
    results = population_train([(c, d, resume) for c, d in zip(cfgs, dirs, strict=True)])
    assert all(isinstance(r, session.RunResult) for r in results), results
    return results  # type: ignore[return-value]


@pytest.mark.slow
def test_a_population_of_one_matches_the_sequential_run(
        make_cfg: Callable[..., RegbenchConfig], tmp_path: Path) -> None:
    cfg = make_cfg(*TINY_DATA, "trainer.epochs=2", "reg.batchnorm=true",
                   "reg.l2=1e-3", "reg.l1=1e-5", "reg.weight_decay=1e-3", "reg.max_norm=3",
                   "reg.label_smoothing=0.1", "optim.schedule=cosine")
    (pop,) = together([cfg], tmp_path)
    assert_same_run(pop, sequential(cfg, tmp_path))
    files = {p.name for p in pop.run_dir.iterdir()}
    assert {runs.CONFIG_FILE, runs.METRICS_FILE, runs.SUMMARY_FILE, runs.CHECKPOINT_FILE} <= files


@pytest.mark.slow
def test_members_without_dropout_match_their_sequential_runs(
        make_cfg: Callable[..., RegbenchConfig], tmp_path: Path) -> None:
    base = [*TINY_DATA, "trainer.epochs=3", "optim=sgd"]  # SGD at lr 1e6 overflows at once
    cfgs = [make_cfg(*base, "seed=1", "optim.lr=0.02", "reg.l2=1e-3"),
            # stops after epoch 2 and keeps epoch 1's weights; the others go on
            make_cfg(*base, "seed=2", "reg.early_stopping.enabled=true",
                     "reg.early_stopping.patience=1", "reg.early_stopping.min_delta=100"),
            make_cfg(*base, "seed=3", "optim.lr=1e6")]  # diverges alone
    results = together(cfgs, tmp_path)
    assert [r.status for r in results] == ["completed", "early_stopped", "diverged"]
    for pop, cfg in zip(results, cfgs, strict=True):
        assert_same_run(pop, sequential(cfg, tmp_path))


@pytest.mark.slow
def test_dropout_members_agree_with_sequential_runs_statistically(
        make_cfg: Callable[..., RegbenchConfig], tmp_path: Path) -> None:
    """The in-epoch loss (dropout active) over 8 seeds: population and sequential are one
    distribution (Welch's t-test), while the same test tells the population's dropout
    members from its members without dropout. (Each member's own rate and masks are
    measured directly in test_population_masks.py.)"""
    seeds = range(8)
    one = ["trainer.epochs=1", "trainer.batch_size=16", "dataset.train_size=300",
           "trainer.train_eval_size=100", "trainer.checkpoint=false"]
    cfgs = [make_cfg(*one, "reg.dropout.input=0.4", "reg.dropout.fc=0.5", f"seed={s}")
            for s in seeds]
    pop = [r.rows[0].train_loss_running for r in together(cfgs, tmp_path)]
    seq = [sequential(c, tmp_path).rows[0].train_loss_running for c in cfgs]
    plain = [r.rows[0].train_loss_running
             for r in together([make_cfg(*one, f"seed={s}") for s in seeds], tmp_path)]
    assert stats.ttest_ind(pop, seq, equal_var=False).pvalue > 0.01
    assert stats.ttest_ind(plain, pop, equal_var=False).pvalue < 0.01  # the test has power


@pytest.mark.slow
def test_a_member_resumes_from_its_checkpoint(make_cfg: Callable[..., RegbenchConfig],
                                             tmp_path: Path) -> None:
    def cfgs(epochs: int) -> list[RegbenchConfig]:
        return [make_cfg(*TINY_DATA, f"trainer.epochs={epochs}", "reg=dropout", f"seed={s}")
                for s in (0, 1)]

    full = together(cfgs(2), tmp_path)
    dirs = [runs.make_run_dir(tmp_path / "part", "t") for _ in range(2)]
    together(cfgs(1)[:1], tmp_path, dirs=dirs[:1])  # member 0 stops after epoch 1
    # member 0 resumes at epoch 2 while member 1 starts at epoch 1, in one population
    resumed = population_train([(cfgs(2)[0], dirs[0], True), (cfgs(2)[1], dirs[1], False)])
    for res, ref in zip(resumed, full, strict=True):
        assert isinstance(res, session.RunResult)
        assert_same_run(res, ref)
    assert len(metrics.read_rows(dirs[0] / runs.METRICS_FILE)) == 2


@pytest.mark.slow
def test_groups_share_what_they_must_and_split_at_max_members(
        make_cfg: Callable[..., RegbenchConfig]) -> None:
    cfgs = [make_cfg(f"seed={s}", f"reg.dropout.fc={p}", "reg.l2=1e-3") for s in range(3)
            for p in (0.0, 0.5)]
    cfgs.append(make_cfg("reg.batchnorm=true"))  # a different model: its own population
    assert population.split_groups(cfgs, 4) == [[0, 1, 2, 3], [4, 5], [6]]
    assert population.split_groups(cfgs, 24) == [[0, 1, 2, 3, 4, 5], [6]]


@pytest.mark.slow
def test_a_population_sweep_summarizes_like_the_sequential_sweep(tmp_path: Path) -> None:
    grid = [*TINY, "trainer.epochs=1", "reg.dropout.fc=0.0,0.5", "seed=0,1"]
    folders = {}
    for name, extra in (("seq", []), ("pop", ["hydra/launcher=population",
                                              "hydra.launcher.max_members=3"])):
        (tmp_path / name).mkdir()
        proc = run_cli("sweep", *grid, *extra, cwd=tmp_path / name)
        assert proc.returncode == 0, proc.stderr
        (folders[name],) = (tmp_path / name / "results" / "default" / "sweeps").iterdir()
    assert "[4/4] reg.dropout.fc=0.5 seed=1: completed" in proc.stdout
    for job in range(4):
        seq, pop = folders["seq"] / str(job), folders["pop"] / str(job)
        assert (seq / runs.CONFIG_FILE).read_text() == (pop / runs.CONFIG_FILE).read_text()
        assert set(json.loads((seq / runs.SUMMARY_FILE).read_text())) == \
            set(json.loads((pop / runs.SUMMARY_FILE).read_text()))
        assert summary.status(pop) == "completed"
    tables = {n: (f / "summary.csv").read_text().splitlines() for n, f in folders.items()}
    assert tables["pop"][0] == tables["seq"][0]
    key = [line.split(",")[0] for line in tables["seq"][1:]]
    assert sorted(line.split(",")[0] for line in tables["pop"][1:]) == sorted(key)
    # seed 0 without dropout trains exactly as its sequential twin (within float rounding)
    assert_same_rows(metrics.read_rows(folders["pop"] / "0" / runs.METRICS_FILE),
                     metrics.read_rows(folders["seq"] / "0" / runs.METRICS_FILE))


def test_a_bad_max_members_is_one_line_before_any_job() -> None:
    from regbench.launch import sweep
    from regbench.errors import ConfigError

    with pytest.raises(ConfigError, match="hydra.launcher.max_members='0' is not allowed"):
        sweep.check([*TINY, "seed=0,1", "hydra/launcher=population",
                     "hydra.launcher.max_members=0"], [])


def test_members_batches_gathered_at_once_are_their_sequential_batches() -> None:
    import torch

    from regbench.data import batching

    split = batching.Split(torch.randint(0, 256, (21, 1, 4, 4), dtype=torch.uint8),
                           torch.arange(21))
    kw = {"mean": torch.tensor([0.5]), "std": torch.tensor([0.25])}
    seeds = (3, 4, 5)
    together = list(batching.member_batches(
        split, 10, generators=[torch.Generator().manual_seed(s) for s in seeds], **kw))
    for m, seed in enumerate(seeds):
        alone = list(batching.batches(split, 10, shuffle=True,
                                      generator=torch.Generator().manual_seed(seed), **kw))
        assert len(alone) == len(together) == 2  # the 21st image waits for the next epoch
        for (x, y), (xs, ys) in zip(alone, together, strict=True):
            assert torch.equal(xs[m], x) and torch.equal(ys[m], y)


def test_a_gpu_sweep_trains_as_populations_unless_a_launcher_is_chosen() -> None:
    from regbench.launch import sweep

    grid = ["reg.dropout.fc=0.0,0.5", "seed=0,1"]
    assert sweep.default_launcher(grid, "basic", "cuda") == ["hydra/launcher=population"]
    assert sweep.default_launcher(grid, "basic", "cpu") == []  # slower there; see the README
    assert sweep.default_launcher([*grid, "hydra/launcher=joblib"], "basic", "cuda") == []
    assert sweep.default_launcher(grid, "optuna", "cuda") == []


@pytest.mark.slow
def test_members_with_equal_optimizers_step_as_one_and_keep_their_own_states(
        make_cfg: Callable[..., RegbenchConfig], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    built: list[object] = []
    original = population.SharedOptimizer.build

    def record(*args: object) -> object:
        built.append(original(*args))  # type: ignore[arg-type]
        return built[-1]

    monkeypatch.setattr(population.SharedOptimizer, "build", record)
    base = [*TINY_DATA, "trainer.epochs=2", "optim=adamw", "reg.weight_decay=1e-2",
            "optim.schedule=step", "optim.step_size=1", "reg.max_norm=2"]
    cfgs = [make_cfg(*base, f"seed={s}") for s in (1, 2)]
    results = together(cfgs, tmp_path)
    assert built and all(b is not None for b in built)  # one optimizer stepped both members
    for res, cfg in zip(results, cfgs, strict=True):
        assert_same_run(res, sequential(cfg, tmp_path))
        state = torch.load(res.run_dir / runs.CHECKPOINT_FILE, weights_only=True)["optimizer"]
        shapes = [tuple(s["exp_avg"].shape) for s in state["state"].values()]
        model = torch.load(res.run_dir / runs.CHECKPOINT_FILE, weights_only=True)["model"]
        assert shapes == [tuple(v.shape) for k, v in model.items() if "running" not in k
                          and "num_batches" not in k]
    built.clear()
    lr_grid = [make_cfg(*base, "seed=1", f"optim.lr={lr}") for lr in (1e-3, 2e-3)]
    together(lr_grid, tmp_path)
    assert built and all(b is None for b in built)  # different rates: each steps its own


@pytest.mark.slow
def test_the_gpu_bf16_path_trains_a_population_on_the_cpu_too(
        make_cfg: Callable[..., RegbenchConfig], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from regbench.training import device

    monkeypatch.setattr(device, "BF16_AUTOCAST", {"cpu"})  # as on CUDA: bf16 autocast
    base = [*TINY_DATA, "trainer.epochs=2", "reg.batchnorm=true"]
    cfgs = [make_cfg(*base, "seed=1"), make_cfg(*base, "seed=2", "reg.dropout.fc=0.5")]
    results = together(cfgs, tmp_path)
    assert [r.status for r in results] == ["completed", "completed"]
    seq = sequential(cfgs[0], tmp_path)
    # bf16 keeps 8 bits of mantissa: a batched and a plain convolution round differently
    # (measured: losses within 0.7% after 2 epochs)
    np.testing.assert_allclose(values(results[0].rows, ["train_loss", "val_loss"]),
                               values(seq.rows, ["train_loss", "val_loss"]), rtol=0.02)


@pytest.mark.slow
def test_a_compiled_population_trains_uncompiled_with_one_line(
        make_cfg: Callable[..., RegbenchConfig], tmp_path: Path,
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from regbench.training import device

    compiled: list[object] = []
    monkeypatch.setattr(device, "compile_forward", compiled.append)
    cfgs = [make_cfg(*TINY_DATA, "trainer.epochs=1", "trainer.compile=true", f"seed={s}")
            for s in (0, 1)]
    results = together(cfgs, tmp_path)
    assert [r.status for r in results] == ["completed", "completed"] and not compiled
    said = [r for r in caplog.records if "trainer.compile=true: a population trains" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.WARNING


@pytest.mark.slow
def test_each_member_run_log_holds_its_own_run_only(tmp_path: Path) -> None:
    grid = [*TINY, "trainer.epochs=2", "reg.dropout.fc=0.0,0.5", "hydra/launcher=population"]
    proc = run_cli("sweep", *grid, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (folder,) = (tmp_path / "results" / "default" / "sweeps").iterdir()
    logs = {job: (folder / str(job) / runs.LOG_FILE).read_text() for job in (0, 1)}
    for job, text in logs.items():
        assert text.count("model: ") == 1, text
        other = folder / str(1 - job)
        assert str(other) not in text
    # member 1 has FC dropout, member 0 none: each dump shows its own model
    assert "Dropout(p=0.5" in logs[1] and "Dropout(p=0.5" not in logs[0]


@pytest.mark.slow
def test_each_population_member_gets_its_own_tracker_run(
        make_cfg: Callable[..., RegbenchConfig], tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert population.unsupported(make_cfg("logger=tensorboard")) is None
    cfgs = [make_cfg(*TINY_DATA, "trainer.epochs=2", "logger=tensorboard", f"seed={s}")
            for s in (0, 1)]
    dirs = [runs.make_run_dir(tmp_path, "t") for _ in cfgs]
    warnings: list[str] = []
    members = [train.Member(c, d, callbacks=trackers.build(c, d, warnings.append))
               for c, d in zip(cfgs, dirs, strict=True)]
    results = train.train(members, population.PopulationEngine())
    assert [r.status for r in results] == ["completed", "completed"] and not warnings  # type: ignore[union-attr]
    for d in dirs:
        events = EventAccumulator(str(d / "tensorboard"), size_guidance={"scalars": 0})
        events.Reload()
        own = [r.val_acc for r in metrics.read_rows(d / runs.METRICS_FILE)]
        assert [e.value for e in events.Scalars("val_acc")] == pytest.approx(own)
