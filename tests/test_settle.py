"""`regbench sweep --settle` and the equivalence verdict, as a user meets them.

The sequential verdicts of a settle folder are recomputed here from the runs' numbers with
scipy (t quantiles at the hand-computed Pocock shares); a real settle on synthetic data is
interrupted, resumed and its rounds recounted from the run folders.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from scipy import stats as sps
from typer.testing import CliRunner

from helpers import TINY
from regbench.cli import app
from regbench.training.schema import RegbenchConfig
from regbench.errors import ConfigError
from regbench.launch import settle, sweep
from regbench.store import metrics, settle_record
from regbench.store.settle_record import Round, SettleRecord
from regbench.study import equivalence

ALPHA = 0.05


def fake_run(folder: Path, seed: int, fc: float, val_acc: float, gap_last: float) -> Path:
    """A finished two-epoch run of reg.dropout.fc=fc with these val accuracy and last gap."""
    folder.mkdir(parents=True)
    cfg = OmegaConf.structured(RegbenchConfig)
    OmegaConf.update(cfg, "seed", seed)
    OmegaConf.update(cfg, "reg.dropout.fc", fc)
    (folder / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    rows = [metrics.Row(epoch=1, train_loss=1.0, train_acc=0.5, val_loss=0.9, val_acc=val_acc - 0.1),
            metrics.Row(epoch=2, train_loss=0.4, train_acc=val_acc + gap_last, val_loss=0.5,
                        val_acc=val_acc)]
    log = metrics.MetricsLog(folder / "metrics.csv")
    for row in rows:
        log.append(row)
    summary = {"status": "completed", "epochs_run": 2, "best_epoch": 2, "seed": seed,
               "best": metrics.row_dict(rows[1]), "last": metrics.row_dict(rows[1]),
               "test_acc": val_acc, "wall_time_s": 1.0}
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


# A settle of 3 configurations, 5 then 10 seeds: fc=0.3 and the baseline ran round 2.
RATES = (0.0, 0.3, 0.6)
rng = np.random.default_rng(11)
VAL = {fc: 0.90 + 0.02 * (fc == 0.3) + rng.normal(0, 0.004, 10) for fc in RATES}
GAP = {fc: 0.08 - 0.05 * fc + rng.normal(0, 0.002, 10) for fc in RATES}


@pytest.fixture
def settle_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "results" / "default" / "sweeps" / "20260101-000000-abcdef"
    configs = [[f"reg.dropout.fc={fc}"] for fc in RATES]
    plan = sweep.SweepPlan(args=["reg.dropout.fc=0.0,0.3,0.6", "settle.enabled=true"],
                           axes=["reg.dropout.fc", "seed"], sweeper="settle")
    record = SettleRecord(metrics=["val_acc", "gap_acc_last"], margins=equivalence.margins(),
                          alpha=ALPHA, spending="pocock", looks=[5, 10, 20], max_time_s=None,
                          configs=configs, labels=[c[0] for c in configs], baseline=0)
    for number, (low, high, used) in enumerate([(0, 5, [0, 1, 2]), (5, 10, [0, 1])], start=1):
        jobs = []
        for c in used:
            start = len(plan.jobs)
            for seed in range(low, high):
                fc = RATES[c]
                fake_run(folder / str(len(plan.jobs)), seed, fc, VAL[fc][seed], GAP[fc][seed])
                plan.jobs.append([*configs[c], f"seed={seed}"])
            jobs.append(list(range(start, len(plan.jobs))))
        record.rounds.append(Round(number, high, used, jobs, 0.0, wall_time_s=10.0, undecided=1))
    sweep.write_plan(folder, plan)
    settle_record.write(folder, record)
    return folder


def pocock_share(n_prev: int, n: int, alpha_each: float, n_max: int) -> float:
    """alpha(t) - alpha(t_prev) for alpha(t) = alpha ln(1 + (e - 1) t), by hand."""
    def a(m: int) -> float:
        return alpha_each * math.log(1 + (math.e - 1) * m / n_max)
    return a(n) - a(n_prev)


@pytest.mark.slow
def test_a_settle_folder_is_judged_by_its_sequential_intervals(settle_dir: Path) -> None:
    result = CliRunner().invoke(app, ["summarize", str(settle_dir), "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["comparisons"] == 2 and "sequential" in out["method"]
    rows = {r["config"]: r for r in out["configurations"]}
    alpha_each = ALPHA / 2
    for fc, looks in ((0.3, [5, 10]), (0.6, [5])):  # fc=0.6 stopped after round 1
        row = rows[f"reg.dropout.fc={fc}"]
        for metric, values in (("val_acc", VAL), ("gap_acc_last", GAP)):
            n = looks[-1]
            share = pocock_share(looks[-2] if len(looks) > 1 else 0, n, alpha_each, 20)
            d = values[fc][:n] - values[0.0][:n]  # paired by seed
            low, high = sps.t.interval(1 - share, n - 1, loc=d.mean(), scale=sps.sem(d))
            assert (row[f"d_{metric}_low"], row[f"d_{metric}_high"]) == pytest.approx((low, high))
            expected = equivalence.verdict(low, high, 0.005)
            assert row[f"{metric}_verdict"] == expected
            assert row[f"{metric}_established"] == (expected == "established")
    assert rows["reg.dropout.fc=0.3"]["seeds"] == 10 and rows["reg.dropout.fc=0.6"]["seeds"] == 5
    assert rows["reg.dropout.fc=0.3"]["val_acc_verdict"] == "established"  # +2 points, sd 0.6


@pytest.mark.slow
def test_a_settle_folder_refuses_another_baseline_and_no_adjust(settle_dir: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["summarize", str(settle_dir), "--baseline", "reg.dropout.fc=0.3"])
    assert isinstance(result.exception, ConfigError) and "planned its seeds for" in str(result.exception)
    result = runner.invoke(app, ["summarize", str(settle_dir), "--no-adjust"])
    assert isinstance(result.exception, ConfigError)


@pytest.mark.slow
def test_the_settle_table_and_report_name_the_method_and_show_the_rounds(settle_dir: Path,
                                                                         tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["summarize", str(settle_dir)], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "Lan & DeMets 1983" in text and "Pocock-type" in text and "Bonferroni" in text
    assert "established" in text
    out = tmp_path / "report.md"
    assert CliRunner().invoke(app, ["report", str(settle_dir), "--format", "markdown",
                                    "--out", str(out)]).exit_code == 0
    page = out.read_text()
    assert "settle.png" in page and "2 rounds" in page
    assert (settle_dir / "settle.png").stat().st_size > 10_000


@pytest.mark.slow
def test_summarize_margin_gives_the_equivalent_verdict(tmp_path: Path) -> None:
    # paired differences of +-0.1 points around +0.01: inside a 1-point margin, not inside 0.05
    gen = np.random.default_rng(2)
    base = 0.9 + gen.normal(0, 0.01, 12)
    for seed in range(12):
        fake_run(tmp_path / "g" / f"a{seed}", seed, 0.0, base[seed], 0.05)
        fake_run(tmp_path / "g" / f"b{seed}", seed, 0.5, base[seed] + 0.001 * (-1) ** seed + 0.0001,
                 0.05)
    runner = CliRunner()
    wide = json.loads(runner.invoke(app, ["summarize", str(tmp_path / "g"), "--format", "json",
                                          "--margin", "1"]).stdout)
    row = next(r for r in wide["configurations"] if not r["baseline"])
    assert row["val_acc_verdict"] == "equivalent" and row["val_acc_equivalent"] is True
    assert wide["margins_pts"]["val_acc"] == 1
    narrow = json.loads(runner.invoke(app, ["summarize", str(tmp_path / "g"), "--format", "json",
                                            "--margin", "0.05"]).stdout)
    row = next(r for r in narrow["configurations"] if not r["baseline"])
    assert row["val_acc_verdict"] == "undecided" and row["val_acc_equivalent"] is False
    table = runner.invoke(app, ["summarize", str(tmp_path / "g"), "--margin", "1"]).stdout
    assert "equivalent" in table
    bad = runner.invoke(app, ["summarize", str(tmp_path / "g"), "--margin", "-1"])
    assert isinstance(bad.exception, ConfigError) and "--margin" in str(bad.exception)


def test_a_round_gives_the_baseline_every_seed_and_lists_jobs_by_configuration(tmp_path: Path) -> None:
    record = SettleRecord(metrics=["val_acc"], margins={}, alpha=ALPHA, spending="pocock",
                          looks=[5, 10], max_time_s=None, configs=[["a=1"], ["a=2"], ["a=3"]],
                          labels=["a=1", "a=2", "a=3"], baseline=1)
    plan = sweep.SweepPlan(args=[], sweeper="settle")
    settle.plan_round(tmp_path, plan, record, [0, 1, 2])
    settle.plan_round(tmp_path, plan, record, [2])  # only a=3 is undecided
    second = record.rounds[1]
    assert second.configs == [1, 2] and second.seeds == 10
    assert [plan.jobs[j] for j in second.jobs[0]] == [["a=2", f"seed={s}"] for s in range(5, 10)]
    assert sweep.read_plan(tmp_path).jobs == plan.jobs
    assert settle_record.read(tmp_path).rounds == record.rounds
    assert record.config_of_job()[second.jobs[1][0]] == 2
    assert settle.next_status(record, Round(2, 10, [1], [[]], 0.0, 1.0, undecided=1)) == "out of seeds"
    assert settle.next_status(record, Round(1, 5, [1], [[]], 0.0, 1.0, undecided=0)) == "settled"
    record.max_time_s, record.rounds[0].wall_time_s = 60.0, 59.0
    assert settle.next_status(record, record.rounds[0]) == "running"  # a minute not yet spent
    record.rounds[0].wall_time_s = 61.0
    assert settle.next_status(record, record.rounds[0]) == "out of time"


@pytest.mark.slow
@pytest.mark.parametrize("extra,words", [
    (["settle.start_seeds=1"], "settle.start_seeds=1 is not allowed"),
    (["settle.metrics=[val_loss]"], "settle.metrics"),
    (["settle.spending=linear"], "settle.spending='linear' is not allowed"),
    (["--max-time", "soon"], "--max-time 'soon' is not allowed"),
])
def test_bad_settle_settings_stop_before_anything_runs(extra: list[str], words: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["sweep", "--settle", *TINY, "reg.dropout.fc=0.0,0.5", *extra])
    assert isinstance(result.exception, ConfigError), result.output
    assert words in str(result.exception)
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_a_settle_needs_two_configurations_and_budgets_need_a_settle(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    one = CliRunner().invoke(app, ["sweep", "--settle", *TINY, "reg.dropout.fc=0.5"])
    assert isinstance(one.exception, ConfigError) and "at least two" in str(one.exception)
    budget = CliRunner().invoke(app, ["sweep", "--max-seeds", "10", *TINY, "reg.dropout.fc=0.0,0.5"])
    assert isinstance(budget.exception, ConfigError) and "add --settle" in str(budget.exception)
    assert not (tmp_path / "results").exists()


def test_durations_for_max_time() -> None:
    assert settle.seconds("900") == 900 and settle.seconds("15m") == 900
    assert settle.seconds("1.5h") == 5400
    assert settle.cli_overrides(True, 12, "2m") == ["settle.enabled=true", "settle.max_seeds=12",
                                                    "settle.max_time_s=120.0"]


def test_the_flagship_preset_is_a_settle_of_the_dropout_grid() -> None:
    from regbench.launch.composition import compose

    jobs, _ = sweep.expand(["experiment=dropout_settle"])
    assert [j for j in jobs if "seed" in " ".join(j)] == []  # the settle chooses the seeds
    assert sorted({o for j in jobs for o in j if o.startswith("reg.dropout.fc")}) == [
        f"reg.dropout.fc={r}" for r in ("0.0", "0.25", "0.5", "0.75")]
    _, schema = compose(["experiment=dropout_settle"])
    assert schema.settle.enabled and list(schema.settle.metrics) == ["val_acc", "gap_acc_last"]
    assert schema.dataset.train_size == 500 and schema.trainer.epochs == 20


# ----------------------------------------------------------------------- end to end, slow


def recount(folder: Path) -> dict[int, list[tuple[float, int]]]:
    """Rounds rebuilt from the run folders alone: round -> (fc, seed) of each job, by the
    planned seeds per round (2 then 4)."""
    from regbench.store.run_config import read as read_config

    out: dict[int, list[tuple[float, int]]] = {}
    for job in sorted((p for p in folder.iterdir() if p.name.isdigit()), key=lambda p: int(p.name)):
        cfg = read_config(job)
        round_ = 1 if cfg["seed"] < 2 else 2
        out.setdefault(round_, []).append((cfg["reg.dropout.fc"], cfg["seed"]))
    return out


@pytest.mark.slow
def test_a_settle_interrupted_in_its_second_round_resumes_and_its_rounds_add_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from regbench.launch import jobs

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REGBENCH_EXPERIMENT", raising=False)
    real = jobs.run_sweep_jobs

    def stop_at_job_5(pending, **kwargs):  # type: ignore[no-untyped-def]
        if any(job.run_dir.name == "5" for job in pending):  # round 2's second job: Ctrl-C
            raise KeyboardInterrupt
        return real(pending, **kwargs)

    monkeypatch.setattr(jobs, "run_sweep_jobs", stop_at_job_5)
    # O'Brien-Fleming spending keeps round 1 (2 seeds) from deciding anything
    args = ["sweep", "--settle", *TINY, "dataset.train_size=300", "reg.dropout.fc=0.0,0.5",
            "settle.start_seeds=2", "settle.max_seeds=4", "settle.spending=obrien_fleming"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 130, first.output
    (folder,) = (tmp_path / "results" / "default" / "sweeps").iterdir()
    record = settle_record.read(folder)
    assert [r.number for r in record.rounds] == [1, 2] and record.rounds[1].wall_time_s is None
    assert "round 1: 2 seeds per configuration, 2 of 2 comparisons undecided" in first.output
    done_before = (folder / "4" / "summary.json").read_text()

    monkeypatch.setattr(jobs, "run_sweep_jobs", real)
    second = CliRunner().invoke(app, ["sweep", "--resume", str(folder)])
    assert second.exit_code == 0, second.output
    assert "round 2: 4 seeds per configuration" in second.output
    assert (folder / "4" / "summary.json").read_text() == done_before  # kept, not rerun
    record = settle_record.read(folder)
    assert record.status in ("settled", "out of seeds") and all(r.done for r in record.rounds)

    # the rounds recounted from the run folders match settle.json, and all are paired
    counted = recount(folder)
    plan = json.loads((folder / "sweep.json").read_text())
    def values(job: list[str]) -> tuple[float, int]:
        given = dict(o.split("=", 1) for o in job)
        return float(given["reg.dropout.fc"]), int(given["seed"])

    for r in record.rounds:
        listed = [values(plan["jobs"][j]) for jobs_ in r.jobs for j in jobs_]
        assert sorted(listed) == sorted(counted[r.number])
    assert sorted(counted[2]) == [(0.0, 2), (0.0, 3), (0.5, 2), (0.5, 3)]  # baseline included
    assert len([p for p in folder.iterdir() if p.name.isdigit()]) == 8
    assert (folder / "settle.png").exists() and (folder / "summary.csv").exists()
    assert "settle " in second.output and "runs (a fixed grid of 4 seeds would be 8)" in second.output
