"""Figures of the fractal measures (:mod:`gdjax.fractal`)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from gdjax.fractal import FIT_MAX_FRACTION, FLAT_P, MIN_UNCERTAIN_SIZES
from gdjax.plot._style import _corner_note

__all__ = ["uncertainty_caption", "uncertainty_fits"]


def uncertainty_fits(
    named: Sequence[tuple[str, object]],
    title: str = "Uncertainty exponent: f(ε) ~ ε^α, boundary dimension 2 - α (Grebogi et al. 1983)",
    unit: str = "in the domain's coordinates",
    points: str = "starts",
) -> Figure:
    """The fraction of eps-uncertain starts against eps (log-log), with 95%
    intervals and the fitted power law f ~ eps^alpha, for each (name,
    :class:`gdjax.fractal.Uncertainty`); ``unit`` is eps's, ``points`` what
    is perturbed. Hollow: sizes left out of the fit
    (fraction above :data:`gdjax.fractal.FIT_MAX_FRACTION`); a size with no
    uncertain start (fitted too, as a count of 0) is a triangle at its
    interval's upper end. The fitted line (dashed) is drawn only where the
    sample resolves a dimension (:attr:`gdjax.fractal.Uncertainty.resolved`;
    the legend says why not). Where one power law does not fit, or the
    smaller sizes fall more slowly than it
    (:meth:`gdjax.fractal.Uncertainty.departure`), the smaller
    and the larger half of the sizes get their own lines
    (:meth:`gdjax.fractal.Uncertainty.scales`): the smaller dotted in the
    series' colour, the larger dash-dotted in a darker shade, each only
    between the sizes of its half that hold uncertain starts (none for a
    half without a dimension)."""
    outside = len(named) > 2  # the legend beside the axes, not over the points
    fig, ax = plt.subplots(figsize=(10.5 if outside else 6.8, 4.8), layout="constrained")
    handles = []  # in the order drawn: each fit, then its parts
    for k, (name, u) in enumerate(named):
        color = f"C{k}"
        hit = u.fraction > 0
        fitted = hit & (u.fraction <= FIT_MAX_FRACTION)
        labelled = False  # the first series drawn carries the label
        label = _label(name, u, points)
        for sel, face in ((fitted, color), (hit & ~fitted, "none")):
            if sel.any():
                drawn = ax.errorbar(
                    u.eps[sel],
                    u.fraction[sel],
                    yerr=[u.fraction[sel] - u.ci_low[sel], u.ci_high[sel] - u.fraction[sel]],
                    fmt="o",
                    ms=4,
                    mfc=face,
                    capsize=2,
                    color=color,
                )
                if not labelled:
                    drawn.set_label(label)
                    handles.append(drawn)
                    labelled = True
        if (~hit).any():
            (drawn,) = ax.plot(u.eps[~hit], u.ci_high[~hit], "v", ms=5, color=color, alpha=0.6)
            if not labelled:
                drawn.set_label(label)
                handles.append(drawn)
        if u.resolved:  # only a dimension the sample resolves gets its line
            e = _span(u, u.eps[0], u.eps[-1])
            ax.plot(e, np.exp(u.intercept) * e**u.alpha, "--", lw=1, color=color)
        if np.isfinite(u.alpha) and (not u.power_law or u.departure() is not None):
            handles += _parts(ax, u, color)
    ax.axhline(FIT_MAX_FRACTION, color="0.6", ls=":", lw=1)
    # said in the lower right corner, empty while f grows with eps (a label on
    # the line itself met the points there)
    _corner_note(ax, f"grey dotted line: fraction {FIT_MAX_FRACTION:g}, fitted below it")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"perturbation ε ({unit})")
    ax.set_ylabel(f"fraction of ε-uncertain {points}")
    ax.set_title(title, fontsize=10)
    if outside:
        fig.legend(handles=handles, fontsize=8, loc="outside right upper")
    else:
        ax.legend(handles=handles, fontsize=8, loc="upper left")
    return fig


def _span(u, lo: float, hi: float) -> np.ndarray:
    """20 sizes from the first to the last size in [lo, hi] that holds
    uncertain starts (empty if fewer than two do): a fit is drawn where it
    rests on counts, not across sizes with none."""
    eps = np.asarray(u.eps, np.float64)
    hit = eps[(eps >= lo) & (eps <= hi) & (np.asarray(u.fraction) > 0)]
    hit = hit[hit <= eps[np.asarray(u.fraction) <= FIT_MAX_FRACTION].max(initial=0)]
    if hit.size < 2:
        return np.empty(0)
    return np.geomspace(hit[0], hit[-1], 20)


def _label(name: str, u, points: str) -> str:
    """A series' legend entry: its exponent and dimension, or why there is
    no dimension."""
    if u.resolved:
        return f"{name}: α = {u.alpha:.2f}, dimension {2 - u.alpha:.2f}" + (
            f" ± {u.alpha_se:.2f}" if np.isfinite(u.alpha_se) else ""
        )
    if np.isfinite(u.alpha):
        if u.uncertain_sizes < MIN_UNCERTAIN_SIZES:
            why = f"uncertain {points} at {u.uncertain_sizes} sizes only"
        elif not u.power_law:
            why = f"not one power law ({u.misfit()})"
        elif u.departure() is not None:
            why = f"the sizes up to ε {u.departure()[1]:.2g} fall more slowly than the law"
        else:
            lo, hi = u.flat() or (np.nan, np.nan)
            why = f"flat for ε from {lo:.2g} to {hi:.2g}"
        return f"{name}: α = {u.alpha:.2f}, no dimension resolved:\n{why}"
    if u.fills_domain:
        return f"{name}: no fit, above {FIT_MAX_FRACTION:g}\n(the boundary fills it)"
    return f"{name}: too few uncertain {points} to fit"


def _parts(ax, u, color) -> list:
    """The smaller and the larger sizes' own power laws, in two styles."""
    shades = (color, tuple(0.55 * np.asarray(mcolors.to_rgb(color))))
    handles = []
    for part, style, shade, which in zip(
        u.scales(), (":", "-."), shades, ("smaller", "larger"), strict=False
    ):
        if not np.isfinite(part.dimension):
            continue
        e = _span(u, part.eps_low, part.eps_high)
        if not e.size:
            continue
        flat = u.flat_p(part.eps_low, part.eps_high) >= FLAT_P or part.dimension >= 2
        (line,) = ax.plot(
            e,
            np.exp(part.intercept) * e ** (2 - part.dimension),
            style,
            lw=2.2,
            color=shade,
            label=f"  dimension {part.dimension:.2f}"
            + (f" ± {part.dimension_se:.2f}" if np.isfinite(part.dimension_se) else "")
            + f" for ε from {part.eps_low:.2g} to {part.eps_high:.2g}"
            + f" ({which} ε{', flat' if flat else ''})",
        )
        handles.append(line)
    return handles


def uncertainty_caption(points: str = "starts") -> str:
    """The caption of :func:`uncertainty_fits` in a report (``points``: what
    is perturbed, plural)."""
    one = points[:-1] if points.endswith("s") else points
    return (
        f"Fraction of ε-uncertain {points} against ε (log-log) with 95% intervals, and the "
        f"power law fitted where the fraction is at most {FIT_MAX_FRACTION:g} (hollow: above "
        "it, not fitted; "
        f"triangles: no uncertain {one}, at the interval's upper end), dashed where the "
        "sample resolves a dimension (uncertain "
        f"{points} at {MIN_UNCERTAIN_SIZES} fitted sizes or more, one power law, and a "
        "fraction that falls with ε, the smallest sizes included); the legend says why "
        "where it does not. Where one power law does not fit, the smaller and the larger "
        "half of the fitted sizes have their own (dotted, and dash-dotted darker), drawn "
        f"between the sizes with uncertain {points}."
    )
