"""One runner for every basin map: config -> compiled program -> sink.

:class:`Runner` compiles the chunk program once per configuration's shapes
(ahead of time, cached), and runs it over any starts through the one chunk
loop (:func:`gdjax._chunks.run_chunks`), sharded over the config's devices.
Two sinks take its runs: in memory (:func:`run_map` -> :func:`summarise`:
minima, labels, fractions) and streamed to disk, tile by tile
(:func:`gdjax.maps.tiles.map_to_disk`).

Plain rules take the engine's fast path (:func:`gdjax._engine.run_blocked`);
the runs of it that met a non-finite value are run again through the
engine's stepper, which ends them at their last finite point (one policy for
every path, as in :func:`gdjax.descend`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array

from gdjax import _chunks, _engine, distributed
from gdjax._progress import Progress
from gdjax.maps.config import MapConfig, grid_starts
from gdjax.maps.critical import claim_radius, discover_minima, find_and_label, pow2
from gdjax.maps.summary import (
    DIVERGED,
    NOT_CONVERGED,
    BasinMap,
    CriticalPoint,
    Timing,
    fractions,
    global_minima,
    reach_global,
)

__all__ = [
    "MAX_DEVICE_MINIMA",
    "Ends",
    "Labelled",
    "Runner",
    "compiled_programs",
    "make_starts",
    "run_map",
    "summarise",
]

_COMPILED: dict = {}  # ahead-of-time compiled programs, by static settings and shape

MAX_DEVICE_MINIMA = 120
"""Minima the device labels against (int8 labels); runs near minima found
beyond these are labelled on the host, as orphans are."""

MAX_ORPHANS = 4096
"""Orphans (runs that converged where no known minimum is) a device-labelled
chunk sends back by themselves, with their end points; a chunk with more
sends all its ends back. Peaks' flat outer plateau leaves about 0.7% of
every chunk's runs converged there, far from any minimum."""


def compiled_programs() -> int:
    """How many chunk programs have been compiled in this process (a new
    rate or setting of the same shape must not add one)."""
    return len(_COMPILED)


class Ends(NamedTuple):
    """Every run's end, axes (hyperparameter set, start)."""

    final: np.ndarray
    diverged: np.ndarray
    converged: np.ndarray
    converged_step: np.ndarray
    finite: np.ndarray


class Labelled(NamedTuple):
    """Runs labelled on the device (``label_on="device"``): labels and
    convergence steps, axes (hyperparameter set, start), the minima found,
    and which runs met a non-finite value (to run again; their labels are
    set then)."""

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


# --------------------------------------------------------------------------
# The compiled programs: the engine's two drivers over (hyperparameters x starts).


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


_STATIC = ("fn", "method", "steps", "unroll", "every", "blocked", "paired")
"""What fixes a chunk program (the rest is data)."""


@functools.partial(jax.jit, static_argnames=_STATIC)
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


@functools.partial(jax.jit, static_argnames=(*_STATIC, "max_orphans"))
def _descend_label_chunk(
    fn,
    method,
    steps,
    unroll,
    every,
    blocked,
    paired,
    max_orphans,
    starts,
    h,
    minima,
    n_minima,
    tol2,
):
    """:func:`_descend_chunk`, then every run labelled on the device against
    the first ``n_minima`` rows of ``minima`` (as the host labels). Outputs
    what the host needs, small: labels (int8), converged_step (int16 below
    32767 steps), two counts: runs that converged where no known minimum is
    (orphans) and runs that met a non-finite value, and the first
    ``max_orphans`` orphans (their rows, row-major over (set, start), and end
    points); the end points and flags of every run stay on the device,
    fetched only for a chunk with a non-finite run or more orphans than
    that."""
    final, diverged, converged, conv_step, finite = _descend_chunk(
        fn, method, steps, unroll, every, blocked, paired, starts, h
    )
    x, y = final[..., 0], final[..., 1]
    best = jnp.full(x.shape, jnp.inf, final.dtype)
    nearest = jnp.zeros(x.shape, jnp.int32)

    def body(i, carry):
        best, nearest = carry
        d2 = jnp.square(x - minima[i, 0]) + jnp.square(y - minima[i, 1])
        closer = d2 < best
        return jnp.where(closer, d2, best), jnp.where(closer, i, nearest)

    # over the known minima only (a traced count: a while loop, not all
    # MAX_DEVICE_MINIMA rows of the table)
    count = jnp.minimum(n_minima, minima.shape[0])
    best, nearest = jax.lax.fori_loop(0, count, body, (best, nearest))
    claimed = converged & (best < tol2)
    labels = jnp.where(claimed, nearest, NOT_CONVERGED)
    labels = jnp.where(diverged, DIVERGED, labels).astype(jnp.int8)
    orphan = converged & ~diverged & ~claimed
    # the first max_orphans orphans, in row-major order over (set, start), and
    # their end points: all the host needs when there are no more
    # (a running count and a binary search: far faster on the CPU than the
    # lowerings of jnp.nonzero and jnp.cumsum, docs/basins.md)
    count = jax.lax.associative_scan(jnp.add, orphan.ravel().astype(jnp.int32))
    want = jnp.arange(1, max_orphans + 1, dtype=jnp.int32)
    rows = jnp.minimum(jnp.searchsorted(count, want, side="left"), count.shape[0] - 1)
    ends = final.reshape(-1, final.shape[-1])[rows]
    step_type = jnp.int16 if steps < np.iinfo(np.int16).max else jnp.int32
    small = (labels, conv_step.astype(step_type), jnp.sum(orphan), jnp.sum(~finite), rows, ends)
    return small, (final, diverged, converged, finite)


