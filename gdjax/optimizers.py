"""Optimizers side by side: gradient descent, momentum, Nesterov, Adam and
RMSprop on the same starts, in one compiled program.

Five optax optimizers are five programs (their states differ). Here they
are one: :func:`family` is an optax ``GradientTransformation`` whose
settings (all floats, so all data) select the update. Each preset in
:data:`PRESETS` equals its optax twin (:func:`twin`) up to float rounding
(tested step by step), so a batch of presets is a batch of hyperparameters,
and :func:`compare` maps the basins of all of them in one vmapped program
over (optimizer x start), with the minima found once (a minimum keeps its
index across optimizers).

The update, for gradient ``g`` at step ``t`` (counting from 1)::

    m <- momentum * m + (1 - dampening) * g
    v <- b2 * v + (1 - b2) * g^2                       (if adaptive)
    d  = nesterov ? momentum * m + (1 - dampening) * g : m
    d /= 1 - momentum^t                                (if bias_correction)
    v /= 1 - b2^t                                      (if bias_correction)
    s  = adaptive ? (eps_in_sqrt ? 1 / sqrt(v + eps) : 1 / (sqrt(v) + eps)) : 1
    x <- x - lr * s * d

========  ========  =========  ========  ========  ====  ===========  ===============
preset    momentum  dampening  nesterov  adaptive  b2    eps_in_sqrt  bias_correction
========  ========  =========  ========  ========  ====  ===========  ===============
gd        0         0          0         0         --    --           0
momentum  0.9       0          0         0         --    --           0
nesterov  0.9       0          1         0         --    --           0
adam      0.9 (b1)  0.9 (b1)   0         1         0.999 0            1
rmsprop   0         0          0         1         0.9   1            0
========  ========  =========  ========  ========  ====  ===========  ===============

(optax.sgd with ``momentum`` sums, ``m <- g + momentum * m``, and Nesterov
steps along ``g + momentum * m``; optax.adam keeps averages with bias
correction and puts eps outside the root; optax.rmsprop puts it inside.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike

from gdjax import _registry, _validate, basins
from gdjax.descent import optimizer
from gdjax.maps import summary

__all__ = [
    "PRESETS",
    "Comparison",
    "FamilyState",
    "Preset",
    "agreement",
    "compare",
    "near_minima",
    "family",
    "preset",
    "transitions",
    "twin",
]

_SETTINGS = (
    "momentum",
    "dampening",
    "nesterov",
    "adaptive",
    "b2",
    "eps",
    "eps_in_sqrt",
    "bias_correction",
)
"""The settings of :func:`family`, in order (every one a float: data)."""

_DEFAULTS = dict(
    momentum=0.0,
    dampening=0.0,
    nesterov=0.0,
    adaptive=0.0,
    b2=0.999,
    eps=1e-8,
    eps_in_sqrt=0.0,
    bias_correction=0.0,
)


class FamilyState(NamedTuple):
    """:func:`family`'s state: the step count and the two moments."""

    count: Array
    mu: Any
    nu: Any


