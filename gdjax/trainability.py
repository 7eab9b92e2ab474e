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
    "box_dimension_se",
    "check_width",
    "classifier",
    "make_problem",
    "network_map",
    "surface_map",
    "pixel_resolution",
    "uncertainty",
    "unresolved",
    "with_error",
    "zoom_window",
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
# Resolution: pixels the working precision tells apart.


def _working_dtype() -> np.dtype:
    """The precision maps are computed in: float64 under ``jax.enable_x64``,
    else float32."""
    return np.dtype(jnp.result_type(float))


def pixel_resolution(log: bool, extent: float, dtype=None) -> float:
    """The smallest pixel step, in axis units (log10 units on a log axis),
    that ``dtype`` (default: float64 under ``jax.enable_x64``, else float32) resolves on an axis
    whose coordinates reach ``extent`` in absolute value: two float
    spacings, so that the rounded values of adjacent pixels differ and are
    near evenly spaced. A rate 10^v is held to a relative spacing of the
    dtype's epsilon, and its log10 coordinate v (float64) to one float64
    spacing of ``extent``; a linear value to one spacing of ``extent``."""
    dtype = _working_dtype() if dtype is None else np.dtype(dtype)
    extent = abs(float(extent))
    coord = float(np.spacing(np.float64(extent)))
    if log:
        return 2 * max(float(np.finfo(dtype).eps) / math.log(10), coord)
    return 2 * max(float(np.spacing(np.asarray(extent, dtype))), coord)


def unresolved(
    window: Window, logs, resolution: int, dtype=None, extent=None
) -> tuple[int, float, float] | None:
    """None when ``resolution`` pixels per side of ``window`` are resolved
    in ``dtype`` (:func:`pixel_resolution`); else (axis 0 or 1, the pixel
    step, the smallest step resolved there) for the first axis that is not.
    ``extent`` (|cx|, |cy| bounds) stands for the window's own largest
    coordinates where its centre is not known yet (a zoom: those of the map
    it will be taken from)."""
    steps = (window.wx / max(resolution - 1, 1), window.wy / max(resolution - 1, 1))
    if extent is None:
        extent = (abs(window.cx) + window.wx / 2, abs(window.cy) + window.wy / 2)
    for k in (0, 1):
        res = pixel_resolution(logs[k], extent[k], dtype)
        if not steps[k] >= res:
            return k, steps[k], res
    return None


def _check_resolved(window: Window, names, logs, resolution: int) -> None:
    bad = unresolved(window, logs, resolution)
    if bad is not None:
        k, step, res = bad
        unit = " decades" if logs[k] else ""
        raise ValueError(
            f"the window's {resolution} pixels per side are {step:.2g}{unit} apart on "
            f"{names[k]}, below what {_working_dtype().name} resolves there "
            f"({res:.2g}{unit}): their values would not be distinct"
        )


# --------------------------------------------------------------------------
# The network.


class Problem(NamedTuple):
    """The network's fixed data: initial weights and the dataset."""

    w0: jax.Array
    w1: jax.Array
    x: jax.Array
    y: jax.Array


_MAX_WIDTH = 64
"""The widest network a map trains: each pixel trains its own w^2 + w weights
on (w^2 + w) x w data, so one step costs about w^4 per pixel (the paper's
figures use 16; 64 already costs 256 times a width-16 map)."""


def check_width(width) -> int:
    """``width`` as a count in 1..:data:`_MAX_WIDTH`; raises ValueError naming
    ``--width`` otherwise."""
    width = _validate.check_count("width", width)
    if width > _MAX_WIDTH:
        raise ValueError(
            f"--width {width:,}: at most {_MAX_WIDTH} hidden units (each pixel trains its own "
            f"{width:,}^2 weights on {width:,}^3 numbers of data; the paper uses 16)"
        )
    return width


