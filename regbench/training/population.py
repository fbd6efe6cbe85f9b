"""Population training: the members of a grid trained at once, as one vectorised model.

Members share what one program over all of them needs (dataset and split, model, batch
norm, dropout placement and kind, batch size, epochs, optimizer and schedule) and differ
in what enters as numbers: seed (initial weights, batch order, dropout masks), dropout
rates, L1/L2, weight decay, learning rate, label smoothing, max-norm and early stopping.

Each member is a ``Session`` (regbench.training.session): its own model (whose parameters are the
leaves its optimizer updates), optimizer, schedule, regularizers, early-stopping tracker,
metrics log and checkpoint. They train with the one training step (regbench.training.step),
which calls every member's hooks as a sequential run does; only how the step runs is the
population's (``Stacked``): the members' parameters are stacked, one model runs over all
members with ``torch.func.functional_call`` under ``torch.func.vmap``, and the members'
losses are summed; each member's loss depends on its own parameters alone, so one backward
pass fills every member's gradients. The population's model has, at each site, the layers
of every member: a random layer draws each member's noise from that member's generator
(regbench.training.layers.MemberRandom). Evaluating,
recording and stopping are the sequential code, member by member, so a member's run folder
is the one a sequential job writes. A member that stops early or diverges leaves the
population; the others go on.

On a GPU this turns dozens of launch-bound small trainings into one; on a CPU, already
compute-bound, it is slower than training the members one after another.
"""

from __future__ import annotations

import json
import logging
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from regbench.data import batching, datasets
from regbench.training import models, regularizers, step
from regbench.training.callbacks import Callback
from regbench.training.device import train_dtype, warn
from regbench.training.layers import Float32Norm, MemberRandom, runs_per_member
from regbench.training.regularizers import Regularization
from regbench.training.regularizers.base import changed_key
from regbench.training.schema import RegbenchConfig
from regbench.training.session import EpochStep, Session, Trainer

log = logging.getLogger("regbench")

# Keys outside reg in which the members of one population may differ; inside reg, each
# regularizer names its own (Regularizer.member_keys). Every other key is shared.
RUN_MEMBER_KEYS = ("seed", "experiment", "optim.lr", "trainer.checkpoint", "trainer.progress",
                   "output")


def member_keys() -> tuple[str, ...]:
    """Keys in which the members of one population may differ."""
    return (*RUN_MEMBER_KEYS, *regularizers.member_keys())


def unsupported(cfg: RegbenchConfig) -> str | None:
    """The first setting the population engine does not train per member, or None.

    Decided from the parts themselves: a model whose own layers the population's model
    cannot run for every member (random layers, batch norms of its own); a regularizer that
    overrides a hook outside PER_MEMBER_HOOKS (a batch transform, a change to the model's
    layers, an epoch start) or refuses a setting (Gaussian dropout, dropout schedules, the
    reg-level augmentation switch); site layers without a member version; and test-time MC
    dropout. Such runs go through the sequential engine instead.
    """
    if not population_model_runs(cfg, type(cfg.reg)()):  # the model alone, no regularizer
        return f"model={cfg.model.name}"
    for part in regularizers.registered():
        why = part.population_blocker(cfg.reg)
        if why is not None:
            return why
    if not population_model_runs(cfg, cfg.reg):
        for r in Regularization.from_config(cfg.reg).active:
            if "layers" in type(r).overrides():
                return changed_key(type(r), cfg.reg) or f"reg ({r.name})"
    if cfg.eval.mc_samples != 0:
        return f"eval.mc_samples={cfg.eval.mc_samples}"
    return None


def population_model_runs(cfg: RegbenchConfig, reg: Any) -> bool:
    """Whether every layer of the population's model for this model and reg section runs for
    every member at once (built without weights, on the meta device)."""
    info = datasets.DATASET_INFO.get(cfg.dataset.name)
    # which kinds of layer a model holds does not depend on the image's shape
    shape = info.shape if info is not None else (3, 64, 64)
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        model = models.build(cfg.model, reg, shape[0], shape[1:], members=[reg])
    return all(runs_per_member(m) for m in model.modules())


def group_key(cfg: RegbenchConfig) -> str:
    """What a member shares with the rest of its population, as text: equal keys, one group."""
    node = asdict(cfg)
    for key in member_keys():
        *parents, leaf = key.split(".")
        section = node
        for part in parents:
            section = section[part]
        section.pop(leaf, None)
    return json.dumps(node, sort_keys=True, default=str)


