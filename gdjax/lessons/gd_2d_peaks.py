"""Lesson B: gradient descent in 2D on MATLAB's peaks surface.

Random starts descend in one vmapped call; the paths are drawn on the
heatmap and each end point is labelled with the minimum it reached (or "not
converged": on peaks some starts crawl onto the flat outer plateau). Where a
run lands depends on where it starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

import gdjax
from gdjax import plot
from gdjax.maps.config import available_memory
from gdjax.report import Report, write_json
from gdjax.runs import command_line

SURFACE = "peaks"
MAX_RUN_COLORS = 20  # more runs than this are coloured by outcome
MAX_STARTS = 10_000  # every path is drawn and every run listed in results.json
PATH_BYTES = 64  # host and device memory per start and step (the whole path, its grads, loss)


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


class Paths(NamedTuple):
    """Lesson B's numbers.

    Attributes:
        surface: the peaks surface.
        seed: the seed of the starts.
        lr: the learning rate.
        tol: converged: gradient norm < tol.
        trajs: the paths, one row per start.
        labels: per path, the index of the minimum it reached, -1 not
            converged, -2 diverged (:func:`classify`).
    """

    surface: gdjax.Surface
    seed: int
    lr: float
    tol: float
    trajs: gdjax.Trajectory
    labels: np.ndarray

    def reached(self) -> list[str]:
        """Per path, what it reached, in words."""
        return [_reached(self.surface, int(label)) for label in self.labels]


def _reached(surface, label: int) -> str:
    if label == -2:
        return "diverged"
    if label == -1:
        return "not converged"
    m = surface.minima[label]
    kind = "global" if m.is_global else "local"
    return f"{kind} min ({m.location[0]:.2f}, {m.location[1]:.2f})"


def compute(
    *, seed: int = 0, starts: int = 12, lr: float = 0.01, steps: int = 1000, tol: float = 1e-3
) -> Paths:
    """Descends peaks from ``starts`` uniform random starts in one vmapped
    call and names the minimum each reached.

    Raises:
        ValueError: more than :data:`MAX_STARTS` starts, or paths that would
            not fit in the memory available (before any compute).
    """
    check_size(starts, steps)
    surface = gdjax.surfaces.get(SURFACE)
    lo, hi = np.asarray(surface.domain).T
    x0 = jax.random.uniform(jax.random.key(seed), (starts, 2), minval=lo, maxval=hi)
    trajs = jax.vmap(lambda x: gdjax.descend(surface, x, steps=steps, lr=lr))(x0)
    labels = classify(surface, trajs.params[:, -1], trajs.grad_norm[:, -1], trajs.diverged, tol)
    return Paths(surface, seed, lr, tol, trajs, labels)


def check_size(starts: int, steps: int) -> None:
    """Refuses a lesson whose every path cannot be drawn or kept."""
    if starts > MAX_STARTS:
        raise ValueError(
            f"--starts {starts:,}: this lesson draws every path and lists every run, so at most "
            f"{MAX_STARTS:,} starts; `gdjax basins --starts N` maps millions"
        )
    need = starts * (steps + 1) * PATH_BYTES
    have = available_memory()
    if have is not None and need > have:
        fit = have // ((steps + 1) * PATH_BYTES)
        hint = (
            f"use fewer --starts (about {fit:,} fit) or fewer --steps"
            if fit >= 1
            else f"use fewer --steps (about {have // (starts * PATH_BYTES):,} fit)"
        )
        raise ValueError(
            f"{starts:,} paths of {steps:,} steps need about {need / 2**30:.1f} GiB of memory "
            f"and {have / 2**30:.1f} GiB is available; {hint}"
        )


def to_json(paths: Paths) -> dict:
    """results.json's content."""
    trajs, surface = paths.trajs, paths.surface
    final = np.asarray(trajs.params[:, -1])
    gnorm = np.asarray(trajs.grad_norm[:, -1])
    starts = np.asarray(trajs.params[:, 0])
    runs = [
        {
            "start": starts[i].tolist(),
            "end": final[i].tolist(),
            "f_end": float(trajs.loss[i, -1]),
            "grad_norm_end": float(gnorm[i]),
            "reached": reached,
            "minimum_index": int(paths.labels[i]),
        }
        for i, reached in enumerate(paths.reached())
    ]
    counts = {}
    for r in runs:
        counts[r["reached"]] = counts.get(r["reached"], 0) + 1
    return {
        "lesson": "B: gradient descent in 2D on peaks",
        "surface": SURFACE,
        "seed": paths.seed,
        "lr": paths.lr,
        "steps": trajs.params.shape[1] - 1,
        "tol": paths.tol,
        "minima": [
            {"location": list(m.location), "value": m.value, "global": m.is_global}
            for m in surface.minima
        ],
        "runs": runs,
        "counts": counts,
    }


def write(out: str | Path, paths: Paths) -> dict:
    """Writes results.json, the figures and report.html into ``out``; returns the JSON's content."""
    out = Path(out)
    results = to_json(paths)
    write_json(out / "results.json", results)
    runs, counts = results["runs"], results["counts"]
    starts, surface = len(runs), paths.surface
    rep = Report("Lesson B: gradient descent on the peaks surface")
    rep.text(
        f"z = {surface.formula}; gradient by jax.grad (no SymPy). {starts} random starts "
        f"(seed {paths.seed}), lr = {paths.lr:g}, {results['steps']} steps, all in one "
        "jax.vmap call."
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
        plot.landscape_2d(surface, paths.trajs, labels=reached, colors=colors if per_run else None),
        "paths",
        "Each path follows the steepest way down from its start; where it "
        "ends depends on where it starts. A path that leaves the frame ends in an arrow "
        "at the edge.",
    )
    rep.figure(
        plot.loss_along_paths(paths.trajs, reached, colors, per_run=per_run),
        "loss",
        "f along each path.",
    )
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


def run(out: Path, *, seed: int = 0, **options) -> dict:
    """:func:`compute` with ``options``, then :func:`write` into ``out``."""
    return write(out, compute(seed=seed, **options))


def _pt(p) -> str:
    return f"({p[0]:.3f}, {p[1]:.3f})"


def summary(res: dict) -> str:
    lines = [
        f"Lesson B (peaks): {len(res['runs'])} starts, lr = {res['lr']:g}, {res['steps']} steps"
    ]
    for outcome, n in sorted(res["counts"].items()):
        lines.append(f"  {n:3d} x {outcome}")
    return "\n".join(lines)
