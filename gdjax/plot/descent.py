"""Figures of descent runs in one and two dimensions (lessons A, B and D):
trajectories (:class:`gdjax.Trajectory`) and sweeps over learning rates
(:class:`gdjax.Sweep`) on a surface (:class:`gdjax.Surface`)."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import matplotlib
import matplotlib.colors as mcolors
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.markers import MarkerStyle
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter
from matplotlib.transforms import Affine2D

from gdjax._format import short_number as _num
from gdjax.descent import Sweep, Trajectory
from gdjax.plot._style import _fig_ax, _log_norm, _text_color, _title, run_colors, surface_grid
from gdjax.surfaces import Surface

__all__ = [
    "arrival_by_rule",
    "curve_1d",
    "epochs_to_arrive",
    "error_grid",
    "landscape_2d",
    "learning_journey",
    "loss_along_paths",
    "rules_comparison",
]

# --------------------------------------------------------------------------
# 1D lessons.

_ZERO_COLOR = "white"  # a distance of exactly 0: no colour of viridis, nor the diverged grey


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


def error_grid(sw: Sweep, *, rule: int = 0, start: int = 0, title: str | None = None) -> Figure:
    """Heatmap of ``|x - target|`` (or the gradient norm) over lr x epochs.

    Diverged cells are grey ("div"), converged ones in bold; a cell exactly
    at the target (0 in the run's dtype, below any log scale) reads "0" on
    white; each cell's text is black or white, whichever reads on its colour.
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
    err = np.where(diverged, np.nan, err.astype(np.float64))
    zero = err == 0  # exactly at the target (in the run's dtype): no point on a log scale
    n_lr, n_ep = err.shape
    width = min(10.0, max(6.0, 2.2 + 0.8 * n_ep))
    height = min(9.0, max(3.6, 1.6 + 0.4 * n_lr))
    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.85")
    norm = _log_norm(err)
    im = ax.imshow(np.where(zero, np.nan, err), cmap=cmap, norm=norm, aspect="auto", origin="lower")
    if zero.any():  # a colour of their own, on top of the scale's image
        ax.imshow(
            np.ma.masked_array(np.zeros_like(err), ~zero),
            cmap=mcolors.ListedColormap([_ZERO_COLOR]),
            aspect="auto",
            origin="lower",
        )
    size = 10 if n_ep <= 4 and n_lr <= 8 else 7 if n_ep <= 10 else 6
    for (i, j), e in np.ndenumerate(err):
        if diverged[i, j]:
            rgba, text = cmap.get_bad(), "div"
        elif zero[i, j]:
            rgba, text = mcolors.to_rgba(_ZERO_COLOR), "0"
        else:
            rgba, text = cmap(norm(e)), f"{e:.0e}"
        ax.text(
            j,
            i,
            text,
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
    key = f"bold: < tol = {_num(sw.tol)}; grey: diverged"
    if zero.any():
        key += "; white: exactly 0"
    text = title or f"{what} after n epochs ({key})"
    _title(ax, text, fontsize=11, share=0.8)
    if np.any(err > 0):  # a scale only for what was measured on it
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
    """Lesson D's side-by-side: x vs epoch, |x - target| (log) and lr vs epoch.

    A distance of exactly 0 (x = target in the run's dtype) has no place on
    the log axis: its epochs are marked on the axis bottom (a triangle in the
    run's colour), and the legend says they are exactly 0.
    """
    params = np.asarray(trajs.params)
    lrs = np.asarray(trajs.lr)
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.8), layout="constrained")
    epochs = np.arange(params.shape[1])
    dist = np.abs(params.astype(np.float64) - target)
    for i, label in enumerate(labels):
        axes[0].plot(epochs, params[i], label=label)
        zero = dist[i] == 0
        (line,) = axes[1].semilogy(epochs, np.where(zero, np.nan, dist[i]), label=label)
        if zero.any():
            axes[1].plot(
                epochs[zero],
                np.zeros(zero.sum()),
                "v",
                color=line.get_color(),
                ms=4,
                mec="k",
                mew=0.4,
                transform=axes[1].get_xaxis_transform(),
                clip_on=False,
                zorder=5,
            )
        axes[2].plot(epochs[:-1], lrs[i], label=label)
    axes[0].axhline(target, color="k", ls=":", lw=1)
    axes[1].axhline(tol, color="k", ls=":", lw=1, label=f"tol = {_num(tol)}")
    if np.any(dist == 0):
        axes[1].plot(
            [], [], "v", color="0.6", mec="k", mew=0.4, label="|x - x*| exactly 0 (axis bottom)"
        )
    for ax, name in zip(axes, ["x", "|x - x*|", "learning rate"], strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
    # below the panels: inside, it would cover the lines or the marks on the axis bottom
    fig.legend(*axes[1].get_legend_handles_labels(), loc="outside lower center", ncol=3, fontsize=8)
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
