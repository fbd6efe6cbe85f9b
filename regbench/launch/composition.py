"""Composing a configuration from overrides, and checking it before anything runs.

Overrides are told apart from Hydra's flags, composed once with Hydra's compose API and
checked, so that a mistyped key or a bad value ends in one line (a ConfigError, exit code
2) before any folder is made or any data is read. Hydra's own errors are translated into
lines that name the key and what is allowed.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regbench.errors import ConfigError
from regbench.store.sweeps import key_of
from regbench.text import one_line

if TYPE_CHECKING:
    from regbench.training.schema import RegbenchConfig

# Hydra flags that take the next word as their value.
FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name",
                    "-cn", "--config-dir", "-cd", "--experimental-rerun"}
# Hydra flags after which Hydra prints something and runs no job.
NO_JOB_FLAGS = {"--cfg", "-c", "--info", "-i", "--help", "-h", "--hydra-help", "--shell-completion",
                "-sc", "--experimental-rerun"}
# Every flag Hydra's command line knows (`regbench run --hydra-help` lists them); any other
# --option is a mistake, most often a config key written as an option (`--epochs 3`).
HYDRA_FLAGS = FLAGS_WITH_VALUE | NO_JOB_FLAGS | {"--resolve", "--run", "-r", "--multirun", "-m",
                                                 "--version"}
# Flags naming a folder: Hydra resolves a relative one against the regbench package, so
# they are made absolute (against the working directory, as a user means them).
CONFIG_DIR_FLAGS = {"--config-path", "-cp", "--config-dir", "-cd"}
# Config groups, given on the command line as group=option.
GROUPS = ("dataset", "model", "reg", "optim", "logger", "experiment")
# A value that Hydra expands into several jobs: a comma list or a sweep function.
SWEEP_VALUE = re.compile(r"=.*(,|\b(range|glob|choice|interval)\()")
INFO_TOPICS = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}

# regbench's own Hydra plugins whose config names other plugins may also use.
OWN_PLUGINS = ("hydra_plugins.regbench_optuna.optuna_sweeper", "hydra_plugins.regbench_ray.ray_launcher")


def claim_plugin_names() -> None:
    """Make regbench's plugins the ones behind their names (hydra/sweeper=optuna, ...).

    Hydra imports every installed plugin once per process, and each stores its configs in
    the ConfigStore as it is imported; Hydra's own hydra-optuna-sweeper, where a user still
    has it, uses the same names. Storing regbench's configs again after that import wins.
    """
    import importlib

    from hydra.core.plugins import Plugins

    Plugins.instance()  # imports every plugin (once per process)
    for name in OWN_PLUGINS:
        importlib.import_module(name).register()


def split_args(args: list[str]) -> tuple[list[str], list[str]]:
    """(overrides, Hydra flags with their values) from a raw argument list.

    ConfigError for an option Hydra does not know (naming the config key it may mean), a
    flag without its value, and a config folder that is not there; config folders come
    back absolute.
    """
    overrides: list[str] = []
    flags: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        nxt = args[i + 1] if i + 1 < len(args) else None
        if a.startswith("-"):
            name, eq, inline = a.partition("=")
            if name not in HYDRA_FLAGS:
                raise unknown_option(name, inline if eq else plain_value(nxt))
            if name in FLAGS_WITH_VALUE:  # --flag VALUE or --flag=VALUE: kept as two words
                value = inline if eq else nxt
                if not value or not eq and value.startswith("-"):
                    raise ConfigError(f"{name} needs a value, e.g. {example_flag(name)}")
                flags += [name, absolute_dir(name, value) if name in CONFIG_DIR_FLAGS else value]
                i += 0 if eq else 1
            else:
                flags.append(a)
                if a in ("--info", "-i") and nxt in INFO_TOPICS:  # its topic is optional
                    flags.append(nxt)  # type: ignore[arg-type]
                    i += 1
        else:
            overrides.append(a)
        i += 1
    return overrides, flags


def plain_value(word: str | None) -> str | None:
    """The word after an unknown option, when it reads as that option's value."""
    return word if word is not None and not word.startswith("-") and "=" not in word else None


