"""Figures of optimizers side by side (:class:`gdjax.optimizers.Comparison`)."""

from __future__ import annotations

import math

import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from gdjax.maps.summary import FIRST_ATTRACTOR
from gdjax.plot._style import _basin_colors, _mark_critical, _text_color
from gdjax.plot.basins import draw_labels, outcome_order, outcome_styles
from gdjax.plot.continuation import minimum_name

__all__ = ["TICK_POINTS", "agreement_matrix", "global_fractions", "maps_side_by_side"]

TICK_POINTS = 9
"""The maps' tick labels and axis names, in points: 13.75 px in the saved PNG
(110 dpi; 7 points read as about 10 px)."""


def maps_side_by_side(cmp) -> Figure:
    """Each optimizer's basin map from the same grid of starts, in the same
    colours (the minimum each run ended at: :attr:`Comparison.reached`).
    With attractor labelling the attractors take the colours of
    :func:`gdjax.plot.basins.outcome_styles` (an orbit in a lighter shade of
    the minimum it surrounds, chaos tan, moving white) and each panel marks
    the points of the cycles its optimizer reaches."""
    bmap = cmp.bmap
    if bmap.grid is None:
        raise ValueError("maps need a grid of starts (compare(..., grid=n))")
    k = len(cmp.presets)
    n_min = len(bmap.minima)
    colors = _basin_colors(n_min)
    cols = min(k, 3 if k > 4 else k)
    rows = math.ceil(k / cols)
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(3.5 * cols + 2.8, 3.6 * rows + 0.5),
        layout="constrained",
        squeeze=False,
    )
    (x0, x1), (y0, y1) = bmap.domain
    glob = list(bmap.global_minima)
    table = bmap.attractors
    for i, (ax, p) in enumerate(zip(axes.flat, cmp.presets, strict=False)):
        if table is None:
            ax.imshow(
                cmp.reached[i].reshape(bmap.grid) + 2,
                origin="lower",
                extent=(x0, x1, y0, y1),
                cmap=mcolors.ListedColormap(colors),
                vmin=-0.5,
                vmax=n_min + 1.5,
                interpolation="nearest",
            )
        else:
            draw_labels(ax, bmap, cmp.reached[i].reshape(bmap.grid))
            _mark_cycles(ax, bmap, i, colors)
        _mark_critical(ax, list(bmap.minima))
        share = float(np.isin(cmp.reached[i], glob).mean())
        ax.set_title(f"{p.words}, lr {p.lr:g}\n{100 * share:.1f}% to the global min", fontsize=9)
        ax.set_aspect("equal")
        ax.set_xlabel("x", fontsize=TICK_POINTS)
        ax.set_ylabel("y", fontsize=TICK_POINTS)
        ax.tick_params(labelsize=TICK_POINTS)
    for ax in list(axes.flat)[k:]:
        ax.axis("off")
    if table is None:
        handles = [plt.Rectangle((0, 0), 1, 1, fc=colors[j + 2]) for j in range(n_min)]
        handles += [
            plt.Rectangle((0, 0), 1, 1, fc=colors[1], ec="k", lw=0.6),
            plt.Rectangle((0, 0), 1, 1, fc=colors[0]),
        ]
        names = [minimum_name(bmap, j) for j in range(n_min)]
        names += ["not converged", "diverged"]
    else:
        handles, names = _attractor_legend(cmp)
    fig.legend(handles, names, loc="outside right upper", fontsize=8)
    c = bmap.config
    fig.suptitle(
        f"The same {c.grid} x {c.grid} starts on {bmap.surface.name}, {c.steps} steps: "
        "where each optimizer ends"
    )
    return fig


def _mark_cycles(ax, bmap, i: int, colors) -> None:
    """The points of the cycles optimizer ``i`` reaches, in the full colour
    of the minimum each surrounds (a black edge)."""
    table = bmap.attractors
    for a in range(len(table)):
        if table.kind[a] != "periodic":
            continue
        pts = np.asarray(table.points[i, a])
        pts = pts[np.all(np.isfinite(pts), axis=1)]
        if not len(pts):
            continue
        m = table.minimum[a]
        face = colors[m + 2] if m >= 0 else "0.85"
        ax.plot(pts[:, 0], pts[:, 1], "o", color=face, mec="k", mew=0.8, ms=5, zorder=5)


