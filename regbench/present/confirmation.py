"""The confirmation's table: each of a search's best trials against the baseline, re-run
with fresh seeds, with the verdict and how far the search overestimated it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich import box
from rich.table import Table
from rich.text import Text

from regbench.present.terminal import print_table, table_console

if TYPE_CHECKING:
    from regbench.study.confirmation import ConfirmRow

def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _pts(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.2f}"


def _pts1(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.1f}"


def short(value: str) -> str:
    """'reg.dropout.fc=0.439' for 'reg.dropout.fc=0.43905080314185985': 3 significant digits."""
    key, _, text = value.partition("=")
    try:
        number = float(text)
    except ValueError:
        return value
    return f"{key}={number:.3g}" if "." in text or "e" in text else value


def confirm_table(table_rows: list[ConfirmRow], comparisons: int) -> Table:
    """The rows as a rich Table that fits 80 columns (each interval under its difference)."""
    caption = ("Val accuracy (%) at each run's best epoch. search: the trial's score in the "
               "search (one seed); confirmed: mean ± sample std over n fresh seeds; Δ: "
               "confirmed minus baseline in points, paired by seed, with its "
               + (f"interval at the level of the Holm step that decided it ({comparisons} "
                  "candidates, as in summarize: it excludes 0 exactly when the difference is "
                  "established)" if comparisons > 1 else "95% interval")
               + "; better/worse: established against the baseline; over: search minus "
               "confirmed in points, how far the search overestimated the trial (the "
               "winner's curse).")
    table = Table(title="Confirmation", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False, padding=(0, 1), collapse_padding=True, caption=Text(caption),
                  caption_justify="left")
    table.add_column("candidate", justify="left", overflow="fold")
    for name in ("search", "confirmed", "n", "Δ", "verdict", "over"):
        table.add_column(name, justify="right", no_wrap=name != "verdict")
    for r in table_rows:
        confirmed = "-" if r.mean is None else f"{_pct(r.mean)}\n± {_pct(r.std)}"
        delta = "" if r.d is None else f"{_pts(r.d)}\n[{_pts1(r.low)}, {_pts1(r.high)}]"
        table.add_row(" ".join([r.name, *map(short, r.values)]), _pct(r.search) if r.search else "",
                      confirmed, str(r.seeds), delta, r.verdict,
                      _pts(r.overestimate) if r.overestimate is not None else "")
    return table


def print_confirmation(table_rows: list[ConfirmRow], comparisons: int) -> None:
    """Print the confirmation table (as blocks per row where the terminal is too narrow)."""
    print_table(confirm_table(table_rows, comparisons), table_console())
