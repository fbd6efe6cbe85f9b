"""The winner confirmed: a search's best trials re-run with fresh seeds against the baseline.

Candidates and the grid from a hand-made search folder; the table's differences, intervals
and verdicts against a hand computation with scipy; the printed table at 80 columns; and
the whole path through the CLI (slow)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console
from scipy import stats

from helpers import TINY, run_cli
from regbench.store import confirm_record
from regbench.launch import confirm, sweep
from regbench.present.confirmation import confirm_table
from regbench.present.terminal import print_table
from regbench.store.metrics import MetricsLog, Row
from regbench.store.summary import Summary
from regbench.study.confirmation import Candidate, ConfirmRow


def write_run(run_dir: Path, seed: int, fc: float, val_acc: float, status: str = "completed") -> None:
    """A run folder as a run writes it, its one epoch's val accuracy given."""
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(f"seed: {seed}\nreg:\n  dropout:\n    fc: {fc}\n")
    row = Row(epoch=1, train_loss=0.5, train_acc=val_acc + 0.05, val_loss=0.6, val_acc=val_acc)
    log = MetricsLog(run_dir / "metrics.csv")
    log.append(row)
    Summary(status=status, epochs_run=1, best_epoch=1, best=row, last=row, seed=seed).write(run_dir)


def search_folder(tmp_path: Path) -> tuple[Path, sweep.SweepPlan]:
    """Four trials of a search over reg.dropout.fc, seed 0; trial 2 was pruned."""
    sweep_dir = tmp_path / "sweeps" / "s1"
    scores = [0.70, 0.80, 0.90, 0.75]
    jobs = []
    for n, score in enumerate(scores):
        fc = 0.1 * (n + 1)
        jobs.append([f"reg.dropout.fc={fc}", "experiment=x", "trainer.progress=false"])
        write_run(sweep_dir / str(n), 0, fc, score, "pruned" if n == 2 else "completed")
    plan = sweep.SweepPlan(args=[], jobs=jobs, axes=["reg.dropout.fc"], sweeper="optuna", trials=4)
    return sweep_dir, plan


def test_the_best_finished_trials_are_the_candidates_and_the_grid_pairs_them_by_fresh_seeds(
        tmp_path: Path) -> None:
    sweep_dir, plan = search_folder(tmp_path)
    chosen = confirm.candidates(sweep_dir, plan, top=2)
    assert [(c.trial, c.score) for c in chosen] == [(1, 0.80), (3, 0.75)]  # trial 2 was pruned
    assert confirm.fresh_seeds(sweep_dir, plan, 3) == [1, 2, 3]
    jobs = confirm.grid(plan, chosen, [1, 2], ["reg=none"])
    assert jobs == [
        ["experiment=x", "reg=none", "seed=1"],
        ["reg.dropout.fc=0.2", "experiment=x", "seed=1"],
        ["reg.dropout.fc=0.4", "experiment=x", "seed=1"],
        ["experiment=x", "reg=none", "seed=2"],
        ["reg.dropout.fc=0.2", "experiment=x", "seed=2"],
        ["reg.dropout.fc=0.4", "experiment=x", "seed=2"],
    ]
    assert confirm.launcher_overrides(["hydra/launcher=ray", "hydra.launcher.num_cpus=2", "seed=1",
                                       "hydra.sweeper.n_trials=3"]) \
        == ["hydra/launcher=ray", "hydra.launcher.num_cpus=2"]


