"""What the terminal shows, all of it: the progress bar (a training-loop callback), the
overfitting-gap table, sweep job lines, the comparison, the dataset list, the benchmark.

The library below never imports this module; the CLI and the orchestration layer do.
"""

from __future__ import annotations

import io
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn
from rich.progress import Progress as RichProgress
from rich.table import Table
from rich.text import Text

from regbench.store import runs
from regbench.store import summary as summary_file
from regbench.store.summary import Summary
from regbench.training.callbacks import Callback
from regbench.text import number, plural

if TYPE_CHECKING:
    from regbench.study.compare import Comparison
    from regbench.store.metrics import Row

# A run folder's files, in the order the files: line names them.
RUN_FILES = (runs.METRICS_FILE, runs.SUMMARY_FILE, runs.CONFIG_FILE, runs.CHECKPOINT_FILE,
             runs.LOG_FILE)
# Seconds between reads of the running loss: each read waits for the device to catch up.
LOSS_REFRESH_S = 1.0

console = Console(stderr=True)
err = Console(stderr=True, highlight=False)


class Progress(Callback):
    """One bar line per epoch: batches done, running loss, images/s, then val metrics.

    Written to a pipe or a file, where a bar is not redrawn, each epoch's line is printed
    plain and flushed when the epoch ends, so that `regbench run > log 2>&1` shows it then.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.plain = False  # a pipe or a file: lines, not a bar
        self.epochs = self.steps = 0
        self.bar: RichProgress | None = None
        self.task: Any = None
        self.images = 0
        self.t0 = self.last_read = self.t_last = 0.0

    def on_train_start(self, epochs: int, steps_per_epoch: int) -> None:
        self.epochs, self.steps = epochs, steps_per_epoch
        self.plain = self.enabled and not console.is_terminal
        self.bar = RichProgress(
            TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(bar_width=12), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[speed]}"),
            TextColumn("{task.fields[val]}"),
            console=console, disable=not self.enabled or self.plain, transient=False)
        self.bar.start()

    def on_train_end(self) -> None:
        if self.bar is not None:
            self.bar.stop()

    def on_epoch_start(self, epoch: int) -> None:
        assert self.bar is not None
        self.task = self.bar.add_task("", total=self.steps, epoch=epoch, epochs=self.epochs,
                                      loss="-", speed="", val="")
        self.images, self.t0 = 0, time.perf_counter()
        self.last_read = self.t0

    def on_batch_end(self, n_images: int, running_loss: Callable[[], float]) -> None:
        """Count a finished batch; read the running loss at most once per LOSS_REFRESH_S."""
        self.images += n_images
        now = self.t_last = time.perf_counter()
        fields: dict[str, Any] = {}
        if now - self.last_read >= LOSS_REFRESH_S:
            self.last_read = now
            fields = {"loss": loss_text(running_loss()),
                      "speed": f"{self.images / (now - self.t0):,.0f} img/s"}
        assert self.bar is not None
        self.bar.update(self.task, advance=1, **fields)

    def on_epoch_end(self, row: Row) -> None:
        assert self.bar is not None
        speed = self.images / max(self.t_last - self.t0, 1e-9)
        fields = {"loss": loss_text(row["train_loss_running"]), "speed": f"{speed:,.0f} img/s",
                  "val": f"train/val acc {row['train_acc']:.3f}/{row['val_acc']:.3f}"}
        self.bar.update(self.task, completed=self.steps, **fields)
        if self.plain:
            console.print(f"epoch {row['epoch']}/{self.epochs} loss {fields['loss']} "
                          f"{fields['speed']} {fields['val']}", soft_wrap=True, markup=False)
            console.file.flush()


def loss_text(loss: float) -> str:
    """A loss for the epoch line: 0.1234, or 9.19e+30 once it has blown up (never 31 digits)."""
    return f"{loss:.4f}" if abs(loss) < 1e4 else f"{loss:.3g}"


# ------------------------------------------------------------------- lines of prose


def wrapped(text: str, width: int | None, whole: tuple[str, ...] = (), indent: str = "  "
            ) -> list[str]:
    """text as lines of at most width characters, broken between words only.

    Each of `whole` (a command to paste, a path) stays in one piece; a word or piece that
    does not fit after others starts a line of its own (a long path on its own line), and
    one longer than width is left whole for the terminal to fold. Continuation lines are
    indented. No width (a pipe or a file): the text as one line.
    """
    if width is None or len(text) <= width:
        return [text]
    lead = text[:len(text) - len(text.lstrip(" "))]  # an indented line stays indented
    glued, indent = text.lstrip(" "), lead + indent
    for piece in whole:
        glued = glued.replace(piece, piece.replace(" ", "\0"))
    lines: list[str] = []
    line, bare = lead, True  # bare: the line holds its indent and no word yet
    for word in glued.split(" "):
        candidate = line + word if bare else f"{line} {word}"
        if bare or len(candidate) <= width:
            line, bare = candidate, False
            continue
        lines.append(line)
        line = indent + word
    lines.append(line)
    return [x.replace("\0", " ") for x in lines]


def say(out: Console, text: str, whole: tuple[str, ...] = ()) -> None:
    """Print a line of prose (a verdict, a hint, a file list, a job line) that a terminal
    narrower than it shows broken between words, never inside a number, a key, a path or
    a command in `whole`."""
    for line in wrapped(text, out.width if out.is_terminal else None, whole):
        out.print(line, soft_wrap=True, markup=False, highlight=False)


# a number with what it measures, kept on one line when a terminal breaks a job's or a
# settle's line: 'val acc 97.50%', 'gap +2.50 pts', '+0.50 [-4.12, +5.12] pts', 'at 5 seeds'
MEASURES = re.compile(r"val acc \S+%|best epoch \d+|gap [+-]\S+ pts|\d+\.\d s\b|"
                      r"[+-]\d[\d.]* \[[^\]]*\] pts|at \d+ seeds|~[\d,]+ seeds|"
                      r"\d+ (?:h|min) \d+ (?:min|s)|\(\d+ runs at most\)|\d+ of \d+ comparisons?")


def say_measures(out: Console, text: str) -> None:
    """say(), never parting a number from what it measures (MEASURES)."""
    say(out, text, tuple(MEASURES.findall(text)))


def warn(message: str) -> None:
    """One warning line on stderr, printed as it is (no rich markup)."""
    say(err, f"regbench: warning: {message}")


_NOTED: set[str] = set()  # notes already printed by this process (one sweep)


def note_once(message: str) -> None:
    """Print a note on stderr the first time only: a sweep says it once, not once per job."""
    if message not in _NOTED:
        _NOTED.add(message)
        say(err, message)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _num(x: float | None, fmt: str = ".4f") -> str:
    """x with fmt; a loss that exploded (1e6 and more) in 3 significant digits, 5.98e+30."""
    if x is None:
        return "-"
    return number(x, fmt) if abs(x) < 1e6 else format(x, fmt.replace(".4f", ".3g"))


def gap_table(summary: Summary) -> Table:
    """The overfitting gap at the best and at the last epoch, plus onset and test accuracy."""
    table = Table(title="Overfitting gap", box=box.SIMPLE_HEAVY, title_justify="left")
    table.add_column("")
    table.add_column("epoch", justify="right")
    for name in ("train acc", "val acc", "gap acc (pts)", "train loss", "val loss", "gap loss"):
        table.add_column(name, justify="right")
    for label, r in (("best", summary.best), ("last", summary.last)):
        if r is None:
            continue
        table.add_row(f"{label}", str(r.epoch), _pct(r.train_acc), _pct(r.val_acc),
                      _num(100 * r.gap_acc, "+.2f"), _num(r.train_loss), _num(r.val_loss),
                      _num(r.gap_loss, "+.4f"))
    onset = summary.onset_epoch
    table.caption = (f"best = lowest {summary.monitor.replace('_', ' ')}; "
                     f"train metrics measured in eval mode (dropout off); "
                     f"overfitting onset: {'epoch ' + str(onset) if onset else 'none'}; "
                     f"test acc: {_pct(summary.test_acc)}{_tested(summary)}")
    table.caption_justify = "left"
    return table


def _tested(summary: Summary) -> str:
    """' (weights of epoch 8, the last)': whose weights the test accuracy is of."""
    kept = summary.kept_epoch
    best = summary.best.epoch if summary.best else None
    last = summary.last.epoch if summary.last else None
    if kept is None or summary.test_acc is None:
        return ""
    which = "the best and the last" if kept == best == last else \
        "the last" if kept == last else "the best" if kept == best else "kept"
    return f" (weights of epoch {kept}, {which})"


def print_result(summary: Summary, run_dir: str, out: Console | None = None) -> None:
    """The gap table, the verdict line and where the files are."""
    out = out or table_console()
    if summary.epochs_run:
        print_table(gap_table(summary), out)
    say(out, f"verdict: {summary.verdict}")
    mc = summary.mc_dropout
    if mc and summary.test_acc is not None:
        out.print(f"test, dropout off (weight scaling): acc {_pct(summary.test_acc)}, "
                  f"NLL {summary.test_loss:.4f}, ECE {summary.test_ece:.4f}; mean of "
                  f"{mc['samples']} passes with dropout on: acc {_pct(mc['test_acc'])}, "
                  f"NLL {mc['test_nll']:.4f}, ECE {mc['test_ece']:.4f}")
    speed = summary.train_images_per_s
    say(out, f"status {summary.status}, {plural(summary.epochs_run, 'epoch')} in "
             f"{summary.wall_time_s:.1f} s"
             + (f" ({speed:,.0f} train images/s on {summary.device})" if speed else ""))
    names = [n for n in RUN_FILES if (Path(run_dir) / n).exists()]
    say(out, f"files: {run_dir}/{', '.join(names)}")
    resume = f"regbench resume {run_dir}"
    if summary.status == "interrupted" and summary.epochs_run:
        say(out, f"continue it with: {resume}", (resume,))
    elif summary.status == "interrupted":
        say(out, f"no epoch finished; start it again with: {resume}", (resume,))


def job_line(run_dir: Path, action: str, name: str) -> str:
    """One line on a finished sweep job: its name, status, val accuracy and gap."""
    s = summary_file.load(run_dir)
    if s is None:
        return f"{name}: no summary.json ({run_dir})"
    best = s.best
    if action == "skip":
        return f"{name}: already {s.status}, kept"
    if s.status == "diverged":
        return f"{name}: {s.why_unfinished()}"
    if not s.finished or best is None:
        return f"{name}: {s.status}: {s.why_unfinished()}"
    learned = ", did not learn (chance level)" if s.at_chance else ""
    return (f"{name}: {s.status}{learned}, val acc {_pct(best.val_acc)} at best epoch "
            f"{best.epoch}, gap {100 * best.gap_acc:+.2f} pts, {s.wall_time_s:.1f} s")


def print_job_line(run_dir: Path, action: str, name: str) -> None:
    """Print a sweep job's one line (jobs in parallel workers each print their own)."""
    say_measures(Console(highlight=False), job_line(run_dir, action, name))


