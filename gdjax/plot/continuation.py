"""Figures of the continuation over the learning rate
(:class:`gdjax.continuation.Continuation`)."""

from __future__ import annotations

import io
import math

import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
from matplotlib.figure import Figure

from gdjax.plot._style import _basin_colors, _centre_note, _mark_critical, _title
from gdjax.plot.basins import (
    draw_labels,
    label_pixels,
    legend_outcomes,
    mark_orbits,
    minor_name,
    minor_orbits,
    minor_patch,
    outcome_order,
    outcome_styles,
)
from gdjax.plot.fractal import uncertainty_fits as _uncertainty_fits

__all__ = [
    "animation",
    "outcome_name",
    "fractal_measures",
    "fractions_vs_rate",
    "map_panel",
    "minimum_name",
    "panel_indices",
    "rate_cells",
    "uncertainty_fits",
]


def minimum_name(bmap, i: int) -> str:
    """A minimum in words: its index, whether it is global, its location."""
    m = bmap.minima[i]
    tag = " (global)" if i in set(bmap.global_minima) else ""
    loc = ", ".join(f"{v:.2f}" for v in m.location)
    return f"min {i}{tag} ({loc})"


def rate_cells(lrs) -> np.ndarray:
    """The edges of the cells the figures give each measured rate: the
    geometric midpoints between neighbours, the first and the last rate at
    the ends (one rate alone: a factor 1.2 either side). A fraction is drawn
    constant over its rate's cell: what was measured, nothing between."""
    lrs = np.asarray(lrs, np.float64)
    if lrs.size == 1:
        return np.asarray([lrs[0] / 1.2, lrs[0] * 1.2])
    mids = np.exp((np.log(lrs[1:]) + np.log(lrs[:-1])) / 2)
    return np.concatenate([lrs[:1], mids, lrs[-1:]])


def _rate_axis(ax, lrs, pad: float = 0.0) -> None:
    """A log rate axis over the cells of ``lrs``, widened by ``pad`` of its
    decades each side (markers at the ends stay whole; never past 1e307);
    over many decades the ticks are every few decades inside the range
    (matplotlib's own locator puts one beyond it, which overflows near the
    float maximum)."""
    edges = rate_cells(lrs)
    d_lo, d_hi = math.log10(edges[0]), math.log10(edges[-1])
    extra = pad * (d_hi - d_lo)
    lo = 10.0 ** (d_lo - min(extra, max(0.0, 307 + d_lo)))
    hi = 10.0 ** (d_hi + min(extra, max(0.0, 307 - d_hi)))
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    d0, d1 = math.ceil(math.log10(lo)), math.floor(math.log10(hi))
    if d1 - d0 >= 10 or max(abs(d0), abs(d1)) > 200:
        stride = max(1, math.ceil((d1 - d0 + 1) / 8))
        ax.xaxis.set_major_locator(mticker.FixedLocator(10.0 ** np.arange(d0, d1 + 1, stride)))
        ax.xaxis.set_minor_locator(mticker.NullLocator())


def _limit_labels(ax, groups, title: str, fontsize: float) -> list:
    """One label per group of stability limits above the axes, raised a row
    where it would overlap a label to its left (read from the drawn
    layout); the title ``title`` is set above the rows."""
    fig = ax.figure
    texts = [
        ax.annotate(
            "2/λ of min " + ", ".join(str(i) for _, i in group),
            xy=(group[0][0], 1.0),
            xycoords=ax.get_xaxis_transform(),
            xytext=(0, 3),
            textcoords="offset points",
            color="0.2",
            ha="center",
            va="bottom",
            fontsize=8,
        )
        for group in groups
    ]
    for _ in range(4):  # the layout moves as rows are added; settle it
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        rows: list[float] = []  # per row: the right edge of its last label
        moved = False
        for t in texts:
            box = t.get_window_extent(renderer)
            row = next((r for r, right in enumerate(rows) if box.x0 > right + 4), len(rows))
            if row == len(rows):
                rows.append(box.x1)
            rows[row] = box.x1
            offset = (0, 3 + 11 * row)
            if tuple(t.xyann) != offset:
                t.xyann = offset
                moved = True
        ax.set_title(title, fontsize=fontsize, pad=6 + (14 + 11 * (len(rows) - 1) if rows else 0))
        if not moved:
            break
    return texts


