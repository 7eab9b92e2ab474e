"""Lesson C's high-dimensional claim: almost every critical point is a saddle.

In one dimension a critical point is a minimum or a maximum, half and half;
in d dimensions it is a minimum only if all d Hessian eigenvalues are
positive. For a random symmetric Hessian from the Gaussian orthogonal
ensemble (GOE: diagonal N(0, 1), off-diagonal N(0, 1/2)) that probability
falls like exp(-theta d^2), theta = ln(3) / 4 (Dean and Majumdar, PRL 97,
160201, 2006): measured here by vmapped sampling for d = 1..8, with 95%
Wilson intervals. Then the same count on real landscapes: the critical
points of random smooth functions in d dimensions (random Fourier features),
found by vmapped Newton steps from many starts and classified by their
Hessians' eigenvalues.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gdjax import _validate, basins, plot
from gdjax.report import Report, versions, write_json
from gdjax.runs import command_line

__all__ = [
    "THETA",
    "Goe",
    "HighDim",
    "Landscapes",
    "compute",
    "goe_minimum_fraction",
    "landscape_critical_points",
    "run",
    "summary",
    "write",
]

THETA = math.log(3) / 4
"""Dean and Majumdar's rate: P(all GOE eigenvalues > 0) ~ exp(-THETA d^2)."""

EXACT = {1: 0.5, 2: (2 - math.sqrt(2)) / 4}
"""Exact GOE values: d = 1 by symmetry; d = 2 from the joint density
(checked by the sampling, tests/test_high_dim.py)."""


class Goe(NamedTuple):
    """GOE positive-definite fractions: per d, samples, hits, fraction and
    its 95% Wilson interval."""

    d: np.ndarray
    samples: np.ndarray
    hits: np.ndarray
    fraction: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray


class Landscapes(NamedTuple):
    """Critical points of random landscapes: per d, how many distinct ones
    were found, how many are minima (index 0), the fraction with its 95%
    interval, and the histogram of indices (row d: counts of index 0..d)."""

    d: np.ndarray
    critical: np.ndarray
    minima: np.ndarray
    fraction: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    index_counts: list


class HighDim(NamedTuple):
    """The lesson's numbers."""

    goe: Goe
    landscapes: Landscapes
    seed: int
    settings: dict


@functools.partial(jax.jit, static_argnames=("d", "n"))
def _tridiagonal_hits(key, d: int, n: int):
    """Positive-definite count of n GOE matrices of size d, drawn in the
    Dumitriu-Edelman tridiagonal model (Dumitriu and Edelman, J. Math. Phys.
    43, 5830, 2002: same eigenvalue law as the GOE): diagonal N(0, 2),
    off-diagonal i a chi variable with d - i degrees of freedom (the
    positivity of the spectrum does not depend on the overall scale). A
    tridiagonal matrix is positive definite iff every pivot of its LDL^T
    factorisation is."""
    k_diag, k_off = jax.random.split(key)
    diag = jax.random.normal(k_diag, (n, d)) * jnp.sqrt(2.0)
    dofs = d * (d - 1) // 2
    if dofs:
        z = jax.random.normal(k_off, (n, dofs))
        sums, start = [], 0
        for i in range(1, d):  # chi^2 with d - i degrees of freedom
            k = d - i
            sums.append(jnp.sum(jnp.square(z[:, start : start + k]), axis=1))
            start += k
        off2 = jnp.stack(sums, axis=1)  # squared off-diagonals
    pivot = diag[:, 0]
    ok = pivot > 0
    for i in range(1, d):
        pivot = diag[:, i] - off2[:, i - 1] / pivot
        ok &= pivot > 0
    return jnp.sum(ok.astype(jnp.int32))


