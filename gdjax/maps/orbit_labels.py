"""Attractor labels of a basin map: where the runs that end not converged go.

Above a minimum's stability limit 2 / lambda_max gradient descent cannot
converge to it, and a map's runs there end "not converged"; but they are not
lost: the update is a nonlinear map with periodic orbits around the minimum
and chaos. With ``MapConfig(attractors=True)`` (or an
:class:`gdjax.maps.config.AttractorSettings`) :func:`run_map` maps the basins
as usual, then labels what each not-converged run reaches
(:mod:`gdjax.maps.summary` holds the label convention).

The rule is plain gradient descent (``rule="fixed"``) or an optax optimizer
(``gdjax.optimizer(...)``, such as :func:`gdjax.optimizers.family` with a
batch of settings, one optimizer per set). An optimizer's runs are continued
from their end points with a *fresh* optimizer state (zero velocity and
moments, step count 0), each set with its own rate and settings (data in
:func:`gdjax.attractors.orbits`: one compiled program for the whole batch).
This is an approximation: the map's runner keeps only the end points, not
the state the run had there; the continuation's ``transient`` steps let the
state settle onto the attractor before anything is measured, so an attractor
is found as such, but a run near the boundary of two attractors may settle
onto another one than its own state would have taken it to.

1. A run whose last step moved it less than the period tolerance,
   ``lr |grad f(x)|_inf <= rtol (|x|_inf + 1)`` with ``rtol`` the default of
   :func:`gdjax.attractors.default_tol` (sqrt(eps)), stays *moving* without
   being continued. For an optax rule the last step's displacement is not
   kept; the test takes the continuation's first step instead (one update
   from a fresh state at the end point: ``lr |grad|`` for gradient descent
   in the family, so its labels equal plain gradient descent's; ``lr |grad|``
   for heavy-ball momentum, whose settled step is up to ``1 / (1 -
   momentum)`` times longer; about ``lr`` per coordinate for Adam and
   RMSprop, whose runs are then nearly always continued). Such a run
   :func:`gdjax.attractors.orbits` would read as a fixed point (period 1),
   a crawl across a plateau or a slow approach. On peaks
   these are most not-converged runs at every rate (the flat outer plateau),
   and some of them, crossing the plateau near a saddle, separate fast
   enough over a short window to pass for chaos (a largest Lyapunov exponent
   of 0.01 to 0.05 nats per step): leaving them out removes those.
2. Every other not-converged run is continued from its end point through
   :func:`gdjax.attractors.orbits` (``transient`` steps, then ``window``
   measured ones), in chunks of at most :data:`~gdjax.maps.config.ORBIT_CHUNK`
   runs of one hyperparameter set (its rate, and an optimizer's settings)
   through the one chunk loop
   (:func:`gdjax._chunks.run_chunks`). A cycle of period 2 ..
   ``max_period`` is matched to the minimum it surrounds: the one nearest its
   centroid among the map's minima and the surface's minima in the domain
   (:func:`gdjax.maps.critical.critical_points`), if it lies within the
   cycle's radius (its farthest point from the centroid) plus the claim
   radius; else the cycle surrounds no minimum.
3. A run with no period and a largest Lyapunov exponent above ``chaos`` is
   chaotic; the rest (fixed points: runs that converge, or crawl, later;
   aperiodic and not chaotic; diverging later) are moving.

The map's minima become those its runs reached and every minimum of the
surface in the domain (:func:`gdjax.maps.critical.critical_points`), sorted
by value: a minimum no run reaches (above its stability limit, in a map of
one rate) is listed with fraction 0, so the global minimum is named, and
counted as global, even where nothing converges to it.

Attractors are identified by their period and the minimum they surround
(chaos is one attractor), as Attractors.jl matches them, and one table
serves the whole batch of rates, so a label means the same at every rate.
Labels of runs that converged or diverged within the map's steps are never
changed (a minimum's index moves only when a minimum no run reached is
listed below it in value).

Where it sits: this module is the map's in-memory sink with attractors.
Its :func:`run_map` maps through :func:`gdjax.maps.runner.run_map` (which
maps minima only) and then labels; :func:`gdjax.basins.run_map` is this
:func:`run_map`, so ``gdjax.basins.map_basins(..., attractors=True)`` and
``gdjax.continuation.continuation(..., attractors=True)`` label attractors.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from gdjax import _chunks, attractors
from gdjax._progress import Progress
from gdjax.descent import optimizer
from gdjax.maps import runner
from gdjax.maps.config import ORBIT_CHUNK, ORBIT_KEEP, MapConfig
from gdjax.maps.critical import claim_radius, critical_points, pow2
from gdjax.maps.summary import (
    FIRST_ATTRACTOR,
    NOT_CONVERGED,
    AttractorTable,
    BasinMap,
    CriticalPoint,
    fractions,
    global_minima,
    reach_global,
)

__all__ = ["CYCLES_KEPT", "attractor_name", "classify", "run_map"]

CYCLES_KEPT = 4
"""Distinct cycles of one period around one minimum whose points a map keeps
per rate (more are counted under the same attractor)."""

_STEP_CHUNK = 1 << 16  # end points per call of the step-size program


def attractor_name(kind: str, period: int, minimum: int) -> str:
    """An attractor's outcome key: ``"period 2 around min 0"``, ``"period
    3"`` (around no minimum), ``"chaotic"``."""
    if kind == "chaotic":
        return "chaotic"
    return f"period {period}" + ("" if minimum < 0 else f" around min {minimum}")