def make_problem(key, width: int = 8) -> Problem:
    """The paper's network and dataset for ``width`` hidden units, drawn in
    float32 and held in the working precision (float64 under
    ``jax.enable_x64``): a float64 map trains the same network as a float32
    one, only computed more precisely."""
    width = check_width(width)
    k0, k1, kx, ky = jax.random.split(key, 4)
    n_params = width * width + width
    dtype = _working_dtype()

    def normal(k, shape):
        return jax.random.normal(k, shape, jnp.float32).astype(dtype)

    return Problem(
        normal(k0, (width, width)),
        normal(k1, (width, 1)),
        normal(kx, (n_params, width)),
        normal(ky, (n_params, 1)),
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


def _run_pixels(fn, xs: np.ndarray, ys: np.ndarray, chunk_size: int, progress):
    """Runs ``fn(x_chunk, y_chunk)`` over flat pixel arrays through the one
    chunk loop (:func:`gdjax._chunks.run_chunks`), sharded over all devices."""
    mesh = Mesh(np.asarray(jax.devices()), ("pixels",))
    shard = NamedSharding(mesh, PartitionSpec("pixels"))
    total = xs.size
    chunk = _chunks.sharded_size(chunk_size, total, jax.device_count())
    outs = []

    def call(parts):
        return fn(*(distributed.put(a, shard) for a in parts))

    def collect(idx, m, out):
        outs.append([o[:m] for o in distributed.fetch(out)])
        if progress is not None:
            progress(idx.stop, total)

    _chunks.run_chunks(call, (xs, ys), chunk, collect)
    return [np.concatenate(parts) for parts in zip(*outs, strict=True)]


def _map(
    fn, x: Axis, y: Axis, gx, gy, window: Window, chunk_size: int, progress
) -> TrainabilityMap:
    """Runs ``fn`` over every pixel and shapes the results as a map."""
    t0 = time.perf_counter()
    conv, score, final = _run_pixels(fn, gx, gy, chunk_size, progress)
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
    chunk_size: int = 1 << 14,
    progress: Callable[[int, int], None] | None = None,
) -> TrainabilityMap:
    """The network's map over (lr of layer 0, lr of layer 1), log axes
    centred at 10^cx, 10^cy (``window`` in log10 units), computed in the
    working precision (float64 under ``jax.enable_x64``, else float32; its pixel function ``fn``
    too, so call :func:`uncertainty` under the same ``jax.enable_x64``).
    A window whose pixels that precision does not tell apart
    (:func:`unresolved`) is refused."""
    resolution = _validate.check_count("resolution", resolution)
    steps = _validate.check_count("steps", steps)
    if steps < 20:
        raise ValueError(f"steps must be at least 20 (the last 20 losses decide), got {steps}")
    window = NETWORK_WINDOW if window is None else window
    _check_resolved(window, ("lr_0", "lr_1"), (True, True), resolution)
    problem = make_problem(jax.random.key(seed), width)
    x, y, gx, gy = _grid(window, ("lr_0", "lr_1"), (True, True), resolution)
    dtype = _working_dtype()

    def fn(a, b):
        return _network_chunk(problem, a.astype(dtype), b.astype(dtype), steps)

    return _map(fn, x, y, gx, gy, window, chunk_size, progress)


def surface_map(
    surface: str,
    window: Window | None = None,
    *,
    start=(0.0, 0.0),
    resolution: int = 256,
    steps: int = 1000,
    tol: float = 1e-3,
    chunk_size: int = 1 << 14,
    progress: Callable[[int, int], None] | None = None,
) -> TrainabilityMap:
    """A surface's map over (lr, momentum) from one start: gradient descent
    with heavy-ball momentum (optax.sgd); trainable = converged (|grad| <
    tol). The lr axis is log (log10 units in ``window``), momentum linear;
    precision and resolution as in :func:`network_map`."""
    surf = _get_surface(surface)
    window = SURFACE_WINDOW if window is None else window
    resolution = _validate.check_count("resolution", resolution)
    _check_resolved(window, ("lr", "momentum"), (True, False), resolution)
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

    return _map(fn, x, y, gx, gy, window, chunk_size, progress)


def classifier(
    tmap: TrainabilityMap, chunk_size: int = 1 << 14
) -> Callable[[np.ndarray], np.ndarray]:
    """Points of a map's window, (m, 2) in window units (log10 on a log
    axis), -> 1 where training converges, 0 where it does not: the map's
    own pixel function, run in chunks sharded like the map's (``chunk_size``
    points each: pass arrays of that length to avoid padding). At the pixel
    centres it gives the map."""
    if tmap.fn is None:
        raise ValueError("this map has no pixel function: make it with network_map or surface_map")
    logs = (tmap.x.log, tmap.y.log)

    def classify(points):
        p = np.asarray(points, np.float64)
        a, b = (10.0 ** p[:, k] if logs[k] else p[:, k] for k in (0, 1))
        converged, _, _ = _run_pixels(tmap.fn, a, b, chunk_size, None)
        return converged.astype(np.int32)

    return classify


