"""What a basin map is: labels, fractions, minima, and their statistics.

Labels: ``i >= 0`` the index of the minimum reached (minima sorted by value,
so 0 is the lowest found), :data:`NOT_CONVERGED` (-1: gradient norm still
above ``tol`` at the last step) and :data:`DIVERGED` (-2: non-finite, or
beyond ``bound``). Never a NaN. Fractions carry 95% Wilson intervals; the
chance that the best of k restarts reaches a global minimum is
:func:`best_of_k`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
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
    "NOT_CONVERGED",
    "BasinMap",
    "CriticalPoint",
    "Estimate",
    "Fractions",
    "Timing",
    "best_of_k",
    "fractions",
    "global_minima",
    "simulate_best_of_k",
    "wilson_interval",
]

NOT_CONVERGED = -1
DIVERGED = -2


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


def fractions(labels: np.ndarray, n_minima: int) -> Fractions:
    """Fractions of every outcome over the last axis of ``labels``."""
    n = labels.shape[-1]
    flat = labels.reshape(-1, n) + 2
    k = n_minima + 2
    counts = np.stack([np.bincount(row, minlength=k) for row in flat]).reshape(
        labels.shape[:-1] + (k,)
    )
    keys = ("diverged", "not_converged") + tuple(str(i) for i in range(n_minima))
    return Fractions(keys, *wilson_interval(counts, n))