def run_map(
    config: MapConfig,
    *,
    key: Array | None = None,
    progress: Progress | None = None,
) -> BasinMap:
    """A basin map in memory with its attractors: the map of
    :func:`gdjax.maps.runner.run_map` (the same program, labels and
    minima), then :func:`classify`. A config without attractors is mapped
    as :func:`gdjax.maps.runner.run_map` maps it.

    Args:
        config: the map; ``config.attractors`` the settings.
        key: a ``jax.random.key`` for random starts.
        progress: called with (runs done, runs) over the map's runs, then
            with (runs continued, runs to continue) over the attractor stage.
    """
    if config.attractors is None:
        return runner.run_map(config, key=key, progress=progress)
    config.check_memory()
    bmap = runner.run_map(config.replace(attractors=None), key=key, progress=progress)
    return classify(config, bmap, progress=progress)


class _Found(NamedTuple):
    """What the continued runs of one set reached: per run its kind (0
    moving, 1 periodic, 2 chaotic), period and the candidate minimum it
    surrounds (-1 none); per (period, candidate): the distinct cycles kept
    and the Lyapunov sums and counts; chaos's sampled points."""

    kind: np.ndarray
    period: np.ndarray
    around: np.ndarray
    cycles: dict
    lyapunov: dict
    chaos_points: list


@functools.partial(jax.jit, static_argnames="fn")
def _slow(fn, pts, lr, rtol):
    """Whether each point's gradient step is within the period tolerance."""
    step = lr * jnp.max(jnp.abs(jax.vmap(jax.grad(fn))(pts)), axis=1)
    return step <= rtol * (jnp.max(jnp.abs(pts), axis=1) + 1)


@functools.partial(jax.jit, static_argnames=("fn", "factory", "static"))
def _slow_fresh(fn, factory, static, pts, lr, numbers, rtol):
    """Whether each point's first step of an optax rule from a fresh state
    (the continuation's first step) is within the period tolerance."""

    def step(x, rate, nums):
        tx = factory(learning_rate=rate, **dict(static), **nums)
        updates, _ = tx.update(jax.grad(fn)(x), tx.init(x), x)
        return jnp.max(jnp.abs(updates))

    size = jax.vmap(step)(pts, lr, numbers)
    return size <= rtol * (jnp.max(jnp.abs(pts), axis=1) + 1)


def _set_settings(config: MapConfig) -> dict[str, np.ndarray]:
    """An optax rule's float settings, one value per hyperparameter set
    (flattened batch); empty for plain gradient descent."""
    if config.method.factory is None:
        return {}
    return {
        k: np.asarray(v, np.float64).reshape(config.sets)
        for k, v in config.settings().items()
        if k != "lr"
    }


def _rule(config: MapConfig, numbers: dict[str, np.ndarray]):
    """The rule that continues runs: ``"fixed"``, or the map's optax factory
    with each run's settings (``numbers``: one value per run; data in
    :func:`gdjax.attractors.orbits`, so every set is one program)."""
    if config.method.factory is None:
        return "fixed"
    return optimizer(config.method.factory, **dict(config.method.static_kwargs), **numbers)


