"""Figures of trainability maps (:class:`gdjax.trainability.TrainabilityMap`)."""

from __future__ import annotations

import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FixedLocator, MaxNLocator, NullLocator, ScalarFormatter

from gdjax.trainability import with_error

__all__ = ["SHADES", "box_counting", "colours", "shade_ranks", "trainability_map", "zoom_sequence"]

SHADES = {
    "network": (
        ("trained (blue): rank of the sum of its losses / first loss", "fastest", "slowest"),
        ("diverged (red): rank of the sum of first loss / its losses", "fastest", "slowest"),
    ),
    "surface": (
        ("converged (blue): rank of |final loss| / max(|loss at start|, 1)", "least", "most"),
        ("did not converge (red): stayed bounded or diverged", "bounded", "diverged"),
    ),
}
"""What a shade means, per kind of map: for the trainable side, then the
other, the colour bar's label and the words at its light and dark ends."""

BINARY = {"surface": (0.3, 0.9)}
"""Kinds whose red side is two shades, not a rank: the shade (on the red
bar's 0..1) of a bounded and of a diverged descent (its score: 0 or 1)."""


def _blue(u):
    return 0.58 + 0.42 * np.asarray(u)


def _red(u):
    return 0.42 - 0.42 * np.asarray(u)


# RdBu: 0 dark red ... 0.5 white ... 1 dark blue; the shades keep away from white


def shade_ranks(tmap) -> np.ndarray:
    """Each pixel's shade in (0, 1): the rank of |score| within its side
    (trainable or not), from 0 (smallest) to 1 (largest), so every shade is
    used; equal scores share their mean rank (one shade)."""
    score = np.abs(np.asarray(tmap.score, np.float64))
    conv = np.asarray(tmap.converged)
    u = np.zeros(score.shape)
    for side in (conv, ~conv):
        if side.any():
            values, inverse, counts = np.unique(
                score[side], return_inverse=True, return_counts=True
            )
            first = np.concatenate([[0], np.cumsum(counts)[:-1]])
            mid = first + (counts - 1) / 2
            u[side] = (mid[inverse.ravel()] + 0.5) / side.sum()
    return u


def colours(tmap) -> np.ndarray:
    """An RGB image in the paper's colours: trainable blue, the rest red,
    shaded by :func:`shade_ranks` (darker: larger |score|; on the network
    map, slower training and slower divergence: :data:`SHADES`); on a
    surface map the red side is two shades, bounded and diverged
    (:data:`BINARY`)."""
    u = shade_ranks(tmap)
    conv = np.asarray(tmap.converged)
    if _kind(tmap) in BINARY:  # did not converge: bounded or diverged, two shades
        bounded, diverged = BINARY[_kind(tmap)]
        u = np.where(conv, u, np.where(np.asarray(tmap.score) > 0, diverged, bounded))
    v = np.where(conv, _blue(u), _red(u))
    return matplotlib.colormaps["RdBu"](v)[..., :3]


def _kind(tmap) -> str:
    return "network" if tmap.x.name == "lr_0" else "surface"


def _colour_bars(fig, axes, kind: str) -> list:
    """Two colour bars under ``axes``, light to dark: the trainable side's
    shade, then the other's (:data:`SHADES`)."""
    bars = []
    for (label, light, dark), side in zip(SHADES[kind], (_blue, _red), strict=True):
        two = side is _red and kind in BINARY
        levels = np.asarray(BINARY[kind]) if two else np.linspace(0, 1, 256)
        cmap = ListedColormap(matplotlib.colormaps["RdBu"](side(levels)))
        bar = fig.colorbar(
            ScalarMappable(Normalize(0, 1), cmap),
            ax=axes,
            orientation="horizontal",
            fraction=0.035,
            aspect=40,
            pad=0.02,
        )
        if two:  # one half of the bar per outcome
            bar.set_ticks([0.25, 0.75], labels=[light, dark])
        else:
            bar.set_ticks([0, 0.5, 1], labels=[light, "median", dark])
        bar.ax.tick_params(labelsize=7)
        bar.set_label(label, fontsize=8)
        bars.append(bar)
    return bars


def _outline(ax, window, **kw) -> Rectangle:
    patch = Rectangle(
        (window.cx - window.wx / 2, window.cy - window.wy / 2),
        window.wx,
        window.wy,
        fill=False,
        ec="k",
        lw=1.5,
        **kw,
    )
    ax.add_patch(patch)
    return patch


def _extent(tmap):
    def ends(axis):
        v = np.log10(axis.values) if axis.log else axis.values
        step = (v[-1] - v[0]) / max(len(v) - 1, 1)
        return v[0] - step / 2, v[-1] + step / 2

    return (*ends(tmap.x), *ends(tmap.y))