def outcome_name(bmap, label: int) -> str:
    """An outcome of the maps in words: a minimum by :func:`minimum_name`,
    an attractor by its name, "moving" / "not converged", "diverged"."""
    return minimum_name(bmap, label) if label >= 0 else bmap.outcome_words(label)


def fractions_vs_rate(cont) -> Figure:
    """Every outcome's fraction against the rate as stacked bands (minima in
    their basin-map colours, each followed by the periodic orbits around it
    in lighter, hatched shades of its colour, then chaos, moving or not
    converged, and diverged), each fraction constant over its rate's cell
    (:func:`rate_cells`: steps, not a line between rates; ticks at the
    bottom mark the measured rates), with a dashed line at each minimum's
    stability limit 2 / lambda_max, labelled above the axes (labels that
    would overlap take another row)."""
    bmap = cont.bmap
    n_min = len(bmap.minima)
    colors = _basin_colors(n_min)
    styles = outcome_styles(bmap)
    order = outcome_order(bmap)
    keys = [bmap.outcome(label) for label in order]
    names = [outcome_name(bmap, label) for label in order]
    cols = [styles[label][0] for label in order]
    hatches = [styles[label][1] for label in order]
    fig, ax = plt.subplots(figsize=(9.5, 5.2), layout="constrained")
    _rate_axis(ax, cont.lrs)  # first: autoscaling over hundreds of decades overflows
    ax.set_autoscalex_on(False)
    edges = rate_cells(cont.lrs)
    below = np.zeros(len(cont.lrs))
    minor = {bmap.outcome(label) for label in minor_orbits(bmap)}
    for key, name, col, hatch in zip(keys, names, cols, hatches, strict=True):
        frac = cont.fraction(key)
        if key in minor:
            name = None  # one legend entry for them all
        ax.stairs(
            below + frac,
            edges,
            baseline=below.copy(),
            fill=True,
            facecolor=col,
            edgecolor="0.3",
            hatch=hatch,
            lw=0.3,
            label=name,
        )
        below = below + frac
    ax.plot(
        cont.lrs,
        np.zeros(len(cont.lrs)),
        "^",
        ms=5,
        color="k",
        clip_on=False,
        label="measured rates (each drawn over its cell)",
    )
    ax.set_ylim(0, 1)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("fraction of starts")
    if not any(cont.fraction(str(i)).any() for i in range(n_min)):
        _centre_note(
            ax,
            "no start reached a minimum at any rate",
            fontsize=11,
            color="0.2",
            bbox={"fc": "white", "ec": "0.6", "alpha": 0.9},
        )
    lo, hi = ax.get_xlim()
    shown = [(limit, i) for i, limit in enumerate(cont.stability_limits) if lo <= limit <= hi]
    for limit, i in shown:
        ax.axvline(limit, color=colors[i + 2], ls="--", lw=2)
    groups: list[list[tuple[float, int]]] = []  # limits closer than 3% share one label
    for limit, i in sorted(shown):
        if groups and limit < groups[-1][-1][0] * 1.03:
            groups[-1].append((limit, i))
        else:
            groups.append([(limit, i)])
    if shown:
        ax.plot([], [], color="0.3", ls="--", label="stability limit 2 / λ_max of a minimum")
    handles, labels = ax.get_legend_handles_labels()
    if minor:  # before chaos (or moving), as legend_outcomes places it
        at = labels.index("chaotic") if "chaotic" in labels else labels.index(names[-2])
        handles.insert(at, minor_patch())
        labels.insert(at, minor_name(bmap))
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    c = bmap.config
    what = "Basins" if bmap.attractors is None else "Basins and attractors"
    _title(
        ax,
        f"{what} as the rate grows: {bmap.surface.name}, gradient descent, {c.steps} steps, "
        f"{c.grid} x {c.grid} starts per rate",
        fontsize=11,
        share=0.7,
    )
    _limit_labels(ax, groups, ax.get_title(), 11)
    return fig