def table_console() -> Console:
    """stdout for wide tables: the terminal's width ($COLUMNS when set), or 160 columns when
    piped to a file."""
    sized = sys.stdout.isatty() or os.environ.get("COLUMNS", "").isdigit()
    return Console(highlight=False, width=None if sized else 160)


# ------------------------------------------------------------------------- comparisons


def comparison_table(comp: Comparison, columns: list[str] | None = None,
                     width: int | None = None) -> Table:
    """The comparison as a rich Table that fits `width` (default: the table console's).

    Numbers and labels are never split: number columns do not wrap and the configuration
    column wraps only between its KEY=VALUE tokens. When the chosen columns do not fit,
    the least important ones (the last) are left out and the caption says which.
    """
    from regbench.present import tables

    width = width or table_console().width
    wanted = list(columns or tables.DEFAULT_COLUMNS)
    shown = list(wanted)
    while len(shown) > 2 and _narrowest(comp, shown) > width:
        shown.pop()
    return _comparison_table(comp, shown, [n for n in wanted if n not in shown])


def comparison_blocks(comp: Comparison, columns: list[str], width: int | None = None
                      ) -> list[Table]:
    """Every one of the chosen columns, as tables side by side would not fit `width`: one
    block after another, each with the configuration column, the caption under the last."""
    width = width or table_console().width
    blocks: list[list[str]] = []
    current = ["config"]
    for name in (n for n in columns if n != "config"):
        if len(current) > 1 and _narrowest(comp, [*current, name]) > width:
            blocks.append(current)
            current = ["config", name]
        else:
            current.append(name)
    blocks.append(current)
    return [_comparison_table(comp, block, [], title=f"Comparison ({n} of {len(blocks)})"
                              if len(blocks) > 1 else "Comparison", caption=n == len(blocks))
            for n, block in enumerate(blocks, 1)]


