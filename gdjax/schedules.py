"""Learning-rate schedules, written by hand, each next to its optax twin.

A schedule is a :class:`Schedule`: a callable ``count -> lr`` that uses only
``jnp`` operations, so it jits, vmaps and works as an optax learning rate
(``optax.sgd(learning_rate=schedule)``). Its arguments are validated in
Python when it is built. ``schedule.optax()`` returns the matching schedule
built from optax's own functions, from the same arguments (None where optax
has none: the square-root schedule).

=================  ==========================================================
factory            formula at t = count (+ offset)
=================  ==========================================================
``constant``       base_lr
``square_root``    base_lr (t + 1)^(-1/2)
``factor``         max(final_lr, base_lr factor^floor(t / every))
``multi_factor``   base_lr factor^(number of milestones m with t >= m)
``cosine``         final_lr + (base_lr - final_lr)/2 (1 + cos(pi min(t, T)/T))
``poly``           final_lr + (base_lr - final_lr)(1 - min(t, T)/T)^power
``linear_decay``   base_lr (1 - min(t, T)/T)  (lesson D's time-based rule)
``warmup``         any schedule after a linear (or constant) ramp of k steps
=================  ==========================================================

One vocabulary for the whole family: every factory's first argument is
``base_lr`` (the starting or peak rate); ``final_lr`` is where a decay ends
(factor's floor included); ``max_steps`` is a horizon, ``warmup_steps``,
``warmup_begin_lr`` and ``warmup_mode`` describe a warmup, ``milestones``
are multi_factor's decay points and ``every`` is factor's period. ``family``
is the formula a schedule computes (one of :data:`FAMILIES`). "Steps"
elsewhere in gdjax is the number of updates of a descent.

Counting convention: like optax and PyTorch, the first update uses
``schedule(0)``. MXNet's lr_scheduler gives the first update
``scheduler(1)`` (``num_update`` is incremented before the rate is read) and
its Factor/MultiFactor schedulers decay on a strict ``num_update > step``.
Every factory takes ``offset`` (the schedule is evaluated at
``count + offset``); :func:`from_mxnet` builds the schedule that gives update
k exactly what MXNet's scheduler gives at ``num_update = k + 1``. See
``docs/schedules.md`` for the table of twins and conventions.

Specs: :func:`parse_spec` builds a schedule from ``NAME[:key=value,...]``
(the CLI's form), and ``schedule.spec`` writes any schedule back in that
form, canonically: ``parse_spec(s.spec)`` has the same fields and values as
``s``. JSON files and resume checks store the spec.

Lesson D's gradient-based rate (lr proportional to |grad|) is not here: it is
a function of the gradient, not of the count, so it cannot be a
``count -> lr`` schedule; it is the descent engine's ``rule="grad"``.

Populations: :func:`stack` turns several schedules of any families into one
:class:`ScheduleParams` PyTree of arrays, and :func:`evaluate` computes them
with a ``lax.switch`` on the family, so a batch of different schedules is one
vmapped computation.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Float, Int

from gdjax._validate import check_count, check_nonnegative, check_number, check_positive

__all__ = [
    "FAMILIES",
    "REGISTRY",
    "Family",
    "Schedule",
    "ScheduleParams",
    "constant",
    "cosine",
    "evaluate",
    "factor",
    "from_mxnet",
    "linear_decay",
    "make",
    "multi_factor",
    "names",
    "parse_spec",
    "poly",
    "square_root",
    "stack",
    "warmup",
]

WARMUP_MODES: tuple[str, ...] = ("linear", "constant")


# --------------------------------------------------------------------------
# Validation (the checks themselves live in gdjax._validate).


def _check_factor(value) -> None:
    check_number("factor", value, lambda a: (a > 0) & (a <= 1), "in (0, 1]")


def _check_warmup_mode(mode) -> None:
    if mode not in WARMUP_MODES:
        raise ValueError(f"warmup_mode must be 'linear' or 'constant', got {mode!r}")


# --------------------------------------------------------------------------
# One set of formulas, shared by single schedules and populations.


class ScheduleParams(NamedTuple):
    """Every schedule as arrays (a PyTree), so batches of different schedules
    vmap. Fields a family does not use are ignored. Build with :func:`stack`
    or ``Schedule.params()``.

    Attributes:
        family: index into FAMILIES.
        base_lr: the starting (peak) rate.
        final_lr: where cosine and poly end; factor's floor.
        factor: factor / multi_factor multiplier.
        every: factor's period (decay every ``every`` counts).
        max_steps: cosine/poly decay horizon T (after the warmup).
        power: poly exponent.
        milestones: multi_factor's decay points, padded with +inf.
        warmup_steps: k, 0 for none.
        warmup_begin_lr: the ramp's first value.
        warmup_constant: True for a constant ramp (stays at warmup_begin_lr).
        offset: added to the count (1 for MXNet's convention).
    """

    family: Int[Array, ""]
    base_lr: Float[Array, ""]
    final_lr: Float[Array, ""]
    factor: Float[Array, ""]
    every: Float[Array, ""]
    max_steps: Float[Array, ""]
    power: Float[Array, ""]
    milestones: Float[Array, " m"]
    warmup_steps: Float[Array, ""]
    warmup_begin_lr: Float[Array, ""]
    warmup_constant: Array
    offset: Float[Array, ""]


def _f_constant(p: ScheduleParams, t):
    return jnp.broadcast_to(p.base_lr, jnp.shape(t)).astype(t.dtype)


def _f_square_root(p, t):
    return p.base_lr * (t + 1.0) ** -0.5


def _f_factor(p, t):
    return jnp.maximum(p.final_lr, p.base_lr * p.factor ** jnp.floor(t / p.every))


def _f_multi_factor(p, t):
    milestones = p.milestones.reshape((1,) * t.ndim + (-1,))
    passed = jnp.sum((t[..., None] >= milestones).astype(t.dtype), axis=-1)
    return p.base_lr * p.factor**passed


def _f_cosine(p, t):
    frac = jnp.minimum(t, p.max_steps) / p.max_steps
    return p.final_lr + (p.base_lr - p.final_lr) * 0.5 * (1.0 + jnp.cos(jnp.pi * frac))


def _f_poly(p, t):
    frac = 1.0 - jnp.minimum(t, p.max_steps) / p.max_steps
    return p.final_lr + (p.base_lr - p.final_lr) * frac**p.power


def _value(p: ScheduleParams, count, formula) -> Array:
    # a count below 0 reads as 0 (before the first update), never a negative rate
    c = jnp.maximum(jnp.asarray(count).astype(p.base_lr.dtype), 0.0) + p.offset
    t = jnp.maximum(c - p.warmup_steps, 0.0)
    peak = formula(p, jnp.zeros_like(c))
    ramp = p.warmup_begin_lr + (peak - p.warmup_begin_lr) * c / jnp.maximum(p.warmup_steps, 1.0)
    ramp = jnp.where(p.warmup_constant, p.warmup_begin_lr, ramp)
    return jnp.where(c < p.warmup_steps, ramp, formula(p, t))


def evaluate(params: ScheduleParams, count: ArrayLike) -> Array:
    """Evaluates a schedule given as arrays; the family is a ``lax.switch``.

    ``count`` may be a Python int or an int32 array (traced too).
    ``jax.vmap(evaluate, in_axes=(0, None))(stack(schedules), count)`` gives
    every schedule of a population at once.
    """
    branches = [lambda p, c, f=f.formula: _value(p, c, f) for f in REGISTRY.values()]
    return jax.lax.switch(params.family, branches, params, count)


# --------------------------------------------------------------------------
# Schedule objects.


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A learning-rate schedule: call it with the update count.

    Attributes:
        name: the factory's name.
        family: the formula family (one of FAMILIES).
        args: the factory's arguments, as (name, value) pairs.
        fields: the values of ScheduleParams' fields (Python numbers).
    """

    name: str
    family: str
    args: tuple[tuple[str, Any], ...]
    fields: tuple[tuple[str, Any], ...] = dataclasses.field(repr=False)
    _twin: Callable[[], optax.Schedule | None] | None = dataclasses.field(
        default=None, repr=False, compare=False
    )

    def params(self, dtype=None) -> ScheduleParams:
        """This schedule as a ScheduleParams PyTree of arrays."""
        return _to_params(dict(self.fields), len(dict(self.fields)["milestones"]), dtype)

    def __call__(self, count: ArrayLike) -> Array:
        fields = dict(self.fields)
        dtype = _lr_dtype(fields["base_lr"])
        p = _to_params(fields, len(fields["milestones"]), dtype)
        return _value(p, count, REGISTRY[self.family].formula)

    def optax(self) -> optax.Schedule | None:
        """The matching schedule built with optax's functions from the same
        arguments, or None where optax has no twin (square_root)."""
        twin = self._twin() if self._twin is not None else None
        offset = dict(self.fields)["offset"]
        if twin is None or offset == 0:
            return twin
        return lambda count: twin(count + offset)

    @property
    def warmup_steps(self) -> int:
        return int(dict(self.fields)["warmup_steps"])

    @property
    def spec(self) -> str:
        """This schedule as ``NAME:key=value,...``, canonically:
        ``parse_spec(s.spec)`` has the same fields (the same values at every
        count) as ``s``, and equals it when ``s`` came from a factory.

        Example:
            >>> cosine(0.3, 20, 0.01, warmup_steps=5).spec
            'cosine:base_lr=0.3,max_steps=20,final_lr=0.01,warmup_steps=5,warmup_begin_lr=0.0'
            >>> warmup(factor(2.0, 0.9, 0.01), 5).spec
            'factor:base_lr=2.0,factor=0.9,final_lr=0.01,warmup_steps=5,warmup_begin_lr=0.0'
        """
        return _spec(self)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.args)
        return f"{self.name}({args})"


