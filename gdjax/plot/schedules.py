"""Figures of learning-rate schedules: the rate of each update, with its
optax twin and MXNet's convention (:mod:`gdjax.schedules`)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

__all__ = ["schedule_curve", "schedule_grid"]


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