def test_the_confirmation_rows_match_a_hand_computation(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    seeds = [1, 2, 3, 4, 5, 6]
    base = 0.70 + 0.02 * rng.standard_normal(len(seeds))
    better = base + 0.05 + 0.005 * rng.standard_normal(len(seeds))  # clearly above the baseline
    noise = base + np.array([0.01, -0.01, 0.02, -0.02, 0.005, -0.004])  # mean 0.00017: noise
    folder = tmp_path / "s1-confirm"
    n = 0
    for k, _ in enumerate(seeds):  # seed by seed: the baseline, then each candidate
        for fc, values in ((0.0, base), (0.3, better), (0.6, noise)):
            write_run(folder / str(n), seeds[k], fc, float(values[k]))
            n += 1
    plan = sweep.SweepPlan(args=[], jobs=[[]] * n, sweeper="jobs")
    chosen = [Candidate(4, ["reg.dropout.fc=0.3"], 0.80),
              Candidate(9, ["reg.dropout.fc=0.6"], 0.78)]
    comp, rows = confirm.compare_grid(folder, plan, chosen, ["reg=none"])
    assert comp.baseline == "reg.dropout.fc=0.0" and [r.name for r in rows] == \
        ["baseline", "trial 4", "trial 9"]
    assert rows[0].mean == pytest.approx(base.mean()) and rows[0].d is None
    # Holm over the two candidates: the clear one is decided at the first step (0.05/2), the
    # other fails the second (0.05/1) and is shown at that step's level
    for row, values, verdict, level in ((rows[1], better, "better", 1 - 0.05 / 2),
                                        (rows[2], noise, "within noise", 1 - 0.05)):
        d = values - base
        half = stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
        assert row.d == pytest.approx(d.mean())
        assert (row.low, row.high) == pytest.approx((d.mean() - half, d.mean() + half))
        assert row.verdict == verdict and row.seeds == 6
        assert row.overestimate == pytest.approx(row.search - values.mean())


def test_the_table_fits_80_columns_and_says_which_is_better() -> None:
    rows = [ConfirmRow("baseline", ["reg=none"], None, 10, 0.7512, 0.0123),
            ConfirmRow("trial 12", ["reg.dropout.fc=0.43905080314185985"], 0.8025, 10,
                               0.7810, 0.0121, 0.0298, 0.0105, 0.0491, "better"),
            ConfirmRow("trial 3", ["reg.dropout.fc=0.7123456"], 0.7950, 10, 0.7530,
                               0.0201, 0.0018, -0.0190, 0.0226, "within noise")]
    out = Console(width=80, file=io.StringIO(), color_system=None)
    print_table(confirm_table(rows, comparisons=2), out)
    text = out.file.getvalue()  # type: ignore[attr-defined]
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[1].split() == ["candidate", "search", "confirmed", "n", "Δ", "verdict", "over"]
    row = next(line for line in lines if line.startswith("trial 12"))
    assert row.split()[2:] == ["80.25", "78.10", "10", "+2.98", "better", "+2.15"]
    assert "reg.dropout.fc=0.439" in text and "[+1.1, +4.9]" in text
    assert next(line for line in lines if line.startswith("trial 3")).split()[-3:] \
        == ["within", "noise", "+4.20"]
    assert "interval at the level of the Holm step that decided it" in " ".join(text.split())


@pytest.mark.slow
def test_a_search_confirms_its_winner_and_confirm_finishes_what_is_left(tmp_path: Path) -> None:
    search = ["hydra/sweeper=optuna", "hydra.sweeper.sampler=random", "hydra.sweeper.sampler.seed=0",
              "hydra.sweeper.n_trials=3", "hydra.sweeper.confirm.top=2",
              "hydra.sweeper.confirm.seeds=2", "reg.dropout.fc=interval(0,0.8)", *TINY,
              "trainer.epochs=1", "dataset.train_size=100"]
    proc = run_cli("sweep", *search, cwd=tmp_path, env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    sweeps = tmp_path / "results" / "default" / "sweeps"
    (sweep_dir,) = [d for d in sweeps.iterdir() if not d.name.endswith(confirm.SUFFIX)]
    folder = confirm.confirm_dir(sweep_dir)
    plan = json.loads((folder / "sweep.json").read_text())
    assert plan["sweeper"] == "jobs" and len(plan["jobs"]) == 6  # (baseline + 2) x 2 seeds
    assert [o for o in plan["jobs"][0] if o.startswith(("seed=", "reg="))] == ["reg=none", "seed=1"]
    assert "Confirmation" in proc.stdout and "baseline reg=none" in proc.stdout
    table = (folder / confirm_record.TABLE_FILE).read_text().splitlines()
    assert len(table) == 4 and table[0].startswith("name,values,search,seeds,mean,std,d")
    again = run_cli("confirm", str(sweep_dir), cwd=tmp_path)
    assert again.returncode == 0 and "6 jobs (6 done)" in again.stdout
    resumed = run_cli("sweep", "--resume", str(folder), cwd=tmp_path)
    assert resumed.returncode == 0 and "6 of 6 jobs finished; running 0" in resumed.stdout
    other = run_cli("confirm", str(sweep_dir), "--seeds", "3", cwd=tmp_path)
    assert other.returncode == 2 and "a confirmation with other settings is there" in other.stderr
