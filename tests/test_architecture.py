"""The package's layering: one folder per layer, imports pointing down, no cycle.

Imports are read with ``ast`` (function-local ones included), so an upward import or a
cycle hidden behind a local import fails here too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import regbench

PACKAGE = Path(regbench.__file__).parent
# Layers from the bottom up: a module may import its own layer and those below it.
LAYERS = ["errors", "config", "data", "store", "training", "study", "present", "launch", "cli"]
# Top-level modules that belong to a layer without a folder of their own.
MODULE_LAYER = {"errors": "errors", "text": "errors", "cli": "cli", "__main__": "cli", "__init__": "errors",
                "plugin": "training",  # text: numbers and counts in words, for every layer
                "conf": "config"}
CORE = {"errors", "config", "data", "store", "training", "study"}
UPPER_PACKAGES = {"rich", "typer", "click"}


def unit_of(path: Path) -> str:
    """'training.loop' for regbench/training/loop.py, 'cli' for regbench/cli.py."""
    rel = path.relative_to(PACKAGE).with_suffix("")
    return ".".join(rel.parts)


def layer_of(unit: str) -> str:
    top = unit.split(".")[0]
    return MODULE_LAYER.get(top, top)


def imports(path: Path) -> set[str]:
    """regbench modules and third-party top-level packages imported anywhere in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            if node.module.startswith("regbench"):
                found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def regbench_units(names: set[str], known: set[str]) -> set[str]:
    """The package's modules among imported names (longest known prefix of each)."""
    out = set()
    for n in names:
        if not n.startswith("regbench."):
            continue
        parts = n.split(".")[1:]
        for k in range(len(parts), 0, -1):
            cand = ".".join(parts[:k])
            if cand in known:
                out.add(cand)
                break
    return out


def graph() -> dict[str, set[str]]:
    files = {unit_of(p): p for p in PACKAGE.rglob("*.py")}
    known = set(files) | {u.rsplit(".", 1)[0] for u in files if u.endswith(".__init__")}
    out = {}
    for unit, path in files.items():
        names = imports(path)
        deps = regbench_units(names, known) - {unit}
        out[unit] = {d.removesuffix(".__init__") for d in deps}
        out[unit] |= {n.split(".")[0] for n in names if n.split(".")[0] in UPPER_PACKAGES}
    return out


def test_every_module_is_in_a_layer() -> None:
    unplaced = [u for u in graph() if layer_of(u) not in LAYERS]
    assert not unplaced, f"put these modules in a layer folder: {unplaced}"


def test_no_module_imports_a_layer_above_its_own() -> None:
    g = graph()
    upward = [(m, d) for m, deps in g.items() for d in deps
              if d not in UPPER_PACKAGES and LAYERS.index(layer_of(d)) > LAYERS.index(layer_of(m))]
    assert not upward, f"imports pointing up the layers: {upward}"


def test_core_never_imports_the_terminal() -> None:
    bad = [(m, d) for m, deps in graph().items() if layer_of(m) in CORE
           for d in deps if d in UPPER_PACKAGES]
    assert not bad, f"core modules importing rich/typer: {bad}"


def test_no_import_cycle() -> None:
    g = {m: {d for d in deps if d not in UPPER_PACKAGES} for m, deps in graph().items()}
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(m: str, path: list[str]) -> None:
        assert m not in visiting, f"import cycle: {' -> '.join(path + [m])}"
        if m in done:
            return
        visiting.add(m)
        for d in sorted(g.get(m, ())):
            visit(d, path + [m])
        visiting.discard(m)
        done.add(m)

    for m in sorted(g):
        visit(m, [])


@pytest.mark.parametrize("source, expected", [
    ("def f():\n    from regbench.present import terminal\n    import rich\n",
     {"present.terminal", "rich"}),
    ("from regbench.present.terminal import err\n", {"present.terminal"}),
])
def test_the_guard_sees_an_upward_import(tmp_path: Path, source: str, expected: set[str]) -> None:
    fake = tmp_path / "loop.py"
    fake.write_text(source)
    names = imports(fake)
    known = {"present.terminal", "present"}
    found = regbench_units(names, known) | {n for n in names if n in UPPER_PACKAGES}
    assert expected <= found