def _lr_dtype(base_lr):
    x = jnp.asarray(base_lr)
    return x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.result_type(float)


_DEFAULT_FIELDS = {
    "base_lr": 0.0,
    "final_lr": 0.0,
    "factor": 1.0,
    "every": 1.0,
    "max_steps": 1.0,
    "power": 1.0,
    "milestones": (),
    "warmup_steps": 0,
    "warmup_begin_lr": 0.0,
    "warmup_constant": False,
    "offset": 0,
}


def _to_params(fields: dict, n_milestones: int, dtype=None) -> ScheduleParams:
    dtype = dtype or _lr_dtype(fields["base_lr"])
    ms = list(fields["milestones"]) + [math.inf] * (n_milestones - len(fields["milestones"]))

    def f(name):
        return jnp.asarray(fields[name]).astype(dtype)

    return ScheduleParams(
        family=jnp.asarray(FAMILIES.index(fields["family"]), jnp.int32),
        base_lr=f("base_lr"),
        final_lr=f("final_lr"),
        factor=f("factor"),
        every=f("every"),
        max_steps=f("max_steps"),
        power=f("power"),
        milestones=jnp.asarray(ms, dtype).reshape(n_milestones),
        warmup_steps=f("warmup_steps"),
        warmup_begin_lr=f("warmup_begin_lr"),
        warmup_constant=jnp.asarray(bool(fields["warmup_constant"])),
        offset=f("offset"),
    )


