"""Basins of attraction: which minimum gradient descent reaches from each start.

``map_basins`` descends from a regular grid over a 2D surface's domain (for
maps) or from N uniform random starts (for fractions) in one jitted, vmapped
program, chunked (memory does not grow with the number of starts or steps:
each start keeps only its final point and convergence step) and sharded over
all devices. It then discovers the minima without being told them
(clustering the converged end points, refining them with Newton's method and
classifying them by the eigenvalues of ``jax.hessian``), labels every start,
and computes basin fractions with 95% Wilson intervals.

It is the keyword form of the path every map takes (:mod:`gdjax.maps`):
a :class:`MapConfig` checked once -> :func:`run_map` (the one runner) -> a
:class:`BasinMap`. Labels: ``i >= 0`` the index of the minimum reached
(minima sorted by value, so 0 is the lowest found), ``NOT_CONVERGED`` (-1:
gradient norm still above ``tol`` at the last step) and ``DIVERGED`` (-2:
non-finite, or beyond ``bound``). Never a NaN.

Beyond a minimum's stability limit the runs that end not converged are on
periodic orbits around it, chaotic, or still moving:
``map_basins(..., attractors=True)`` (or :func:`run_map` of a
``MapConfig(attractors=True)``) labels them (labels -3, -4, ... for the
attractors of ``BasinMap.attractors``; :mod:`gdjax.maps.summary`, and
:mod:`gdjax.maps.orbit_labels` for how).

``critical_points`` finds every critical point in the domain (minima,
saddles, maxima) by Newton's method on the gradient from a grid of starts.
"""

from __future__ import annotations

import os

import jax
from jaxtyping import Array

from gdjax._progress import Progress
from gdjax.maps.config import BasinConfig as BasinConfig
from gdjax.maps.config import MapConfig as MapConfig
from gdjax.maps.config import check_memory as check_memory
from gdjax.maps.config import grid_starts as grid_starts
from gdjax.maps.critical import critical_points as critical_points
from gdjax.maps.orbit_labels import run_map as run_map
from gdjax.maps.summary import DIVERGED as DIVERGED
from gdjax.maps.summary import NOT_CONVERGED as NOT_CONVERGED
from gdjax.maps.summary import BasinMap as BasinMap
from gdjax.maps.summary import CriticalPoint as CriticalPoint
from gdjax.maps.summary import Estimate as Estimate
from gdjax.maps.summary import Fractions as Fractions
from gdjax.maps.summary import Timing as Timing
from gdjax.maps.summary import best_of_k as best_of_k
from gdjax.maps.summary import global_minima as global_minima
from gdjax.maps.summary import simulate_best_of_k as simulate_best_of_k
from gdjax.maps.summary import wilson_interval as wilson_interval
from gdjax.surfaces import Surface

__all__ = [
    "DIVERGED",
    "NOT_CONVERGED",
    "BasinConfig",
    "BasinMap",
    "CriticalPoint",
    "Estimate",
    "Fractions",
    "MapConfig",
    "Timing",
    "best_of_k",
    "check_memory",
    "critical_points",
    "global_minima",
    "grid_starts",
    "map_basins",
    "run_map",
    "simulate_best_of_k",
    "use_all_cores",
    "wilson_interval",
]


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
    progress: Progress | None = None,
    label_on: str = "auto",
    attractors=None,
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
            default 2^17 on a CPU, 2^22 on an accelerator (fewer calls,
            fewer kernel launches). Labels do not depend on it.
        devices: how many devices to shard each chunk over (default: all).
        unroll: ``lax.scan`` unrolling (speed only).
        check_every: the gradient norm is checked every this many steps (and
            at the last step), so ``converged_step`` is a multiple of it (or
            ``steps``); 1 is exact but slower (docs/basins.md). Optax rules
            always check every step.
        progress: called with (runs done, runs): once with 0 when
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
        attractors: None (default): the runs that end not converged are
            labelled -1. True, or a
            :class:`gdjax.maps.config.AttractorSettings`: they are continued
            and labelled with what they reach, a periodic orbit around a
            minimum, chaos, or still moving (plain gradient descent; labels
            in :mod:`gdjax.maps.summary`).

    Returns:
        A :class:`BasinMap`: ``run_map(MapConfig(surface, ...), key=key,
        progress=progress)``, the keyword form of :class:`MapConfig` and
        :func:`run_map`.
    """
    config = MapConfig(
        surface,
        grid=grid,
        starts=starts,
        steps=steps,
        lr=lr,
        rule=rule,
        tol=tol,
        domain=domain,
        bound=bound,
        global_tol=global_tol,
        chunk_size=chunk_size,
        devices=devices,
        unroll=unroll,
        check_every=check_every,
        label_on=label_on,
        attractors=attractors,
    )
    if starts is not None and key is None:
        raise ValueError("random starts need key=jax.random.key(seed)")
    return run_map(config, key=key, progress=progress)


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
