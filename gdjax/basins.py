"""Basins of attraction: which minimum gradient descent reaches from each start.

``map_basins`` descends from a regular grid over a 2D surface's domain (for
maps) or from N uniform random starts (for fractions) in one jitted, vmapped
program, chunked (memory does not grow with the number of starts or steps:
each start keeps only its final point and convergence step) and sharded over
all devices. It then discovers the minima without being told them
(clustering the converged end points, refining them with Newton's method and
classifying them by the eigenvalues of ``jax.hessian``), labels every start,
and computes basin fractions with 95% Wilson intervals.

Labels: ``i >= 0`` the index of the minimum reached (minima sorted by value,
so 0 is the lowest found), ``NOT_CONVERGED`` (-1: gradient norm still above
``tol`` at the last step) and ``DIVERGED`` (-2: non-finite, or beyond
``bound``). Never a NaN.

``critical_points`` finds every critical point in the domain (minima,
saddles, maxima) by Newton's method on the gradient from a grid of starts.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, ArrayLike

from gdjax import _engine, _validate, distributed
from gdjax.descent import DEFAULT_BOUND, describe_rule
from gdjax.surfaces import Surface
from gdjax.surfaces import get as _get_surface

__all__ = [
    "DIVERGED",
    "MAX_DEVICE_MINIMA",
    "NOT_CONVERGED",
    "BasinConfig",
    "BasinMap",
    "CriticalPoint",
    "Ends",
    "Estimate",
    "Fractions",
    "Labelled",
    "Timing",
    "available_memory",
    "best_of_k",
    "check_memory",
    "critical_points",
    "discover_minima",
    "global_minima",
    "grid_starts",
    "label_ends",
    "make_runner",
    "make_starts",
    "map_basins",
    "memory_needed",
    "simulate_best_of_k",
    "summarise",
    "use_all_cores",
    "wilson_interval",
]

NOT_CONVERGED = -1
DIVERGED = -2

_COMPILED: dict = {}  # ahead-of-time compiled programs, by static settings and shape


@dataclasses.dataclass(frozen=True)
class CriticalPoint:
    """A critical point: location, value, Hessian eigenvalues and kind
    ("min", "saddle" or "max")."""

    location: tuple[float, ...]
    value: float
    eigenvalues: tuple[float, ...]
    kind: str

    def to_json(self) -> dict:
        return {
            "location": list(self.location),
            "value": self.value,
            "eigenvalues": list(self.eigenvalues),
            "kind": self.kind,
        }


class Estimate(NamedTuple):
    """A fraction and its 95% Wilson interval (floats, or arrays over a batch
    of hyperparameters)."""

    fraction: Any
    ci_low: Any
    ci_high: Any


@dataclasses.dataclass(frozen=True)
class Fractions(Mapping):
    """Basin fractions: outcome -> :class:`Estimate`.

    Outcomes: ``"diverged"``, ``"not_converged"``, then the minima's indices
    as strings (``"0"`` is the lowest). ``fraction``, ``ci_low`` and
    ``ci_high`` hold every outcome on the last axis (after the batch axes of a
    map over several hyperparameter sets).
    """

    outcomes: tuple[str, ...]
    fraction: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray

    def __getitem__(self, outcome: str) -> Estimate:
        try:
            i = self.outcomes.index(outcome)
        except ValueError:
            raise KeyError(outcome) from None
        parts = (self.fraction[..., i], self.ci_low[..., i], self.ci_high[..., i])
        if self.fraction.ndim == 1:
            return Estimate(*(float(v) for v in parts))
        return Estimate(*parts)

    def __iter__(self):
        return iter(self.outcomes)

    def __len__(self) -> int:
        return len(self.outcomes)

    def to_json(self) -> dict:
        """``{outcome: {"fraction", "ci_low", "ci_high"}}`` (lists over a batch)."""
        return {
            k: dict(zip(Estimate._fields, map(_plain, v), strict=True)) for k, v in self.items()
        }


def _plain(v):
    return v.tolist() if isinstance(v, np.ndarray) else v


@dataclasses.dataclass(frozen=True)
class BasinMap:
    """The outcome of :func:`map_basins`.

    Attributes:
        surface: the Surface.
        domain: the box the starts were drawn from.
        starts: (N, 2) starts (for a grid: row-major, y slowest).
        grid: (ny, nx) for a grid run, None for random starts.
        labels: (*batch, N) int32 labels (see module docstring).
        converged_step: (*batch, N) first checked step from which |grad| < tol
            held (a multiple of check_every, or steps); -1 if not converged.
        final: (*batch, N, 2) end points; None when the runs were labelled
            on the device (``map_basins(label_on="device")``).
        minima: discovered minima, sorted by value; one set for the whole
            batch, so a minimum keeps its index across hyperparameters.
        fractions: :class:`Fractions` (a mapping outcome -> Estimate).
        config: the run's settings (:class:`BasinConfig`).
        timing: :class:`Timing`.
        global_minima: indices of the minima that count as global: those whose
            value is within ``global_tol`` (relative to max(1, |f_min|)) of the
            lowest found, so tied minima (Himmelblau's four) are all global.
        p_global: :class:`Estimate` of the fraction of starts that reach any
            global minimum (95% Wilson interval).
        batch: the shape of the batch of hyperparameter sets (``()`` for one).
        hyperparameters: the batched values by name (``lr``, and an
            optimizer's float settings), each of shape ``batch``.
        rule: the rule as given to :func:`map_basins`.
    """

    surface: Surface
    domain: tuple[tuple[float, float], ...]
    starts: np.ndarray
    grid: tuple[int, int] | None
    labels: np.ndarray
    converged_step: np.ndarray
    final: np.ndarray | None
    minima: tuple[CriticalPoint, ...]
    fractions: Fractions
    config: BasinConfig
    timing: Timing
    global_minima: tuple[int, ...] = ()
    p_global: Estimate = Estimate(0.0, 0.0, 0.0)
    batch: tuple[int, ...] = ()
    hyperparameters: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    rule: Any = dataclasses.field(default="fixed", repr=False)

    def label_grid(self) -> np.ndarray:
        """Labels as an image (*batch, ny, nx), for grid runs."""
        if self.grid is None:
            raise ValueError("this map was computed from random starts, not a grid")
        return self.labels.reshape(self.batch + self.grid)

    def at(self, *index: int) -> BasinMap:
        """The map of one hyperparameter set of a batch (same minima)."""
        if len(index) != len(self.batch):
            raise ValueError(
                f"this map's batch has shape {self.batch}: give {len(self.batch)} indices"
            )
        labels = self.labels[index]
        values = {k: float(v[index]) for k, v in self.hyperparameters.items()}
        values.pop("lr", None)
        # the rate as the caller gave it (the hyperparameters hold it in the map's dtype)
        lr = self.config.lr
        if np.ndim(lr):
            lr = float(np.broadcast_to(np.asarray(lr, np.float64), self.batch)[index])
        rule = self.rule
        if isinstance(rule, _engine.OptaxFactory):  # its settings at this index
            rule = _engine.OptaxFactory(
                rule.factory, tuple(sorted({**dict(rule.kwargs), **values}.items()))
            )
        fr = Fractions(
            self.fractions.outcomes,
            *(
                a[index]
                for a in (self.fractions.fraction, self.fractions.ci_low, self.fractions.ci_high)
            ),
        )
        return dataclasses.replace(
            self,
            labels=labels,
            converged_step=self.converged_step[index],
            final=None if self.final is None else self.final[index],
            fractions=fr,
            p_global=Estimate(*(float(np.asarray(v)[index]) for v in self.p_global)),
            batch=(),
            hyperparameters={k: v[index] for k, v in self.hyperparameters.items()},
            rule=rule,
            config=dataclasses.replace(self.config, lr=lr, rule=describe_rule(rule, lr), batch=[]),
        )


def use_all_cores() -> bool:
    """Splits the CPU into one XLA device per core, so :func:`map_basins`
    shards its starts over every core (on 2 cores: about 1.2x over one
    device, which XLA only partly parallelises).

    Call it right after ``import gdjax``, before any JAX computation. It does
    nothing (and returns False) once JAX has started, on one core, or when the
    device count was already chosen (``jax_num_cpu_devices`` or
    ``--xla_force_host_platform_device_count`` in ``XLA_FLAGS``). Accelerator
    platforms are unaffected. Returns True when it split the CPU.
    """
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return False
    if jax.config.jax_num_cpu_devices != -1:
        return False
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    if cores <= 1:
        return False
    try:
        jax.config.update("jax_num_cpu_devices", cores)
    except RuntimeError:  # JAX has already started: too late
        return False
    return True


# --------------------------------------------------------------------------
# Statistics.


def wilson_interval(successes: ArrayLike, n: int, z: float = 1.959964) -> tuple:
    """95% Wilson score interval for a binomial proportion (vectorised)."""
    if n <= 0:
        raise ValueError("n must be > 0")
    p = np.asarray(successes, dtype=np.float64) / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return p, np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def best_of_k(p_global: float, ks: ArrayLike) -> np.ndarray:
    """Probability that the best of k independent random restarts reaches a
    global minimum, ``1 - (1 - p)^k`` (lesson C's argument for restarts);
    ``p_global`` is the fraction of starts that reach any global minimum
    (:attr:`BasinMap.p_global`)."""
    return 1.0 - (1.0 - float(p_global)) ** np.asarray(ks, dtype=np.float64)


def global_minima(minima: tuple[CriticalPoint, ...], tol: float = 1e-6) -> tuple[int, ...]:
    """Indices of the minima whose value is within ``tol * max(1, |f_min|)`` of
    the lowest (``minima`` sorted by value, as :func:`map_basins` returns them)."""
    if not minima:
        return ()
    lowest = min(m.value for m in minima)
    slack = tol * max(1.0, abs(lowest))
    return tuple(i for i, m in enumerate(minima) if m.value - lowest <= slack)


def simulate_best_of_k(
    labels: np.ndarray, ks: ArrayLike, *, key, trials: int = 2000, targets=(0,)
) -> np.ndarray:
    """Checks :func:`best_of_k` by simulation: draws k restarts (with
    replacement) from the observed labels and counts how often one of them
    has a label in ``targets`` (the global minima's indices)."""
    hit = jnp.isin(jnp.asarray(labels), jnp.asarray(targets, jnp.int32))
    out = []
    for k in np.asarray(ks):
        key, sub = jax.random.split(key)
        idx = jax.random.randint(sub, (trials, int(k)), 0, hit.shape[0])
        out.append(float(jnp.mean(jnp.any(hit[idx], axis=1))))
    return np.asarray(out)


# --------------------------------------------------------------------------
# Memory.

_BASE_BYTES = 600 << 20  # JAX, the compiled programs and one chunk in flight


def memory_needed(n_starts: int, dtype=np.float32, extra_per_start: int = 0) -> int:
    """Bytes a map of ``n_starts`` needs on the host (an estimate with some
    margin): starts, end points, flags and labels of every start, and the
    labelling's temporaries, plus a fixed amount for JAX and a chunk in flight;
    ``extra_per_start`` for what the caller keeps per start (figures).
    Measured peak RSS in float32: 1.27 GiB for a 4096^2 map (estimate 1.7 GiB);
    with ``gdjax basins``' figures 0.97 GiB at 2048^2 and 2.2 GiB at 4096^2
    (0.56 GiB + 105 bytes per start; its estimate adds 96 bytes per start)."""
    per_start = 8 * np.dtype(dtype).itemsize + 40 + extra_per_start
    return _BASE_BYTES + n_starts * per_start


def available_memory() -> int | None:
    """Bytes of memory available now (Linux's MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(n_starts: int, dtype=np.float32, extra_per_start: int = 0) -> None:
    """Refuses, before any compute, a map that cannot fit in memory.

    Raises:
        ValueError: with the estimate and the memory available. A map keeps
            every start's end point on the host, so it does not run in pieces:
            use fewer starts (fractions need far fewer than a map: their 95%
            interval is about 1/sqrt(N) wide).
    """
    need = memory_needed(n_starts, dtype, extra_per_start)
    have = available_memory()
    if have is not None and need > have:
        per_start = memory_needed(1, dtype, extra_per_start) - _BASE_BYTES
        largest = max(1, math.isqrt(max(0, have - _BASE_BYTES) // per_start))
        raise ValueError(
            f"{n_starts:,} starts need about {need / 2**30:.1f} GiB of memory, and "
            f"{have / 2**30:.1f} GiB is available; use fewer starts (a grid of "
            f"{largest:,}^2 fits)"
        )


# --------------------------------------------------------------------------
# The batched descent: the engine's two drivers over (hyperparameters x starts).


def _one(fn, method, steps, unroll, every, blocked):
    def one(x0, h):
        if blocked:  # the fast path: plain updates, checked every ``every`` steps
            return _engine.run_blocked(fn, method, h, x0, steps, every, unroll)
        # the engine's stepper (optax rules; and the runs that met a non-finite
        # value, which end at their last finite point, as in gdjax.descend)
        stepper = _engine.Stepper(fn, method)
        rate0 = _engine.rates(method, h, 0, 1, x0.dtype)[0]
        state = stepper.init(h, x0, None, rate0)
        end, _ = stepper.scan(h, state, 0, steps, None, False, unroll)
        fin = stepper.end(end, steps)
        return fin.params, fin.diverged, fin.converged, fin.converged_step, ~end.stopped

    return one


@functools.partial(
    jax.jit, static_argnames=("fn", "method", "steps", "unroll", "every", "blocked", "paired")
)
def _descend_chunk(fn, method, steps, unroll, every, blocked, paired, starts, h):
    """Outputs (final, diverged, converged, converged_step, finite), axes
    (hyperparameter set, start); ``paired``: start i with set i, axis (pair,)."""
    one = _one(fn, method, steps, unroll, every, blocked)
    if paired:
        return jax.vmap(one)(starts, h)
    over_starts = jax.vmap(one, in_axes=(0, None))
    if jax.tree.leaves(h)[0].shape[0] == 1:
        # one set: no batch axis inside the program (a size-1 axis measured
        # slower on the CPU)
        out = over_starts(starts, jax.tree.map(lambda a: a[0], h))
        return jax.tree.map(lambda a: a[None], out)
    return jax.vmap(over_starts, in_axes=(None, 0))(starts, h)


MAX_DEVICE_MINIMA = 120
"""Minima the device labels against (int8 labels); runs near minima found
beyond these are labelled on the host, as orphans are."""


@functools.partial(
    jax.jit, static_argnames=("fn", "method", "steps", "unroll", "every", "blocked", "paired")
)
def _descend_label_chunk(
    fn, method, steps, unroll, every, blocked, paired, starts, h, minima, n_minima, tol2
):
    """:func:`_descend_chunk`, then every run labelled on the device against
    the first ``n_minima`` rows of ``minima`` (as :func:`_label` does on the
    host). Outputs what the host needs, small: labels (int8),
    converged_step (int16 below 32767 steps), and two counts: runs that
    converged where no known minimum is (orphans) and runs that met a
    non-finite value; the end points and flags stay on the device, fetched
    only for a chunk that has either."""
    final, diverged, converged, conv_step, finite = _descend_chunk(
        fn, method, steps, unroll, every, blocked, paired, starts, h
    )
    x, y = final[..., 0], final[..., 1]
    best = jnp.full(x.shape, jnp.inf, final.dtype)
    nearest = jnp.zeros(x.shape, jnp.int32)

    def body(i, carry):
        best, nearest = carry
        d2 = jnp.square(x - minima[i, 0]) + jnp.square(y - minima[i, 1])
        closer = (d2 < best) & (i < n_minima)
        return jnp.where(closer, d2, best), jnp.where(closer, i, nearest)

    best, nearest = jax.lax.fori_loop(0, minima.shape[0], body, (best, nearest))
    claimed = converged & (best < tol2)
    labels = jnp.where(claimed, nearest, NOT_CONVERGED)
    labels = jnp.where(diverged, DIVERGED, labels).astype(jnp.int8)
    orphans = jnp.sum(converged & ~diverged & ~claimed)
    step_type = jnp.int16 if steps < np.iinfo(np.int16).max else jnp.int32
    small = (labels, conv_step.astype(step_type), orphans, jnp.sum(~finite))
    return small, (final, diverged, converged, finite)


def grid_starts(domain, n: int, dtype=np.float32) -> np.ndarray:
    """An n x n grid of cell centres over a 2D box, row-major (y slowest)."""
    (x0, x1), (y0, y1) = domain
    xs = x0 + (np.arange(n) + 0.5) * (x1 - x0) / n
    ys = y0 + (np.arange(n) + 0.5) * (y1 - y0) / n
    X, Y = np.meshgrid(xs.astype(dtype), ys.astype(dtype))
    return np.stack([X.ravel(), Y.ravel()], axis=-1)


def map_basins(
    surface: str | Surface,
    *,
    grid: int | None = None,
    starts: int | None = None,
    key: Array | None = None,
    steps: int = 1000,
    lr: float | None = 0.01,
    rule="fixed",
    tol: float = 1e-3,
    domain=None,
    bound: float | None = None,
    global_tol: float = 1e-6,
    chunk_size: int | None = None,
    devices: int | None = None,
    unroll: int = 10,
    check_every: int = 10,
    progress: Callable[[int, int, float], None] | None = None,
    label_on: str = "auto",
) -> BasinMap:
    """Maps the basins of attraction of a 2D surface.

    Args:
        surface: a name or a Surface (2D).
        grid: n for an n x n grid of starts over the domain (for maps), or
        starts: N uniform random starts (for fractions); needs ``key``.
        key: a ``jax.random.key`` for random starts.
        steps, lr, rule: as in :func:`gdjax.descend`. Hyperparameters are
            data: an array of rates (``lr=np.geomspace(1e-3, 0.2, 64)``), or
            an optimizer's array settings (``rule=gdjax.optimizer(optax.sgd,
            momentum=[0.0, 0.9])``, broadcast with ``lr``), is a batch of
            maps computed as one program; the result's arrays get the batch's
            leading axes, and the minima are found once for the whole batch
            (a minimum keeps its index across rates).
        tol: converged means |grad| < tol at the last step.
        domain: ((x0, x1), (y0, y1)); the surface's own by default.
        bound: a run that ends with a coordinate beyond this and has not
            settled (|grad| >= tol) counts as diverged, as does one that met a
            non-finite value (default 1e10, as :func:`gdjax.descend`). A run
            that settles is never diverged, however far it went. Every path
            (the fast one for named rules and schedules, the engine's for
            optax rules) ends a diverged run at its last finite point, like
            :func:`gdjax.descend`.
        global_tol: minima within ``global_tol * max(1, |f_min|)`` of the
            lowest value count as global (see :func:`global_minima`).
        chunk_size: the most descents per compiled call (the starts are cut
            into equal chunks no larger, rounded up to the device count);
            default 2^18 on a CPU (about 0.5 s per chunk at 1000 steps on 2
            cores), 2^22 on an accelerator (fewer calls, fewer kernel launches).
            Labels do not depend on it.
        devices: how many devices to shard each chunk over (default: all).
        unroll: ``lax.scan`` unrolling (speed only).
        check_every: the gradient norm is checked every this many steps (and
            at the last step), so ``converged_step`` is a multiple of it (or
            ``steps``); 1 is exact but measured 1.7x slower on CPU. Optax rules
            always check every step.
        progress: called with (done, total, seconds): once with done = 0 when
            the descent starts (after compiling), then after each chunk.
        label_on: where the runs are labelled. ``"host"``: every end point
            comes back (``BasinMap.final``), then minima are found and runs
            labelled. ``"device"``: each chunk is labelled by the device
            against the minima known so far, and only its labels (1 byte a
            run) and convergence steps (2 bytes) come back; the end points
            of a chunk come back only when some of its runs converged where
            no known minimum is (the first chunk, or a minimum not seen yet)
            or met a non-finite value. Chunks are strided over the starts,
            so the first one samples the whole domain. The labels equal the
            host's; ``BasinMap.final`` is None. ``"auto"`` (default): the
            device on an accelerator, the host on a CPU.

    Returns:
        A :class:`BasinMap`.
    """
    surface = _get_surface(surface)
    if surface.dim != 2:
        raise ValueError(f"map_basins needs a 2D surface; {surface.name!r} is {surface.dim}D")
    if (grid is None) == (starts is None):
        raise ValueError("give exactly one of grid=n (a map) or starts=N (random starts)")
    steps = _validate.check_count("steps", steps)
    _validate.check_positive("tol", tol)
    if label_on not in ("auto", "host", "device"):
        raise ValueError(f"label_on must be 'auto', 'host' or 'device', got {label_on!r}")
    if label_on == "auto":
        label_on = "host" if jax.default_backend() == "cpu" else "device"
    if chunk_size is None:
        chunk_size = 1 << 18 if jax.default_backend() == "cpu" else 1 << 22
    chunk_size = _validate.check_count("chunk_size", chunk_size)
    unroll = _validate.check_count("unroll", unroll)
    check_every = _validate.check_count("check_every", check_every)
    dtype = jnp.result_type(float)
    bound = DEFAULT_BOUND if bound is None else bound
    _validate.check_positive("bound", bound)
    _engine.check_lr(lr, dtype)
    method, h = _engine.resolve(rule, lr, steps=steps, dtype=dtype, tol=tol, bound=bound)
    batch = _engine.batch_shape(h)
    n_sets = int(np.prod(batch, dtype=np.int64))
    dom = _validate.check_domain(surface.domain if domain is None else domain, 2)
    _validate.check_positive("global_tol", global_tol)
    total = _validate.check_count("grid", grid) ** 2 if grid is not None else None
    if starts is not None:
        total = _validate.check_count("starts", starts)
        if key is None:
            raise ValueError("random starts need key=jax.random.key(seed)")
    check_memory(total * n_sets, dtype)
    n_dev = jax.device_count() if devices is None else devices
    if not 1 <= n_dev <= jax.device_count():
        raise ValueError(f"devices must be in 1..{jax.device_count()}, got {devices}")
    # one call runs n_sets x chunk descents: about chunk_size of them, in chunks
    # of equal size (the last one is padded: equal chunks waste the least)
    chunk = min(max(1, chunk_size // n_sets), total)
    n_chunks = -(-total // chunk)
    chunk = -(-total // n_chunks)
    chunk = -(-chunk // n_dev) * n_dev

    pts = make_starts(dom, grid=grid, starts=starts, key=key, dtype=dtype)
    run = make_runner(surface.fn, method, steps, chunk, n_dev, dtype, unroll, check_every)
    t_start = time.perf_counter()

    def report(done):
        if progress is not None:
            progress(done * n_sets, total * n_sets, time.perf_counter() - t_start)

    labeller = (surface, dom) if label_on == "device" else None
    ends, refrozen = run(_engine.flatten(h, batch), pts, report, labeller)
    seconds = time.perf_counter() - t_start - run.compile_seconds  # descent only

    config = BasinConfig(
        surface=surface.name,
        domain=[list(d) for d in dom],
        mode="grid" if grid is not None else "random",
        grid=grid,
        starts=total,
        steps=steps,
        lr=lr if np.ndim(lr) == 0 else np.asarray(lr).tolist(),
        rule=describe_rule(rule, lr),
        tol=float(tol),
        bound=float(bound),
        global_tol=float(global_tol),
        chunk_size=chunk,
        check_every=check_every,
        devices=n_dev,
        dtype=str(np.dtype(dtype)),
        batch=list(batch),
    )
    timing = Timing(
        seconds=seconds,
        compile_seconds=run.compile_seconds,
        restart_steps_per_second=total * n_sets * steps / seconds,
        refrozen=refrozen,
    )
    settings = {"lr": h.rate.base_lr} if lr is not None else {}
    settings.update(h.opt)
    settings = {k: np.asarray(jnp.broadcast_to(v, batch)) for k, v in settings.items()}
    bmap = summarise(surface, dom, pts, grid, ends, batch, config, timing, settings)
    return dataclasses.replace(bmap, rule=rule)


class Ends(NamedTuple):
    """Every run's end, axes (hyperparameter set, start)."""

    final: np.ndarray
    diverged: np.ndarray
    converged: np.ndarray
    converged_step: np.ndarray
    finite: np.ndarray


@dataclasses.dataclass(frozen=True)
class BasinConfig:
    """A basin map's settings (basins.json's ``config``)."""

    surface: str
    domain: list
    mode: str
    grid: int | None
    starts: int
    steps: int
    lr: Any
    rule: str
    tol: float
    bound: float
    global_tol: float
    chunk_size: int
    check_every: int
    devices: int
    dtype: str
    batch: list


class Timing(NamedTuple):
    """Seconds descending (compile excluded), compile seconds (0 when the
    program was cached), restart-steps per second, and how many runs met a
    non-finite value and were run again to find their last finite point."""

    seconds: float
    compile_seconds: float
    restart_steps_per_second: float
    refrozen: int


def make_starts(domain, *, grid=None, starts=None, key=None, dtype=np.float32) -> np.ndarray:
    """The starts of a map: an n x n grid of cell centres (row-major, y
    slowest), or N uniform random starts from ``key``."""
    if grid is not None:
        return grid_starts(domain, grid).astype(dtype)
    lo = jnp.asarray([d[0] for d in domain], jnp.float32)
    hi = jnp.asarray([d[1] for d in domain], jnp.float32)
    return np.asarray(jax.random.uniform(key, (starts, 2), minval=lo, maxval=hi)).astype(dtype)


def make_runner(fn, method, steps, chunk, n_dev, dtype, unroll=10, every=10):
    """``run(flat_hyper, starts, report) -> (Ends, refrozen)``: the compiled
    chunk program (ahead of time, cached, sharded over ``n_dev`` devices) run
    over every start for every hyperparameter set. Plain rules take the fast
    path; the runs of it that met a non-finite value are run again through the
    engine's stepper, which ends them at their last finite point (one policy
    for every path). ``run.compile_seconds`` is the time compiling took."""
    mesh = Mesh(np.asarray(jax.devices()[:n_dev]), ("starts",))
    sharding = NamedSharding(mesh, PartitionSpec("starts"))
    blocked = not method.uses_optax

    def run(flat, pts, report, labeller=None):
        n_sets = jax.tree.leaves(flat)[0].shape[0]
        t0 = time.perf_counter()
        program = (fn, method, steps, unroll, every, blocked, False)
        compiled = _compiled(program, flat, chunk, dtype, mesh, labelled=labeller is not None)
        run.compile_seconds = time.perf_counter() - t0
        report(0)
        if labeller is not None:
            ends = _run_labelled(compiled, flat, pts, chunk, sharding, n_sets, report, *labeller)
        else:
            ends = Ends(*_run_chunks(compiled, flat, pts, chunk, sharding, n_sets, report))
        refrozen = 0
        if blocked and not ends.finite.all():
            sets, idx = np.nonzero(~ends.finite)
            refrozen = len(idx)
            size = min(max(chunk, n_dev), -(-_pow2(len(idx)) // n_dev) * n_dev)
            pairs = (fn, method, steps, unroll, every, False, True)
            redo = _compiled(pairs, flat, size, dtype, mesh, paired=True)
            pair_h = jax.tree.map(lambda a: np.asarray(a)[sets], flat)
            f, d, c, k, _ = _run_pairs(redo, pair_h, pts[idx], size, sharding)
            if isinstance(ends, Labelled):
                ends = ends.relabel(sets, idx, f, c, d, k, labeller)
            else:
                ends.final[sets, idx], ends.diverged[sets, idx] = f, d
                ends.converged[sets, idx], ends.converged_step[sets, idx] = c, k
        if isinstance(ends, Labelled):
            ends = ends.sorted()
        return ends, refrozen

    run.compile_seconds = 0.0
    return run


class Labelled(NamedTuple):
    """Runs labelled on the device (:func:`map_basins` with ``label_on=
    "device"``): labels and convergence steps, axes (hyperparameter set,
    start), the minima found, and which runs met a non-finite value (to run
    again; their labels are set then)."""

    labels: np.ndarray
    converged_step: np.ndarray
    minima: tuple[CriticalPoint, ...]
    finite: np.ndarray

    def relabel(self, sets, idx, final, converged, diverged, conv_step, labeller) -> Labelled:
        """The runs (sets, idx), run again, labelled on the host (minima
        among them are added)."""
        surface, dom = labeller
        minima, labels = discover_minima(surface, final, converged, diverged, dom, self.minima)
        self.labels[sets, idx] = labels
        self.converged_step[sets, idx] = conv_step
        finite = self.finite.copy()
        finite[sets, idx] = True
        return self._replace(minima=minima, finite=finite)

    def sorted(self) -> Labelled:
        """Minima sorted by value (as the host path sorts them), labels renamed."""
        order = sorted(range(len(self.minima)), key=lambda i: self.minima[i].value)
        rank = np.empty(max(len(order), 1), np.int32)
        rank[order] = np.arange(len(order), dtype=np.int32)
        labels = np.where(self.labels >= 0, rank[np.maximum(self.labels, 0)], self.labels)
        return self._replace(labels=labels, minima=tuple(self.minima[i] for i in order))


def _run_labelled(compiled, flat, pts, chunk, sharding, n_sets, report, surface, dom):
    """Runs the labelled chunk program over ``pts``: chunk c holds the starts
    c, c + n, c + 2n, ... (n chunks), so every chunk samples the whole
    domain. Each chunk is labelled on the device against the minima known
    when it was dispatched; only its labels and steps come back, unless some
    of its runs converged where no known minimum is (their ends come back,
    new minima are found among them and they are labelled on the host) or
    met a non-finite value (run again by the caller)."""
    total = pts.shape[0]
    n_chunks = -(-total // chunk)
    labels = np.empty((n_sets, total), np.int32)
    conv_step = np.empty((n_sets, total), np.int32)
    finite = np.ones((n_sets, total), bool)
    replicated = NamedSharding(sharding.mesh, PartitionSpec())
    h = distributed.put(flat, replicated)
    tol2 = pts.dtype.type(_radius(dom) ** 2)
    minima: tuple[CriticalPoint, ...] = ()

    def table():
        rows = np.zeros((MAX_DEVICE_MINIMA, 2), pts.dtype)
        known = minima[:MAX_DEVICE_MINIMA]
        for i, m in enumerate(known):
            rows[i] = m.location
        return distributed.put(rows, replicated), np.int32(len(known))

    def collect(idx, out):
        nonlocal minima
        small, big = out
        lab, steps, orphans, bad = distributed.fetch(small)
        m = len(idx)
        lab, steps = lab[:, :m].astype(np.int32), steps[:, :m].astype(np.int32)
        if int(orphans) or int(bad):  # this chunk's ends come back
            final, div, conv, fin = (a[:, :m] for a in distributed.fetch(big))
            finite[:, idx] = fin
            pool = conv & ~div & fin & (lab == NOT_CONVERGED)
            if pool.any():
                sets, runs = np.nonzero(pool)
                minima, lab[sets, runs] = discover_minima(
                    surface, final[sets, runs], conv[sets, runs], div[sets, runs], dom, minima
                )
        labels[:, idx], conv_step[:, idx] = lab, steps
        collect.done += m
        if report is not None:
            report(collect.done)

    collect.done = 0
    pending = None
    for c in range(n_chunks):
        idx = np.arange(c, total, n_chunks)
        part = pts[idx]
        if len(idx) < chunk:  # pad so every chunk has one shape: one compiled program
            part = np.concatenate([part, np.repeat(part[-1:], chunk - len(idx), axis=0)])
        out = compiled(distributed.put(part, sharding), h, *table(), tol2)
        if pending is not None:
            collect(*pending)
        pending = (idx, out)
    collect(*pending)
    return Labelled(labels, conv_step, minima, finite)


def summarise(surface, dom, pts, grid, ends, batch, config, timing, settings) -> BasinMap:
    """Minima (found once over the whole batch), labels, fractions and the
    chance of a global minimum, from every run's end (an :class:`Ends`), or
    from runs labelled on the device (a :class:`Labelled`)."""
    total = pts.shape[0]
    if isinstance(ends, Labelled):
        minima, labels, final = ends.minima, ends.labels, None
    else:
        minima, labels = _find_and_label(
            surface, ends.final.reshape(-1, 2), ends.converged.ravel(), ends.diverged.ravel(), dom
        )
        final = ends.final.reshape(batch + (total, 2))
    labels = labels.reshape(batch + (total,))
    glob = global_minima(minima, config.global_tol)
    p_glob = Estimate(*wilson_interval(np.isin(labels, glob).sum(axis=-1), total))
    if not batch:
        p_glob = Estimate(*(float(v) for v in p_glob))
    return BasinMap(
        surface=surface,
        domain=dom,
        starts=pts,
        grid=None if grid is None else (grid, grid),
        labels=labels,
        converged_step=ends.converged_step.reshape(batch + (total,)),
        final=final,
        minima=minima,
        fractions=_fractions(labels, len(minima)),
        config=config,
        timing=timing,
        global_minima=glob,
        p_global=p_glob,
        batch=batch,
        hyperparameters=settings,
    )


def _compiled(program, flat, chunk, dtype, mesh, paired=False, labelled=False):
    """The chunk program compiled ahead of time for one shape (cached);
    ``labelled``: the program that also labels (:func:`_descend_label_chunk`)."""
    n_sets = jax.tree.leaves(flat)[0].shape[0] if not paired else chunk
    # the hyperparameters' structure and shapes too: optimizer settings by name,
    # a schedule's number of milestones
    shapes = tuple((np.shape(a), str(a.dtype)) for a in jax.tree.leaves(flat))
    cache_key = (program, chunk, n_sets, str(np.dtype(dtype)), mesh.size, paired, labelled)
    cache_key += (jax.tree.structure(flat), shapes)
    if cache_key not in _COMPILED:
        sharded = NamedSharding(mesh, PartitionSpec("starts"))
        starts = jax.ShapeDtypeStruct((chunk, 2), dtype, sharding=sharded)
        if paired:
            h = jax.tree.map(
                lambda a: jax.ShapeDtypeStruct((chunk,) + a.shape[1:], a.dtype, sharding=sharded),
                flat,
            )
        else:
            rep = NamedSharding(mesh, PartitionSpec())
            h = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=rep), flat)
        if labelled:
            rep = NamedSharding(mesh, PartitionSpec())
            table = jax.ShapeDtypeStruct((MAX_DEVICE_MINIMA, 2), dtype, sharding=rep)
            count = jax.ShapeDtypeStruct((), np.int32, sharding=rep)
            tol2 = jax.ShapeDtypeStruct((), dtype, sharding=rep)
            lowered = _descend_label_chunk.lower(*program, starts, h, table, count, tol2)
            _COMPILED[cache_key] = lowered.compile()
        else:
            _COMPILED[cache_key] = _descend_chunk.lower(*program, starts, h).compile()
    return _COMPILED[cache_key]


def _run_chunks(compiled, flat, pts, chunk, sharding, n_sets, report):
    """Runs ``compiled`` over ``pts`` in chunks of one shape (the last padded);
    returns (final, diverged, converged, converged_step, finite) as NumPy, axes
    (hyperparameter set, start)."""
    total = pts.shape[0]
    final = np.empty((n_sets, total, 2), pts.dtype)
    diverged = np.empty((n_sets, total), bool)
    converged = np.empty((n_sets, total), bool)
    conv_step = np.empty((n_sets, total), np.int32)
    finite = np.empty((n_sets, total), bool)
    outs = (final, diverged, converged, conv_step, finite)
    h = distributed.put(flat, NamedSharding(sharding.mesh, PartitionSpec()))

    def collect(begin, m, out):  # waits for a chunk and stores its results
        for dst, src in zip(outs, distributed.fetch(out), strict=True):
            dst[:, begin : begin + m] = src[:, :m]
        if report is not None:
            report(begin + m)

    pending = None
    for begin in range(0, total, chunk):
        part = pts[begin : begin + chunk]
        m = part.shape[0]
        if m < chunk:  # pad so every chunk has one shape: one compiled program
            part = np.concatenate([part, np.repeat(part[-1:], chunk - m, axis=0)])
        # dispatch this chunk before waiting for the previous one: the devices
        # never idle while the host copies results
        out = compiled(distributed.put(part, sharding), h)
        if pending is not None:
            collect(*pending)
        pending = (begin, m, out)
    collect(*pending)
    return outs


def _run_pairs(compiled, pair_h, pts, size, sharding):
    """Runs start i with hyperparameter set i, in padded chunks of ``size``."""
    n = pts.shape[0]
    outs = []
    for begin in range(0, n, size):
        m = min(size, n - begin)

        def pad(a, begin=begin, m=m):
            a = a[begin : begin + m]
            return np.concatenate([a, np.repeat(a[-1:], size - m, axis=0)]) if m < size else a

        out = compiled(
            distributed.put(pad(pts), sharding),
            distributed.put(jax.tree.map(pad, pair_h), sharding),
        )
        outs.append([o[:m] for o in distributed.fetch(out)])
    return [np.concatenate(parts) for parts in zip(*outs, strict=True)]


def _radius(dom) -> float:
    return 1e-2 * max(hi - lo for lo, hi in dom)


# --------------------------------------------------------------------------
# Discovering and classifying critical points.


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


def _pow2(n: int) -> int:
    """The power of two >= n (and >= 16): batch sizes that keep compiled shapes few."""
    return max(16, 1 << max(n - 1, 1).bit_length())


def _padded(pts: np.ndarray) -> tuple[np.ndarray, int]:
    """Pads a batch of points to a power of two (>= 16) by repeating the last,
    so the compiled programs below see few shapes."""
    n = len(pts)
    size = _pow2(n)
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
    cells, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    centres = np.zeros((len(cells), pts.shape[1]))
    np.add.at(centres, inverse.ravel(), pts)
    centres /= counts[:, None]
    order = np.argsort(-counts, kind="stable")[:max_cells]
    kept = np.empty((len(order), pts.shape[1]))
    n = 0
    for c in centres[order]:
        if n == 0 or np.min(np.sum((kept[:n] - c) ** 2, axis=1)) > radius**2:
            kept[n] = c
            n += 1
    return kept[:n]


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


def _candidate_minima(surface: Surface, ends: np.ndarray, dom) -> list[CriticalPoint]:
    radius = _radius(dom)
    if len(ends) > _SAMPLE:  # an even subsample; orphans are found again below
        ends = ends[np.linspace(0, len(ends) - 1, _SAMPLE).astype(np.int64)]
    centres = _cluster(ends, radius)
    if len(centres) == 0:
        return []
    refined, gnorm = _newton_refine(surface.fn, centres)
    ok = (gnorm < 1e-8) & np.all(np.isfinite(refined), axis=1)
    return [p for p in _classify(surface.fn, refined[ok]) if p.kind == "min"]


def _find_and_label(surface, final, converged, diverged, dom, rounds: int = 5):
    """Discovers minima from (a subsample of) the converged end points, labels
    every start, then looks again among converged starts that no minimum
    claimed, until a round finds nothing new."""
    radius = _radius(dom)
    found: list[CriticalPoint] = []
    pool = converged & ~diverged
    for _ in range(rounds):
        new = _candidate_minima(surface, final[pool], dom)
        merged = _dedupe(sorted(found + new, key=lambda p: p.value), radius / 10)
        grew = len(merged) > len(found)
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
    radius = _radius(domain)
    found = list(known)
    pool = converged & ~diverged
    labels = _label(final, converged, diverged, tuple(found), tol_radius=radius)
    pool &= labels == NOT_CONVERGED
    for _ in range(5):
        if not pool.any():
            break
        new = [
            p
            for p in _candidate_minima(surface, final[pool], domain)
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
    return _label(final, converged, diverged, tuple(minima), tol_radius=_radius(domain))


def _label(final, converged, diverged, minima, tol_radius) -> np.ndarray:
    labels = np.full(final.shape[0], NOT_CONVERGED, np.int32)
    if minima:
        x, y = final[:, 0], final[:, 1]
        best = np.full(final.shape[0], np.inf, final.dtype)
        nearest = np.zeros(final.shape[0], np.int32)
        for i, m in enumerate(minima):  # one pass per minimum: memory stays O(N)
            d2 = np.square(x - final.dtype.type(m.location[0]))
            d2 += np.square(y - final.dtype.type(m.location[1]))
            closer = d2 < best
            best[closer] = d2[closer]
            nearest[closer] = i
        claimed = converged & (best < tol_radius**2)
        labels[claimed] = nearest[claimed]
    labels[diverged] = DIVERGED
    return labels


def _fractions(labels: np.ndarray, n_minima: int) -> Fractions:
    """Fractions of every outcome over the last axis of ``labels``."""
    n = labels.shape[-1]
    flat = labels.reshape(-1, n) + 2
    k = n_minima + 2
    counts = np.stack([np.bincount(row, minlength=k) for row in flat]).reshape(
        labels.shape[:-1] + (k,)
    )
    keys = ("diverged", "not_converged") + tuple(str(i) for i in range(n_minima))
    return Fractions(keys, *wilson_interval(counts, n))


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
    centres = _cluster(refined[ok], _radius(dom) / 10)
    found = [p for p in _classify(surface.fn, centres) if p.kind != "degenerate"]
    order = {"min": 0, "saddle": 1, "max": 2}
    return sorted(_dedupe(found, _radius(dom) / 10), key=lambda p: (order[p.kind], p.value))
