"""Matplotlib figures of gdjax results.

Numeric code never plots; these functions take the arrays and records it
returns (Trajectory, Sweep, Surface) and return matplotlib Figures. Nothing
here calls ``plt.show``; save with ``fig.savefig`` or let a report embed them.
Non-finite values never reach these functions from gdjax (diverged runs are
frozen and flagged), and diverged runs are drawn distinctly.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from gdjax.descent import Sweep, Trajectory  # noqa: E402
from gdjax.surfaces import Surface  # noqa: E402

__all__ = [
    "basin_map",
    "best_of_k_curve",
    "convergence_time_map",
    "curve_1d",
    "error_grid",
    "landscape_2d",
    "learning_journey",
    "live",
    "policy_comparison",
    "training_curves",
    "rules_comparison",
    "surface_grid",
]


def surface_grid(surface: Surface, resolution: int = 300) -> tuple[np.ndarray, ...]:
    """Evaluates a 2D surface on a regular grid over its domain: (X, Y, Z)."""
    if surface.dim != 2:
        raise ValueError(f"surface_grid needs a 2D surface, {surface.name!r} is {surface.dim}D")
    (x0, x1), (y0, y1) = surface.domain
    xs = np.linspace(x0, x1, resolution, dtype=np.float32)
    ys = np.linspace(y0, y1, resolution, dtype=np.float32)
    X, Y = np.meshgrid(xs, ys)
    pts = jnp.stack([X.ravel(), Y.ravel()], axis=-1)
    Z = np.asarray(jax.jit(jax.vmap(surface.fn))(pts)).reshape(X.shape)
    return X, Y, Z


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
    ax.set_title(f"{surface.name}: {surface.formula}")
    ax.legend()
    return fig


def learning_journey(trajs: Trajectory, labels: Sequence[str], *, target: float | None = None):
    """Lesson A's "learning journey": x vs epoch and f'(x) vs epoch.

    Args:
        trajs: a Trajectory of a scalar parameter, with a leading run axis
            (one line per run).
        labels: one label per run.
        target: a horizontal line on the x panel (the minimum).
    """
    params = np.atleast_2d(np.asarray(trajs.params))
    grads = np.atleast_2d(np.asarray(trajs.grads))
    diverged_step = np.atleast_1d(np.asarray(trajs.diverged_step))
    fig, (ax_x, ax_g) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    epochs = np.arange(params.shape[1])
    for i, label in enumerate(labels):
        lab = label + (f" (diverged at {diverged_step[i]})" if diverged_step[i] >= 0 else "")
        ax_x.plot(epochs, params[i], label=lab)
        ax_g.plot(epochs, grads[i], label=lab)
    if target is not None:
        ax_x.axhline(target, color="k", ls=":", lw=1, label=f"minimum x = {target:g}")
    for ax, name in [(ax_x, "x"), (ax_g, "f'(x)")]:
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        if np.max(np.abs(ax.get_ylim())) > 1e3:
            ax.set_yscale("symlog")
        ax.legend(fontsize=8)
    ax_x.set_title("parameter vs epoch")
    ax_g.set_title("derivative vs epoch (0 at the minimum)")
    return fig


def error_grid(sw: Sweep, *, rule: int = 0, start: int = 0, title: str | None = None) -> Figure:
    """Heatmap of ``|x - target|`` (or the gradient norm) over lr x epochs.

    Diverged cells are hatched grey, converged ones outlined.
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
    err = np.where(diverged, np.nan, np.maximum(err, 1e-12))
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(sw.epochs), 0.6 + 0.45 * len(sw.lr)))
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.85")
    im = ax.imshow(err, cmap=cmap, norm=mcolors.LogNorm(), aspect="auto", origin="lower")
    for (i, j), e in np.ndenumerate(err):
        text = "div" if diverged[i, j] else f"{e:.0e}"
        weight = "bold" if converged[i, j] else "normal"
        ax.text(j, i, text, ha="center", va="center", fontsize=7, weight=weight, color="w")
    ax.set_xticks(range(len(sw.epochs)), [str(e) for e in sw.epochs])
    ax.set_yticks(range(len(sw.lr)), [f"{v:g}" for v in np.asarray(sw.lr)])
    ax.set_xlabel("epochs")
    ax.set_ylabel("learning rate")
    ax.set_title(title or f"{what} after n epochs (bold: < tol = {sw.tol:g}; grey: diverged)")
    fig.colorbar(im, ax=ax, label=what)
    fig.tight_layout()
    return fig


