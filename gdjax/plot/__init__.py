"""Matplotlib figures of gdjax results.

Numeric code never plots, and neither do the lessons; these functions take
the arrays and records gdjax returns (Trajectory, Sweep, Surface, BasinMap,
RunResult, a schedule's rate per update) and return matplotlib Figures.
Nothing here calls ``plt.show``; save with ``fig.savefig`` or let a report
embed them. Non-finite values never reach these functions
from gdjax (diverged runs are frozen and flagged), and diverged runs are drawn
distinctly. Figures are sized to read at about 1000 px wide (a report's
110 dpi), use constrained layout and wrap long titles, and every function
draws any legitimate outcome (nothing converged, everything diverged, no
minimum found) without raising.
"""

from __future__ import annotations

import math
import os
import sys
import textwrap
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import matplotlib


def _in_ipython() -> bool:
    ipython = sys.modules.get("IPython")
    return ipython is not None and ipython.get_ipython() is not None


# files, not windows, outside IPython; in a notebook its own (inline) backend stays
if not _in_ipython():
    matplotlib.use("Agg", force=False)
import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.markers import MarkerStyle  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    FixedLocator,
    FuncFormatter,
    MaxNLocator,
    NullFormatter,
)
from matplotlib.transforms import Affine2D  # noqa: E402

from gdjax._format import short_number as _num  # noqa: E402
from gdjax.descent import Sweep, Trajectory  # noqa: E402
from gdjax.surfaces import Surface  # noqa: E402

__all__ = [
    "arrival_by_rule",
    "continuation",
    "fractal",
    "high_dim",
    "optimizers",
    "sharpness",
    "trainability",
    "basin_map",
    "basin_scatter",
    "best_of_k_curve",
    "convergence_time_map",
    "curve_1d",
    "epochs_to_arrive",
    "error_grid",
    "landscape_2d",
    "learning_journey",
    "live",
    "loss_along_paths",
    "policy_comparison",
    "rules_comparison",
    "run_colors",
    "schedule_curve",
    "schedule_grid",
    "surface_grid",
    "training_curves",
]

# --------------------------------------------------------------------------
# Shared helpers: colours, words, titles.

# tab10 without its grey (grey means "diverged" in the basin figures), then ten
# more colours that stay apart from those (Trubetskoy's list of distinct colours)
_PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
    "#000075",
    "#808000",
    "#f032e6",
    "#469990",
    "#9a6324",
    "#42d4f4",
    "#800000",
    "#bfef45",
    "#4363d8",
    "#ffd8b1",
    "#aaffc3",
)


def run_colors(n: int) -> list[str]:
    """``n`` distinct colours, one per run or per minimum: a qualitative palette
    for up to 20, evenly spaced samples of ``turbo`` beyond."""
    if n <= len(_PALETTE):
        return list(_PALETTE[:n])
    cmap = matplotlib.colormaps["turbo"]
    return [mcolors.to_hex(cmap(v)) for v in np.linspace(0.03, 0.97, n)]


def _wrap(text: str, fig: Figure, fontsize: float = 12, share: float = 1.0) -> str:
    """Wraps ``text`` to fit ``share`` of the figure's width (about 0.55 em a character)."""
    chars = max(20, int(share * fig.get_figwidth() * 72 / (0.55 * fontsize)))
    return "\n".join(textwrap.wrap(text, chars, break_on_hyphens=False)) or text


def _title(ax, text: str, fontsize: float = 12, share: float | None = None) -> None:
    fig = ax.figure
    if share is None:  # the axes' share of the figure's width
        share = max(0.3, ax.get_position().width)
    ax.set_title(_wrap(text, fig, fontsize, share), fontsize=fontsize)


def _fig_ax(ax, figsize=(6.5, 4.5)):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        return fig, ax
    return ax.figure, ax


def surface_grid(surface: Surface, resolution: int = 300, domain=None) -> tuple[np.ndarray, ...]:
    """Evaluates a 2D surface on a regular grid over its domain (or ``domain``): (X, Y, Z)."""
    if surface.dim != 2:
        raise ValueError(f"surface_grid needs a 2D surface, {surface.name!r} is {surface.dim}D")
    (x0, x1), (y0, y1) = surface.domain if domain is None else domain
    xs = np.linspace(x0, x1, resolution, dtype=np.float32)
    ys = np.linspace(y0, y1, resolution, dtype=np.float32)
    X, Y = np.meshgrid(xs, ys)
    pts = jnp.stack([X.ravel(), Y.ravel()], axis=-1)
    Z = np.asarray(jax.jit(jax.vmap(surface.fn))(pts)).reshape(X.shape)
    return X, Y, Z


# --------------------------------------------------------------------------
# 1D lessons.


def curve_1d(surface: Surface, traj: Trajectory | None = None, ax=None) -> Figure:
    """A 1D surface over its domain, with the iterates of a trajectory on it."""
    fig, ax = _fig_ax(ax)
    lo, hi = surface.domain[0]
    if traj is not None:
        p = np.asarray(traj.params)
        lo, hi = min(lo, p.min()), max(hi, p.max())
    xs = np.linspace(lo, hi, 400, dtype=np.float32)
    ax.plot(xs, np.asarray(jax.vmap(surface.fn)(jnp.asarray(xs))), color="0.3", label="f(x)")
    if traj is not None:
        p, loss = np.asarray(traj.params), np.asarray(traj.loss)
        ax.plot(p, loss, "o-", ms=3, lw=0.8, color="C3", label="iterates")
        ax.plot(p[0], loss[0], "s", color="C2", ms=7, label="start")
        ax.plot(p[-1], loss[-1], "*", color="k", ms=11, label="end")
    for m in surface.minima:
        ax.axvline(m.location[0], color="C0", ls=":", lw=1)
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    _title(ax, f"{surface.name}: {surface.formula}", share=0.9)
    ax.legend()
    return fig


