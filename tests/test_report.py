"""`regbench report`: a sweep as one self-contained HTML page, or markdown."""

from __future__ import annotations

import base64
import json
import shlex
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import TINY, run_cli
from regbench.store import confirm_record
from regbench.study import compare
from regbench.store import summary
from regbench.present import tables
from regbench.cli import app
from regbench.errors import ConfigError, RunDirError

VOID = {"meta", "img", "br", "hr", "link", "input", "source", "wbr"}


class Page(HTMLParser):
    """Checks that every element is closed in order; collects the text and the images."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.text: list[str] = []
        self.images: list[str] = []
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.images.append(a.get("src") or "")
        for key in ("src", "href"):
            if (a.get(key) or "").startswith(("http:", "https:", "//")):
                self.external.append(a[key] or "")
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1:]}>"
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-job sweep; job 3 is then marked failed, as a crashed job leaves it."""
    tmp = tmp_path_factory.mktemp("report")
    result = CliRunner().invoke(app, ["sweep", *TINY, "trainer.epochs=1", "reg.dropout.fc=0.0,0.5",
                                      "seed=0,1", f"output.root={tmp / 'results'}"])
    assert result.exit_code == 0, result.output
    (folder,) = (tmp / "results" / "default" / "sweeps").iterdir()
    summary.mark_failed(folder / "3", "RuntimeError: out of memory <on purpose>")
    return folder


@pytest.mark.slow
def test_the_page_is_valid_self_contained_html_with_the_table_and_figures(sweep_dir: Path) -> None:
    result = CliRunner().invoke(app, ["report", str(sweep_dir)])
    assert result.exit_code == 0, result.output
    page_path = sweep_dir / "report.html"
    assert result.output.strip() == str(page_path)
    html = page_path.read_text()
    page = Page()
    page.feed(html)
    page.close()
    assert page.open == [] and page.external == []
    text = "".join(page.text)

    comp = compare.compare([sweep_dir / str(n) for n in range(3)])
    header, rows = tables.display_rows(comp, sep="\n")
    assert rows and all(cell in text for cells in rows for cell in cells)
    assert all(h in text for h in header) and tables.caption(comp) in text
    assert "reg.dropout.fc=0.0\n(best, baseline)" in text or "reg.dropout.fc=0.5\n(best)" in text

    figures = sorted(p.name for p in sweep_dir.glob("*.png"))
    assert figures == ["curves.png", "vs_reg.dropout.fc.png"]
    assert len(page.images) == 2
    for src, name in zip(page.images, figures, strict=True):
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]) == (sweep_dir / name).read_bytes()

    plan = json.loads((sweep_dir / "sweep.json").read_text())
    # quoted as a shell needs it: model.channels=[8,16] would be a glob pattern unquoted
    assert shlex.join(["regbench", "sweep", *plan["args"]]) in " ".join(text.split())
    assert "'model.channels=[8,16]'" in text
    assert "RuntimeError: out of memory <on purpose>" in text  # escaped in the page, shown as is
    assert "&lt;on purpose&gt;" in html
    for label in ("reg.dropout.fc=0.5 seed=1", "synthetic", "completed", "failed"):
        assert label in text


@pytest.mark.slow
def test_markdown_for_a_readme_or_an_issue(sweep_dir: Path) -> None:
    result = CliRunner().invoke(app, ["report", str(sweep_dir), "--format", "markdown"])
    assert result.exit_code == 0, result.output
    comp = compare.compare([sweep_dir / str(n) for n in range(3)])
    assert tables.markdown(comp) in result.output
    assert "![curves.png](curves.png)" in result.output
    assert "| 3 | reg.dropout.fc=0.5 seed=1 | 1 | failed |" in result.output