def _compiled(program, flat, chunk, dtype, mesh, paired=False, labelled=False):
    """The chunk program compiled ahead of time for one shape (cached);
    ``labelled``: the program that also labels (:func:`_descend_label_chunk`)."""
    n_sets = jax.tree.leaves(flat)[0].shape[0] if not paired else chunk
    # the hyperparameters' structure and shapes too: optimizer settings by name,
    # a schedule's number of milestones
    shapes = tuple((np.shape(a), str(a.dtype)) for a in jax.tree.leaves(flat))
    cache_key = (program, chunk, n_sets, str(np.dtype(dtype)), mesh.size, paired, labelled)
    cache_key += (MAX_DEVICE_MINIMA, MAX_ORPHANS) if labelled else ()
    cache_key += (jax.tree.structure(flat), shapes)
    if cache_key not in _COMPILED:
        sharded = NamedSharding(mesh, PartitionSpec("starts"))
        rep = NamedSharding(mesh, PartitionSpec())
        starts = jax.ShapeDtypeStruct((chunk, 2), dtype, sharding=sharded)
        if paired:
            h = jax.tree.map(
                lambda a: jax.ShapeDtypeStruct((chunk,) + a.shape[1:], a.dtype, sharding=sharded),
                flat,
            )
        else:
            h = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=rep), flat)
        if labelled:
            table = jax.ShapeDtypeStruct((MAX_DEVICE_MINIMA, 2), dtype, sharding=rep)
            count = jax.ShapeDtypeStruct((), np.int32, sharding=rep)
            tol2 = jax.ShapeDtypeStruct((), dtype, sharding=rep)
            most = min(MAX_ORPHANS, n_sets * chunk)  # no more rows than the chunk has
            lowered = _descend_label_chunk.lower(*program, most, starts, h, table, count, tol2)
            _COMPILED[cache_key] = lowered.compile()
        else:
            _COMPILED[cache_key] = _descend_chunk.lower(*program, starts, h).compile()
    return _COMPILED[cache_key]


# --------------------------------------------------------------------------
# The runner.


