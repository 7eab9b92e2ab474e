"""Figures of the fractal measures (:mod:`gdjax.fractal`)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from gdjax.fractal import FIT_MAX_FRACTION

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
    interval's upper end. Where one power law does not fit, the smaller and
    the larger half of the sizes get their own lines, dotted
    (:meth:`gdjax.fractal.Uncertainty.scales`)."""
    outside = len(named) > 2  # the legend beside the axes, not over the points
    fig, ax = plt.subplots(figsize=(10.5 if outside else 6.8, 4.8), layout="constrained")
    handles = []  # in the order drawn: each fit, then its parts
    for k, (name, u) in enumerate(named):
        color = f"C{k}"
        hit = u.fraction > 0
        fitted = hit & (u.fraction <= FIT_MAX_FRACTION)
        if np.isfinite(u.alpha):
            label = f"{name}: α = {u.alpha:.2f}, dimension {u.dimension:.2f}"
            if np.isfinite(u.alpha_se):
                label += f" ± {u.alpha_se:.2f}"
            if not u.power_law:
                label += f"\n(χ²/dof {u.chi2_dof:.0f}: not one power law)"
        elif u.fills_domain:
            label = f"{name}: no fit, above {FIT_MAX_FRACTION:g}\n(the boundary fills it)"
        else:
            label = f"{name}: too few uncertain {points} to fit"
        labelled = False  # the first series drawn carries the label
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
        if np.isfinite(u.alpha):
            ax.plot(u.eps, np.exp(u.intercept) * u.eps**u.alpha, "--", lw=1, color=color)
        if not u.power_law:  # the smaller and the larger sizes' own power laws
            for part in u.scales():
                if not np.isfinite(part.dimension):
                    continue
                e = np.geomspace(part.eps_low, part.eps_high, 20)
                (line,) = ax.plot(
                    e,
                    np.exp(part.intercept) * e ** (2 - part.dimension),
                    ":",
                    lw=2.2,
                    color=color,
                    label=f"  dimension {part.dimension:.2f}"
                    + (f" ± {part.dimension_se:.2f}" if np.isfinite(part.dimension_se) else "")
                    + f" for ε from {part.eps_low:.2g} to {part.eps_high:.2g}",
                )
                handles.append(line)
    ax.axhline(FIT_MAX_FRACTION, color="0.6", ls=":", lw=1)
    # said in the lower right corner, empty while f grows with eps (a label on
    # the line itself met the points there)
    ax.text(
        0.99,
        0.02,
        f"grey dotted line: fraction {FIT_MAX_FRACTION:g}, fitted below it",
        transform=ax.transAxes,
        ha="right",
        va="bottom",
        fontsize=8,
        color="0.4",
    )
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


def uncertainty_caption(points: str = "starts") -> str:
    """The caption of :func:`uncertainty_fits` in a report (``points``: what
    is perturbed, plural)."""
    one = points[:-1] if points.endswith("s") else points
    return (
        f"Fraction of ε-uncertain {points} against ε (log-log) with 95% intervals, and the "
        f"power law fitted where the fraction is at most {FIT_MAX_FRACTION:g} (hollow: above "
        "it, not fitted; "
        f"triangles: no uncertain {one}, at the interval's upper end). Where one power law "
        "does not fit, the smaller and the larger half of the fitted sizes have their own, "
        "dotted."
    )
