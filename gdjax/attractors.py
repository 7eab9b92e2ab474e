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
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from gdjax import _validate
from gdjax._engine import OptaxFactory
from gdjax._orbits import (
    CHAOTIC,
    DIVERGED,
    FIXED,
    MOVING,
    PERIODIC,
    _hyper,
    _minima,
    _plan,
    _rates,
    _run,
    _starts,
    _surface,
    _tols,
    _transient,
    default_tol,
)
from gdjax.descent import DEFAULT_BOUND
from gdjax.maps.critical import hessian_at, stability_limit
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
    paired: bool = False,
) -> Orbits:
    """Where gradient descent goes from every start at every rate, in one
    compiled program vmapped over starts and rates (chunked over the rates);
    or, ``paired``, from start i at rate (and settings) i only.

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
        chunk_size: rate sets per compiled call (``paired``: pairs).
        paired: start i runs with hyperparameter set i alone: the rates'
            (and settings') batch must be (S,), one per start of a batch of S.

    Returns:
        :class:`Orbits`, axes (start, *rates' batch), without the start axis
        for one start; ``paired``: axis (start,).
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
        if paired:
            if single or batch != (x0s.shape[0],):
                raise ValueError(
                    "paired runs start i at rate (and settings) i: give a batch of S starts and "
                    f"rates (settings) of shape ({len(x0s)},); got "
                    f"{'one start' if single else f'{len(x0s)} starts'} and a batch of {batch}"
                )
            res = _run(fn, method, plan, x0s, hflat, tols, mins, dt, chunk, transient, True)
        else:
            budget = max(1, chunk // x0s.shape[0])
            res = _run(fn, method, plan, x0s, hflat, tols, mins, dt, budget, transient)
        lr = np.asarray(jnp.broadcast_to(jnp.asarray(lrs, dt), batch))
    if paired:
        return Orbits(lr=lr, **res, rtol=float(tols[0]), chaos=float(tols[1]))

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
    hess = np.asarray(hessian_at(fn, x), np.float64).reshape(location.size, location.size)
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