def _narrowest(comp: Comparison, shown: list[str]) -> int:
    """Characters the table needs with its configuration column wrapped as far as it can be."""
    table = _comparison_table(comp, shown, [], squeeze=True)
    probe = Console(width=10_000, file=io.StringIO(), color_system=None)
    probe.print(table)
    return max(cell_len(line) for line in probe.file.getvalue().splitlines())  # type: ignore[attr-defined]


def _comparison_table(comp: Comparison, shown: list[str], hidden: list[str],
                      squeeze: bool = False, title: str = "Comparison",
                      caption: bool = True) -> Table:
    from regbench.present import tables

    header, rows = tables.display_rows(comp, columns=shown)
    text = tables.caption(comp)
    hidden = [n for n in hidden if comp.baseline is not None or not tables.COLUMNS[n].difference]
    if hidden:
        text += (f" Not shown at this width: {', '.join(hidden)} (--columns all, a wider "
                 "terminal, or --format csv/json show them).")
    table = Table(title=None if squeeze else title, title_justify="left",
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1),
                  collapse_padding=True,
                  caption=None if squeeze or not caption else Text(text), caption_justify="left")
    # the column breaks between a label's KEY=VALUE tokens, never inside its mark
    longest = max((len(unit) for cells in rows for unit in [*_units(cells[0]), header[0]]),
                  default=0)
    table.add_column(header[0], justify="left", min_width=longest,
                     max_width=longest if squeeze else None, overflow="fold")
    for name in header[1:]:
        table.add_column(name, justify="right", no_wrap=True)
    for cells, best in zip(rows, comp.table["best"], strict=True):
        table.add_row(*map(Text, cells), style="bold" if best else None)
    return table


