"""Population training: the members of a grid trained at once, as one vectorised model.

Members share what one program over all of them needs (dataset and split, model, batch
norm, dropout placement and kind, batch size, epochs, optimizer and schedule) and differ
in what enters as numbers: seed (initial weights, batch order, dropout masks), dropout
rates, L1/L2, weight decay, learning rate, label smoothing, max-norm and early stopping.

Each member is a ``Session`` (regbench.training.session): its own model (whose parameters are the
leaves its optimizer updates), optimizer, schedule, regularizers, early-stopping tracker,
metrics log and checkpoint. Only the training step is vectorised: the members' parameters
are stacked, one model runs over all members with ``torch.func.functional_call`` under
``torch.func.vmap``, and the members' losses are summed; each member's loss depends on its
own parameters alone, so one backward pass fills every member's gradients. Evaluating,
recording and stopping are the sequential code, member by member, so a member's run folder
is the one a sequential job writes. A member that stops early or diverges leaves the
population; the others go on.

On a GPU this turns dozens of launch-bound small trainings into one; on a CPU, already
compute-bound, it is slower than training the members one after another.
"""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from regbench.data import batching
from regbench.training import models
from regbench.training import regularizers
from regbench.training.device import autocast, prepare_batch, warn
from regbench.training.regularizers import Regularization, Regularizer, Site
from regbench.training.callbacks import Callback
from regbench.training.schema import RegbenchConfig
from regbench.training.session import EpochStep, Session, Trainer

log = logging.getLogger("regbench")

# Keys outside reg in which the members of one population may differ; inside reg, each
# regularizer names its own (Regularizer.member_keys). Every other key is shared.
RUN_MEMBER_KEYS = ("seed", "experiment", "optim.lr", "trainer.checkpoint", "trainer.progress",
                   "output")
DROPOUT_BLOCKS = ("input", "conv", "fc")


def member_keys() -> tuple[str, ...]:
    """Keys in which the members of one population may differ."""
    return (*RUN_MEMBER_KEYS, *regularizers.member_keys())


def unsupported(cfg: RegbenchConfig) -> str | None:
    """The first setting the population engine does not train per member, or None.

    Models and regularizers that are not vectorised (ModelSpec.vectorised and
    Regularizer.vectorised: Gaussian dropout, DropConnect, dropout schedules, the reg-level
    augmentation switch, batch transforms) and test-time MC dropout run through the
    sequential engine instead.
    """
    if not models.MODELS[cfg.model.name].vectorised:
        return f"model={cfg.model.name}"
    for part in regularizers.registered():
        why = part.population_blocker(cfg.reg)
        if why is not None:
            return why
    if cfg.eval.mc_samples != 0:
        return f"eval.mc_samples={cfg.eval.mc_samples}"
    return None


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
    """The seed of a member's dropout masks in one epoch (distinct per seed and epoch)."""
    return (seed * 1_000_003 + epoch) % 2**63


class MemberDropout(nn.Module):
    """Dropout whose rate and uniform noise are per-member inputs of the vectorised model.

    The rule of ``nn.Dropout`` / ``nn.Dropout2d`` (Srivastava et al., JMLR 2014; Tompson et
    al., CVPR 2015): a unit (or, spatial, a whole feature map) is kept where its noise is
    >= p, and the kept ones are scaled by 1/(1-p); p = 0 keeps the input unchanged. The
    noise is drawn outside ``vmap`` from each member's own generator, so a member's masks
    depend on its seed alone.
    """

    def __init__(self, block: str, spatial: bool) -> None:
        super().__init__()
        self.block, self.spatial = block, spatial
        self.noise_shape: tuple[int, ...] | None = None  # per image, found by a dry run
        self.register_buffer("p", torch.zeros(()), persistent=False)
        self.register_buffer("noise", torch.ones(()), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if self.noise_shape is None:  # the dry run: learn the shape of this site's noise
            c, *rest = x.shape[1:]
            self.noise_shape = (c, *[1] * len(rest)) if self.spatial else tuple(x.shape[1:])
            return x
        if not self.training:
            return x
        return x * (self.noise >= self.p) / (1 - self.p)


class Float32Norm(nn.modules.batchnorm._BatchNorm):
    """Batch norm computed in float32 and returned in its input's dtype.

    Under bf16 autocast (CUDA) a member's batch norm gets bf16 activations and float32
    weights; the plain layer accepts the mix, but vmap's batch-norm rule needs one dtype.
    Normalising in float32 is what the plain layer does inside, so members still train as
    their sequential runs do (to bf16 rounding).
    """

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.float()).to(x.dtype)