def panel_indices(n_rates: int, panels: int = 6, include=()) -> list[int]:
    """``panels`` rate indices spread evenly over the grid (first and last
    included); each index of ``include`` takes the place of the nearest one
    not itself included (the first and last stay while there is room)."""
    if n_rates <= panels:
        return list(range(n_rates))
    picked = sorted({round(v) for v in np.linspace(0, n_rates - 1, panels)})
    for i in dict.fromkeys(int(i) for i in include):
        if i in picked or not 0 <= i < n_rates:
            continue
        free = [j for j in picked if j not in include]
        inner = [j for j in free if j not in (0, n_rates - 1)] or free
        if not inner:
            break
        picked.remove(min(inner, key=lambda j: abs(j - i)))
        picked.append(i)
    return sorted(picked)


def _draw_map(ax, bmap, labels, index: int | None = None):
    """The map ``labels`` (of rate ``index`` of the batch: its orbits
    marked); returns its image. With attractors the axes stay on the domain:
    orbit points may lie outside it."""
    image = draw_labels(ax, bmap, labels)
    if bmap.attractors is not None:
        (x0, x1), (y0, y1) = bmap.domain
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
    if index is not None:
        _mark_rate_orbits(ax, bmap, index)
    ax.set_aspect("equal")
    return image


def _mark_rate_orbits(ax, bmap, index: int) -> list:
    """Marks the orbits of rate ``index`` of the batch (none without
    attractors); returns the lines drawn."""
    before = set(ax.lines)
    if bmap.attractors is not None:
        mark_orbits(ax, bmap.at(index), size=4.5)
    return [line for line in ax.lines if line not in before]


def _map_legend(bmap) -> tuple[list, list[str]]:
    """The basin maps' legend: each minimum (and the orbits around it),
    chaos, not converged or moving, diverged; the orbit points' markers."""
    styles = outcome_styles(bmap)
    handles, names = [], []
    for label in legend_outcomes(bmap):
        if label is None:
            handles.append(minor_patch())
            names.append(minor_name(bmap))
            continue
        edge = "k" if label == -1 else "none"
        handles.append(plt.Rectangle((0, 0), 1, 1, fc=styles[label][0], ec=edge, lw=0.6))
        names.append(outcome_name(bmap, label))
    if bmap.attractors is not None and len(bmap.attractors):
        handles.append(plt.Line2D([], [], ls="", marker="o", mfc="0.85", mec="k", ms=5))
        names.append("orbit points (in the colour of the minimum they surround)")
        if "chaotic" in bmap.attractors.names:
            handles.append(
                plt.Line2D([], [], ls="", marker=".", color="#f2f2f2", mec="k", mew=0.4, ms=6)
            )
            names.append("points of the chaotic runs (a sample)")
    return handles, names


def map_panel(cont, indices=None) -> Figure:
    """The basin maps at a few rates (default: six spread over the grid),
    in the same colours, minima marked."""
    bmap = cont.bmap
    indices = panel_indices(len(cont.lrs)) if indices is None else list(indices)
    grids = bmap.label_grid()
    cols = min(3, len(indices))
    rows = math.ceil(len(indices) / cols)
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(3.4 * cols + 2.6, 3.4 * rows + 0.6),
        layout="constrained",
        squeeze=False,
    )
    minima = list(bmap.minima)
    for ax, i in zip(axes.flat, indices, strict=False):
        _draw_map(ax, bmap, grids[i], i)
        _mark_critical(ax, minima)
        ax.set_title(f"lr = {cont.lrs[i]:.3g}: {_share_words(cont, i)}", fontsize=9)
        ax.set_xlabel("x", fontsize=9)
        ax.set_ylabel("y", fontsize=9)
        ax.tick_params(labelsize=9)
    for ax in list(axes.flat)[len(indices) :]:
        ax.axis("off")
    fig.legend(*_map_legend(bmap), loc="outside right upper", fontsize=8)
    fig.suptitle(f"Basin maps of gradient descent on {bmap.surface.name} at growing rates")
    return fig


