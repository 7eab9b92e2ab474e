"""One configuration for a basin map, checked once.

:class:`MapConfig` holds everything that decides a map: the surface, the box
of starts and how many (a grid or N random ones), the rule or optimizer with
its settings (arrays allowed: a batch of rates or of optimizers is part of
it), steps, tolerance, bound, dtype, chunking and where runs are labelled.
Building one checks every value, before any compute; what it costs (memory
and disk, for the whole batch) is :meth:`MapConfig.cost`. Every map of gdjax
(``map_basins``, ``map_to_disk``, ``optimizers.compare``,
``continuation``) runs from one through :func:`gdjax.maps.runner.run_map`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gdjax import _chunks, _engine, _validate
from gdjax.descent import DEFAULT_BOUND, describe_rule
from gdjax.surfaces import get as _get_surface

__all__ = [
    "ORBIT_CHUNK",
    "ORBIT_KEEP",
    "AttractorSettings",
    "BasinConfig",
    "Cost",
    "MapConfig",
    "available_memory",
    "check_memory",
    "default_chunk_size",
    "grid_starts",
    "memory_needed",
]


def default_chunk_size() -> int:
    """Descents per compiled call: 2^17 on a CPU (a chunk's points stay in the
    cores' caches: measured faster than 2^18 and 2^20, docs/basins.md), 2^22
    on an accelerator (fewer calls, fewer kernel launches)."""
    return 1 << 17 if jax.default_backend() == "cpu" else 1 << 22


# --------------------------------------------------------------------------
# Memory.

_BASE_BYTES = 600 << 20  # JAX, the compiled programs and one chunk in flight


def memory_needed(n_starts: int, dtype=np.float32, extra_per_start: int = 0) -> int:
    """Bytes a map of ``n_starts`` runs (every hyperparameter set's) needs on
    the host, an estimate with some margin: starts, end points, flags and
    labels of every run, and the labelling's temporaries, plus a fixed amount
    for JAX and a chunk in flight; ``extra_per_start`` for what the caller
    keeps per run (figures). docs/basins.md gives the measured peaks."""
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


def check_memory(n_starts: int, dtype=np.float32, extra_per_start: int = 0, sets: int = 1) -> None:
    """Refuses, before any compute, a map that cannot fit in memory.

    Args:
        n_starts: starts of one map.
        dtype: the working precision.
        extra_per_start: bytes the caller keeps per run (figures).
        sets: hyperparameter sets (rates, optimizers) mapped from the same
            starts: every run is kept.

    Raises:
        ValueError: with the estimate, the memory available and the largest
            grid that fits for this many sets. A map keeps every run's end on
            the host, so it does not run in pieces: use fewer starts (or a
            tiled map, ``gdjax basins --tiled``).
    """
    need = memory_needed(n_starts * sets, dtype, extra_per_start)
    have = available_memory()
    if have is not None and need > have:
        per_start = (memory_needed(1, dtype, extra_per_start) - _BASE_BYTES) * sets
        largest = max(1, math.isqrt(max(0, have - _BASE_BYTES) // per_start))
        of = f" for {sets} maps" if sets > 1 else ""
        raise ValueError(
            f"{n_starts * sets:,} runs need about {need / 2**30:.1f} GiB of memory, and "
            f"{have / 2**30:.1f} GiB is available; use fewer starts (a grid of "
            f"{largest:,}^2 fits{of})"
        )


def grid_starts(domain, n: int, dtype=np.float32) -> np.ndarray:
    """An n x n grid of cell centres over a 2D box, row-major (y slowest)."""
    (x0, x1), (y0, y1) = domain
    xs = x0 + (np.arange(n) + 0.5) * (x1 - x0) / n
    ys = y0 + (np.arange(n) + 0.5) * (y1 - y0) / n
    X, Y = np.meshgrid(xs.astype(dtype), ys.astype(dtype))
    return np.stack([X.ravel(), Y.ravel()], axis=-1)


class Cost(NamedTuple):
    """What a map will take, before it runs, for its whole batch.

    Attributes:
        runs: starts x hyperparameter sets.
        memory_bytes: the host's peak (:func:`memory_needed`, plus the
            attractor stage's chunk in flight when it is on).
        disk_bytes: what a run folder receives for the map (labels and
            convergence steps, 1 + 2 or 4 bytes a run).
        orbit_steps: with attractor labelling on, the most steps it adds:
            ``transient + window`` for every run (only the runs that end not
            converged, and of those only the ones still moving by more than
            the period tolerance, take them); 0 when it is off.
    """

    runs: int
    memory_bytes: int
    disk_bytes: int
    orbit_steps: int = 0


ORBIT_KEEP = 32
"""Points of each continued run's end kept by the attractor stage (a chaotic
set's sample is drawn from them)."""

ORBIT_CHUNK = 4096
"""Continued runs per compiled call of the attractor stage (at most)."""


@dataclasses.dataclass(frozen=True)
class AttractorSettings:
    """How a map labels the attractors of its runs that end not converged
    (``MapConfig(attractors=...)``; :mod:`gdjax.maps.orbit_labels`).

    Each such run is continued from its end point through
    :func:`gdjax.attractors.orbits` for ``transient`` steps, then measured
    for ``window`` steps: a cycle of period 2 .. ``max_period`` (matched to
    the minimum it surrounds), chaos (no period, largest Lyapunov exponent
    above ``chaos`` nats per step) or still moving.

    Attributes:
        transient: steps before anything is measured (>= 0; the map's own
            steps came before).
        window: steps measured: at least ``max(2 max_period, ORBIT_KEEP)``.
        max_period: the longest period looked for (>= 2).
        chaos: the Lyapunov threshold between chaotic and moving (> 0;
            nats per step). Above :data:`gdjax.attractors.CHAOS` (0.01): a
            map's runs are continued for a short window, and a run still in
            transit near a saddle separates from its neighbours by about lr
            times the saddle's negative curvature per step (on peaks at lr
            0.01 after 400 steps, two runs of 2304 measured 0.012 and 0.019,
            and converge to a minimum later); gradient descent's chaos on
            peaks measures 0.3 to 0.5.
    """

    transient: int = 100
    window: int = 128
    max_period: int = 16
    chaos: float = 0.05

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "transient", _validate.check_count("transient", self.transient, minimum=0))
        if self.transient >= 2**31:
            raise ValueError(f"transient must be below 2^31 steps, got {self.transient}")
        set_(self, "max_period", _validate.check_count("max_period", self.max_period, minimum=2))
        set_(self, "window", _validate.check_count("window", self.window))
        record = max(2 * self.max_period, ORBIT_KEEP)
        if self.window < record:
            raise ValueError(
                f"window must be at least max(2 max_period, {ORBIT_KEEP}) = {record} steps, "
                f"got {self.window}"
            )
        _validate.check_positive("chaos", self.chaos)
        set_(self, "chaos", float(self.chaos))

    @property
    def steps(self) -> int:
        """Steps a continued run takes: ``transient + window``."""
        return self.transient + self.window

    def chunk_bytes(self, dtype) -> int:
        """Host and device memory of one chunk of continued runs in flight:
        their recorded points, cycles and tails (with a factor 4 of margin)."""
        record = max(2 * self.max_period, ORBIT_KEEP)
        points = record + self.max_period + ORBIT_KEEP + 8
        return 4 * ORBIT_CHUNK * points * 2 * np.dtype(dtype).itemsize

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class BasinConfig:
    """A basin map's settings as written to basins.json (``config``):
    :meth:`MapConfig.record`."""

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
    attractors: dict | None = None


def _check_resolved(domain, grid: int | None, dtype) -> tuple:
    """A domain whose starts the dtype holds: finite bounds, and for a grid,
    cells wider than the dtype's spacing there (distinct starts)."""
    name = np.dtype(dtype).name
    how = "compute in float64 (--x64)" if name == "float32" else "give a smaller domain"
    for lo, hi in domain:
        with np.errstate(over="ignore"):
            cast = np.asarray([lo, hi, hi - lo], np.float64).astype(dtype)
        if not np.all(np.isfinite(cast)):
            raise ValueError(
                f"the domain [{lo:g}, {hi:g}] does not fit in {name} (largest finite "
                f"{float(np.finfo(dtype).max):.3g}); {how}"
            )
        if grid is not None:
            spacing = float(np.spacing(np.asarray(max(abs(lo), abs(hi)), dtype)))
            if (hi - lo) / grid < 2 * spacing:
                raise ValueError(
                    f"a grid of {grid} cells over [{lo:g}, {hi:g}] has cells narrower than "
                    f"{name}'s resolution there ({spacing:.3g}): its starts are not distinct; "
                    f"use a coarser grid, a wider domain or {how.split(' (')[0]}"
                )
    return domain


@dataclasses.dataclass(frozen=True, eq=False)
class MapConfig:
    """Everything that decides a basin map, checked once when built.

    Attributes:
        surface: a name or a 2D :class:`gdjax.Surface` (kept as the Surface).
        grid: n for an n x n grid of starts over the domain (for maps), or
        starts: N uniform random starts (for fractions; the key is given
            when the map runs). Exactly one of the two.
        steps: descent steps.
        lr: the rate: a number, or an array of them (a batch of maps, one
            program); None for a rule that holds its own (a schedule).
        rule: as in :func:`gdjax.descend`: ``"fixed"``, a schedule, or
            ``gdjax.optimizer(optax.sgd, momentum=[0.0, 0.9])`` (array
            settings broadcast with ``lr`` into the batch).
        tol: converged means |grad| < tol at the last step.
        domain: ((x0, x1), (y0, y1)); the surface's own by default.
        bound: a run ending beyond this |coordinate| without settling counts
            as diverged (default 1e10, as :func:`gdjax.descend`).
        global_tol: minima within ``global_tol * max(1, |f_min|)`` of the
            lowest count as global.
        chunk_size: the most descents per compiled call (default
            :func:`default_chunk_size`). Labels do not depend on it in
            practice, but end points may in their last bit: XLA's CPU code
            computes the last rows of each of a kernel's tasks apart, and
            which rows those are depends on the chunk and the number of
            devices; a label or a step can change only for a run on an edge
            (the tolerance, the claim radius). docs/basins.md gives the
            measured size.
        devices: how many devices each chunk is sharded over (default: all).
        unroll: ``lax.scan`` unrolling (speed only).
        check_every: the gradient norm is checked every this many steps (and
            at the last); optax rules check every step.
        label_on: ``"host"``, ``"device"`` or ``"auto"`` (the device on an
            accelerator, the host on a CPU); see :func:`gdjax.map_basins`.
        dtype: ``"float32"`` or ``"float64"``; default: JAX's default float
            when the config is built (float64 under ``jax.enable_x64``).
        attractors: label the attractors of the runs that end not converged
            (periodic orbits around a minimum, chaos, still moving):
            ``True`` for the default :class:`AttractorSettings`, or settings
            of one's own; ``False`` or None (default): minima only, and the
            map runs exactly as without the option. It needs plain gradient
            descent (``rule="fixed"``) or ``gdjax.optimizer(...)``, and the
            runs' end points on the host (``label_on="host"``; ``"auto"``
            picks it). Kept as an
            :class:`AttractorSettings` or None.

    Derived (not arguments): ``method`` (what fixes the program), ``hyper``
    (every number of the rule, as arrays), ``batch`` (the shape of the batch
    of hyperparameter sets) and ``chunk`` (starts per compiled call, a
    multiple of the device count).
    """

    surface: Any
    grid: int | None = None
    starts: int | None = None
    steps: int = 1000
    lr: Any = 0.01
    rule: Any = "fixed"
    tol: float = 1e-3
    domain: Any = None
    bound: float | None = None
    global_tol: float = 1e-6
    chunk_size: int | None = None
    devices: int | None = None
    unroll: int = 10
    check_every: int = 10
    label_on: str = "auto"
    dtype: str | None = None
    attractors: Any = None
    method: _engine.Method = dataclasses.field(init=False, repr=False)
    hyper: _engine.Hyper = dataclasses.field(init=False, repr=False)
    batch: tuple[int, ...] = dataclasses.field(init=False)
    chunk: int = dataclasses.field(init=False)

    def __post_init__(self):
        set_ = object.__setattr__
        surface = _get_surface(self.surface)
        if surface.dim != 2:
            raise ValueError(f"a basin map needs a 2D surface; {surface.name!r} is {surface.dim}D")
        set_(self, "surface", surface)
        if (self.grid is None) == (self.starts is None):
            raise ValueError("give exactly one of grid=n (a map) or starts=N (random starts)")
        if self.grid is not None:
            set_(self, "grid", _validate.check_count("grid", self.grid))
        else:
            set_(self, "starts", _validate.check_count("starts", self.starts))
        set_(self, "steps", _validate.check_count("steps", self.steps))
        _validate.check_positive("tol", self.tol)
        set_(self, "tol", float(self.tol))
        if self.label_on not in ("auto", "host", "device"):
            raise ValueError(f"label_on must be 'auto', 'host' or 'device', got {self.label_on!r}")
        attractors = self.attractors
        if attractors is True:
            attractors = AttractorSettings()
        elif attractors is False:
            attractors = None
        if not (attractors is None or isinstance(attractors, AttractorSettings)):
            raise ValueError(
                f"attractors must be True, False or an AttractorSettings, got {attractors!r}"
            )
        set_(self, "attractors", attractors)
        if attractors is not None:
            if not (
                isinstance(self.rule, _engine.OptaxFactory)
                or (isinstance(self.rule, str) and self.rule == "fixed")
            ):
                raise ValueError(
                    "attractor labelling continues the runs from their end points with a rate "
                    "as the map's parameter: rule='fixed' (plain gradient descent) or "
                    "gdjax.optimizer(...); a schedule's rate changes with the step and lesson "
                    f"D's with the gradient; got {self.rule!r}"
                )
            if self.label_on == "device":
                raise ValueError(
                    "attractor labelling continues the runs from their end points, which "
                    "label_on='device' does not bring back: use label_on='host' (or 'auto')"
                )
            set_(self, "label_on", "host")
        if self.label_on == "auto":
            set_(self, "label_on", "host" if jax.default_backend() == "cpu" else "device")
        size = default_chunk_size() if self.chunk_size is None else self.chunk_size
        set_(self, "chunk_size", _validate.check_count("chunk_size", size))
        set_(self, "unroll", _validate.check_count("unroll", self.unroll))
        set_(self, "check_every", _validate.check_count("check_every", self.check_every))
        dtype = _validate.check_dtype(self.dtype)
        if dtype == np.float64 and not jax.config.jax_enable_x64:
            raise ValueError(
                "a float64 map needs float64 enabled when it runs: build and run it inside "
                "jax.enable_x64(True) (gdjax basins --x64)"
            )
        set_(self, "dtype", str(dtype))
        bound = DEFAULT_BOUND if self.bound is None else self.bound
        _validate.check_positive("bound", bound)
        set_(self, "bound", float(bound))
        _validate.check_positive("global_tol", self.global_tol)
        set_(self, "global_tol", float(self.global_tol))
        _engine.check_lr(self.lr, dtype)
        method, h = _engine.resolve(
            self.rule, self.lr, steps=self.steps, dtype=dtype, tol=self.tol, bound=self.bound
        )
        set_(self, "method", method)
        set_(self, "hyper", h)
        set_(self, "batch", tuple(_engine.batch_shape(h)))
        if self.sets == 0:
            raise ValueError(
                f"the batch of hyperparameters is empty (shape {self.batch}): give at least "
                "one rate and one value of each setting"
            )
        dom = surface.domain if self.domain is None else self.domain
        set_(self, "domain", _check_resolved(_validate.check_domain(dom, 2), self.grid, dtype))
        n_dev = jax.device_count() if self.devices is None else self.devices
        if not (isinstance(n_dev, int | np.integer) and 1 <= n_dev <= jax.device_count()):
            raise ValueError(f"devices must be in 1..{jax.device_count()}, got {self.devices!r}")
        set_(self, "devices", int(n_dev))
        # one call runs sets x chunk descents: about chunk_size of them, in chunks
        # of equal size (the last one is padded: equal chunks waste the least)
        total = self.total
        chunk = min(max(1, self.chunk_size // self.sets), total)
        n_chunks = -(-total // chunk)
        chunk = -(-total // n_chunks)
        set_(self, "chunk", _chunks.aligned(chunk, self.devices))

    @property
    def total(self) -> int:
        """Starts of one map: grid^2, or N."""
        return self.grid * self.grid if self.grid is not None else self.starts

    @property
    def sets(self) -> int:
        """Hyperparameter sets in the batch (1 for a single map)."""
        return int(np.prod(self.batch, dtype=np.int64))

    @property
    def np_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    def replace(self, **changes) -> MapConfig:
        """A copy with some arguments changed, checked again."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
        return MapConfig(**{**fields, **changes})

    def cost(self, extra_per_start: int = 0) -> Cost:
        """Memory and disk for the whole batch (``extra_per_start``: bytes a
        caller keeps per run, such as figures)."""
        runs = self.total * self.sets
        step_bytes = 2 if self.steps < np.iinfo(np.int16).max else 4
        memory = memory_needed(runs, self.np_dtype, extra_per_start + self._orbit_bytes())
        orbit_steps = 0
        if self.attractors is not None:
            memory += self.attractors.chunk_bytes(self.np_dtype)
            orbit_steps = runs * self.attractors.steps
        return Cost(runs, memory, runs * (1 + step_bytes), orbit_steps)

    def _orbit_bytes(self) -> int:
        """Bytes per run the attractor stage keeps (which runs it continues,
        their kind, period and minimum): 0 when it is off."""
        return 0 if self.attractors is None else 16

    def check_memory(self, extra_per_start: int = 0) -> None:
        """:func:`check_memory` for this map's whole batch."""
        extra = extra_per_start + self._orbit_bytes()
        check_memory(self.total, self.np_dtype, extra, sets=self.sets)

    def settings(self) -> dict[str, np.ndarray]:
        """The batched hyperparameters by name (``lr``, and an optimizer's
        float settings), each of shape ``batch``."""
        out = {"lr": self.hyper.rate.base_lr} if self.lr is not None else {}
        out.update(self.hyper.opt)
        return {k: np.asarray(jnp.broadcast_to(v, self.batch)) for k, v in out.items()}

    def record(self, **changes) -> BasinConfig:
        """The settings as written to basins.json (``changes``: fields of
        :class:`BasinConfig` that differ, such as a tiled map's mode)."""
        lr = self.lr if np.ndim(self.lr) == 0 else np.asarray(self.lr).tolist()
        rec = BasinConfig(
            surface=self.surface.name,
            domain=[list(d) for d in self.domain],
            mode="grid" if self.grid is not None else "random",
            grid=self.grid,
            starts=self.total,
            steps=self.steps,
            lr=lr,
            rule=describe_rule(self.rule, self.lr),
            tol=self.tol,
            bound=self.bound,
            global_tol=self.global_tol,
            chunk_size=self.chunk,
            check_every=self.check_every,
            devices=self.devices,
            dtype=self.dtype,
            batch=list(self.batch),
            attractors=None if self.attractors is None else self.attractors.to_json(),
        )
        return dataclasses.replace(rec, **changes)