def _shift(schedule: Schedule, offset) -> Schedule:
    """``schedule`` read at ``count + offset`` (its warmup included)."""
    offset = check_count("offset", offset, minimum=0)
    if not offset:
        return schedule
    fields = dict(schedule.fields)
    if fields["offset"]:
        raise ValueError(f"{schedule!r} already has an offset")
    fields["offset"] = offset
    return dataclasses.replace(
        schedule,
        args=(*schedule.args, ("offset", offset)),
        fields=tuple(sorted(fields.items())),
    )


def _build(name, family, args, twin, offset, **fields) -> Schedule:
    all_fields = {**_DEFAULT_FIELDS, **fields, "family": family}
    schedule = Schedule(
        name=name,
        family=family,
        args=tuple(args.items()),
        fields=tuple(sorted(all_fields.items())),
        _twin=twin,
    )
    return _shift(schedule, offset)


def constant(base_lr: float, *, offset: int = 0) -> Schedule:
    """A constant rate. Twin: ``optax.constant_schedule(base_lr)``.

    Example:
        >>> round(float(constant(0.3)(7)), 6)
        0.3
    """
    check_positive("base_lr", base_lr)
    return _build(
        "constant",
        "constant",
        {"base_lr": base_lr},
        lambda: optax.constant_schedule(base_lr),
        offset,
        base_lr=base_lr,
    )


def square_root(base_lr: float, *, offset: int = 0) -> Schedule:
    """The textbook's square-root decay, ``base_lr (t + 1)^(-1/2)``.

    optax has no twin (its polynomial_schedule decays to a fixed end over a
    fixed horizon; this one never ends), so ``.optax()`` is None.

    Example:
        >>> round(float(square_root(1.0)(3)), 3)
        0.5
    """
    check_positive("base_lr", base_lr)
    return _build("square_root", "square_root", {"base_lr": base_lr}, None, offset, base_lr=base_lr)


def factor(
    base_lr: float, factor: float, final_lr: float = 0.0, *, every: int = 1, offset: int = 0
) -> Schedule:
    """Exponential decay with a floor, ``max(final_lr, base_lr factor^floor(t/every))``.

    The textbook's FactorScheduler (``lr_{t+1} = max(lr_min, lr_t alpha)``)
    with ``every=1``; PyTorch's StepLR(step_size=every, gamma=factor) with
    ``final_lr=0``. Twin: ``optax.exponential_decay(base_lr, every, factor,
    staircase=True, end_value=final_lr)``.

    Example:
        >>> [round(float(factor(2.0, 0.5, 0.3)(t)), 6) for t in range(4)]
        [2.0, 1.0, 0.5, 0.3]
    """
    check_positive("base_lr", base_lr)
    _check_factor(factor)
    check_nonnegative("final_lr", final_lr)
    every = check_count("every", every)

    def twin():
        return optax.exponential_decay(
            base_lr, every, factor, staircase=True, end_value=final_lr if final_lr > 0 else None
        )

    args = {"base_lr": base_lr, "factor": factor, "final_lr": final_lr}
    if every != 1:
        args["every"] = every
    return _build(
        "factor",
        "factor",
        args,
        twin,
        offset,
        base_lr=base_lr,
        factor=factor,
        final_lr=final_lr,
        every=every,
    )