def _escapes(values: np.ndarray, ref, diverged: np.ndarray) -> np.ndarray:
    """Runs that leave any sensible range: flagged diverged, or ending up more
    than 10x farther from ``ref`` (the start without one) than they started."""
    v0 = values[:, :1]
    if ref is None:
        dev, scale = np.abs(values - v0), np.maximum(np.abs(v0), 1.0)
    else:
        dev = np.abs(values - ref)
        scale = np.maximum(np.abs(v0 - ref), 1e-6 * max(1.0, abs(float(ref))))
    return diverged | np.any(dev > 10 * scale, axis=1)


def _bounded_limits(values: np.ndarray, escaped: np.ndarray, ref) -> tuple[float, float]:
    """A y-range set by the runs that stay bounded (padded by 8%)."""
    kept = values[~escaped] if np.any(~escaped) else values[:, :1]
    pts = [kept.min(), kept.max()] + ([] if ref is None else [float(ref)])
    lo, hi = float(min(pts)), float(max(pts))
    span = hi - lo
    if not span > 0:
        span = max(1.0, abs(lo))
    return lo - 0.08 * span, hi + 0.08 * span


def _draw_escaping(ax, xs, ys, lo, hi, color, label, note, diverged_step, placed):
    """Draws a run until it leaves [lo, hi], then marks the point it leaves
    (a triangle on the edge) and says why; ``placed`` counts the notes
    already on each edge, so they stack instead of covering each other."""
    outside = np.flatnonzero((ys < lo) | (ys > hi))
    what = "diverged" if diverged_step >= 0 else "grows without bound"
    text = what + (f" ({note})" if note else "")
    if outside.size == 0 or outside[0] == 0:
        if outside.size:  # starts outside the range: nothing to draw but the note
            j, xe, ye = 0, xs[0], (hi if ys[0] > hi else lo)
        else:  # frozen inside the range (gdjax keeps a diverged run's last finite point)
            j = int(diverged_step) if diverged_step >= 0 else len(ys) - 1
            j = min(j, len(ys) - 1)
            ax.plot(xs[: j + 1], ys[: j + 1], color=color, label=label)
            ax.plot(xs[j], ys[j], "X", color=color, mec="k", ms=8)
            ax.annotate(
                f"{what} at {xs[j]:g}" + (f" ({note})" if note else ""),
                (xs[j], ys[j]),
                xytext=(6, 6),
                textcoords="offset points",
                fontsize=8,
                color=color,
            )
            return
        ax.plot([], [], color=color, label=label)
    else:
        j = int(outside[0])
        edge = hi if ys[j] > hi else lo
        t = (edge - ys[j - 1]) / (ys[j] - ys[j - 1])
        xe, ye = xs[j - 1] + t * (xs[j] - xs[j - 1]), edge
        ax.plot(np.append(xs[:j], xe), np.append(ys[:j], ye), color=color, label=label)
    up = ye == hi
    ax.plot(xe, ye, "^" if up else "v", color=color, mec="k", ms=9, clip_on=False, zorder=5)
    right = xe > np.mean([xs[0], xs[-1]])
    slot = placed.get(up, 0)
    placed[up] = slot + 1
    ax.annotate(
        text,
        (xe, ye),
        xytext=(-8 if right else 8, -14 - 16 * slot if up else 8 + 16 * slot),
        textcoords="offset points",
        ha="right" if right else "left",
        va="top" if up else "bottom",
        fontsize=8,
        color=color,
        bbox={"boxstyle": "round,pad=0.2", "fc": "w", "ec": color, "alpha": 0.9},
    )


def learning_journey(
    trajs: Trajectory,
    labels: Sequence[str],
    *,
    target: float | None = None,
    notes: Sequence[str | None] | None = None,
) -> Figure:
    """Lesson A's "learning journey": x vs epoch and f'(x) vs epoch.

    The y-ranges are set by the runs that stay bounded; a run that diverges
    (or grows without bound) is drawn until it leaves that range, where a
    triangle on the edge and a note say so.

    Args:
        trajs: a Trajectory of a scalar parameter, with a leading run axis
            (one line per run).
        labels: one label per run.
        target: a horizontal line on the x panel (the minimum).
        notes: per run, extra words for the x panel's note where it leaves
            the range (e.g. ``"|x| -> 1e70 in float64"``), or None.
    """
    params = np.atleast_2d(np.asarray(trajs.params, dtype=np.float64))
    grads = np.atleast_2d(np.asarray(trajs.grads, dtype=np.float64))
    diverged_step = np.atleast_1d(np.asarray(trajs.diverged_step))
    diverged = diverged_step >= 0
    notes = list(notes) if notes is not None else [None] * len(labels)
    colors = run_colors(len(labels))
    fig, (ax_x, ax_g) = plt.subplots(1, 2, figsize=(9.5, 4.2), layout="constrained")
    epochs = np.arange(params.shape[1])
    panels = [(ax_x, params, target, "x", notes), (ax_g, grads, 0.0, "f'(x)", [None] * len(labels))]
    for ax, values, ref, name, panel_notes in panels:
        escaped = _escapes(values, ref, diverged)
        lo, hi = _bounded_limits(values, escaped, ref)
        placed: dict = {}
        for i, label in enumerate(labels):
            lab = label + (f" (diverged at epoch {diverged_step[i]})" if diverged[i] else "")
            if escaped[i]:
                _draw_escaping(
                    ax,
                    epochs,
                    values[i],
                    lo,
                    hi,
                    colors[i],
                    lab,
                    panel_notes[i],
                    diverged_step[i],
                    placed,
                )
            else:
                ax.plot(epochs, values[i], color=colors[i], label=lab)
        ax.set_ylim(lo, hi)
        span = max(epochs[-1], 1)
        ax.set_xlim(-0.015 * span, span)  # a run that leaves at once stays visible
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
    if target is not None:
        ax_x.axhline(target, color="k", ls=":", lw=1, label=f"minimum x = {_num(target)}")
    ax_g.axhline(0.0, color="k", ls=":", lw=1)
    ax_x.legend(fontsize=8)
    ax_x.set_title("parameter vs epoch")
    ax_g.set_title("derivative vs epoch (0 at the minimum)")
    return fig


