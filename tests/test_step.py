"""One training step: every hook has one caller, and the population honours what a part
overrides (or refuses it, and its jobs train on their own)."""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import regbench
from regbench.data import batching
from regbench.launch import bench
from regbench.store import run_config, runs
from regbench.training import models, population, regularizers, session, step
from regbench.training.callbacks import Callback
from regbench.training.layers import runs_per_member
from regbench.training.models.base import ModelConfig
from regbench.training.regularizers import REGISTRY, Regularizer, Site
from regbench.training.regularizers.base import HOOKS
from regbench.training.schema import RegbenchConfig
from regbench.training.session import Session, build_trainer

PACKAGE = Path(regbench.__file__).parent
# Where each hook of a run's regularizers (its Regularization, ``regs``) is called.
CALLERS = {"layers": "training/models/base.py", "attach": "training/models/base.py",
           "batch": "training/step.py", "data_loss": "training/step.py",
           "loss_term": "training/step.py", "param_groups": "training/session.py",
           "after_step": "training/step.py", "start_epoch": "training/loop.py",
           "end_epoch": "training/session.py"}


def hook_references() -> dict[str, list[str]]:
    """Every reference to a hook of a run's regularizers (``<...>regs.<hook>``) in the
    package, outside the regularizers themselves: 'file:line' per hook."""
    found: dict[str, list[str]] = {h: [] for h in HOOKS}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith("training/regularizers/"):
            continue  # the hooks' definitions and the fan-out to each active regularizer
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            if not (isinstance(node, ast.Attribute) and node.attr in found):
                continue
            owner = node.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
            if name.endswith("regs"):
                found[node.attr].append(f"{rel}:{node.lineno}")
    return found


def test_each_hook_is_called_from_one_place() -> None:
    found = hook_references()
    assert set(CALLERS) == set(HOOKS)
    for hook, where in found.items():
        assert len(where) == 1, (hook, where)
        assert where[0].split(":")[0] == CALLERS[hook], (hook, where)


@dataclass
class BlankKeys:
    blank: float = 0.0  # share of training batches whose images are blanked


