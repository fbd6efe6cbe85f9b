"""The claims atlas as one page: in the terminal (80 columns), as markdown and as HTML.

Each claim shows its statement, how it is read, its verdict, and each deciding interval
with its seeds; then its studies (runs, how the settle ended, job time). The HTML page is
self-contained: each study's figures (settle.png, the intervals round by round, and
curves.png) are embedded. Numbers and intervals are never split across lines.
"""

from __future__ import annotations

import base64
import textwrap
import time
from collections import Counter
from pathlib import Path

from regbench import __version__
from regbench.present import report
from regbench.present.settle_view import METRIC_WORDS, duration
from regbench.store import summary as summary_file
from regbench.text import plural
from regbench.study import claims
from regbench.study.claims import ClaimResult, PartResult, StudyResult

WIDTH = 80  # the terminal page's widest line
NBSP = "\u00a0"  # joins a number to its unit and an interval's two ends while wrapping
MARKDOWN_FILE, HTML_FILE = "atlas.md", "atlas.html"
FIGURES = ("settle.png", "curves.png")  # of each study, in its sweep folder
EXPECT_WORDS = {"higher": "higher", "lower": "lower", "not_higher": "not higher",
                "not_lower": "not lower", "equal": "the same within the margin",
                "different": "different"}
COLUMN_WORDS = {"test_acc": "test acc", "mc_test_acc": "test acc, {passes}",
                "test_ece": "test ECE", "mc_test_ece": "test ECE, {passes}",
                "val_acc": "val acc", "val_acc_last": "val acc at last epoch"}
EPOCH_METRICS = ("convergence_epoch",)  # in epochs; every other metric is a fraction


def column_words(column: str, passes: int) -> str:
    """'test acc, mean of 50 passes with dropout on' for a column of the summary."""
    on = ("dropout on" if passes <= 0 else "1 pass with dropout on" if passes == 1
          else f"mean of {passes} passes with dropout on")
    return COLUMN_WORDS.get(column, column).format(passes=on)


def metric_words(part: PartResult) -> str:
    if part.part.against:
        return f"{column_words(part.metric, part.passes)} - {column_words(part.against, part.passes)}"
    return METRIC_WORDS.get(part.metric, part.metric).removeprefix("Δ ")


def scaled(part: PartResult, value: float) -> float:
    return value if part.metric in EPOCH_METRICS else 100 * value


def unit(part: PartResult) -> str:
    return "epochs" if part.metric in EPOCH_METRICS else "pts"


def interval(part: PartResult) -> str:
    """'-5.21 [-7.10, -3.30] pts at 10 seeds', or why there is none."""
    look = part.look
    if look is None:
        return "no interval (fewer than 2 finished pairs)"
    ends = f"[{scaled(part, look.low):+.2f}, {scaled(part, look.high):+.2f}]"
    return f"{scaled(part, look.d):+.2f} {ends} {unit(part)} at {look.pairs} seeds"


def margin_words(part: PartResult) -> str:
    if part.margin is None:
        return "no margin"
    return f"margin ±{scaled(part, part.margin):g} {unit(part)}"


def part_line(part: PartResult) -> str:
    """'reg.dropout.fc=0.5 vs reg.dropout.fc=0.0, gap at last epoch, predicted lower: ...'."""
    who = part.config or part.part.config
    against = "" if part.part.against else f" vs {part.against}"
    study = f"[{part.part.study}] " if part.part.study != claims.MAIN else ""
    margin = f" ({margin_words(part)})" if part.look is not None else ""
    return (f"{study}{who}{against}, {metric_words(part)}, predicted "
            f"{EXPECT_WORDS[part.part.expect]}: {interval(part)}{margin}: {part.verdict}")


def study_line(study: StudyResult, root: Path | None = None) -> str:
    """'main: 20 runs, settled after 2 rounds, 3 min 05 s of jobs; folder' (relative to root)."""
    if study.folder is None:
        return f"{study.name}: not started yet"
    failed = f" ({study.unfinished} not finished, not pooled)" if study.unfinished else ""
    rounds = plural(len(study.record.rounds), "round") if study.record else "no round"
    return (f"{study.name}: {plural(study.runs, 'run')}{failed}, {study.status} after {rounds}, "
            f"{duration(study.wall_time_s)} of jobs; "
            f"{study.folder if root is None else _relative(study.folder, root)}")


def counts(results: list[ClaimResult]) -> str:
    tally = Counter(r.verdict for r in results)
    return ", ".join(f"{tally[v]} {v}" for v in claims.VERDICTS if tally[v])


def _keep(text: str) -> str:
    """Spaces inside numbers, intervals and units made unbreakable for wrapping."""
    for unit_name in ("pts", "epochs", "seeds", "s of jobs", "runs", "run"):
        text = text.replace(f" {unit_name}", f"{NBSP}{unit_name}")
    return text.replace(", +", f",{NBSP}+").replace(", -", f",{NBSP}-").replace("] ", f"]{NBSP}") \
        .replace(" at ", f" at{NBSP}").replace(" [", f"{NBSP}[").replace("± ", f"±{NBSP}")


