"""The figure of the high-dimensional lesson (:mod:`gdjax.lessons.high_dim`)."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

__all__ = ["minimum_fractions"]


def minimum_fractions(res, *, exact: Mapping[int, float], theta: float) -> Figure:
    """The fraction of critical points that are minima against d, log y:
    GOE Hessians with 95% intervals (an upper bound where no sample was
    positive definite), the exact small-d values, the exp(-theta d^2)
    asymptote, and the random landscapes.

    Args:
        res: the lesson's result (:class:`gdjax.lessons.high_dim.HighDim`).
        exact: the exact GOE fraction at small d, d -> fraction
            (:data:`gdjax.lessons.high_dim.EXACT`).
        theta: the rate of the asymptote exp(-theta d^2)
            (:data:`gdjax.lessons.high_dim.THETA`).
    """
    g, ls = res.goe, res.landscapes
    fig, ax = plt.subplots(figsize=(8.5, 5.2), layout="constrained")
    hit = g.hits > 0
    ax.errorbar(
        g.d[hit],
        g.fraction[hit],
        yerr=[g.fraction[hit] - g.ci_low[hit], g.ci_high[hit] - g.fraction[hit]],
        fmt="o",
        color="C0",
        capsize=3,
        label="GOE Hessians, sampled (95% CI)",
    )
    if (~hit).any():
        ax.plot(
            g.d[~hit],
            g.ci_high[~hit],
            "v",
            color="C0",
            ms=8,
            mfc="none",
            label="GOE: upper bound (no positive-definite sample)",
        )
    ex = sorted(exact)
    ax.plot(ex, [exact[d] for d in ex], "x", color="k", ms=9, mew=2, label="exact (d = 1, 2)")
    good = np.flatnonzero(g.hits >= 20)
    if good.size:
        d0 = g.d[good[-1]]
        dd = np.linspace(d0, max(g.d.max(), d0), 50)
        ax.plot(
            dd,
            g.fraction[good[-1]] * np.exp(-theta * (dd**2 - d0**2)),
            "--",
            color="C0",
            alpha=0.7,
            label=f"exp(-θ d²), θ = ln 3 / 4, from d = {d0}",
        )
    if len(ls.d):
        ok = ls.critical > 0
        ax.errorbar(
            ls.d[ok] + 0.08,
            ls.fraction[ok],
            yerr=[ls.fraction[ok] - ls.ci_low[ok], ls.ci_high[ok] - ls.fraction[ok]],
            fmt="s",
            color="C3",
            capsize=3,
            label="random landscapes: minima among critical points",
        )
    ax.set_yscale("log")
    ax.set_xlabel("dimension d")
    ax.set_ylabel("fraction of critical points that are minima")
    ax.set_xticks(g.d)
    ax.set_title("In high dimensions almost every critical point is a saddle", fontsize=11)
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(True, which="major", alpha=0.3)
    return fig
