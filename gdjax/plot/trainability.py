"""Figures of trainability maps (:class:`gdjax.trainability.TrainabilityMap`)."""

from __future__ import annotations

import math

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

__all__ = ["box_counting", "colours", "trainability_map", "zoom_sequence"]


def colours(tmap) -> np.ndarray:
    """An RGB image in the paper's colours: trainable blue, divergent red,
    the shade by rank of the score within each side (so every shade is used:
    dark blue trains best, dark red diverges fastest)."""
    score = np.asarray(tmap.score, np.float64)
    conv = np.asarray(tmap.converged)
    u = np.zeros(score.shape)
    for side in (conv, ~conv):
        if side.any():
            ranks = np.argsort(np.argsort(np.abs(score[side])))
            u[side] = (ranks + 0.5) / side.sum()
    # RdBu: 0 dark red ... 0.5 white ... 1 dark blue; keep away from white
    v = np.where(conv, 0.58 + 0.42 * u, 0.42 - 0.42 * u)
    return matplotlib.colormaps["RdBu"](v)[..., :3]


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


def trainability_map(tmap, title: str = "") -> Figure:
    """The map: blue trainable, red divergent, shaded by the score."""
    fig, ax = plt.subplots(figsize=(7.5, 6.6), layout="constrained")
    _draw(ax, tmap)
    ny, nx = tmap.converged.shape
    ax.set_title(
        (title + "\n" if title else "")
        + f"{nx} x {ny} pixels: blue trains ({100 * tmap.converged_fraction:.1f}%), red diverges",
        fontsize=10,
    )
    return fig


def zoom_sequence(maps, title: str = "") -> Figure:
    """Successive zooms into the boundary, each at the same resolution, the
    next window outlined in black."""
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
        if k + 1 < n:
            nxt = maps[k + 1].window
            ax.add_patch(
                Rectangle(
                    (nxt.cx - nxt.wx / 2, nxt.cy - nxt.wy / 2),
                    nxt.wx,
                    nxt.wy,
                    fill=False,
                    ec="k",
                    lw=1.5,
                )
            )
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.suptitle(title or "Zooming into the boundary (blue trains, red diverges)")
    return fig


def box_counting(result, title: str = "Box counting of the boundary") -> Figure:
    """Boxes holding a boundary pixel against the box size (log-log), and the
    fit whose slope is minus the dimension (:class:`gdjax.fractal.BoxDimension`)."""
    fig, ax = plt.subplots(figsize=(5.8, 4.3), layout="constrained")
    sizes, counts = np.asarray(result.sizes), np.asarray(result.counts)
    ax.loglog(sizes, np.maximum(counts, 0.8), "o", color="C0", label="boxes on the boundary")
    if np.isfinite(result.dimension):
        ax.loglog(
            sizes,
            np.exp(result.intercept) * sizes ** (-result.dimension),
            "--",
            color="k",
            label=f"fit: dimension {result.dimension:.3f}",
        )
    ax.set_xlabel("box size (pixels)")
    ax.set_ylabel("boxes")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return fig
