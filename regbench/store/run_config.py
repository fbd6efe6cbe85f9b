"""config.yaml: a run's resolved configuration, enough to train the run again.

Written once when a run starts, read back as dotted keys to group and compare runs, and
loaded whole by ``regbench resume`` to train the rest of the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from regbench.errors import RunDirError
from regbench.store.runs import CONFIG_FILE, write_atomic
from regbench.text import one_line


def path(run_dir: Path) -> Path:
    return run_dir / CONFIG_FILE


def exists(run_dir: Path) -> bool:
    return path(run_dir).exists()


def write(run_dir: Path, cfg: Any) -> None:
    """The resolved configuration (a structured config's dataclass) as config.yaml."""
    write_atomic(path(run_dir), OmegaConf.to_yaml(OmegaConf.structured(cfg)))


def keys_of(cfg: Any) -> dict[str, Any]:
    """A configuration (a structured config's dataclass), resolved, as the dotted keys
    config.yaml holds: what summary.json keeps a copy of."""
    container = OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)
    assert isinstance(container, dict)
    return flatten(container)


def load(run_dir: Path) -> DictConfig:
    """config.yaml as the configuration a run is trained from (``regbench resume``)."""
    try:
        cfg = OmegaConf.load(path(run_dir))
    except Exception as e:
        raise RunDirError(f"{path(run_dir)}: unreadable ({one_line(e)})") from e
    if not isinstance(cfg, DictConfig):
        raise RunDirError(f"{path(run_dir)}: unreadable (a YAML mapping of keys is expected)")
    return cfg


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested configuration as {dotted key: value}, in the configuration's own order."""
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(flatten(value, f"{prefix}{key}."))
    return {k.rstrip("."): v for k, v in out.items()}


def read(run_dir: Path) -> dict[str, Any]:
    """A run's config.yaml as dotted keys (all of them, seed included).

    The file is plain YAML (regbench writes it resolved), so PyYAML's C loader reads it,
    some twenty times faster than OmegaConf; OmegaConf reads what PyYAML cannot.
    """
    file = path(run_dir)
    try:
        return flatten(_load_yaml(file.read_text()))
    except FileNotFoundError as e:
        raise RunDirError(f"{run_dir}: no {CONFIG_FILE}; not a regbench run directory") from e
    except Exception as e:
        raise RunDirError(f"{file}: unreadable ({type(e).__name__}: {e})") from e


def _load_yaml(text: str) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        if isinstance(data, dict):
            return data
    except yaml.YAMLError:
        pass
    from omegaconf import OmegaConf

    container = OmegaConf.to_container(OmegaConf.create(text), resolve=False)
    assert isinstance(container, dict)
    return container
