#!/usr/bin/env python3
"""Write docs/figures/ into README.md and the docs pages, between their markers.

Usage: python scripts/splice_figures.py [REPO]   (run by scripts/docs_figures.sh)

A page marks a place for a figure with

    <!-- figure: NAME -->
    (anything: replaced)
    <!-- /figure -->

NAME.txt becomes a console block (its first line is the command), NAME.png an image with
a path relative to the page; under it a line says when, on what machine and by which
script it was taken (docs/figures/NAME.machine.txt when there is one, else machine.txt).
A marker naming a figure that does not exist is an error, so a page never points at
nothing, except a measurement (bench_NAME, testing_NAME, settle_NAME, healthy_NAME,
plugin_NAME) that
nobody has run yet: its block says how to.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

BLOCK = re.compile(r"(<!-- figure: (?P<name>[\w.]+) -->\n).*?(<!-- /figure -->)", re.S)


def provenance(machine: Path, script: str, load: bool) -> str:
    """'Taken on DATE by SCRIPT on CPU (N cores), SYSTEM (versions; settings).', with the
    load average at the start for a benchmark, whose timings depend on it."""
    info = dict(line.split(": ", 1) for line in machine.read_text().splitlines() if ": " in line)
    busy = f", load average {info.get('load average at the start', '?')}" if load else ""
    return (f"Taken on {info.get('date', '?')} by `{script}` on {info.get('cpu', '?')}, "
            f"{info.get('system', '?')}{busy} ({info.get('versions', '?')}; "
            f"{info.get('settings', '?')}).")


# figures whose timings depend on the machine's load: their prefix, and the command that
# writes them
MEASURED = {"bench_gpu_check": "scripts/gpu_check.sh", "bench_": "scripts/benchmarks.sh {rest}",
            "testing_": "scripts/testing_figures.sh", "settle_atlas": "scripts/atlas.sh",
            "settle_": "scripts/settle_flagship.sh",
            "healthy_": "scripts/healthy_losses.py --out docs/figures",
            "plugin_": "scripts/plugin_example.sh"}
HOW_TO = {"testing_": "scripts/testing_figures.sh --tiers"}
PLACEHOLDER = "Not measured yet: "


def render(name: str, page: Path, figures: Path) -> str:
    path = figures / name if "." in name else figures / f"{name}.txt"
    prefix = next((p for p in MEASURED if name.startswith(p)), None)
    script = (MEASURED[prefix].format(rest=name[len(prefix):]) if prefix
              else "scripts/docs_figures.sh")
    if not path.exists():
        if prefix:
            return f"{PLACEHOLDER}`{HOW_TO.get(prefix, script)}` writes it here.\n"
        raise SystemExit(f"{page}: <!-- figure: {name} --> but {path} does not exist")
    # the figure's own machine file, else its script's (testing.machine.txt), else the docs'
    own = [figures / f"{path.stem}.machine.txt", figures / "testing.machine.txt"]
    testing = prefix == "testing_"
    machine = next((m for m in own[:1 + testing] if m.exists()), figures / "machine.txt")
    note = provenance(machine, script, load=prefix is not None)
    if path.suffix == ".png":
        rel = os.path.relpath(path, page.parent)
        return f"![{path.stem.replace('_', ' ')}]({rel})\n\n<sub>{note}</sub>\n"
    text = path.read_text().rstrip("\n")
    fence = "```" if "```" not in text else "````"
    return f"{fence}console\n{text}\n{fence}\n\n<sub>{note}</sub>\n"


def add_block(page: Path, heading: str, name: str) -> None:
    """Give the page a figure block for NAME at the end of the section under `heading`
    (a figure whose first measurement is being written); a page that has one keeps it."""
    text = page.read_text()
    if f"<!-- figure: {name} -->" in text:
        return
    start = text.index(f"\n{heading}\n") + len(heading) + 2
    end = text.find("\n## ", start)
    end = len(text) if end < 0 else end + 1
    block = f"<!-- figure: {name} -->\n<!-- /figure -->\n"
    page.write_text(text[:end].rstrip("\n") + "\n\n" + block + "\n" + text[end:].lstrip("\n"))


def splice(page: Path, figures: Path) -> bool:
    """Rewrite one page's figure blocks; True when it changed."""
    text = page.read_text()
    new = BLOCK.sub(lambda m: m.group(1) + render(m.group("name"), page, figures)
                    + m.group(3), text)
    if new != text:
        page.write_text(new)
    return new != text


def main(argv: list[str]) -> int:
    repo = Path(argv[0] if argv else ".").resolve()
    figures = repo / "docs" / "figures"
    pages = [repo / "README.md", *sorted((repo / "docs").rglob("*.md"))]
    for page in pages:
        if splice(page, figures):
            print(f"updated {page.relative_to(repo)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