def multi_factor(
    base_lr: float, milestones: Sequence[int], factor: float, *, offset: int = 0
) -> Schedule:
    """Piecewise constant: multiply by ``factor`` at each count in ``milestones``.

    ``base_lr factor^(number of m in milestones with t >= m)``; PyTorch's
    MultiStepLR(milestones, gamma=factor). Twin:
    ``optax.piecewise_constant_schedule(base_lr, {m: factor for m in milestones})``.

    Example:
        >>> [float(multi_factor(0.5, [1, 3], 0.5)(t)) for t in range(4)]
        [0.5, 0.25, 0.25, 0.125]
    """
    check_positive("base_lr", base_lr)
    _check_factor(factor)
    try:
        milestones = tuple(check_count("milestones", m) for m in milestones)
    except TypeError:
        raise ValueError(f"milestones must be a sequence of counts, got {milestones!r}") from None
    if not milestones:
        raise ValueError("milestones must name at least one count")
    if any(b <= a for a, b in zip(milestones, milestones[1:], strict=False)):
        raise ValueError(f"milestones must be strictly increasing, got {list(milestones)}")

    def twin():
        return optax.piecewise_constant_schedule(base_lr, {m: factor for m in milestones})

    return _build(
        "multi_factor",
        "multi_factor",
        {"base_lr": base_lr, "milestones": milestones, "factor": factor},
        twin,
        offset,
        base_lr=base_lr,
        factor=factor,
        milestones=tuple(float(m) for m in milestones),
    )


def _horizon(name, max_steps, warmup_steps) -> tuple[int, int]:
    max_steps = check_count("max_steps", max_steps)
    warmup_steps = check_count("warmup_steps", warmup_steps, minimum=0)
    if warmup_steps >= max_steps:
        raise ValueError(
            f"{name}: warmup_steps ({warmup_steps}) must be shorter than max_steps ({max_steps})"
        )
    return max_steps, warmup_steps


def cosine(
    base_lr: float,
    max_steps: int,
    final_lr: float = 0.0,
    *,
    warmup_steps: int = 0,
    warmup_begin_lr: float = 0.0,
    offset: int = 0,
) -> Schedule:
    """Cosine decay (Loshchilov and Hutter), pinned at ``final_lr`` after
    ``max_steps``: ``final_lr + (base_lr - final_lr)/2 (1 + cos(pi t/T))``.

    With ``warmup_steps=k`` the rate first rises linearly from
    ``warmup_begin_lr`` to ``base_lr`` over k steps, then the cosine runs over
    the remaining ``max_steps - k`` (the textbook's and MXNet's convention:
    ``max_steps`` counts the warmup). Twins: ``optax.cosine_decay_schedule``,
    or ``optax.warmup_cosine_decay_schedule`` with warmup. PyTorch:
    CosineAnnealingLR(T_max=max_steps, eta_min=final_lr) up to T_max.

    Example:
        >>> [round(float(cosine(1.0, 2)(t)), 6) for t in range(3)]
        [1.0, 0.5, 0.0]
    """
    check_positive("base_lr", base_lr)
    check_nonnegative("final_lr", final_lr)
    max_steps, warmup_steps = _horizon("cosine", max_steps, warmup_steps)
    check_nonnegative("warmup_begin_lr", warmup_begin_lr)
    decay = max_steps - warmup_steps

    def twin():
        if warmup_steps:
            return optax.warmup_cosine_decay_schedule(
                warmup_begin_lr, base_lr, warmup_steps, max_steps, final_lr
            )
        return optax.cosine_decay_schedule(base_lr, max_steps, alpha=final_lr / base_lr)

    args = {"base_lr": base_lr, "max_steps": max_steps, "final_lr": final_lr}
    if warmup_steps:
        args.update(warmup_steps=warmup_steps, warmup_begin_lr=warmup_begin_lr)
    return _build(
        "cosine",
        "cosine",
        args,
        twin,
        offset,
        base_lr=base_lr,
        final_lr=final_lr,
        max_steps=decay,
        warmup_steps=warmup_steps,
        warmup_begin_lr=warmup_begin_lr,
    )


