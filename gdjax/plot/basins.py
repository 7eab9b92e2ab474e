"""Figures of basins of attraction (:class:`gdjax.basins.BasinMap`, lesson C):
the map of which minimum each start reaches, the time it takes, and the
chance that the best of k restarts reaches a global minimum.

Colours of the outcomes (:func:`outcome_styles`): each minimum its colour
of the palette; a periodic orbit around a minimum a lighter shade of that
minimum's colour (the first orbit of a minimum, by period, at half its
strength, the next ones lighter), with a hatch where bands are drawn (the
continuation's fractions); a cycle around no minimum a light grey-violet;
chaos a greyish tan; moving (or not converged, without attractor labelling)
white; diverged mid grey. Orbit points are marked on the maps in their
minimum's full colour (:func:`mark_orbits`)."""

from __future__ import annotations

import math

import matplotlib
import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from gdjax.descent import Trajectory
from gdjax.maps.summary import DIVERGED, FIRST_ATTRACTOR, NOT_CONVERGED
from gdjax.plot._style import (
    _CRITICAL_MARKERS,
    _DIVERGED_COLOR,
    _basin_colors,
    _centre_note,
    _mark_critical,
    _title,
    surface_grid,
)

__all__ = [
    "NOISE",
    "basin_map",
    "draw_labels",
    "label_pixels",
    "mark_orbits",
    "legend_outcomes",
    "minor_name",
    "minor_orbits",
    "minor_patch",
    "outcome_order",
    "outcome_styles",
    "basin_scatter",
    "best_of_k_curve",
    "convergence_time_map",
    "value_scale",
    "value_text",
]

NOISE = 1e-12
"""A surface's value at a critical point within ``NOISE`` times the scale of
its values (:func:`value_scale`) of 0 is 0 up to float64 round-off: Newton's
method refines each point in float64, and two refinements of one minimum
differ there (himmelblau's minima read 0, 7.9e-31 and 4e-26)."""


_CHAOTIC_COLOR = "#c4ad82"  # a greyish tan: apart from diverged's grey and moving's white
_LONE_ORBIT_COLOR = "#c9bfdb"  # a cycle around no minimum
_TINTS = (0.45, 0.68, 0.82, 0.9)  # share of white in the k-th orbit of a minimum
_HATCHES = ("//", "\\\\", "xx", "..")
_MINOR = 0.005
"""A periodic orbit reached by fewer than this share of the starts at every
rate is drawn in the lightest shade of its minimum's colour and shares one
legend entry with the others like it (runs caught near a bifurcation)."""
_MINOR_FACE = "#ececec"


def _tint(color, white: float) -> str:
    """``color`` mixed with ``white`` of white (0: itself, 1: white)."""
    rgb = np.asarray(mcolors.to_rgb(color))
    return mcolors.to_hex(rgb + (1.0 - rgb) * white)


def minor_orbits(bmap) -> set[int]:
    """The labels of the periodic orbits that fewer than :data:`_MINOR` of
    the starts reach at every rate of the map."""
    table = bmap.attractors
    if table is None:
        return set()
    return {
        FIRST_ATTRACTOR - a
        for a, name in enumerate(table.names)
        if table.kind[a] == "periodic" and np.max(bmap.fractions[name].fraction) < _MINOR
    }


def legend_outcomes(bmap) -> list[int | None]:
    """:func:`outcome_order` for a legend: the minor orbits
    (:func:`minor_orbits`) left out, and None (one entry for them all)
    before chaos where there are any."""
    minor = minor_orbits(bmap)
    order = [label for label in outcome_order(bmap) if label not in minor]
    if minor:
        at = next(
            (i for i, label in enumerate(order) if label in (NOT_CONVERGED, DIVERGED)),
            len(order),
        )
        table = bmap.attractors
        if "chaotic" in table.names:
            at = order.index(FIRST_ATTRACTOR - table.names.index("chaotic"))
        order.insert(at, None)
    return order


def minor_patch(points: bool = False):
    """The legend handle of the minor orbits."""
    if points:
        return plt.Line2D([], [], ls="", marker="o", ms=7, mfc=_MINOR_FACE, mec="0.5", mew=0.6)
    return plt.Rectangle((0, 0), 1, 1, fc=_MINOR_FACE, ec="0.5", lw=0.6, hatch="..")