def _slow_runs(
    config: MapConfig, ends: np.ndarray, lrs: np.ndarray, rtol: float, numbers=None
) -> np.ndarray:
    """:func:`_slow` of every not-converged end (each with its own rate);
    for an optax rule :func:`_slow_fresh` (``numbers``: each end's
    settings)."""
    out = np.empty(len(ends), bool)
    if not len(ends):
        return out
    dt = config.np_dtype
    tol = dt.type(rtol)
    fresh = config.method.factory is not None

    def call(parts):
        pts, lr, nums = parts
        pts, lr = jnp.asarray(pts, dt), jnp.asarray(lr, dt)
        if fresh:
            nums = {k: jnp.asarray(v, dt) for k, v in nums.items()}
            static = config.method.static_kwargs
            return _slow_fresh(config.surface.fn, config.method.factory, static, pts, lr, nums, tol)
        return _slow(config.surface.fn, pts, lr, tol)

    def collect(idx, m, res):
        out[idx] = np.asarray(res)[:m]

    chunk = min(_STEP_CHUNK, pow2(len(ends)))
    with jax.enable_x64(dt == np.float64):
        _chunks.run_chunks(call, (ends, lrs, dict(numbers or {})), chunk, collect)
    return out


def _match_tol(a: np.ndarray, b: np.ndarray) -> float:
    """Two canonical cycles are one when they differ by at most this
    (:func:`gdjax.attractors.distinct`'s default tolerance)."""
    return 1e-3 * (1.0 + max(float(np.nanmax(np.abs(a))), float(np.nanmax(np.abs(b)))))


def _keep_cycles(kept: list, cycles: np.ndarray, period: int) -> None:
    """Adds to ``kept`` (up to :data:`CYCLES_KEPT`, each (period, d)) the
    canonical cycles of ``cycles`` ((n, max_period, d)) that differ from
    every cycle kept."""
    rest = cycles[:, :period]
    for rep in kept:
        if not len(rest):
            return
        rest = rest[np.max(np.abs(rest - rep[None]), axis=(1, 2)) > _match_tol(rest, rep)]
    while len(rest) and len(kept) < CYCLES_KEPT:
        rep = rest[0].copy()
        kept.append(rep)
        rest = rest[np.max(np.abs(rest - rep[None]), axis=(1, 2)) > _match_tol(rest, rep)]


_FIELDS = ("kind", "period", "lyapunov", "centroid", "minimum", "distance", "cycle", "tail")
"""The fields of :class:`gdjax.attractors.Orbits` the labelling reads."""


def _continue(config, ends, lrs, numbers, bounds, cand, chunk, report) -> list[_Found]:
    """Continues every set's runs from ``ends`` (sorted by set: set k's are
    ``ends[bounds[k]:bounds[k + 1]]``, each with its rate in ``lrs`` and its
    settings in ``numbers``) through :func:`gdjax.attractors.orbits`, paired:
    one compiled program for every set, in chunks of ``chunk`` runs. Then
    each set's attractors are gathered in blocks of ``chunk`` of its runs,
    as when each set ran alone (the same cycles kept, the same Lyapunov
    sums); ``cand`` the candidate minima's locations."""
    s = config.attractors
    n = len(ends)
    outs: dict[str, np.ndarray] = {}

    def call(parts):
        part, lr, nums = parts
        return attractors.orbits(
            config.surface,
            part,
            lr,
            rule=_rule(config, nums),
            transient=s.transient,
            window=s.window,
            keep=ORBIT_KEEP,
            max_period=s.max_period,
            chaos=s.chaos,
            bound=config.bound,
            minima=cand,
            dtype=config.np_dtype,
            chunk_size=chunk,
            paired=True,
        )

    def collect(idx, m, o):
        for name in _FIELDS:
            a = getattr(o, name)
            outs.setdefault(name, np.empty((n,) + a.shape[1:], a.dtype))[idx] = a[:m]
        report(m)

    if n:
        _chunks.run_chunks(call, (ends, lrs, numbers), chunk, collect, ahead=False)
    found = []
    for k in range(len(bounds) - 1):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        size = hi - lo
        one = _Found(
            np.zeros(size, np.int8),
            np.zeros(size, np.int16),
            np.full(size, -1, np.int32),
            {},
            {},
            [],
        )
        for at in range(lo, hi, chunk):
            block = slice(at, min(hi, at + chunk))
            _gather(config, one, slice(at - lo, block.stop - lo), {f: outs[f][block] for f in outs})
        found.append(one)
    return found


