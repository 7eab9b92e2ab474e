"""Continuation of basins over the learning rate.

The basin map of plain gradient descent at every rate of a grid, computed as
one program over (rate x start) (:func:`gdjax.basins.map_basins` with an
array of rates: the rates are data, so the whole sweep compiles once and is
sharded like any map). The minima are found once for the whole sweep, so a
minimum keeps its index across rates, and each basin's fraction can be
followed as the rate grows.

Gradient descent cannot converge to a minimum whose Hessian has an
eigenvalue above ``2 / lr``: the step overshoots along that direction and
the error grows by ``|1 - lr * lambda| > 1`` per step. Each minimum's
*stability limit* ``2 / lambda_max`` is where its basin must vanish; the
continuation measures where it does, and the fractal measures
(:mod:`gdjax.fractal`) of each map show how the boundaries roughen as the
rate grows.

Beyond a minimum's limit its starts do not stop: gradient descent there has
periodic orbits around the minimum (period 2 just past the limit, then 4,
...) and chaos. A continuation of maps with attractor labelling
(``continuation(..., attractors=True)`` or ``MapConfig(attractors=True)``;
:mod:`gdjax.maps.orbit_labels`) labels them, and
:attr:`Continuation.destinations` says where each vanished basin's starts go
at the rates beyond it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import jax
import numpy as np
from jaxtyping import Array, ArrayLike

from gdjax import _progress, _validate, basins, fractal
from gdjax._progress import Progress
from gdjax.maps.critical import stability_limit as stability_limit
from gdjax.surfaces import Surface

__all__ = [
    "Continuation",
    "Destination",
    "FractalMeasures",
    "Vanishing",
    "check_rates",
    "continuation",
    "classifier",
    "destinations",
    "from_maps",
    "stability_limit",
    "measure",
    "uncertainty",
    "vanishing",
]


class FractalMeasures(NamedTuple):
    """Per rate: the box-counting dimension of the basin boundaries, the basin
    entropy and the boundary basin entropy (:mod:`gdjax.fractal`)."""

    box_dimension: np.ndarray
    basin_entropy: np.ndarray
    boundary_entropy: np.ndarray


class Vanishing(NamedTuple):
    """Where one minimum's basin vanishes as the rate grows.

    Attributes:
        minimum: its index.
        stability_limit: 2 / lambda_max of its Hessian (inf if it has no
            positive eigenvalue).
        last_seen: the largest rate of the grid at which some start still
            reaches it (None if no start ever does).
        vanished_at: the next rate of the grid: from there on no start
            reaches it (None if it survives the whole grid). The basin
            vanishes between the two.
        past_limit: how many runs, over every rate beyond the stability
            limit, still count as reaching it. In exact arithmetic none can;
            in float32 a run that lands within rounding of the now unstable
            minimum can stay there (float64 removes them), and just past the
            limit a period-2 orbit of small amplitude can pass the gradient
            test.
    """

    minimum: int
    stability_limit: float
    last_seen: float | None
    vanished_at: float | None
    past_limit: int = 0


class Destination(NamedTuple):
    """Where the starts of a vanished basin go, over a range of rates.

    Attributes:
        minimum: the basin's minimum.
        label: the outcome most of its starts reach over the range (a label
            of the maps: a minimum, an attractor, -1, -2).
        outcome: that outcome's key in the fractions ("period 2 around min
            0", "chaotic", "moving", "1", ...).
        lr_from, lr_to: the first and last rate of the grid in the range.
        share: the mean share, over the range's rates, of the basin's starts
            that reach it (the basin: the starts that reached the minimum at
            the last rate it was seen).
    """

    minimum: int
    label: int
    outcome: str
    lr_from: float
    lr_to: float
    share: float


@dataclasses.dataclass(frozen=True)
class Continuation:
    """The outcome of :func:`continuation`.

    Attributes:
        lrs: the rates, increasing.
        bmap: the basin maps, batch axis = rate (``bmap.at(i)`` is one map).
        stability_limits: per minimum, 2 / lambda_max of its Hessian.
        vanishing: per minimum, a :class:`Vanishing`.
        fractal: :class:`FractalMeasures`, one value per rate (grid maps).
        box: the box size of the basin entropies, in pixels.
        uncertainty: rate index -> :class:`gdjax.fractal.Uncertainty` at the
            rates where it was measured (:func:`uncertainty`; none by
            default).
        config: the :class:`gdjax.basins.MapConfig` the maps ran from.
        destinations: minimum -> its :class:`Destination` ranges, for every
            basin that vanished within the grid (:func:`destinations`).
    """

    lrs: np.ndarray
    bmap: basins.BasinMap
    stability_limits: np.ndarray
    vanishing: tuple[Vanishing, ...]
    fractal: FractalMeasures | None
    box: int
    uncertainty: Mapping[int, fractal.Uncertainty] = dataclasses.field(default_factory=dict)
    config: basins.MapConfig | None = dataclasses.field(default=None, repr=False)
    destinations: Mapping[int, tuple[Destination, ...]] = dataclasses.field(default_factory=dict)

    def fraction(self, outcome: str) -> np.ndarray:
        """The fraction of starts with ``outcome`` ("0", "1", ...,
        "diverged", "not_converged"; with attractors "moving" and the
        attractors' names) at every rate."""
        return np.asarray(self.bmap.fractions[outcome].fraction)


def vanishing(lrs: ArrayLike, fractions: ArrayLike) -> tuple[float | None, float | None]:
    """(last_seen, vanished_at) of one basin from its fraction at each rate
    (see :class:`Vanishing`)."""
    lrs, fr = np.asarray(lrs), np.asarray(fractions)
    alive = np.flatnonzero(fr > 0)
    if alive.size == 0:
        return None, None
    last = int(alive[-1])
    if last == len(lrs) - 1:
        return float(lrs[last]), None
    return float(lrs[last]), float(lrs[last + 1])


def continuation(
    surface: str | Surface | basins.MapConfig,
    *,
    lrs: ArrayLike | None = None,
    grid: int | None = None,
    steps: int = 2000,
    tol: float = 1e-3,
    domain=None,
    bound: float | None = None,
    global_tol: float = 1e-6,
    box: int = 5,
    x64: bool = False,
    chunk_size: int | None = None,
    attractors=None,
    progress: Progress | None = None,
) -> Continuation:
    """Maps the basins of gradient descent at every rate of ``lrs`` (one
    program over rate x start), then measures where each basin vanishes and
    the fractal measures of every map.

    Args:
        surface: a 2D surface or its name, with the map's settings below; or
            a :class:`gdjax.basins.MapConfig` of a grid whose ``lr`` is the
            rates (then only ``box`` and ``progress`` go with it).
        lrs: increasing positive rates (e.g. ``np.geomspace(1e-3, 0.2, 64)``).
        grid: n for an n x n grid of starts.
        steps, tol, domain, bound, global_tol, chunk_size, attractors,
            progress: as in :func:`gdjax.basins.map_basins` (``attractors``:
            label what the runs that do not converge reach).
        box: the box size (pixels) of the basin entropies.
        x64: compute in float64 (about twice the time on a CPU).
    """
    if isinstance(surface, basins.MapConfig):
        config = surface
        if lrs is not None or grid is not None:
            raise ValueError("give a MapConfig, or a surface with lrs= and grid=, not both")
    else:
        if lrs is None or grid is None:
            raise ValueError("continuation needs lrs=[...] and grid=n (or a MapConfig)")
        lrs = check_rates(lrs)
        with jax.enable_x64(x64):
            config = basins.MapConfig(
                surface,
                grid=grid,
                steps=steps,
                lr=lrs,
                tol=tol,
                domain=domain,
                bound=bound,
                global_tol=global_tol,
                chunk_size=chunk_size,
                attractors=attractors,
            )
    _check_config(config, box)
    with jax.enable_x64(config.dtype == "float64"):
        bmap = basins.run_map(config, progress=progress)
    return from_maps(config, bmap, box=box)


def _check_config(config: basins.MapConfig, box: int) -> int:
    lrs = check_rates(config.lr)
    if config.grid is None or config.batch != lrs.shape or not isinstance(config.rule, str):
        raise ValueError("a continuation maps a grid with plain gradient descent at lr=rates")
    box = _validate.check_count("box", box)
    if box < 2 or box > config.grid:
        raise ValueError(f"box must be in 2..grid ({config.grid}), got {box}")
    return box


def from_maps(config: basins.MapConfig, bmap: basins.BasinMap, *, box: int = 5) -> Continuation:
    """The continuation's measures of maps already made from ``config`` (a
    grid whose ``lr`` is the rates): each minimum's stability limit and
    vanishing, the fractal measures of every map, and where each vanished
    basin's starts go. The fractal measures read the boundaries of the
    minima's basins and of the not-converged starts, every attractor counted
    as not converged (as :func:`uncertainty`'s re-run descents classify), so
    they are the same with attractor labelling and without.
    :func:`continuation` is ``from_maps(config, run_map(config))``."""
    box = _check_config(config, box)
    lrs = check_rates(config.lr)
    if bmap.batch != lrs.shape or bmap.grid != (config.grid, config.grid):
        raise ValueError("bmap is not the maps of this config")
    limits = np.asarray([stability_limit(m.eigenvalues) for m in bmap.minima], np.float64)
    n = bmap.labels.shape[-1]
    vanish = []
    for i in range(len(bmap.minima)):
        fr = np.asarray(bmap.fractions[str(i)].fraction)
        past = int(np.rint(fr[lrs > limits[i]] * n).sum())
        vanish.append(Vanishing(i, float(limits[i]), *vanishing(lrs, fr), past_limit=past))
    vanish = tuple(vanish)
    # the minima's basins and the rest, as the uncertainty exponent classifies:
    # every attractor (labels below DIVERGED) counts as not converged
    grids = bmap.label_grid()
    fractal_measures = measure(np.where(grids < basins.DIVERGED, basins.NOT_CONVERGED, grids), box)
    cont = Continuation(lrs, bmap, limits, vanish, fractal_measures, box, config=config)
    return dataclasses.replace(cont, destinations=destinations(cont))


def destinations(cont: Continuation) -> dict[int, tuple[Destination, ...]]:
    """Where the starts of each basin that vanished within the grid go at
    every rate beyond: the starts that reached the minimum at the last rate
    it was seen, and at each later rate the outcome most of them reach;
    consecutive rates with the same outcome are one :class:`Destination`
    (its share the mean over them). With attractor labelling the outcomes
    include the periodic orbits and chaos; without, "not_converged"."""
    bmap = cont.bmap
    out: dict[int, tuple[Destination, ...]] = {}
    for v in cont.vanishing:
        if v.last_seen is None or v.vanished_at is None:
            continue
        last = int(np.flatnonzero(cont.lrs == v.last_seen)[0])
        basin = bmap.labels[last] == v.minimum
        ranges: list[Destination] = []
        shares: list[float] = []
        for j in range(last + 1, len(cont.lrs)):
            went, counts = np.unique(bmap.labels[j][basin], return_counts=True)
            top = int(went[np.argmax(counts)])
            share = float(counts.max() / basin.sum())
            lr = float(cont.lrs[j])
            if ranges and ranges[-1].label == top:
                shares.append(share)
                ranges[-1] = ranges[-1]._replace(lr_to=lr, share=float(np.mean(shares)))
            else:
                shares = [share]
                ranges.append(Destination(v.minimum, top, bmap.outcome(top), lr, lr, share))
        out[v.minimum] = tuple(ranges)
    return out


def check_rates(lrs: ArrayLike) -> np.ndarray:
    """The rates of a continuation: 1-D, positive, finite and increasing."""
    lrs = np.asarray(lrs, np.float64)
    if lrs.ndim != 1 or lrs.size < 1:
        raise ValueError(f"lrs must be a 1-D list of rates, got shape {lrs.shape}")
    _validate.check_positive("lrs", lrs)
    if lrs.size > 1 and not np.all(np.diff(lrs) > 0):
        raise ValueError("lrs must increase")
    return lrs


def measure(label_grids: np.ndarray, box: int = 5) -> FractalMeasures:
    """:class:`FractalMeasures` of a stack of label images (rate, ny, nx)."""
    dims, sb, sbb = [], [], []
    for labels in label_grids:
        dims.append(float(fractal.box_dimension(labels)))
        ent = fractal.basin_entropy(labels, box=box)
        sb.append(float(ent.Sb))
        sbb.append(float(ent.Sbb))
    return FractalMeasures(*(np.asarray(v, np.float64) for v in (dims, sb, sbb)))


def classifier(cont: Continuation, index: int) -> Callable[[Array], Array]:
    """Starts -> outcomes of plain gradient descent at the rate ``lrs[index]``
    (:func:`gdjax.fractal.descent_classifier` of the continuation's
    :class:`gdjax.basins.MapConfig` at that rate), labelled as the map at
    that rate is: against its minima, with its steps, tolerance, bound and
    domain. Call it under ``jax.enable_x64`` for a float64 continuation."""
    if not 0 <= index < len(cont.lrs):
        raise ValueError(f"rate index {index} is outside 0..{len(cont.lrs) - 1}")
    if cont.config is None:
        raise ValueError("this continuation carries no MapConfig: make it with continuation()")
    with jax.enable_x64(cont.config.dtype == "float64"):
        at = cont.config.replace(lr=float(cont.lrs[index]))
    return fractal.descent_classifier(at, minima=cont.bmap.minima)


def uncertainty(
    cont: Continuation,
    rates: Sequence[int],
    *,
    key: Array,
    n: int = 1 << 16,
    eps: ArrayLike | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[int, fractal.Uncertainty]:
    """The uncertainty exponent of the map at each rate index in ``rates``
    (:func:`gdjax.fractal.uncertainty_exponent` of :func:`classifier`):
    descents re-run from ``n`` random starts per perturbation size ``eps``
    and from their perturbations, compiled once for every rate. Its
    dimension 2 - alpha checks the box-counting dimension, which reads the
    map's pixels. ``progress`` gets (descents done, descents) over all the
    rates.

    Returns:
        rate index -> :class:`gdjax.fractal.Uncertainty`.
    """
    picked = [int(i) for i in rates]
    classify = {i: classifier(cont, i) for i in picked}  # every index checked first
    dom = tuple(tuple(d) for d in cont.bmap.config.domain)
    found = {}
    with jax.enable_x64(cont.bmap.config.dtype == "float64"):
        for k, i in enumerate(picked):
            found[i] = fractal.uncertainty_exponent(
                classify[i],
                dom,
                key=jax.random.fold_in(key, i),
                n=n,
                eps=eps,
                progress=_progress.part(progress, k, len(picked)),
            )
    return found