def _luminance(rgba) -> float:
    """Relative luminance (WCAG) of a colour, 0 (black) to 1 (white)."""
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _text_color(rgba) -> str:
    """Black on light cells, white on dark ones (the higher contrast ratio)."""
    lum = _luminance(rgba)
    return "k" if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else "w"


def _log_norm(values: np.ndarray) -> mcolors.LogNorm:
    """A LogNorm over the finite positive values, valid when there are none or one."""
    ok = values[np.isfinite(values) & (values > 0)]
    if ok.size == 0:
        return mcolors.LogNorm(1e-12, 1.0)
    lo, hi = float(ok.min()), float(ok.max())
    if not hi > lo:
        lo, hi = lo / 10, hi * 10
    return mcolors.LogNorm(lo, hi)


def error_grid(sw: Sweep, *, rule: int = 0, start: int = 0, title: str | None = None) -> Figure:
    """Heatmap of ``|x - target|`` (or the gradient norm) over lr x epochs.

    Diverged cells are grey ("div"), converged ones in bold; each cell's text
    is black or white, whichever reads on its colour.
    """
    if sw.target is not None:
        err = np.abs(np.asarray(sw.value[rule, start]) - np.asarray(sw.target))
        err = err.reshape(err.shape[0], err.shape[1], -1).max(-1)
        what = "|x - x*|"
    else:
        err = np.asarray(sw.grad_norm[rule, start])
        what = "|grad f|"
    diverged = np.asarray(sw.diverged[rule, start])
    converged = np.asarray(sw.converged[rule, start])
    err = np.where(diverged, np.nan, np.maximum(err.astype(np.float64), 1e-12))
    n_lr, n_ep = err.shape
    width = min(10.0, max(6.0, 2.2 + 0.8 * n_ep))
    height = min(9.0, max(3.6, 1.6 + 0.4 * n_lr))
    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.85")
    norm = _log_norm(err)
    im = ax.imshow(err, cmap=cmap, norm=norm, aspect="auto", origin="lower")
    size = 10 if n_ep <= 4 and n_lr <= 8 else 7 if n_ep <= 10 else 6
    for (i, j), e in np.ndenumerate(err):
        rgba = cmap.get_bad() if diverged[i, j] else cmap(norm(e))
        ax.text(
            j,
            i,
            "div" if diverged[i, j] else f"{e:.0e}",
            ha="center",
            va="center",
            fontsize=size,
            weight="bold" if converged[i, j] else "normal",
            color=_text_color(rgba),
        )
    ax.set_xticks(range(n_ep), [str(e) for e in sw.epochs])
    ax.set_yticks(range(n_lr), [f"{v:g}" for v in np.asarray(sw.lr)])
    ax.set_xlabel("epochs")
    ax.set_ylabel("learning rate")
    text = title or f"{what} after n epochs (bold: < tol = {_num(sw.tol)}; grey: diverged)"
    _title(ax, text, fontsize=11, share=0.8)
    fig.colorbar(im, ax=ax, label=what)
    return fig


def _arrival_words(sw: Sweep) -> str:
    """What arriving means in a sweep: ``|x - x*| < tol``, or ``|grad f| < tol``."""
    what = "|grad f|" if sw.target is None else f"|x - {_num(sw.target)}|"
    return f"{what} < {float(sw.tol):g}"


def _lr_list(values) -> str:
    return ", ".join(f"{v:g}" for v in values)


def epochs_to_arrive(sw: Sweep, *, rule: int = 0, start: int = 0) -> Figure:
    """Epochs to arrive within tol against the learning rate (log-log), with
    the ``epochs proportional to 1/lr`` reference line (lesson A).

    Learning rates that arrive at once (0 epochs) or never (not within tol
    after the sweep's last epoch count) are listed in a note, not dropped.

    Args:
        sw: a :class:`gdjax.Sweep` over a 1-D axis of learning rates (its
            ``converged_step`` is the epoch of arrival).
        rule: which rule of the sweep (axis 0).
        start: which start of the sweep (axis 1).
    """
    lrs = np.asarray(sw.lr, dtype=np.float64)
    k = np.asarray(sw.converged_step[rule, start], dtype=float)
    last = max(sw.epochs)
    ok = k > 0
    fig, ax = plt.subplots(figsize=(6.5, 4.2), layout="constrained")
    if ok.any():
        ax.loglog(lrs[ok], k[ok], "o-", label="gdjax")
        ref = k[ok][0] * lrs[ok][0] / lrs[ok]
        ax.loglog(lrs[ok], ref, "k:", label="epochs proportional to 1/lr")
    else:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lrs.min() / 2, lrs.max() * 2)
        ax.set_ylim(1, last)
    notes = []
    if np.any(k == 0):
        notes.append(f"within tol from the start (0 epochs): lr {_lr_list(lrs[k == 0])}")
    if np.any(k < 0):
        notes.append(f"not within tol after {last} epochs: lr {_lr_list(lrs[k < 0])}")
    if notes:
        where = {"x": 0.02, "y": 0.02, "ha": "left", "va": "bottom"}
        if not ok.any():  # nothing to draw on log axes: the notes are the figure
            where = {"x": 0.5, "y": 0.5, "ha": "center", "va": "center"}
        ax.text(
            s="\n".join(textwrap.fill(n, 55) for n in notes),
            transform=ax.transAxes,
            fontsize=8 if ok.any() else 10,
            **where,
            bbox={"fc": "w", "ec": "0.6", "alpha": 0.9},
        )
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"epochs to {_arrival_words(sw)}")
    if ok.any():
        ax.legend(loc="upper right")
    return fig


