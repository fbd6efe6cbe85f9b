"""What a regularizer is: its keys, its checks, its hook points, and the registry of them.

A regularizer is one module of this package holding a ``Regularizer`` subclass marked
``@register``. The class declares:

- ``keys``: a dataclass whose fields become keys of the ``reg`` section (``reg.<field>``;
  a field may itself be a dataclass, as ``reg.dropout.*``), with their defaults;
- ``order``: where those keys sit in ``reg`` and when the hooks run among the others;
- ``check(reg)``: the values a type cannot express, refused with one line naming the key;
- ``from_config(reg, epochs)``: the regularizer as configured, or None when it is off;
- ``sites()``: the model sites (``Site``) it puts layers at, which the model must offer;
- ``vectorised`` / ``member_keys``: whether the population engine trains it per member,
  and the keys in which the members of one population may differ;
- ``words``: what each key means, for the axis of a figure;

and overrides the hook points it uses, which the model builder and the training loop call:

- ``layers(site)``: modules the model inserts at a site (dropout, batch norm);
- ``attach(model)``: a change to the built model's own layers (DropConnect's weight masks);
- ``batch(x, y)``: a training batch transformed before the forward pass (images erased in
  part, or mixed); ``y`` may become soft targets (a distribution over the classes per image);
- ``data_loss(logits, y)``: a replacement for plain cross-entropy (label smoothing);
- ``loss_term(params)``: a term added to the loss (L1, L2);
- ``param_groups(model, groups)``: the optimizer's parameter groups (weight decay);
- ``after_step(params)``: a change to the weights after each optimizer step (max-norm);
- ``start_epoch(epoch, model)``: a change at the start of each epoch (rate schedules);
- ``end_epoch(row, model)``: whether to stop, after each epoch's metrics (early stopping).

Nothing here imports torch: checking a configuration and naming its keys stay fast; the
hooks import it when they first run.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast

from regbench.errors import ConfigError

if TYPE_CHECKING:
    from torch import Tensor, nn

    from regbench.store.metrics import Row

Groups = list[dict[str, Any]]  # torch.optim parameter groups, each with a "name"
STOPPER = "early_stopping"  # the regularizer that tracks the best epoch, in every run


class Stopper(Protocol):
    """What the training loop asks of the early-stopping regularizer (see STOPPER)."""

    keep_best: bool

    def restore(self, model: nn.Module) -> bool: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Site:
    """A place in a model where regularizers may insert layers.

    block: a kind of block the model declares ("input" for the image, "conv" for a conv
    block, "fc" for the classifier head, or any other name a model offers); slot: "norm"
    (right after the conv / linear layer), "pre_norm" (in front of the norm slot) or
    "post" (after the activation); width: channels or features there.
    """

    block: str
    slot: str
    width: int = 0

    @property
    def name(self) -> str:
        """'conv.post': how models declare the sites they offer."""
        return f"{self.block}.{self.slot}"


class Regularizer:
    """Base class: every hook point does nothing. Subclasses override the ones they use."""

    name: ClassVar[str]  # the registry's name for it
    keys: ClassVar[type | None] = None  # a dataclass: its fields are keys of reg
    order: ClassVar[int] = 100  # place of its keys in reg and of its hooks among the others
    vectorised: ClassVar[bool] = True  # the population engine trains it per member
    member_keys: ClassVar[tuple[str, ...]] = ()  # keys of reg that members may differ in
    words: ClassVar[Mapping[str, str]] = {}  # key of reg -> what it means, for a figure's axis

    @classmethod
    def check(cls, reg: Any) -> None:
        """Raise ConfigError naming the first of its values that is not allowed."""

    @classmethod
    def from_config(cls, reg: Any, epochs: int) -> Regularizer | None:
        """The regularizer as the reg section configures it for a run of `epochs`, or None
        when it is off."""
        raise NotImplementedError

    @classmethod
    def population_blocker(cls, reg: Any) -> str | None:
        """The setting that keeps a run out of a population ('reg.KEY=VALUE'), or None.

        By default a regularizer that is not vectorised keeps a run out whenever one of its
        keys is away from its default; so does one that overrides ``batch`` (the population
        engine runs no batch transform), and one from outside regbench (a plugin's) that
        overrides ``layers`` or ``attach``, whatever it says: the engine swaps in its own
        versions of regbench's layers only.
        """
        foreign = not cls.__module__.startswith("regbench.")
        unrunnable = (cls.batch is not Regularizer.batch
                      or foreign and (cls.layers is not Regularizer.layers
                                      or cls.attach is not Regularizer.attach))
        if (cls.vectorised and not unrunnable) or cls.keys is None:
            return None
        defaults = cls.keys()
        for f in dataclasses.fields(cls.keys):
            value = getattr(reg, f.name)
            if value != getattr(defaults, f.name):
                return f"reg.{f.name}={value}"
        return None

    def sites(self) -> dict[str, str]:
        """The sites it puts layers at ('conv.post'), each with the setting that asks for it."""
        return {}

    def layers(self, site: Site) -> list[nn.Module]:
        return []

    def attach(self, model: nn.Module) -> None:
        return None

    def batch(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return x, y

    def data_loss(self, logits: Tensor, y: Tensor) -> Tensor | None:
        return None

    def loss_term(self, params: Sequence[Tensor]) -> Tensor | None:
        return None

    def param_groups(self, model: nn.Module, groups: Groups) -> None:
        return None

    def after_step(self, params: Sequence[Tensor]) -> None:
        return None

    def start_epoch(self, epoch: int, model: nn.Module) -> None:
        return None

    def end_epoch(self, row: Row, model: nn.Module) -> bool:
        return False


# Every regularizer, by name; each module of this package adds its own with @register.
REGISTRY: dict[str, type[Regularizer]] = {}


def register(cls: type[Regularizer]) -> type[Regularizer]:
    """Class decorator: make a regularizer known to the config, validation and engines."""
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"two regularizers named {cls.name!r}")
    REGISTRY[cls.name] = cls
    return cls


def registered() -> list[type[Regularizer]]:
    """The registered regularizers in their order (keys in reg, hooks in training)."""
    return sorted(REGISTRY.values(), key=lambda r: (r.order, r.name))


def assemble_config() -> type:
    """The reg section's dataclass: every registered regularizer's keys, in order."""
    fields: list[tuple[str, Any, Any]] = []
    owner: dict[str, str] = {}
    for r in registered():
        if r.keys is None:
            continue
        types = typing.get_type_hints(r.keys)
        for f in dataclasses.fields(r.keys):
            if f.name in owner:
                raise ValueError(f"reg.{f.name} is declared by {owner[f.name]} and {r.name}")
            owner[f.name] = r.name
            default = (field(default_factory=f.default_factory)
                       if f.default_factory is not dataclasses.MISSING else field(default=f.default))
            fields.append((f.name, types[f.name], default))
    config = dataclasses.make_dataclass("RegConfig", fields)
    config.__module__ = "regbench.training.regularizers"  # where pickle finds it
    config.__doc__ = ("The reg section: everything being compared. Its keys are those of the "
                      "registered regularizers (regbench.training.regularizers).")
    return config


def member_keys() -> tuple[str, ...]:
    """The keys of reg ('reg.l2') in which members of one population may differ."""
    return tuple(f"reg.{k}" for r in registered() for k in r.member_keys)


def words() -> dict[str, str]:
    """What each registered key means ('reg.l2' -> 'L2 penalty strength ...')."""
    return {f"reg.{k}": w for r in registered() for k, w in r.words.items()}


def check_all(reg: Any) -> None:
    """Every registered regularizer's checks of the reg section; ConfigError on the first."""
    for r in registered():
        r.check(reg)


def check_sites(reg: Any, offered: Sequence[str], model: str) -> None:
    """ConfigError when a configured regularizer needs a site the model does not offer."""
    for r in Regularization.from_config(reg).active:
        for site, setting in r.sites().items():
            if site not in offered:
                raise ConfigError(f"{setting} is not allowed with model={model}: it has no "
                                  f"{site} site (it offers {', '.join(offered)})")


def is_decayed(param: Tensor, decay_bias_and_norm: bool = False) -> bool:
    """Whether L2, L1 and weight decay apply: conv/linear weights (>= 2 dims) only, by default.

    Biases and batch-norm scale/shift are left alone (He et al. 2019, "Bag of Tricks").
    """
    return decay_bias_and_norm or param.ndim >= 2


def split_params(model: nn.Module, decay_bias_and_norm: bool = False
                 ) -> tuple[list[Tensor], list[Tensor]]:
    """(decayed, not decayed) trainable parameters of a model."""
    decay: list[Tensor] = []
    no_decay: list[Tensor] = []
    for p in model.parameters():
        if p.requires_grad:
            (decay if is_decayed(p, decay_bias_and_norm) else no_decay).append(p)
    return decay, no_decay


def make_groups(model: nn.Module, decay_bias_and_norm: bool = False) -> Groups:
    """Optimizer groups: decayed weights and (when any) the rest, both without decay yet."""
    decay, no_decay = split_params(model, decay_bias_and_norm)
    groups = [{"params": decay, "weight_decay": 0.0, "name": "decay"}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "name": "no_decay"})
    return groups


