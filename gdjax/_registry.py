"""One record per optimizer (private core).

Every command and function that takes an optimizer by name reads it here:
its optax factory (and the flags that fix its program), the float settings it
accepts with their ranges, its form in :func:`gdjax.optimizers.family` (where
it has one), its stability limit on a quadratic, and its name in words. The
CLI's choices, the validation of ``--setting NAME=VALUE`` (the same in
``gdjax basins``, ``gdjax lenet``, ``gdjax optimizers`` and the Python API),
:data:`gdjax.optimizers.PRESETS`, :data:`gdjax.train.OPTIMIZERS` and
:func:`gdjax.sharpness.stability_limit` come from :data:`OPTIMIZERS`.

Adding an optimizer is one :class:`Optimizer` record in :data:`OPTIMIZERS`
(and its test): the factory's float arguments become its settings, checked
against :data:`RANGES`.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import optax

from gdjax import _validate

UNIT = (0.0, 1.0)
"""[0, 1): a decay rate or momentum (1 would never forget, above 1 blows up)."""

RANGES: dict[str, tuple[float, float]] = {
    "momentum": UNIT,
    "b1": UNIT,
    "b2": UNIT,
    "decay": UNIT,
    "rho": UNIT,
}
"""Settings whose values lie in [low, high); every other float setting
(``eps``, ``weight_decay``, ``initial_accumulator_value``, ...) is finite and
>= 0."""


def check_setting(name: str, value: Any) -> float:
    """One optimizer setting's value as a float, or ValueError: finite and
    >= 0, and below 1 for the decay rates and momenta of :data:`RANGES`.
    Arrays (a batch of values) are checked entry by entry and returned as
    they are."""
    _validate.check_nonnegative(name, value)
    if name in RANGES and _validate.is_concrete(value):
        low, high = RANGES[name]
        if not bool(np.all(np.asarray(value) < high)):
            raise ValueError(f"{name} must be < {high:g} (in [{low:g}, {high:g})), got {value!r}")
    return float(value) if np.ndim(value) == 0 and _validate.is_concrete(value) else value


def _float_settings(factory: Callable, flags: Mapping[str, Any]) -> dict[str, float]:
    """The float arguments of an optax factory and their defaults (0.0 where
    the default is None, as optax.sgd's momentum): what is data."""
    out = {}
    for p in inspect.signature(factory).parameters.values():
        if p.name == "learning_rate" or p.name in flags:
            continue
        if isinstance(p.default, float) and not isinstance(p.default, bool):
            out[p.name] = p.default
        elif p.default is None and p.name in RANGES:  # optax.sgd(momentum=None)
            out[p.name] = 0.0
    return out


def _no_limit(lr, settings):
    return None


def _heavy_ball_limit(lr, settings):
    beta = float(dict(settings or {}).get("momentum", 0.0))
    with np.errstate(divide="ignore"):  # a rate of 0 (a warmup's first epoch): no limit
        return (2.0 + 2.0 * beta) / np.asarray(lr, np.float64)


def _nesterov_limit(lr, settings):
    beta = float(dict(settings or {}).get("momentum", 0.0))
    return _heavy_ball_limit(lr, settings) / (1.0 + 2.0 * beta)


@dataclasses.dataclass(frozen=True)
class Optimizer:
    """One optimizer.

    Attributes:
        name: its name on the command line and in JSON.
        factory: the optax factory, called with ``learning_rate`` and the
            settings (traced: data).
        flags: the factory's other arguments, fixed (they fix the program),
            e.g. ``(("nesterov", True),)``.
        words: the name in words, for titles and reports.
        defaults: settings that differ from the factory's own defaults in
            this optimizer (heavy-ball "momentum" is optax.sgd with momentum
            0.9).
        family: the settings of :func:`gdjax.optimizers.family` that make it
            (None: it has no form there), and ``family_of``: how each of its
            own settings maps onto the family's.
        stability: ``limit(lr, settings)``: the sharpness above which it
            cannot converge on a quadratic (None: no fixed limit, as for
            adaptive optimizers, whose limit applies to a preconditioned
            Hessian).
        adaptive: it scales each coordinate by a running average of squared
            gradients.
    """

    name: str
    factory: Callable[..., optax.GradientTransformation]
    words: str
    flags: tuple[tuple[str, Any], ...] = ()
    defaults: tuple[tuple[str, float], ...] = ()
    family: tuple[tuple[str, float], ...] | None = None
    family_of: tuple[tuple[str, tuple[str, ...]], ...] = ()
    stability: Callable[[Any, Mapping[str, float] | None], Any] = _no_limit
    adaptive: bool = False

    @property
    def settings(self) -> dict[str, float]:
        """Every float setting with its default (the factory's, or this
        record's where it gives one)."""
        return {**_float_settings(self.factory, dict(self.flags)), **dict(self.defaults)}

    @property
    def family_settings(self) -> tuple[str, ...]:
        """The settings its :func:`gdjax.optimizers.family` form takes."""
        return tuple(k for k, _ in self.family_of)

    def limit(self, lr: Any, settings: Mapping[str, float] | None = None) -> Any:
        """The stability limit at rate ``lr`` with these settings (the
        record's defaults fill the rest); None where no fixed limit applies."""
        return self.stability(lr, {**self.settings, **dict(settings or {})})

    def check(self, settings: Mapping[str, Any], *, family: bool = False) -> dict[str, Any]:
        """The settings as floats, or ValueError naming the first one this
        optimizer does not have or whose value is out of its range.
        ``family``: only the settings of its ``family`` form count."""
        accepted = self.family_settings if family else tuple(self.settings)
        out = {}
        for name, value in settings.items():
            if name not in accepted:
                have = f" (it has {', '.join(accepted)})" if accepted else ""
                raise ValueError(f"optimizer {self.name!r} has no setting {name}{have}")
            out[name] = check_setting(name, value)
        return out


OPTIMIZERS: dict[str, Optimizer] = {
    r.name: r
    for r in (
        Optimizer(
            "gd",
            optax.sgd,
            "gradient descent",
            family=(),
            stability=_heavy_ball_limit,
        ),
        Optimizer(
            "sgd",
            optax.sgd,
            "SGD",
            stability=_heavy_ball_limit,
        ),
        Optimizer(
            "momentum",
            optax.sgd,
            "heavy-ball momentum",
            defaults=(("momentum", 0.9),),
            family=(("momentum", 0.9),),
            family_of=(("momentum", ("momentum",)),),
            stability=_heavy_ball_limit,
        ),
        Optimizer(
            "nesterov",
            optax.sgd,
            "Nesterov momentum",
            flags=(("nesterov", True),),
            family=(("momentum", 0.9), ("nesterov", 1.0)),
            family_of=(("momentum", ("momentum",)),),
            stability=_nesterov_limit,
        ),
        Optimizer(
            "adam",
            optax.adam,
            "Adam",
            family=(
                ("momentum", 0.9),
                ("dampening", 0.9),
                ("adaptive", 1.0),
                ("b2", 0.999),
                ("bias_correction", 1.0),
            ),
            family_of=(("b1", ("momentum", "dampening")), ("b2", ("b2",)), ("eps", ("eps",))),
            adaptive=True,
        ),
        Optimizer(
            "rmsprop",
            optax.rmsprop,
            "RMSprop",
            family=(("adaptive", 1.0), ("b2", 0.9), ("eps_in_sqrt", 1.0)),
            family_of=(("decay", ("b2",)), ("eps", ("eps",))),
            adaptive=True,
        ),
        Optimizer("adamw", optax.adamw, "AdamW", adaptive=True),
        Optimizer("nadam", optax.nadam, "NAdam", adaptive=True),
        Optimizer("adamax", optax.adamax, "Adamax", adaptive=True),
        Optimizer("amsgrad", optax.amsgrad, "AMSGrad", adaptive=True),
        Optimizer("radam", optax.radam, "RAdam", adaptive=True),
        Optimizer("adabelief", optax.adabelief, "AdaBelief", adaptive=True),
        Optimizer("adagrad", optax.adagrad, "Adagrad", adaptive=True),
        Optimizer("adadelta", optax.adadelta, "Adadelta", adaptive=True),
        Optimizer("lion", optax.lion, "Lion"),
        Optimizer("lamb", optax.lamb, "LAMB", adaptive=True),
        Optimizer("novograd", optax.novograd, "NovoGrad", adaptive=True),
        Optimizer("yogi", optax.yogi, "Yogi", adaptive=True),
    )
}
"""Every optimizer gdjax knows, by name."""

FAMILY = tuple(name for name, r in OPTIMIZERS.items() if r.family is not None)
"""The optimizers with a :func:`gdjax.optimizers.family` form (one batch of data)."""

OPTAX = tuple(name for name in OPTIMIZERS if name not in ("gd", "momentum", "nesterov"))
"""The optimizers ``gdjax basins --optimizer`` takes: optax factories whose
only required argument is the learning rate (sgd's momentum is a setting)."""


def get(name: str, among: tuple[str, ...] | None = None) -> Optimizer:
    """The record of ``name``, or ValueError listing the choices (``among``:
    the names this caller takes)."""
    among = tuple(OPTIMIZERS) if among is None else among
    if name not in among:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(among)}")
    return OPTIMIZERS[name]