def _label(axis) -> str:
    return f"log10 {axis.name}" if axis.log else axis.name


def _draw(ax, tmap) -> None:
    ax.imshow(
        colours(tmap), origin="lower", extent=_extent(tmap), interpolation="nearest", aspect="auto"
    )
    ax.set_xlabel(_label(tmap.x))
    ax.set_ylabel(_label(tmap.y))


def trainability_map(tmap, title: str = "", zoom=None) -> Figure:
    """The map: blue trainable, red not, shaded by :func:`shade_ranks` (two
    colour bars say what the shade means); ``zoom``, the window of the
    first zoom taken from it, outlined and labelled."""
    fig, ax = plt.subplots(figsize=(7.5, 7.4), layout="constrained")
    _draw(ax, tmap)
    ny, nx = tmap.converged.shape
    red = "diverges" if _kind(tmap) == "network" else "does not converge"
    ax.set_title(
        (title + "\n" if title else "")
        + f"{nx} x {ny} pixels: blue trains ({100 * tmap.converged_fraction:.1f}%), red {red}",
        fontsize=10,
    )
    if zoom is not None:
        _outline(ax, zoom, label="zoom 0")
        x0, x1, y0, y1 = _extent(tmap)
        # the label beside the outline, on the side with room inside the axes
        right = zoom.cx > (x0 + x1) / 2
        top = zoom.cy + zoom.wy / 2 > y1 - 0.1 * (y1 - y0)
        ax.annotate(
            "zoom 0",
            (
                zoom.cx + (1 if right else -1) * zoom.wx / 2,
                zoom.cy + (-1 if top else 1) * zoom.wy / 2,
            ),
            xytext=(0, -3 if top else 3),
            textcoords="offset points",
            ha="right" if right else "left",
            va="top" if top else "bottom",
            fontsize=8,
            bbox={"boxstyle": "round,pad=0.15", "fc": "w", "ec": "none", "alpha": 0.8},
        )
    _colour_bars(fig, ax, _kind(tmap))
    return fig


def zoom_sequence(maps, title: str = "") -> Figure:
    """Successive zooms into the boundary, each at the same resolution, the
    next window outlined in black; colour bars as on the map."""
    n = len(maps)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.6 * cols, 3.7 * rows + 0.4), layout="constrained", squeeze=False
    )
    for k, (ax, tmap) in enumerate(zip(axes.flat, maps, strict=False)):
        _draw(ax, tmap)
        w = tmap.window
        ax.set_title(f"zoom {k}: width {w.wx:.3g} x {w.wy:.3g}", fontsize=9)
        ax.tick_params(labelsize=7)
        for axis in (ax.xaxis, ax.yaxis):  # deep zooms: long labels, few of them
            axis.set_major_locator(MaxNLocator(4))
        if k + 1 < n:
            _outline(ax, maps[k + 1].window, label=f"zoom {k + 1}")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if n:
        _colour_bars(fig, axes, _kind(maps[0]))
    red = "diverges" if not n or _kind(maps[0]) == "network" else "does not converge"
    fig.suptitle(title or f"Zooming into the boundary (blue trains, red {red})")
    return fig


def box_counting(result, title: str = "Box counting of the boundary", se=None) -> Figure:
    """Boxes holding a boundary pixel against the box size (log-log), ticks
    at the sizes counted, and the fit whose slope is minus the dimension
    (:class:`gdjax.fractal.BoxDimension`), with ``se``, its standard error
    (:func:`gdjax.trainability.box_dimension_se`), in the legend."""
    fig, ax = plt.subplots(figsize=(5.8, 4.3), layout="constrained")
    sizes, counts = np.asarray(result.sizes), np.asarray(result.counts)
    ax.loglog(sizes, np.maximum(counts, 0.8), "o", color="C0", label="boxes on the boundary")
    if np.isfinite(result.dimension):
        text = with_error(result.dimension, math.nan if se is None else se)
        ax.loglog(
            sizes,
            np.exp(result.intercept) * sizes ** (-result.dimension),
            "--",
            color="k",
            label=f"fit: dimension {text}"
            + ("" if se is None or not np.isfinite(se) else " (standard error of the slope)"),
        )
    # ticks at the sizes counted and at the counts found
    for axis, ticks in ((ax.xaxis, sizes), (ax.yaxis, np.unique(counts[counts > 0]))):
        axis.set_major_locator(FixedLocator(ticks))
        axis.set_minor_locator(NullLocator())
        fmt = ScalarFormatter()
        fmt.set_scientific(False)
        axis.set_major_formatter(fmt)
    ax.set_xlim(sizes[0] / 1.3, sizes[-1] * 1.3)
    ax.set_xlabel("box size (pixels)")
    ax.set_ylabel("boxes")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return fig
