"""A sweep or a study as one shareable page: report.html (self-contained) or markdown.

The page says what was run (command, axes, seeds, data, machine, time), shows the
comparison table exactly as ``regbench.present.tables`` words it, the figures of
``regbench.present.plots`` embedded as base64 PNGs (no network needed to view it), each run's
status and the failures. It is rendered with Jinja2 from the templates shipped in
``regbench/templates/``.
"""

from __future__ import annotations

import base64
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from regbench import __version__
from regbench.study import compare, failures, settled
from regbench.present import plots, settle_view
from regbench.store import run_config, runs, settle_record, sweeps
from regbench.store import summary as summary_file
from regbench.store.runs import write_atomic
from regbench.store.summary import Summary
from regbench.present import tables
from regbench.errors import RunDirError
from regbench.study.labels import job_label

REPORT_FILE = "report.html"  # in the sweep folder: the page `regbench report` writes
FORMATS = ("html", "markdown")


@dataclass
class RunLine:
    """One run of the study, as the page's run table shows it."""

    name: str  # job number in a sweep, else the folder relative to the study
    values: str  # its values on the sweep axes, or its configuration label
    seed: Any
    status: str
    epochs: Any
    val_acc: str
    test_acc: str
    time_s: str
    error: str | None
    path: str


@dataclass
class Study:
    """Everything the templates show."""

    folder: Path
    title: str
    command: list[str]  # `regbench sweep` and the overrides as typed; empty for a study
    axes: list[str]
    seeds: list[Any]
    setup: list[tuple[str, str]]  # (what, value): data, model, training, machine, time
    runs: list[RunLine]
    comparison: compare.Comparison | None
    figures: list[Path] = field(default_factory=list)

    @property
    def failed(self) -> list[RunLine]:
        """Runs that did not finish, a search's pruned trials aside (they ended as planned)."""
        return [r for r in self.runs if r.status not in (*runs.FINISHED, runs.PRUNED)]

    @property
    def pruned(self) -> list[RunLine]:
        return [r for r in self.runs if r.status == runs.PRUNED]

    @property
    def quoted(self) -> list[str]:
        """The command's tokens quoted as a shell needs them: 'seed=range(0,3)'."""
        return [shlex.quote(token) for token in self.command]

    @property
    def diverged(self) -> str | None:
        """'1 of 4 runs diverged and is not compared: ...', or None."""
        left_out = [(" ".join(v for v in r.values.split() if not v.startswith("seed=")) or r.name,
                     r.seed) for r in self.runs if r.status == failures.DIVERGED]
        return failures.diverged_line(left_out, len(self.runs))


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.2f}"


def _when(folder: Path, summaries: list[Summary], dirs: list[Path]) -> str:
    """'2026-11-23 12:19 to 12:21 UTC; 31 s of run wall time over 4 run(s)', from the files."""
    stamps = [(d / runs.SUMMARY_FILE).stat().st_mtime for d in dirs if (d / runs.SUMMARY_FILE).exists()]
    try:  # run and sweep ids start with their creation time
        start = time.mktime(time.strptime(folder.name[:15], "%Y%m%d-%H%M%S"))
    except ValueError:
        start = min(stamps, default=0.0)
    end = max(stamps, default=start)
    same_day = time.gmtime(start)[:3] == time.gmtime(end)[:3]
    wall = sum(s.wall_time_s or 0.0 for s in summaries)
    return (f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(start))} to "
            f"{time.strftime('%H:%M' if same_day else '%Y-%m-%d %H:%M', time.gmtime(end))} UTC; "
            f"{wall:,.0f} s of run wall time over {len(summaries)} run(s)")


def _setup(folder: Path, dirs: list[Path], summaries: list[Summary]) -> list[tuple[str, str]]:
    """Data, model, training, machine and time, from the first run that has a config.yaml."""
    cfg = next((run_config.read(d) for d in dirs if (d / runs.CONFIG_FILE).exists()), {})
    out: list[tuple[str, str]] = []
    if cfg:
        size = cfg.get("dataset.train_size")
        out.append(("data", f"{cfg['dataset.name']}, "
                            f"{'all' if size is None else size} training images, "
                            f"{cfg['dataset.val_fraction']:g} held out for validation, "
                            f"split seed {cfg['dataset.split_seed']}"))
        out.append(("model", f"{cfg['model.name']}: channels {cfg.get('model.channels')}, "
                             f"hidden {cfg.get('model.hidden')}"))
        lr = cfg["optim.lr"] if cfg["optim.lr"] is not None else "default"
        out.append(("training", f"{cfg['trainer.epochs']} epochs, batch {cfg['trainer.batch_size']}, "
                                f"{cfg['optim.name']} lr {lr}, schedule {cfg['optim.schedule']}"))
    machines = sorted({f"{m.get('host')} ({m.get('platform')}, {m.get('cpus')} CPUs)"
                       for s in summaries if (m := s.machine)})
    devices = sorted({str(s.device) for s in summaries if s.device})
    if machines or devices:
        out.append(("machine", "; ".join(machines) + (" on " if machines else "")
                    + ", ".join(devices)))
    versions = next((s.versions for s in summaries if s.versions), None)
    if versions:
        out.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    out.append(("time", _when(folder, summaries, dirs)))
    return out