def poly(
    base_lr: float,
    max_steps: int,
    power: float = 2.0,
    final_lr: float = 0.0,
    *,
    warmup_steps: int = 0,
    warmup_begin_lr: float = 0.0,
    offset: int = 0,
) -> Schedule:
    """Polynomial decay, ``final_lr + (base_lr - final_lr)(1 - t/T)^power``,
    pinned at ``final_lr`` after T = ``max_steps`` (warmup counted in it, as
    in MXNet's PolyScheduler). Twin: ``optax.polynomial_schedule``. PyTorch:
    PolynomialLR(total_iters=max_steps, power) with ``final_lr=0``.

    Example:
        >>> [float(poly(1.0, 2, power=2.0)(t)) for t in range(3)]
        [1.0, 0.25, 0.0]
    """
    check_positive("base_lr", base_lr)
    check_positive("power", power)
    check_nonnegative("final_lr", final_lr)
    max_steps, warmup_steps = _horizon("poly", max_steps, warmup_steps)
    check_nonnegative("warmup_begin_lr", warmup_begin_lr)
    decay = max_steps - warmup_steps

    def twin():
        inner = optax.polynomial_schedule(base_lr, final_lr, power, decay)
        return _optax_warmup(inner, base_lr, warmup_steps, warmup_begin_lr, False)

    args = {"base_lr": base_lr, "max_steps": max_steps, "power": power, "final_lr": final_lr}
    if warmup_steps:
        args.update(warmup_steps=warmup_steps, warmup_begin_lr=warmup_begin_lr)
    return _build(
        "poly",
        "poly",
        args,
        twin,
        offset,
        base_lr=base_lr,
        final_lr=final_lr,
        max_steps=decay,
        power=power,
        warmup_steps=warmup_steps,
        warmup_begin_lr=warmup_begin_lr,
    )


def linear_decay(base_lr: ArrayLike, max_steps: int, *, offset: int = 0) -> Schedule:
    """Lesson D's time-based decay, ``lr_t = base_lr (1 - t / max_steps)``,
    0 from ``max_steps`` on. It is ``poly(base_lr, max_steps, power=1)``.
    Twin: ``optax.linear_schedule(base_lr, 0, max_steps)``. The descent
    engine's ``rule="time"`` is this schedule.

    Example:
        >>> s = linear_decay(1.0, 4)
        >>> [float(s(t)) for t in range(5)]
        [1.0, 0.75, 0.5, 0.25, 0.0]
    """
    check_positive("base_lr", base_lr)
    max_steps = check_count("max_steps", max_steps)
    return _build(
        "linear_decay",
        "poly",
        {"base_lr": base_lr, "max_steps": max_steps},
        lambda: optax.linear_schedule(base_lr, 0.0, max_steps),
        offset,
        base_lr=base_lr,
        max_steps=max_steps,
        power=1.0,
    )


def _optax_warmup(inner, peak, warmup_steps, warmup_begin_lr, constant_mode):
    if not warmup_steps:
        return inner
    ramp = (
        optax.constant_schedule(warmup_begin_lr)
        if constant_mode
        else optax.linear_schedule(warmup_begin_lr, peak, warmup_steps)
    )
    return optax.join_schedules([ramp, inner], [warmup_steps])


def warmup(
    schedule: Schedule,
    warmup_steps: int,
    warmup_begin_lr: float = 0.0,
    warmup_mode: str = "linear",
) -> Schedule:
    """Puts a warmup of ``warmup_steps`` counts in front of any schedule.

    During the warmup the rate rises linearly from ``warmup_begin_lr`` to the
    schedule's first value (``warmup_mode="linear"``) or stays at
    ``warmup_begin_lr`` (``"constant"``); then the schedule runs, shifted by
    ``warmup_steps``. Twin: ``optax.join_schedules([linear_schedule |
    constant_schedule, twin], [warmup_steps])``.

    Example:
        >>> [float(warmup(constant(1.0), 4)(t)) for t in range(6)]
        [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    """
    if not isinstance(schedule, Schedule):
        raise ValueError(f"warmup needs a gdjax schedule, got {schedule!r}")
    warmup_steps = check_count("warmup_steps", warmup_steps)
    check_nonnegative("warmup_begin_lr", warmup_begin_lr)
    _check_warmup_mode(warmup_mode)
    fields = dict(schedule.fields)
    if fields["warmup_steps"]:
        raise ValueError(f"{schedule!r} already has a warmup")
    if fields["offset"]:
        raise ValueError("apply warmup before the offset (build the inner schedule with offset=0)")
    peak = float(schedule(0))
    inner_twin = schedule._twin
    constant_mode = warmup_mode == "constant"

    def twin():
        inner = inner_twin() if inner_twin is not None else None
        if inner is None:
            return None
        return _optax_warmup(inner, peak, warmup_steps, warmup_begin_lr, constant_mode)

    fields.update(
        warmup_steps=warmup_steps, warmup_begin_lr=warmup_begin_lr, warmup_constant=constant_mode
    )
    args = (
        ("schedule", schedule),
        ("warmup_steps", warmup_steps),
        ("warmup_begin_lr", warmup_begin_lr),
        ("warmup_mode", warmup_mode),
    )
    return Schedule("warmup", schedule.family, args, tuple(sorted(fields.items())), twin)