def family(
    learning_rate: ArrayLike,
    momentum: ArrayLike = 0.0,
    dampening: ArrayLike = 0.0,
    nesterov: ArrayLike = 0.0,
    adaptive: ArrayLike = 0.0,
    b2: ArrayLike = 0.999,
    eps: ArrayLike = 1e-8,
    eps_in_sqrt: ArrayLike = 0.0,
    bias_correction: ArrayLike = 0.0,
) -> optax.GradientTransformation:
    """One optax transformation for GD, momentum, Nesterov, Adam and RMSprop
    (see the module's table). Every argument is a number or a traced array;
    the flags (``nesterov``, ``adaptive``, ``eps_in_sqrt``,
    ``bias_correction``) are 0.0 or 1.0, so a batch of optimizers is a batch
    of data, one program."""

    def init(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return FamilyState(count=jnp.zeros([], jnp.int32), mu=zeros, nu=zeros)

    def update(grads, state, params=None):
        del params
        count = state.count + 1
        dtype = jax.tree.leaves(grads)[0].dtype
        b1, damp, nest, adapt, decay, e, inside, debias = (
            jnp.asarray(v, dtype)
            for v in (
                momentum,
                dampening,
                nesterov,
                adaptive,
                b2,
                eps,
                eps_in_sqrt,
                bias_correction,
            )
        )
        t = count.astype(dtype)
        c1 = jnp.where(debias > 0, 1 - b1**t, jnp.ones([], dtype))
        c2 = jnp.where(debias > 0, 1 - decay**t, jnp.ones([], dtype))
        mu = jax.tree.map(lambda m, g: b1 * m + (1 - damp) * g, state.mu, grads)
        nu = jax.tree.map(
            lambda v, g: jnp.where(adapt > 0, decay * v + (1 - decay) * g * g, v),
            state.nu,
            grads,
        )

        def direction(m, g, v):
            d = jnp.where(nest > 0, b1 * m + (1 - damp) * g, m) / c1
            vh = v / c2
            # as optax: rmsprop multiplies by rsqrt(v + eps), adam divides by sqrt(v) + eps
            scaled = jnp.where(inside > 0, d * jax.lax.rsqrt(vh + e), d / (jnp.sqrt(vh) + e))
            return -jnp.asarray(learning_rate, dtype) * jnp.where(adapt > 0, scaled, d)

        updates = jax.tree.map(direction, mu, grads, nu)
        return updates, FamilyState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init, update)


class Preset(NamedTuple):
    """A named optimizer: its default rate and :func:`family` settings."""

    name: str
    lr: float
    settings: dict[str, float]
    words: str


def _words(name: str, s: Mapping[str, float]) -> str:
    words = _registry.OPTIMIZERS[name].words
    if name in ("momentum", "nesterov"):
        return f"{words} {s['momentum']:g}"
    if name == "adam":
        return f"{words} (b1 {s['momentum']:g}, b2 {s['b2']:g})"
    if name == "rmsprop":
        return f"{words} (decay {s['b2']:g})"
    return words


PRESETS: dict[str, Preset] = {
    name: Preset(
        name,
        0.01,
        dict(_registry.OPTIMIZERS[name].family),
        _words(name, {**_DEFAULTS, **dict(_registry.OPTIMIZERS[name].family)}),
    )
    for name in _registry.FAMILY
}
"""The optimizers :func:`compare` runs by default (every optimizer of
:mod:`gdjax._registry` with a :func:`family` form), with their default rates
(on peaks every one converges from most starts within 2000 steps)."""


def preset(
    name: str,
    lr: float | None = None,
    *,
    momentum: float | None = None,
    b1: float | None = None,
    b2: float | None = None,
    decay: float | None = None,
    eps: float | None = None,
) -> Preset:
    """A preset with its rate and settings changed. ``momentum`` is momentum's
    and Nesterov's, ``b1``/``b2`` Adam's, ``decay`` RMSprop's; a setting the
    optimizer does not have is refused, and so is a value outside its range
    (the same check as every command's, :mod:`gdjax._registry`)."""
    record = _registry.get(name, tuple(PRESETS))
    given = {"momentum": momentum, "b1": b1, "b2": b2, "decay": decay, "eps": eps}
    given = record.check({k: v for k, v in given.items() if v is not None}, family=True)
    settings = dict(PRESETS[name].settings)
    targets = dict(record.family_of)
    for key, value in given.items():
        for target in targets[key]:
            settings[target] = float(value)
    rate = PRESETS[name].lr if lr is None else lr
    _validate.check_positive(f"the rate of {name}", rate)
    return Preset(name, float(rate), settings, _words(name, {**_DEFAULTS, **settings}))


def twin(p: Preset) -> optax.GradientTransformation:
    """The optax optimizer a preset equals (for tests and for readers)."""
    s = {**_DEFAULTS, **p.settings}
    if p.name == "gd":
        return optax.sgd(p.lr)
    if p.name in ("momentum", "nesterov"):
        return optax.sgd(p.lr, momentum=s["momentum"], nesterov=p.name == "nesterov")
    if p.name == "adam":
        return optax.adam(p.lr, b1=s["momentum"], b2=s["b2"], eps=s["eps"])
    if p.name == "rmsprop":
        return optax.rmsprop(p.lr, decay=s["b2"], eps=s["eps"])
    raise ValueError(f"no optax twin for {p.name!r}")