def split_groups(cfgs: Sequence[RegbenchConfig], max_members: int) -> list[list[int]]:
    """Indices of cfgs in populations: equal group keys together, at most max_members each."""
    groups: dict[str, list[int]] = {}
    for i, cfg in enumerate(cfgs):
        groups.setdefault(group_key(cfg), []).append(i)
    size = max(max_members, 1)
    return [g[k:k + size] for g in groups.values() for k in range(0, len(g), size)]


def mask_seed(seed: int, epoch: int) -> int:
    """The seed of a member's noise in one epoch (distinct per seed and epoch)."""
    return (seed * 1_000_003 + epoch) % 2**63


@dataclass
class Population:
    """The shared model that runs every member's parameters under vmap."""

    base: nn.Module
    param_names: list[str]
    buffer_names: list[str]
    random: dict[str, MemberRandom]  # its random layers, by name
    places: dict[Path, int]  # each member's place among those it was built for, by run folder
    # The dtype convolutions and matrix products run in (trainer.precision). Autocast does
    # not reach operations inside vmap, so under bf16 the members' float32 parameters
    # (those of batch norm apart, which normalises in float32) and the images are cast
    # for the forward pass; gradients flow back to the float32 parameters through the cast.
    dtype: torch.dtype = torch.float32
    norm_params: frozenset[str] = frozenset()

    @classmethod
    def build(cls, sessions: list[Session]) -> Population:
        """A model with, at each site, the layers of every member (random ones at each
        member's own rate)."""
        first = sessions[0]
        data = first.data
        base = models.build(first.cfg.model, first.cfg.reg, data.in_channels, data.image_size,
                            data.num_classes, members=[s.cfg.reg for s in sessions]
                            ).to(first.device)
        base.eval()
        with torch.no_grad():  # the dry run that sizes each random layer's noise
            base(batching.normalize(data.train.x[:2].float(), data.mean, data.std))
        base.train()
        random = {n: m for n, m in base.named_modules() if isinstance(m, MemberRandom)}
        param_names = [n for n, _ in base.named_parameters()]
        buffer_names = [n for n, _ in base.named_buffers() if n.rsplit(".", 1)[0] not in random]
        for s in sessions:  # members' models differ from base only in parameter-free layers
            shapes = [p.shape for p in s.model.parameters()]
            if shapes != [p.shape for p in base.parameters()]:
                raise ValueError(f"{s.run_dir}: its model does not match the population's")
        places = {s.run_dir: i for i, s in enumerate(sessions)}
        norm_params = frozenset(f"{n}.{p}" for n, m in base.named_modules()
                                if isinstance(m, Float32Norm) for p, _ in m.named_parameters())
        return cls(base, param_names, buffer_names, random, places, train_dtype(first.device),
                   norm_params)

    def forward(self, params: dict[str, Tensor], buffers: dict[str, Tensor],
                inputs: dict[str, Tensor], x: Tensor) -> Tensor:
        """One member's logits: the base model run on that member's tensors."""
        if self.dtype != torch.float32:
            params = {n: p if n in self.norm_params else p.to(self.dtype)
                      for n, p in params.items()}
            x = x.to(self.dtype)
        return functional_call(self.base, {**params, **buffers, **inputs}, (x,))

    def noise(self, members: list[Session], epoch: int) -> Callable[[int], dict[str, Tensor]]:
        """For a batch of n images per member: each random layer's tensors, by name.

        They depend on (seed, epoch) alone, so a resumed member draws what it would have.
        """
        device = members[0].device
        generators = [torch.Generator(device=device).manual_seed(mask_seed(s.cfg.seed, epoch))
                      for s in members]
        places = [self.places[s.run_dir] for s in members]  # the members still training
        layers = {name: layer.inputs(places, generators) for name, layer in self.random.items()}

        def draw(n: int) -> dict[str, Tensor]:
            return {f"{name}.{k}": v for name, inputs in layers.items()
                    for k, v in inputs(n).items()}

        return draw


