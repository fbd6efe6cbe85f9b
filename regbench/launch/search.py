"""A search's parameters: the ``params`` grammar of ``hydra/sweeper=optuna``, read into
Optuna distributions, and a trial's parameters written back as overrides.

The grammar is Hydra's override grammar, read as the Hydra Optuna sweeper plugin (1.2,
1.3) read it, so presets and command lines written for it keep their meaning:

- ``interval(0, 0.8)``: a float drawn from [0, 0.8]; ``int(interval(1, 10))`` an integer;
  ``tag(log, interval(1e-5, 1e-1))`` (or of an int interval) drawn on a log scale.
- ``choice(a, b, c)`` or ``a,b,c``: one of the values (``shuffle(range(...))`` too).
- ``range(0, 10, 2)``: a value on that grid, integer or float after the step's type. Unlike
  the old plugin, whose range included its stop value, the stop is left out, as Hydra's
  range() leaves it out of a grid.
- a plain value: the same in every trial.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from regbench.errors import ConfigError

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from hydra.core.override_parser.types import Override


@dataclass
class SearchSpace:
    """What a search draws (key -> distribution) and what it holds fixed (key -> value as typed)."""

    distributions: dict[str, BaseDistribution] = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)


def parse_params(params: list[str]) -> SearchSpace:
    """The search space of ``key=value`` lines (the sweeper's params, then the command line's)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    space = SearchSpace()
    for override in OverridesParser.create().parse_overrides(params):
        key = override.get_key_element()
        if override.is_sweep_override():
            space.distributions[key] = _distribution(override)
            space.fixed.pop(key, None)
        else:
            value = override.value()
            space.fixed[key] = (override_value(value) if value is None or isinstance(value, bool)
                                else override.get_value_element_as_str())
            space.distributions.pop(key, None)
    return space


def _distribution(override: Override) -> BaseDistribution:
    """The Optuna distribution of one sweep override; ConfigError naming it when invalid."""
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep, Transformer
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    line = override.input_line or override.get_key_element()
    try:
        if isinstance(value, ChoiceSweep) or isinstance(value, RangeSweep) and value.shuffle:
            choices = list(override.sweep_iterator(transformer=Transformer.encode))
            if value.shuffle:  # a fixed order, so that a seeded sampler draws the same trials
                choices.sort(key=lambda c: (isinstance(c, str), str(c) if isinstance(c, str) else c))
            return CategoricalDistribution(choices)
        if isinstance(value, IntervalSweep):
            log = "log" in value.tags
            if isinstance(value.start, int) and isinstance(value.end, int):
                return IntDistribution(value.start, value.end, log=log)
            return FloatDistribution(float(value.start), float(value.end), log=log)  # type: ignore[arg-type]
        if isinstance(value, RangeSweep):
            if value.tags:
                raise ValueError("tag() applies to interval(), e.g. tag(log, int(interval(1, 100)))")
            grid = list(override.sweep_iterator())
            if not grid:
                raise ValueError("the range holds no value")
            if all(isinstance(v, int) for v in (value.start, value.stop, value.step)):
                return IntDistribution(int(grid[0]), int(grid[-1]), step=int(value.step))  # type: ignore[arg-type]
            return FloatDistribution(float(grid[0]), float(grid[-1]), step=float(value.step))  # type: ignore[arg-type]
    except ValueError as e:
        raise ConfigError(f"hydra.sweeper.params: {line}: {e}") from e
    raise ConfigError(f"hydra.sweeper.params: {line}: not a search range; use interval(), "
                      "int(interval()), tag(log, interval()), choice() or range()")


def override_value(value: Any) -> str:
    """A drawn value as an override writes it: true/false, null, 0.37 (the float's repr)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def trial_overrides(params: dict[str, Any], fixed: dict[str, str]) -> list[str]:
    """A trial's task overrides: its drawn values, then the fixed ones."""
    return [f"{k}={override_value(v)}" for k, v in params.items()] + [f"{k}={v}" for k, v in fixed.items()]


def probe_values(distribution: BaseDistribution) -> list[Any]:
    """Values that check a search range before it runs: each choice, or both ends of a range.

    A float interval's upper end is probed just inside it: samplers draw from the closed
    range, but a continuous draw lands on its end with probability 0, so interval(0, 1)
    for a drop probability (which must stay below 1) is a range a user can mean.
    """
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    low, high = distribution.low, distribution.high  # type: ignore[attr-defined]
    if isinstance(distribution, IntDistribution) or getattr(distribution, "step", None):
        return [low, high]
    return [low, high - (high - low) * 1e-6]