class Float32BatchNorm1d(Float32Norm, nn.BatchNorm1d):
    """nn.BatchNorm1d in float32 (see Float32Norm)."""


class Float32BatchNorm2d(Float32Norm, nn.BatchNorm2d):
    """nn.BatchNorm2d in float32 (see Float32Norm)."""


FLOAT32_NORMS: dict[type[nn.Module], type[Float32Norm]] = {
    nn.BatchNorm1d: Float32BatchNorm1d, nn.BatchNorm2d: Float32BatchNorm2d}


def member_layer(m: nn.Module, site: Site) -> nn.Module:
    """The population's version of a regularizer's layer: dropout with per-member rates,
    batch norm in float32; other layers as they are."""
    if isinstance(m, (nn.Dropout, nn.Dropout2d)):
        return MemberDropout(site.block, isinstance(m, nn.Dropout2d))
    if isinstance(m, nn.modules.batchnorm._BatchNorm) and type(m) in FLOAT32_NORMS:
        return FLOAT32_NORMS[type(m)](m.num_features, m.eps, m.momentum, m.affine,
                                      m.track_running_stats)
    return m


def member_layers(reg: Any) -> models.Layers:
    """The reg section's layer hook with its layers as the population runs them."""
    regs = Regularization.from_config(reg)

    def layers(site: Site) -> list[nn.Module]:
        return [member_layer(m, site) for m in regs.layers(site)]

    return layers