def goe_minimum_fraction(
    key, ds=range(1, 9), *, samples: int = 1 << 22, chunk_size: int = 1 << 20, progress=None
) -> Goe:
    """The fraction of GOE matrices with all eigenvalues positive, for each
    d, from ``samples`` matrices each (in jitted chunks)."""
    ds = np.asarray(list(ds), np.int64)
    if ds.size == 0 or np.any(ds < 1):
        raise ValueError(f"dimensions must be >= 1, got {ds.tolist()}")
    samples = _validate.check_count("samples", samples)
    chunk = min(_validate.check_count("chunk_size", chunk_size), samples)
    n_chunks = -(-samples // chunk)
    hits = []
    for j, d in enumerate(ds):
        total = 0
        for c in range(n_chunks):
            total += int(_tridiagonal_hits(jax.random.fold_in(key, j * 100003 + c), int(d), chunk))
            if progress is not None:
                progress(j * n_chunks + c + 1, len(ds) * n_chunks)
        hits.append(total)
    n = n_chunks * chunk
    hits = np.asarray(hits, np.int64)
    frac, lo, hi = basins.wilson_interval(hits, n)
    return Goe(ds, np.full(len(ds), n), hits, frac, lo, hi)


def _landscape(params, x):
    w, b, a = params
    return jnp.sqrt(2.0 / a.shape[0]) * jnp.sum(a * jnp.cos(w @ x + b))


@functools.partial(jax.jit, static_argnames=("iters",))
def _newton(params, x0s, iters: int):
    f = functools.partial(_landscape, params)
    g, h = jax.grad(f), jax.hessian(f)

    def step(x, _):
        dx = jnp.linalg.solve(h(x), g(x))
        return x - jnp.clip(dx, -0.5, 0.5), None  # damped: no jumps across the box

    def one(x0):
        x, _ = jax.lax.scan(step, x0, None, length=iters)
        return x, jnp.linalg.norm(g(x)), jnp.linalg.eigvalsh(h(x))

    return jax.vmap(one)(x0s)


def landscape_critical_points(
    key, d: int, *, landscapes: int = 8, starts: int = 2048, features: int = 64, box: float = 3.0
):
    """Distinct critical points of random smooth landscapes in ``d``
    dimensions inside [-box, box]^d: f(x) = sqrt(2/K) sum_k a_k cos(w_k . x +
    b_k), w ~ N(0, I), b ~ U(0, 2 pi), a ~ N(0, 1) (a Gaussian random field
    with a squared-exponential kernel as K grows). Newton from uniform
    starts (30 damped steps, vmapped); a point counts when |grad| < 1e-6;
    duplicates (closer than 1e-3) are merged. Returns the Morse index
    (negative eigenvalues) of each distinct point."""
    d = _validate.check_count("d", d)
    indices = []
    for i in range(landscapes):
        kw, kb, ka, kx = jax.random.split(jax.random.fold_in(key, i), 4)
        params = (
            jax.random.normal(kw, (features, d)),
            jax.random.uniform(kb, (features,), maxval=2 * jnp.pi),
            jax.random.normal(ka, (features,)),
        )
        x0 = jax.random.uniform(kx, (starts, d), minval=-box, maxval=box)
        x, gnorm, eig = (np.asarray(v) for v in _newton(params, x0, 30))
        ok = (gnorm < 1e-6) & np.all(np.abs(x) <= box, axis=1) & np.all(np.abs(eig) > 1e-8, 1)
        x, eig = x[ok], eig[ok]
        keep: list[int] = []
        for j in np.argsort(x[:, 0]):  # merge duplicates (against the last 64 kept)
            near = keep[-64:]
            if not near or np.all(np.max(np.abs(x[near] - x[j]), axis=1) > 1e-3):
                keep.append(int(j))
        indices.append((eig[keep] < 0).sum(axis=1))
    return np.concatenate(indices) if indices else np.zeros(0, np.int64)


def compute(
    *,
    seed: int = 0,
    dims: int = 8,
    samples: int = 1 << 20,
    landscapes: int = 4,
    starts: int = 1024,
    progress: Callable[[int, int], None] | None = None,
) -> HighDim:
    """GOE fractions for d = 1..dims and landscape counts for d = 1..min(dims, 6)."""
    dims = _validate.check_count("dims", dims)
    if dims > 12:
        raise ValueError(
            f"dims must be at most 12 (the fraction is below 1e-15 beyond), got {dims}"
        )
    key = jax.random.key(seed)
    k_goe, k_land = jax.random.split(key)
    ld = np.arange(1, min(dims, 6) + 1)
    # one count over both stages: the GOE chunks, then one step per landscape dimension
    goe_steps = 0

    def goe_progress(done, total):
        nonlocal goe_steps
        goe_steps = total
        if progress is not None:
            progress(done, total + len(ld))

    goe = goe_minimum_fraction(k_goe, range(1, dims + 1), samples=samples, progress=goe_progress)
    crit, mins, hist = [], [], []
    for i, d in enumerate(ld):
        idx = landscape_critical_points(
            jax.random.fold_in(k_land, int(d)), int(d), landscapes=landscapes, starts=starts
        )
        if progress is not None:
            progress(goe_steps + i + 1, goe_steps + len(ld))
        crit.append(len(idx))
        mins.append(int((idx == 0).sum()))
        hist.append(np.bincount(idx, minlength=int(d) + 1).tolist())
    crit, mins = np.asarray(crit), np.asarray(mins)
    ci = np.asarray(
        [
            basins.wilson_interval(m, c) if c else (0.0, 0.0, 1.0)
            for m, c in zip(mins, crit, strict=True)
        ]
    )
    frac, lo, hi = ci[:, 0], ci[:, 1], ci[:, 2]
    land = Landscapes(ld, crit, mins, frac, lo, hi, hist)
    settings = {
        "dims": dims,
        "samples": int(goe.samples[0]),
        "landscapes": landscapes,
        "starts": starts,
    }
    return HighDim(goe, land, seed, settings)


def to_json(res: HighDim) -> dict:
    g, ls = res.goe, res.landscapes
    return {
        "goe": {
            "d": g.d.tolist(),
            "samples": g.samples.tolist(),
            "hits": g.hits.tolist(),
            "minimum_fraction": g.fraction.tolist(),
            "ci_low": g.ci_low.tolist(),
            "ci_high": g.ci_high.tolist(),
            "theta": THETA,
            "exact": {str(k): v for k, v in EXACT.items()},
        },
        "landscapes": {
            "d": ls.d.tolist(),
            "critical_points": ls.critical.tolist(),
            "minima": ls.minima.tolist(),
            "minimum_fraction": ls.fraction.tolist(),
            "ci_low": ls.ci_low.tolist(),
            "ci_high": ls.ci_high.tolist(),
            "index_counts": ls.index_counts,
        },
        "seed": res.seed,
        "settings": res.settings,
        "versions": versions(),
        "command": command_line(),
    }


def write(out: str | Path, res: HighDim) -> dict:
    """results.json, the figure and report.html into ``out``."""
    out = Path(out)
    data = to_json(res)
    write_json(out / "results.json", data)
    g, ls = res.goe, res.landscapes
    rep = Report("Lesson C in high dimensions: minima are rare")
    rep.text(
        "A critical point is a minimum only if every Hessian eigenvalue is positive. For a "
        "random symmetric Hessian (GOE) in d dimensions, the chance of that falls like "
        f"exp(-θ d²), θ = ln 3 / 4 = {THETA:.4f} (Dean and Majumdar 2006)."
    )
    rep.text(_claim(res), note=True)
    rep.figure(
        plot.high_dim.minimum_fractions(res, exact=EXACT, theta=THETA),
        "minimum_fraction",
        "The fraction of critical points that are minima against the dimension (log scale): "
        "GOE Hessians (95% Wilson intervals; a triangle is an upper bound when no sample was "
        "positive definite) and random landscapes.",
    )
    rep.heading("GOE Hessians")
    rep.table(
        ["d", "samples", "positive definite", "fraction", "95% CI", "exact"],
        [
            [int(d), int(n), int(h), f, f"[{lo:.3g}, {hi:.3g}]", EXACT.get(int(d), "")]
            for d, n, h, f, lo, hi in zip(
                g.d, g.samples, g.hits, g.fraction, g.ci_low, g.ci_high, strict=True
            )
        ],
    )
    rep.heading("Random landscapes")
    rep.text(
        f"{res.settings['landscapes']} random landscapes per dimension (64 random Fourier "
        f"features), Newton from {res.settings['starts']} starts each in [-3, 3]^d; the "
        "distinct critical points, classified by their Morse index (the number of negative "
        "Hessian eigenvalues). Minima sit low and maxima high in a random field, so its "
        "Hessians are not GOE: its minima are rare too, but less so."
    )
    rep.table(
        ["d", "critical points", "minima", "fraction", "95% CI", "count by index 0..d"],
        [
            [int(d), int(c), int(m), f, f"[{lo:.3g}, {hi:.3g}]", " ".join(map(str, h))]
            for d, c, m, f, lo, hi, h in zip(
                ls.d,
                ls.critical,
                ls.minima,
                ls.fraction,
                ls.ci_low,
                ls.ci_high,
                ls.index_counts,
                strict=True,
            )
        ],
    )
    rep.code(data["command"])
    rep.write(out)
    return data


def _claim(res: HighDim) -> str:
    g = res.goe
    first, last = 0, len(g.d) - 1
    words = (
        f"Measured: {100 * g.fraction[first]:.1f}% of GOE Hessians are positive definite at "
        f"d = {g.d[first]}, "
    )
    mid = [i for i in range(len(g.d)) if g.d[i] in (2, 4)]
    words += ", ".join(f"{100 * g.fraction[i]:.3g}% at d = {g.d[i]}" for i in mid)
    if g.hits[last]:
        words += (
            f", and {g.fraction[last]:.2g} at d = {g.d[last]} "
            f"({g.hits[last]} of {g.samples[last]:,})."
        )
    else:
        words += (
            f"; at d = {g.d[last]} none of {g.samples[last]:,} samples was positive "
            f"definite (the fraction is below {g.ci_high[last]:.2g} with 95% confidence)."
        )
    ls = res.landscapes
    if len(ls.d):
        words += (
            f" Random landscapes: {100 * ls.fraction[0]:.0f}% of critical points are minima at "
            f"d = 1, {100 * ls.fraction[-1]:.1f}% at d = {ls.d[-1]}. Lesson C's claim holds: "
            "in high dimensions almost every critical point is a saddle."
        )
    return words


def run(out: Path, *, seed: int = 0, progress=None, **options) -> dict:
    """:func:`compute`, then :func:`write`."""
    return write(out, compute(seed=seed, progress=progress, **options))


def summary(res: dict) -> str:
    g = res["goe"]
    lines = ["High dimensions: the fraction of GOE Hessians that are positive definite"]
    for d, f, lo, hi in zip(g["d"], g["minimum_fraction"], g["ci_low"], g["ci_high"], strict=True):
        lines.append(f"  d = {d}: {f:.3g} [{lo:.3g}, {hi:.3g}]")
    ls = res["landscapes"]
    lines.append(
        "  random landscapes, minima among critical points: "
        + ", ".join(f"d={d} {f:.2f}" for d, f in zip(ls["d"], ls["minimum_fraction"], strict=True))
    )
    return "\n".join(lines)
