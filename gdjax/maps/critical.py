"""Critical points: the minima a map's runs reached, and every critical
point of a surface.

Minima are discovered without being told them: the converged end points are
clustered, refined with Newton's method on grad f = 0 (in float64) and
classified by the eigenvalues of ``jax.hessian``. :func:`critical_points`
finds every critical point in a domain (minima, saddles, maxima) from a grid
of Newton starts.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from gdjax import _validate
from gdjax.maps.config import grid_starts
from gdjax.maps.summary import DIVERGED, NOT_CONVERGED, CriticalPoint
from gdjax.surfaces import Surface
from gdjax.surfaces import get as _get_surface

__all__ = [
    "claim_radius",
    "critical_points",
    "discover_minima",
    "find_and_label",
    "hessian_at",
    "label_ends",
    "pow2",
    "stability_limit",
]


def stability_limit(eigenvalues: Sequence[float]) -> float:
    """2 / lambda_max: the largest rate at which gradient descent can
    converge to a minimum with these Hessian eigenvalues."""
    top = max(eigenvalues)
    return 2.0 / top if top > 0 else float("inf")


@functools.partial(jax.jit, static_argnums=0)
def hessian_at(fn, x):
    """The Hessian of ``fn`` at ``x``, compiled once per function, shape and
    dtype (eager ``jax.hessian`` compiled each of its primitives apart: 70
    small programs in one lesson)."""
    return jax.hessian(fn)(x)


def claim_radius(dom) -> float:
    """The distance within which a converged end is claimed by a minimum:
    1% of the domain's width."""
    return 1e-2 * max(hi - lo for lo, hi in dom)


@functools.partial(jax.jit, static_argnames=("fn", "iters"))
def _newton_batch(fn, iters, x0s):
    g = jax.grad(fn)
    h = jax.hessian(fn)

    def step(x, _):
        # pinv: safe where the Hessian is singular (a flat plateau)
        return x - jnp.linalg.pinv(h(x)) @ g(x), None

    def refine(x0):
        x, _ = jax.lax.scan(step, x0, None, length=iters)
        return x, jnp.linalg.norm(g(x))

    return jax.vmap(refine)(x0s)