class Runner:
    """The compiled chunk program of a :class:`MapConfig`, run over any
    starts: ``runner(starts, report, labeller=None) -> (Ends | Labelled,
    refrozen)``. ``chunk`` (default the config's) is the number of starts per
    call; ``compile_seconds`` the time compiling took at the last call (0
    when the program was cached)."""

    def __init__(self, config: MapConfig, chunk: int | None = None):
        self.config = config
        self.chunk = config.chunk if chunk is None else chunk
        self.mesh = Mesh(np.asarray(jax.devices()[: config.devices]), ("starts",))
        self.sharding = NamedSharding(self.mesh, PartitionSpec("starts"))
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        self.blocked = not config.method.uses_optax
        self.flat = _engine.flatten(config.hyper, config.batch)
        self.dtype = config.np_dtype
        self.compile_seconds = 0.0

    def _program(self, blocked: bool, paired: bool) -> tuple:
        c = self.config
        return (c.surface.fn, c.method, c.steps, c.unroll, c.check_every, blocked, paired)

    def __call__(self, pts: np.ndarray, report: Callable[[int], None] | None, labeller=None):
        t0 = time.perf_counter()
        program = self._program(self.blocked, False)
        compiled = _compiled(
            program, self.flat, self.chunk, self.dtype, self.mesh, labelled=labeller is not None
        )
        self.compile_seconds = time.perf_counter() - t0
        if report is not None:
            report(0)
        if labeller is not None:
            ends = self._labelled(compiled, pts, report, *labeller)
        else:
            ends = self._plain(compiled, pts, report)
        refrozen = 0
        if self.blocked and not ends.finite.all():
            sets, idx = np.nonzero(~ends.finite)
            refrozen = len(idx)
            f, d, c, k = self._again(sets, idx, pts)
            if isinstance(ends, Labelled):
                ends = ends.relabel(sets, idx, f, c, d, k, labeller)
            else:
                ends.final[sets, idx], ends.diverged[sets, idx] = f, d
                ends.converged[sets, idx], ends.converged_step[sets, idx] = c, k
        if isinstance(ends, Labelled):
            ends = ends.sorted()
        return ends, refrozen

    def _sets(self) -> int:
        return jax.tree.leaves(self.flat)[0].shape[0]

    def _plain(self, compiled, pts, report) -> Ends:
        """Every run's end back on the host."""
        total, n_sets = pts.shape[0], self._sets()
        ends = Ends(
            np.empty((n_sets, total, 2), pts.dtype),
            np.empty((n_sets, total), bool),
            np.empty((n_sets, total), bool),
            np.empty((n_sets, total), np.int32),
            np.empty((n_sets, total), bool),
        )
        h = distributed.put(self.flat, self.replicated)

        def call(part):
            return compiled(distributed.put(part, self.sharding), h)

        def collect(idx, m, out):
            for dst, src in zip(ends, distributed.fetch(out), strict=True):
                dst[:, idx] = src[:, :m]
            if report is not None:
                report(idx.stop)

        _chunks.run_chunks(call, pts, self.chunk, collect)
        return ends

    def _labelled(self, compiled, pts, report, surface, dom) -> Labelled:
        """Chunk c holds the starts c, c + n, c + 2n, ... (n chunks), so every
        chunk samples the whole domain. Each chunk is labelled on the device
        against the minima known when it was dispatched; only its labels and
        steps come back, unless some of its runs converged where no known
        minimum is (their ends come back, new minima are found among them and
        they are labelled on the host) or met a non-finite value (run again
        by the caller)."""
        total, n_sets = pts.shape[0], self._sets()
        labels = np.empty((n_sets, total), np.int32)
        conv_step = np.empty((n_sets, total), np.int32)
        finite = np.ones((n_sets, total), bool)
        h = distributed.put(self.flat, self.replicated)
        tol2 = pts.dtype.type(claim_radius(dom) ** 2)
        minima: tuple[CriticalPoint, ...] = ()
        done = 0

        def call(part):
            rows = np.zeros((MAX_DEVICE_MINIMA, 2), pts.dtype)
            known = minima[:MAX_DEVICE_MINIMA]
            for i, m in enumerate(known):
                rows[i] = m.location
            table = distributed.put(rows, self.replicated)
            part = distributed.put(part, self.sharding)
            return compiled(part, h, table, np.int32(len(known)), tol2)

        def collect(idx, m, out):
            nonlocal minima, done
            small, big = out
            lab, steps, orphans, bad, rows, ends = distributed.fetch(small)
            lab, steps = lab[:, :m].astype(np.int32), steps[:, :m].astype(np.int32)
            orphans = int(orphans)
            if int(bad) or orphans > len(rows):  # this chunk's ends come back
                final, div, conv, fin = (a[:, :m] for a in distributed.fetch(big))
                finite[:, idx] = fin
                pool = conv & ~div & fin & (lab == NOT_CONVERGED)
                if pool.any():
                    sets, runs = np.nonzero(pool)
                    minima, lab[sets, runs] = discover_minima(
                        surface, final[sets, runs], conv[sets, runs], div[sets, runs], dom, minima
                    )
            elif orphans:  # only the orphans and their ends came back
                sets, runs = np.divmod(rows[:orphans].astype(np.int64), self.chunk)
                real = runs < m  # not the padding's copies of the last start
                sets, runs, final = sets[real], runs[real], ends[:orphans][real]
                if len(runs):
                    yes, no = np.ones(len(runs), bool), np.zeros(len(runs), bool)
                    minima, lab[sets, runs] = discover_minima(surface, final, yes, no, dom, minima)
            labels[:, idx], conv_step[:, idx] = lab, steps
            done += m
            if report is not None:
                report(done)

        _chunks.run_chunks(call, pts, self.chunk, collect, strided=True)
        return Labelled(labels, conv_step, minima, finite)

    def _again(self, sets, idx, pts):
        """Runs start ``idx[i]`` with hyperparameter set ``sets[i]`` through
        the engine's stepper (ends at the last finite point)."""
        n_dev = self.config.devices
        size = min(max(self.chunk, n_dev), -(-pow2(len(idx)) // n_dev) * n_dev)
        program = self._program(False, True)
        redo = _compiled(program, self.flat, size, self.dtype, self.mesh, paired=True)
        pair_h = jax.tree.map(lambda a: np.asarray(a)[sets], self.flat)
        outs = [
            np.empty((len(idx), 2), pts.dtype),
            np.empty(len(idx), bool),
            np.empty(len(idx), bool),
            np.empty(len(idx), np.int32),
        ]

        def call(parts):
            starts, h = parts
            return redo(distributed.put(starts, self.sharding), distributed.put(h, self.sharding))

        def collect(rows, m, out):
            for dst, src in zip(outs, distributed.fetch(out)[:4], strict=True):
                dst[rows] = src[:m]

        _chunks.run_chunks(call, (pts[idx], pair_h), size, collect, ahead=False)
        return outs


def make_starts(config: MapConfig, key: Array | None = None) -> np.ndarray:
    """The starts of a map: its n x n grid of cell centres (row-major, y
    slowest), or N uniform random starts from ``key``."""
    if config.grid is not None:
        return grid_starts(config.domain, config.grid).astype(config.np_dtype)
    if key is None:
        raise ValueError("random starts need key=jax.random.key(seed)")
    lo = jnp.asarray([d[0] for d in config.domain], jnp.float32)
    hi = jnp.asarray([d[1] for d in config.domain], jnp.float32)
    pts = jax.random.uniform(key, (config.starts, 2), minval=lo, maxval=hi)
    return np.asarray(pts).astype(config.np_dtype)  # a copy: writable, the caller's own


def summarise(config: MapConfig, pts, ends, timing: Timing) -> BasinMap:
    """The in-memory sink: minima (found once over the whole batch), labels,
    fractions and the chance of a global minimum, from every run's end (an
    :class:`Ends`), or from runs labelled on the device (a
    :class:`Labelled`)."""
    total, batch, dom = pts.shape[0], config.batch, config.domain
    if isinstance(ends, Labelled):
        minima, labels, final = ends.minima, ends.labels, None
    else:
        minima, labels = find_and_label(
            config.surface,
            ends.final.reshape(-1, 2),
            ends.converged.ravel(),
            ends.diverged.ravel(),
            dom,
        )
        final = ends.final.reshape(batch + (total, 2))
    labels = labels.reshape(batch + (total,))
    glob = global_minima(minima, config.global_tol)
    p_glob = reach_global(labels, glob)
    return BasinMap(
        surface=config.surface,
        domain=dom,
        starts=pts,
        grid=None if config.grid is None else (config.grid, config.grid),
        labels=labels,
        converged_step=ends.converged_step.reshape(batch + (total,)),
        final=final,
        minima=minima,
        fractions=fractions(labels, len(minima)),
        config=config.record(),
        timing=timing,
        global_minima=glob,
        p_global=p_glob,
        batch=batch,
        hyperparameters=config.settings(),
        rule=config.rule,
    )


def run_map(
    config: MapConfig,
    *,
    key: Array | None = None,
    progress: Progress | None = None,
) -> BasinMap:
    """A basin map in memory: config -> :class:`Runner` -> :func:`summarise`.

    Args:
        config: the map.
        key: a ``jax.random.key`` for random starts (``config.starts``).
        progress: called with (runs done, runs): once with 0 when
            the descent starts (after compiling), then after each chunk.

    A config with attractor labelling (``config.attractors``) runs through
    :func:`gdjax.maps.orbit_labels.run_map`, which calls this one for the
    map and then labels the attractors.
    """
    if config.attractors is not None:
        raise ValueError(
            "a map with attractor labelling runs through gdjax.maps.orbit_labels.run_map "
            "(this one maps the minima)"
        )
    config.check_memory()
    pts = make_starts(config, key)
    runner = Runner(config)
    t_start = time.perf_counter()
    total = config.total * config.sets

    def report(done):
        if progress is not None:
            progress(done * config.sets, total)

    labeller = (config.surface, config.domain) if config.label_on == "device" else None
    ends, refrozen = runner(pts, report, labeller)
    seconds = time.perf_counter() - t_start - runner.compile_seconds  # descent only
    timing = Timing(
        seconds=seconds,
        compile_seconds=runner.compile_seconds,
        restart_steps_per_second=total * config.steps / seconds,
        refrozen=refrozen,
    )
    return summarise(config, pts, ends, timing)
