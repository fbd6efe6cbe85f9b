"""Naming a configuration among others: by the keys that tell it apart from them.

A configuration is a run's config.yaml as dotted keys; a label names it by its values on
the keys that differ between the configurations shown together ('reg.dropout.fc=0.3'),
or by the reg preset it equals ('reg=dropout').
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from omegaconf import OmegaConf

from regbench.config.schema import CONF_DIR, RegConfig, load_preset
from regbench.store.runs import flatten


def fmt(value: Any) -> str:
    """A configuration value as it is written in an override: true, null, 0.3, [32,64]."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "[" + ",".join(fmt(v) for v in value) + "]"
    return str(value)


@cache
def reg_presets() -> dict[str, dict[str, str]]:
    """Each conf/reg/ preset as the flat reg.* section it produces."""
    out = {}
    for path in sorted(CONF_DIR.glob("reg/*.yaml"), key=lambda p: (p.stem != "none", p.stem)):
        preset = OmegaConf.structured(load_preset("reg", path.stem, RegConfig))
        out[path.stem] = {k: fmt(v) for k, v in flatten(OmegaConf.to_container(preset), "reg.").items()}
    return out


def reg_preset(config: dict[str, Any]) -> str | None:
    """The name of the reg preset that this configuration's reg section equals, if any."""
    for name, section in reg_presets().items():
        if all(fmt(config.get(k)) == v for k, v in section.items()):
            return name
    return None


def differing_keys(configs: list[dict[str, Any]]) -> list[str]:
    """Keys whose value is not the same in every configuration, in configuration order."""
    keys = list(dict.fromkeys(k for c in configs for k in c))
    return [k for k in keys if len({fmt(c.get(k)) for c in configs}) > 1]


def label(config: dict[str, Any], axes: list[str]) -> str:
    """Name a configuration by its values on the axes, e.g. 'reg.dropout.fc=0.3'.

    When several reg.* keys differ, the reg section is named as the preset it equals
    ('reg=dropout') or as the nearest preset and the keys where it departs from it
    ('reg=dropout reg.dropout.fc=0.0'), so every key that tells the group apart from the
    others is implied or written out. With no axis (a single configuration), the label
    still says what was run: its reg section, named the same way.
    """
    reg_axes = [k for k in axes if k.startswith("reg.")]
    parts: list[str] = []
    for key in axes:
        if key in reg_axes and len(reg_axes) > 1:
            if key == reg_axes[0]:
                parts.append(reg_label(config, axes))
            continue
        parts.append(f"{key}={fmt(config.get(key))}")
    return " ".join(parts) or reg_label(config)


def reg_label(config: dict[str, Any], axes: list[str] | None = None) -> str:
    """The reg section as 'reg=PRESET' and the keys where it departs from that preset.

    The preset chosen is the one it departs from on the fewest keys, so the label is as short
    as the section allows and determines it entirely. On a tie, the departures that are on
    the axes (keys that vary among the groups shown) win, then a regularizing preset over
    none: next to 'reg=dropout', conv 0.25 with fc 0 is 'reg=dropout reg.dropout.fc=0.0',
    naming the key that tells the two apart; with no axes (a lone configuration) none wins.
    Departures from none are written alone ('reg.dropout.fc=0.5').
    """
    on_axes = set(axes or [])

    def departures(section: dict[str, str]) -> list[str]:
        return [f"{k}={fmt(config.get(k))}" for k, v in section.items() if fmt(config.get(k)) != v]

    def cost(item: tuple[str, dict[str, str]]) -> tuple[int, int, bool]:
        away = departures(item[1])
        # among others a regularizing preset names the regularizer's own keys; alone, the
        # departures from none are the keys that were set
        return (len(away), sum(d.split("=")[0] not in on_axes for d in away),
                (item[0] == "none") == bool(on_axes))

    name, section = min(reg_presets().items(), key=cost)
    away = departures(section)
    return " ".join(away) if name == "none" and away else " ".join([f"reg={name}", *away])


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