# --------------------------------------------------------------------------
# Registry and specs.


class Family(NamedTuple):
    """One schedule family: everything gdjax knows of it, in one record.

    Attributes:
        name: its name (in specs, JSON and :data:`FAMILIES`).
        formula: ``(params, t) -> rate`` after the warmup, in ``jnp`` only
            (``t`` counts from the end of the warmup).
        keys: its parameters, in the order of its factory (what its spec
            writes).
        factory: the factory that builds it (checking its arguments, and
            with its optax twin).
    """

    name: str
    formula: Callable[[ScheduleParams, Array], Array]
    keys: tuple[str, ...]
    factory: Callable[..., Schedule]


REGISTRY: dict[str, Family] = {
    f.name: f
    for f in (
        Family("constant", _f_constant, ("base_lr",), constant),
        Family("square_root", _f_square_root, ("base_lr",), square_root),
        Family("factor", _f_factor, ("base_lr", "factor", "final_lr", "every"), factor),
        Family("multi_factor", _f_multi_factor, ("base_lr", "milestones", "factor"), multi_factor),
        Family("cosine", _f_cosine, ("base_lr", "max_steps", "final_lr"), cosine),
        Family("poly", _f_poly, ("base_lr", "max_steps", "power", "final_lr"), poly),
    )
}
"""The formula families, in the order of their integer codes in
:class:`ScheduleParams` (a new family is one record here, its factory and
its test)."""

FAMILIES: tuple[str, ...] = tuple(REGISTRY)
"""The families' names, in the order of their integer codes."""

_FACTORIES: dict[str, Callable[..., Schedule]] = {
    **{name: f.factory for name, f in REGISTRY.items()},
    "linear_decay": linear_decay,  # poly of power 1: a factory, not a family
}

_WARMUP_KEYS = ("warmup_steps", "warmup_begin_lr", "warmup_mode")


def names() -> tuple[str, ...]:
    """The names ``make`` accepts."""
    return tuple(_FACTORIES)


def _takes_warmup(name: str) -> bool:
    return "warmup_steps" in inspect.signature(_FACTORIES[name]).parameters


def make(name: str, **params) -> Schedule:
    """Builds a schedule by name, for the CLI and configs.

    Besides the factory's own arguments, any schedule takes
    ``warmup_steps``, ``warmup_begin_lr`` and ``warmup_mode`` (cosine and
    poly count the warmup in ``max_steps``; the others are shifted by it, as
    :func:`warmup` does) and ``offset`` (applied last: the warmup is shifted
    too).

    Raises:
        ValueError: unknown name or parameter, or a bad value.

    Example:
        >>> make("multi_factor", base_lr=0.5, milestones=[15, 30], factor=0.5)
        multi_factor(base_lr=0.5, milestones=(15, 30), factor=0.5)
    """
    if name not in _FACTORIES:
        raise ValueError(f"unknown schedule {name!r}; known schedules: {', '.join(_FACTORIES)}")
    factory = _FACTORIES[name]
    accepted = set(inspect.signature(factory).parameters) - {"offset"}
    offset = params.pop("offset", 0)
    ramp = {k: params.pop(k) for k in _WARMUP_KEYS if k in params}
    unknown = set(params) - accepted
    if unknown:
        raise ValueError(
            f"schedule {name!r} takes {', '.join(sorted(accepted))} (and warmup_steps, "
            f"warmup_begin_lr, warmup_mode, offset); unknown: {', '.join(sorted(unknown))}"
        )
    mode = ramp.pop("warmup_mode", "linear")
    _check_warmup_mode(mode)
    steps = ramp.get("warmup_steps", 0)
    begin = ramp.get("warmup_begin_lr", 0.0)
    if _takes_warmup(name) and mode == "linear":
        params.update(ramp)  # cosine and poly ramp themselves, counted in max_steps
        steps = 0
    elif _takes_warmup(name) and steps and "max_steps" in params:
        # a constant ramp in front of cosine or poly: the decay runs over the rest
        total, steps = _horizon(name, params["max_steps"], steps)
        params["max_steps"] = total - steps
    try:
        schedule = factory(**params)
    except TypeError as err:
        raise ValueError(f"schedule {name!r}: {err}") from None
    if steps:
        schedule = warmup(schedule, steps, begin, mode)
    return _shift(schedule, offset)


