"""Fractal measures of basin boundaries.

Functions of any 2-D integer label image (a basin map, e.g.
``gdjax.basins.map_basins(...).label_grid()``; every distinct value,
negative outcomes included, is its own basin), and one that re-runs
descents:

* :func:`box_dimension`: the box-counting dimension of the boundary pixels
  (1 for a smooth curve, up to 2 for a boundary that fills the plane).
* :func:`basin_entropy`: the basin entropy Sb and boundary basin entropy Sbb
  of Daza, Wagemakers, Georgeot, Guéry-Odelin and Sanjuán, "Basin entropy: a
  new tool to analyze uncertainty in dynamical systems", Sci. Rep. 6, 31416
  (2016). Sbb > log 2 is their sufficient condition for a fractal boundary.
* :func:`uncertainty_exponent`: the fraction f(eps) of starts whose outcome
  changes under a perturbation of size eps, f ~ eps^alpha, and the boundary
  dimension 2 - alpha (Grebogi, McDonald, Ott and Yorke, "Final state
  sensitivity: an obstruction to predictability", Phys. Lett. A 99, 415
  (1983)), with :func:`descent_classifier` to re-run gradient descent from
  the perturbed starts (vmapped, in fixed-size chunks).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from gdjax import _chunks, _engine, _validate
from gdjax import surfaces as _surfaces
from gdjax.descent import DEFAULT_BOUND
from gdjax.maps.config import MapConfig, available_memory, memory_needed
from gdjax.maps.critical import critical_points
from gdjax.maps.summary import wilson_interval
from gdjax.surfaces import Surface

__all__ = [
    "BEND_P",
    "FIT_MAX_FRACTION",
    "FLAT_P",
    "MIN_EPS_SPACINGS",
    "MIN_UNCERTAIN_SIZES",
    "POWER_LAW_CHI2",
    "BasinEntropy",
    "BoxDimension",
    "Scale",
    "Uncertainty",
    "basin_entropy",
    "boundary",
    "box_dimension",
    "box_entropies",
    "check_uncertainty_memory",
    "descent_classifier",
    "uncertainty_exponent",
    "uncertainty_memory",
]


def _labels(labels: ArrayLike, least: int = 2) -> np.ndarray:
    lab = np.asarray(labels)
    if lab.ndim != 2:
        raise ValueError(f"labels must be a 2-D image, got shape {lab.shape}")
    if not (np.issubdtype(lab.dtype, np.integer) or np.issubdtype(lab.dtype, np.bool_)):
        raise ValueError(f"labels must be integers, got dtype {lab.dtype}")
    if min(lab.shape) < least:
        raise ValueError(f"labels must be at least {least} x {least} pixels, got {lab.shape}")
    return lab


def boundary(labels: ArrayLike) -> np.ndarray:
    """Boundary pixels: those whose label differs from one of their four
    neighbours' (both sides of an edge are marked)."""
    lab = _labels(labels)
    b = np.zeros(lab.shape, bool)
    dx = lab[:, 1:] != lab[:, :-1]
    dy = lab[1:, :] != lab[:-1, :]
    b[:, 1:] |= dx
    b[:, :-1] |= dx
    b[1:, :] |= dy
    b[:-1, :] |= dy
    return b


class BoxDimension(NamedTuple):
    """The box-counting dimension of a boundary and its fit.

    Attributes:
        dimension: minus the slope of log(count) against log(size).
        sizes: box sizes in pixels.
        counts: at each size, the boxes that hold a boundary pixel.
        intercept: log count = intercept - dimension * log size.
        boundary_pixels: the number of boundary pixels.
    """

    dimension: float
    sizes: np.ndarray
    counts: np.ndarray
    intercept: float
    boundary_pixels: int

    def __float__(self) -> float:
        return float(self.dimension)