def _batch(presets: Sequence[Preset]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The presets as one batch of data: rates and settings, one row each."""
    rows = [{**_DEFAULTS, **p.settings} for p in presets]
    lr = np.asarray([p.lr for p in presets], np.float64)
    return lr, {k: np.asarray([r[k] for r in rows], np.float64) for k in _SETTINGS}


def agreement(labels: ArrayLike) -> np.ndarray:
    """(k, k): the fraction of starts that reach the same minimum under
    optimizers i and j (both converged to it). ``labels`` is (k, N) with
    minimum indices >= 0 and the negative outcomes of
    :mod:`gdjax.basins`; the diagonal is each optimizer's converged
    fraction."""
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise ValueError(f"labels must be (optimizers, starts), got shape {lab.shape}")
    reached = lab >= 0
    same = (lab[:, None, :] == lab[None, :, :]) & reached[:, None, :]
    return same.mean(axis=-1)


def transitions(labels_a: ArrayLike, labels_b: ArrayLike, outcomes: Sequence[int]) -> np.ndarray:
    """(len(outcomes), len(outcomes)): the fraction of all starts whose
    outcome is ``outcomes[i]`` under optimizer a and ``outcomes[j]`` under b."""
    a, b = np.asarray(labels_a), np.asarray(labels_b)
    out = np.asarray(outcomes)
    ia = (a[:, None] == out[None]).argmax(axis=1)
    ib = (b[:, None] == out[None]).argmax(axis=1)
    counts = np.zeros((len(out), len(out)), np.int64)
    np.add.at(counts, (ia, ib), 1)
    return counts / max(a.size, 1)


def near_minima(final: ArrayLike, minima, radius: float) -> np.ndarray:
    """Per end point (..., 2): the index of the nearest minimum if it lies
    within ``radius``, else -1."""
    final = np.asarray(final, np.float64)
    if not len(minima):
        return np.full(final.shape[:-1], basins.NOT_CONVERGED, np.int32)
    locs = np.asarray([m.location for m in minima], np.float64)
    d2 = ((final[..., None, :] - locs) ** 2).sum(-1)
    nearest = d2.argmin(-1).astype(np.int32)
    return np.where(d2.min(-1) < radius**2, nearest, basins.NOT_CONVERGED).astype(np.int32)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The outcome of :func:`compare`.

    Attributes:
        presets: the optimizers, in order.
        bmap: the basin maps, batch axis = optimizer (``bmap.at(i)`` is one
            map); its labels use the gradient test (|grad| < tol).
        reached: (optimizers, starts) the minimum each run ended at: its
            label, or, for a run that did not pass the gradient test (nor
            diverged), the minimum within ``radius`` of its end (-1 if none).
            Adam and RMSprop at a constant rate hover around a minimum at a
            distance of about lr and may never pass the gradient test.
        radius: see ``reached``.
        fractions: :class:`gdjax.basins.Fractions` of ``reached`` (batch
            axis = optimizer).
        p_global: per optimizer, the fraction of starts that reached a
            global minimum (``reached``) with its 95% interval.
        agreement: :func:`agreement` of ``reached`` (the same minimum; an
            attractor is no minimum).

    With attractor labelling (``compare(..., attractors=True)``) the runs
    that end not converged, and not within ``radius`` of a minimum, are
    labelled by :mod:`gdjax.maps.orbit_labels`: ``reached`` holds
    ``FIRST_ATTRACTOR - a`` (-3 - a) for attractor ``a`` of
    ``bmap.attractors`` and -1 for the runs still moving, and
    ``fractions`` has a key per attractor (``"period 2 around min 0"``,
    ``"chaotic"``) and ``"moving"`` instead of ``"not_converged"``.
    """

    presets: tuple[Preset, ...]
    bmap: basins.BasinMap
    reached: np.ndarray
    radius: float
    fractions: basins.Fractions
    p_global: basins.Estimate
    agreement: np.ndarray

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.presets]

    def index(self, name: str) -> int:
        if name not in self.names:
            raise ValueError(f"no optimizer {name!r} here; these are {', '.join(self.names)}")
        return self.names.index(name)

    @property
    def outcomes(self) -> list[tuple[int, str]]:
        """Every outcome as (label, fractions key): the minima, the
        attractors (with attractor labelling), moving or not converged,
        diverged; :func:`transitions` takes the labels."""
        bmap = self.bmap
        table = bmap.attractors
        labels = list(range(len(bmap.minima)))
        labels += [summary.FIRST_ATTRACTOR - a for a in range(0 if table is None else len(table))]
        labels += [basins.NOT_CONVERGED, basins.DIVERGED]
        return [(label, bmap.outcome(label)) for label in labels]

    def transitions(self, a: str, b: str) -> np.ndarray:
        """:func:`transitions` from optimizer ``a`` to ``b`` over
        :attr:`outcomes`, attractors included."""
        labels = [label for label, _ in self.outcomes]
        return transitions(self.reached[self.index(a)], self.reached[self.index(b)], labels)

    def at(self, name: str) -> basins.BasinMap:
        """One optimizer's map (gradient-test labels)."""
        return self.bmap.at(self.index(name))