def _units(cell: str) -> list[str]:
    """The pieces of a configuration cell that stay whole: each token of the label, and its
    mark, '(best, did not learn)', as one."""
    return [u for line in cell.split("\n")
            for u in ([line] if line.startswith("(") else line.split())]


def print_comparison(comp: Comparison, out: Console | None = None,
                     columns: list[str] | None = None, every: bool = False) -> None:
    """The comparison table, then the runs dropped as duplicates and those left out of it.

    every: show every one of `columns` (chosen with --columns), in blocks if they do not
    fit side by side; else the least important are left out to fit and the caption says so.
    """
    from regbench.present import tables

    out = out or table_console()
    if every and columns:
        for table in comparison_blocks(comp, columns, out.width):
            print_table(table, out)
    else:
        print_table(comparison_table(comp, columns, out.width), out)
    for line in (tables.chance_text(comp) + tables.warnings_text(comp)
                 + tables.failed_text(comp)).splitlines():
        say(out, line)


def print_sweep_end(sweep_dir: Path, comp: Comparison | None, figures: list[Path],
                    unfinished: list[tuple[str, str, str, Path]], n_jobs: int,
                    resumable: bool = True, diverged: str | None = None) -> None:
    """A finished sweep: its comparison and files, the line naming its diverged jobs, then
    each job that did not finish."""
    out = table_console()
    if comp is not None:
        print_comparison(comp, out)
        say(out, f"table: {sweep_dir / 'summary.csv'}; figures: "
                 + ", ".join(p.name for p in figures))
    if diverged:
        say(out, diverged)
    others = [u for u in unfinished if u[1] != "diverged"]
    for name, status, why, path in unfinished:
        if status == "diverged":
            say(out, f"  {name}: {why} ({path})")
    if others:
        out.print(f"{len(others)} of {n_jobs} jobs did not finish (not in the table):")
        for name, status, why, path in others:
            say(out, f"  {name}: {status}: {why} ({path})")
        if resumable:
            resume = f"regbench sweep --resume {sweep_dir}"
            say(out, f"rerun them with: {resume}", (resume,))


# ---------------------------------------------------------------- fitting the terminal


def print_table(table: Table, out: Console | None = None) -> None:
    """Print the table if it fits the console without splitting a word or a number; else
    the same cells as one block per row ('header: value' lines), which fit any width.

    A line of the blocks longer than the terminal (a long path) is left whole for the
    terminal to wrap, never cut or broken by a newline; the caption is prose and wraps
    between words. Any table of text cells can be printed this way.
    """
    out = out or table_console()
    if fits(table, out.width):
        if out.is_terminal:
            out.print(table)
            return
        with out.capture() as captured:  # to a pipe or a file: the lines without trailing blanks
            out.print(table)
        for line in captured.get().splitlines():
            out.print(line.rstrip(), soft_wrap=True, markup=False, highlight=False)
        return
    for line in table_records(table):
        out.print(line, soft_wrap=True)
    if table.caption:
        out.print(Text(_plain(table.caption)))


def fits(table: Table, width: int) -> bool:
    """Whether the table, laid out in width columns, shows every word of every cell whole.

    Rich wraps cells between words, but a word longer than its column is cut or folded;
    rendering once and looking for each word is the test that cannot disagree with rich.
    """
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(table)
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    words = {w for col in table.columns for cell in [col.header, *col.cells]
             for w in _plain(cell).split()}
    return all(w in shown for w in words)


