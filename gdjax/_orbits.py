"""The compiled orbit program of :mod:`gdjax.attractors` and its argument checks.

One start, one set of hyperparameters: ``transient`` steps, then a window of
measured steps (the largest Lyapunov exponent by ``jax.jvp``), the period
test on the recorded points, the cycle in canonical order and the minimum
nearest its centroid; vmapped over starts and hyperparameter sets
(:func:`_program`) and chunked over the sets through the one chunk loop
(:func:`_run`). The definitions (kinds, tolerances) are in
:mod:`gdjax.attractors`, the public face.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from gdjax import _chunks, _engine, _validate
from gdjax import surfaces as _surfaces
from gdjax._engine import OptaxFactory
from gdjax.surfaces import Surface

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


def default_tol(dtype) -> float:
    """The default period tolerance ``rtol`` of a dtype: ``sqrt(eps)`` (3.5e-4
    in float32, 1.5e-8 in float64). See the module docstring."""
    return float(math.sqrt(np.finfo(np.dtype(dtype)).eps))


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


@functools.partial(jax.jit, static_argnames=("fn", "method", "plan", "paired"))
def _program(fn, method, plan, x0s, h, tols, minima, transient, paired=False) -> _One:
    """Axes of the result: (start, hyperparameters); ``paired``: start i with
    hyperparameter set i only, axis (pair,)."""
    one = functools.partial(_analyse, fn, method, plan)
    if paired:
        return jax.vmap(one, in_axes=(0, 0, None, None, None))(x0s, h, tols, minima, transient)
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
    fn, method, plan, x0s, hflat, tols, minima, dtype, chunk, transient, paired=False
) -> dict[str, np.ndarray]:
    """The program over (start, hyperparameter set), chunked over the sets;
    NumPy results with axes (start, set). ``paired``: over the pairs (start
    i, set i), chunked over the pairs; axis (pair,)."""
    total = jax.tree.leaves(hflat)[0].shape[0]
    chunk = max(1, min(total, chunk))
    x0s_j = None if paired else jnp.asarray(x0s, dtype)  # every chunk's starts
    tols_j, minima_j = jnp.asarray(tols, dtype), jnp.asarray(minima, dtype)
    steps = jnp.asarray(transient, jnp.int32)
    out: dict[str, np.ndarray] = {}

    def call(parts):
        x0, h = (jnp.asarray(parts[0], dtype), parts[1]) if paired else (x0s_j, parts)
        h = jax.tree.map(jnp.asarray, h)
        return _program(fn, method, plan, x0, h, tols_j, minima_j, steps, paired)

    def collect(idx, m, res):
        for name, a in res._asdict().items():
            a = np.asarray(a)
            if paired:
                out.setdefault(name, np.empty((total,) + a.shape[1:], a.dtype))[idx] = a[:m]
            else:
                shape = (a.shape[0], total) + a.shape[2:]
                out.setdefault(name, np.empty(shape, a.dtype))[:, idx] = a[:, :m]

    hosts = jax.tree.map(np.asarray, hflat)
    _chunks.run_chunks(call, (np.asarray(x0s), hosts) if paired else hosts, chunk, collect)
    return out


def _hyper(rule, lrs, dtype, bound):
    _check_rule(rule)
    _validate.check_positive("bound", bound)
    _engine.check_lr(lrs, dtype)
    method, h = _engine.resolve(rule, jnp.asarray(lrs, dtype), steps=1, dtype=dtype, bound=bound)
    batch = _engine.batch_shape(h)
    return method, _engine.flatten(h, batch), batch