def compare(
    surface,
    presets: Sequence[Preset | str] = tuple(PRESETS),
    *,
    grid: int | None = None,
    starts: int | None = None,
    key: Array | None = None,
    steps: int = 2000,
    tol: float = 1e-3,
    radius: float | None = None,
    domain=None,
    bound: float | None = None,
    global_tol: float = 1e-6,
    chunk_size: int | None = None,
    attractors=False,
    progress=None,
) -> Comparison:
    """Maps the basins of every optimizer from the same starts, as one
    program over (optimizer x start) (a :class:`gdjax.basins.MapConfig`
    whose batch is the :func:`family` settings of the presets). ``surface``
    is a surface (with the map's options below, ``map_basins``'s) or a
    MapConfig (its rate and rule are the presets'). ``radius`` (default: 1%
    of the domain's width, the radius within which a map claims a converged
    end for a minimum) decides which ends count as having reached a minimum
    (see :class:`Comparison`).

    ``attractors`` (True or a :class:`gdjax.maps.config.AttractorSettings`;
    off by default) labels what the runs that end not converged reach, as
    ``gdjax basins --attractors`` does: :func:`gdjax.basins.run_map`
    (:func:`gdjax.maps.orbit_labels.run_map`) continues each from its end
    point with its own optimizer and a fresh optimizer state. A run that
    ends within ``radius`` of a minimum counts as having reached it first,
    so the option changes no minimum's fraction; it splits the rest into
    attractors and moving."""
    presets = tuple(preset(p) if isinstance(p, str) else p for p in presets)
    if not presets:
        raise ValueError("give at least one optimizer")
    names = [p.name for p in presets]
    if len(set(names)) != len(names):
        raise ValueError(f"each optimizer once, got {', '.join(names)}")
    if radius is not None:
        _validate.check_positive("radius", radius)
    lr, settings = _batch(presets)
    rule = optimizer(family, **settings)
    # the end points are read below (runs hovering near a minimum): labelled on the host
    if isinstance(surface, basins.MapConfig):
        config = surface.replace(lr=lr, rule=rule, label_on="host", attractors=attractors)
    else:
        config = basins.MapConfig(
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
            label_on="host",
            attractors=attractors,
        )
    bmap = basins.run_map(config, key=key, progress=progress)  # with attractors if asked
    if radius is None:
        radius = 1e-2 * max(hi - lo for lo, hi in bmap.domain)
    # not converged (moving, or an attractor): a minimum within the radius first
    hover = (bmap.labels == basins.NOT_CONVERGED) | (bmap.labels <= summary.FIRST_ATTRACTOR)
    near = near_minima(bmap.final, bmap.minima, radius)
    reached = np.where(hover & (near >= 0), near, bmap.labels)
    n = reached.shape[-1]
    names = None if bmap.attractors is None else bmap.attractors.names
    fractions = summary.fractions(reached, len(bmap.minima), names)
    glob = np.isin(reached, list(bmap.global_minima)).sum(-1)
    p_global = basins.Estimate(*basins.wilson_interval(glob, n))
    return Comparison(
        presets,
        bmap,
        reached.astype(np.int32),
        float(radius),
        fractions,
        p_global,
        agreement(reached),
    )