def _share_words(cont, i: int) -> str:
    """The share of starts reaching the global minimum at rate ``i``, and,
    with attractors, the share on the orbits around it."""
    bmap = cont.bmap
    glob = sum(float(bmap.fractions[str(g)].fraction[i]) for g in bmap.global_minima)
    words = f"{100 * glob:.0f}% to the global min"
    table = bmap.attractors
    if table is not None:
        around = [
            name
            for name, m in zip(table.names, table.minimum, strict=True)
            if m in bmap.global_minima
        ]
        orbit = sum(float(bmap.fractions[name].fraction[i]) for name in around)
        if orbit > 0:
            words += f", {100 * orbit:.0f}% on its orbits"
    return words


def fractal_measures(cont) -> Figure:
    """The box-counting dimension of the boundaries and the boundary basin
    entropy against the rate, with Daza et al.'s log 2 threshold. Where the
    uncertainty exponent was measured, its dimension with its standard
    error (± 1 s.e., the counts' sampling error) where the sample resolves
    one (:attr:`gdjax.fractal.Uncertainty.resolved`), and a legend entry naming the
    rates where it does not. A continuation whose maps have no boundary at
    any rate says so in both panels."""
    fr = cont.fractal
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for ax in (a1, a2):  # the axis first: autoscaling over hundreds of decades overflows
        _rate_axis(ax, cont.lrs, pad=0.03)
        ax.set_autoscalex_on(False)
    dims = np.asarray(fr.box_dimension, np.float64)
    a1.plot(cont.lrs, dims, "o-", ms=3, color="C0", label="box counting (map pixels)")
    a1.axhline(1.0, color="0.5", ls=":", lw=1)
    a1.text(0.01, 1.0, " smooth curve (1)", va="bottom", fontsize=8, color="0.4",
            transform=a1.get_yaxis_transform())  # fmt: skip
    unc = sorted(cont.uncertainty.items())
    shown = [(i, u) for i, u in unc if u.resolved]
    if shown:
        a1.errorbar(
            [cont.lrs[i] for i, _ in shown],
            [2 - u.alpha for _, u in shown],
            yerr=[u.alpha_se if np.isfinite(u.alpha_se) else 0.0 for _, u in shown],
            fmt="D",
            ms=6,
            mfc="none",
            capsize=3,
            color="C1",
            label="uncertainty dimension ± 1 s.e. (re-run descents)",
        )
    missing = [cont.lrs[i] for i, u in unc if not u.resolved]
    if missing:  # a legend entry: placed where it hides no point
        a1.plot(
            [],
            [],
            "D",
            ms=6,
            mfc="none",
            mec="0.6",
            label="uncertainty dimension not resolved at lr "
            + ", ".join(f"{lr:.3g}" for lr in missing)
            + "\n(the report's table says why)",
        )
    if not np.isfinite(dims).any():
        _centre_note(
            a1,
            "no boundary at any rate:\nevery map has one outcome",
            fontsize=10,
            color="0.3",
            bbox=None,
        )
        a1.set_ylim(0.9, 2.1)
    a1.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.15))  # below: hides no point
    a1.set_xlabel("learning rate")
    a1.set_ylabel("dimension of the boundaries")
    a1.set_title("Dimension of the basin boundaries", fontsize=10)
    a2.plot(cont.lrs, fr.boundary_entropy, "o-", ms=3, color="C3", label="boundary entropy Sbb")
    a2.plot(cont.lrs, fr.basin_entropy, "s-", ms=3, color="C2", label="basin entropy Sb")
    a2.axhline(math.log(2), color="k", ls="--", lw=1, label="log 2 (Sbb above: fractal)")
    a2.set_xlabel("learning rate")
    a2.set_ylabel("entropy (nats)")
    a2.set_title(f"Basin entropies (Daza et al. 2016), boxes of {cont.box} px", fontsize=10)
    a2.legend(fontsize=8)
    return fig