# --------------------------------------------------------------------------
# 2D paths.


def _exit_point(path: np.ndarray, box) -> tuple[np.ndarray, int, float] | None:
    """Where a path that ends outside ``box`` last crossed its edge: (point,
    step of the first point outside, direction in degrees); None if it ends
    inside (or never was inside)."""
    (x0, x1), (y0, y1) = box
    inside = (path[:, 0] >= x0) & (path[:, 0] <= x1) & (path[:, 1] >= y0) & (path[:, 1] <= y1)
    if inside[-1] or not inside.any():
        return None
    k = int(np.flatnonzero(inside)[-1])
    a, b = path[k].astype(np.float64), path[k + 1].astype(np.float64)
    d = b - a
    t = 1.0
    for axis, (lo, hi) in enumerate(box):
        if d[axis] > 0 and b[axis] > hi:
            t = min(t, (hi - a[axis]) / d[axis])
        elif d[axis] < 0 and b[axis] < lo:
            t = min(t, (lo - a[axis]) / d[axis])
    return a + t * d, k + 1, math.degrees(math.atan2(d[1], d[0]))


def _arrow_marker(angle: float) -> MarkerStyle:
    """A triangle pointing along ``angle`` (degrees)."""
    return MarkerStyle(">", transform=Affine2D().rotate_deg(angle))


