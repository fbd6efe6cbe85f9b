"""Figures, checked through matplotlib's objects: colours, marks, trend lines, legends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pytest
from matplotlib.colors import to_hex

from regbench.present import plots
from regbench.store import runs
from regbench.study import compare
from test_labels import typed_run


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The figures make_plots draws, by file name, kept open instead of saved."""
    kept: dict[str, Any] = {}

    def keep(fig: Any, path: Path) -> Path:
        kept[path.name] = fig
        return path

    monkeypatch.setattr(plots, "save", keep)
    yield kept
    for fig in kept.values():
        plt.close(fig)


def sweep_of(folder: Path, jobs: list[tuple[list[str], dict[str, Any]]]) -> compare.Comparison:
    """A sweep folder of finished jobs (overrides typed, configuration), compared."""
    for n, (typed, config) in enumerate(jobs):
        seed = int(next(o for o in typed if o.startswith("seed="))[5:])
        typed_run(folder / str(n), seed, typed, 0.9 + 0.01 * n, **config)
    (folder / runs.SWEEP_FILE).write_text(json.dumps({"args": [], "jobs": [j for j, _ in jobs]}))
    return compare.compare(runs.find_runs([folder]))


PRESETS = {"none": {}, "dropout": {"reg.dropout.fc": 0.5, "reg.dropout.conv": 0.25},
           "l2": {"reg.l2": 5e-4}}


@pytest.mark.slow
def test_presets_get_distinct_qualitative_colours_and_a_rate_grid_a_sequential_map(
        tmp_path: Path) -> None:
    comp = sweep_of(tmp_path / "presets", [([f"reg={p}", f"seed={s}"], c)
                                          for p, c in PRESETS.items() for s in (0, 1)])
    assert plots.colour_scale(comp) == "qualitative" and plots.swept_parameters(comp) == []
    styles = plots.config_styles(comp, plots.config_order(comp))
    tab10 = {to_hex(c) for c in plt.get_cmap("tab10").colors}  # type: ignore[attr-defined]
    colours = [to_hex(s["color"]) for s in styles.values()]
    assert len(set(colours)) == 3 and set(colours) <= tab10
    assert plots.config_order(comp)[0] == comp.baseline == "reg=none"
    grid = sweep_of(tmp_path / "grid", [(["reg=dropout", f"reg.dropout.fc={fc}", "seed=0"],
                                         {"reg.dropout.conv": 0.25, "reg.dropout.fc": fc})
                                        for fc in (0.0, 0.25, 0.5)])
    assert plots.colour_scale(grid) == "sequential"
    assert plots.swept_parameters(grid) == ["reg.dropout.fc"]


@pytest.mark.slow
def test_the_onset_is_marked_only_when_most_seeds_had_one(tmp_path: Path) -> None:
    comp = sweep_of(tmp_path, [([f"reg={p}", f"seed={s}"], c) for p, c in PRESETS.items()
                               for s in (0, 1, 2)])
    onsets = {"reg=none": (2, None, None), "reg=dropout": (1, None, 2), "reg=l2": (None,) * 3}
    for path, name, seed in zip(comp.runs["path"], comp.runs["label"], comp.runs["seed"], strict=True):
        summary = json.loads((Path(path) / "summary.json").read_text())
        summary["onset_epoch"] = onsets[name][seed]
        (Path(path) / "summary.json").write_text(json.dumps(summary))
    comp = compare.compare([Path(p) for p in comp.runs["path"]])  # the runs read again
    marks = plots.best_and_onset(comp)
    assert marks["reg=none"][1] is None  # 1 of 3 seeds
    assert marks["reg=dropout"][1] == 1.5  # 2 of 3: the median of their onsets
    assert marks["reg=l2"][1] is None


@pytest.mark.slow
def test_a_trend_is_fitted_only_through_enough_trials(tmp_path: Path,
                                                      figures: dict[str, Any]) -> None:
    def trend_lines(trials: int) -> list[str]:
        rates = [0.05 + 0.7 * i / trials + 1.234e-5 for i in range(trials)]  # drawn, unround
        comp = sweep_of(tmp_path / str(trials), [([f"reg.dropout.fc={r}", "seed=0"],
                                                  {"reg.dropout.fc": r}) for r in rates])
        assert comp.baseline is None  # no trial is without regularization
        plots.make_plots(comp, tmp_path / f"figs{trials}")
        fig = figures["trials_reg.dropout.fc.png"]
        return [str(line.get_label()) for ax in fig.axes for line in ax.get_lines()
                if "trend" in str(line.get_label())]

    assert trend_lines(4) == []
    assert len(trend_lines(plots.MIN_TREND_POINTS)) == 2  # one per panel


@pytest.mark.slow
def test_the_legend_fits_beside_the_panels_however_many_configurations(
        tmp_path: Path, figures: dict[str, Any]) -> None:
    sizes = []
    for count in (3, 30):
        comp = sweep_of(tmp_path / str(count),
                        [([f"reg.l2={(i + 1) * 1e-4:.4f}", f"model.hidden={32 + i}", "seed=0"],
                          {"reg.l2": (i + 1) * 1e-4, "model.hidden": 32 + i}) for i in range(count)])
        plots.make_plots(comp, tmp_path / f"figs{count}")
        fig = figures["curves.png"]
        renderer = fig.canvas.get_renderer()
        legend = next(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)
        panel = fig.axes[0].get_window_extent(renderer)
        assert legend.get_window_extent(renderer).height <= panel.height
        texts = [" ".join(t.get_text().split()) for t in legend.get_texts()]
        truncated = any("more (summary.csv lists them all)" in t for t in texts)
        assert truncated == (count == 30)
        sizes.append((*fig.get_size_inches(), panel.width, panel.height))
    # panels keep their size (tick labels of other widths aside): the text stays readable
    assert sizes[0] == pytest.approx(sizes[1], rel=0.03)


@pytest.mark.slow
def test_vs_figure_shows_the_gap_at_the_last_and_at_the_best_epoch(
        tmp_path: Path, figures: dict[str, Any]) -> None:
    comp = sweep_of(tmp_path, [([f"reg.dropout.fc={fc}", f"seed={s}"], {"reg.dropout.fc": fc})
                               for fc in (0.0, 0.5) for s in (0, 1)])
    plots.make_plots(comp, tmp_path / "figs")
    right = figures["vs_reg.dropout.fc.png"].axes[1]
    assert [t.get_text() for t in right.get_legend().get_texts()] == \
        ["gap at the last epoch", "gap at the best epoch"]


@pytest.mark.slow
def test_unrelated_runs_draw_no_figure_against_a_key_nobody_swept(tmp_path: Path) -> None:
    for epochs in (3, 5):
        typed_run(tmp_path / f"e{epochs}", 0, [f"trainer.epochs={epochs}"], **{"trainer.epochs": epochs})
    comp = compare.compare(runs.find_runs([tmp_path]))
    assert comp.axes == ["trainer.epochs"] and plots.swept_parameters(comp) == []
    assert [p.name for p in plots.make_plots(comp, tmp_path / "figs")] == ["curves.png"]