def gather(folder: Path, baseline: str | None = None) -> Study:
    """Read a sweep folder (with sweep.json) or any folder of runs, compare, draw the figures."""
    if not folder.is_dir():
        raise RunDirError(f"{folder}: no such folder; give a sweep or experiment folder")
    plan = sweeps.read_plan(folder) if sweeps.is_sweep(folder) else None
    if plan is not None:
        dirs = plan.job_dirs(folder)
        names = [f"{n}" for n in range(len(dirs))]
    else:
        dirs = runs.find_runs([folder])
        names = [str(d.relative_to(folder)) if d != folder else d.name for d in dirs]
    found = [_read(d) for d in dirs]
    summaries = [s for s in found if isinstance(s, Summary)]
    finished = [d for d, s in zip(dirs, found, strict=True) if isinstance(s, Summary) and s.finished]
    settle = settle_record.read(folder) if settle_record.is_settle(folder) else None
    if settle is not None:  # judged by its sequential design, not by fixed-seed tests
        comp = settled.compare_settle(folder, settle, baseline) if finished else None
    else:
        lost = [d for d, s in zip(dirs, found, strict=True) if isinstance(s, Summary) and not s.finished]
        comp = compare.compare(finished, baseline, named_with=lost) if finished else None
    labels = dict(zip(comp.runs["path"], comp.runs["label"], strict=True)) if comp else {}
    damaged = ({} if comp is None else
               {r.path: r.error for r in comp.failed.itertuples() if r.status == "damaged"})
    axes = list(plan.axes) if plan else (comp.axes if comp else [])
    lines = []
    for n, (d, s, name) in enumerate(zip(dirs, found, names, strict=True)):
        values = job_label(plan.jobs[n], plan.axes) if plan else labels.get(str(d), "")
        if str(d) in damaged:
            s = ("damaged", str(damaged[str(d)]))
        if not isinstance(s, Summary):
            lines.append(RunLine(name=name, values=values, seed=None, status=s[0], epochs="-",
                                 val_acc="-", test_acc="-", time_s="-", error=s[1], path=str(d)))
            continue
        lines.append(RunLine(
            name=name, values=values, seed=s.seed, status=s.status, epochs=s.epochs_run,
            val_acc=_pct(s.best.val_acc if s.best else None), test_acc=_pct(s.test_acc),
            time_s=f"{s.wall_time_s:.1f}",
            error=None if s.finished else s.why_unfinished(), path=str(d)))
    seeds = sorted({s.seed for s in summaries if s.seed is not None})
    command = sweeps.command(folder, plan) if plan else []
    figures = plots.make_plots(comp, folder) if comp is not None else []
    setup = _setup(folder, dirs, summaries)
    if settle is not None:
        rounds = settle_view.interval_plot(comp, folder) if comp is not None else None
        figures += [rounds] if rounds is not None else []
        setup.insert(0, ("settle", settle_view.end_lines(settle, None, None)[0].removeprefix("settle ")))
    return Study(folder=folder, title=f"{folder.parent.parent.name}/{folder.name}" if plan else folder.name,
                 command=command, axes=axes, seeds=seeds,
                 setup=setup, runs=lines, comparison=comp,
                 figures=figures)


def _read(run_dir: Path) -> Summary | tuple[str, str]:
    """A run's summary, or (status, why) for a folder without a readable one."""
    if not (run_dir / runs.SUMMARY_FILE).exists():
        return summary_file.MISSING, "no summary.json: never started, or killed"
    try:
        return summary_file.read(run_dir)
    except RunDirError as e:
        return "damaged", str(e)


def environment() -> jinja2.Environment:
    """The templates' environment (regbench/templates), for the report and the atlas page."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("regbench", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                            default_for_string=False),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined)


def render(study: Study, fmt: str = "html") -> str:
    """The page (fmt 'html') or its markdown version (fmt 'markdown')."""
    comp = study.comparison
    context: dict[str, Any] = {
        "study": study, "version": __version__,
        "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "header": [], "rows": [], "caption": "", "markdown_table": "",
    }
    if comp is not None and not comp.table.empty:  # each format builds only its own table
        if fmt == "html":
            context["header"], context["rows"] = tables.display_rows(comp, sep="\n")
            context["caption"] = tables.caption(comp)
        else:
            context["markdown_table"] = tables.markdown(comp)
    if fmt == "html":
        context["images"] = [(p.name, base64.b64encode(p.read_bytes()).decode("ascii"))
                             for p in study.figures]
        return environment().get_template("report.html.j2").render(context)
    context["images"] = [(p.name, p.name) for p in study.figures]  # files beside report.md
    return environment().get_template("report.md.j2").render(context)


def write(text: str, path: Path) -> Path:
    """The rendered page written to `path` (atomically); RunDirError when it cannot be."""
    try:
        write_atomic(path, text)
    except OSError as e:
        raise RunDirError(f"--out {str(path)!r}: cannot write ({e.strerror})") from e
    return path