def _count_boxes(mask: np.ndarray, s: int) -> int:
    ny, nx = mask.shape
    py, px = -ny % s, -nx % s  # pad to whole boxes: the edge boxes count too
    m = np.pad(mask, ((0, py), (0, px))) if py or px else mask
    return int(m.reshape(m.shape[0] // s, s, m.shape[1] // s, s).any(axis=(1, 3)).sum())


def box_dimension(labels: ArrayLike, *, sizes: Sequence[int] | None = None) -> BoxDimension:
    """The box-counting dimension of the boundary pixels of ``labels``.

    Boxes are aligned to the image; the default sizes are the powers of two
    from 2 to 1/8 of the image's smaller side (size 1 counts pixels, which a
    two-pixel-wide boundary band inflates; boxes beyond 1/8 of the side are
    too few to count). An image without boundary gives ``nan``.
    """
    lab = _labels(labels, 16 if sizes is None else 2)
    mask = boundary(lab)
    if sizes is None:
        top = max(1, int(math.log2(min(lab.shape) / 8)))
        sizes = [2**k for k in range(1, top + 1)]
        if len(sizes) < 2:
            sizes = [1, 2]
    sizes = np.asarray(sorted({int(s) for s in sizes}), np.int64)
    if sizes.size < 2 or sizes[0] < 1 or sizes[-1] > min(lab.shape):
        raise ValueError(
            f"sizes must be at least two box sizes in 1..{min(lab.shape)}, got {sizes}"
        )
    counts = np.asarray([_count_boxes(mask, int(s)) for s in sizes], np.int64)
    if not mask.any():
        return BoxDimension(math.nan, sizes, counts, math.nan, 0)
    slope, intercept = np.polyfit(np.log(sizes), np.log(counts), 1)
    return BoxDimension(float(-slope), sizes, counts, float(intercept), int(mask.sum()))


class BasinEntropy(NamedTuple):
    """Basin entropy ``Sb`` and boundary basin entropy ``Sbb`` (nats)."""

    Sb: float
    Sbb: float

    @property
    def fractal_boundary(self) -> bool:
        """Daza et al.'s sufficient condition: Sbb > log 2."""
        return self.Sbb > math.log(2)


def box_entropies(labels: np.ndarray, box: int) -> np.ndarray:
    """The Gibbs entropy of every whole ``box`` x ``box`` box of a label
    image (a remainder of rows or columns is left out)."""
    ny, nx = (labels.shape[0] // box) * box, (labels.shape[1] // box) * box
    blocks = labels[:ny, :nx].reshape(ny // box, box, nx // box, box)
    entropy = np.zeros((ny // box, nx // box))
    for value in np.unique(blocks):
        p = (blocks == value).mean(axis=(1, 3))
        with np.errstate(divide="ignore", invalid="ignore"):
            entropy -= np.where(p > 0, p * np.log(p), 0.0)
    return entropy


def basin_entropy(labels: ArrayLike, box: int = 5) -> BasinEntropy:
    """Basin entropy of Daza et al. (2016) over boxes of ``box`` x ``box``
    pixels (the image is cut into whole boxes; a remainder is left out).

    Each box i has the Gibbs entropy S_i = -sum_j p_ij log p_ij of the
    fractions p_ij of its pixels in each basin j. ``Sb`` is the mean of S_i
    over all boxes, ``Sbb`` over the boxes that hold more than one basin
    (0 if none does)."""
    lab = _labels(labels)
    box = _validate.check_count("box", box)
    if not 2 <= box <= min(lab.shape):
        raise ValueError(f"box must be in 2..{min(lab.shape)}, got {box}")
    entropy = box_entropies(lab, box)
    mixed = entropy > 0
    sbb = float(entropy[mixed].mean()) if mixed.any() else 0.0
    return BasinEntropy(float(entropy.mean()), sbb)


FIT_MAX_FRACTION = 0.1
"""The largest fraction of uncertain starts :func:`uncertainty_exponent`
fits: at larger eps the fraction saturates and bends the power law."""

MIN_EPS_SPACINGS = 8
"""The smallest perturbation :func:`uncertainty_exponent` takes, in float
spacings of the domain's largest coordinate (in the working precision):
below it, rounding changes a perturbation's length by more than 1/16, and
perturbed points round onto their starts."""

POWER_LAW_CHI2 = 3.0
"""Above this chi-square per degree of freedom, the fraction of uncertain
starts does not follow one power law (:attr:`Uncertainty.power_law`)."""

BEND_P = 0.01
"""Below this p-value of the likelihood-ratio test of one power law against
one for each half of the fitted sizes (:attr:`Uncertainty.bend_p`), the
slope changes with eps: not one power law. (Pearson's chi-square misses a
bend where sizes hold a handful of uncertain starts each; this test does
not need large counts.)"""

FLAT_P = 0.05
"""A fit, or a half of one, whose slope 0 is not rejected at this level
(likelihood-ratio test, :meth:`Uncertainty.flat_p`) is flat: its fraction
does not fall with eps, and no dimension below 2 is resolved there."""

MIN_UNCERTAIN_SIZES = 3
"""A dimension needs uncertain starts at this many fitted sizes at least
(two determine a line exactly, with nothing left to test it on)."""


class Scale(NamedTuple):
    """One part of an uncertainty fit (:meth:`Uncertainty.scales`): the
    power law fitted over the sizes from ``eps_low`` to ``eps_high`` alone,
    f = exp(intercept) eps^(2 - dimension)."""

    eps_low: float
    eps_high: float
    dimension: float
    dimension_se: float
    intercept: float


class Uncertainty(NamedTuple):
    """The uncertainty exponent and its fit.

    Attributes:
        eps: perturbation sizes.
        fraction: at each eps, the fraction of uncertain starts.
        ci_low, ci_high: 95% Wilson intervals of ``fraction``.
        n: starts per eps.
        alpha: the exponent of f = exp(intercept) eps^alpha fitted where the
            fraction is at most :data:`FIT_MAX_FRACTION` (the power law is a
            small-eps law), by maximum likelihood of the binomial counts:
            sizes with none or a handful of uncertain starts count for what
            they hold. nan with fewer than two sizes with uncertain starts.
        dimension: the fit's dimension of the boundary, 2 - alpha. Report
            it only where the sample resolves it (:attr:`resolved`;
            :meth:`words`, :meth:`brief` and the figures do so, and say
            why not elsewhere).
        intercept: log fraction = intercept + alpha * log eps.
        alpha_se: the standard error of alpha (and of the dimension) from
            the fit's Fisher information, the counts' sampling error alone.
        chi2_dof: the fit's Pearson chi-square per degree of freedom: about
            1 when the fraction follows one power law within its sampling
            error, much larger when its slope changes with eps (then the
            dimension is an average over scales); nan with fewer than three
            sizes fitted.
        bend_p: the p-value of the likelihood-ratio test of one power law
            against one for each half of the fitted sizes (:meth:`scales`;
            chi-square with 2 degrees of freedom): small where the slope
            changes with eps. nan with fewer than six sizes fitted or a half
            with fewer than two sizes with uncertain starts.
    """

    eps: np.ndarray
    fraction: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n: int
    alpha: float
    dimension: float
    intercept: float
    alpha_se: float = math.nan
    chi2_dof: float = math.nan
    bend_p: float = math.nan

    def _counts(self) -> np.ndarray:
        return np.rint(np.asarray(self.fraction, np.float64) * self.n)

    @property
    def fills_domain(self) -> bool:
        """Whether nothing could be fitted because more than
        :data:`FIT_MAX_FRACTION` of the starts are uncertain at half the
        sizes or more: no small-eps range, the boundary is everywhere at
        these scales."""
        above = np.asarray(self.fraction) > FIT_MAX_FRACTION
        return not math.isfinite(self.alpha) and 2 * int(above.sum()) >= above.size

    @property
    def power_law(self) -> bool:
        """Whether one power law fits within sampling error: ``chi2_dof``
        at most :data:`POWER_LAW_CHI2` and ``bend_p`` not below
        :data:`BEND_P` (True with too few sizes to tell)."""
        return not self.chi2_dof > POWER_LAW_CHI2 and not self.bend_p < BEND_P

    @property
    def uncertain_sizes(self) -> int:
        """How many of the fitted sizes hold uncertain starts."""
        counts = self._counts()
        return int(np.count_nonzero(counts[_fitted(counts, self.n)]))

    def flat_p(self, eps_low: float | None = None, eps_high: float | None = None) -> float:
        """The p-value of the likelihood-ratio test of slope 0 (a flat
        fraction) against the power law's free slope, over the fitted sizes
        from ``eps_low`` to ``eps_high`` (default: all of them): chi-square
        with 1 degree of freedom. nan with fewer than two sizes with
        uncertain starts there."""
        eps = np.asarray(self.eps, np.float64)
        counts = self._counts()
        mask = _fitted(counts, self.n)
        if eps_low is not None:
            mask &= eps >= eps_low
        if eps_high is not None:
            mask &= eps <= eps_high
        return _flat_test(eps, counts, self.n, mask)[0]

    @property
    def resolved(self) -> bool:
        """Whether the sample resolves a dimension: a fit
        (``alpha`` finite), uncertain starts at :data:`MIN_UNCERTAIN_SIZES`
        fitted sizes or more, one power law (:attr:`power_law`), a fraction
        that falls with eps over the fitted sizes and over the smaller half
        of them (:meth:`flat` is None), and that smaller half no likelier
        under a flat fraction than under the power law (:meth:`departure`
        is None)."""
        return (
            math.isfinite(self.alpha)
            and self.uncertain_sizes >= MIN_UNCERTAIN_SIZES
            and self.power_law
            and self.flat() is None
            and self.departure() is None
        )

    def to_json(self) -> dict:
        """The result as JSON: every number, non-finite ones as None
        (``dimension_se`` is ``alpha_se``; ``starts_per_eps`` is ``n``)."""

        def num(v):
            return float(v) if math.isfinite(v) else None

        return {
            "alpha": num(self.alpha),
            "dimension": num(self.dimension),
            "dimension_se": num(self.alpha_se),
            "chi2_dof": num(self.chi2_dof),
            "bend_p": num(self.bend_p),
            "resolved": bool(self.resolved),
            "intercept": num(self.intercept),
            "starts_per_eps": int(self.n),
            "eps": np.asarray(self.eps, np.float64).tolist(),
            "fraction": np.asarray(self.fraction, np.float64).tolist(),
            "ci_low": np.asarray(self.ci_low, np.float64).tolist(),
            "ci_high": np.asarray(self.ci_high, np.float64).tolist(),
        }

    @classmethod
    def from_json(cls, d: dict) -> Uncertainty:
        """The inverse of :meth:`to_json` (``bend_p``, absent from older
        files, nan; ``resolved`` is judged again from the counts)."""

        def num(v):
            return math.nan if v is None else float(v)

        keys = ("alpha", "dimension", "intercept", "dimension_se", "chi2_dof", "bend_p")
        got = cls(
            *(np.asarray(d[k], np.float64) for k in ("eps", "fraction", "ci_low", "ci_high")),
            int(d["starts_per_eps"]),
            *(num(d.get(k)) for k in keys),
        )
        return got

    @classmethod
    def from_counts(cls, eps: ArrayLike, counts: ArrayLike, n: int) -> Uncertainty:
        """The fit of ``counts`` uncertain starts of ``n`` at each size
        ``eps`` (what :func:`uncertainty_exponent` returns for them)."""
        eps = np.asarray(eps, np.float64)
        counts = np.asarray(counts, np.int64)
        frac, low, high = wilson_interval(counts, n)
        alpha, intercept, alpha_se, chi2_dof = _fit_power_law(eps, counts, n, _fitted(counts, n))
        bend = _bend_p(eps, counts, n)
        return cls(eps, frac, low, high, n, alpha, 2 - alpha, intercept, alpha_se, chi2_dof, bend)

    def scales(self) -> tuple[Scale, ...]:
        """The fit split at the middle of the sizes it used: a
        :class:`Scale` for the smaller and one for the larger half. A slope
        that changes with eps shows here. Empty with fewer than six sizes
        fitted (three a half); a half with uncertain starts at fewer than
        :data:`MIN_UNCERTAIN_SIZES` sizes has a nan dimension (a line
        through two sizes, or resting on sizes with none, resolves
        nothing)."""
        counts = self._counts()
        out = []
        for half in _halves(counts, self.n):
            mask = np.zeros(counts.shape, bool)
            mask[half] = True
            alpha, intercept, se, _ = _fit_power_law(np.asarray(self.eps), counts, self.n, mask)
            if int(np.count_nonzero(counts[half])) < MIN_UNCERTAIN_SIZES:
                alpha = se = math.nan
            lo, hi = float(self.eps[half[0]]), float(self.eps[half[-1]])
            out.append(Scale(lo, hi, 2 - alpha, se, intercept))
        return tuple(out)

    def flat(self) -> tuple[float, float] | None:
        """Where the fraction does not fall with eps: (eps_low, eps_high) of
        the fitted sizes if their slope 0 is not rejected (:meth:`flat_p`
        at least :data:`FLAT_P`) or their slope is not positive; else of
        the smaller half of them (:meth:`scales`) if its counts are at
        least as likely under a flat fraction (its best one) as under the
        power law fitted to every size (:meth:`floor_ratio` at most 1) and
        its own slope 0 is not rejected: the smallest sizes, where the
        dimension is read, show a floor, not the power law. None if
        neither."""
        eps = np.asarray(self.eps, np.float64)
        counts = self._counts()
        used = np.flatnonzero(_fitted(counts, self.n))
        if used.size:
            mask = np.zeros(counts.shape, bool)
            mask[used] = True
            p, alpha = _flat_test(eps, counts, self.n, mask)
            if p >= FLAT_P or alpha <= 0:
                return float(eps[used[0]]), float(eps[used[-1]])
        part = self._off_law()
        if part is not None and self.flat_p(*part) >= FLAT_P:
            return part
        return None

    def departure(self) -> tuple[float, float] | None:
        """Where the smallest sizes fall with eps, but not as the power law
        of every size does: (eps_low, eps_high) of the smaller half of the
        fitted sizes if a flat fraction is at least as likely there as that
        power law (:meth:`floor_ratio` at most 1) while its own slope 0 is
        rejected (more uncertain starts at small eps than the law predicts,
        falling more slowly). None otherwise (:meth:`flat` covers a half
        that does not fall)."""
        part = self._off_law()
        if part is not None and self.flat() is None:
            return part
        return None

    def _off_law(self) -> tuple[float, float] | None:
        halves = _halves(self._counts(), self.n)
        if halves and self.floor_ratio() <= 1:
            return float(self.eps[halves[0][0]]), float(self.eps[halves[0][-1]])
        return None

    def floor_ratio(self) -> float:
        """The likelihood ratio of the smaller half of the fitted sizes'
        counts (:meth:`scales`) under the power law fitted to every size
        against under their best flat fraction: above 1 where they follow
        the power law better than a floor. nan without a fit or halves, or
        with uncertain starts at fewer than :data:`MIN_UNCERTAIN_SIZES`
        sizes of that half (a floor shows at several sizes; one or two
        counts show none)."""
        counts = self._counts()
        halves = _halves(counts, self.n)
        if not halves or not math.isfinite(self.alpha):
            return math.nan
        eps = np.asarray(self.eps, np.float64)
        mask = np.zeros(counts.shape, bool)
        mask[halves[0]] = True
        k = counts[mask]
        if int(np.count_nonzero(k)) < MIN_UNCERTAIN_SIZES:
            return math.nan
        p0 = k.sum() / (self.n * k.size)
        flat = float(np.sum(k * math.log(p0) + (self.n - k) * math.log1p(-p0)))
        law = _loglik(eps, counts, self.n, self.alpha, self.intercept, mask)
        return math.exp(min(law - flat, 700.0))

    def words(self) -> str:
        """The dimension in words: "1.05 ± 0.01" where the sample resolves
        it (:attr:`resolved`); otherwise "not resolved" and why: too few
        sizes with uncertain starts, not one power law (then the dimension
        of the smaller and the larger sizes, :meth:`scales`, each marked
        flat where its fraction does not fall with eps), or a fraction
        that does not fall with eps."""
        if not math.isfinite(self.alpha):
            above = int(np.sum(np.asarray(self.fraction) > FIT_MAX_FRACTION))
            if self.fills_domain:
                return (
                    f"no power law to fit: more than {FIT_MAX_FRACTION:g} of the starts are "
                    f"uncertain at {above} of {len(self.fraction)} sizes (the boundary fills "
                    "the domain at these scales)"
                )
            return "too few uncertain starts to fit"
        if self.resolved:
            return f"{2 - self.alpha:.2f}{_pm(self.alpha_se)}"
        fitted = int(np.count_nonzero(_fitted(self._counts(), self.n)))
        if self.uncertain_sizes < MIN_UNCERTAIN_SIZES:
            return (
                f"not resolved: uncertain starts at {self.uncertain_sizes} of the {fitted} "
                f"fitted sizes ({MIN_UNCERTAIN_SIZES} needed to test a power law)"
            )
        if not self.power_law:
            parts = []
            for lo, hi, d, se, _ in self.scales():
                where = f"for ε from {lo:.2g} to {hi:.2g}"
                if not math.isfinite(d):
                    parts.append(f"too few uncertain starts {where}")
                    continue
                p = self.flat_p(lo, hi)
                tag = " (flat: slope 0 not rejected)" if p >= FLAT_P or d >= 2 else ""
                parts.append(f"{d:.2f}{_pm(se)} {where}{tag}")
            return f"not resolved: not one power law ({self.misfit()})" + "".join(
                f"; {p}" for p in parts
            )
        off = self.departure()
        if off is not None:
            return "not resolved: " + self._departure_words(*off)
        lo, hi = self.flat() or (math.nan, math.nan)
        return (
            f"not resolved: the fraction of uncertain starts does not fall with ε from "
            f"{lo:.2g} to {hi:.2g}: at {self.n:,} starts per size a flat fraction there "
            "(dimension 2, or outcomes that change under any perturbation) is as likely as "
            "the power law"
        )

    def _departure_words(self, lo: float, hi: float) -> str:
        text = (
            f"for ε from {lo:.2g} to {hi:.2g} the fraction of uncertain starts falls more "
            "slowly than the power law fitted to every size (a flat fraction is as likely "
            "there as that law)"
        )
        small, large = self.scales()
        if math.isfinite(small.dimension):
            text += f": {small.dimension:.2f}{_pm(small.dimension_se)} there"
        if math.isfinite(large.dimension) and not (
            self.flat_p(large.eps_low, large.eps_high) >= FLAT_P
        ):
            text += (
                f", {large.dimension:.2f}{_pm(large.dimension_se)} for ε from "
                f"{large.eps_low:.2g} to {large.eps_high:.2g}"
            )
        return text

    def brief(self, points: str = "starts") -> str:
        """:meth:`words` for a table cell: "1.05 ± 0.01" where resolved,
        else why not in a few words (``points``: what is perturbed)."""
        if not math.isfinite(self.alpha):
            if self.fills_domain:
                return f"none: above {FIT_MAX_FRACTION:g} uncertain (fills the domain)"
            return f"too few uncertain {points}"
        if self.resolved:
            return self.words()
        if self.uncertain_sizes < MIN_UNCERTAIN_SIZES:
            return f"not resolved: uncertain {points} at {self.uncertain_sizes} sizes"
        if not self.power_law:
            return "not resolved: not one power law"
        off = self.departure()
        if off is not None:
            return f"not resolved: off the power law for ε up to {off[1]:.2g}"
        lo, hi = self.flat() or (math.nan, math.nan)
        return f"not resolved: flat for ε from {lo:.2g} to {hi:.2g}"

    def misfit(self) -> str:
        """Why one power law does not fit, in words: its χ²/dof and the
        p-value of the split-fit test (where known)."""
        said = []
        if math.isfinite(self.chi2_dof):
            said.append(f"χ²/dof = {self.chi2_dof:.1f}")
        if math.isfinite(self.bend_p):
            said.append(f"one line per half of the sizes: p = {self.bend_p:.2g}")
        return ", ".join(said)


def _pm(se: float) -> str:
    return f" ± {se:.2f}" if math.isfinite(se) else ""


def _halves(counts: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """The indices of the smaller and the larger half of the fitted sizes;
    empty with fewer than six."""
    used = np.flatnonzero(_fitted(counts, n))
    if used.size < 6:
        return ()
    return used[: used.size // 2], used[used.size // 2 :]


def _loglik(eps, counts, n, alpha, intercept, mask) -> float:
    """The binomial log-likelihood of the counts in ``mask`` under
    f = exp(intercept) eps^alpha."""
    log_p = alpha * np.log(np.asarray(eps, np.float64)[mask]) + intercept
    k = np.asarray(counts, np.float64)[mask]
    return float(np.sum(k * log_p + (n - k) * np.log1p(-np.exp(log_p))))


def _flat_test(eps, counts, n, mask) -> tuple[float, float]:
    """(p, alpha): the p-value of the likelihood-ratio test of slope 0
    against the free slope over the sizes in ``mask`` (chi-square, 1 degree
    of freedom), and the free slope; (nan, nan) with fewer than two sizes
    with uncertain starts."""
    alpha, intercept, _, _ = _fit_power_law(eps, counts, n, mask)
    if not math.isfinite(alpha):
        return math.nan, math.nan
    k = np.asarray(counts, np.float64)[mask]
    p0 = k.sum() / (n * k.size)  # the flat fraction's maximum likelihood
    flat = float(np.sum(k * math.log(p0) + (n - k) * math.log1p(-p0)))
    stat = max(0.0, 2 * (_loglik(eps, counts, n, alpha, intercept, mask) - flat))
    return math.erfc(math.sqrt(stat / 2)), alpha


def _bend_p(eps, counts, n) -> float:
    """The p-value of the likelihood-ratio test of one power law over the
    fitted sizes against one for each half (chi-square, 2 degrees of
    freedom: exp(-statistic / 2)); nan with fewer than six sizes fitted or
    a half with fewer than two sizes with uncertain starts."""
    halves = _halves(counts, n)
    if not halves:
        return math.nan
    mask = _fitted(counts, n)
    one = _fit_power_law(eps, counts, n, mask)
    if not math.isfinite(one[0]):
        return math.nan
    split = 0.0
    for half in halves:
        part = np.zeros(counts.shape, bool)
        part[half] = True
        alpha, intercept, _, _ = _fit_power_law(eps, counts, n, part)
        if not math.isfinite(alpha):
            return math.nan
        split += _loglik(eps, counts, n, alpha, intercept, part)
    stat = max(0.0, 2 * (split - _loglik(eps, counts, n, one[0], one[1], mask)))
    return math.exp(-stat / 2)


def _fitted(counts: np.ndarray, n: int) -> np.ndarray:
    """The sizes the power law is fitted on: f <= FIT_MAX_FRACTION, sizes
    with no uncertain start included (the power law holds for small eps;
    larger fractions saturate)."""
    return counts / n <= FIT_MAX_FRACTION


def _fit_power_law(eps, counts, n, mask) -> tuple[float, float, float, float]:
    """(alpha, intercept, alpha_se, chi2_dof) of f = exp(intercept) eps^alpha
    over the sizes in ``mask``, by maximum likelihood of the binomial counts:
    every size counts for what it holds, none or a handful of uncertain
    starts included. (A least-squares fit of log f, weighted by the observed
    counts, leans towards sizes that happened to draw more and reads alpha
    low: by half a standard error at 16,384 starts per size.)

    The log-likelihood, sum k log p + (n - k) log(1 - p) with
    log p = intercept + alpha log eps, is concave in (alpha, intercept):
    Newton's method with step halving finds its maximum. ``alpha_se`` is
    from the Fisher information at the maximum; ``chi2_dof`` is Pearson's
    chi-square, sum (k - n p)^2 / (n p (1 - p)), per degree of freedom. nan
    where fewer than two sizes have uncertain starts (no finite maximum),
    and ``chi2_dof`` with fewer than three sizes."""
    if int(np.count_nonzero(counts[mask])) < 2:
        return math.nan, math.nan, math.nan, math.nan
    x = np.log(np.asarray(eps, np.float64)[mask])
    k = np.asarray(counts, np.float64)[mask]
    design = np.stack([x, np.ones_like(x)], axis=1)

    def loglik(theta):
        log_p = design @ theta
        if np.any(log_p >= 0):
            return -math.inf
        return float(np.sum(k * log_p + (n - k) * np.log1p(-np.exp(log_p))))

    def information(theta):
        p = np.exp(design @ theta)
        w = (n - k) * p / np.square(1 - p)
        return design.T @ (design * w[:, None])

    hit = k > 0  # start: the line through the sizes with uncertain starts
    theta = np.polyfit(x[hit], np.log(k[hit] / n), 1)
    best = loglik(theta)
    if not math.isfinite(best):  # that line leaves (0, 1): start flat instead
        theta = np.array([0.0, math.log(k.sum() / (n * k.size))])
        best = loglik(theta)
    for _ in range(200):
        p = np.exp(design @ theta)
        grad = design.T @ (k - (n - k) * p / (1 - p))
        step = np.linalg.solve(information(theta), grad)
        scale = 1.0
        while scale > 1e-12 and not loglik(theta + scale * step) >= best:
            scale /= 2
        if scale <= 1e-12:
            break
        theta = theta + scale * step
        best = loglik(theta)
        if np.max(np.abs(scale * step)) < 1e-12:
            break
    alpha, intercept = (float(v) for v in theta)
    alpha_se = float(np.sqrt(np.linalg.inv(information(theta))[0, 0]))
    chi2_dof = math.nan
    if k.size > 2:
        p = np.exp(design @ theta)
        chi2_dof = float(np.sum(np.square(k - n * p) / (n * p * (1 - p)))) / (k.size - 2)
    return alpha, intercept, alpha_se, chi2_dof


def uncertainty_memory(n: int, sizes: int = _validate.EPS_SIZES, dtype=np.float32) -> int:
    """Bytes :func:`uncertainty_exponent` holds on the host for ``n``
    starts per size and ``sizes`` sizes, an estimate with some margin: every
    start's three points (in float64, then in ``dtype``) and outcomes, held
    at once (123 bytes a start and size measured in float32, 144 counted
    here), plus JAX's fixed share (:func:`gdjax.basins.memory_needed` of no
    start)."""
    per = 3 * (2 * (16 + np.dtype(dtype).itemsize) + 8)
    return memory_needed(0, dtype) + int(n) * int(sizes) * per


def check_uncertainty_memory(
    n: int, sizes: int = _validate.EPS_SIZES, dtype=np.float32, what: str = "n"
) -> None:
    """Refuses, before any compute, an uncertainty exponent whose points do
    not fit in the memory available (:func:`uncertainty_memory`); the
    message gives the estimate and the most starts per size that fit (a
    power of two). ``what`` names ``n`` in it (a command's option)."""
    need = uncertainty_memory(n, sizes, dtype)
    have = available_memory()
    if have is None or need <= have:
        return
    per = uncertainty_memory(1, sizes, dtype) - uncertainty_memory(0, sizes, dtype)
    room = max(0, have - uncertainty_memory(0, sizes, dtype)) // per
    fits = 1 << (int(room).bit_length() - 1) if room else 0
    raise ValueError(
        f"{what} {int(n):,}: {int(n):,} starts x {sizes} sizes x 3 runs need about "
        f"{need / 2**30:,.1f} GiB of memory, and {have / 2**30:.1f} GiB is available; use at "
        f"most {fits:,} starts per size"
    )


def uncertainty_exponent(
    classify: Callable[[Array], Array],
    domain,
    *,
    key: Array,
    eps: ArrayLike | None = None,
    n: int = 1 << 15,
    chunk_size: int = 1 << 14,
    progress: Callable[[int, int], None] | None = None,
) -> Uncertainty:
    """The fraction f(eps) of eps-uncertain starts and its exponent.

    A start x (uniform in ``domain``) is eps-uncertain if ``classify`` gives
    x + eps u or x - eps u another outcome than x, for a random unit vector u
    (one per start). f(eps) ~ eps^alpha, and the boundary's dimension is
    2 - alpha (Grebogi et al. 1983). ``classify`` maps (m, 2) starts to (m,)
    integer outcomes; it is called on chunks of ``chunk_size`` starts (the last
    one padded), so a jitted one compiles once.

    Args:
        classify: starts -> outcomes, e.g. :func:`descent_classifier`.
        domain: ((x0, x1), (y0, y1)).
        key: a ``jax.random.key``.
        eps: perturbation sizes (default: 12 sizes from 1e-6 of the
            domain's width, or :data:`MIN_EPS_SPACINGS` float spacings of
            its largest coordinate where that is more, to 1e-1 of its
            width). Smaller sizes are refused: in the working precision
            (float32 unless x64 is on) the perturbed points would round
            onto their starts.
        n: starts per eps.
        chunk_size: starts per call of ``classify``.
        progress: called with (points classified, points) after each
            call of ``classify`` (3 n points per eps).
    """
    dom = _validate.check_domain(domain, 2)
    n = _validate.check_count("n", n)
    chunk = _validate.check_count("chunk_size", chunk_size)
    width = max(hi - lo for lo, hi in dom)
    dtype = jnp.result_type(float)
    biggest = max(abs(v) for d in dom for v in d)
    smallest = MIN_EPS_SPACINGS * float(np.spacing(np.asarray(biggest, dtype)))
    if eps is None:
        if not smallest < 1e-2 * width:
            raise ValueError(
                f"the domain, {width:.3g} wide at coordinates up to {biggest:.3g}, is too "
                f"narrow for {np.dtype(dtype).name} perturbations; compute in float64"
            )
        eps = np.geomspace(max(1e-6 * width, smallest), 1e-1 * width, _validate.EPS_SIZES)
    eps = np.asarray(eps, np.float64)
    if eps.ndim != 1 or eps.size < 2 or not np.all(eps > 0):
        raise ValueError("eps must be at least two positive perturbation sizes")
    if eps.min() < smallest:
        raise ValueError(
            f"eps {eps.min():.3g} is below {MIN_EPS_SPACINGS} {np.dtype(dtype).name} spacings "
            f"of the domain's coordinates (up to {biggest:.3g}): {smallest:.3g}; perturbed "
            "points would round onto their starts. Give larger eps or compute in float64"
        )
    check_uncertainty_memory(n, eps.size, dtype)
    lo = np.asarray([d[0] for d in dom])
    hi = np.asarray([d[1] for d in dom])

    k_x, k_u = jax.random.split(key)
    points = []  # per size: n starts, then their + and - perturbations
    for i, e in enumerate(eps):
        kx, ku = jax.random.fold_in(k_x, i), jax.random.fold_in(k_u, i)
        x = np.asarray(jax.random.uniform(kx, (n, 2)), np.float64) * (hi - lo) + lo
        angle = np.asarray(jax.random.uniform(ku, (n,)), np.float64) * 2 * np.pi
        u = np.stack([np.cos(angle), np.sin(angle)], axis=1)
        points.append(np.concatenate([x, x + e * u, x - e * u]))
    # every size's points in one stream of equal chunks (the last one padded)
    pts = np.concatenate(points).astype(dtype)
    labels = np.empty(len(pts), np.int64)

    def collect(idx, m, out):
        labels[idx] = np.asarray(out)[:m]
        if progress is not None:
            progress(idx.stop, len(pts))

    _chunks.run_chunks(lambda part: classify(jnp.asarray(part)), pts, chunk, collect)
    counts = []
    for a, b, c in labels.reshape(len(eps), 3, n):
        counts.append(int(((a != b) | (a != c)).sum()))
    return Uncertainty.from_counts(eps, counts, n)


@functools.partial(jax.jit, static_argnames=("fn", "method", "steps", "every"))
def _classify(fn, method, steps, every, h, locs, radius2, x0s):
    def one(x0):
        x, div, conv, _, _ = _engine.run_blocked(fn, method, h, x0, steps, every, 10)
        d2 = jnp.sum(jnp.square(x[None, :] - locs), axis=-1)
        k = jnp.argmin(d2).astype(jnp.int32)
        ok = conv & (d2[k] < radius2)
        return jnp.where(div, jnp.int32(-2), jnp.where(ok, k, jnp.int32(-1)))

    return jax.vmap(one)(x0s)


def descent_classifier(
    surface: str | Surface | MapConfig,
    *,
    lr: float | None = None,
    steps: int | None = None,
    tol: float = 1e-3,
    minima=None,
    radius: float | None = None,
    bound: float | None = None,
    check_every: int = 10,
    domain=None,
) -> Callable[[Array], Array]:
    """Starts -> the minimum plain gradient descent reaches from each, with
    :func:`gdjax.basins.map_basins`'s labels: the index into ``minima``
    (default: the surface's minima from :func:`gdjax.basins.critical_points`,
    sorted by value; pass a map's ``.minima`` so that indices agree), -1 not
    converged, -2 diverged. The rate, tolerance and bound are data; the
    function is compiled once per surface, steps and input shape. ``radius``
    (default 1% of the widest side of ``domain``, the surface's by default,
    as a map's) is how near a converged end must be to a minimum.

    ``surface`` is a surface with ``lr``, ``steps`` and the other settings,
    or the :class:`gdjax.basins.MapConfig` of one map (one rate; its steps,
    tol, bound, check interval and domain are the classifier's)."""
    if isinstance(surface, MapConfig):
        c = surface
        if c.batch or c.method.uses_optax or c.rule != "fixed":
            raise ValueError("a descent classifier runs plain gradient descent at one rate")
        surf, steps, check_every, dom = c.surface, c.steps, c.check_every, c.domain
        method, h, dtype = c.method, c.hyper, c.np_dtype
    else:
        if lr is None or steps is None:
            raise ValueError("descent_classifier needs lr= and steps= (or a MapConfig)")
        surf = _surfaces.get(surface) if isinstance(surface, str) else surface
        if surf.dim != 2:
            raise ValueError(f"descent_classifier needs a 2D surface; {surf.name!r} is {surf.dim}D")
        steps = _validate.check_count("steps", steps)
        check_every = _validate.check_count("check_every", check_every)
        dom = surf.domain if domain is None else _validate.check_domain(domain, 2)
        dtype = jnp.result_type(float)
        bound = DEFAULT_BOUND if bound is None else bound
        method, h = _engine.resolve("fixed", lr, steps=steps, dtype=dtype, tol=tol, bound=bound)
    if minima is None:
        minima = [m for m in critical_points(surf) if m.kind == "min"]
    if not len(minima):
        raise ValueError("no minima to label with")
    radius = 1e-2 * max(hi - lo for lo, hi in dom) if radius is None else radius
    _validate.check_positive("radius", radius)
    locs = jnp.asarray([m.location for m in minima], dtype)
    r2 = jnp.asarray(radius * radius, dtype)
    return functools.partial(_classify, surf.fn, method, steps, check_every, h, locs, r2)
