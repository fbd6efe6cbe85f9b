"""MkDocs hooks: the generated reference, and checks that the hand-written pages keep up.

A page holds ``<!-- reference: NAME -->`` where a section generated from the code goes
(see reference.py); the build replaces the marker with it. A marker with an unknown name,
a dependency of pyproject.toml that the dependencies page does not explain, or a figure
block still waiting for its measurement, is a warning, which fails
``mkdocs build --strict``.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[2] / "scripts"))

import reference  # noqa: E402  (after the path that finds it)
import splice_figures  # noqa: E402  (scripts/: the owner of the figure blocks)

MARKER = re.compile(r"<!-- reference: ([a-z_]+) -->")
ROOT = Path(__file__).parents[2]
SECTIONS: dict[str, Callable[[], str]] = {
    "cli": reference.cli_page,
    "config": reference.config_page,
    "presets": reference.presets_page,
    "run_files": reference.run_files_page,
    "comparison": reference.comparison_page,
    "regularizers": reference.regularizers_page,
    "modules": reference.modules_page,
    "registry": reference.registry_page,
    "plugins": reference.plugins_page,
    "plugin_api": reference.plugin_api_page,
}
_made: dict[str, str] = {}


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def section(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in SECTIONS:
            reference.LOG.warning("%s: unknown reference section %r (known: %s)",
                                  page.file.src_uri, name, ", ".join(SECTIONS))
            return ""
        if name not in _made:
            _made[name] = SECTIONS[name]()
        return f"<!-- generated from the code by docs/_gen/reference.py -->\n\n{_made[name]}"

    if page.file.src_uri == "reference/dependencies.md":
        check_dependencies(markdown)
    check_placeholders(page.file.src_uri, markdown)
    return MARKER.sub(section, markdown)


FIGURE = re.compile(r"<!-- figure: (?P<name>[\w.]+) -->\n(?P<body>.*?)<!-- /figure -->", re.S)


def check_placeholders(uri: str, markdown: str) -> None:
    """Warn about a figure block that still holds splice_figures.PLACEHOLDER: its script
    must be run before the docs are built."""
    for m in FIGURE.finditer(markdown):
        name, body = m.group("name"), m.group("body")
        if body.startswith(splice_figures.PLACEHOLDER):
            reference.LOG.warning("%s: the figure %s holds no figure (%s); a CPU can "
                                  "take it", uri, name, body.strip().removeprefix(
                                      splice_figures.PLACEHOLDER).rstrip("."))


def check_dependencies(markdown: str) -> None:
    """Warn about each dependency or extra of pyproject.toml that the page does not name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [re.split(r"[\s<>=!~;\[]", d, maxsplit=1)[0] for d in project["dependencies"]]
    for extra, deps in project.get("optional-dependencies", {}).items():
        names.append(extra)
        names += [re.split(r"[\s<>=!~;\[]", d, maxsplit=1)[0] for d in deps
                  if not d.startswith(project["name"])]
    for name in dict.fromkeys(names):
        if not re.search(rf"`{re.escape(name)}`", markdown, re.IGNORECASE):
            reference.LOG.warning("reference/dependencies.md does not say what `%s` (in "
                                  "pyproject.toml) is for", name)
