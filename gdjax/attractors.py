"""Attractors of gradient descent beyond the stability limit.

Above a minimum's stability limit ``2 / lambda_max`` gradient descent does
not converge to it: the update ``x -> x - lr grad f(x)`` is a nonlinear map
of the plane with periodic orbits, period doubling and chaos. On peaks from
(0.25, -1.6), near the global minimum: a fixed point at lr 0.065, a 2-cycle
around the global minimum at 0.068 and 0.075, period 4 at 0.09, periodic
windows between 0.11 and 0.13, bounded chaos at 0.15 and 0.2.

The map
    One step of the descent engine (:mod:`gdjax._engine`): plain gradient
    descent (``rule="fixed"``) or an optax optimizer built by
    :func:`gdjax.optimizer` (momentum, Adam, ...), whose state (a velocity,
    moments) is part of the map's state. Rules whose rate changes with the
    step count (``"time"``, schedules) or with the gradient (``"grad"``) are
    not maps with a rate as their parameter, and are refused. The learning
    rate and an optimizer's float settings are data: a new value never
    compiles a new program, and thousands of them are one vmapped program
    (what fixes a program: the function, the kind of update, the step
    counts and the shapes).

A run
    ``transient`` steps, then a ``window`` of measured steps; the last
    ``record = max(2 max_period, keep)`` points of the window are recorded.
    Orbit points are the parameters only (flattened to ``d`` coordinates; a
    1-D surface has d = 1), not the optimizer's state.

Kinds (:data:`KINDS`; int codes :data:`FIXED` ... :data:`DIVERGED`)
    * ``fixed``: period 1.
    * ``periodic``: period ``p``, 2 <= p <= ``max_period``.
    * ``chaotic``: bounded, no period found, and the largest Lyapunov
      exponent above ``chaos`` (default :data:`CHAOS` = 0.01 nats per step).
    * ``moving``: bounded, no period found, Lyapunov exponent at or below
      ``chaos``: a run still moving at the step limit (a slow transient, a
      period longer than ``max_period``) or a quasi-periodic orbit.
    * ``diverged``: the engine's policy (:func:`gdjax._engine.diverged`): a
      step whose result (parameters or optimizer state) is not finite is not
      taken and the run is diverged; so is a run that ends with a parameter
      magnitude beyond ``bound`` (default 1e10, as :func:`gdjax.descend`)
      without being at a fixed point.

Period
    The smallest ``p <= max_period`` with ``|x_t - x_{t-p}|_inf <= tol`` for
    every ``t`` of the last ``max_period`` recorded steps (so every phase of
    the cycle is checked at least once), where ``tol = rtol * scale + rtol``,
    ``scale`` the largest coordinate magnitude of the recorded points (the
    absolute floor ``rtol`` keeps orbits around 0 detectable). The default
    ``rtol`` is ``sqrt(eps)`` of the dtype (3.5e-4 in float32, 1.5e-8 in
    float64): rounding noise near an orbit of multiplier ``m`` settles at
    about ``eps / (1 - |m|)``, so every orbit with ``|m| < 1 - sqrt(eps)``
    passes, while a chaotic run, whose errors grow by ``e^lambda`` per
    step, cannot stay within it for ``max_period`` consecutive steps.

Largest Lyapunov exponent
    A tangent vector (over the whole state: parameters and the optimizer's
    float state) is pushed through the one-step map by ``jax.jvp`` and
    renormalised every step, from the first step (so it has turned to the
    most expanding direction by the end of the transient); the exponent is
    the mean log growth over the ``window`` measured steps. For a quadratic
    of curvature ``a`` it is ``ln|1 - lr a|`` (the largest over the Hessian's
    eigenvalues in n-D). Where some step maps the tangent to exactly 0 (lr =
    1/a: the map's derivative vanishes, a superstable point) the exponent is
    ``-inf``, reported as such (the tangent is kept, not renormalised, at
    that step). NaN for a diverged run. A fixed point or cycle that the
    arithmetic keeps exactly (a start on an unstable fixed point) is
    reported as fixed or periodic with its positive exponent.

Matching and canonical form
    An orbit is identified as Attractors.jl matches attractors: by the
    minimum nearest its centroid (the surface's listed minima, or minima
    passed in) and its period. Its cycle's points are stored in a canonical
    order: the cycle starts at its lexicographically smallest point
    (coordinates compared within ``tol``), so two starts on the same orbit
    give the same record. :func:`distinct` turns per-start results into a
    table of distinct attractors with a label per start.

Period doublings and Feigenbaum's constant
    :func:`period_doublings` brackets the rates where the period reaches 2,
    4, 8, ... on a scan, then bisects each bracket (``sections`` points per
    round, one vmapped program) to ``tol`` on the rate. :func:`feigenbaum`
    gives the ratios of successive intervals, which tend to delta =
    4.6692... What limits them:

    1. Critical slowing down. At the k-th doubling the old cycle (period
       ``q = 2^(k-1)``) has multiplier -1, so just below it the run
       approaches the cycle like ``|m|^(steps / q)``: after ``T`` steps it
       still flips (and reads as period 2q) until ``1 - |m| ~ q
       ln(amplitude / tol) / T``. Each doubling is located low. With a
       transient that grows like ``q`` (``transient * 2^(k-1)``) the error is
       about the same share of every interval (on the double well with
       ``transient=20000``: r_1 = 0.99967, 3.3e-4 low; r_2 to r_8 low by 2.8e-4
       to 1.4e-4 of ``r_k - r_(k-1)``), and cancels to first order in the
       ratios. With one transient for all (100000 steps) the share grew like
       ``2^k`` and the 6th ratio fell to 4.653.
    2. The period tolerance: a newborn cycle is seen once its two halves
       differ by more than ``tol``, a rate error of order ``tol^2``
       (negligible); a smaller ``tol`` lengthens the slowing down only
       logarithmically.
    3. Precision. float32 resolves the rates to 6e-8 relative (brackets of
       1.2e-7 to 2.4e-7 at rate 1.3) while the 6th to 8th intervals of the
       double well are 5.1e-4 to 2.4e-5 wide, and its orbits to about 3e-4
       (rounding noise near a multiplier of -1 grows like ``eps / (1 -
       |m|)``): the 4th and later ratios are off by up to 0.08.

    Measured on the double well from 1.2 (``max_doublings=8``): float64
    ratios 4.5434, 4.6414, 4.6635, 4.6683, 4.6693, 4.6694 (the exact
    cascade's, from Newton's method on the cycles' multipliers: 4.5429,
    4.6412, 4.6632, 4.6679, 4.6689, 4.6691), 6 s on 2 CPU cores; float32
    4.540, 4.634, 4.660, 4.594, 4.648, 4.592. The rates of superstable
    cycles (through a critical point of the map) converge at the same ratio
    and can be solved for by Newton's method with no transient at all; this
    module measures the doubling rates themselves, by bisection.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from gdjax import _chunks, _engine, _validate
from gdjax import surfaces as _surfaces
from gdjax._engine import OptaxFactory
from gdjax.descent import DEFAULT_BOUND
from gdjax.maps.critical import stability_limit
from gdjax.surfaces import Surface

__all__ = [
    "CHAOS",
    "CHAOTIC",
    "DIVERGED",
    "FIXED",
    "KINDS",
    "MAX_PERIOD",
    "MOVING",
    "PERIODIC",
    "Attractors",
    "Bifurcation",
    "Doublings",
    "Orbits",
    "bifurcation",
    "default_tol",
    "distinct",
    "feigenbaum",
    "orbits",
    "period_doublings",
]

FIXED = 0
"""Kind code: a fixed point (period 1)."""
PERIODIC = 1
"""Kind code: a cycle of period 2 .. max_period."""
MOVING = 2
"""Kind code: bounded, no period found, not chaotic (still moving, or quasi-periodic)."""
CHAOTIC = 3
"""Kind code: bounded, no period found, Lyapunov exponent above the threshold."""
DIVERGED = 4
"""Kind code: non-finite, or beyond the bound (the engine's policy)."""
KINDS: tuple[str, ...] = ("fixed", "periodic", "moving", "chaotic", "diverged")
"""The kinds' names, indexed by their codes."""

MAX_PERIOD = 64
"""The longest period looked for, by default."""
TRANSIENT = 2000
WINDOW = 1024
KEEP = 64
CHAOS = 0.01
"""A bounded aperiodic run is chaotic when its largest Lyapunov exponent is
above this (nats per step); a quasi-periodic or slowly converging run
measures 0 to within about 1/window."""


def default_tol(dtype) -> float:
    """The default period tolerance ``rtol`` of a dtype: ``sqrt(eps)`` (3.5e-4
    in float32, 1.5e-8 in float64). See the module docstring."""
    return float(math.sqrt(np.finfo(np.dtype(dtype)).eps))


# --------------------------------------------------------------------------
# Results.


class Orbits(NamedTuple):
    """Where gradient descent goes from each start at each rate.

    Axes of every per-run field: the starts' batch axis (none for one
    start), then the hyperparameters' batch (the rates' axis). ``d`` is the
    number of coordinates of a point.

    Attributes:
        lr: the rate of each run (broadcast to the hyperparameters' batch).
        kind: :data:`FIXED`, :data:`PERIODIC`, :data:`MOVING`,
            :data:`CHAOTIC` or :data:`DIVERGED` (int32).
        period: 1 for a fixed point, p for a cycle, 0 otherwise.
        lyapunov: the largest Lyapunov exponent (nats per step; -inf at a
            superstable point, NaN when diverged).
        centroid: (..., d) the mean of the cycle's points (of the recorded
            points for moving and chaotic runs); NaN when diverged.
        minimum: index of the minimum nearest the centroid (-1 when diverged
            or no minima are known).
        distance: the distance from the centroid to that minimum (NaN when
            there is none): a run that settled far from every minimum (on a
            plateau where the gradient vanishes) is matched to the nearest
            one all the same; this says how far it is.
        cycle: (..., max_period, d) the cycle's points in canonical order
            (from its lexicographically smallest point), NaN past the
            period; all NaN for moving, chaotic and diverged runs.
        tail: (..., keep, d) the last ``keep`` points of the run, in order.
        rtol: the period tolerance used (see the module docstring).
        chaos: the Lyapunov threshold used.
    """

    lr: np.ndarray
    kind: np.ndarray
    period: np.ndarray
    lyapunov: np.ndarray
    centroid: np.ndarray
    minimum: np.ndarray
    distance: np.ndarray
    cycle: np.ndarray
    tail: np.ndarray
    rtol: float
    chaos: float


@dataclasses.dataclass(frozen=True)
class Bifurcation:
    """A bifurcation diagram: one start, many rates (:func:`bifurcation`).

    Attributes:
        lrs: (R,) the rates.
        kind, period, lyapunov, minimum, distance: (R,) as in :class:`Orbits`.
        points: (R, keep, d) the last ``keep`` points at each rate.
        cycle: (R, max_period, d) the canonical cycle (NaN past the period).
        centroid: (R, d).
        start: (d,) the start.
        nearest: index of the minimum nearest the start (-1 if none known).
        stability_limit: 2 / lambda_max of the Hessian at that minimum (plain
            gradient descent's limit; NaN if no minimum is known, inf if its
            Hessian has no positive eigenvalue).
        rtol, chaos: the tolerances used.
    """

    lrs: np.ndarray
    kind: np.ndarray
    period: np.ndarray
    lyapunov: np.ndarray
    minimum: np.ndarray
    distance: np.ndarray
    points: np.ndarray
    cycle: np.ndarray
    centroid: np.ndarray
    start: np.ndarray
    nearest: int
    stability_limit: float
    rtol: float
    chaos: float


class Doublings(NamedTuple):
    """Where the period doubles (:func:`period_doublings`).

    Attributes:
        period: (K,) the period reached at each doubling: 2, 4, 8, ...
        lr: (K,) the doubling rates (the middle of each final bracket).
        lo: (K,) the bracket's lower end: the period is below ``period`` there.
        hi: (K,) its upper end: the period is ``period`` (or more) there.
        tol: the tolerance asked for on the rate (``hi - lo <= tol`` unless
            the dtype cannot resolve it: then ``hi`` and ``lo`` are adjacent
            representable rates).
    """

    period: np.ndarray
    lr: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    tol: float


@dataclasses.dataclass(frozen=True)
class Attractors:
    """Distinct attractors among per-run results (:func:`distinct`).

    Attributes:
        kind, period, minimum: (A,) per attractor, as in :class:`Orbits`.
        centroid: (A, d) the mean centroid of its runs.
        points: (A, max_period, d) its canonical cycle (of its first run;
            NaN past the period, all NaN for moving, chaotic and diverged).
        count: (A,) how many runs reach it.
        labels: the attractor index of every run (the runs' batch shape).
    """

    kind: np.ndarray
    period: np.ndarray
    minimum: np.ndarray
    centroid: np.ndarray
    points: np.ndarray
    count: np.ndarray
    labels: np.ndarray

    def describe(self, i: int) -> str:
        """Attractor ``i`` in words ("period 2 around minimum 0")."""
        kind, p, m = KINDS[int(self.kind[i])], int(self.period[i]), int(self.minimum[i])
        what = {"fixed": "fixed point", "periodic": f"period {p}"}.get(kind, kind)
        return what if m < 0 else f"{what} around minimum {m}"


# --------------------------------------------------------------------------
# The compiled program: one start, one set of hyperparameters; vmapped.


class _Plan(NamedTuple):
    """What fixes a program besides the function and the kind of update."""

    window: int
    record: int
    keep: int
    max_period: int
    lyapunov: bool


class _One(NamedTuple):
    kind: Array
    period: Array
    lyapunov: Array
    centroid: Array
    minimum: Array
    distance: Array
    cycle: Array
    tail: Array


def _lexmin(cycle: Array, valid: Array, tol: Array) -> Array:
    """Index of the lexicographically smallest valid row of ``cycle``
    (coordinates compared within ``tol``; the first such row)."""

    def coord(k, cand):
        col = cycle[:, k]
        low = jnp.min(jnp.where(cand, col, jnp.inf))
        return cand & (col <= low + tol)

    cand = jax.lax.fori_loop(0, cycle.shape[1], coord, valid)
    return jnp.argmax(cand)


def _analyse(fn, method, plan: _Plan, x0, h, tols, minima, transient) -> _One:
    dtype = x0.dtype
    rate = _engine.rates(method, h, 0, 1, dtype)[0]
    grad = jax.grad(fn)

    def step(state):
        params, opt = state
        new, opt, _ = _engine.update(method, h, params, grad(params), opt, rate)
        return new, opt

    state0 = (x0, _engine.init_opt(method, h, x0, rate))
    leaves, treedef = jax.tree.flatten(state0)
    inexact = [bool(jnp.issubdtype(leaf.dtype, jnp.inexact)) for leaf in leaves]
    n = sum(leaf.size for leaf, f in zip(leaves, inexact, strict=True) if f)

    def as_tangent(v):
        out, k = [], 0
        for leaf, f in zip(leaves, inexact, strict=True):
            if f:
                out.append(v[k : k + leaf.size].reshape(leaf.shape).astype(leaf.dtype))
                k += leaf.size
            else:  # integer state (optax's step count) has no tangent
                out.append(np.zeros(leaf.shape, jax.dtypes.float0))
        return treedef.unflatten(out)

    def floats(tree):
        return [x for x, f in zip(jax.tree.leaves(tree), inexact, strict=True) if f]

    def body(carry, _, measure: bool, record: bool):
        state, v, stopped, logsum = carry
        if plan.lyapunov:
            new, tan = jax.jvp(step, (state,), (as_tangent(v),))
            w = jnp.concatenate([t.reshape(-1).astype(dtype) for t in floats(tan)])
            r = jnp.sqrt(jnp.sum(w * w))
        else:
            new = step(state)
        stop = stopped | ~_engine.all_finite(*floats(new))
        state = jax.tree.map(lambda a, b: jnp.where(stop, b, a), new, state)
        if plan.lyapunov:
            turn = (r > 0) & jnp.isfinite(r) & ~stop
            v = jnp.where(turn, w / jnp.where(turn, r, 1.0), v)
            if measure:  # log 0 = -inf: a superstable step
                logsum = logsum + jnp.where(stop, 0.0, jnp.log(r))
        out = state[0].reshape(-1) if record else None
        return (state, v, stop, logsum), out

    v0 = jax.random.normal(jax.random.key(0), (n,), dtype)
    carry = (state0, v0 / jnp.sqrt(jnp.sum(v0 * v0)), jnp.array(False), jnp.zeros((), dtype))
    # the transient's length is data (a loop with a traced count)
    carry = jax.lax.fori_loop(
        0, transient, lambda _, c: body(c, None, measure=False, record=False)[0], carry
    )
    if plan.window > plan.record:
        scan_body = functools.partial(body, measure=True, record=False)
        carry, _ = jax.lax.scan(scan_body, carry, None, length=plan.window - plan.record)
    scan_body = functools.partial(body, measure=True, record=True)
    carry, xs = jax.lax.scan(scan_body, carry, None, length=plan.record)
    (params, _), _, stopped, logsum = carry
    lyap = logsum / plan.window if plan.lyapunov else jnp.full((), jnp.nan, dtype)

    # the period: the smallest lag p with |x_t - x_{t-p}| <= tol over the
    # last max_period recorded steps
    rtol, chaos = tols[0], tols[1]
    P, R = plan.max_period, plan.record
    scale = jnp.max(jnp.where(jnp.isfinite(xs), jnp.abs(xs), 0.0))
    tol = rtol * scale + rtol
    last = xs[R - P :]

    def lag_dev(p):
        prev = jax.lax.dynamic_slice_in_dim(xs, R - P - p, P)
        return jnp.max(jnp.abs(last - prev))

    dev = jax.lax.map(lag_dev, jnp.arange(1, P + 1))
    ok = dev <= tol
    period = jnp.where(jnp.any(ok), jnp.argmax(ok) + 1, 0).astype(jnp.int32)

    div = _engine.diverged(stopped, _engine.beyond(h, params), period == 1)
    period = jnp.where(div, 0, period)
    kind = jnp.select(
        [div, period == 1, period > 1, lyap > chaos],
        [jnp.int32(DIVERGED), jnp.int32(FIXED), jnp.int32(PERIODIC), jnp.int32(CHAOTIC)],
        jnp.int32(MOVING),
    )

    # the cycle, from its lexicographically smallest point
    j = jnp.arange(P, dtype=jnp.int32)
    p = jnp.maximum(period, 1)
    valid = j < period
    cyc = xs[R - p + jnp.minimum(j, p - 1)]
    first = _lexmin(cyc, valid, tol).astype(jnp.int32)
    cyc = cyc[(first + j) % p]
    nan = jnp.full((), jnp.nan, dtype)
    centroid = jnp.where(
        period >= 1,
        jnp.sum(jnp.where(valid[:, None], cyc, 0.0), axis=0) / p.astype(dtype),
        jnp.mean(xs, axis=0),
    )
    centroid = jnp.where(div, nan, centroid)
    cyc = jnp.where(valid[:, None], cyc, nan)
    if minima.shape[0]:
        d2 = jnp.sum(jnp.square(minima - centroid[None, :]), axis=1)
        nearest = jnp.where(div, -1, jnp.argmin(d2)).astype(jnp.int32)
        distance = jnp.sqrt(jnp.min(d2))
    else:
        nearest, distance = jnp.int32(-1), nan
    lyap = jnp.where(div, nan, lyap)
    return _One(kind, period, lyap, centroid, nearest, distance, cyc, xs[R - plan.keep :])


@functools.partial(jax.jit, static_argnames=("fn", "method", "plan"))
def _program(fn, method, plan, x0s, h, tols, minima, transient) -> _One:
    """Axes of the result: (start, hyperparameters)."""
    one = functools.partial(_analyse, fn, method, plan)
    over_h = jax.vmap(one, in_axes=(None, 0, None, None, None))
    return jax.vmap(over_h, in_axes=(0, None, None, None, None))(x0s, h, tols, minima, transient)


# --------------------------------------------------------------------------
# Arguments.


def _surface(surface) -> tuple[Callable, Surface | None]:
    if isinstance(surface, Surface | str):
        s = _surfaces.get(surface)
        return s.fn, s
    if not callable(surface):
        raise ValueError(
            f"surface must be a surface's name, a Surface or a callable, got {surface!r}"
        )
    return surface, None


def _starts(starts, surface: Surface | None, *, one: bool) -> tuple[np.ndarray, bool]:
    """The starts as (S, *point) float64, and whether one start was given."""
    try:
        x = np.asarray(starts, np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"starts must be numbers, got {starts!r}") from None
    if surface is not None:
        point = surface.shape
        if x.shape == point:
            single = True
        elif not one and x.ndim == len(point) + 1 and x.shape[1:] == point and x.shape[0] >= 1:
            single = False
        else:
            what = "a start" if one else "a start or a batch of starts (S, *point)"
            raise ValueError(
                f"surface {surface.name!r} takes points of shape {point}: {what} of that "
                f"shape, got shape {x.shape}"
            )
    else:  # a function: 0-D and 1-D starts are one point, more a batch
        single = one or x.ndim <= 1
    _validate.check_finite_start(x)
    return (x[None] if single else x), single


def _rates(lrs, name: str = "lrs") -> np.ndarray:
    try:
        arr = np.asarray(lrs, np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers, got {lrs!r}") from None
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    _validate.check_positive(name, arr)
    return arr


def _minima(minima, surface: Surface | None, d: int) -> np.ndarray:
    if minima is None:
        if surface is None:
            return np.zeros((0, d), np.float64)
        minima = surface.minima
    locs = [m.location if isinstance(m, _surfaces.Minimum) else m for m in minima]
    arr = np.asarray(locs, np.float64).reshape(len(locs), -1) if locs else np.zeros((0, d))
    if arr.shape[1] != d or not np.all(np.isfinite(arr)):
        raise ValueError(f"minima must be finite points of {d} coordinates, got shape {arr.shape}")
    return arr


def _check_rule(rule) -> None:
    if not (isinstance(rule, OptaxFactory) or (isinstance(rule, str) and rule == "fixed")):
        raise ValueError(
            "attractors need a map with the rate as its parameter: rule='fixed' (plain "
            "gradient descent) or gdjax.optimizer(...); rules whose rate changes with the step "
            f"or the gradient are not such maps, got {rule!r}"
        )


def _plan(window, keep, max_period, lyapunov=True) -> _Plan:
    max_period = _validate.check_count("max_period", max_period)
    keep = _validate.check_count("keep", keep)
    record = max(2 * max_period, keep)
    window = _validate.check_count("window", window)
    if window < record:
        raise ValueError(
            f"window must be at least max(2 max_period, keep) = {record} steps (a period p is "
            f"checked against the p steps before it), got {window}"
        )
    return _Plan(window, record, keep, max_period, lyapunov)


def _transient(transient) -> int:
    transient = _validate.check_count("transient", transient, minimum=0)
    if transient >= 2**31:
        raise ValueError(f"transient must be below 2^31 steps, got {transient}")
    return transient


def _tols(tol, chaos, dtype) -> np.ndarray:
    rtol = default_tol(dtype) if tol is None else tol
    _validate.check_positive("tol", rtol)
    _validate.check_number("chaos", chaos, lambda a: a == a, "a finite number")
    return np.asarray([float(rtol), float(chaos)], dtype)


def _run(
    fn, method, plan, x0s, hflat, tols, minima, dtype, chunk, transient
) -> dict[str, np.ndarray]:
    """The program over (start, hyperparameter set), chunked over the sets;
    NumPy results with axes (start, set)."""
    total = jax.tree.leaves(hflat)[0].shape[0]
    chunk = max(1, min(total, chunk))
    x0s_j = jnp.asarray(x0s, dtype)
    tols_j, minima_j = jnp.asarray(tols, dtype), jnp.asarray(minima, dtype)
    steps = jnp.asarray(transient, jnp.int32)
    out: dict[str, np.ndarray] = {}

    def call(parts):
        h = jax.tree.map(jnp.asarray, parts)
        return _program(fn, method, plan, x0s_j, h, tols_j, minima_j, steps)

    def collect(idx, m, res):
        for name, a in res._asdict().items():
            a = np.asarray(a)
            if name not in out:
                out[name] = np.empty((a.shape[0], total) + a.shape[2:], a.dtype)
            out[name][:, idx] = a[:, :m]

    _chunks.run_chunks(call, jax.tree.map(np.asarray, hflat), chunk, collect)
    return out


def _hyper(rule, lrs, dtype, bound):
    _check_rule(rule)
    _validate.check_positive("bound", bound)
    _engine.check_lr(lrs, dtype)
    method, h = _engine.resolve(rule, jnp.asarray(lrs, dtype), steps=1, dtype=dtype, bound=bound)
    batch = _engine.batch_shape(h)
    return method, _engine.flatten(h, batch), batch


# --------------------------------------------------------------------------
# Public functions.


def orbits(
    surface: str | Surface | Callable[[Array], Array],
    starts: ArrayLike,
    lrs: ArrayLike,
    *,
    rule: str | OptaxFactory = "fixed",
    transient: int = TRANSIENT,
    window: int = WINDOW,
    keep: int = KEEP,
    max_period: int = MAX_PERIOD,
    tol: float | None = None,
    chaos: float = CHAOS,
    bound: float = DEFAULT_BOUND,
    minima: Sequence | ArrayLike | None = None,
    dtype: Any = None,
    chunk_size: int = 4096,
) -> Orbits:
    """Where gradient descent goes from every start at every rate, in one
    compiled program vmapped over starts and rates (chunked over the rates).

    Args:
        surface: a surface's name, a :class:`gdjax.surfaces.Surface`, or a
            function of one point (then ``minima`` says which minima to match).
        starts: one start (the surface's point shape), or a batch (S, *point).
        lrs: one rate or an array of rates (> 0, finite). With
            ``gdjax.optimizer(...)`` its float settings may be arrays too:
            the batch is their broadcast shape with the rates'.
        rule: ``"fixed"`` (plain gradient descent) or ``gdjax.optimizer(...)``.
        transient: steps before anything is measured (>= 0).
        window: steps measured after the transient (Lyapunov exponent); at
            least ``max(2 max_period, keep)``, the steps recorded.
        keep: points of the run's end returned (``tail``).
        max_period: the longest period looked for (>= 1).
        tol: the period tolerance ``rtol`` (default :func:`default_tol`).
        chaos: the Lyapunov threshold between chaotic and moving.
        bound: a run ending beyond this magnitude (not at a fixed point) diverged.
        minima: points (or :class:`gdjax.surfaces.Minimum` records) to match
            orbits to; default the surface's listed minima.
        dtype: float32 or float64 (default: JAX's default float; float64
            runs under ``jax.enable_x64``).
        chunk_size: rate sets per compiled call.

    Returns:
        :class:`Orbits`, axes (start, *rates' batch), without the start axis
        for one start.
    """
    dt = _validate.check_dtype(dtype)
    fn, surf = _surface(surface)
    plan = _plan(window, keep, max_period)
    transient = _transient(transient)
    x0s, single = _starts(starts, surf, one=False)
    lrs = _rates(lrs)
    tols = _tols(tol, chaos, dt)
    chunk = _validate.check_count("chunk_size", chunk_size)
    mins = _minima(minima, surf, int(np.prod(x0s.shape[1:], dtype=np.int64)))
    with jax.enable_x64(dt == np.float64):
        method, hflat, batch = _hyper(rule, lrs, dt, bound)
        budget = max(1, chunk // x0s.shape[0])
        res = _run(fn, method, plan, x0s, hflat, tols, mins, dt, budget, transient)
        lr = np.asarray(jnp.broadcast_to(jnp.asarray(lrs, dt), batch))

    def shaped(a):
        a = a.reshape((a.shape[0],) + batch + a.shape[2:])
        return a[0] if single else a

    return Orbits(
        lr=lr,
        **{name: shaped(a) for name, a in res.items()},
        rtol=float(tols[0]),
        chaos=float(tols[1]),
    )


def _hessian_limit(fn, location: np.ndarray, shape, dtype) -> float:
    x = jnp.asarray(location.reshape(shape), dtype)
    hess = np.asarray(jax.hessian(fn)(x), np.float64).reshape(location.size, location.size)
    return stability_limit(np.linalg.eigvalsh(hess))


def bifurcation(
    surface: str | Surface | Callable[[Array], Array],
    start: ArrayLike,
    lrs: ArrayLike,
    *,
    transient: int = TRANSIENT,
    keep: int = KEEP,
    max_period: int = MAX_PERIOD,
    window: int = WINDOW,
    rule: str | OptaxFactory = "fixed",
    tol: float | None = None,
    chaos: float = CHAOS,
    bound: float = DEFAULT_BOUND,
    minima: Sequence | ArrayLike | None = None,
    dtype: Any = None,
    chunk_size: int = 4096,
) -> Bifurcation:
    """A bifurcation diagram: the attractor reached from one ``start`` at
    every rate of ``lrs`` (1-D, any order), one compiled program vmapped over
    the rates (tens of thousands in chunks of ``chunk_size``).

    Arguments as in :func:`orbits`. The stability limit is plain gradient
    descent's, ``2 / lambda_max`` of the Hessian at the minimum nearest the
    start (:func:`gdjax.continuation.stability_limit`).

    Cost, measured on 2 CPU cores: 10,000 rates on peaks with the defaults
    (2000 + 1024 steps, Lyapunov exponents, periods up to 64) take 0.9 s in
    float32 and 1.6 s in float64, after a first-call compilation of 3-4 s;
    with ``transient=20000`` (no new compilation: the transient is data)
    about 4 s and 6 s.

    Returns:
        A :class:`Bifurcation`.
    """
    lrs = _rates(lrs)
    if lrs.ndim != 1:
        raise ValueError(f"lrs must be a 1-D array of rates, got shape {lrs.shape}")
    dt = _validate.check_dtype(dtype)
    fn, surf = _surface(surface)
    x0, _ = _starts(start, surf, one=True)
    o = orbits(
        surface,
        x0[0],
        lrs,
        rule=rule,
        transient=transient,
        window=window,
        keep=keep,
        max_period=max_period,
        tol=tol,
        chaos=chaos,
        bound=bound,
        minima=minima,
        dtype=dt,
        chunk_size=chunk_size,
    )
    flat = x0[0].reshape(-1)
    mins = _minima(minima, surf, flat.size)
    nearest, limit = -1, math.nan
    if len(mins):
        nearest = int(np.argmin(np.sum((mins - flat[None, :]) ** 2, axis=1)))
        with jax.enable_x64(dt == np.float64):
            limit = _hessian_limit(fn, mins[nearest], x0.shape[1:], dt)
    return Bifurcation(
        lrs=o.lr,
        kind=o.kind,
        period=o.period,
        lyapunov=o.lyapunov,
        minimum=o.minimum,
        distance=o.distance,
        points=o.tail,
        cycle=o.cycle,
        centroid=o.centroid,
        start=flat,
        nearest=nearest,
        stability_limit=float(limit),
        rtol=o.rtol,
        chaos=o.chaos,
    )


def _levels(kind: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Where a run is on the cascade: log2 of a power-of-two period; inf past
    it (chaotic, diverged, or a period off the cascade, such as 3); NaN where
    unknown (moving: not settled within the transient)."""
    p = np.asarray(period, np.int64)
    power = (p >= 1) & ((p & (p - 1)) == 0)
    level = np.where(power, np.log2(np.maximum(p, 1)), np.inf)
    return np.where(np.asarray(kind) == MOVING, np.nan, level)


def _crossing(level: np.ndarray, k: float) -> tuple[int, int] | None:
    """(i, j): the first known point at or above level k, and the last known
    point below it before it; None if there is none (or nothing below)."""
    above = np.flatnonzero(level >= k)  # NaN compares False
    if not above.size:
        return None
    j = int(above[0])
    below = np.flatnonzero(level[:j] < k)
    return (int(below[-1]), j) if below.size else None


def period_doublings(
    surface: str | Surface | Callable[[Array], Array],
    start: ArrayLike,
    lr_min: float,
    lr_max: float,
    *,
    tol: float | None = None,
    max_doublings: int = 8,
    scan: int = 512,
    sections: int = 16,
    transient: int = 20_000,
    rule: str | OptaxFactory = "fixed",
    period_tol: float | None = None,
    bound: float = DEFAULT_BOUND,
    dtype: Any = None,
) -> Doublings:
    """The rates in ``(lr_min, lr_max]`` where the period from ``start``
    first reaches 2, 4, 8, ..., ``2^max_doublings``.

    A scan of ``scan`` evenly spaced rates brackets each doubling: the first
    rate whose run is at period ``2^k`` or past it (a longer period off the
    cascade, chaos, divergence) and the last rate below ``2^k`` before it;
    runs that are still moving (not settled within the transient: near a
    doubling, critical slowing down) are unknown and skipped. Then each
    bracket is cut into ``sections`` parts per round (one vmapped program
    over the ``sections - 1`` rates inside), keeping the part where the
    period first reaches ``2^k``, until it is at most ``tol`` wide, or no
    point inside it is settled (the bracket is then wider: its width is the
    resolution the transient allows).

    Critical slowing down: just below the k-th doubling the old cycle, of
    period ``q = 2^(k-1)``, is approached like ``|m|^(steps / q)`` with its
    multiplier ``m`` near -1, so the steps a run needs grow with ``q``. The
    runs that bracket the k-th doubling take ``transient * 2^(k-1)`` steps
    (the scan's take ``transient``; the scan's bracket is re-read with
    them first, moving up the scan's rates until one still reads ``2^k``: a
    rate the shorter scan saw at ``2^k`` may only have been flipping, and a
    bisection of a bracket wholly below the doubling would end at its upper
    end, a scan rate). Each doubling is then located low by
    about the same share of its own interval, a bias that cancels to first
    order in :func:`feigenbaum`'s ratios. Each run then measures ``max(2^(k+1),
    512)`` steps (its Lyapunov exponent tells chaos from runs still moving).
    See the module docstring for what else limits the accuracy.

    Args:
        surface, start, rule, bound, dtype: as in :func:`bifurcation`.
        lr_min, lr_max: the range, 0 < lr_min < lr_max.
        tol: the width of the final brackets on the rate (default 1e-9 in
            float64, 16 eps in float32, times ``lr_max``).
        max_doublings: the last period looked for is ``2^max_doublings``
            (at most 16).
        scan: rates of the first scan (>= 2).
        sections: parts per bracket per round (>= 2).
        transient: steps before the period is read, for the first doubling
            (doubled for each next one).
        period_tol: the period tolerance (default :func:`default_tol`).

    Returns:
        :class:`Doublings` for the doublings found (those below ``lr_min``
        or not bracketed by the scan are left out, and so are crossings
        whose upper end does not read period ``2^k``: a jump into
        divergence, chaos or another period, such as a quadratic's
        divergence at ``2 / lambda``, is not a doubling).
    """
    dt = _validate.check_dtype(dtype)
    fn, surf = _surface(surface)
    x0, _ = _starts(start, surf, one=True)
    lo_hi = _rates([lr_min, lr_max], "lr_min and lr_max")
    lr_min, lr_max = float(lo_hi[0]), float(lo_hi[1])
    if not lr_min < lr_max:
        raise ValueError(f"lr_min must be below lr_max, got {lr_min:g} >= {lr_max:g}")
    if tol is None:
        tol = (1e-9 if dt == np.float64 else 16 * float(np.finfo(dt).eps)) * lr_max
    _validate.check_positive("tol", tol)
    max_doublings = _validate.check_count("max_doublings", max_doublings)
    if max_doublings > 16:
        raise ValueError(f"max_doublings must be at most 16 (period 65536), got {max_doublings}")
    scan = _validate.check_count("scan", scan, minimum=2)
    sections = _validate.check_count("sections", sections, minimum=2)
    transient = _transient(transient)
    _transient(transient * 2 ** (max_doublings - 1))
    max_period = 2**max_doublings
    plan = _plan(max(2 * max_period, 512), 1, max_period)
    tols = _tols(period_tol, CHAOS, dt)
    no_minima = np.zeros((0, x0[0].size), np.float64)

    with jax.enable_x64(dt == np.float64):

        def levels(rates: np.ndarray, steps: int) -> np.ndarray:
            method, hflat, _ = _hyper(rule, rates, dt, bound)
            res = _run(fn, method, plan, x0, hflat, tols, no_minima, dt, rates.size, steps)
            return _levels(res["kind"][0], res["period"][0])

        rates = np.linspace(lr_min, lr_max, scan).astype(dt)
        lv = levels(rates, transient)
        ks, lo, hi, top = [], [], [], []  # top: the level read at hi
        for k in range(1, max_doublings + 1):
            found = _crossing(lv, k)
            if found is not None:
                ks.append(k)
                lo.append(rates[found[0]])
                hi.append(rates[found[1]])
                top.append(lv[found[1]])

        def confirm(k: int, lo_k, hi_k, steps: int):
            """The scan read its bracket with ``transient`` steps, where the
            k-th doubling's runs take ``steps``: with more steps a run just
            below the doubling, which still flipped, settles and reads below
            2^k. Re-reads the bracket's upper end and the scan's rates above
            it with ``steps`` (``sections - 1`` at a time: the refinement's
            program) and returns the first that reads 2^k or past it, with
            the last one below it (or ``lo_k``) and its level; None if none
            does."""
            j = int(np.searchsorted(rates, hi_k))
            while j < rates.size:
                cand = rates[j : j + sections - 1]
                padded = np.concatenate([cand, np.repeat(cand[-1:], sections - 1 - cand.size)])
                lev = levels(padded, steps)[: cand.size]
                found = _crossing(np.concatenate([[-np.inf], lev]), k)
                if found is not None:
                    a, b = found
                    return (lo_k if a == 0 else cand[a - 1]), cand[b - 1], lev[b - 1]
                below = np.flatnonzero(lev < k)
                if below.size:
                    lo_k = cand[below[-1]]
                j += cand.size
            return None

        frac = np.arange(1, sections, dtype=np.float64) / sections
        for i, k in enumerate(ks):
            steps = transient * 2 ** (k - 1)
            if steps != transient:
                confirmed = confirm(k, lo[i], hi[i], steps)
                if confirmed is None:
                    lo[i] = hi[i] = None  # no doubling with this doubling's transient
                    continue
                lo[i], hi[i], top[i] = confirmed
            while float(hi[i]) - float(lo[i]) > tol:
                inside = (float(lo[i]) + (float(hi[i]) - float(lo[i])) * frac).astype(dt)
                grid = np.concatenate([[lo[i]], inside, [hi[i]]]).astype(dt)
                lev = levels(inside, steps)
                a, b = _crossing(np.concatenate([[-np.inf], lev, [np.inf]]), k)
                if grid[a] == lo[i] and grid[b] == hi[i]:
                    break  # nothing settled inside, or no rate between the ends
                if b < grid.size - 1:
                    top[i] = lev[b - 1]
                lo[i], hi[i] = grid[a], grid[b]
        # a doubling ends at period 2^k: a jump from below it into divergence,
        # chaos or another period (a linear map's divergence at 2 / lambda) is not one
        kept = [i for i in range(len(ks)) if lo[i] is not None and top[i] == ks[i]]
        ks, lo, hi = [ks[i] for i in kept], [lo[i] for i in kept], [hi[i] for i in kept]
    periods = 2 ** np.asarray(ks, np.int64)
    lo64, hi64 = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
    return Doublings(periods, (lo64 + hi64) / 2, lo64, hi64, float(tol))


def feigenbaum(doublings: Doublings | ArrayLike) -> np.ndarray:
    """The ratios ``(r_k - r_{k-1}) / (r_{k+1} - r_k)`` of successive
    doubling intervals (K rates give K - 2 ratios), which tend to
    Feigenbaum's delta = 4.6692... along a period-doubling cascade."""
    r = np.asarray(doublings.lr if isinstance(doublings, Doublings) else doublings, np.float64)
    if r.ndim != 1:
        raise ValueError(f"doubling rates must be 1-D, got shape {r.shape}")
    if r.size < 3:
        return np.zeros((0,), np.float64)
    gaps = np.diff(r)
    return gaps[:-1] / gaps[1:]


def _set_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Hausdorff distance (max-norm) between two point sets (rows)."""
    d = np.max(np.abs(a[:, None, :] - b[None, :, :]), axis=2)
    return float(max(d.min(axis=1).max(), d.min(axis=0).max()))


def _match_tol(tol, a: np.ndarray, b: np.ndarray) -> float:
    if tol is not None:
        return float(tol)
    return 1e-3 * (1.0 + max(float(np.max(np.abs(a))), float(np.max(np.abs(b)))))


def distinct(result: Orbits | Bifurcation, *, tol: float | None = None) -> Attractors:
    """The distinct attractors among per-run results, with a label per run.

    Runs are grouped by (kind, period, minimum) as Attractors.jl matches
    attractors. Within a group, fixed points and cycles are split when their
    point sets differ (Hausdorff distance, max-norm) by more than ``tol``
    (default ``1e-3 (1 + scale)``, scale the largest coordinate magnitude of
    the two sets: runs on one orbit agree to the period tolerance, or to
    more where a run is still closing in on it near a bifurcation). Moving
    and chaotic runs (their points are samples of the set, not the set) are
    one attractor per minimum; diverged runs are one.

    Args:
        result: :class:`Orbits` (any batch shape) or :class:`Bifurcation`.
        tol: the matching tolerance (absolute).

    Returns:
        :class:`Attractors`, in order of first appearance.
    """
    if tol is not None:
        _validate.check_positive("tol", tol)
    kind = np.asarray(result.kind)
    shape = kind.shape
    kind = kind.reshape(-1)
    period = np.asarray(result.period).reshape(-1)
    minimum = np.asarray(result.minimum).reshape(-1)
    cyc = np.asarray(result.cycle)
    cyc = cyc.reshape((-1,) + cyc.shape[-2:])
    cen = np.asarray(result.centroid)
    cen = cen.reshape((-1, cen.shape[-1]))
    reps: list[int] = []
    # per (kind, period, minimum): its attractors, their first runs' centroids
    # and the largest coordinate magnitude of their points
    groups: dict[tuple[int, int, int], tuple[list[int], list[np.ndarray], list[float]]] = {}
    labels = np.empty(kind.shape, np.int64)
    for i in range(kind.size):
        key = (int(kind[i]), int(period[i]), int(minimum[i]))
        members, cents, scale = groups.setdefault(key, ([], [], [0.0]))
        match = -1
        if kind[i] in (FIXED, PERIODIC) and members:
            pts = cyc[i, : period[i]]
            # cycles within the tolerance (Hausdorff) have centroids within it
            gap = np.max(np.abs(np.asarray(cents) - cen[i][None, :]), axis=1)
            near = gap <= _match_tol(tol, pts, np.asarray(scale))
            for c in np.flatnonzero(near):
                other = cyc[reps[members[c]], : period[i]]
                if _set_distance(pts, other) <= _match_tol(tol, pts, other):
                    match = members[c]
                    break
        elif members:
            match = members[0]
        if match < 0:
            match = len(reps)
            reps.append(i)
            members.append(match)
            cents.append(cen[i])
            if kind[i] in (FIXED, PERIODIC):
                scale[0] = max(scale[0], float(np.max(np.abs(cyc[i, : period[i]]))))
        labels[i] = match
    idx = np.asarray(reps, np.int64)
    count = np.bincount(labels, minlength=len(reps))
    centroids = np.zeros((len(reps), cen.shape[-1]), cen.dtype)
    for a, r in enumerate(reps):
        # diverged runs have no centroid (NaN)
        centroids[a] = cen[r] if kind[r] == DIVERGED else np.mean(cen[labels == a], axis=0)
    return Attractors(
        kind=kind[idx],
        period=period[idx],
        minimum=minimum[idx],
        centroid=centroids,
        points=cyc[idx],
        count=count,
        labels=labels.reshape(shape),
    )