def _gather(config, found: _Found, idx: slice, o: dict) -> None:
    """Adds one block of a set's continued runs (``o``: their orbits'
    fields) to what the set reached: kinds, periods and the minima cycles
    surround at ``idx``, distinct cycles, Lyapunov sums, chaos's points."""
    s = config.attractors
    reach = claim_radius(config.domain)
    k = o["kind"]
    periodic = k == attractors.PERIODIC
    chaotic = k == attractors.CHAOTIC
    cyc, cen = o["cycle"], o["centroid"]
    with np.errstate(invalid="ignore"):  # NaN past the period, and for non-cycles
        spread = np.linalg.norm(cyc - cen[:, None, :], axis=2)
        radius = np.max(np.where(np.isfinite(spread), spread, 0.0), axis=1)
        inside = o["distance"] <= radius + reach
    arnd = np.where(periodic & inside & (o["minimum"] >= 0), o["minimum"], -1)
    found.kind[idx] = np.where(periodic, 1, np.where(chaotic, 2, 0))
    found.period[idx] = np.where(periodic, o["period"], 0)
    found.around[idx] = arnd
    ly = o["lyapunov"]
    cycles, lyap, chaos_points = found.cycles, found.lyapunov, found.chaos_points
    pairs = np.unique(np.stack([o["period"][periodic], arnd[periodic]], axis=1), axis=0)
    for p, a in pairs.tolist():
        sel = periodic & (o["period"] == p) & (arnd == a)
        _keep_cycles(cycles.setdefault((p, a), []), cyc[sel], p)
        total, count = lyap.get((p, a), (0.0, 0))
        lyap[(p, a)] = (total + float(np.sum(ly[sel])), count + int(sel.sum()))
    if chaotic.any():
        total, count = lyap.get("chaotic", (0.0, 0))
        lyap["chaotic"] = (total + float(np.sum(ly[chaotic])), count + int(chaotic.sum()))
        room = s.max_period * CYCLES_KEPT - sum(len(p) for p in chaos_points)
        for tail in o["tail"][chaotic]:
            if room <= 0:
                break
            chaos_points.append(tail[:room])
            room -= len(tail)


@functools.lru_cache(maxsize=32)
def _surface_minima(surface, domain: tuple) -> tuple[CriticalPoint, ...]:
    """The surface's minima in the domain (critical_points: pure, so kept
    for the next map of the same surface and domain)."""
    return tuple(c for c in critical_points(surface, domain=domain) if c.kind == "min")


def _candidates(config: MapConfig, minima: tuple[CriticalPoint, ...]) -> list[CriticalPoint]:
    """The map's minima, then the surface's minima in the domain that are
    none of them: what a cycle may surround."""
    radius = claim_radius(config.domain) / 10
    domain = tuple(tuple(float(v) for v in d) for d in config.domain)
    found = _surface_minima(config.surface, domain)
    extra = [
        c
        for c in found
        if all(np.hypot(*np.subtract(c.location, m.location)[:2]) > radius for m in minima)
    ]
    return list(minima) + extra


