"""Figures of gradient descent beyond the stability limit
(:mod:`gdjax.attractors`): bifurcation diagrams with their Lyapunov
exponents, the shrinking of period-doubling intervals, maps of which
attractor each start reaches, and sharpness against 2 / lr."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from gdjax import attractors as A
from gdjax.plot._style import _DIVERGED_COLOR, _centre_note, _corner_note, _title, run_colors

__all__ = [
    "DOUBLING_GID",
    "LIMIT_GID",
    "LYAPUNOV_FLOOR",
    "MapPanel",
    "attractor_maps",
    "bifurcation_diagram",
    "doubling_intervals",
    "sharpness_edge",
]

DOUBLING_GID = "period-doubling"
"""The ``gid`` of the vertical lines that mark the doubling rates (one per
doubling in each panel of :func:`bifurcation_diagram`)."""
LIMIT_GID = "stability-limit"
"""The ``gid`` of the vertical lines at 2 / lambda_max."""

_LIMIT_COLOR = "#d62728"
_DOUBLING_COLOR = "#1f77b4"
_MOVING_COLOR = "#ff7f0e"
LYAPUNOV_FLOOR = -3.0
"""The Lyapunov panel's lowest value: exponents below it (near a superstable
cycle, where they fall to -inf) are drawn at it."""


def _spans(mask: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of each run of True in ``mask``."""
    idx = np.flatnonzero(mask)
    if not idx.size:
        return []
    breaks = np.flatnonzero(np.diff(idx) > 1)
    starts = np.concatenate([idx[:1], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks], idx[-1:]])
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def _label_doublings(ax, rates: Sequence[float], periods: Sequence[int]) -> None:
    """'2', '4', '8', ... above the axes at the doubling rates, leaving out a
    label that would touch the one before it."""
    fig = ax.figure
    fig.canvas.draw()
    last = -math.inf
    for lr, p in zip(rates, periods, strict=True):
        x = ax.transData.transform((lr, 0))[0]
        lo, hi = sorted(ax.get_xlim())
        if not lo <= lr <= hi or x - last < 16:
            continue
        ax.annotate(
            str(int(p)),
            xy=(lr, 1.0),
            xycoords=ax.get_xaxis_transform(),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
            color=_DOUBLING_COLOR,
        )
        last = x