def _attractor_legend(cmp) -> tuple[list, list[str]]:
    """Every outcome the optimizers reach (:func:`gdjax.plot.basins.outcome_order`),
    in its map colour; an outcome no optimizer reaches is left out."""
    bmap = cmp.bmap
    styles = outcome_styles(bmap)
    handles, names = [], []
    for label in outcome_order(bmap):
        key = bmap.outcome(label)
        if label >= 0:
            text = minimum_name(bmap, label)
        elif label <= FIRST_ATTRACTOR:
            text = key
        else:
            text = key.replace("_", " ")
        if label < 0 and not np.any(np.asarray(cmp.fractions[key].fraction) > 0):
            continue
        edge = "k" if label == -1 else "none"
        handles.append(plt.Rectangle((0, 0), 1, 1, fc=styles[label][0], ec=edge, lw=0.6))
        names.append(text)
    if any(k == "periodic" for k in bmap.attractors.kind):
        handles.append(plt.Line2D([], [], ls="", marker="o", mfc="0.85", mec="k", mew=0.8, ms=5))
        names.append("orbit points (each cycle's)")
    return handles, names


def agreement_matrix(cmp) -> Figure:
    """The pairwise agreement: the fraction of starts that reach the same
    minimum under both optimizers (the diagonal: each one's share of starts
    that reached a minimum at all). The colours span the values shown (the
    colour bar says so), so that close fractions still differ; every number
    is written in its cell, black or white, whichever reads better on it."""
    a = np.asarray(cmp.agreement, dtype=np.float64)
    names = cmp.names
    fig, ax = plt.subplots(figsize=(1.1 * len(names) + 3.2, 1.0 * len(names) + 1.6))
    finite = a[np.isfinite(a)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi > lo:
        norm = mcolors.Normalize(lo, hi)
        ticks = np.linspace(lo, hi, 5)
        label = f"fraction of starts (colours span {lo:.3f} to {hi:.3f})"
    else:  # one value: one colour, the middle of the scale
        norm = mcolors.Normalize(lo - 0.5, lo + 0.5)
        ticks = np.array([lo])
        label = f"fraction of starts (every cell {lo:.3f})"
    im = ax.imshow(a, cmap="viridis", norm=norm)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(names)), names)
    cmap = im.get_cmap()
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(
                j,
                i,
                f"{a[i, j]:.3f}",
                ha="center",
                va="center",
                fontsize=9,
                color=_text_color(cmap(norm(float(a[i, j])))),
            )
    cbar = fig.colorbar(im, ax=ax, label=label)
    cbar.set_ticks(ticks, labels=[f"{t:.3f}" for t in ticks])  # the ends: the range shown
    ax.set_title("Starts that reach the same minimum under both", fontsize=10)
    fig.tight_layout()
    return fig


def global_fractions(cmp) -> Figure:
    """Each optimizer's fraction of starts that reach a global minimum, with
    its 95% Wilson interval."""
    p = cmp.p_global
    frac = np.asarray(p.fraction)
    lo, hi = np.asarray(p.ci_low), np.asarray(p.ci_high)
    names = cmp.names
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 3, 4))
    x = np.arange(len(names))
    ax.bar(x, frac, color=[f"C{i}" for i in range(len(names))], alpha=0.85)
    ax.errorbar(x, frac, yerr=[frac - lo, hi - frac], fmt="none", ecolor="k", capsize=4)
    for xi, f, top in zip(x, frac, hi, strict=True):
        ax.annotate(
            f"{100 * f:.1f}%",
            (xi, top),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=9,
        )
    ax.set_xticks(x, names)
    ax.set_ylabel("fraction of starts reaching a global minimum")
    ax.set_ylim(0, min(1.0, max(float(hi.max()) * 1.25, 0.05)))
    ax.set_title("Global-minimum fraction (95% Wilson intervals)", fontsize=10)
    fig.tight_layout()
    return fig