@dataclass
class Population:
    """The shared model that runs every member's parameters under vmap."""

    base: nn.Module
    param_names: list[str]
    buffer_names: list[str]
    dropouts: dict[str, MemberDropout]

    @classmethod
    def build(cls, sessions: list[Session]) -> Population:
        """A model with a dropout layer wherever any member has one (a rate of 0 elsewhere)."""
        first = sessions[0]
        rates = {b: max(getattr(s.cfg.reg.dropout, b) for s in sessions) for b in DROPOUT_BLOCKS}
        reg = replace(first.cfg.reg, dropout=replace(first.cfg.reg.dropout, **rates))
        data = first.data
        base = models.build(first.cfg.model, reg, data.in_channels, data.image_size,
                            data.num_classes, layers=member_layers(reg)).to(first.device)
        base.eval()
        with torch.no_grad():  # the dry run that sizes each dropout site's noise
            base(batching.normalize(data.train.x[:2].float(), data.mean, data.std))
        base.train()
        dropouts = {n: m for n, m in base.named_modules() if isinstance(m, MemberDropout)}
        param_names = [n for n, _ in base.named_parameters()]
        buffer_names = [n for n, _ in base.named_buffers() if n.rsplit(".", 1)[0] not in dropouts]
        for s in sessions:  # members' models differ from base only in parameter-free layers
            shapes = [p.shape for p in s.model.parameters()]
            if shapes != [p.shape for p in base.parameters()]:
                raise ValueError(f"{s.run_dir}: its model does not match the population's")
        return cls(base, param_names, buffer_names, dropouts)

    def forward(self, params: dict[str, Tensor], buffers: dict[str, Tensor],
                inputs: dict[str, Tensor], x: Tensor) -> Tensor:
        """One member's logits: the base model run on that member's tensors."""
        return functional_call(self.base, {**params, **buffers, **inputs}, (x,))

    def train_epoch(self, members: list[Session], epoch: int,
                    listeners: Sequence[Callback] = ()) -> list[EpochStep]:
        """One pass over the training split for these members together.

        Returns each member's EpochStep, as the sequential ``Trainer.train_epoch`` does for
        one run; each member's listeners hear of every step.
        """
        trainers = [s.trainer for s in members]
        for t in trainers:
            t.model.train()
        buffers = {n: torch.stack([dict(t.model.named_buffers())[n] for t in trainers])
                   for n in self.buffer_names}
        noise = self.noise(members, epoch)
        vforward, data_losses = vmap(self.forward), member_losses(trainers)
        loss_sum = torch.zeros(len(members), device=members[0].device)
        pen_sum, steps = torch.zeros_like(loss_sum), 0
        stacked = stack_parameters(self.param_names, [t.model for t in trainers])
        shared = SharedOptimizer.build(trainers, self.param_names, stacked)
        try:
            with own_optimizers_idle(shared is not None):
                for x, y in member_batches(members):
                    with autocast(x.device):
                        logits = vforward(stacked, buffers, noise(y.shape[1]), prepare_batch(x))
                    total = data_losses(logits.float(), y)
                    pens = [t.regs.loss_term() for t in trainers]
                    if any(p is not None for p in pens):
                        pen = torch.stack([total.new_zeros(()) if p is None else p for p in pens])
                        total = total + pen
                        pen_sum += pen.detach()
                    for leaf in stacked.values():
                        leaf.grad.zero_()  # type: ignore[union-attr]
                    total.sum().backward()  # member m's loss depends on its parameters only
                    if shared is not None:
                        shared.step()
                    for t in trainers:
                        if shared is None:
                            t.optimizer.step()
                        t.scheduler.batch_step()
                        t.regs.after_step()
                    loss_sum += total.detach()
                    steps += 1
                    for m, cb in enumerate(listeners):
                        cb.on_batch_end(y.shape[1], lambda m=m, n=steps: loss_sum[m].item() / n)
                for t in trainers:
                    t.scheduler.epoch_step()
        finally:
            if shared is not None:
                shared.write_back()
            unstack_parameters([t.model for t in trainers])
            with torch.no_grad():  # batch-norm statistics back into each member's model
                for name in self.buffer_names:
                    for m, t in enumerate(trainers):
                        dict(t.model.named_buffers())[name].copy_(buffers[name][m])
        running = (loss_sum / max(steps, 1)).tolist()
        return [EpochStep(r, p, math.isfinite(r))
                for r, p in zip(running, (pen_sum / max(steps, 1)).tolist(), strict=True)]

    def noise(self, members: list[Session], epoch: int) -> Callable[[int], dict[str, Tensor]]:
        """For a batch of n images per member: each dropout site's rates and uniform noise.

        Masks depend on (seed, epoch) alone, so a resumed member draws the masks it would have.
        """
        device = members[0].device
        masks = [torch.Generator(device=device).manual_seed(mask_seed(s.cfg.seed, epoch))
                 for s in members]
        rates = {n: torch.tensor([getattr(s.cfg.reg.dropout, d.block) for s in members],
                                 device=device) for n, d in self.dropouts.items()}

        def draw(n: int) -> dict[str, Tensor]:
            inputs: dict[str, Tensor] = {}
            for name, d in self.dropouts.items():
                assert d.noise_shape is not None
                noise = torch.empty((len(members), n, *d.noise_shape), device=device)
                for m, g in enumerate(masks):  # as torch.rand(..., generator=g) would draw
                    noise[m].uniform_(generator=g)
                inputs[f"{name}.p"], inputs[f"{name}.noise"] = rates[name], noise
            return inputs

        return draw


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


def member_losses(trainers: list[Trainer]) -> Callable[[Tensor, Tensor], Tensor]:
    """Logits [M, B, K] and labels [M, B] to each member's data loss [M]: one vmapped call
    when every member's data loss is the same function (e.g. equal label smoothing)."""
    def defines_loss(t: Trainer) -> list[Regularizer]:
        return [r for r in t.regs.active if type(r).data_loss is not Regularizer.data_loss]

    if all(defines_loss(t) == defines_loss(trainers[0]) for t in trainers):
        return vmap(trainers[0].regs.data_loss)
    return lambda logits, y: torch.stack([t.regs.data_loss(logits[m], y[m])
                                          for m, t in enumerate(trainers)])


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
        steps = self.population.train_epoch(sessions, epoch, listeners)
        log.info("population epoch %d: %d members, %.2f s training", epoch, len(sessions),
                 time.perf_counter() - t0)
        return steps
