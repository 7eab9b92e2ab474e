"""Trainability maps: which hyperparameters train and which diverge.

Sohl-Dickstein, "The boundary of neural network trainability is fractal"
(arXiv 2402.06184, 2024) trains a one-hidden-layer tanh network with full-batch
gradient descent and a separate learning rate for each of its two layers, and
colours every pixel of a (lr_0, lr_1) grid by whether training converged or
diverged; the boundary between the two is fractal. Here that is one jitted,
vmapped program over pixels (the rates are data), run in chunks sharded over
the devices; and the same map for a surface of the zoo over (lr, momentum).

The network (as in the paper's code): width w (16 in the paper, 8 in its
published notebook), mean-field parameterisation, output
``tanh(sqrt(2) X W0 / sqrt(w)) W1 / w``, weights N(0, 1), a dataset of as many
points as parameters (x ~ N(0, I_w), y ~ N(0, 1)), mean squared error. A run's
losses are normalised by the first; it *converged* when the mean of the last
20 normalised losses is below 1 (non-finite losses count as 1e6). The shade:
the sum of the normalised losses for a trainable pixel, the sum of their
inverses for a divergent one.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gdjax import _chunks, _validate, distributed, fractal
from gdjax.descent import descend_final, optimizer
from gdjax.surfaces import get as _get_surface

__all__ = [
    "Axis",
    "TrainabilityMap",
    "Window",
    "boundary_point",
    "classifier",
    "make_problem",
    "network_map",
    "surface_map",
    "uncertainty",
    "zoom_windows",
]

MAX_LOSS = 1e6


class Axis(NamedTuple):
    """One axis of a map: its name, its values (pixel centres) and whether
    they are log-spaced (then windows are in log10 units)."""

    name: str
    values: np.ndarray
    log: bool


class Window(NamedTuple):
    """A window of hyperparameter space: centre and width per axis, in
    log10 units on a log axis."""

    cx: float
    cy: float
    wx: float
    wy: float

    def axes(self, names, logs, n: int) -> tuple[Axis, Axis]:
        def one(c, w, name, log):
            v = np.linspace(c - w / 2, c + w / 2, n)
            return Axis(name, 10.0**v if log else v, log)

        return one(self.cx, self.wx, names[0], logs[0]), one(self.cy, self.wy, names[1], logs[1])


class TrainabilityMap(NamedTuple):
    """A map: ``converged`` (ny, nx) bool, ``score`` (ny, nx) the shade
    (negative: trainable, the sum of normalised losses; positive: divergent,
    the sum of their inverses), ``final_loss`` the mean of the last 20
    normalised losses (capped at 1e6), the two axes, the window, seconds;
    and ``fn``, the pixel function (x values, y values) -> (converged,
    score, final_loss) that made it, for :func:`uncertainty`."""

    x: Axis
    y: Axis
    converged: np.ndarray
    score: np.ndarray
    final_loss: np.ndarray
    window: Window
    seconds: float
    fn: Callable | None = None

    @property
    def converged_fraction(self) -> float:
        return float(self.converged.mean())

    def box_dimension(self) -> fractal.BoxDimension:
        """The box-counting dimension of the trainable / divergent boundary."""
        return fractal.box_dimension(self.converged.astype(np.int8))


NETWORK_WINDOW = Window(0.0, 0.0, 8.0, 8.0)
"""The network map's default window: lr_0 and lr_1 from 1e-4 to 1e4."""

MOMENTUM_LIMITS = (0.0, 0.99)
"""The momentum axis of a surface map stays inside these."""

SURFACE_WINDOW = Window(-2.0, 0.495, 3.0, 0.99)
"""A surface map's default window: lr from 10^-3.5 to 10^-0.5, momentum 0 to 0.99."""


# --------------------------------------------------------------------------
# The network.


class Problem(NamedTuple):
    """The network's fixed data: initial weights and the dataset."""

    w0: jax.Array
    w1: jax.Array
    x: jax.Array
    y: jax.Array


def make_problem(key, width: int = 8) -> Problem:
    """The paper's network and dataset for ``width`` hidden units."""
    width = _validate.check_count("width", width)
    k0, k1, kx, ky = jax.random.split(key, 4)
    n_params = width * width + width
    return Problem(
        jax.random.normal(k0, (width, width)),
        jax.random.normal(k1, (width, 1)),
        jax.random.normal(kx, (n_params, width)),
        jax.random.normal(ky, (n_params, 1)),
    )


def _loss(params, x, y):
    w0, w1 = params
    width = w0.shape[0]
    hidden = jnp.tanh(jnp.sqrt(2.0) * (x @ w0) / jnp.sqrt(width))
    out = (hidden @ w1) / width
    return jnp.mean(jnp.square(out - y))


