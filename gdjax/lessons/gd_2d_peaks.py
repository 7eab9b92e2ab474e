"""Lesson B: gradient descent in 2D on MATLAB's peaks surface.

Random starts descend in one vmapped call; the paths are drawn on the
heatmap and each end point is labelled with the minimum it reached (or "not
converged": on peaks some starts crawl onto the flat outer plateau). Where a
run lands depends on where it starts.
"""

from __future__ import annotations

from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np

import gdjax
from gdjax import plot
from gdjax.report import Report, write_json
from gdjax.runs import command_line

SURFACE = "peaks"
MAX_RUN_COLORS = 20  # more runs than this are coloured by outcome


def classify(surface, final, grad_norm, diverged, tol: float, radius: float = 0.05):
    """Names the listed minimum each end point reached.

    Returns, per run, the index into ``surface.minima``, or -1 for "not
    converged" (gradient norm >= tol or no listed minimum within ``radius``)
    and -2 for "diverged".
    """
    final = np.asarray(final)
    minima = np.asarray([m.location for m in surface.minima])
    dist = np.linalg.norm(final[:, None, :] - minima[None], axis=-1)
    nearest = dist.argmin(axis=1)
    ok = (np.asarray(grad_norm) < tol) & (dist.min(axis=1) < radius)
    labels = np.where(ok, nearest, -1)
    return np.where(np.asarray(diverged), -2, labels)


def run(
    out: Path,
    *,
    seed: int = 0,
    starts: int = 12,
    lr: float = 0.01,
    steps: int = 1000,
    tol: float = 1e-3,
) -> dict:
    surface = gdjax.surfaces.get(SURFACE)
    lo, hi = np.asarray(surface.domain).T
    x0 = jax.random.uniform(jax.random.key(seed), (starts, 2), minval=lo, maxval=hi)
    trajs = jax.vmap(lambda x: gdjax.descend(surface, x, steps=steps, lr=lr))(x0)
    final = np.asarray(trajs.params[:, -1])
    gnorm = np.asarray(trajs.grad_norm[:, -1])
    labels = classify(surface, final, gnorm, trajs.diverged, tol)

    def name(label: int) -> str:
        if label == -2:
            return "diverged"
        if label == -1:
            return "not converged"
        m = surface.minima[label]
        kind = "global" if m.is_global else "local"
        return f"{kind} min ({m.location[0]:.2f}, {m.location[1]:.2f})"

    runs = [
        {
            "start": np.asarray(x0[i]).tolist(),
            "end": final[i].tolist(),
            "f_end": float(trajs.loss[i, -1]),
            "grad_norm_end": float(gnorm[i]),
            "reached": name(int(labels[i])),
            "minimum_index": int(labels[i]),
        }
        for i in range(starts)
    ]
    counts = {}
    for r in runs:
        counts[r["reached"]] = counts.get(r["reached"], 0) + 1
    results = {
        "lesson": "B: gradient descent in 2D on peaks",
        "surface": SURFACE,
        "seed": seed,
        "lr": lr,
        "steps": steps,
        "tol": tol,
        "minima": [
            {"location": list(m.location), "value": m.value, "global": m.is_global}
            for m in surface.minima
        ],
        "runs": runs,
        "counts": counts,
    }
    write_json(out / "results.json", results)

    rep = Report("Lesson B: gradient descent on the peaks surface")
    rep.text(
        f"z = {surface.formula}; gradient by jax.grad (no SymPy). {starts} random starts "
        f"(seed {seed}), lr = {lr:g}, {steps} steps, all in one jax.vmap call."
    )
    reached = [r["reached"] for r in runs]
    per_run = starts <= MAX_RUN_COLORS
    if per_run:  # one colour per run, the same in both figures
        colors = plot.run_colors(starts)
    else:  # too many runs to tell apart: one colour per outcome (landscape_2d's grouping)
        groups = list(dict.fromkeys(reached))
        palette = plot.run_colors(len(groups))
        colors = [palette[groups.index(g)] for g in reached]
    rep.figure(
        plot.landscape_2d(surface, trajs, labels=reached, colors=colors if per_run else None),
        "paths",
        "Each path follows the steepest way down from its start; where it "
        "ends depends on where it starts. A path that leaves the frame ends in an arrow "
        "at the edge.",
    )
    rep.figure(_loss_plot(trajs, runs, colors, per_run), "loss", "f along each path.")
    rep.table(
        ["run", "start", "end", "f(end)", "|grad|", "reached"],
        [
            [i, _pt(r["start"]), _pt(r["end"]), r["f_end"], r["grad_norm_end"], r["reached"]]
            for i, r in enumerate(runs)
        ],
    )
    rep.table(["outcome", "runs"], sorted(counts.items()))
    rep.heading("Command")
    rep.code(command_line())
    rep.write(out)
    return results


def _pt(p) -> str:
    return f"({p[0]:.3f}, {p[1]:.3f})"


def _loss_plot(trajs, runs, colors, per_run: bool = True):
    """f along each path, in the paths figure's colours: one legend entry per
    run, or per outcome when the runs are too many to tell apart."""
    fig, ax = plt.subplots(figsize=(9.5, 4.5), layout="constrained")
    seen = set()
    for i, r in enumerate(runs):
        if per_run:
            label = f"{i}: {r['reached']}"
        else:
            label = None if r["reached"] in seen else r["reached"]
            seen.add(r["reached"])
        ax.plot(np.asarray(trajs.loss[i]), color=colors[i], label=label, lw=1.4 if per_run else 0.8)
    ax.set_xlabel("step (linear to 1, then log)")
    ax.set_ylabel("f(x, y)")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(0, max(trajs.loss.shape[1] - 1, 1))
    ax.set_title("f(x, y) along each path (colours as in the paths figure)", fontsize=11)
    fig.legend(
        loc="outside right upper", fontsize=7, title="run: reached" if per_run else "reached"
    )
    return fig


def summary(res: dict) -> str:
    lines = [
        f"Lesson B (peaks): {len(res['runs'])} starts, lr = {res['lr']:g}, {res['steps']} steps"
    ]
    for outcome, n in sorted(res["counts"].items()):
        lines.append(f"  {n:3d} x {outcome}")
    return "\n".join(lines)