def uncertainty(
    tmap: TrainabilityMap,
    *,
    key: jax.Array,
    n: int = 1 << 12,
    eps=None,
    chunk_size: int = 1 << 14,
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
        n, eps, chunk_size, progress: as in
            :func:`gdjax.fractal.uncertainty_exponent` (``progress`` gets
            trainings done, trainings).
    """
    classify = classifier(tmap, chunk_size)
    w = tmap.window
    dom = ((w.cx - w.wx / 2, w.cx + w.wx / 2), (w.cy - w.wy / 2, w.cy + w.wy / 2))
    return fractal.uncertainty_exponent(
        classify, dom, key=key, n=n, eps=eps, chunk_size=chunk_size, progress=progress
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


def zoom_window(parent: Window, centre, factor: float = 8.0, y_limits=None) -> Window:
    """A window ``factor`` times narrower than ``parent``, centred on
    ``centre`` and shifted where it must be to lie inside ``parent`` (so
    its outline on the parent's map is whole); with ``y_limits`` (lo, hi)
    its y axis also stays inside them (momentum < 1), narrowed if it must."""
    if not factor > 1:
        raise ValueError(f"factor must be > 1 (a zoom is narrower), got {factor}")
    wx, wy = parent.wx / factor, parent.wy / factor
    lo_y, hi_y = parent.cy - parent.wy / 2, parent.cy + parent.wy / 2
    if y_limits is not None:
        lo_y, hi_y = max(lo_y, y_limits[0]), min(hi_y, y_limits[1])
        wy = min(wy, hi_y - lo_y)

    def inside(c, w, lo, hi):
        return min(max(c, lo + w / 2), hi - w / 2)

    cx, cy = centre
    return Window(
        inside(cx, wx, parent.cx - parent.wx / 2, parent.cx + parent.wx / 2),
        inside(cy, wy, lo_y, hi_y),
        wx,
        wy,
    )


def zoom_windows(
    window: Window, centre, levels: int = 4, factor: float = 8.0, y_limits=None
) -> list[Window]:
    """``levels`` nested windows centred on ``centre``: the first ``factor``
    times narrower than ``window``, each next ``factor`` times narrower than
    the one before, each inside the one before (:func:`zoom_window`)."""
    out, parent = [], window
    for _ in range(levels):
        parent = zoom_window(parent, centre, factor, y_limits)
        out.append(parent)
    return out


def box_dimension_se(box: fractal.BoxDimension) -> float:
    """The standard error of a box-counting dimension: of the slope of the
    least-squares line through (log size, log count), from its residuals
    (nan with fewer than three sizes or without a boundary)."""
    x = np.log(np.asarray(box.sizes, np.float64))
    counts = np.asarray(box.counts, np.float64)
    if x.size < 3 or not np.isfinite(box.dimension) or np.any(counts <= 0):
        return math.nan
    y = np.log(counts)
    resid = y - (box.intercept - box.dimension * x)
    sxx = float(np.sum((x - x.mean()) ** 2))
    return float(math.sqrt(float(np.sum(resid**2)) / (x.size - 2) / sxx))


def with_error(value: float, se: float) -> str:
    """``value ± se`` with no more digits than the error supports: the
    error to one significant digit (two when it starts with 1), the value to
    the same decimal place; ``value`` to 2 decimals when ``se`` is not
    finite (no error known), and with 3 significant digits, marked exact,
    when the error is 0."""
    if not math.isfinite(value):
        return "-"
    if not math.isfinite(se) or se < 0:
        return f"{value:.2f}"
    if se == 0:
        return f"{value:.3g} (the points lie on the line: no error from the fit)"
    lead = math.floor(math.log10(se))
    digits = 2 if round(se / 10**lead, 6) < 2 else 1
    places = max(0, digits - 1 - lead)
    scale = 10.0 ** (lead - digits + 1)
    se_r = round(se / scale) * scale
    if digits == 1 and se_r >= 10.0 ** (lead + 1) * (1 - 1e-9):  # 0.0096 -> 0.01
        places = max(0, places - 1)
    return f"{value:.{places}f} ± {se_r:.{places}f}"
