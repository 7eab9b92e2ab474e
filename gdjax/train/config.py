"""The configuration of a training run: :class:`TrainConfig`, checked once, when
it is made; the optimizers by name (:data:`OPTIMIZERS`); the seeds' range
(:data:`SEED_LIMIT`); and what the configs of a population must share, and
when the models train as one."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from gdjax import _registry, _validate, distributed, lenet
from gdjax import schedules as S

__all__ = [
    "MAX_SHARPNESS_ITERS",
    "OPTIMIZERS",
    "SEED_LIMIT",
    "TrainConfig",
    "as_list",
    "auto_mode",
    "check_population",
    "sharpness_fields",
]

MAX_SHARPNESS_ITERS = 1000
"""The most Lanczos steps a sharpness measure may take (each keeps a vector
of all the network's parameters: 100,000 ran out of memory after an epoch)."""


def sharpness_fields(sharpness: bool, examples: int | None, iters: int | None) -> dict:
    """TrainConfig's sharpness fields from the options ``--sharpness``,
    ``--sharpness-examples`` (default 1000) and ``--sharpness-iters``
    (default 20); the last two without the first are refused (they were
    accepted and ignored)."""
    if not sharpness and (examples is not None or iters is not None):
        raise ValueError("--sharpness-examples and --sharpness-iters go with --sharpness")
    examples = 1000 if examples is None else examples
    return {
        "sharpness": examples if sharpness else 0,
        "sharpness_iters": 20 if iters is None else iters,
    }


OPTIMIZERS: dict[str, lenet.Optimizer] = {
    name: lenet.Optimizer(_registry.OPTIMIZERS[name].factory, _registry.OPTIMIZERS[name].flags)
    for name in ("sgd", "nesterov", "adam", "rmsprop")
}
"""The LeNet's optimizers by name (records of :mod:`gdjax._registry`): optax
factories; their float settings (momentum, b1, decay, ...) are given in
TrainConfig.settings and checked by the registry, as every command checks
them."""

SEED_LIMIT = 2**32
"""Seeds are integers in [0, SEED_LIMIT): JAX's PRNG keys hold 32 bits, and the
state keeps the seed as uint32."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """One training run.

    Attributes:
        schedule: a :class:`gdjax.schedules.Schedule` (default: the
            chapter's constant rate 0.3), or any optax schedule (a
            ``count -> lr`` callable, e.g. ``optax.cosine_decay_schedule(0.3,
            20)``); counted in epochs or updates by ``per``. Not a spec: parse
            one with :func:`gdjax.schedules.parse_spec` (or
            :func:`gdjax.lessons.chapter.chapter_schedule`, the chapter's
            values filling the rest). Models of a population need gdjax
            schedules, whose numbers are arrays that vmap.
        epochs: passes over the training set.
        batch_size: examples per minibatch (the last one of an epoch is partial).
        seed: initialisation and data order: an integer in [0, 2**32).
        per: step the schedule once per ``"epoch"`` (the PyTorch edition) or
            per ``"update"`` (MXNet, optax).
        subset: train on the first N training images (None: all 60,000).
        test_subset: test on the first N test images (None: all 10,000).
        log_every: minibatches between train-metric points (the chapter's 50).
        optimizer: the kind of update, one of :data:`OPTIMIZERS` (``"sgd"``:
            the chapter's plain SGD; ``"nesterov"``: SGD with Nesterov
            momentum; ``"adam"``, ``"rmsprop"``).
        settings: the optimizer's float settings as (name, value) pairs, e.g.
            ``(("momentum", 0.9),)`` for SGD with momentum; data, not program:
            models of a population may differ in their values (not in their
            names).
        sharpness: track the top eigenvalue of the training loss's Hessian
            after every epoch, on the fixed batch of the first ``sharpness``
            training examples (0: not tracked; ``gdjax lenet --sharpness``
            uses 1000); see :mod:`gdjax.sharpness`.
        sharpness_iters: Lanczos steps (Hessian-vector products) per measure.
    """

    schedule: S.Schedule | Callable[[Any], Any] = dataclasses.field(
        default_factory=lambda: S.constant(0.3)
    )
    epochs: int = 30
    batch_size: int = 256
    seed: int = 0
    per: str = "epoch"
    subset: int | None = None
    test_subset: int | None = None
    log_every: int = 50
    optimizer: str = "sgd"
    settings: tuple[tuple[str, float], ...] = ()
    sharpness: int = 0
    sharpness_iters: int = 20

    def __post_init__(self):
        for name in ("epochs", "batch_size", "log_every", "sharpness_iters"):
            _validate.check_count(name, getattr(self, name))
        if self.sharpness_iters > MAX_SHARPNESS_ITERS:
            raise ValueError(
                f"sharpness_iters (--sharpness-iters) must be at most {MAX_SHARPNESS_ITERS}, got "
                f"{self.sharpness_iters}: Lanczos keeps every step's vector of the network's "
                "parameters, and 20 already resolve the top eigenvalue"
            )
        if self.sharpness != 0:
            _validate.check_count("sharpness", self.sharpness)
        for name in ("subset", "test_subset"):
            if getattr(self, name) is not None:
                _validate.check_count(name, getattr(self, name))
        if self.per not in ("epoch", "update"):
            raise ValueError(f"per must be 'epoch' or 'update', got {self.per!r}")
        if (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, int | np.integer)
            or not 0 <= self.seed < SEED_LIMIT
        ):
            raise ValueError(f"seed must be an integer in [0, 2**32), got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))  # a numpy integer -> int
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"
            )
        settings = _registry.OPTIMIZERS[self.optimizer].check(dict(self.settings))
        object.__setattr__(
            self, "settings", tuple(sorted((k, float(v)) for k, v in settings.items()))
        )
        if isinstance(self.schedule, str):
            raise ValueError(
                f"schedule must be a gdjax Schedule or an optax schedule (count -> lr), not the "
                f"spec {self.schedule!r}: parse it once with gdjax.schedules.parse_spec, or "
                "gdjax.lessons.chapter.chapter_schedule for the chapter's values"
            )
        if not callable(self.schedule):
            raise ValueError(
                f"schedule must be a gdjax Schedule or an optax schedule (count -> lr), got "
                f"{self.schedule!r}"
            )

    def build_optimizer(self) -> lenet.Optimizer:
        """The optimizer's kind (static)."""
        return OPTIMIZERS[self.optimizer]

    def build_schedule(self) -> S.Schedule | Callable[[Any], Any]:
        """The schedule as given (a config holds it built; kept for readers of
        earlier versions, where the config held a spec)."""
        return self.schedule

    @property
    def schedule_name(self) -> str:
        """The schedule as text, for JSON, reports and resume checks: a gdjax
        schedule's canonical spec, or ``optax:NAME`` for an optax callable."""
        if isinstance(self.schedule, S.Schedule):
            return self.schedule.spec
        return f"optax:{getattr(self.schedule, '__qualname__', type(self.schedule).__name__)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            **{f.name: getattr(self, f.name) for f in dataclasses.fields(self)},
            "schedule": self.schedule_name,
            "schedule_resolved": repr(self.schedule)
            if isinstance(self.schedule, S.Schedule)
            else None,
            "settings": [[k, v] for k, v in self.settings],  # as JSON reads it back
        }


def as_list(configs: TrainConfig | Sequence[TrainConfig]) -> tuple[list[TrainConfig], bool]:
    """The configs as a list, and whether they form a population (a model axis)."""
    if isinstance(configs, TrainConfig):
        return [configs], False
    configs = list(configs)
    check_population(configs)
    return configs, True


def check_population(configs: Sequence[TrainConfig]) -> None:
    if not configs:
        raise ValueError("give at least one TrainConfig")
    shared = (
        "epochs",
        "batch_size",
        "per",
        "subset",
        "test_subset",
        "log_every",
        "optimizer",
        "sharpness",
        "sharpness_iters",
    )
    for name in shared:
        values = {getattr(c, name) for c in configs}
        if len(values) > 1:
            raise ValueError(
                f"a population shares {name}; got {sorted(values, key=str)} "
                "(models may differ only in schedule, seed and the values of their "
                "optimizer settings)"
            )
    names = {tuple(k for k, _ in c.settings) for c in configs}
    if len(names) > 1:
        raise ValueError(
            "the models of a population need the same optimizer settings (their values may "
            f"differ); got {sorted(names)} (give momentum=0.0 for plain SGD)"
        )


def auto_mode() -> str:
    """A population on an accelerator or over several processes; one model
    after another on one CPU process (vmapping convolutions measured slower)."""
    several = jax.default_backend() != "cpu" or distributed.process_count() > 1
    return "population" if several else "sequential"