def minor_name(bmap) -> str:
    """The legend entry of the minor orbits (their periods)."""
    periods = [bmap.attractors.period[FIRST_ATTRACTOR - lab] for lab in minor_orbits(bmap)]
    lo, hi = min(periods), max(periods)
    which = f"period {lo}" if lo == hi else f"periods {lo} to {hi}"
    return f"other orbits ({which}), each under {100 * _MINOR:g}% of starts"


def outcome_styles(bmap) -> dict[int, tuple[str, str | None]]:
    """label -> (colour, hatch or None) of every outcome of a map (its
    minima, attractors, moving or not converged, diverged); see the module
    docstring. The orbits around a minimum take its shades in the order of
    their periods; minor ones (:func:`minor_orbits`) its lightest."""
    colors = _basin_colors(len(bmap.minima))
    styles: dict[int, tuple[str, str | None]] = {
        DIVERGED: (colors[0], None),
        NOT_CONVERGED: (colors[1], None),
    }
    for i in range(len(bmap.minima)):
        styles[i] = (colors[i + 2], None)
    table = bmap.attractors
    minor = minor_orbits(bmap)
    seen: dict[int, int] = {}  # orbits drawn so far around each minimum
    for a in range(0 if table is None else len(table)):
        label = FIRST_ATTRACTOR - a
        m = table.minimum[a]
        if table.kind[a] == "chaotic":
            styles[label] = (_CHAOTIC_COLOR, None)
            continue
        if label in minor:
            face = _tint(colors[m + 2], _TINTS[-1]) if m >= 0 else _LONE_ORBIT_COLOR
            styles[label] = (face, "..")
            continue
        k = seen.get(m, 0)
        seen[m] = k + 1
        face = _LONE_ORBIT_COLOR
        if m >= 0:
            face = _tint(colors[m + 2], _TINTS[min(k, len(_TINTS) - 1)])
        styles[label] = (face, _HATCHES[k % len(_HATCHES)])
    return styles


def outcome_order(bmap) -> list[int]:
    """The labels of a map's outcomes in the order legends and stacked
    bands show them: each minimum followed by the orbits around it, the
    orbits around no minimum, chaos, moving (not converged), diverged."""
    table = bmap.attractors
    order: list[int] = []
    attractors = range(0 if table is None else len(table))
    for i in range(len(bmap.minima)):
        order.append(i)
        order += [FIRST_ATTRACTOR - a for a in attractors if table.minimum[a] == i]
    order += [
        FIRST_ATTRACTOR - a
        for a in attractors
        if table.minimum[a] < 0 and table.kind[a] == "periodic"
    ]
    order += [FIRST_ATTRACTOR - a for a in attractors if table.kind[a] == "chaotic"]
    return order + [NOT_CONVERGED, DIVERGED]


def label_pixels(bmap, labels) -> np.ndarray:
    """``labels`` as the values :func:`draw_labels`' image holds (the index of
    each outcome's colour): for ``image.set_data`` on a drawn map."""
    return np.asarray(labels) - min(outcome_styles(bmap))


def draw_labels(ax, bmap, labels, **kwargs):
    """A label image drawn in the outcomes' colours (``labels``: (ny, nx)
    of ``bmap``'s labels; ``kwargs`` to ``imshow``)."""
    styles = outcome_styles(bmap)
    low, high = min(styles), max(styles)
    colors = [styles[label][0] for label in range(low, high + 1)]
    (x0, x1), (y0, y1) = bmap.domain
    return ax.imshow(
        label_pixels(bmap, labels),
        origin="lower",
        extent=(x0, x1, y0, y1),
        cmap=mcolors.ListedColormap(colors),
        vmin=-0.5,
        vmax=len(colors) - 0.5,
        interpolation="nearest",
        **kwargs,
    )