def describe_groups(groups: Groups) -> str:
    """One line saying what each parameter group holds, for the run's log."""
    parts = []
    for g in groups:
        n = sum(p.numel() for p in g["params"])
        parts.append(f"{g['name']}: {len(g['params'])} tensors, {n:,} values, "
                     f"weight_decay={g['weight_decay']:g}")
    return "; ".join(parts)


@dataclass
class Regularization:
    """The active regularizers of a run, and the hook points that fan out to them."""

    active: list[Regularizer]
    decayed: list[Tensor] = field(default_factory=list)  # set by param_groups

    @classmethod
    def from_config(cls, reg: Any, epochs: int = 1) -> Regularization:
        """The active regularizers; ``epochs``, the run's length, is what schedules span."""
        found = [r.from_config(reg, epochs) for r in registered()]
        return cls([r for r in found if r is not None])

    @property
    def stopper(self) -> Stopper:
        """The early-stopping tracker (always present: it also finds the best epoch)."""
        return cast(Stopper, next(r for r in self.active if r.name == STOPPER))

    def layers(self, site: Site) -> list[nn.Module]:
        return [m for r in self.active for m in r.layers(site)]

    def attach(self, model: nn.Module) -> None:
        for r in self.active:
            r.attach(model)

    def batch(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """A training batch through every batch transform, in order."""
        for r in self.active:
            x, y = r.batch(x, y)
        return x, y

    def data_loss(self, logits: Tensor, y: Tensor) -> Tensor:
        """The first regularizer's data loss, else cross-entropy (class indices or soft targets)."""
        for r in self.active:
            loss = r.data_loss(logits, y)
            if loss is not None:
                return loss
        import torch.nn.functional as F

        return F.cross_entropy(logits, y)

    def loss_term(self) -> Tensor | None:
        terms = [t for r in self.active if (t := r.loss_term(self.decayed)) is not None]
        return sum(terms[1:], terms[0]) if terms else None

    def param_groups(self, model: nn.Module) -> Groups:
        """Optimizer groups: decayed weights (>= 2 dims by default) and the rest, no decay,
        as the active regularizers then set them."""
        groups = make_groups(model)
        for r in self.active:
            r.param_groups(model, groups)
        self.decayed = next(g["params"] for g in groups if g["name"] == "decay")
        return groups

    def after_step(self) -> None:
        for r in self.active:
            r.after_step(self.decayed)

    def start_epoch(self, epoch: int, model: nn.Module) -> None:
        for r in self.active:
            r.start_epoch(epoch, model)

    def end_epoch(self, row: Row, model: nn.Module) -> bool:
        """Run every end-of-epoch hook; True when one of them stops training."""
        return any([r.end_epoch(row, model) for r in self.active])
