"""Naming a configuration among others: by what the user typed that tells it apart.

A configuration is a run's config.yaml as dotted keys. Its label names it by the overrides
the user typed (or swept) whose keys differ between the configurations shown together
('reg=dropout reg.dropout.schedule=late', 'reg.dropout.fc=0.3'), at display precision
(4 significant digits, more only where two labels would otherwise be the same). Runs
whose typed overrides are unknown are named by their values on the differing keys, the
reg section as the preset it equals ('reg=dropout'). A sweep job's one-line name
(``job_label``) is made the same way from its overrides.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from omegaconf import OmegaConf

from regbench.config.schema import CONF_DIR, load_preset
from regbench.training import regularizers
from regbench.store.run_config import flatten
from regbench.store.sweeps import key_of

DIGITS = 4  # significant digits of a value in a label: 0.1716706251072333 -> 0.1717


def fmt(value: Any) -> str:
    """A configuration value as it is written in an override: true, null, 0.3, [32,64]."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "[" + ",".join(fmt(v) for v in value) + "]"
    return str(value)


def shown(value: Any, digits: int = DIGITS) -> str:
    """A value as a label shows it: a float rounded to `digits` significant digits when its
    own spelling is longer (0.1717, but 0.3 and 5e-05 as they are)."""
    if isinstance(value, float):
        rounded = f"{value:.{digits}g}"
        return fmt(value) if float(rounded) == value else rounded
    if isinstance(value, list | tuple):
        return "[" + ",".join(shown(v, digits) for v in value) + "]"
    return fmt(value)


def shown_override(override: str, digits: int = DIGITS) -> str:
    """An override as typed, its number at display precision: 'reg.dropout.fc=0.1717'."""
    key, sep, value = override.partition("=")
    if not sep:
        return override
    try:
        number: Any = int(value) if re.fullmatch(r"[+-]?\d+", value) else float(value)
    except ValueError:
        return override
    return f"{key}={shown(number, digits)}" if isinstance(number, float) else override


def job_label(overrides: Sequence[str], axes: Sequence[str]) -> str:
    """A sweep job's values on the sweep axes, e.g. 'reg.dropout.fc=0.1717 seed=1'."""
    return " ".join(shown_override(o) for o in overrides if key_of(o) in axes)


@cache
def reg_presets() -> dict[str, dict[str, str]]:
    """Each conf/reg/ preset as the flat reg.* section it produces."""
    out = {}
    for path in sorted(CONF_DIR.glob("reg/*.yaml"), key=lambda p: (p.stem != "none", p.stem)):
        preset = OmegaConf.structured(load_preset("reg", path.stem, regularizers.RegConfig))
        out[path.stem] = {k: fmt(v) for k, v in flatten(OmegaConf.to_container(preset), "reg.").items()}
    return out


@cache
def experiment_keys(name: str) -> tuple[str, ...]:
    """Keys and config groups that the experiment preset `name` sets (its sweep axes aside,
    which reach each job as overrides of their own)."""
    path = CONF_DIR / "experiment" / f"{name}.yaml"
    if not path.is_file():
        return ()
    preset = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    assert isinstance(preset, dict)
    groups = [k.split("/")[-1] for item in preset.pop("defaults", []) if isinstance(item, dict)
              for k in item]  # 'override /dataset: cifar10' sets the dataset group
    preset.pop("hydra", None)
    preset.pop("experiment", None)
    return (*groups, *flatten(preset))


def covers(override: str, key: str) -> bool:
    """Whether the override sets the configuration key: itself, its group ('reg=dropout'
    sets every reg.* key) or an experiment preset that sets it."""
    name = key_of(override)
    if name == "experiment":
        return any(key == k or key.startswith(k + ".") for k in
                   experiment_keys(override.partition("=")[2]))
    return key == name or key.startswith(name + ".")


@cache
def reg_defaults() -> dict[str, str]:
    """Every reg.* key's default, as text."""
    return {k: fmt(v) for k, v in flatten(OmegaConf.to_container(OmegaConf.structured(regularizers.RegConfig)),
                                          "reg.").items()}


def reg_value(config: dict[str, Any], key: str) -> str:
    """A reg.* key's value as text; its default for a run written before the key existed."""
    return fmt(config[key]) if key in config else reg_defaults().get(key, "null")