def _newton_refine(fn, pts: np.ndarray, iters: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Newton's method on grad f = 0 in float64; returns points and |grad|."""
    if len(pts) == 0:
        return np.zeros((0, 2)), np.zeros(0)
    with jax.enable_x64(True):
        padded, n = _padded(np.asarray(pts, np.float64))
        x, gn = _newton_batch(fn, iters, jnp.asarray(padded, jnp.float64))
        return np.asarray(x)[:n], np.asarray(gn)[:n]


def pow2(n: int) -> int:
    """The power of two >= n (and >= 16): batch sizes that keep compiled shapes few."""
    return max(16, 1 << max(n - 1, 1).bit_length())


def _padded(pts: np.ndarray) -> tuple[np.ndarray, int]:
    """Pads a batch of points to a power of two (>= 16) by repeating the last,
    so the compiled programs below see few shapes."""
    n = len(pts)
    size = pow2(n)
    return np.concatenate([pts, np.repeat(pts[-1:], size - n, axis=0)]), n


@functools.partial(jax.jit, static_argnames="fn")
def _values_and_eigenvalues(fn, x):
    eig = jax.vmap(lambda p: jnp.linalg.eigvalsh(jax.hessian(fn)(p)))(x)
    return jax.vmap(fn)(x), eig


def _classify(fn, pts: np.ndarray) -> list[CriticalPoint]:
    if len(pts) == 0:
        return []
    with jax.enable_x64(True):
        padded, n = _padded(np.asarray(pts, np.float64))
        vals, eig = _values_and_eigenvalues(fn, jnp.asarray(padded, jnp.float64))
        vals, eig = np.asarray(vals)[:n], np.asarray(eig)[:n]
    out = []
    for p, v, e in zip(pts, vals, eig, strict=True):
        scale = max(1.0, float(np.max(np.abs(e))))
        if np.all(e > 1e-8 * scale):
            kind = "min"
        elif np.all(e < -1e-8 * scale):
            kind = "max"
        elif np.any(e > 1e-8 * scale) and np.any(e < -1e-8 * scale):
            kind = "saddle"
        else:
            kind = "degenerate"
        out.append(CriticalPoint(tuple(map(float, p)), float(v), tuple(map(float, e)), kind))
    return out


def _cluster(pts: np.ndarray, radius: float, max_cells: int = 4096) -> np.ndarray:
    """Greedy clustering of points (rounded to a grid first, so millions are
    cheap); returns cluster centres ordered by population, from the
    ``max_cells`` most populated cells."""
    if len(pts) == 0:
        return np.zeros((0, 2))
    # one int64 key per cell: np.unique on 1-D keys is far faster than on rows
    cell = np.round(pts / radius).astype(np.int64)
    cell -= cell.min(axis=0)
    key = cell[:, 0] * (int(cell[:, 1].max()) + 1) + cell[:, 1]
    cells, inverse, counts = _unique(key)
    # per-cell sums in input order, as np.add.at adds them (bitwise the same; faster:
    # docs/basins.md)
    sums = [np.bincount(inverse, weights=col, minlength=len(cells)) for col in pts.T]
    centres = np.stack(sums, axis=1)
    centres /= counts[:, None]
    order = np.argsort(-counts, kind="stable")[:max_cells]
    kept = np.empty((len(order), pts.shape[1]))
    n = 0
    for c in centres[order]:
        if n == 0 or np.min(np.sum((kept[:n] - c) ** 2, axis=1)) > radius**2:
            kept[n] = c
            n += 1
    return kept[:n]


def _unique(key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(key, return_inverse=True, return_counts=True)`` (inverse
    flat); by counting when the keys are non-negative and span a range not
    much larger than their number (faster than sorting them: docs/basins.md)."""
    top = int(key.max()) + 1
    if top > max(1 << 16, 4 * len(key)) or key.min() < 0:  # < 0: cells beyond int64
        cells, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        return cells, inverse.ravel(), counts
    full = np.bincount(key, minlength=top)
    cells = np.flatnonzero(full)
    rank = np.empty(top, np.int64)
    rank[cells] = np.arange(len(cells))
    return cells, rank[key], full[cells]


def _inside(pts, dom) -> np.ndarray:
    lo = np.asarray([d[0] for d in dom])
    hi = np.asarray([d[1] for d in dom])
    return np.all((pts >= lo) & (pts <= hi), axis=-1)


def _dedupe(points: list[CriticalPoint], radius: float) -> list[CriticalPoint]:
    out: list[CriticalPoint] = []
    for p in points:
        if all(np.linalg.norm(np.subtract(p.location, q.location)) > radius for q in out):
            out.append(p)
    return out


_SAMPLE = 1 << 17


def _candidate_minima(surface: Surface, final: np.ndarray, pool, dom) -> list[CriticalPoint]:
    """The minima near the end points ``final[pool]`` (of an even subsample of
    at most ``_SAMPLE`` of them; orphans are found again by the callers)."""
    radius = claim_radius(dom)
    rows = np.flatnonzero(pool)
    if len(rows) > _SAMPLE:
        rows = rows[np.linspace(0, len(rows) - 1, _SAMPLE).astype(np.int64)]
    centres = _cluster(final[rows], radius)
    if len(centres) == 0:
        return []
    refined, gnorm = _newton_refine(surface.fn, centres)
    ok = (gnorm < 1e-8) & np.all(np.isfinite(refined), axis=1)
    return [p for p in _classify(surface.fn, refined[ok]) if p.kind == "min"]


def find_and_label(surface, final, converged, diverged, dom, rounds: int = 5):
    """Discovers minima from (a subsample of) the converged end points, labels
    every start, then looks again among converged starts that no minimum
    claimed, until a round finds nothing new."""
    radius = claim_radius(dom)
    found: list[CriticalPoint] = []
    pool = converged & ~diverged
    labels = None
    for _ in range(rounds):
        new = _candidate_minima(surface, final, pool, dom)
        merged = _dedupe(sorted(found + new, key=lambda p: p.value), radius / 10)
        grew = len(merged) > len(found)
        same = len(merged) == len(found) and all(a is b for a, b in zip(merged, found, strict=True))
        if labels is not None and same:
            break  # the same minima: the same labels
        found = merged
        labels = _label(final, converged, diverged, tuple(found), tol_radius=radius)
        pool = converged & ~diverged & (labels == NOT_CONVERGED)
        if not grew or not pool.any():
            break
    return tuple(found), labels


def discover_minima(
    surface: Surface, final, converged, diverged, domain, known: Sequence[CriticalPoint] = ()
) -> tuple[tuple[CriticalPoint, ...], np.ndarray]:
    """The minima among some runs' end points, added to ``known`` (whose
    order is kept: new ones are appended, so earlier labels stay valid), and
    the runs' labels against them. For maps computed in pieces
    (:mod:`gdjax.tiled`)."""
    radius = claim_radius(domain)
    found = list(known)
    pool = converged & ~diverged
    labels = _label(final, converged, diverged, tuple(found), tol_radius=radius)
    pool &= labels == NOT_CONVERGED
    for _ in range(5):
        if not pool.any():
            break
        new = [
            p
            for p in _candidate_minima(surface, final, pool, domain)
            if all(np.hypot(*np.subtract(p.location, q.location)) >= radius / 10 for q in found)
        ]
        if not new:
            break
        found += _dedupe(sorted(new, key=lambda p: p.value), radius / 10)
        labels = _label(final, converged, diverged, tuple(found), tol_radius=radius)
        pool &= labels == NOT_CONVERGED
    return tuple(found), labels


def label_ends(final, converged, diverged, minima, domain) -> np.ndarray:
    """Each run's label (the index into ``minima`` of the one its converged
    end lies within 1% of the domain's width of, -1 not converged, -2
    diverged), as :func:`map_basins` labels."""
    return _label(final, converged, diverged, tuple(minima), tol_radius=claim_radius(domain))


_BLOCK = 1 << 15  # points labelled at a time: the block's arrays stay in the cache


def _label(final, converged, diverged, minima, tol_radius) -> np.ndarray:
    """The nearest minimum of every converged end (the first on ties) if it
    lies within ``tol_radius``, else NOT_CONVERGED; DIVERGED for diverged
    runs. Branch-free arithmetic in blocks: a masked ``np.copyto`` or
    ``np.where`` over a mask mixing True and False is far slower than an
    ufunc (docs/basins.md)."""
    n = final.shape[0]
    labels = np.full(n, NOT_CONVERGED, np.int32)
    if minima:
        dtype = final.dtype.type
        centres = [(dtype(m.location[0]), dtype(m.location[1])) for m in minima]
        size = min(n, _BLOCK)
        xb, yb, best, d2, dy = (np.empty(size, final.dtype) for _ in range(5))
        nearest, delta = np.empty(size, np.int32), np.empty(size, np.int32)
        closer = np.empty(size, bool)
        for start in range(0, n, _BLOCK):  # memory and cache traffic stay O(block)
            stop = min(n, start + _BLOCK)
            k = stop - start
            x, y, b, d, e = xb[:k], yb[:k], best[:k], d2[:k], dy[:k]
            near, step, c = nearest[:k], delta[:k], closer[:k]
            np.copyto(x, final[start:stop, 0])  # contiguous: a strided operand is slower
            np.copyto(y, final[start:stop, 1])
            b.fill(np.inf)
            near.fill(0)
            for i, (mx, my) in enumerate(centres):
                np.square(np.subtract(x, mx, out=d), out=d)
                d += np.square(np.subtract(y, my, out=e), out=e)
                np.less(d, b, out=c)  # strictly closer: the first minimum wins a tie
                np.fmin(b, d, out=b)  # where(c, d, b): a NaN distance keeps b
                np.subtract(np.int32(i), near, out=step)
                step *= c
                near += step  # where(c, i, near)
            np.less(b, tol_radius**2, out=c)
            c &= converged[start:stop]
            near += 1  # where(c, near, NOT_CONVERGED), NOT_CONVERGED being -1
            near *= c
            near -= 1
            labels[start:stop] = near
    labels[diverged] = DIVERGED
    return labels


def critical_points(surface: str | Surface, *, grid: int = 48, domain=None) -> list[CriticalPoint]:
    """Every critical point found in the domain: Newton's method on
    grad f = 0 from a grid of starts, clustered and classified by the
    eigenvalues of the Hessian ("min", "saddle", "max"); sorted by kind, then
    value."""
    surface = _get_surface(surface)
    dom = _validate.check_domain(surface.domain if domain is None else domain, surface.dim)
    pts = grid_starts(dom, _validate.check_count("grid", grid), np.float64)
    refined, gnorm = _newton_refine(surface.fn, pts)
    ok = (gnorm < 1e-8) & np.all(np.isfinite(refined), axis=1) & _inside(refined, dom)
    centres = _cluster(refined[ok], claim_radius(dom) / 10)
    found = [p for p in _classify(surface.fn, centres) if p.kind != "degenerate"]
    order = {"min": 0, "saddle": 1, "max": 2}
    return sorted(_dedupe(found, claim_radius(dom) / 10), key=lambda p: (order[p.kind], p.value))
