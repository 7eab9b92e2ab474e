"""Figures of sharpness against the stability limit (``gdjax lenet
--sharpness``; :mod:`gdjax.sharpness`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from gdjax import sharpness as S
from gdjax._format import short_number
from gdjax.plot._style import _title, run_colors

__all__ = ["sharpness_curves"]


def sharpness_curves(
    result, *, names: Sequence[str] | None = None, groups: Sequence[str] | None = None
) -> Figure:
    """Every model's sharpness per epoch (solid) against its stability limit
    (dashed: 2/lr, (2 + 2 momentum)/lr with momentum), one panel per group
    (e.g. per policy, its seeds together), on a log axis; and a last panel of
    sharpness / limit for all models, with the edge of stability at 1.

    Args:
        result: a :class:`gdjax.train.RunResult` with the sharpness tracked.
        names: one name per model (default: the schedules).
        groups: one group per model (default: the names).
    """
    names = list(names or [c.schedule_name for c in result.configs])
    groups = list(groups or names)
    order = list(dict.fromkeys(groups))
    palette = run_colors(len(order))
    colours = {g: palette[i] for i, g in enumerate(order)}
    panels = len(order) + 1
    cols = min(panels, 3)
    rows = math.ceil(panels / cols)
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(3.6 * cols + 0.6, 3.1 * rows + 0.4),
        layout="constrained",
        squeeze=False,
    )
    metrics = result.metrics
    ratio_ax = axes.flat[len(order)]
    labelled = set()
    for m, (config, group) in enumerate(zip(result.configs, groups, strict=True)):
        ax = axes.flat[order.index(group)]
        epoch = metrics.epoch[m]
        sharp = metrics.sharpness[m]
        lr = metrics.lr[m]
        colour = colours[group]
        ax.plot(epoch, sharp, marker=".", color=colour, label="sharpness" if m == 0 else None)
        settings = dict(config.settings)
        limit = S.stability_limit(config.optimizer, lr, settings)
        if limit is not None:
            ax.step(epoch, limit, where="mid", color=colour, ls="--", alpha=0.8)
            ratio = S.edge_ratio(sharp, config.optimizer, lr, settings)
            ratio_ax.plot(
                epoch,
                ratio,
                marker=".",
                color=colour,
                alpha=0.85,
                label=None if group in labelled else group,
            )
            labelled.add(group)
        _title(ax, group if limit is not None else f"{group} (adaptive: no 2/lr limit)", 11)
    for ax in [*axes.flat[: len(order)], ratio_ax]:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: short_number(v)))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3, which="both")
    for ax in axes.flat[: len(order)]:
        ax.set_ylabel("top Hessian eigenvalue")
    beta = {dict(c.settings).get("momentum", 0.0) for c in result.configs}
    limit_name = "2/lr" if beta == {0.0} else "(2 + 2 momentum)/lr"
    axes.flat[0].plot([], [], color="0.3", ls="--", label=f"stability limit {limit_name}")
    axes.flat[0].legend(fontsize=8, loc="best")
    ratio_ax.axhline(1.0, color="black", lw=1)
    ratio_ax.axhspan(
        *S.EDGE, color="0.85", zorder=0, label=f"edge ({S.EDGE[0]:g} to {S.EDGE[1]:g})"
    )
    ratio_ax.set_ylabel("sharpness / stability limit")
    _title(ratio_ax, "sharpness over its limit (1 = the edge of stability)", 11)
    spare = list(axes.flat[panels:])
    for ax in spare:
        ax.axis("off")
    if spare:  # the legend in the empty panel beside the ratios
        spare[0].legend(*ratio_ax.get_legend_handles_labels(), fontsize=8, loc="center left")
    else:
        ratio_ax.legend(fontsize=7, loc="best")
    return fig