def bifurcation_diagram(
    bif: A.Bifurcation,
    doublings: A.Doublings | None = None,
    *,
    origin: Sequence[float] | None = None,
    direction: Sequence[float] | None = None,
    ylabel: str | None = None,
    title: str | None = None,
    ylim: tuple[float, float] | None = None,
) -> Figure:
    """The orbit points against the rate (small dots: the last points of
    the run at each rate), and below it, on the same rate axis, the largest
    Lyapunov exponent with 0 marked. Both panels mark plain GD's stability
    limit 2 / lambda_max (red dashed, gid :data:`LIMIT_GID`), the doubling
    rates (dotted blue, gid :data:`DOUBLING_GID`, labelled with the new
    period above the top panel) and the rates where the run diverged (grey).

    A point of ``d`` coordinates is drawn as ``(point - origin) . direction``
    (default: the first coordinate); ``ylabel`` says what that is. ``ylim``
    bounds the top panel (runs still escaping, far from every attractor,
    would squash it); a note counts the rates with points beyond it.
    """
    lrs = np.asarray(bif.lrs, np.float64)
    pts = np.asarray(bif.points, np.float64)  # (R, keep, d)
    d = pts.shape[-1]
    o = np.zeros(d) if origin is None else np.asarray(origin, np.float64)
    v = np.eye(d)[0] if direction is None else np.asarray(direction, np.float64)
    vals = (pts - o) @ v  # (R, keep)
    kind = np.asarray(bif.kind)
    diverged = kind == A.DIVERGED
    moving = kind == A.MOVING

    fig, (top, low) = plt.subplots(
        2, 1, sharex=True, figsize=(9.5, 7.2), height_ratios=[3, 1.4], layout="constrained"
    )
    keep = vals.shape[1]
    for mask, color in ((~diverged & ~moving, "k"), (moving, _MOVING_COLOR)):
        if mask.any():
            xs = np.repeat(lrs[mask], keep)
            top.scatter(xs, vals[mask].ravel(), s=0.6, c=color, lw=0, alpha=0.6, rasterized=True)
    step = (lrs[-1] - lrs[0]) / max(1, lrs.size - 1)
    for i, j in _spans(diverged):
        for ax in (top, low):
            ax.axvspan(
                lrs[i] - step / 2, lrs[j] + step / 2, color=_DIVERGED_COLOR, alpha=0.35, lw=0
            )
    top.set_xlim(lrs.min() - step, lrs.max() + step)
    if ylim is not None:
        lo, hi = float(ylim[0]), float(ylim[1])
        pad = 0.04 * (hi - lo or 1.0)
        top.set_ylim(lo - pad, hi + pad)
        out = np.any((vals < lo - pad) | (vals > hi + pad), axis=1) & ~diverged
        if out.any():
            _corner_note(
                top,
                f"{int(out.sum())} rate(s) with points beyond this panel (runs still escaping)",
                color="0.3",
            )
    if not (~diverged).any():
        _centre_note(top, "every run diverged: no orbit to draw")

    lyap = np.asarray(bif.lyapunov, np.float64)
    ok = np.isfinite(lyap)
    shown = np.where(ok, np.maximum(lyap, LYAPUNOV_FLOOR), np.nan)
    shown = np.where(np.isneginf(lyap), LYAPUNOV_FLOOR, shown)
    low.plot(lrs, shown, lw=0.7, color="k")
    low.axhline(0.0, color="k", lw=0.8, ls=":")
    fin = shown[np.isfinite(shown)]
    if fin.size:
        lo, hi = float(fin.min()), float(max(fin.max(), 0.05))
        pad = 0.08 * (hi - lo or 1.0)
        low.set_ylim(lo - pad, hi + pad)
    low.set_ylabel("Lyapunov exponent\n(nats per step)")
    low.set_xlabel("learning rate")
    low.text(0.005, 0.97, "> 0: chaos", transform=low.transAxes, va="top", fontsize=8, color="0.3")
    low.text(
        0.005, 0.03, "< 0: settles", transform=low.transAxes, va="bottom", fontsize=8, color="0.3"
    )

    handles = [
        Line2D([], [], ls="", marker="o", ms=3, color="k", label=f"orbit points (last {keep})")
    ]
    if moving.any():
        handles.append(
            Line2D([], [], ls="", marker="o", ms=3, color=_MOVING_COLOR, label="still moving")
        )
    limit = float(bif.stability_limit)
    if math.isfinite(limit):
        for ax in (top, low):
            ax.axvline(limit, color=_LIMIT_COLOR, ls="--", lw=1.2, gid=LIMIT_GID)
        handles.append(Line2D([], [], color=_LIMIT_COLOR, ls="--", label=f"2/λ_max = {limit:.4g}"))
    if doublings is not None and doublings.lr.size:
        for lr in doublings.lr:
            for ax in (top, low):
                ax.axvline(lr, color=_DOUBLING_COLOR, ls=":", lw=0.9, gid=DOUBLING_GID)
        handles.append(
            Line2D(
                [],
                [],
                color=_DOUBLING_COLOR,
                ls=":",
                label=f"period doubles ({doublings.lr.size}; new period above)",
            )
        )
    if diverged.any():
        handles.append(Patch(color=_DIVERGED_COLOR, alpha=0.35, label="diverged"))
    top.legend(handles=handles, loc="upper left", fontsize=8, framealpha=0.9, markerscale=1.5)
    top.set_ylabel(ylabel or "x")
    if title:
        _title(top, title)
    if doublings is not None and doublings.lr.size:
        _label_doublings(top, doublings.lr.tolist(), doublings.period.tolist())
        if title:  # above the labels
            top.set_title(top.get_title(), pad=14)
    return fig


