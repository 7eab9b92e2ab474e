"""What a basin map is: labels, fractions, minima, and their statistics.

Labels (int32, never a NaN):

* ``i >= 0``: the index of the minimum reached (minima sorted by value, so 0
  is the lowest found);
* :data:`NOT_CONVERGED` (-1): gradient norm still above ``tol`` at the last
  step. With attractor labelling on (``MapConfig(attractors=...)``) it
  narrows to *moving*: not converged, and on no periodic orbit and not
  chaotic; still moving at the step limit (a crawl over a plateau, a slow
  approach, a period beyond ``max_period``);
* :data:`DIVERGED` (-2): non-finite, or beyond ``bound``;
* ``FIRST_ATTRACTOR - a`` (-3, -4, ...; only with attractor labelling on):
  attractor ``a`` of :attr:`BasinMap.attractors` (an :class:`AttractorTable`),
  reached by a run that ended not converged: a periodic orbit (its period,
  and the minimum it surrounds) or chaos.

So ``label >= 0`` is always a minimum reached and ``label < 0`` never is;
attractor labelling splits only the not-converged runs and leaves every
other label as it was. Fractions (keys ``"diverged"``, ``"not_converged"``
or, with attractors, ``"moving"``, the minima's indices, then the
attractors' names such as ``"period 2 around min 0"`` and ``"chaotic"``)
carry 95% Wilson intervals and sum to 1; the chance that the best of k
restarts reaches a global minimum is :func:`best_of_k`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np
from jaxtyping import ArrayLike

from gdjax import _engine
from gdjax.descent import describe_rule
from gdjax.maps.config import BasinConfig
from gdjax.surfaces import Surface

__all__ = [
    "DIVERGED",
    "FIRST_ATTRACTOR",
    "NOT_CONVERGED",
    "AttractorTable",
    "BasinMap",
    "CriticalPoint",
    "Estimate",
    "Fractions",
    "Timing",
    "best_of_k",
    "fractions",
    "global_minima",
    "reach_global",
    "simulate_best_of_k",
    "wilson_interval",
]

NOT_CONVERGED = -1
DIVERGED = -2
FIRST_ATTRACTOR = -3
"""The label of attractor 0 of :attr:`BasinMap.attractors`; attractor ``a``
is ``FIRST_ATTRACTOR - a``."""


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


@dataclasses.dataclass(frozen=True)
class AttractorTable:
    """The attractors other than minima that a map's not-converged runs
    reach (:mod:`gdjax.maps.orbit_labels`), one table for the whole batch of
    hyperparameter sets (as the minima are): attractor ``a`` has the label
    ``FIRST_ATTRACTOR - a`` in every map of the batch.

    Attributes:
        names: the outcome of each, as in :attr:`BasinMap.fractions`:
            ``"period 2 around min 0"``, ``"period 3"`` (a cycle around no
            minimum), ``"chaotic"``.
        kind: ``"periodic"`` or ``"chaotic"``.
        period: the period (0 for chaos).
        minimum: the index of the minimum a cycle surrounds (in
            :attr:`BasinMap.minima`), -1 for none (and for chaos).
        points: (*batch, A, K, 2) where the attractor lies at each set,
            NaN-padded: a cycle's points (up to 4 distinct cycles of the same
            period around the same minimum, one after the other), or a
            sample of the chaotic runs' last points; all NaN at a set where
            no run reaches it.
        lyapunov: (*batch, A) the mean largest Lyapunov exponent of its runs
            (nats per step; NaN where no run reaches it).
        continued: (*batch,) how many not-converged runs were continued.
        slow: (*batch,) how many were not: their last step moved them less
            than the period tolerance (:func:`gdjax.attractors.orbits` would
            read a fixed point), so they are moving.
        settings: the :class:`gdjax.maps.config.AttractorSettings` used,
            the period tolerance ``rtol`` and the ``seconds`` the labelling
            took, as a dict.
    """

    names: tuple[str, ...]
    kind: tuple[str, ...]
    period: tuple[int, ...]
    minimum: tuple[int, ...]
    points: np.ndarray
    lyapunov: np.ndarray
    continued: np.ndarray
    slow: np.ndarray
    settings: dict

    def __len__(self) -> int:
        return len(self.names)

    @staticmethod
    def label(a: int) -> int:
        """The label of attractor ``a``."""
        return FIRST_ATTRACTOR - int(a)

    @staticmethod
    def index(label: int) -> int:
        """The attractor of a label (<= FIRST_ATTRACTOR)."""
        return FIRST_ATTRACTOR - int(label)

    def at(self, index: tuple) -> AttractorTable:
        """The table at one hyperparameter set of a batch."""
        return dataclasses.replace(
            self,
            points=self.points[index],
            lyapunov=self.lyapunov[index],
            continued=self.continued[index],
            slow=self.slow[index],
        )

    def cycle(self, a: int, *index: int) -> np.ndarray:
        """Attractor ``a``'s points at one set (``index``: the set's indices
        in the batch, none for a single map), NaN rows dropped: (k, 2)."""
        pts = self.points[index + (a,)] if index else self.points[..., a, :, :]
        if pts.ndim != 2:
            raise ValueError(f"give the set's {pts.ndim - 2} indices in the batch")
        return pts[np.all(np.isfinite(pts), axis=1)]

    def to_json(self, fractions: Fractions) -> dict:
        """The table for basins.json and continuation.json: every attractor
        with its label, kind, period, minimum, fraction and 95% interval (lists
        over a batch), its points (lists of [x, y] per set) and its mean
        Lyapunov exponent (None where no run reaches it); the runs continued
        and left moving, and the settings."""

        table = []
        for a, name in enumerate(self.names):
            est = fractions[name]
            pts = self.points[..., a, :, :]
            flat = pts.reshape((-1,) + pts.shape[-2:])
            shown = [p[np.all(np.isfinite(p), axis=1)].tolist() for p in flat]
            table.append(
                {
                    "name": name,
                    "label": self.label(a),
                    "kind": self.kind[a],
                    "period": self.period[a],
                    "minimum": self.minimum[a],
                    **dict(zip(Estimate._fields, map(_plain, est), strict=True)),
                    "points": shown[0] if pts.ndim == 2 else _nest(shown, pts.shape[:-2]),
                    "lyapunov": _finite_list(np.asarray(self.lyapunov[..., a], np.float64)),
                }
            )
        return {
            "labels": "label = -3 - index in this table; -1 moving (not converged, no "
            "periodic orbit or chaos found); -2 diverged; >= 0 a minimum",
            "table": table,
            "continued": _plain(np.asarray(self.continued).astype(np.int64)),
            "slow": _plain(np.asarray(self.slow).astype(np.int64)),
            "settings": dict(self.settings),
        }


def _finite_list(a: np.ndarray):
    """An array as (nested) lists, NaN as None (strict JSON has no NaN)."""
    if a.ndim == 0:
        return float(a) if np.isfinite(a) else None
    return [_finite_list(x) for x in a]


def _nest(flat: list, shape: tuple) -> list:
    """A flat list of per-set items nested to the batch's shape."""
    if len(shape) <= 1:
        return flat
    step = len(flat) // shape[0]
    return [_nest(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


class Estimate(NamedTuple):
    """A fraction and its 95% Wilson interval (floats, or arrays over a batch
    of hyperparameters)."""

    fraction: Any
    ci_low: Any
    ci_high: Any


@dataclasses.dataclass(frozen=True)
class Fractions(Mapping):
    """Basin fractions: outcome -> :class:`Estimate`.

    Outcomes: ``"diverged"``, ``"not_converged"`` (``"moving"`` with
    attractor labelling), then the minima's indices as strings (``"0"`` is
    the lowest), then the attractors' names (:class:`AttractorTable`); they
    sum to 1. ``fraction``, ``ci_low`` and
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
        attractors: with attractor labelling on, the :class:`AttractorTable`
            of the periodic orbits and chaos that not-converged runs reach
            (labels ``FIRST_ATTRACTOR - a``); None when it is off.
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
    attractors: AttractorTable | None = None

    def outcome(self, label: int) -> str:
        """The key of :attr:`fractions` that a label counts under."""
        label = int(label)
        if label >= 0:
            return str(label)
        if label == DIVERGED:
            return "diverged"
        if label == NOT_CONVERGED:
            return "not_converged" if self.attractors is None else "moving"
        if self.attractors is None or not 0 <= AttractorTable.index(label) < len(self.attractors):
            raise ValueError(f"label {label} is no outcome of this map")
        return self.attractors.names[AttractorTable.index(label)]

    def outcome_words(self, label: int) -> str:
        """A label in words: "min 0", "period 2 around min 0", "chaotic",
        "moving", "not converged", "diverged"."""
        key = self.outcome(label)
        if label >= 0:
            return f"min {key}"
        return key.replace("_", " ")

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
            attractors=None if self.attractors is None else self.attractors.at(index),
        )


class Timing(NamedTuple):
    """Seconds descending (compile excluded), compile seconds (0 when the
    program was cached), restart-steps per second, and how many runs met a
    non-finite value and were run again to find their last finite point."""

    seconds: float
    compile_seconds: float
    restart_steps_per_second: float
    refrozen: int


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
    p = float(p_global)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p_global is a probability in [0, 1], got {p_global!r}")
    ks = np.asarray(ks, dtype=np.float64)
    if not np.all(np.isfinite(ks) & (ks >= 1) & (ks == np.round(ks))):
        raise ValueError(f"ks are counts of restarts (whole numbers >= 1), got {ks.tolist()}")
    return 1.0 - (1.0 - p) ** ks


def global_minima(minima: tuple[CriticalPoint, ...], tol: float = 1e-6) -> tuple[int, ...]:
    """Indices of the minima whose value is within ``tol * max(1, |f_min|)`` of
    the lowest (``minima`` sorted by value, as :func:`map_basins` returns them)."""
    if not minima:
        return ()
    lowest = min(m.value for m in minima)
    slack = tol * max(1.0, abs(lowest))
    return tuple(i for i, m in enumerate(minima) if m.value - lowest <= slack)


def reach_global(labels: np.ndarray, glob: Sequence[int]) -> Estimate:
    """The chance that a run reaches one of the global minima ``glob``, with
    its Wilson interval, over the last axis of ``labels`` (floats for one
    map, arrays over a batch's leading axes)."""
    hits = np.zeros(labels.shape[:-1], np.int64)
    for g in glob:
        hits += np.count_nonzero(labels == g, axis=-1)  # faster than np.isin (docs/basins.md)
    estimate = Estimate(*wilson_interval(hits, labels.shape[-1]))
    if labels.ndim == 1:
        return Estimate(*(float(v) for v in estimate))
    return estimate


def simulate_best_of_k(
    labels: ArrayLike, ks: ArrayLike, *, key, trials: int = 2000, targets=(0,)
) -> np.ndarray:
    """Checks :func:`best_of_k` by simulation: draws ``max(ks)`` restarts
    (with replacement) per trial from the observed labels, and counts how
    often one of the first k has a label in ``targets`` (the global minima's
    indices). Every k reads the same draws, so the estimates rise with k as
    the probabilities do.

    ``labels`` may be a memory map (a tiled map's ``labels.npy``): only the
    drawn restarts are read, in file order. The draws come from ``key``."""
    ks = np.asarray(ks, dtype=np.int64).reshape(-1)
    flat = labels.reshape(-1) if hasattr(labels, "reshape") else np.asarray(labels).reshape(-1)
    if ks.size == 0:
        return np.zeros(0)
    if np.any(ks < 1):
        raise ValueError(f"ks are counts of restarts (>= 1), got {ks.tolist()}")
    trials = int(trials)
    if trials < 1:
        raise ValueError(f"trials must be a positive integer, got {trials}")
    seed = np.asarray(jax.random.key_data(key)).ravel().tolist()
    idx = np.random.default_rng(seed).integers(0, flat.shape[0], size=(trials, int(ks.max())))
    order = np.argsort(idx, axis=None)  # read a memory-mapped file in order
    values = np.empty(idx.size, flat.dtype)
    values[order] = flat[idx.ravel()[order]]
    hit = np.isin(values.reshape(idx.shape), np.asarray(targets))
    # the first draw of each trial that reaches a target (max(ks): none does)
    first = np.where(hit.any(axis=1), hit.argmax(axis=1), idx.shape[1])
    return (first[None, :] < ks[:, None]).mean(axis=1)


def fractions(
    labels: np.ndarray, n_minima: int, attractors: Sequence[str] | None = None
) -> Fractions:
    """Fractions of every outcome over the last axis of ``labels``;
    ``attractors``: the names of a map's attractors (labels
    ``FIRST_ATTRACTOR - a``), with attractor labelling on (then label -1 is
    ``"moving"``)."""
    n = labels.shape[-1]
    n_att = 0 if attractors is None else len(attractors)
    # bins: attractor n_att - 1 ... attractor 0, diverged, not converged, minima
    flat = labels.reshape(-1, n) + 2 + n_att
    k = n_minima + 2 + n_att
    counts = np.stack([np.bincount(row, minlength=k) for row in flat]).reshape(
        labels.shape[:-1] + (k,)
    )
    order = [n_att, n_att + 1, *range(n_att + 2, k), *range(n_att - 1, -1, -1)]
    counts = counts[..., order]
    moving = "not_converged" if attractors is None else "moving"
    keys = ("diverged", moving) + tuple(str(i) for i in range(n_minima))
    keys += tuple(attractors or ())
    return Fractions(keys, *wilson_interval(counts, n))