def _train_one(problem: Problem, lr0, lr1, steps: int):
    """One network trained with rates (lr0, lr1): (converged, score, final)."""
    grad = jax.value_and_grad(_loss)

    def step(params, _):
        loss, (g0, g1) = grad(params, problem.x, problem.y)
        w0, w1 = params
        return (w0 - lr0 * g0, w1 - lr1 * g1), loss

    _, losses = jax.lax.scan(step, (problem.w0, problem.w1), None, length=steps)
    return _measure(losses)


def _measure(losses):
    v = jnp.where(jnp.isfinite(losses), losses, MAX_LOSS)
    v = jnp.minimum(v / v[0], MAX_LOSS)
    final = jnp.mean(v[-20:])
    converged = final < 1
    v = jnp.maximum(v, 1e-30)
    score = jnp.where(converged, -jnp.sum(v), jnp.sum(1 / v))
    return converged, score, final


@functools.partial(jax.jit, static_argnames=("steps",))
def _network_chunk(problem, lr0, lr1, steps: int):
    """One network per pixel (rates lr0[p], lr1[p]), vmapped."""
    return jax.vmap(lambda a, b: _train_one(problem, a, b, steps))(lr0, lr1)


def _run_pixels(fn, xs: np.ndarray, ys: np.ndarray, chunk: int, progress):
    """Runs ``fn(x_chunk, y_chunk)`` over flat pixel arrays through the one
    chunk loop (:func:`gdjax._chunks.run_chunks`), sharded over all devices."""
    mesh = Mesh(np.asarray(jax.devices()), ("pixels",))
    shard = NamedSharding(mesh, PartitionSpec("pixels"))
    total = xs.size
    chunk = _chunks.sharded_size(chunk, total, jax.device_count())
    outs = []

    def call(parts):
        return fn(*(distributed.put(a, shard) for a in parts))

    def collect(idx, m, out):
        outs.append([o[:m] for o in distributed.fetch(out)])
        if progress is not None:
            progress(idx.stop, total)

    _chunks.run_chunks(call, (xs, ys), chunk, collect)
    return [np.concatenate(parts) for parts in zip(*outs, strict=True)]


def _map(fn, x: Axis, y: Axis, gx, gy, window: Window, chunk: int, progress) -> TrainabilityMap:
    """Runs ``fn`` over every pixel and shapes the results as a map."""
    t0 = time.perf_counter()
    conv, score, final = _run_pixels(fn, gx, gy, chunk, progress)
    shape = (len(y.values), len(x.values))
    return TrainabilityMap(
        x,
        y,
        conv.reshape(shape),
        score.reshape(shape),
        final.reshape(shape),
        window,
        time.perf_counter() - t0,
        fn,
    )


def _grid(window: Window, names, logs, resolution: int):
    x, y = window.axes(names, logs, resolution)
    gx, gy = np.meshgrid(x.values, y.values)
    return x, y, gx.ravel(), gy.ravel()


def network_map(
    window: Window | None = None,
    *,
    resolution: int = 1024,
    steps: int = 200,
    width: int = 8,
    seed: int = 0,
    chunk: int = 1 << 14,
    progress: Callable[[int, int], None] | None = None,
) -> TrainabilityMap:
    """The network's map over (lr of layer 0, lr of layer 1), log axes
    centred at 10^cx, 10^cy (``window`` in log10 units)."""
    resolution = _validate.check_count("resolution", resolution)
    steps = _validate.check_count("steps", steps)
    if steps < 20:
        raise ValueError(f"steps must be at least 20 (the last 20 losses decide), got {steps}")
    window = NETWORK_WINDOW if window is None else window
    problem = make_problem(jax.random.key(seed), width)
    x, y, gx, gy = _grid(window, ("lr_0", "lr_1"), (True, True), resolution)
    dtype = jnp.result_type(float)

    def fn(a, b):
        return _network_chunk(problem, a.astype(dtype), b.astype(dtype), steps)

    return _map(fn, x, y, gx, gy, window, chunk, progress)


def surface_map(
    surface: str,
    window: Window | None = None,
    *,
    start=(0.0, 0.0),
    resolution: int = 256,
    steps: int = 1000,
    tol: float = 1e-3,
    chunk: int = 1 << 14,
    progress: Callable[[int, int], None] | None = None,
) -> TrainabilityMap:
    """A surface's map over (lr, momentum) from one start: gradient descent
    with heavy-ball momentum (optax.sgd); trainable = converged (|grad| <
    tol). The lr axis is log (log10 units in ``window``), momentum linear."""
    surf = _get_surface(surface)
    window = SURFACE_WINDOW if window is None else window
    resolution = _validate.check_count("resolution", resolution)
    x, y, gx, gy = _grid(window, ("lr", "momentum"), (True, False), resolution)
    if np.any(gy < 0) or np.any(gy >= 1):
        raise ValueError("the momentum axis must lie in [0, 1): adjust the window's cy and wy")
    x0 = jnp.asarray(start, jnp.result_type(float))
    f0 = float(surf.fn(x0))

    def fn(a, b):
        # a perturbed point of the uncertainty exponent can step past the
        # momentum axis's limits (below 0 near its edge): it is read there
        b = jnp.clip(b, *MOMENTUM_LIMITS).astype(b.dtype)
        fin = descend_final(
            surf, x0, steps=steps, lr=a, rule=optimizer(optax.sgd, momentum=b), tol=tol
        )
        final = jnp.where(jnp.isfinite(fin.loss), fin.loss, MAX_LOSS)
        scale = max(abs(f0), 1.0)
        return (
            fin.converged,
            jnp.where(fin.converged, -final / scale, fin.diverged.astype(final.dtype)),
            final,
        )

    return _map(fn, x, y, gx, gy, window, chunk, progress)