def test_bad_format_and_missing_folder_are_errors_naming_them(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert isinstance(result.exception, RunDirError) and "nope: no such folder" in str(result.exception)
    result = CliRunner().invoke(app, ["report", str(tmp_path), "--format", "pdf"])
    assert isinstance(result.exception, ConfigError)
    assert "--format 'pdf' is not allowed: use one of html, markdown" in str(result.exception)



def test_the_report_counts_and_names_the_diverged_runs_it_leaves_out(tmp_path: Path) -> None:
    from regbench.present.report import RunLine, Study

    def line(name: str, values: str, seed: int, status: str) -> RunLine:
        return RunLine(name=name, values=values, seed=seed, status=status, epochs=1, val_acc="-",
                       test_acc="-", time_s="1.0", error=None, path=str(tmp_path / name))

    study = Study(tmp_path, "t", [], ["optim.lr", "seed"], [0, 1], [], [
        line("0", "optim.lr=0.05 seed=0", 0, "completed"),
        line("1", "optim.lr=1e6 seed=0", 0, "diverged"),
        line("2", "optim.lr=0.05 seed=1", 1, "completed"),
        line("3", "optim.lr=1e6 seed=1", 1, "diverged")], None)
    assert study.diverged == "2 of 4 runs diverged and are not compared: optim.lr=1e6 seeds 0, 1"
    study.runs = study.runs[::2]
    assert study.diverged is None


def hand_sweep(folder: Path, args: list[str], statuses: list[str]) -> Path:
    """A sweep folder written by hand: its plan and one run per status (seeds 0, 1, ...)."""
    from regbench.store import sweeps
    from test_compare import write_run

    jobs = [[f"seed={n}"] for n in range(len(statuses))]
    for n, status in enumerate(statuses):
        write_run(folder / str(n), n, 0.9, 1.0, status=status)
    sweeps.write_plan(folder, sweeps.SweepPlan(args=args, jobs=jobs, axes=["seed"]))
    return folder


def test_the_report_command_pastes_into_a_shell_and_pruned_trials_are_pruned(tmp_path: Path) -> None:
    from regbench.present import report

    args = ["seed=range(0,3)", "reg.dropout.fc=interval(0,0.8)", "hydra/sweeper=optuna"]
    folder = hand_sweep(tmp_path / "sweeps" / "s1", args, ["completed", "completed", "pruned"])
    study = report.gather(folder)
    markdown = report.render(study, "markdown")
    assert ("regbench sweep 'seed=range(0,3)' 'reg.dropout.fc=interval(0,0.8)' "
            "hydra/sweeper=optuna") in markdown
    assert "1 pruned" in markdown and "not finished" not in markdown
    page = Page()
    page.feed(report.render(study, "html"))
    text = " ".join("".join(page.text).split())
    assert "'seed=range(0,3)'" in text and "1 pruned" in text and "not finished" not in text


def test_a_confirmation_report_shows_the_confirm_command(tmp_path: Path) -> None:
    from regbench.launch import confirm
    from regbench.present import report

    search = tmp_path / "sweeps" / "s1"
    folder = hand_sweep(confirm.confirm_dir(search), [
        "hydra/sweeper=regbench_list", "hydra.sweeper.jobs_file='/x/jobs.json'",
        "hydra/launcher=joblib"], ["completed", "completed"])
    (folder / confirm_record.FILE).write_text(json.dumps(
        {"search": str(search), "top": 2, "seeds": 5, "baseline": ["reg=none"], "candidates": []}))
    markdown = report.render(report.gather(folder), "markdown")
    assert f"regbench confirm {search} --top 2 --seeds 5 hydra/launcher=joblib" in markdown
    assert "regbench sweep" not in markdown


def test_the_report_says_which_runs_were_dropped_as_true_duplicates(tmp_path: Path) -> None:
    from regbench.present import report

    folder = hand_sweep(tmp_path / "sweeps" / "s1", ["seed=0,1"], ["completed", "completed"])
    hand_sweep(tmp_path / "again", ["seed=0"], ["completed"])  # seed 0 once more
    for fmt in ("html", "markdown"):
        page = report.render(report.gather(tmp_path), fmt)
        assert "Counted once (true duplicates):" in page and "same configuration and seed" in page