def landscape_2d(
    surface: Surface,
    trajs: Trajectory | None = None,
    *,
    labels: Sequence[str] | None = None,
    colors: Sequence | None = None,
    ax=None,
    resolution: int = 300,
    mark_minima: bool = True,
) -> Figure:
    """Heatmap and contours of a 2D surface, with descent paths overlaid.

    A path that leaves the frame gets an arrow at the edge where it leaves,
    and its legend entry says so.

    Args:
        surface: a 2D Surface.
        trajs: Trajectories with a leading run axis (params (runs, steps+1, 2)).
        labels: a label per run (e.g. which minimum it reached).
        colors: a colour per run (e.g. :func:`run_colors`, to match another
            figure): then every run has its own legend entry ``"i: label"``.
            Without it, runs with the same label share a colour and one entry.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(9.5, 6), layout="constrained")
        own = True
    else:
        fig, own = ax.figure, False
    X, Y, Z = surface_grid(surface, resolution)
    im = ax.pcolormesh(X, Y, Z, cmap="magma", shading="auto")
    ax.contour(X, Y, Z, levels=20, colors="w", linewidths=0.4, alpha=0.5)
    fig.colorbar(im, ax=ax, label="f(x, y)", shrink=0.85)
    box = surface.domain
    handles: list = []
    names: list[str] = []
    left_any = False
    if trajs is not None:
        paths = np.asarray(trajs.params)
        diverged = np.atleast_1d(np.asarray(trajs.diverged))
        n = len(paths)
        if colors is not None:
            cols = list(colors)
        elif labels is not None:
            groups = list(dict.fromkeys(labels))
            palette = run_colors(len(groups))
            cols = [palette[groups.index(lab)] for lab in labels]
        else:
            cols = run_colors(n)
        seen: set = set()
        for i, path in enumerate(paths):
            color = cols[i]
            (line,) = ax.plot(
                path[:, 0], path[:, 1], "--" if diverged[i] else "-", color=color, lw=1.4
            )
            ax.plot(path[0, 0], path[0, 1], "o", color=color, ms=5, mec="w", mew=0.6)
            exit_ = _exit_point(path, box)
            if exit_ is None:
                ax.plot(path[-1, 0], path[-1, 1], "X", color=color, ms=8, mec="k", mew=0.5)
            else:
                left_any = True
                point, step, angle = exit_
                ax.plot(
                    *point,
                    marker=_arrow_marker(angle),
                    ls="",
                    color=color,
                    ms=10,
                    mec="k",
                    mew=0.6,
                    clip_on=False,
                    zorder=5,
                )
            if colors is not None:
                name = f"{i}: {labels[i]}" if labels is not None else f"run {i}"
                if exit_ is not None:
                    name += f" (left the frame at step {exit_[1]})"
                handles.append(line)
                names.append(name)
            elif labels is not None and labels[i] not in seen:
                seen.add(labels[i])
                handles.append(line)
                names.append(labels[i])
    if mark_minima:
        for m in surface.minima:
            ax.plot(*m.location, "*", ms=16 if m.is_global else 11, color="cyan", mec="k")
    (x0, x1), (y0, y1) = box
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_aspect("equal")
    ax.set_title(f"Descent paths on {surface.name}", fontsize=11)
    if trajs is not None:
        key = [
            (plt.Line2D([], [], ls="", marker="o", color="0.4", mec="w"), "start"),
            (plt.Line2D([], [], ls="", marker="X", color="0.4", mec="k"), "end"),
        ]
        if left_any:
            key.append(
                (
                    plt.Line2D([], [], ls="", marker=">", color="0.4", mec="k"),
                    "left the frame here (end outside)",
                )
            )
        if mark_minima and surface.minima:
            key.append(
                (plt.Line2D([], [], ls="", marker="*", color="cyan", mec="k", ms=11), "minimum")
            )
        if np.any(np.atleast_1d(np.asarray(trajs.diverged))):
            key.append((plt.Line2D([], [], ls="--", color="0.4"), "diverged (dashed)"))
        handles += [h for h, _ in key]
        names += [t for _, t in key]
        kwargs = {"fontsize": 8, "title": "run: reached" if colors is not None else "reached"}
        if own:
            fig.legend(handles, names, loc="outside right upper", **kwargs)
        else:
            ax.legend(handles, names, loc="upper left", **kwargs)
    return fig


def loss_along_paths(
    trajs: Trajectory,
    reached: Sequence[str],
    colors: Sequence | None = None,
    *,
    per_run: bool = True,
) -> Figure:
    """f along each path of a batch of trajectories (lesson B), against the
    step on a symlog axis.

    Args:
        trajs: Trajectories with a leading run axis.
        reached: per run, what it reached (e.g. "global min (0.23, -1.63)").
        colors: a colour per run, e.g. those of :func:`landscape_2d`'s paths
            (default :func:`run_colors`).
        per_run: one legend entry per run (``"i: reached"``); else one per
            outcome, for runs too many to tell apart.
    """
    colors = list(colors) if colors is not None else run_colors(len(reached))
    loss = np.asarray(trajs.loss)
    fig, ax = plt.subplots(figsize=(9.5, 4.5), layout="constrained")
    seen = set()
    for i, what in enumerate(reached):
        if per_run:
            label = f"{i}: {what}"
        else:
            label = None if what in seen else what
            seen.add(what)
        ax.plot(loss[i], color=colors[i], label=label, lw=1.4 if per_run else 0.8)
    ax.set_xlabel("step (linear to 1, then log)")
    ax.set_ylabel("f(x, y)")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(0, max(loss.shape[1] - 1, 1))
    ax.set_title("f(x, y) along each path (colours as in the paths figure)", fontsize=11)
    fig.legend(
        loc="outside right upper", fontsize=7, title="run: reached" if per_run else "reached"
    )
    return fig


def rules_comparison(
    trajs: Trajectory, labels: Sequence[str], *, target: float, tol: float
) -> Figure:
    """Lesson D's side-by-side: x vs epoch, |x - target| (log) and lr vs epoch."""
    params = np.asarray(trajs.params)
    lrs = np.asarray(trajs.lr)
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.8), layout="constrained")
    epochs = np.arange(params.shape[1])
    for i, label in enumerate(labels):
        axes[0].plot(epochs, params[i], label=label)
        axes[1].semilogy(epochs, np.maximum(np.abs(params[i] - target), 1e-12), label=label)
        axes[2].plot(epochs[:-1], lrs[i], label=label)
    axes[0].axhline(target, color="k", ls=":", lw=1)
    axes[1].axhline(tol, color="k", ls=":", lw=1, label=f"tol = {_num(tol)}")
    for ax, name in zip(axes, ["x", "|x - x*|", "learning rate"], strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
    axes[1].legend(fontsize=8)
    axes[0].set_title("parameter")
    axes[1].set_title("distance to the minimum")
    axes[2].set_title("learning rate used")
    return fig


def arrival_by_rule(
    sw: Sweep, *, start: int = 0, reference: tuple[float, str] | None = None
) -> Figure:
    """Epochs to arrive against lr_0 (the gradient rule: its scale), one line
    per rule (lesson D).

    Runs that never arrive are not dropped: they sit in a band above the
    N-epoch line (an open triangle: not within tol after N epochs; a cross:
    diverged), and each rule's legend entry counts them.

    Args:
        sw: a :class:`gdjax.Sweep` over rules and a 1-D axis of learning
            rates; N is its last epoch count.
        start: which start of the sweep (axis 1).
        reference: a learning rate to mark with a dotted vertical line, and
            its legend entry (e.g. ``(1 / 6, "lr = 1/f'' = 1/6")``).
    """
    lrs = np.asarray(sw.lr, dtype=np.float64)
    n_epochs = sw.epochs[-1]
    rules = sw.rules
    arrive = np.asarray(sw.converged_step[:, start], dtype=float)
    div = np.asarray(sw.diverged[:, start, :, -1], dtype=bool)
    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    band = [n_epochs * (1.08 + 0.07 * r) for r in range(len(rules))]
    for r, rule in enumerate(rules):
        k = arrive[r]
        color = f"C{r}"
        arrived = k >= 0
        (line,) = ax.plot(lrs, np.where(arrived, k, np.nan), "o-", color=color)
        never = ~arrived & ~div[r]
        diverged = ~arrived & div[r]
        ax.plot(lrs[never], np.full(never.sum(), band[r]), "^", mfc="none", mec=color, ms=7)
        ax.plot(lrs[diverged], np.full(diverged.sum(), band[r]), "x", color=color, ms=7, mew=1.5)
        parts = []
        if never.any():
            parts.append(f"{never.sum()} not within N")
        if diverged.any():
            parts.append(f"{diverged.sum()} diverged")
        if not arrived.any():
            note = f" (none arrived: {', '.join(parts)})"
        elif parts:
            note = f" ({' and '.join(parts)} of {len(lrs)})"
        else:
            note = ""
        line.set_label(rule + note)
    ax.axhline(n_epochs, color="0.3", lw=0.8)
    ax.axhspan(n_epochs, band[-1] + 0.06 * n_epochs, color="0.93", zorder=0)
    ax.text(
        0.01,
        n_epochs * 1.01,
        f"above the line: did not arrive within N = {n_epochs} epochs",
        transform=ax.get_yaxis_transform(),
        fontsize=8,
        va="bottom",
        color="0.3",
    )
    ax.set_ylim(0, band[-1] + 0.06 * n_epochs)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(lrs.min() / 1.3, lrs.max() * 1.3)
    ax.set_xlabel("lr_0 (scale for the gradient rule)")
    ax.set_ylabel(f"epochs to {_arrival_words(sw)}")
    if reference is not None:
        ax.axvline(reference[0], color="k", ls=":", lw=1, label=reference[1])
    ax.plot([], [], "^", mfc="none", mec="0.3", label="not within tol after N epochs")
    ax.plot([], [], "x", color="0.3", mew=1.5, label="diverged")
    fig.legend(loc="outside lower center", fontsize=8, ncol=2)
    return fig


# --------------------------------------------------------------------------
# Basins of attraction (gdjax.basins.BasinMap).

_DIVERGED_COLOR = "#8c8c8c"  # never a minimum's colour: the palette has no grey
_NOT_CONVERGED_COLOR = "#ffffff"
_CRITICAL_MARKERS = {
    "min": ("*", "yellow", 15),
    "saddle": ("X", "white", 9),
    "max": ("^", "red", 9),
}


def _basin_colors(n_min: int) -> list:
    """Colour of label l at index l + 2: diverged, not converged, then each minimum."""
    return [_DIVERGED_COLOR, _NOT_CONVERGED_COLOR, *run_colors(n_min)]


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


def _basin_legend(bmap, colors, critical) -> tuple[list, list[str]]:
    def pct(key):
        return f"{100 * bmap.fractions[key][0]:.1f}%" if key in bmap.fractions else "?"

    handles, names = [], []
    glob = set(getattr(bmap, "global_minima", ()))
    for i, m in enumerate(bmap.minima):
        handles.append(plt.Rectangle((0, 0), 1, 1, fc=colors[i + 2]))
        loc = ", ".join(f"{v:.2f}" for v in m.location)
        tag = " (global)" if i in glob else ""
        names.append(f"min {i}{tag}: ({loc}), f = {m.value:.3g}, {pct(str(i))}")
    if not bmap.minima:
        handles.append(plt.Rectangle((0, 0), 1, 1, fc="none", ec="none"))
        names.append("no minimum reached")
    handles += [
        plt.Rectangle((0, 0), 1, 1, fc=colors[1], ec="k", lw=0.6),
        plt.Rectangle((0, 0), 1, 1, fc=colors[0]),
    ]
    names += [f"not converged, {pct('not_converged')}", f"diverged, {pct('diverged')}"]
    kinds = [c.kind for c in critical]
    for kind, (m, col, size) in _CRITICAL_MARKERS.items():
        if kind in kinds:
            handles.append(plt.Line2D([], [], ls="", marker=m, color=col, mec="k", ms=size))
            names.append({"min": "minimum", "max": "maximum"}.get(kind, kind))
    return handles, names


def _mark_critical(ax, critical) -> None:
    for c in critical:
        m, col, size = _CRITICAL_MARKERS.get(c.kind, ("o", "grey", 6))
        ax.plot(*c.location[:2], m, color=col, mec="k", ms=size, zorder=4)


def _basin_axes(fig, ax, bmap, critical, title: str) -> None:
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
    handles, names = _basin_legend(bmap, _basin_colors(len(bmap.minima)), critical)
    ax.legend(handles, names, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)
    _title(ax, title, fontsize=11, share=0.6)


def basin_map(
    bmap, critical=(), trajs: Trajectory | None = None, *, title: str | None = None
) -> Figure:
    """A grid BasinMap's labels coloured, minima, saddles and maxima marked,
    and a few trajectories overlaid. The title says the rule in words (or is
    ``title``)."""
    labels = bmap.label_grid()
    n_min = len(bmap.minima)
    (x0, x1), (y0, y1) = bmap.domain
    colors = _basin_colors(n_min)
    fig, ax = plt.subplots(figsize=(9.5, 6.2), layout="constrained")
    ax.imshow(
        labels + 2,
        origin="lower",
        extent=(x0, x1, y0, y1),
        cmap=mcolors.ListedColormap(colors),
        vmin=-0.5,
        vmax=n_min + 1.5,
        interpolation="nearest",
    )
    if trajs is not None:
        for path in np.asarray(trajs.params):
            ax.plot(path[:, 0], path[:, 1], "-", color="k", lw=1)
            ax.plot(path[0, 0], path[0, 1], "o", color="k", ms=3)
    _basin_axes(fig, ax, bmap, critical, title or _basin_title(bmap, "Basins of attraction"))
    return fig


def basin_scatter(bmap, critical=(), max_points: int = 20000) -> Figure:
    """Random starts (a BasinMap with ``grid is None``, or any map) as points
    coloured by the basin they reach, with basin_map's colours and legend:
    white (grey edge) not converged, grey diverged; minima and critical
    points marked. Draws an even random subsample of ``max_points`` starts
    (fixed seed, so the figure is reproducible)."""
    starts = np.asarray(bmap.starts)
    labels = np.asarray(bmap.labels)
    n = len(labels)
    if n > max_points:
        keep = np.sort(np.random.default_rng(0).choice(n, max_points, replace=False))
        starts, labels = starts[keep], labels[keep]
    colors = _basin_colors(len(bmap.minima))
    fig, ax = plt.subplots(figsize=(9.5, 6.2), layout="constrained")
    size = float(np.clip(16000 / max(len(labels), 1), 1.5, 30.0))
    edge = np.where(labels == -1, 1.0, 0.0)  # white points need an edge to be seen
    ax.scatter(
        starts[:, 0],
        starts[:, 1],
        c=[colors[lab + 2] for lab in labels],
        s=size,
        edgecolors="0.45",
        linewidths=0.3 * edge * min(1.0, math.sqrt(size / 4)),
        rasterized=len(labels) > 2000,
    )
    shown = f" ({len(labels):,} shown)" if len(labels) < n else ""
    title = _basin_title(bmap, "Basins of attraction") + shown
    _basin_axes(fig, ax, bmap, critical, title)
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
        f"reached no minimum ({100 * np.mean(labels == -1):.1f}%)",
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
        ax.text(
            0.5,
            0.5,
            f"no start reached a minimum ({n:,} starts)",
            transform=ax.transAxes,
            ha="center",
            va="center",
            bbox={"fc": "w", "ec": "0.5"},
        )
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
        ax.text(
            0.5,
            0.5,
            "no start reached a global minimum (p = 0):\nrestarts cannot help",
            transform=ax.transAxes,
            ha="center",
            va="center",
            bbox={"fc": "w", "ec": "0.5"},
        )
    ax.legend(loc="lower right", fontsize=9)
    return fig


# --------------------------------------------------------------------------
# Learning-rate schedules.


def _draw_schedule(ax, name: str, curve) -> None:
    """One schedule: the learning rate of each update, drawn as a step (it
    holds for the whole update), its optax twin and MXNet's convention."""
    k = np.arange(len(curve.gdjax))
    steps = {"drawstyle": "steps-post"}
    ax.plot(k, curve.gdjax, "-", lw=2.5, alpha=0.6, label="gdjax (hand-written)", **steps)
    if curve.optax is not None:
        ax.plot(k, curve.optax, "k--", lw=1, label="optax twin", **steps)
    if curve.mxnet is not None:
        ax.plot(k, curve.mxnet, ":", color="C3", lw=1.2, label="MXNet convention", **steps)
    ax.set_title(name.replace("_", " "), fontsize=10)
    ax.set_xlabel("update")
    ax.set_ylabel("learning rate")
    ax.grid(alpha=0.3)


def schedule_curve(name: str, curve) -> Figure:
    """One schedule's learning rate per update, with its optax twin and
    MXNet's convention overlaid where they exist.

    Args:
        name: the schedule's name (the title; underscores read as spaces).
        curve: a record with ``gdjax`` (the rate of each update), ``optax``
            and ``mxnet`` (the same from optax's twin and under MXNet's
            counting, or None), e.g. a
            :class:`gdjax.lessons.schedule_plots.ScheduleCurve`.
    """
    fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
    _draw_schedule(ax, name, curve)
    ax.legend(fontsize=8)
    return fig


def schedule_grid(curves) -> Figure:
    """Every schedule of ``curves`` (a mapping name -> curve, as
    :func:`schedule_curve` takes) in a grid three panels wide (reads at
    ~1000 px), the legend in the spare panel."""
    cols = 3
    rows = -(-(len(curves) + 1) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(9.5, 2.9 * rows), squeeze=False, layout="constrained"
    )
    flat = axes.ravel()
    for ax, (name, curve) in zip(flat, curves.items(), strict=False):
        _draw_schedule(ax, name, curve)
    handles = {}
    for ax in flat[: len(curves)]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    for ax in flat[len(curves) :]:
        ax.axis("off")
    flat[len(curves)].legend(list(handles.values()), list(handles), loc="center", fontsize=9)
    return fig


# --------------------------------------------------------------------------
# LeNet training (gdjax.train.RunResult).


def _curve_axes(ax_loss, ax_acc, result, m: int, title: str | None = None) -> None:
    """One model: train loss on ``ax_loss``; train and test accuracy on
    ``ax_acc``. The within-epoch points (every ``log_every`` minibatches)
    when the run has them, else the per-epoch points only."""
    curve, epochs = result.curves[m], result.epochs[m]
    # the within-epoch points, or (fewer than log_every minibatches an epoch) the epoch averages
    points, style, note = (
        (curve, {}, "") if curve else (epochs, {"marker": "o", "ms": 3}, " (epoch average)")
    )
    xs = [p["epoch"] for p in points]
    for ax, key, color, name in (
        (ax_loss, "train_loss", "C0", "train loss"),
        (ax_acc, "train_acc", "C1", "train accuracy"),
    ):
        if points:
            ax.plot(xs, [p[key] for p in points], color=color, label=name + note, **style)
    if epochs:
        ax_acc.plot(
            [e["epoch"] for e in epochs],
            [e["test_acc"] for e in epochs],
            color="C2",
            ls=":",
            marker=".",
            ms=7,
            label="test accuracy",
        )
    first = min([*xs, *(e["epoch"] for e in epochs)], default=1)
    last = max(result.configs[m].epochs, first)
    if last - first < 1:  # one epoch: a tick at it, half an epoch either side
        lo, hi, ticks = first - 0.5, last + 0.5, sorted({round(first), round(last)})
    else:  # from the first point, with room for the end markers
        pad = 0.02 * (last - first)
        lo, hi, ticks = first - pad, last + pad, None
    for ax in (ax_loss, ax_acc):
        ax.set_xlim(lo, hi)
        ax.xaxis.set_major_locator(
            FixedLocator(ticks) if ticks else MaxNLocator(integer=True, nbins=6)
        )
        ax.grid(alpha=0.3)
    ax_loss.set_ylabel("train loss")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_xlabel("epoch")
    ax_loss.tick_params(labelbottom=False)
    _title(ax_loss, title or result.configs[m].schedule_name, fontsize=10)


def training_curves(result, *, titles: Sequence[str] | None = None) -> Figure:
    """The chapter's plot for each model: train loss (top) and train and test
    accuracy (bottom) against epochs, the x axis from the first point. Train
    points come every ``log_every`` minibatches (averaged over the epoch so
    far) when an epoch has that many, else once per epoch; test accuracy
    every epoch. One column per model, three columns at most."""
    k = len(result.configs)
    cols = min(k, 3)
    rows = -(-k // cols)
    fig, axes = plt.subplots(
        2 * rows,
        cols,
        figsize=(min(9.5, max(6.0, 1.0 + 2.9 * cols)), 0.6 + 3.6 * rows),
        squeeze=False,
        layout="constrained",
    )
    for m in range(k):
        r, c = divmod(m, cols)
        ax_loss, ax_acc = axes[2 * r, c], axes[2 * r + 1, c]
        ax_loss.sharex(ax_acc)
        _curve_axes(ax_loss, ax_acc, result, m, titles[m] if titles else None)
    # one scale for every model, so the panels compare: the union of each
    # panel's own limits (sharing first would clip to the first model's)
    for first in (0, 1):
        shown = [axes[2 * r + first, c] for r, c in (divmod(m, cols) for m in range(k))]
        lows, highs = zip(*(ax.get_ylim() for ax in shown), strict=True)
        for ax in shown[1:]:
            ax.sharey(shown[0])
        shown[0].set_ylim(min(lows), max(highs))
    for m in range(k, rows * cols):
        r, c = divmod(m, cols)
        axes[2 * r, c].set_visible(False)
        axes[2 * r + 1, c].set_visible(False)
    axes[0, 0].legend(fontsize=8, loc="upper right")
    axes[1, 0].legend(fontsize=8, loc="best")
    return fig


def policy_comparison(
    result, *, names: Sequence[str] | None = None, groups: Sequence[str] | None = None
) -> Figure:
    """Test accuracy, train loss and learning rate per epoch, every model on one axis each.

    ``groups`` (e.g. the policy of each model when several seeds ran) gives one
    colour and one legend entry per group.
    """
    names = list(names or [c.schedule_name for c in result.configs])
    groups = list(groups or names)
    palette = run_colors(len(dict.fromkeys(groups)))
    colours = {g: palette[i] for i, g in enumerate(dict.fromkeys(groups))}
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.8), layout="constrained")
    seen = set()
    for m, group in enumerate(groups):
        ep = result.epochs[m]
        xs = [e["epoch"] for e in ep]
        style = {"color": colours[group], "alpha": 0.85 if len(groups) <= 10 else 0.5}
        label = None if group in seen else group
        seen.add(group)
        axes[0].plot(xs, [e["test_acc"] for e in ep], marker=".", label=label, **style)
        axes[1].plot(xs, [e["train_loss"] for e in ep], marker=".", **style)
        axes[2].step(xs, [e["lr"] for e in ep], where="post", **style)
    for ax, title, ylabel in zip(
        axes,
        ("test accuracy", "train loss", "learning rate\n(at the epoch's first update)"),
        ("accuracy", "loss", "learning rate"),
        strict=True,
    ):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
        ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", fontsize=8, ncol=min(len(colours), 4))
    return fig