def landscape_2d(
    surface: Surface,
    trajs: Trajectory | None = None,
    *,
    labels: Sequence[str] | None = None,
    ax=None,
    resolution: int = 300,
    mark_minima: bool = True,
) -> Figure:
    """Heatmap and contours of a 2D surface, with descent paths overlaid.

    Args:
        surface: a 2D Surface.
        trajs: Trajectories with a leading run axis (params (runs, steps+1, 2)).
        labels: a label per run (e.g. which minimum it reached); runs with
            the same label share a colour and one legend entry.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 6))
    else:
        fig = ax.figure
    X, Y, Z = surface_grid(surface, resolution)
    im = ax.pcolormesh(X, Y, Z, cmap="magma", shading="auto")
    ax.contour(X, Y, Z, levels=20, colors="w", linewidths=0.4, alpha=0.5)
    fig.colorbar(im, ax=ax, label="f(x, y)", shrink=0.85)
    if trajs is not None:
        paths = np.asarray(trajs.params)
        diverged = np.asarray(trajs.diverged)
        names = list(dict.fromkeys(labels)) if labels is not None else []
        for i, path in enumerate(paths):
            label = labels[i] if labels is not None else None
            color = f"C{names.index(label) % 10}" if label is not None else f"C{i % 10}"
            first = label is not None and labels.index(label) == i
            ax.plot(
                path[:, 0],
                path[:, 1],
                "--" if diverged[i] else "-",
                color=color,
                lw=1.3,
                label=label if first else None,
            )
            ax.plot(path[0, 0], path[0, 1], "o", color=color, ms=4.5, mec="w", mew=0.6)
            ax.plot(path[-1, 0], path[-1, 1], "X", color=color, ms=7, mec="k", mew=0.5)
    if mark_minima:
        for m in surface.minima:
            ax.plot(*m.location, "*", ms=16 if m.is_global else 11, color="cyan", mec="k")
    (x0, x1), (y0, y1) = surface.domain
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_aspect("equal")
    ax.set_title(f"{surface.name}: o start, X end, * minima", fontsize=11)
    if labels is not None:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.3, 1.0), title="reached")
    return fig


def rules_comparison(
    trajs: Trajectory, labels: Sequence[str], *, target: float, tol: float
) -> Figure:
    """Lesson D's side-by-side: x vs epoch, |x - target| (log) and lr vs epoch."""
    params = np.asarray(trajs.params)
    lrs = np.asarray(trajs.lr)
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), layout="constrained")
    epochs = np.arange(params.shape[1])
    for i, label in enumerate(labels):
        axes[0].plot(epochs, params[i], label=label)
        axes[1].semilogy(epochs, np.maximum(np.abs(params[i] - target), 1e-12), label=label)
        axes[2].plot(epochs[:-1], lrs[i], label=label)
    axes[0].axhline(target, color="k", ls=":", lw=1)
    axes[1].axhline(tol, color="k", ls=":", lw=1, label=f"tol = {tol:g}")
    for ax, name in zip(axes, ["x", "|x - x*|", "learning rate"], strict=True):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.legend(fontsize=8)
    axes[0].set_title("parameter")
    axes[1].set_title("distance to the minimum")
    axes[2].set_title("learning rate used")
    return fig


def _fig_ax(ax, figsize=(6.5, 4.5)):
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize, layout="constrained")
        return fig, ax
    return ax.figure, ax