def example_flag(flag: str) -> str:
    if flag in CONFIG_DIR_FLAGS:
        return f"{flag} results/default/RUN_ID (a run folder)"
    if flag in ("--config-name", "-cn"):
        return f"{flag} config"
    if flag in ("--cfg", "-c"):
        return f"{flag} job"
    return f"{flag} VALUE"


def absolute_dir(flag: str, folder: str) -> str:
    """A --config-path / --config-dir folder made absolute; ConfigError if it is not there."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        what = "not a folder" if path.exists() else "no such folder"
        wanted = ("a run folder (it holds config.yaml)" if flag in ("--config-path", "-cp")
                  else "a folder of config files")
        raise ConfigError(f"{flag} {folder}: {what}; give {wanted}")
    return str(path.resolve())


def unknown_option(name: str, value: str | None) -> ConfigError:
    """The error for an --option that is not Hydra's: the override it most likely means.

    `--epochs 3` names the key whose last part is `epochs`: trainer.epochs=3; `--train-size`
    is dataset.train_size; `--reg l2` is the group override reg=l2.
    """
    from regbench.training.schema import known_keys

    word = name.lstrip("-").replace("-", "_")
    keys = [k for k in known_keys() if k not in GROUPS]
    leaves: dict[str, list[str]] = {}
    for key in keys:
        leaves.setdefault(key.rsplit(".", 1)[-1], []).append(key)
    if word in GROUPS:
        matches = [word]
    elif word in keys:
        matches = [word]
    elif word in leaves:
        matches = leaves[word]
    else:
        close = difflib.get_close_matches(word, list(leaves), n=1, cutoff=0.75)
        matches = leaves[close[0]] if close else []
    if not matches:
        return ConfigError(f"{name} is not an option: settings are key=value overrides, e.g. "
                           "trainer.epochs=3 (`regbench config` lists them)")
    shown = [f"{k}={value if value is not None else 'VALUE'}" for k in matches[:4]]
    listed = shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]
    return ConfigError(f"{name} is not an option; did you mean {listed}? (settings are "
                       "key=value overrides; `regbench config` lists them)")


def presets(group: str) -> list[str]:
    """The preset names of a config group (conf/<group>/*.yaml)."""
    from regbench.config.schema import CONF_DIR

    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def experiment_presets() -> list[str]:
    return presets("experiment")


def sweep_presets() -> list[str]:
    """Experiment presets that set sweep axes (hydra.sweeper.params): studies for `sweep`."""
    from regbench.config.schema import CONF_DIR

    return [n for n in experiment_presets()
            if "sweeper:" in (CONF_DIR / "experiment" / f"{n}.yaml").read_text()]


def rewrite_experiment(overrides: list[str]) -> list[str]:
    """`experiment=NAME` without a preset files runs under results/NAME/ with no preset."""
    out = []
    for o in overrides:
        m = re.fullmatch(r"experiment=([^,]*)", o)
        if m and m.group(1) not in experiment_presets():
            os.environ["REGBENCH_EXPERIMENT"] = m.group(1)
            o = "experiment=default"
        out.append(o)
    return out


def refuse_sweep_preset(cfg: Any) -> None:
    """ConfigError if the composed configuration is a sweep study, which `run` cannot train."""
    params = cfg.hydra.sweeper.get("params") or {}
    if params:
        name = os.environ.get("REGBENCH_EXPERIMENT") or cfg.get("experiment")
        raise ConfigError(f"experiment={name} is a sweep over {', '.join(params)}: run it with "
                          f"`regbench sweep experiment={name}`; `regbench run` trains one configuration")


def explain(e: Exception, overrides: list[str]) -> str:
    """Turn a Hydra / OmegaConf composition error into one line that says what is allowed."""
    from hydra.errors import MissingConfigException, OverrideParseException

    from regbench.training.schema import suggest_key

    cause = e.__cause__ or e
    text = str(e)
    m = re.search(r"config directory '([^']+)'", text)
    if "Primary config directory not found" in text and m:
        return f"--config-path {m.group(1)}: no such folder; give a run folder (it holds config.yaml)"
    m = re.search(r"Cannot find primary config '([^']+)'", text)
    if m:
        return f"--config-name {m.group(1)}: no {m.group(1)}.yaml there; a run folder's is `config`"
    if isinstance(e, MissingConfigException) or "Could not find" in text:
        m = re.search(r"Could not find '([^']+)/([^/']+)'", text)
        if m:
            group, option = m.groups()
            opts = re.findall(r"^\t(\S+)$", text.split("Config search path")[0], re.M)
            return f"{group}={option}: no such preset; available: {', '.join(opts)}"
    if "Could not override" in text or "Key '" in str(cause) and "not in" in str(cause):
        m = re.search(r"full_key: (\S+)", str(cause)) or re.search(r"override '([^']+)'", text)
        key = m.group(1) if m else "?"
        added = next((o for o in overrides if o.startswith("+") and key_of(o) == key), None)
        if added is not None:  # +key=value was what failed: it cannot be the advice
            return (f"{added}: unknown key {key!r}{suggest_key(key)}; regbench's configuration "
                    "is typed and takes no new keys; `regbench config` lists every key")
        advice = " (to add a new one use +key=value)" if key.startswith("hydra.") else ""
        return f"unknown key {key!r}{suggest_key(key)}; `regbench config` lists every key{advice}"
    if "Ambiguous value" in text or "--multirun" in text:
        bad = next((o for o in overrides if SWEEP_VALUE.search(o)), None)
        return (f"{bad or 'a sweep value'}: several values for one key need "
                f"`regbench sweep {' '.join(overrides)}`; `regbench run` takes one value per key")
    if type(cause).__name__ == "ValidationError":
        m = re.search(r"full_key: (\S+)", str(cause))
        key = m.group(1) if m else "a value"
        first = str(cause).splitlines()[0]
        value = re.search(r"Value '(.*?)'", first)
        kind = re.search(r"converted to (\w+)|not a valid (\w+)", first)
        if value and kind:
            expected = {"Integer": "an integer", "Float": "a number", "bool": "true or false"}
            wanted = kind.group(1) or kind.group(2)
            return f"{key}={value.group(1)!r} is not allowed: expected {expected.get(wanted, wanted)}"
        return f"{key}: {first}"
    if isinstance(e, OverrideParseException):
        bad = next((o for o in overrides if "=" not in o), None)
        if bad is not None:
            return f"{bad!r} is not an override; write key=value, e.g. reg.dropout.fc=0.3"
        return f"cannot parse the overrides: {one_line(e)}"
    return one_line(e)


def config_source(flags: list[str]) -> tuple[str | None, str]:
    """(folder, name) of the primary config that Hydra's --config-path / --config-name name.

    `regbench run --config-path RUN_DIR --config-name config` re-runs a run from its
    config.yaml; the check before the run must compose that file, not the default.
    """
    folder, name = None, "config"
    for flag, value in zip(flags, flags[1:]):
        if flag in CONFIG_DIR_FLAGS:
            folder = str(Path(value).expanduser().resolve())
        elif flag in ("--config-name", "-cn"):
            name = value.removesuffix(".yaml")
    return folder, name


def compose(overrides: list[str], flags: list[str] | None = None) -> tuple[Any, RegbenchConfig]:
    """Compose and check the configuration (Hydra's own node included); ConfigError if bad."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from omegaconf import OmegaConf

    from regbench.config.schema import CONF_DIR
    from regbench.training.schema import to_schema
    from regbench.training.validation import validate

    folder, name = config_source(flags or [])
    if folder is not None and not (Path(folder) / f"{name}.yaml").is_file():
        hint = "it is not a run folder" if name == "config" else \
            "a run folder's is --config-name config"
        raise ConfigError(f"--config-name {name}: no {name}.yaml in {folder}; {hint}")
    claim_plugin_names()
    if folder is not None:  # a run folder's config: the plugins the run was trained with
        from regbench.store import summary
        from regbench.training import plugins

        recorded = summary.load(Path(folder))
        plugins.load(plugins.modules_of(recorded.plugins if recorded else []))
    try:
        with initialize_config_dir(config_dir=folder or str(CONF_DIR), version_base="1.3"):
            cfg = hydra_compose(name, overrides=overrides, return_hydra_config=True)
    except Exception as e:
        raise ConfigError(explain(e, overrides)) from e
    task = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    try:
        schema = to_schema(task)
    except Exception as e:
        raise ConfigError(explain(e, overrides)) from e
    validate(schema)
    return cfg, schema