def wrap(text: str, width: int, indent: str, first: str | None = None) -> list[str]:
    lines = textwrap.wrap(_keep(text), width=width, initial_indent=indent if first is None else first,
                          subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)
    return [line.replace(NBSP, " ") for line in lines]


def terminal_page(results: list[ClaimResult], root: Path, width: int = WIDTH,
                  overrides: list[str] | None = None) -> str:
    """The atlas for a terminal: no line wider than width (80 at most), nothing split."""
    width = min(width, WIDTH)
    out = wrap(f"Claims atlas: {plural(len(results), 'claim')}; {counts(results)}.", width, "")
    runs = sum(r.runs for r in results)
    out += wrap(f"{plural(runs, 'run')}, {duration(sum(r.wall_time_s for r in results))} "
                f"of jobs, in {root}", width, "")
    if overrides:
        out += wrap(overrides_note(overrides), width, "")
    for r in results:
        c = r.claim
        out.append("")
        head = f"{c.number:>2}. {c.title}"
        verdict = r.verdict.upper()
        if len(head) + len(verdict) + 2 <= width:
            out.append(head + " " * (width - len(head) - len(verdict)) + verdict)
        else:
            out += wrap(head, width, "    ", first="") + wrap(verdict, width, "    ")
        out += wrap(f'"{c.statement}"', width, "    ")
        out += wrap(f"Read as: {c.reading} Parts combine by {c.combine!r}.", width, "    ")
        for part in r.parts:
            out += wrap(part_line(part), width, "      ", first="    - ")
        for study in r.studies:
            out += wrap(study_line(study, root), width, "      ", first="    runs ")
    return "\n".join(out) + "\n"


def summary_rows(results: list[ClaimResult]) -> list[list[str]]:
    """One row per claim: number, title, verdict, its deciding intervals, runs, job time."""
    rows = []
    for r in results:
        decided = "; ".join(interval(p) for p in r.parts)
        rows.append([str(r.claim.number), r.claim.title, r.verdict, decided, str(r.runs),
                     duration(r.wall_time_s)])
    return rows


def machine(results: list[ClaimResult]) -> str:
    """Where the runs ran, from the first finished run's summary.json."""
    for r in results:
        for study in r.studies:
            comp = study.comparison
            if comp is None or comp.runs.empty:
                continue
            s = summary_file.load(Path(comp.runs["path"].iloc[0]))
            if s is not None and s.machine:
                m = s.machine
                return f"{m.get('host')} ({m.get('platform')}, {m.get('cpus')} CPUs), {s.device}"
    return "no run yet"


def overrides_note(overrides: list[str]) -> str:
    """What every study ran with beyond its preset: the readings are the presets' own."""
    return ("Every study with " + " ".join(overrides) + " (the readings below are the "
            "presets' own).")


def figures(study: StudyResult) -> list[Path]:
    if study.folder is None:
        return []
    return [study.folder / name for name in FIGURES if (study.folder / name).exists()]


def _context(results: list[ClaimResult], root: Path, command: str,
             overrides: list[str] | None) -> dict[str, object]:
    return {"results": results, "root": root, "command": command, "version": __version__,
            "overrides": overrides_note(overrides) if overrides else "",
            "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": machine(results), "counts": counts(results),
            "runs": sum(r.runs for r in results),
            "time": duration(sum(r.wall_time_s for r in results)),
            "rows": summary_rows(results), "part_line": part_line,
            "study_line": lambda s: study_line(s, root),
            "interval": interval, "metric_words": metric_words, "margin_words": margin_words,
            "expect_words": EXPECT_WORDS, "main": claims.MAIN}


def markdown(results: list[ClaimResult], root: Path, command: str, figure_base: Path | None = None,
             overrides: list[str] | None = None) -> str:
    """The atlas as markdown; figures are linked relative to figure_base (default root)."""
    base = figure_base or root
    context = _context(results, root, command, overrides) | {
        "figure_links": lambda s: [_relative(p, base) for p in figures(s)]}
    return report.environment().get_template("atlas.md.j2").render(context)


def html(results: list[ClaimResult], root: Path, command: str,
         overrides: list[str] | None = None) -> str:
    """The atlas as one self-contained HTML page, each study's figures embedded."""
    context = _context(results, root, command, overrides) | {
        "images": lambda s: [(p.name, base64.b64encode(p.read_bytes()).decode("ascii"))
                             for p in figures(s)]}
    return report.environment().get_template("atlas.html.j2").render(context)


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)



def write_pages(results: list[ClaimResult], root: Path, command: str,
                overrides: list[str] | None = None) -> list[Path]:
    """atlas.md and atlas.html in root; their paths."""
    from regbench.store.runs import write_atomic

    root.mkdir(parents=True, exist_ok=True)
    pages = [(root / MARKDOWN_FILE, markdown(results, root, command, overrides=overrides)),
             (root / HTML_FILE, html(results, root, command, overrides))]
    for path, text in pages:
        write_atomic(path, text)
    return [path for path, _ in pages]