def reg_preset(config: dict[str, Any]) -> str | None:
    """The name of the reg preset that this configuration's reg section equals, if any."""
    for name, section in reg_presets().items():
        if all(reg_value(config, k) == v for k, v in section.items()):
            return name
    return None


def differing_keys(configs: list[dict[str, Any]]) -> list[str]:
    """Keys whose value is not the same in every configuration, in configuration order."""
    keys = list(dict.fromkeys(k for c in configs for k in c))
    return [k for k in keys if len({fmt(c.get(k)) for c in configs}) > 1]


def label(config: dict[str, Any], axes: list[str], digits: int = DIGITS,
          prefer: str | None = None) -> str:
    """Name a configuration by its values on the axes, e.g. 'reg.dropout.fc=0.3'.

    When several reg.* keys differ, the reg section is named as the preset it equals
    ('reg=dropout') or as a preset and the keys where it departs from it
    ('reg=dropout reg.dropout.fc=0.0'), so every key that tells the group apart from the
    others is implied or written out; `prefer` is the preset the user chose, if known. With
    no axis (a single configuration), the label still says what was run: its reg section,
    named the same way.
    """
    return " ".join(_parts(config, axes, digits, prefer)) or reg_label(config, digits=digits)


def _parts(config: dict[str, Any], axes: list[str], digits: int, prefer: str | None
           ) -> list[str]:
    reg_axes = [k for k in axes if k.startswith("reg.")]
    parts: list[str] = []
    for key in axes:
        if key in reg_axes and len(reg_axes) > 1:
            if key == reg_axes[0]:
                parts.append(reg_label(config, axes, digits, prefer))
            continue
        parts.append(f"{key}={shown(config.get(key), digits)}")
    return parts


def reg_label(config: dict[str, Any], axes: list[str] | None = None, digits: int = DIGITS,
              prefer: str | None = None) -> str:
    """The reg section as 'reg=PRESET' and the keys where it departs from that preset.

    The preset is the one the user chose (`prefer`), else the one it departs from on the
    fewest keys, so the label is as short as the section allows and determines it entirely.
    On a tie, the departures that are on the axes (keys that vary among the groups shown)
    win, then a regularizing preset over none: next to 'reg=dropout', conv 0.25 with fc 0
    is 'reg=dropout reg.dropout.fc=0.0', naming the key that tells the two apart; with no
    axes (a lone configuration) none wins. Departures from none are written alone
    ('reg.dropout.fc=0.5').
    """
    on_axes = set(axes or [])

    def departures(section: dict[str, str]) -> list[str]:
        return [f"{k}={shown(config[k], digits) if k in config else reg_value(config, k)}"
                for k, v in section.items() if reg_value(config, k) != v]

    def cost(item: tuple[str, dict[str, str]]) -> tuple[bool, int, int, bool]:
        away = departures(item[1])
        # among others a regularizing preset names the regularizer's own keys; alone, the
        # departures from none are the keys that were set
        return (item[0] != prefer, len(away), sum(d.split("=")[0] not in on_axes for d in away),
                (item[0] == "none") == bool(on_axes))

    name, section = min(reg_presets().items(), key=cost)
    away = departures(section)
    return " ".join(away) if name == "none" and away else " ".join([f"reg={name}", *away])


@dataclass(frozen=True)
class Naming:
    """The labels of configurations shown together, and the keys the labels tell apart."""

    labels: list[str]  # one per configuration, all different
    axes: list[str]  # configuration keys that differ and that some typed override sets