class Stacked:
    """How a population's step runs: every member's parameters stacked, one vmapped forward
    pass, one backward pass, one shared optimizer step where the members' settings allow."""

    vectorised = True

    def __init__(self, population: Population, members: list[Session], epoch: int) -> None:
        self.population, self.members, self.epoch_number = population, members, epoch
        self.trainers = [s.trainer for s in members]
        self.vforward = vmap(population.forward)
        self.buffers: dict[str, Tensor] = {}
        self.stacked: dict[str, Tensor] = {}
        self.shared: SharedOptimizer | None = None
        self.draw: Callable[[int], dict[str, Tensor]] = lambda n: {}

    @contextmanager
    def epoch(self) -> Iterator[None]:
        """Stack the members' buffers and parameters for the epoch; write them back after."""
        trainers, names = self.trainers, self.population.buffer_names
        self.buffers = {n: torch.stack([dict(t.model.named_buffers())[n] for t in trainers])
                        for n in names}
        self.draw = self.population.noise(self.members, self.epoch_number)
        self.stacked = stack_parameters(self.population.param_names, [t.model for t in trainers])
        self.shared = SharedOptimizer.build(trainers, self.population.param_names, self.stacked)
        try:
            with own_optimizers_idle(self.shared is not None):
                yield
        finally:
            if self.shared is not None:
                self.shared.write_back()
            unstack_parameters([t.model for t in trainers])
            with torch.no_grad():  # batch-norm statistics back into each member's model
                for name in names:
                    for m, t in enumerate(trainers):
                        dict(t.model.named_buffers())[name].copy_(self.buffers[name][m])

    def batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        return member_batches(self.members)

    def forward(self, x: Tensor) -> Tensor:
        return self.vforward(self.stacked, self.buffers, self.draw(x.shape[1]), x)

    def backward(self, total: Tensor) -> None:
        for leaf in self.stacked.values():
            leaf.grad.zero_()  # type: ignore[union-attr]
        total.sum().backward()
        if self.shared is not None:
            self.shared.step()
            return
        for t in self.trainers:
            t.optimizer.step()