def live(figure_fn=training_curves, *, path: str | os.PathLike | None = None):
    """An ``on_epoch`` callback for :func:`gdjax.train.train` that redraws
    ``figure_fn(result)`` after every epoch: in place in a Jupyter notebook,
    and into ``path`` (a PNG) when given. The PNG is rendered in memory and
    written atomically (:func:`gdjax.runs.write_bytes`), so a kill while
    plotting leaves the previous file whole, never a partial one.

    Example:
        >>> from gdjax import plot, train
        >>> cfg = train.TrainConfig(epochs=3)
        >>> result = train.train(cfg, on_epoch=plot.live())  # doctest: +SKIP
    """
    from gdjax import runs
    from gdjax.report import png_bytes

    handle = None

    def callback(result) -> None:
        nonlocal handle
        fig = figure_fn(result)
        try:
            if path is not None:
                runs.write_bytes(path, png_bytes(fig))
            if _in_notebook():
                from IPython.display import display

                if handle is None:
                    handle = display(fig, display_id=True)
                else:
                    handle.update(fig)
        finally:
            plt.close(fig)

    return callback


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


# the studies' figures, one submodule each (they use the helpers above)
from gdjax.plot import continuation as continuation  # noqa: E402
from gdjax.plot import fractal as fractal  # noqa: E402
from gdjax.plot import high_dim as high_dim  # noqa: E402
from gdjax.plot import optimizers as optimizers  # noqa: E402
from gdjax.plot import sharpness as sharpness  # noqa: E402
from gdjax.plot import trainability as trainability  # noqa: E402