def basin_map(bmap, critical=(), trajs: Trajectory | None = None) -> Figure:
    """A grid BasinMap's labels coloured, minima, saddles and maxima marked,
    and a few trajectories overlaid."""
    labels = bmap.label_grid()
    n_min = len(bmap.minima)
    (x0, x1), (y0, y1) = bmap.domain
    colors = ["#d9d9d9", "#ffffff"] + [matplotlib.colormaps["tab10"](i % 10) for i in range(n_min)]
    cmap = mcolors.ListedColormap(colors)
    fig, ax = plt.subplots(figsize=(9, 7))
    ax.imshow(
        labels + 2,
        origin="lower",
        extent=(x0, x1, y0, y1),
        cmap=cmap,
        vmin=-0.5,
        vmax=n_min + 1.5,
        interpolation="nearest",
    )
    X, Y, Z = surface_grid(bmap.surface, 200)
    ax.contour(X, Y, Z, levels=15, colors="k", linewidths=0.4, alpha=0.4)
    if trajs is not None:
        for path in np.asarray(trajs.params):
            ax.plot(path[:, 0], path[:, 1], "-", color="k", lw=1)
            ax.plot(path[0, 0], path[0, 1], "o", color="k", ms=3)
    markers = {"min": ("*", "yellow", 15), "saddle": ("X", "white", 9), "max": ("^", "red", 9)}
    for c in critical:
        m, col, size = markers.get(c.kind, ("o", "grey", 6))
        ax.plot(*c.location, m, color=col, mec="k", ms=size)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[i + 2]) for i in range(n_min)]
    names = [
        f"min {i}: ({m.location[0]:.2f}, {m.location[1]:.2f}) f = {m.value:.3g}, "
        f"{100 * bmap.fractions[str(i)][0]:.1f}%"
        for i, m in enumerate(bmap.minima)
    ]
    handles += [
        plt.Rectangle((0, 0), 1, 1, color=colors[1], ec="k"),
        plt.Rectangle((0, 0), 1, 1, color=colors[0]),
    ]
    names += [
        f"not converged, {100 * bmap.fractions['not_converged'][0]:.1f}%",
        f"diverged, {100 * bmap.fractions['diverged'][0]:.1f}%",
    ]
    for kind, (m, col, size) in markers.items():
        handles.append(plt.Line2D([], [], ls="", marker=m, color=col, mec="k", ms=size))
        names.append(kind)
    ax.legend(handles, names, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(
        f"Basins of attraction: {bmap.surface.name}, {bmap.config['rule']} "
        f"lr = {bmap.config['lr']}, {bmap.config['steps']} steps"
    )
    return fig


def convergence_time_map(bmap) -> Figure:
    """Steps to convergence per start (grid maps); grey: never converged."""
    steps = bmap.converged_step.reshape(bmap.grid).astype(float)
    steps = np.where(steps >= 0, np.maximum(steps, 1), np.nan)
    (x0, x1), (y0, y1) = bmap.domain
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.8")
    fig, ax = plt.subplots(figsize=(7.5, 6))
    im = ax.imshow(
        steps,
        origin="lower",
        extent=(x0, x1, y0, y1),
        cmap=cmap,
        norm=mcolors.LogNorm(),
        interpolation="nearest",
    )
    fig.colorbar(im, ax=ax, label="step of convergence (|grad| < tol from then on)")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title("Convergence time (grey: not converged)")
    return fig


def best_of_k_curve(ks, exact, simulated) -> Figure:
    """Lesson C: probability that the best of k restarts reaches the global minimum."""
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    ax.plot(ks, exact, "-", label="1 - (1 - p)^k from the basin fraction")
    ax.plot(ks, simulated, "o", label="simulated from the labels")
    ax.set_xscale("log")
    ax.set_xlabel("k random restarts")
    ax.set_ylabel("P(best of k reaches the global minimum)")
    ax.set_ylim(0, 1.02)
    ax.legend()
    return fig


# --------------------------------------------------------------------------
# LeNet training (gdjax.train.RunResult).


def _curve_axes(ax, result, m: int, title: str | None = None) -> None:
    curve, epochs = result.curves[m], result.epochs[m]
    if curve:
        xs = [p["epoch"] for p in curve]
        ax.plot(xs, [p["train_loss"] for p in curve], color="C0", label="train loss")
        ax.plot(xs, [p["train_acc"] for p in curve], color="C1", ls="--", label="train acc")
    elif epochs:  # fewer than log_every minibatches per epoch: the epoch averages
        xs = [e["epoch"] for e in epochs]
        ax.plot(xs, [e["train_loss"] for e in epochs], color="C0", label="train loss")
        ax.plot(xs, [e["train_acc"] for e in epochs], color="C1", ls="--", label="train acc")
    if epochs:
        ax.plot(
            [e["epoch"] for e in epochs],
            [e["test_acc"] for e in epochs],
            color="C2",
            ls=":",
            marker=".",
            label="test acc",
        )
    ax.set_xlabel("epoch")
    ax.set_xlim(0, max(result.configs[m].epochs, 1))
    ax.grid(alpha=0.3)
    ax.set_title(title or result.configs[m].schedule_name, fontsize=10)


def training_curves(result, *, titles: Sequence[str] | None = None) -> Figure:
    """The chapter's plot for each model: train loss and train accuracy (every
    ``log_every`` minibatches, averaged over the epoch so far) and test
    accuracy (every epoch) against epochs; one panel per model."""
    k = len(result.configs)
    cols = min(k, 3)
    rows = -(-k // cols)
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(4.6 * cols, 3.4 * rows),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    for m in range(k):
        _curve_axes(axes.flat[m], result, m, titles[m] if titles else None)
    for ax in axes.flat[k:]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=8, loc="center right")
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
    colours = {g: f"C{i % 10}" for i, g in enumerate(dict.fromkeys(groups))}
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), layout="constrained")
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
    for ax, title in zip(
        axes,
        ("test accuracy", "train loss", "learning rate (at the epoch's first update)"),
        strict=True,
    ):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.legend(loc="outside right center", fontsize=8)
    return fig


def live(figure_fn=training_curves, *, path: str | None = None):
    """An ``on_epoch`` callback for :func:`gdjax.train.train` that redraws
    ``figure_fn(result)`` after every epoch: in place in a Jupyter notebook,
    and into ``path`` (a PNG) when given.

    Example:
        >>> from gdjax import plot, train
        >>> cfg = train.TrainConfig(epochs=3)
        >>> result = train.train(cfg, on_epoch=plot.live())  # doctest: +SKIP
    """
    handle = None

    def callback(result) -> None:
        nonlocal handle
        fig = figure_fn(result)
        if path is not None:
            fig.savefig(path, dpi=110, bbox_inches="tight")
        if _in_notebook():
            from IPython.display import display

            if handle is None:
                handle = display(fig, display_id=True)
            else:
                handle.update(fig)
        plt.close(fig)

    return callback


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