class Blank(Regularizer):
    """A batch transform that exists only in this test: it blanks the images."""

    name = "blank"
    keys = BlankKeys
    order = 86
    calls = 0

    @classmethod
    def from_config(cls, reg: Any, epochs: int) -> Blank | None:
        return cls() if reg.blank else None

    def batch(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        type(self).calls += 1
        return torch.zeros_like(x), y


@dataclass
class ShiftKeys:
    shift: float = 0.0  # a constant added to the loss


class Shift(Regularizer):
    """A loss term that exists only in this test: the population runs it per member."""

    name = "shift"
    keys = ShiftKeys
    order = 87
    member_keys = ("shift",)

    @classmethod
    def from_config(cls, reg: Any, epochs: int) -> Shift | None:
        return cls(reg.shift) if reg.shift else None

    def __init__(self, value: float = 0.0) -> None:
        self.value = value

    def loss_term(self, params: Any) -> Tensor | None:
        return torch.tensor(self.value)


def toys(monkeypatch: pytest.MonkeyPatch) -> type:
    """Register the toys for this test (after composing its configurations): the reg
    section's dataclass with their keys."""
    monkeypatch.setitem(REGISTRY, "blank", Blank)
    monkeypatch.setitem(REGISTRY, "shift", Shift)
    monkeypatch.setattr(Blank, "calls", 0)
    return regularizers.assemble_config()


def test_a_batch_transform_is_refused_by_the_population_from_what_it_overrides(
        make_cfg: Callable[..., RegbenchConfig], monkeypatch: pytest.MonkeyPatch) -> None:
    base = make_cfg()
    reg = toys(monkeypatch)
    blank = replace(base, reg=reg(blank=1.0))
    assert Blank.overrides() == {"batch"}  # it declares nothing else
    assert population.unsupported(blank) == "reg.blank=1.0"  # its jobs train on their own
    assert population.unsupported(replace(base, reg=reg())) is None  # off: no reason
    assert population.unsupported(replace(base, reg=reg(shift=0.5))) is None  # per member


def test_the_one_step_applies_a_batch_transform_to_one_model(
        make_cfg: Callable[..., RegbenchConfig], monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = make_cfg("trainer.epochs=1", "dataset.train_size=100")
    reg = toys(monkeypatch)
    data = batching.load(cfg.dataset)
    grads = {}
    for value in (0.0, 1.0):
        torch.manual_seed(0)
        c = replace(cfg, reg=reg(blank=value))
        model = models.build(c.model, c.reg, data.in_channels, data.image_size)
        trainer = build_trainer(c, model, data)
        step.train_one(trainer, Callback())
        grads[value] = next(model.parameters()).grad  # the first conv's, of the last step
    assert Blank.calls == trainer.steps_per_epoch  # once per step, in the one step
    assert grads[0.0] is not None and grads[0.0].abs().sum() > 0
    # blanked images: the first layer saw nothing, so its weights got no gradient
    assert grads[1.0] is not None and torch.count_nonzero(grads[1.0]) == 0


def test_a_population_runs_a_per_member_hook_for_each_member(
        make_cfg: Callable[..., RegbenchConfig], monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    cfg = make_cfg("trainer.epochs=1", "dataset.train_size=100", "optim=sgd")
    reg = toys(monkeypatch)
    # files of a schema without the toys
    monkeypatch.setattr(run_config, "write", lambda *args, **kwargs: None)
    monkeypatch.setattr(session, "write_summary", lambda *args, **kwargs: None)
    cfgs = [replace(cfg, seed=s, reg=reg(shift=v)) for s, v in ((0, 0.0), (1, 2.5))]
    data = batching.load(cfg.dataset)
    sessions = [Session.open(c, runs.make_run_dir(tmp_path / "pop", "t"), data,
                             torch.device("cpu"), compile=False) for c in cfgs]
    engine = population.PopulationEngine()
    engine.start(sessions)
    steps = engine.train_epoch(sessions, 1, [Callback(), Callback()])
    assert [s.penalty for s in steps] == [0.0, 2.5]  # each member's own term, every step
    assert all(math.isfinite(s.running) for s in steps)


@dataclass
class NoisyConfig(ModelConfig):
    name: str = "noisy"


def noisy(cfg: NoisyConfig, layers: Any, in_channels: int, image_size: tuple[int, int],
          num_classes: int = 10) -> nn.Module:
    """A model with a dropout layer of its own, not at a site."""
    h, w = image_size
    return nn.Sequential(*layers(Site("input", "post", in_channels)), nn.Flatten(),
                         nn.Dropout(0.5), nn.Linear(in_channels * h * w, num_classes))


def test_a_model_with_random_layers_of_its_own_trains_its_jobs_alone(
        make_cfg: Callable[..., RegbenchConfig], monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = make_cfg()
    assert population.unsupported(cfg) is None
    monkeypatch.setitem(models.MODELS, "noisy",
                        models.ModelSpec("noisy", NoisyConfig, noisy, ("input.post",)))
    assert population.unsupported(replace(cfg, model=NoisyConfig())) == "model=noisy"


def test_a_site_layer_without_a_member_version_is_refused(
        make_cfg: Callable[..., RegbenchConfig], monkeypatch: pytest.MonkeyPatch) -> None:
    # a regularizer whose site layer draws noise the population cannot draw per member
    def layers(self: Any, site: Site) -> list[nn.Module]:
        return [nn.AlphaDropout(0.3)] if site.name == "fc.post" else []

    cfg = make_cfg("reg.dropout.fc=0.3")
    assert population.unsupported(cfg) is None
    monkeypatch.setattr(REGISTRY["dropout"], "layers", layers)
    assert population.unsupported(cfg) == "reg.dropout.fc=0.3"
    assert not runs_per_member(nn.AlphaDropout(0.3)) and runs_per_member(nn.ReLU())


def test_bench_times_the_population_through_the_one_step(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, str]] = []
    real = step.train_epoch

    def counted(trainers: Any, runner: Any, listeners: Any) -> Any:
        calls.append((len(trainers), type(runner).__name__))
        return real(trainers, runner, listeners)

    monkeypatch.setattr(step, "train_epoch", counted)
    device = torch.device("cpu")
    data = bench.synthetic_data((1, 28, 28), 64, device)
    cfg = replace(RegbenchConfig(), model=bench.model_config("cnn"))
    rates = bench.population_rates(cfg, data, device, 1, 1, 1.0, (2,))
    assert calls == [(2, "Stacked")] and rates["2"]["member_images_per_s"] > 0