@contextmanager
def own_optimizers_idle(idle: bool) -> Iterator[None]:
    """Silence torch's warning that a schedule stepped before its optimizer when the
    members' own optimizers stand idle (a SharedOptimizer steps for them)."""
    with warnings.catch_warnings():
        if idle:
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`",
                                    category=UserWarning)
        yield


def member_batches(members: list[Session]) -> Iterator[tuple[Tensor, Tensor]]:
    """The members' training batches stacked, [M, B, C, H, W] and [M, B]: each member's
    are those of its sequential run (its own generator); gathered at once unless augmented."""
    data, size = members[0].data, members[0].cfg.trainer.batch_size
    generators = [s.trainer.generator for s in members]
    if data.augment == "none":
        yield from batching.member_batches(data.train, size, mean=data.mean, std=data.std,
                                           generators=generators)
        return
    loaders = [batching.batches(data.train, size, mean=data.mean, std=data.std, shuffle=True,
                                augment=data.augment, generator=g) for g in generators]
    for step in zip(*loaders, strict=True):
        yield torch.stack([x for x, _ in step]), torch.stack([y for _, y in step])


def stack_parameters(names: list[str], models: list[nn.Module]) -> dict[str, Tensor]:
    """Each parameter of the members' models as one leaf [M, ...] that vmap runs over.

    Every member's parameter and gradient become views of their slice of the stack, so one
    backward pass fills all members' gradients and each member's own optimizer, stepping
    its parameters in place, updates the stack: nothing is copied per step.
    """
    per_model = [list(m.parameters()) for m in models]
    stacked = {}
    for i, name in enumerate(names):
        params = [ps[i] for ps in per_model]
        first = params[0]  # each member's slice keeps its layout (channels_last kernels)
        leaf = torch.empty_strided((len(params), *first.shape), (first.numel(), *first.stride()),
                                   dtype=first.dtype, device=first.device)
        with torch.no_grad():
            for m, p in enumerate(params):
                leaf[m].copy_(p)
        leaf.requires_grad_()
        leaf.grad = torch.zeros_like(leaf)
        for m, p in enumerate(params):
            p.data, p.grad = leaf.data[m], leaf.grad[m]
        stacked[name] = leaf
    return stacked


class SharedOptimizer:
    """One optimizer over the stacked parameters, standing in for the members' own.

    SGD, Adam and AdamW update every number on its own, so one step over the stack is each
    member's step, exactly, when the members' optimizers have equal settings (type, groups,
    learning rate, weight decay, momentum, step count); one call then replaces M. The
    members' optimizer states are stacked into it for the epoch and written back at its
    end, so checkpoints and resuming see the members' own optimizers.
    """

    ELEMENTWISE = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)

    def __init__(self, trainers: list[Trainer], optimizer: torch.optim.Optimizer,
                 members: list[list[Tensor]], stacked: list[Tensor]) -> None:
        self.trainers, self.optimizer = trainers, optimizer
        self.members, self.stacked = members, stacked  # members[m][i] is a slice of stacked[i]

    @classmethod
    def build(cls, trainers: list[Trainer], names: list[str], stacked: dict[str, Tensor]
              ) -> SharedOptimizer | None:
        """The shared optimizer, or None where the members' optimizers differ."""
        first = trainers[0].optimizer
        if not isinstance(first, cls.ELEMENTWISE):
            return None
        members = [list(t.model.parameters()) for t in trainers]
        states = [[t.optimizer.state.get(p, {}) for p in ps] for t, ps in zip(trainers, members)]
        if not all(type(t.optimizer) is type(first) and settings(t.optimizer) == settings(first)
                   and steps(st) == steps(states[0]) for t, st in zip(trainers, states)):
            return None
        leaves = [stacked[n] for n in names]
        index = {id(p): i for i, p in enumerate(members[0])}
        groups = [{**{k: v for k, v in g.items() if k != "params"},
                   "params": [leaves[index[id(p)]] for p in g["params"]]}
                  for g in first.param_groups]
        optimizer = type(first)(groups)
        for i, leaf in enumerate(leaves):
            if states[0][i]:
                optimizer.state[leaf] = {k: torch.stack([st[i][k] for st in states])
                                         if per_number(v, leaf[0]) else clone(v)
                                         for k, v in states[0][i].items()}
        return cls(trainers, optimizer, members, leaves)

    def step(self) -> None:
        """Step every member at the learning rate their schedules set."""
        for group, own in zip(self.optimizer.param_groups, self.trainers[0].optimizer.param_groups,
                              strict=True):
            group["lr"] = own["lr"]
        self.optimizer.step()

    def write_back(self) -> None:
        """Each member's slice of the optimizer state into its own optimizer."""
        for i, leaf in enumerate(self.stacked):
            state = self.optimizer.state.get(leaf)
            if not state:
                continue
            for m, t in enumerate(self.trainers):
                t.optimizer.state[self.members[m][i]] = {
                    k: v[m].clone() if per_number(v, leaf) else clone(v)
                    for k, v in state.items()}


def settings(optimizer: torch.optim.Optimizer) -> list[Any]:
    """An optimizer's group settings and sizes (everything but the parameters themselves)."""
    return [({k: v for k, v in g.items() if k != "params"}, len(g["params"]))
            for g in optimizer.param_groups]


def steps(states: list[dict[str, Any]]) -> list[Any]:
    """The step counters in a member's optimizer states (equal for members trained alike)."""
    return [float(st["step"]) if "step" in st else None for st in states]


def per_number(value: Any, param: Tensor) -> bool:
    """Whether an optimizer state value holds one number per parameter entry (moments)."""
    return isinstance(value, Tensor) and value.shape == param.shape and value.dim() > 0


def clone(value: Any) -> Any:
    return value.clone() if isinstance(value, Tensor) else value


def unstack_parameters(models: list[nn.Module]) -> None:
    """Give every member's parameters storage of their own again (checkpoints, eval)."""
    for model in models:
        for p in model.parameters():
            p.data, p.grad = p.data.clone(), None


class PopulationEngine:
    """The step engine of a population: every active member's epoch in one vectorised pass.

    The epoch loop (regbench.training.loop) drives it as it drives the sequential engine;
    members' models are not compiled (a compilation per member would cost more than it
    saves).
    """

    compiles = False

    def __init__(self) -> None:
        self.population: Population | None = None

    def start(self, sessions: list[Session]) -> None:
        if any(s.cfg.trainer.compile for s in sessions):
            warn("trainer.compile=true: a population trains through torch.func and evaluates "
                 "its members uncompiled (a compilation per member would cost more than it saves)")
        self.population = Population.build(sessions)

    def train_epoch(self, sessions: list[Session], epoch: int,
                    listeners: list[Callback]) -> list[EpochStep]:
        assert self.population is not None, "start() first"
        t0 = time.perf_counter()
        steps = step.train_epoch([s.trainer for s in sessions],
                                 Stacked(self.population, sessions, epoch), listeners)
        log.info("population epoch %d: %d members, %.2f s training", epoch, len(sessions),
                 time.perf_counter() - t0)
        return steps
