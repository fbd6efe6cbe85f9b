"""Plugins: a user's own regularizers, models and data sets, imported from outside regbench.

A plugin is an importable module that registers parts with ``regbench.plugin``'s
decorators. Three sources name them, all used together:

- installed packages' entry points in the group ``regbench.plugins`` (each names a module);
- the environment variable ``REGBENCH_PLUGINS`` (comma-separated module names);
- ``--plugin MODULE`` on the command line, and the plugins a run or a sweep recorded.

``load`` imports the ones not yet imported and then rebuilds the configuration schema, so a
plugin's keys are ordinary keys. The modules named explicitly are kept in
``REGBENCH_PLUGINS`` (and passed to every sweep job through ``hydra.job.env_set``), so that
every worker process, whatever the launcher, imports them again before it reads a config.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from importlib import metadata

from regbench.errors import ConfigError

ENV = "REGBENCH_PLUGINS"
ENTRY_POINT_GROUP = "regbench.plugins"


@dataclass(frozen=True)
class Plugin:
    """An imported plugin: its module and the version of the package that holds it."""

    module: str
    version: str | None = None

    def record(self) -> dict[str, str | None]:
        """What a run's summary.json and a sweep's sweep.json keep of it."""
        return asdict(self)


class Clash(ValueError):
    """Two parts registered under one name, or one key of reg declared twice."""


LOADED: dict[str, Plugin] = {}  # module name -> the plugin, in the order they were imported


def from_env() -> list[str]:
    """The modules that REGBENCH_PLUGINS names, in order."""
    return split(os.environ.get(ENV, ""))


def split(text: str) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c']."""
    return [name.strip() for name in text.split(",") if name.strip()]


def entry_points() -> dict[str, str]:
    """module -> version of the distribution, for every installed `regbench.plugins` entry point."""
    out: dict[str, str] = {}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        out[ep.value.split(":")[0].strip()] = ep.dist.version if ep.dist is not None else ""
    return out


def package_version(module: str) -> str | None:
    """The version of the installed distribution that provides `module`, or None."""
    top = module.split(".")[0]
    for dist in metadata.packages_distributions().get(top, []):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def load(names: Iterable[str] = ()) -> list[Plugin]:
    """Import every plugin (entry points, REGBENCH_PLUGINS, `names`) not imported yet.

    Returns the plugins imported so far. ConfigError naming the module and why when one
    cannot be imported or registers a part that clashes with another.
    """
    named = list(dict.fromkeys([*from_env(), *(n.strip() for n in names if n.strip())]))
    if named:
        os.environ[ENV] = ",".join(named)  # inherited by every process this one starts
    found = entry_points()
    new = [m for m in dict.fromkeys([*found, *named]) if m not in LOADED]
    for module in new:
        version = found.get(module) or package_version(module)
        import_plugin(module)
        LOADED[module] = Plugin(module, version or None)
    if new:
        rebuild(new)
    return list(LOADED.values())


def import_plugin(module: str) -> None:
    """Import one plugin module; ConfigError naming it and why it failed."""
    if os.getcwd() not in sys.path:  # a module next to the user, as `python -m` finds it
        sys.path.append(os.getcwd())
    try:
        importlib.import_module(module)
    except (ConfigError, Clash) as e:
        raise ConfigError(f"plugin {module}: {e}") from e
    except ModuleNotFoundError as e:
        where = ("" if e.name != module.split(".")[0] else
                 " (looked in the working directory, PYTHONPATH and the installed packages)")
        raise ConfigError(f"plugin {module} cannot be imported: {e}{where}") from e
    except Exception as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise ConfigError(f"plugin {module} cannot be imported: {type(e).__name__}: "
                          f"{reason}") from e


def rebuild(modules: list[str]) -> None:
    """Rebuild the configuration schema with what the new plugins registered."""
    from regbench.training import schema

    try:
        schema.refresh()
    except Clash as e:
        raise ConfigError(f"plugin {', '.join(modules)}: {e}") from e


def recorded() -> list[dict[str, str | None]]:
    """The imported plugins, as a run's summary.json and a sweep's sweep.json keep them."""
    return [p.record() for p in LOADED.values()]


def modules_of(records: object) -> list[str]:
    """The module names of plugins recorded in a summary.json or a sweep.json (or none)."""
    if not isinstance(records, list):
        return []
    return [str(r["module"]) for r in records if isinstance(r, dict) and r.get("module")]