def mark_orbits(ax, bmap, size: float = 6.0) -> list[tuple]:
    """Marks where each attractor of a single map lies: a cycle's points as
    circles in its minimum's full colour (a black edge), a sample of the
    chaotic set as small dots; returns legend entries (handle, name) for
    what was drawn."""
    table = bmap.attractors
    if table is None:
        return []
    colors = _basin_colors(len(bmap.minima))
    entries = []
    cycles = chaos = False
    for a in range(len(table)):
        pts = table.cycle(a)
        if not len(pts):
            continue
        if table.kind[a] == "chaotic":
            ax.plot(pts[:, 0], pts[:, 1], ".", color="#f2f2f2", mec="k", mew=0.4, ms=4, zorder=5)
            chaos = True
            continue
        m = table.minimum[a]
        face = colors[m + 2] if m >= 0 else _LONE_ORBIT_COLOR
        ax.plot(pts[:, 0], pts[:, 1], "o", color=face, mec="k", mew=0.8, ms=size, zorder=5)
        cycles = True
    if cycles:
        handle = plt.Line2D([], [], ls="", marker="o", mfc="0.85", mec="k", mew=0.8, ms=size)
        entries.append((handle, "orbit points (each cycle's, in its minimum's colour)"))
    if chaos:
        handle = plt.Line2D([], [], ls="", marker=".", color="#f2f2f2", mec="k", mew=0.4, ms=6)
        entries.append((handle, "points of the chaotic runs (a sample)"))
    return entries


def value_scale(values) -> float:
    """The scale of a surface's values at its critical points: max(1, max |f|)."""
    finite = [abs(float(v)) for v in values if np.isfinite(v)]
    return max([1.0, *finite])


def value_text(v: float, scale: float = 1.0) -> str:
    """A surface's value at a critical point as every figure and table shows
    it: 4 significant digits, and "0" within round-off of 0 (|v| <=
    :data:`NOISE` x ``scale``, the scale of the values: :func:`value_scale`)."""
    v = float(v)
    if not np.isfinite(v):
        return str(v)
    if abs(v) <= NOISE * scale:
        return "0"
    return f"{v:.4g}"


_NOT_CONVERGED_EDGE = "k"  # white points with a black edge, as the legend's white box
_NOT_CONVERGED_LW = 0.6  # points: about 1 px at the saved 110 dpi
_MIN_EDGE = 0.4  # the thinnest edge of a not-converged point (points; 0.6 px at 110 dpi)


def _basin_title(bmap, what: str) -> str:
    c = bmap.config
    rule = c.rule  # in words (gdjax.describe_rule)
    starts = (
        f"{bmap.grid[1]} x {bmap.grid[0]} grid of starts"
        if bmap.grid is not None
        else f"{len(bmap.labels):,} random starts"
    )
    steps = c.steps
    return f"{what}: {bmap.surface.name}, {rule}, {steps} step{'' if steps == 1 else 's'}, {starts}"


def _basin_legend(bmap, critical, points: bool = False) -> tuple[list, list[str]]:
    """The legend of a basin figure: each minimum (and the orbits around
    it), the orbits around no minimum, chaos, moving or not converged,
    diverged, the critical points. ``points``: outcomes as the scatter's
    markers (circles), else as the map's boxes."""

    def pct(key):
        return f"{100 * bmap.fractions[key][0]:.1f}%" if key in bmap.fractions else "?"

    def patch(face, edge="none", hatch=None):
        if points:
            return plt.Line2D(
                [], [], ls="", marker="o", ms=7, mfc=face, mec=edge, mew=_NOT_CONVERGED_LW
            )
        return plt.Rectangle((0, 0), 1, 1, fc=face, ec=edge, lw=_NOT_CONVERGED_LW)

    styles = outcome_styles(bmap)
    handles, names = [], []
    glob = set(getattr(bmap, "global_minima", ()))
    scale = value_scale([m.value for m in bmap.minima] + [c.value for c in critical])
    table = bmap.attractors
    for label in legend_outcomes(bmap):
        if label is None:
            share = sum(bmap.fractions[bmap.outcome(lab)][0] for lab in minor_orbits(bmap))
            handles.append(minor_patch(points))
            names.append(f"{minor_name(bmap)}, {100 * share:.1f}% in all")
            continue
        face = styles[label][0]
        if label >= 0:
            m = bmap.minima[label]
            loc = ", ".join(f"{v:.2f}" for v in m.location)
            tag = " (global)" if label in glob else ""
            handles.append(patch(face))
            names.append(
                f"min {label}{tag}: ({loc}), f = {value_text(m.value, scale)}, {pct(str(label))}"
            )
        elif label <= FIRST_ATTRACTOR:
            name = table.names[FIRST_ATTRACTOR - label]
            handles.append(patch(face))
            names.append(f"{name}, {pct(name)}")
        elif label == NOT_CONVERGED:
            if not bmap.minima:
                handles.append(plt.Rectangle((0, 0), 1, 1, fc="none", ec="none"))
                names.append("no minimum reached")
            key = bmap.outcome(NOT_CONVERGED)
            handles.append(patch(face, _NOT_CONVERGED_EDGE))
            names.append(f"{key.replace('_', ' ')}, {pct(key)}")
        else:
            handles.append(patch(face))
            names.append(f"diverged, {pct('diverged')}")
    kinds = [c.kind for c in critical]
    for kind, (m, col, size) in _CRITICAL_MARKERS.items():
        if kind in kinds:
            handles.append(plt.Line2D([], [], ls="", marker=m, color=col, mec="k", ms=size))
            names.append({"min": "minimum", "max": "maximum"}.get(kind, kind))
    return handles, names