def doubling_intervals(
    doublings: A.Doublings,
    *,
    delta: float = 4.669201609102990,
    exact: Sequence[float] | None = None,
) -> Figure:
    """Left: the intervals ``r_k - r_(k-1)`` between successive doublings
    against k on a log scale, with ``C delta^-k`` through the last (dashed):
    a cascade at Feigenbaum's constant is a straight line of slope -log
    delta. Right: the ratios of successive intervals against k, with delta
    (dashed) and, when given, the ``exact`` ratios of the same cascade
    (hollow circles)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.3), layout="constrained")
    r = np.asarray(doublings.lr, np.float64)
    periods = np.asarray(doublings.period)
    if r.size < 2:
        _centre_note(left, "fewer than two doublings: no interval")
        _centre_note(right, "fewer than three doublings: no ratio")
        return fig
    gaps = np.diff(r)
    k = np.arange(2, r.size + 1)
    left.semilogy(k, gaps, "o-", color=_DOUBLING_COLOR, label="measured: r_k - r_(k-1)")
    ref = gaps[-1] * delta ** (k[-1] - k.astype(np.float64))
    left.semilogy(k, ref, "--", color="0.4", label=f"shrinking by δ = {delta:.4f} each time")
    left.set_xticks(k)
    left.set_xticklabels([f"{kk}\n(→{int(p)})" for kk, p in zip(k, periods[1:], strict=True)])
    left.set_xlabel("doubling k (new period)")
    left.set_ylabel("interval to the doubling before (rate)")
    left.legend(fontsize=8)
    _title(left, "The intervals between doublings shrink geometrically", fontsize=11)
    if r.size < 3:
        _centre_note(right, "fewer than three doublings: no ratio")
        return fig
    ratios = gaps[:-1] / gaps[1:]
    kr = np.arange(3, r.size + 1)
    right.plot(kr, ratios, "o-", color=_DOUBLING_COLOR, label="measured ratio")
    if exact is not None and len(exact):
        n = min(len(exact), ratios.size)
        right.plot(
            kr[:n], exact[:n], "o", mfc="none", mec="k", ms=9, label="exact ratio of this cascade"
        )
    right.axhline(delta, color="0.4", ls="--", label=f"δ = {delta:.4f}")
    for kk, v in zip(kr, ratios, strict=True):
        right.annotate(
            f"{v:.4f}", xy=(kk, v), xytext=(5, -11), textcoords="offset points", fontsize=8
        )
    right.set_xticks(kr)
    right.set_xlabel("k: (r_(k-1) - r_(k-2)) / (r_k - r_(k-1))")
    right.set_ylabel("ratio of successive intervals")
    lo = min(float(np.min(ratios)), delta)
    hi = max(float(np.max(ratios)), delta)
    pad = max(0.02, 0.15 * (hi - lo))
    right.set_ylim(lo - pad, hi + pad)
    right.legend(fontsize=8, loc="lower right")
    _title(right, "Their ratios tend to Feigenbaum's δ", fontsize=11)
    return fig


class MapPanel:
    """One map of :func:`attractor_maps`: the rate, an index per start into
    the categories (shape (n, n), row 0 at the box's bottom) and the
    attractors to mark, each ``(points (k, 2), cloud)``: a fixed point or
    cycle (crosses), or a chaotic attractor's points (``cloud``: dots)."""

    def __init__(self, lr: float, labels: np.ndarray, marks: Sequence[tuple[np.ndarray, bool]]):
        self.lr = float(lr)
        self.labels = np.asarray(labels)
        self.marks = [(np.asarray(m, np.float64).reshape(-1, 2), bool(c)) for m, c in marks]


def attractor_maps(
    panels: Sequence[MapPanel],
    names: Sequence[str],
    extent: tuple[float, float, float, float],
    *,
    colors: Sequence[str] | None = None,
    minima: Sequence[Sequence[float]] = (),
    limit: float | None = None,
) -> Figure:
    """One map per rate of which attractor each start of a grid reaches,
    coloured by category (``names``, one colour each, the same in every
    panel), each panel titled with its rate and the share of its largest
    category; black crosses mark each attractor's cycle points, small black
    dots the points of a chaotic one, white stars the minima."""
    n = len(panels)
    cols = list(colors) if colors is not None else run_colors(len(names))
    fig, axes = plt.subplots(
        1, n, figsize=(3.3 * n + 2.6, 3.9), layout="constrained", squeeze=False
    )
    cmap = ListedColormap(cols) if cols else ListedColormap(["w"])
    for ax, panel in zip(axes[0], panels, strict=True):
        ax.imshow(
            panel.labels,
            origin="lower",
            extent=extent,
            cmap=cmap,
            vmin=-0.5,
            vmax=len(cols) - 0.5,
            interpolation="nearest",
        )
        for m, cloud in panel.marks:
            if cloud:
                ax.plot(m[:, 0], m[:, 1], ".", ms=1.5, color="k")
            elif len(m):
                ax.plot(m[:, 0], m[:, 1], "x", ms=6, mew=1.5, color="k")
        for loc in minima:
            ax.plot(loc[0], loc[1], "*", ms=10, color="w", mec="k", mew=0.6)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        counts = np.bincount(panel.labels.ravel(), minlength=len(names))
        top = int(np.argmax(counts))
        where = "" if limit is None else f" ({panel.lr / limit:.2f} × 2/λ_max)"
        ax.set_title(
            f"lr = {panel.lr:g}{where}\n{100 * counts[top] / counts.sum():.0f}%: {names[top]}",
            fontsize=9,
        )
        ax.set_xlabel("x", fontsize=9)
        ax.tick_params(labelsize=8)
    axes[0][0].set_ylabel("y", fontsize=9)
    handles = [Patch(color=c, label=name) for c, name in zip(cols, names, strict=True)]
    handles.append(Line2D([], [], ls="", marker="x", color="k", label="cycle points"))
    handles.append(Line2D([], [], ls="", marker=".", color="k", label="chaotic attractor"))
    handles.append(Line2D([], [], ls="", marker="*", color="w", mec="k", ms=9, label="minima"))
    axes[0][-1].legend(
        handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8, frameon=False
    )
    return fig


def sharpness_edge(
    steps: np.ndarray,
    sharpness: np.ndarray,
    loss: np.ndarray,
    lrs: Sequence[float],
) -> Figure:
    """Sharpness (the top Hessian eigenvalue) against the step for each rate
    (solid), with its stability limit 2 / lr (dashed, same colour; a limit
    far above every curve is named in the legend only), and the training
    loss below on a log scale."""
    fig, (top, low) = plt.subplots(
        2, 1, sharex=True, figsize=(8.5, 6.2), height_ratios=[2, 1.2], layout="constrained"
    )
    colors = run_colors(len(lrs))
    finite = sharpness[np.isfinite(sharpness)]
    s_max = float(finite.max()) if finite.size else 1.0
    for i, lr in enumerate(lrs):
        c = colors[i]
        limit = 2.0 / lr
        shown = limit <= 1.6 * s_max
        top.plot(
            steps,
            sharpness[i],
            color=c,
            lw=1.3,
            label=f"lr = {lr:.4g}: limit 2/lr = {limit:.3g}"
            + ("" if shown else " (above the panel)"),
        )
        if shown:
            top.axhline(limit, color=c, ls="--", lw=1)
            top.annotate(
                f"2/lr = {limit:.3g}",
                xy=(1.0, limit),
                xycoords=("axes fraction", "data"),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
                color=c,
            )
        low.semilogy(steps, np.maximum(loss[i], 1e-12), color=c, lw=1)
    top.plot([], [], color="0.3", ls="--", label="dashed: each rate's limit 2/lr")
    top.set_ylabel("sharpness (top Hessian eigenvalue)")
    top.legend(fontsize=8, loc="lower right")
    _title(top, "Sharpness rises until it reaches 2/lr, then stays around it")
    low.set_ylabel("training loss")
    low.set_xlabel("step of full-batch gradient descent")
    return fig