def table_records(table: Table) -> list[Text]:
    """A table as one block per row: the first cell as its heading, then 'header: value'
    (the title first; the caption is left to the caller)."""
    columns = [[_plain(c) for c in col.cells] for col in table.columns]
    headers = [" ".join(_plain(col.header).split()) for col in table.columns]
    lines = [Text(_plain(table.title), style="bold")] if table.title else []
    for i in range(table.row_count):
        lines.append(Text(columns[0][i], style="bold"))
        lines += [Text(f"  {h}: {col[i]}") for h, col in zip(headers[1:], columns[1:], strict=True)
                  if col[i]]
    return lines


def _plain(cell: Any) -> str:
    """A cell's text without markup."""
    return cell.plain if isinstance(cell, Text) else Text.from_markup(str(cell)).plain


# ---------------------------------------------------------------- datasets and benchmark


def datasets_table(root: str, rows: list[tuple[str, bool | None, str, str]]) -> Table:
    """name, present (None: the user's own files, named by a key), where the files are
    expected, source."""
    table = Table(title=f"datasets (root: {Path(root).resolve()})", title_justify="left")
    table.add_column("name", no_wrap=True)
    table.add_column("present", no_wrap=True)
    table.add_column("files expected in", no_wrap=True)  # a path is of no use cut
    table.add_column("source", min_width=20)
    for name, present, where, source in rows:
        table.add_row(name, "-" if present is None else "yes" if present else "no", where, source)
    return table


def bench_table(result: dict[str, Any]) -> Any:
    """The figures as a rich table: per network, the reference loop then regbench's."""
    t = Table(title=f"regbench bench on {result['device']} ({result['machine']}), "
                    f"median of {plural(result['reps'], 'rep')}", box=box.SIMPLE_HEAD, title_justify="left")
    for col in ("network", "loop", "img/s", "train s", "full s", "ref/rb", "GFLOP/s", "peak"):
        t.add_column(col, justify="left" if col in ("network", "loop") else "right")
    for key, m in result["models"].items():
        for loop in ("reference", "regbench"):
            f = m[loop]
            rate = m["train_flops_per_s" if loop == "regbench" else "reference_train_flops_per_s"]
            ratio = f"{m['ratio_train']:.2f} {m['ratio_full']:.2f}" if loop == "regbench" else ""
            t.add_row(key if loop == "reference" else f"{m['train_images']:,} img", loop,
                      f"{f['train_images_per_s']:,.0f}", f"{f['train_epoch_s']:.2f}",
                      f"{f['full_epoch_s']:.2f}", ratio,
                      f"{rate / 1e9:,.1f}", f"{100 * rate / result['matmul_peak_flops_per_s']:.1f}%")
        for size, p in m.get("population", {}).items():
            rate = p["member_images_per_s"] * m["train_flops_per_image"]
            t.add_row("", f"pop M={size}", f"{p['member_images_per_s']:,.0f}", "", "",
                      f"{p['vs_sequential']:.2f}", f"{rate / 1e9:,.1f}",
                      f"{100 * rate / result['matmul_peak_flops_per_s']:.1f}%")
    load = "/".join("-" if v is None else f"{v:.1f}" for v in result["load_average"])
    lines = ["img/s: training images/s of the train pass; train s, full s: seconds per epoch, "
             "train pass alone and with the eval-mode passes over train and val; ref/rb: "
             "reference seconds / regbench seconds (train, full; median of per-repetition ratios); "
             "peak: share of the matmul peak; pop M: M models trained as one "
             "(hydra/launcher=population), img/s counting every member's images, ref/rb column: "
             "its rate / regbench's sequential rate",
             f"matmul peak ({result['train_dtype']}): {result['matmul_peak_flops_per_s'] / 1e9:,.1f} "
             f"GFLOP/s; peak host RSS {result['peak_rss_mb']:,.0f} MiB; "
             f"host load average at start/end {load} (other processes slow the timings down)"]
    if result.get("bf16_spec_peak_flops_per_s"):
        spec = result["bf16_spec_peak_flops_per_s"]
        shares = ", ".join(f"{k} {100 * m['flops_fraction_of_spec_peak']:.2f}%"
                           for k, m in result["models"].items())
        lines.append(f"data-sheet dense bf16 peak of this GPU: {spec / 1e12:,.0f} TFLOP/s; "
                     f"regbench's train pass reaches {shares} of it")
    for key, m in result["models"].items():
        dev = f", peak device memory {m['peak_device_mb']:,.0f} MiB" if m["peak_device_mb"] else ""
        lines.append(f"{key} ({m['model']}): regbench's full epoch = {m['full_vs_reference_train']:.2f}x "
                     f"the reference's train-only epoch{dev}")
    if result["note"]:
        lines.append(result["note"])
    t.caption = "\n".join(lines)
    t.caption_justify = "left"
    return t