def _basin_axes(fig, ax, bmap, critical, title: str, points: bool = False, extra=()) -> None:
    (x0, x1), (y0, y1) = bmap.domain
    X, Y, Z = surface_grid(bmap.surface, 200, bmap.domain)
    if np.all(np.isfinite(Z)) and np.ptp(Z) > 0:
        ax.contour(X, Y, Z, levels=15, colors="k", linewidths=0.4, alpha=0.4)
    _mark_critical(ax, critical)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    handles, names = _basin_legend(bmap, critical, points)
    for handle, name in extra:
        handles.append(handle)
        names.append(name)
    ax.legend(handles, names, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    _title(ax, title, fontsize=11, share=0.6)


def basin_map(
    bmap, critical=(), trajs: Trajectory | None = None, *, title: str | None = None
) -> Figure:
    """A grid BasinMap's labels coloured, minima, saddles and maxima marked,
    and a few trajectories overlaid. The title says the rule in words (or is
    ``title``)."""
    labels = bmap.label_grid()
    fig, ax = plt.subplots(figsize=(9.5, 6.2), layout="constrained")
    draw_labels(ax, bmap, labels)
    extra = mark_orbits(ax, bmap)
    if trajs is not None:
        paths = np.asarray(trajs.params)
        for path in paths:
            ax.plot(path[:, 0], path[:, 1], "-", color="k", lw=1)
            ax.plot(path[0, 0], path[0, 1], "o", color="k", ms=3)
        if len(paths):
            handle = plt.Line2D([], [], color="k", lw=1, marker="o", ms=3, markevery=[0])
            extra.append((handle, f"{len(paths)} example paths (dot: the start)"))
    title = title or _basin_title(bmap, "Basins of attraction")
    _basin_axes(fig, ax, bmap, critical, title, extra=extra)
    return fig


def basin_scatter(bmap, critical=(), max_points: int = 20000) -> Figure:
    """Random starts (a BasinMap with ``grid is None``, or any map) as points
    coloured by the basin they reach, with basin_map's colours and legend:
    white with a black edge (as the legend's box in basin_map) not converged,
    grey diverged; minima and critical points marked. Draws an even random
    subsample of ``max_points`` starts (fixed seed, so the figure is
    reproducible)."""
    starts = np.asarray(bmap.starts)
    labels = np.asarray(bmap.labels)
    n = len(labels)
    if n > max_points:
        keep = np.sort(np.random.default_rng(0).choice(n, max_points, replace=False))
        starts, labels = starts[keep], labels[keep]
    styles = outcome_styles(bmap)
    fig, ax = plt.subplots(figsize=(9.5, 6.2), layout="constrained")
    size = float(np.clip(16000 / max(len(labels), 1), 1.5, 30.0))
    white = labels == -1  # white on white: seen by their black edge
    edge = float(np.clip(0.3 * math.sqrt(size), _MIN_EDGE, _NOT_CONVERGED_LW))
    ax.scatter(
        starts[:, 0],
        starts[:, 1],
        c=[styles[int(lab)][0] for lab in labels],
        s=size,
        edgecolors=[_NOT_CONVERGED_EDGE if w else "none" for w in white],
        linewidths=np.where(white, edge, 0.0),
        rasterized=len(labels) > 2000,
    )
    shown = f" ({len(labels):,} shown)" if len(labels) < n else ""
    title = _basin_title(bmap, "Basins of attraction") + shown
    _basin_axes(fig, ax, bmap, critical, title, points=True, extra=mark_orbits(ax, bmap))
    return fig


def convergence_time_map(bmap) -> Figure:
    """Steps to convergence per start (grid maps). Starts that reached no
    minimum (not converged: label -1, e.g. a flat plateau where |grad| < tol
    from the start; diverged: -2) are masked: light grey and dark grey."""
    labels = bmap.label_grid()
    steps = bmap.converged_step.reshape(bmap.grid).astype(np.float64)
    reached = (labels >= 0) & (steps >= 0)
    data = np.ma.masked_array(np.maximum(steps, 1.0), mask=~reached)
    (x0, x1), (y0, y1) = bmap.domain
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.88")
    if data.count():  # the colours span the steps actually seen
        vmin, vmax = float(data.min()), float(data.max())
    else:
        vmin, vmax = 1.0, float(bmap.config.steps)
    norm = mcolors.LogNorm(vmin, max(vmax, 10.0 * vmin))
    fig, ax = plt.subplots(figsize=(8, 6), layout="constrained")
    extent = (x0, x1, y0, y1)
    im = ax.imshow(
        data, origin="lower", extent=extent, cmap=cmap, norm=norm, interpolation="nearest"
    )
    div = labels == -2
    if div.any():
        ax.imshow(
            np.ma.masked_array(np.ones(labels.shape), mask=~div),
            origin="lower",
            extent=extent,
            cmap=mcolors.ListedColormap([_DIVERGED_COLOR]),
            interpolation="nearest",
        )
    every = bmap.config.check_every
    label = "step from which |grad| < tol held"
    if every and 1 < every < bmap.config.steps:
        label += f" (checked every {every} steps)"
    if np.any(reached & (steps == 0)):
        label += "; 0 drawn as 1"
    cbar = fig.colorbar(im, ax=ax, label=label, shrink=0.9)
    lo, hi = norm.vmin, norm.vmax
    decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
    ticks = [m * 10.0**k for k in decades for m in (1, 2, 5) if lo <= m * 10.0**k <= hi]
    cbar.set_ticks(ticks, labels=[f"{t:g}" for t in ticks])
    cbar.ax.yaxis.set_minor_formatter(NullFormatter())
    n = labels.size
    handles = [
        plt.Rectangle((0, 0), 1, 1, fc="0.88", ec="k", lw=0.5),
        plt.Rectangle((0, 0), 1, 1, fc=_DIVERGED_COLOR),
    ]
    names = [
        f"not converged ({100 * np.mean((labels == -1) | (labels <= FIRST_ATTRACTOR)):.1f}%)",
        f"diverged ({100 * np.mean(div):.1f}%)",
    ]
    ax.legend(
        handles,
        names,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.1),
        ncol=2,
        fontsize=8,
        frameon=False,
    )
    if not data.count():
        _centre_note(ax, f"no start reached a minimum ({n:,} starts)")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    _title(ax, _basin_title(bmap, "Convergence time"), fontsize=11, share=0.85)
    return fig


def best_of_k_curve(ks, exact, simulated) -> Figure:
    """Lesson C: probability that the best of k restarts reaches a global minimum."""
    fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
    ax.plot(ks, exact, "-", label="1 - (1 - p)^k from the basin fraction")
    ax.plot(ks, simulated, "o", label="simulated from the labels")
    ax.set_xscale("log")
    ax.set_xlabel("k random restarts")
    ax.set_ylabel("P(best of k reaches\na global minimum)")
    ax.set_ylim(-0.02, 1.02)
    if not np.any(np.asarray(exact, dtype=np.float64) > 0):
        _centre_note(ax, "no start reached a global minimum (p = 0):\nrestarts cannot help")
    ax.legend(loc="lower right", fontsize=9)
    return fig