def parse_spec(spec: str, **defaults) -> Schedule:
    """Builds a schedule from a spec ``NAME[:key=value,...]`` (the CLI's form,
    and what ``Schedule.spec`` writes).

    Values are numbers; ``a/b/c`` is a tuple of counts (multi_factor's
    milestones); ``warmup_mode`` is ``linear`` or ``constant``. ``defaults``
    fill the parameters the spec leaves out.

    Example:
        >>> parse_spec("cosine:max_steps=20,final_lr=0.01", base_lr=0.3)
        cosine(base_lr=0.3, max_steps=20, final_lr=0.01)
        >>> parse_spec("multi_factor:milestones=15/30,factor=0.5,base_lr=0.5")
        multi_factor(base_lr=0.5, milestones=(15, 30), factor=0.5)
    """
    if not isinstance(spec, str):
        raise ValueError(f"a schedule spec is text NAME[:key=value,...], got {spec!r}")
    name, _, rest = spec.strip().partition(":")
    params = dict(defaults)
    given = set()
    for item in filter(None, (i.strip() for i in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            raise ValueError(f"schedule parameters are key=value, got {item!r} in {spec!r}")
        key = key.strip()
        if key in given:
            raise ValueError(f"schedule parameter {key} is given twice in {spec!r}")
        given.add(key)
        params[key] = _spec_value(key, value)
    return make(name.strip(), **params)


def _spec_value(key: str, text: str):
    text = text.strip()
    if key == "warmup_mode":
        return text
    try:
        if key == "milestones" or "/" in text:
            return tuple(int(v) for v in text.split("/"))
        try:
            return int(text)
        except ValueError:
            return float(text)
    except ValueError:
        raise ValueError(f"schedule parameter {key} must be a number, got {text!r}") from None


def _spec_text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, tuple | list):
        return "/".join(str(int(v)) for v in value)
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return str(int(value))
    return repr(float(value))  # a NumPy or JAX scalar too (a traced one cannot be written)


def _join(name: str, pairs) -> str:
    return name + ":" + ",".join(f"{k}={_spec_text(v)}" for k, v in pairs)


def _spec(s: Schedule) -> str:
    if s.name in _FACTORIES:  # a factory's result: its own name and arguments
        return _join(s.name, s.args)
    args = dict(s.args)
    inner = args.get("schedule")
    if s.name == "warmup" and not _takes_warmup(inner.name):
        extra = [
            ("warmup_steps", args["warmup_steps"]),
            ("warmup_begin_lr", args["warmup_begin_lr"]),
        ]
        if args["warmup_mode"] != "linear":
            extra.append(("warmup_mode", args["warmup_mode"]))
        if args.get("offset"):  # make() shifts the whole schedule last
            extra.append(("offset", args["offset"]))
        return _join(inner.name, (*inner.args, *extra))
    # anything else (a warmup of cosine or poly, from_mxnet): the family and its fields
    f = dict(s.fields)
    k = int(f["warmup_steps"])
    pairs = []
    for key in REGISTRY[s.family].keys:
        value = f[key]
        if key == "max_steps":
            value = int(value) + k  # the factories count the warmup in max_steps
        elif key in ("every",):
            if int(value) == 1:
                continue
            value = int(value)
        elif key == "milestones":
            value = tuple(int(m) for m in value)
        pairs.append((key, value))
    if k:
        pairs += [("warmup_steps", k), ("warmup_begin_lr", f["warmup_begin_lr"])]
        if f["warmup_constant"]:
            pairs.append(("warmup_mode", "constant"))
    if f["offset"]:
        pairs.append(("offset", int(f["offset"])))
    return _join(s.family, pairs)


# --------------------------------------------------------------------------
# MXNet's conventions.


def from_mxnet(
    scheduler: str,
    *,
    base_lr: float = 0.01,
    warmup_steps: int = 0,
    warmup_begin_lr: float = 0.0,
    warmup_mode: str = "linear",
    **kwargs,
) -> Schedule:
    """The schedule that gives update k what MXNet's lr_scheduler gives at
    ``num_update = k + 1``.

    This is a translation layer, so it takes MXNet's own argument names and
    defaults (``step``, ``stop_factor_lr``, ``max_update``, ``pwr``), not
    gdjax's; the schedule it returns spells itself in gdjax's vocabulary
    (its ``spec`` names the gdjax family and fields, ``offset=1`` included).

    Args:
        scheduler: "FactorScheduler" (step, factor, stop_factor_lr),
            "MultiFactorScheduler" (step, factor), "PolyScheduler"
            (max_update, pwr, final_lr) or "CosineScheduler" (max_update,
            final_lr), with MXNet's argument names and defaults.
        base_lr, warmup_steps, warmup_begin_lr, warmup_mode: as in MXNet.

    MXNet reads ``num_update = count + 1`` and its Factor/MultiFactor
    schedulers decay when ``num_update > step``, that is when
    ``count >= step``: they map to gdjax's form with no offset. Poly and
    Cosine evaluate their formula at ``num_update``: offset 1. MXNet's warmup
    covers ``num_update < warmup_steps``, and Factor/MultiFactor count their
    steps from 0 whatever the warmup (milestones are shifted here to match).

    Example:
        >>> from_mxnet("CosineScheduler", max_update=20, base_lr=0.3, final_lr=0.01).spec
        'cosine:base_lr=0.3,max_steps=20,final_lr=0.01,offset=1'
    """
    _check_warmup_mode(warmup_mode)
    constant_mode = warmup_mode == "constant"
    if scheduler in ("FactorScheduler", "MultiFactorScheduler"):
        if scheduler == "FactorScheduler":
            step = check_count("step", kwargs.pop("step"))
            inner = factor(
                base_lr, kwargs.pop("factor", 1.0), kwargs.pop("stop_factor_lr", 1e-8), every=step
            )
        else:
            steps = [check_count("step", s) for s in kwargs.pop("step")]
            inner = multi_factor(base_lr, steps, kwargs.pop("factor", 1.0))
        if kwargs:
            raise ValueError(f"{scheduler}: unknown arguments {sorted(kwargs)}")
        if not warmup_steps:
            return inner
        return _mxnet_step_warmup(inner, warmup_steps, warmup_begin_lr, constant_mode)
    if scheduler in ("PolyScheduler", "CosineScheduler"):
        max_update = check_count("max_update", kwargs.pop("max_update"))
        final_lr = kwargs.pop("final_lr", 0.0)
        if scheduler == "PolyScheduler":
            inner = poly(base_lr, max_update - warmup_steps, kwargs.pop("pwr", 2), final_lr)
        else:
            inner = cosine(base_lr, max_update - warmup_steps, final_lr)
        if kwargs:
            raise ValueError(f"{scheduler}: unknown arguments {sorted(kwargs)}")
        fields = dict(inner.fields)
        fields.update(
            offset=1,
            warmup_steps=warmup_steps,
            warmup_begin_lr=warmup_begin_lr,
            warmup_constant=constant_mode,
        )
        return _mxnet_wrap(scheduler, inner, fields)
    raise ValueError(
        f"unknown MXNet scheduler {scheduler!r}; known: FactorScheduler, MultiFactorScheduler, "
        "PolyScheduler, CosineScheduler"
    )


def _mxnet_step_warmup(inner: Schedule, warmup_steps, warmup_begin_lr, constant_mode) -> Schedule:
    # MXNet: for num_update < W the ramp begin + (base - begin) num_update / W; then the
    # unshifted step formula. With num_update = count + 1: offset 1, warmup W, and the
    # formula read at t = count + 1 - W, so its decay points move by W - 1.
    fields = dict(inner.fields)
    if inner.family == "factor":
        raise ValueError(
            "FactorScheduler with warmup is not supported: its decay counts from 0 "
            "through the warmup, which no shifted schedule reproduces"
        )
    warmup_steps = check_count("warmup_steps", warmup_steps)
    early = [int(m) for m in fields["milestones"] if m < warmup_steps]
    if early:
        raise ValueError(
            f"MultiFactorScheduler with a step inside the warmup ({early[0]} < warmup_steps "
            f"{warmup_steps}) is not supported: MXNet ramps to base_lr and decays after the "
            "ramp, which no shifted schedule reproduces"
        )
    fields["milestones"] = tuple(float(m - warmup_steps + 1) for m in fields["milestones"])
    fields.update(
        offset=1,
        warmup_steps=warmup_steps,
        warmup_begin_lr=warmup_begin_lr,
        warmup_constant=constant_mode,
    )
    return _mxnet_wrap("MultiFactorScheduler", inner, fields)


def _mxnet_wrap(scheduler: str, inner: Schedule, fields: dict) -> Schedule:
    args = (("scheduler", scheduler), ("schedule", inner))
    return Schedule(f"from_mxnet[{scheduler}]", inner.family, args, tuple(sorted(fields.items())))


# --------------------------------------------------------------------------
# Populations.


def stack(schedules: Sequence[Schedule], dtype=None) -> ScheduleParams:
    """Stacks schedules of any families into one batched ScheduleParams
    (leading axis: schedule), for :func:`evaluate` under vmap.

    Example:
        >>> batch = stack([constant(0.1), cosine(0.5, 20, 0.01)])
        >>> jax.vmap(evaluate, in_axes=(0, None))(batch, 0).shape
        (2,)
    """
    if not schedules:
        raise ValueError("stack needs at least one schedule")
    fields = [dict(s.fields) for s in schedules]
    m = max(len(f["milestones"]) for f in fields)
    dtype = dtype or jnp.result_type(float)
    params = [_to_params(f, m, dtype) for f in fields]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *params)