def uncertainty_fits(cont) -> Figure:
    """The uncertainty exponent's fits at each rate where it was measured
    (:attr:`Continuation.uncertainty`; :func:`gdjax.plot.fractal.uncertainty_fits`)."""
    return _uncertainty_fits(
        [(f"lr {cont.lrs[i]:.3g}", u) for i, u in sorted(cont.uncertainty.items())]
    )


def animation(cont, *, size: float = 4.2, dpi: int = 80, seconds: float = 8.0) -> bytes:
    """An animated GIF of the basin map as the rate grows (one frame per
    rate, about ``seconds`` long in all), with axes, the rate and the share
    reaching the global minimum in each frame's title, and map_panel's
    legend; returns its bytes.

    The layout is fixed once, for the widest title, and what stays (legend,
    axes, ticks) is drawn once: each frame redraws only the map, the
    orbits, the minima, the frame and the title over a copy of the rest."""
    from PIL import Image

    bmap = cont.bmap
    grids = bmap.label_grid()
    titles = [
        f"{bmap.surface.name}, gradient descent, lr = {lr:.4g}:\n{_share_words(cont, i)}"
        for i, lr in enumerate(cont.lrs)
    ]
    handles, names = _map_legend(bmap)
    # a legend with the attractors is longer and wider: room for it beside the map
    wide = bmap.attractors is not None
    width = size + (4.4 if wide else 2.6)
    # the attractors' shades need more than 64 colours to stay apart
    colours = 128 if wide else 64
    fig, ax = plt.subplots(figsize=(width, size + 0.4), dpi=dpi, layout="constrained")
    fig.legend(handles, names, loc="outside right upper", fontsize=8 if wide else 9)
    frames = []
    try:
        image = _draw_map(ax, bmap, grids[0])  # the orbits come with each frame
        _mark_critical(ax, list(bmap.minima))
        minima = list(ax.lines)
        title = ax.set_title("", fontsize=10)
        ax.set_xlabel("x", fontsize=10)
        ax.set_ylabel("y", fontsize=10)
        ax.tick_params(labelsize=10)  # 11 px at 80 dpi
        renderer = fig.canvas.get_renderer()

        def title_width(text):
            title.set_text(text)
            return title.get_window_extent(renderer).width

        title.set_text(max(titles, key=title_width))
        fig.canvas.draw()  # the layout, for the widest title
        fig.set_layout_engine("none")
        moving = [image, *minima, title, *ax.spines.values()]
        for artist in moving:
            artist.set_animated(True)
        fig.canvas.draw()  # all that stays
        still = fig.canvas.copy_from_bbox(fig.bbox)
        for i, text in enumerate(titles):
            fig.canvas.restore_region(still)
            image.set_data(label_pixels(bmap, grids[i]))
            orbits = _mark_rate_orbits(ax, bmap, i)
            title.set_text(text)
            # in the order a full draw takes: map, frame, title, minima, orbits
            for artist in [image, *ax.spines.values(), title, *minima, *orbits]:
                ax.draw_artist(artist)
            rgba = np.asarray(fig.canvas.buffer_rgba())
            frames.append(Image.fromarray(rgba[..., :3]).quantize(colors=colours, dither=0))
            for line in orbits:
                line.remove()
    finally:
        plt.close(fig)
    out = io.BytesIO()
    per_frame = max(40, int(1000 * seconds / max(len(frames), 1)))
    frames[0].save(
        out,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=[per_frame] * (len(frames) - 1) + [1500],
        loop=0,
    )
    return out.getvalue()
