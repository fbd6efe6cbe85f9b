"""The package's layering: no import cycle, and the core never imports the layers above it.

Imports are read with ``ast`` (function-local ones included), so a cycle hidden behind a
local import fails here too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import regbench

PACKAGE = Path(regbench.__file__).parent
# Layers from the bottom up; a module may import its own layer and those below it.
LAYERS: dict[str, set[str]] = {
    "config": {"errors", "config"},
    "core": {"runs", "datasets", "batching", "models", "regularizers", "optim", "metrics",
             "callbacks", "train", "device", "stats", "labels", "compare", "validation",
             "calibration", "population"},
    "presentation": {"terminal", "tables", "plots", "report"},
    "orchestration": {"composition", "jobs", "sweep", "bench", "reference", "trackers"},
    "cli": {"cli", "__main__"},
}
UPPER_PACKAGES = {"rich", "typer", "click"}


def layer_of(module: str) -> int:
    return next(i for i, mods in enumerate(LAYERS.values()) if module in mods)


def imports(path: Path) -> set[str]:
    """regbench modules and third-party top-level packages imported anywhere in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            if node.module == "regbench":
                found |= {f"regbench.{a.name}" for a in node.names}
    return found


def graph() -> dict[str, set[str]]:
    out = {}
    for p in PACKAGE.glob("*.py"):
        if p.stem == "__init__":
            continue
        names = imports(p)
        out[p.stem] = {n.split(".")[1] for n in names if n.startswith("regbench.")} - {p.stem}
        out[p.stem] |= {n.split(".")[0] for n in names if n.split(".")[0] in UPPER_PACKAGES}
    return out


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in graph() if not any(m in mods for mods in LAYERS.values())]
    assert not unplaced, f"give these modules a layer in LAYERS: {unplaced}"


def test_no_module_imports_a_layer_above_its_own() -> None:
    g = graph()
    upward = [(m, d) for m, deps in g.items() for d in deps
              if d in g and layer_of(d) > layer_of(m)]
    assert not upward, f"imports pointing up the layers: {upward}"


def test_core_and_config_never_import_the_terminal() -> None:
    g = graph()
    core = LAYERS["config"] | LAYERS["core"]
    bad = [(m, d) for m in core if m in g for d in g[m] if d in UPPER_PACKAGES]
    assert not bad, f"core modules importing rich/typer: {bad}"


def test_no_import_cycle() -> None:
    g = {m: {d for d in deps if d in LAYERS_ALL} for m, deps in graph().items()}
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


def test_the_guard_itself_sees_an_upward_import(tmp_path: Path) -> None:
    fake = tmp_path / "train.py"
    fake.write_text("def f():\n    from regbench import terminal\n    import rich\n")
    assert {"regbench.terminal", "rich"} <= imports(fake)


LAYERS_ALL = set().union(*LAYERS.values())
