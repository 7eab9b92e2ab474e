"""Figures of LeNet training runs (:class:`gdjax.train.RunResult`): the
curves of each model, the models side by side, and a callback that redraws
them after every epoch."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, MaxNLocator

from gdjax import runs
from gdjax import schedules as S
from gdjax._format import short_number
from gdjax.plot._style import _title, png_bytes, run_colors

__all__ = ["live", "model_titles", "policy_comparison", "schedule_words", "training_curves"]


def schedule_words(config) -> str:
    """A model's schedule (and its optimizer, when not plain SGD) in words for
    a title: ``constant:base_lr=0.3`` reads "constant, base lr 0.3";
    ``multi_factor:...,milestones=15/30`` reads "multi factor, base lr 0.5,
    milestones 15/30, factor 0.5"."""
    schedule = config.schedule
    if isinstance(schedule, S.Schedule):
        parts = [schedule.name.replace("_", " ")]
        for key, value in schedule.args:
            if isinstance(value, tuple | list):
                value = "/".join(short_number(v) for v in value)
            else:
                value = short_number(value)
            parts.append(f"{key.replace('_', ' ')} {value}")
        words = ", ".join(parts)
    else:
        words = config.schedule_name  # an optax callable: optax:NAME
    if config.optimizer != "sgd" or config.settings:
        settings = "".join(f", {k} {short_number(v)}" for k, v in config.settings)
        words = f"{config.optimizer}{settings}; {words}"
    return words


def model_titles(result) -> list[str]:
    """Each model's title in words (:func:`schedule_words`), with its seed
    when another model has the same words."""
    words = [schedule_words(c) for c in result.configs]
    return [
        f"{w}, seed {c.seed}" if words.count(w) > 1 else w
        for w, c in zip(words, result.configs, strict=True)
    ]


def _by_epoch(points, key) -> tuple[np.ndarray, np.ndarray]:
    """Within-epoch points as one line broken at each epoch's end: a running
    average restarts with every epoch, so a segment never joins two epochs
    (a point at x in (e - 1, e] belongs to epoch e)."""
    xs = np.asarray([p["epoch"] for p in points], dtype=np.float64)
    ys = np.asarray([p[key] for p in points], dtype=np.float64)
    epoch = np.ceil(xs - 1e-9)
    breaks = np.flatnonzero(np.diff(epoch) != 0) + 1
    return np.insert(xs, breaks, np.nan), np.insert(ys, breaks, np.nan)


def _curve_axes(ax_loss, ax_acc, result, m: int, title: str | None = None) -> None:
    """One model: train loss on ``ax_loss``; train and test accuracy on
    ``ax_acc``. The within-epoch points (every ``log_every`` minibatches)
    when the run has them, else the per-epoch points only."""
    curve, epochs = result.curves[m], result.epochs[m]
    xs = [p["epoch"] for p in (curve or epochs)]
    for ax, key, color, name in (
        (ax_loss, "train_loss", "C0", "train loss"),
        (ax_acc, "train_acc", "C1", "train accuracy"),
    ):
        ends = ([e["epoch"] for e in epochs], [e[key] for e in epochs])
        if curve:  # running averages over the epoch so far, one segment per epoch
            ax.plot(*_by_epoch(curve, key), color=color, label=f"{name}, running mean in epoch")
            if epochs:
                ax.plot(*ends, ls="", marker="o", ms=4, color=color, label=f"{name}, epoch mean")
        elif epochs:  # fewer than log_every minibatches an epoch: the epoch averages
            ax.plot(*ends, color=color, marker="o", ms=3, label=f"{name} (epoch average)")
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
    _title(ax_loss, title or model_titles(result)[m], fontsize=10)


def training_curves(result, *, titles: Sequence[str] | None = None) -> Figure:
    """The chapter's plot for each model: train loss (top) and train and test
    accuracy (bottom) against epochs, the x axis from the first point. Train
    points come every ``log_every`` minibatches (averaged over the epoch so
    far: the line breaks where each epoch starts its average again, and a dot
    marks each epoch's mean) when an epoch has that many, else once per
    epoch; test accuracy every epoch. One column per model, three columns at
    most, each titled ``titles[m]`` or its schedule in words
    (:func:`model_titles`)."""
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