def classifier(tmap: TrainabilityMap, chunk: int = 1 << 14) -> Callable[[np.ndarray], np.ndarray]:
    """Points of a map's window, (m, 2) in window units (log10 on a log
    axis), -> 1 where training converges, 0 where it does not: the map's
    own pixel function, run in chunks sharded like the map's (``chunk``
    points each: pass arrays of that length to avoid padding). At the pixel
    centres it gives the map."""
    if tmap.fn is None:
        raise ValueError("this map has no pixel function: make it with network_map or surface_map")
    logs = (tmap.x.log, tmap.y.log)

    def classify(points):
        p = np.asarray(points, np.float64)
        a, b = (10.0 ** p[:, k] if logs[k] else p[:, k] for k in (0, 1))
        converged, _, _ = _run_pixels(tmap.fn, a, b, chunk, None)
        return converged.astype(np.int32)

    return classify


def uncertainty(
    tmap: TrainabilityMap,
    *,
    key: jax.Array,
    n: int = 1 << 12,
    eps=None,
    chunk: int = 1 << 14,
    progress: Callable[[int, int], None] | None = None,
) -> fractal.Uncertainty:
    """The uncertainty exponent of a map's boundary
    (:func:`gdjax.fractal.uncertainty_exponent` of :func:`classifier`):
    trainings re-run from ``n`` random points of its window per
    perturbation size and from their perturbations, in window units. Its
    dimension 2 - alpha does not read pixels: the default sizes reach 1e-6
    of the window, far below one pixel.

    Args:
        tmap: a map from :func:`network_map` or :func:`surface_map`.
        key: a ``jax.random.key`` for the points and directions.
        n, eps, chunk, progress: as in
            :func:`gdjax.fractal.uncertainty_exponent` (``progress`` gets
            trainings done, trainings).
    """
    classify = classifier(tmap, chunk)
    w = tmap.window
    dom = ((w.cx - w.wx / 2, w.cx + w.wx / 2), (w.cy - w.wy / 2, w.cy + w.wy / 2))
    return fractal.uncertainty_exponent(
        classify, dom, key=key, n=n, eps=eps, chunk=chunk, progress=progress
    )


def boundary_point(tmap: TrainabilityMap) -> tuple[float, float]:
    """The boundary point where the boundary is most intricate: the boundary
    pixel with the most boundary pixels within 1/16 of the map around it
    (where two boundaries meet and the structure is richest), in window
    units (log10 on a log axis)."""
    b = fractal.boundary(tmap.converged.astype(np.int8))
    if not b.any():
        raise ValueError("this map has no boundary to zoom into")
    ny, nx = b.shape
    r = max(1, min(ny, nx) // 32)
    c = np.pad(b.astype(np.int64), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    iy, ix = np.nonzero(b)
    y0, y1 = np.maximum(iy - r, 0), np.minimum(iy + r + 1, ny)
    x0, x1 = np.maximum(ix - r, 0), np.minimum(ix + r + 1, nx)
    density = c[y1, x1] - c[y0, x1] - c[y1, x0] + c[y0, x0]
    k = int(np.argmax(density))

    def coord(axis, i):
        v = axis.values[i]
        return math.log10(v) if axis.log else float(v)

    return coord(tmap.x, ix[k]), coord(tmap.y, iy[k])


def zoom_windows(
    window: Window, centre, levels: int = 4, factor: float = 8.0, y_limits=None
) -> list[Window]:
    """``levels`` windows, each ``factor`` times narrower, centred on
    ``centre``; with ``y_limits`` (lo, hi), each window is shifted (and
    narrowed if it must) to keep its y axis inside them (momentum < 1)."""
    cx, cy = centre
    out = []
    for k in range(levels):
        wx, wy, y = window.wx / factor**k, window.wy / factor**k, cy
        if y_limits is not None:
            lo, hi = y_limits
            wy = min(wy, hi - lo)
            y = min(max(cy, lo + wy / 2), hi - wy / 2)
        out.append(Window(cx, y, wx, wy))
    return out