def name_configs(configs: list[dict[str, Any]], typed: list[list[str] | None]) -> Naming:
    """Label each configuration by what was typed for it, so that no two labels are equal.

    typed[i] is the overrides typed for configs[i] (a run's .hydra/overrides.yaml), or None
    when unknown. A key that differs between the configurations is an axis if some typed
    override sets it, or if the configurations whose overrides leave it alone disagree on
    it (for an unknown one: always). A configuration's label is its typed overrides that set
    an axis, leaving out those typed alike for every configuration
    ('reg=dropout reg.dropout.schedule=late'); with none of them, its values on the axes.
    Overrides are changes to a base configuration, so a key they leave alone holds the
    base's value; where configurations that leave a key alone disagree on it, they were not
    made from the same base (a run re-trained from its own config.yaml with --config-path)
    and each of them names that key by its value too. Labels that would still be equal add
    the keys that tell their configurations apart, then more digits.
    """
    typed = [None if t is None else _last_per_key(t) for t in typed]
    differing = differing_keys(configs)
    unexplained = _unexplained(configs, typed, differing)
    axes = [k for k in differing if k in unexplained
            or any(t is None or any(covers(o, k) for o in t) for t in typed)]
    known = [set(t) for t in typed if t is not None]
    common = set.intersection(*known) if len(configs) > 1 and known else set()
    for digits in (DIGITS, 6, 8, 17):
        labels = [_typed_label(c, t, axes, common, unexplained, digits)
                  for c, t in zip(configs, typed, strict=True)]
        labels = _tell_apart(configs, labels, axes, digits)
        if len(set(labels)) == len(labels):
            break
    return Naming(labels, axes)


def _last_per_key(overrides: list[str]) -> list[str]:
    """The overrides that take effect: of several on one key, the last (as Hydra applies
    them), in the order typed."""
    last = {key_of(o): i for i, o in enumerate(overrides)}
    return [o for i, o in enumerate(overrides) if last[key_of(o)] == i]


def _unexplained(configs: list[dict[str, Any]], typed: list[list[str] | None],
                 differing: list[str]) -> set[str]:
    """Differing keys on which the configurations whose typed overrides leave the key alone
    disagree (a key a configuration lacks, written before the key existed, agrees)."""
    out = set()
    for key in differing:
        left = {fmt(c[key]) for c, t in zip(configs, typed, strict=True)
                if t is not None and key in c and not any(covers(o, key) for o in t)}
        if len(left) > 1:
            out.add(key)
    return out


def _typed_label(config: dict[str, Any], typed: list[str] | None, axes: list[str],
                 common: set[str], unexplained: set[str], digits: int) -> str:
    """One configuration's label: its own typed overrides that set an axis, or (none typed,
    or unknown) its values on the axes; then its values on the axes that its overrides
    leave alone where they are unexplained or where its reg section is not the one a run
    gets with nothing typed (reg=none): a run re-trained from a dropout run's config.yaml
    names its dropout."""
    chosen = next((o.partition("=")[2] for o in typed or [] if key_of(o) == "reg"), None)
    if typed is None:
        return label(config, axes, digits, chosen)
    own = [o for o in typed if o not in common and any(covers(o, k) for k in axes)]
    base = reg_presets().get("none", {})  # the reg section a run gets with nothing typed
    alone = [k for k in axes if not any(covers(o, k) for o in typed)
             and (k in unexplained or (k in base and reg_value(config, k) != base[k]))]
    parts = [shown_override(o, digits) for o in own]
    if alone:
        parts.append(label(config, alone, digits, chosen))
    return " ".join(parts) or label(config, axes, digits, chosen)


def _tell_apart(configs: list[dict[str, Any]], labels: list[str], axes: list[str],
                digits: int) -> list[str]:
    """Labels shared by different configurations, lengthened by the keys that differ
    between those configurations and that the label does not write out (a key it does
    write out, at these digits, is left to more digits)."""
    out = list(labels)
    for name in {n for n in labels if labels.count(n) > 1}:
        same = [i for i, n in enumerate(labels) if n == name]
        written = {key_of(token) for token in name.split()}
        extra = [k for k in differing_keys([configs[i] for i in same]) if k not in written]
        if not extra:
            continue
        for i in same:
            out[i] = f"{name} {label(configs[i], extra, digits)}"
    return out


def config_key(config: dict[str, Any]) -> str:
    """A configuration as one hashable string: runs with equal keys form a group."""
    return json.dumps(config, sort_keys=True, default=str)


def matches(spec: str, config: dict[str, Any], name: str) -> bool:
    """Whether a configuration fits every KEY=VALUE of spec ('reg=none', 'reg.dropout.fc=0')."""
    for token in spec.split():
        key, _, want = token.partition("=")
        if token in name.split():
            continue
        if key == "reg" and reg_preset(config) == want:
            continue
        if key not in config or not _same(config[key], want):
            return False
    return True


def _same(value: Any, text: str) -> bool:
    if fmt(value) == text:
        return True
    try:
        return not isinstance(value, bool) and float(value) == float(text)
    except (TypeError, ValueError):
        return False