def classify(config: MapConfig, bmap: BasinMap, *, progress: Progress | None = None) -> BasinMap:
    """Labels the attractors of ``bmap``'s not-converged runs (see the
    module docstring): the map with labels ``FIRST_ATTRACTOR - a`` for
    attractor ``a`` of its :class:`gdjax.maps.summary.AttractorTable`, label
    -1 for the runs still moving, its fractions with every attractor's, and
    the surface's minima in the domain that no run reached added.

    Args:
        config: the map's configuration, with ``attractors`` settings.
        bmap: its map (labelled on the host: the end points are needed).
        progress: called with (runs continued, runs to continue).
    """
    s = config.attractors
    if s is None:
        raise ValueError("this config has no attractor settings: MapConfig(attractors=True)")
    if bmap.final is None:
        raise ValueError("attractor labelling needs the runs' end points: label them on the host")
    t0 = time.perf_counter()
    batch, n = bmap.batch, bmap.labels.shape[-1]
    sets = int(np.prod(batch, dtype=np.int64))
    labels = bmap.labels.reshape(sets, n).copy()
    final = bmap.final.reshape(sets, n, -1)
    lrs = np.broadcast_to(np.asarray(config.settings()["lr"], np.float64), batch).reshape(sets)
    rtol = attractors.default_tol(config.np_dtype)
    numbers = _set_settings(config)

    nc_set, nc_run = np.nonzero(labels == NOT_CONVERGED)
    nums = {k: v[nc_set] for k, v in numbers.items()}
    slow = _slow_runs(config, final[nc_set, nc_run], lrs[nc_set], rtol, nums)
    go_set, go_run = nc_set[~slow], nc_run[~slow]
    total = len(go_run)
    done = 0

    def report(k: int) -> None:
        nonlocal done
        done += k
        if progress is not None:
            progress(done, total)

    cand = _candidates(config, bmap.minima)
    locs = np.asarray([c.location for c in cand], np.float64).reshape(len(cand), 2)
    if progress is not None and total:
        progress(0, total)
    bounds = np.searchsorted(go_set, np.arange(sets + 1))  # np.nonzero: sorted by set
    chunk = min(ORBIT_CHUNK, pow2(int(np.max(np.diff(bounds), initial=1))))
    nums = {name: v[go_set] for name, v in numbers.items()}
    found = _continue(config, final[go_set, go_run], lrs[go_set], nums, bounds, locs, chunk, report)

    # the minima: the map's and the surface's in the domain, sorted by value
    n_map = len(bmap.minima)
    order = sorted(range(len(cand)), key=lambda q: cand[q].value)
    rank = {-1: -1} | {q: new for new, q in enumerate(order)}  # candidate -> index
    minima = [cand[q] for q in order]
    if len(cand) > n_map:  # minima no run reached sort among the others: rename the labels
        hit = labels >= 0
        labels[hit] = np.asarray([rank[i] for i in range(n_map)], np.int32)[labels[hit]]

    # one table for the whole batch: cycles by (minimum, period), then chaos
    keys = sorted(
        {(p, rank[a]) for f in found for (p, a) in f.cycles},
        key=lambda pa: (pa[1] < 0, pa[1], pa[0]),
    )
    chaos = any("chaotic" in f.lyapunov for f in found)
    names = [attractor_name("periodic", p, m) for p, m in keys] + (["chaotic"] if chaos else [])
    index = {key: a for a, key in enumerate(keys)}
    n_att = len(names)
    width = s.max_period * CYCLES_KEPT
    points = np.full((sets, n_att, width, 2), np.nan)
    lyap = np.full((sets, n_att), np.nan)
    for k, f in enumerate(found):
        runs = go_run[bounds[k] : bounds[k + 1]]
        where = np.full(len(runs), NOT_CONVERGED, np.int32)
        for (p, a), cycles in f.cycles.items():
            at = index[(p, rank[a])]
            where[(f.kind == 1) & (f.period == p) & (f.around == a)] = FIRST_ATTRACTOR - at
            pts = np.concatenate(cycles)
            points[k, at, : len(pts)] = pts
            total_l, count = f.lyapunov[(p, a)]
            lyap[k, at] = total_l / count
        if "chaotic" in f.lyapunov:
            at = n_att - 1
            where[f.kind == 2] = FIRST_ATTRACTOR - at
            pts = np.concatenate(f.chaos_points)[:width]
            points[k, at, : len(pts)] = pts
            total_l, count = f.lyapunov["chaotic"]
            lyap[k, at] = total_l / count
        labels[k, runs] = where

    counts = np.bincount(nc_set, minlength=sets)
    continued = np.bincount(go_set, minlength=sets)
    table = AttractorTable(
        names=tuple(names),
        kind=tuple(["periodic"] * len(keys) + (["chaotic"] if chaos else [])),
        period=tuple([p for p, _ in keys] + ([0] if chaos else [])),
        minimum=tuple([m for _, m in keys] + ([-1] if chaos else [])),
        points=points.reshape(batch + (n_att, width, 2)),
        lyapunov=lyap.reshape(batch + (n_att,)),
        continued=continued.reshape(batch),
        slow=(counts - continued).reshape(batch),
        settings={
            **s.to_json(),
            "rtol": rtol,
            "seconds": time.perf_counter() - t0,
            **({"continued_with": "a fresh optimizer state"} if config.method.factory else {}),
        },
    )
    labels = labels.reshape(batch + (n,))
    minima = tuple(minima)
    glob = global_minima(minima, config.global_tol)
    p_glob = reach_global(labels, glob)
    return dataclasses.replace(
        bmap,
        labels=labels,
        minima=minima,
        fractions=fractions(labels, len(minima), names),
        config=config.record(),
        global_minima=glob,
        p_global=p_glob,
        attractors=table,
    )
