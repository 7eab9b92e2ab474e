"""A basin map larger than memory: computed tile by tile, labels on disk.

``gdjax basins --grid N`` above 4096 (or with ``--tiled``) maps the grid in
bands of rows (:mod:`gdjax.tiled`): only one band's end points are ever in
memory, the labels (int8) and convergence steps go to ``labels.npy`` and
``converged_step.npy`` beside basins.json, and the fractions, minima,
best-of-k and fractal measures are accumulated on the way. Figures are drawn
from a downsampled preview.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np

from gdjax import basins, plot, tiled
from gdjax.lessons.local_minima import KS, outcome, point, short
from gdjax.report import Report, versions, write_json
from gdjax.runs import command_line

__all__ = ["to_json", "write"]


def to_json(dmap: tiled.DiskMap, critical, exact, simulated, seed: int) -> dict:
    """basins.json's content for a map on disk: basins.json's keys, plus the
    files, the plan, the preview's stride and the fractal measures."""
    return {
        **dataclasses.asdict(dmap.config),
        "seed": seed,
        "minima": [m.to_json() for m in dmap.minima],
        "global_minima": list(dmap.global_minima),
        "p_global": dmap.p_global._asdict(),
        "critical_points": [c.to_json() for c in critical],
        "fractions": dmap.fractions.to_json(),
        "best_of_k": {"k": list(KS), "exact": exact.tolist(), "simulated": simulated.tolist()},
        "files": {"labels": dmap.labels_path.name, "converged_step": dmap.steps_path.name},
        "preview_stride": dmap.stride,
        "fractal": {
            "box_dimension": None
            if not np.isfinite(dmap.box_dimension.dimension)
            else dmap.box_dimension.dimension,
            "box_sizes": dmap.box_dimension.sizes.tolist(),
            "box_counts": dmap.box_dimension.counts.tolist(),
            "basin_entropy": dmap.entropy.Sb,
            "boundary_entropy": dmap.entropy.Sbb,
        },
        "plan": {**dmap.plan._asdict()},
        "timing": {
            "seconds": dmap.seconds,
            "compile_seconds": dmap.compile_seconds,
            "total_seconds": dmap.total_seconds,
            "restart_steps_per_second": dmap.rate,
            "refrozen": 0,
        },
        "versions": versions(),
        "command": command_line(),
    }


def write(out: str | Path, dmap: tiled.DiskMap, seed: int = 0) -> dict:
    """basins.json, the figures and report.html beside the label files."""
    out = Path(out)
    surface = dmap.config.surface
    critical = basins.critical_points(surface, domain=dmap.domain)
    exact = basins.best_of_k(dmap.p_global.fraction, KS)
    labels = np.load(dmap.labels_path, mmap_mode="r")
    simulated = tiled.simulate_best_of_k(
        labels, KS, key=jax.random.key(seed + 1), targets=dmap.global_minima or (-3,)
    )
    res = to_json(dmap, critical, exact, simulated, seed)
    write_json(out / "basins.json", res)
    _report(out, dmap, critical, res)
    return res


def _report(out: Path, dmap: tiled.DiskMap, critical, res: dict) -> None:
    rep = Report(f"Basins of attraction: {dmap.config.surface} ({dmap.grid:,}^2, on disk)")
    p = dmap.plan
    rep.text(
        f"{p.starts:,} starts ({dmap.grid:,} x {dmap.grid:,} grid), {dmap.config.rule}, "
        f"{dmap.config.steps} steps, in {p.tiles} tiles of {p.tile_rows} rows: "
        f"{dmap.seconds:.1f} s of descent ({dmap.rate:.3g} restart-steps/s), "
        f"{dmap.total_seconds:.1f} s in all. Labels and convergence steps are in "
        f"{dmap.labels_path.name} and {dmap.steps_path.name} ({p.disk_bytes / 1e9:.2f} GB; "
        "np.load(path, mmap_mode='r'))."
    )
    rep.text(outcome(res), note=True)
    pm = tiled.preview_map(dmap, dmap.config.surface)
    title = (
        f"Basins of attraction: {dmap.config.surface}, {dmap.config.rule}, "
        f"{dmap.config.steps} steps, {dmap.grid:,}^2 starts (every {dmap.stride}th row "
        "and column shown)"
    )
    fig = plot.basin_map(pm, critical, title=title)
    rep.figure(fig, "basin_map", "Each start coloured by the minimum it reaches (a preview).")
    rep.heading("Minima found (sorted by value; 0 is the lowest; * global)")
    fr = dmap.fractions
    rep.table(
        ["label", "location", "f", "basin fraction", "95% CI"],
        [
            [
                f"{i}*" if i in dmap.global_minima else i,
                point(m.location),
                m.value,
                fr[str(i)][0],
                f"[{fr[str(i)][1]:.5f}, {fr[str(i)][2]:.5f}]",
            ]
            for i, m in enumerate(dmap.minima)
        ]
        + [
            [k, "", "", fr[k][0], f"[{fr[k][1]:.5f}, {fr[k][2]:.5f}]"]
            for k in ("not_converged", "diverged")
        ],
    )
    f = res["fractal"]
    rep.heading("Fractal measures (full resolution, streamed)")
    rep.table(
        ["box dimension", "basin entropy Sb", "boundary entropy Sbb"],
        [
            [
                f["box_dimension"] if f["box_dimension"] is not None else "-",
                f["basin_entropy"],
                f["boundary_entropy"],
            ]
        ],
    )
    bk = res["best_of_k"]
    rep.figure(
        plot.best_of_k_curve(bk["k"], bk["exact"], bk["simulated"]),
        "best_of_k",
        "The chance that the best of k random restarts reaches a global minimum.",
    )
    rep.heading("Command and configuration")
    rep.code(res["command"])
    skip = ("minima", "critical_points", "fractions", "best_of_k", "versions", "command")
    rep.code("\n".join(f"{k}: {short(v)}" for k, v in res.items() if k not in skip))
    rep.write(out)
