"""Trainability maps: where training converges and where it diverges, and zooms into the boundary.

For every pixel of a grid of two hyperparameters, train and record converged
or diverged and a normalised loss: by default Sohl-Dickstein's setup (a
one-hidden-layer tanh network, a learning rate per layer, full-batch gradient
descent; arXiv 2402.06184), or, with --surface, gradient descent with
momentum on a surface over (lr, momentum). Zooms into the boundary at the same
resolution show its structure at every scale; its box-counting dimension is
measured, and its uncertainty exponent from trainings re-run at perturbations
far below a pixel. Writes trainability.json, the map, the zoom sequence and
report.html.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

import gdjax
from gdjax import _progress, _validate, fractal, plot
from gdjax import trainability as T
from gdjax.maps.config import available_memory
from gdjax.report import Report, versions, write_json
from gdjax.runs import command_line

__all__ = [
    "MIN_GRID",
    "PIXEL_BYTES",
    "UNCERTAINTY_STARTS",
    "ZOOM_GRID",
    "Study",
    "compute",
    "run",
    "summary",
    "to_json",
    "write",
]

MIN_GRID = 16
"""The fewest pixels per side of a map or a zoom: the box-counting
dimension of its boundary needs 16 x 16."""

PIXEL_BYTES = 64
"""Host memory per pixel of a map (its rates, outcome, score and final
loss, and their copies on the way), for the refusal before compute."""

ZOOM_GRID = 256
"""Pixels per side of each zoom at full size (``"auto"``: half the map's
side, at most this)."""

UNCERTAINTY_STARTS = 4096
"""Random points per perturbation size of the main map's uncertainty
exponent at full size (``"auto"`` uses fewer for a smaller map)."""


class Study(NamedTuple):
    """The main map, the zoom sequence, the boundary's box dimension, the
    settings, the main map's uncertainty exponent (None when not measured,
    or when the map has no boundary), and each zoom's (empty when not
    measured; None for a zoom without boundary)."""

    main: T.TrainabilityMap
    zooms: list
    box: fractal.BoxDimension
    settings: dict
    uncertainty: fractal.Uncertainty | None = None
    zoom_uncertainty: tuple = ()


def compute(
    *,
    seed: int = 0,
    grid: int = 1024,
    steps: int | None = None,
    width: int = 8,
    surface: str | None = None,
    x: str | None = None,
    y: str | None = None,
    start=(0.0, 0.0),
    zoom=None,
    zoom_levels: int = 4,
    zoom_grid: int | str = "auto",
    uncertainty: int | str = "auto",
    zoom_uncertainty: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Study:
    """Validates, computes the map (in ``zoom``'s window if given: (cx, cy,
    w) in axis units, log10 on a log axis), then ``zoom_levels`` zooms of
    ``zoom_grid`` pixels (``"auto"``: half the map's side, at most
    :data:`ZOOM_GRID`) into a boundary point, then the main map's
    uncertainty exponent from ``uncertainty`` random points per
    perturbation size (0: not measured; ``"auto"``: as many as cost about
    what the map costs, up to :data:`UNCERTAINTY_STARTS`; drawn from
    ``seed``), and each
    zoom's from ``zoom_uncertainty`` (0: not measured). ``progress`` gets
    (trainings done, trainings) of the main map, then of the zooms
    together, then of the uncertainty exponent, then of the zooms' ones
    together."""
    names = ("lr", "momentum") if surface else ("lr_0", "lr_1")
    for given, want, flag in ((x, names[0], "--x"), (y, names[1], "--y")):
        if given is not None and given != want:
            raise ValueError(
                f"{flag} {given}: this map's axes are {names[0]} and {names[1]}"
                + ("" if surface else " (give --surface for lr x momentum)")
            )
    if surface is not None:
        surf = gdjax.surfaces.get(surface)
        if surf.dim != 2:
            raise ValueError(
                f"--surface {surf.name} is {surf.dim}D; a trainability map descends a 2D surface"
            )
    grid = _validate.check_count("grid", grid)
    if grid < MIN_GRID:
        raise ValueError(
            f"--grid must be at least {MIN_GRID} (the boundary's box-counting dimension needs "
            f"{MIN_GRID} x {MIN_GRID} pixels), got {grid}"
        )
    have = available_memory()
    if have is not None and grid * grid * PIXEL_BYTES > have:
        fits = math.isqrt(have // PIXEL_BYTES)
        raise ValueError(
            f"a {grid:,}^2 map needs about {grid * grid * PIXEL_BYTES / 2**30:.1f} GiB of "
            f"memory and {have / 2**30:.1f} GiB is available; use --grid {fits:,} or less"
        )
    if zoom_grid == "auto":  # the zooms together cost about what the map costs
        zoom_grid = min(ZOOM_GRID, max(16, grid // 2))
    zoom_grid = _validate.check_count("zoom_grid", zoom_grid)
    if zoom_levels > 0 and zoom_grid < MIN_GRID:
        raise ValueError(f"--zoom-grid must be at least {MIN_GRID}, got {zoom_grid}")
    if uncertainty == "auto":
        uncertainty = _validate.matched_uncertainty_starts(grid * grid, 1, UNCERTAINTY_STARTS)
    uncertainty = _validate.check_uncertainty_starts(uncertainty)
    zoom_uncertainty = _validate.check_uncertainty_starts(zoom_uncertainty, "--zoom-uncertainty")
    if zoom is not None:
        cx, cy, w = zoom
        if not w > 0:
            raise ValueError(f"--zoom width must be > 0, got {w}")
        base = T.Window(cx, cy, w, w)
    else:
        base = T.SURFACE_WINDOW if surface else T.NETWORK_WINDOW
    steps = steps if steps is not None else (1000 if surface else 100)

    def one(window, resolution, report=None):
        if surface:
            return T.surface_map(
                surface, window, start=start, resolution=resolution, steps=steps, progress=report
            )
        return T.network_map(
            window, resolution=resolution, steps=steps, width=width, seed=seed, progress=report
        )

    main = one(base, grid, progress)
    box = main.box_dimension()
    zooms = []
    if zoom_levels > 0 and box.boundary_pixels:
        # each zoom centres on the most intricate boundary point of the map before it
        limits = T.MOMENTUM_LIMITS if surface else None
        centre, current = T.boundary_point(main), main
        for k in range(zoom_levels):
            window = T.zoom_windows(base, centre, k + 1, y_limits=limits)[-1]
            # the zooms report as one task
            current = one(window, zoom_grid, _progress.part(progress, k, zoom_levels))
            zooms.append(current)
            if current.box_dimension().boundary_pixels:
                centre = T.boundary_point(current)
    settings = {
        "mode": f"surface {surface}" if surface else "network",
        "steps": steps,
        "width": None if surface else width,
        "start": list(start) if surface else None,
        "grid": grid,
        "zoom_levels": zoom_levels,
        "zoom_grid": zoom_grid,
        "zoom_uncertainty": zoom_uncertainty,
        "seed": seed,
    }
    unc = None
    if uncertainty and box.boundary_pixels:
        unc = T.uncertainty(main, key=jax.random.key(seed), n=uncertainty, progress=progress)
    zoom_unc = []
    for k, z in enumerate(zooms if zoom_uncertainty else ()):
        zoom_unc.append(
            T.uncertainty(
                z,
                key=jax.random.fold_in(jax.random.key(seed), k + 1),
                n=zoom_uncertainty,
                progress=_progress.part(progress, k, len(zooms)),
            )
            if z.box_dimension().boundary_pixels
            else None
        )
    return Study(main, zooms, box, settings, unc, tuple(zoom_unc))


def _axis(a: T.Axis) -> dict:
    return {"name": a.name, "values": a.values.tolist(), "log": a.log}


def to_json(study: Study) -> dict:
    m = study.main
    return {
        "axes": {"x": _axis(m.x), "y": _axis(m.y)},
        "window": m.window._asdict(),
        "converged_fraction": m.converged_fraction,
        "box_dimension": None if not np.isfinite(study.box.dimension) else study.box.dimension,
        "box_sizes": study.box.sizes.tolist(),
        "box_counts": study.box.counts.tolist(),
        "zooms": [
            {
                "window": z.window._asdict(),
                "converged_fraction": z.converged_fraction,
                "box_dimension": _finite(z.box_dimension().dimension),
                "uncertainty": _json_or_none(study, k),
            }
            for k, z in enumerate(study.zooms)
        ],
        "uncertainty": None if study.uncertainty is None else study.uncertainty.to_json(),
        "seconds": m.seconds,
        "pixels_per_second": m.converged.size / m.seconds,
        "settings": study.settings,
        "versions": versions(),
        "command": command_line(),
    }


def _json_or_none(study: Study, k: int) -> dict | None:
    """Zoom k's uncertainty exponent as JSON (None where not measured)."""
    if k >= len(study.zoom_uncertainty) or study.zoom_uncertainty[k] is None:
        return None
    return study.zoom_uncertainty[k].to_json()


def _short(u: dict | None) -> str:
    """An uncertainty exponent (JSON) in a table cell."""
    if u is None:
        return "-"
    unc = fractal.Uncertainty.from_json(u)
    if u["dimension"] is not None:
        se = unc.alpha_se
        text = f"{unc.dimension:.2f}" + (f" ± {se:.2f}" if np.isfinite(se) else "")
        return text if unc.power_law else f"{text} (not one power law)"
    return "fills the window" if unc.fills_domain else "too few uncertain points"


def _finite(v):
    return None if not np.isfinite(v) else float(v)


def write(out: str | Path, study: Study) -> dict:
    """trainability.json (with converged.npy, the map as booleans), the
    figures and report.html."""
    out = Path(out)
    res = to_json(study)
    write_json(out / "trainability.json", res)
    m = study.main
    what = (
        f"gradient descent with momentum on {study.settings['mode'][8:]}, "
        f"{res['settings']['steps']} steps"
        if study.settings["mode"] != "network"
        else f"a width-{study.settings['width']} tanh network, "
        f"{res['settings']['steps']} full-batch steps"
    )
    rep = Report("Trainability map")
    rep.text(
        f"{m.converged.size:,} trainings of {what}, one per pixel, as one vmapped program "
        f"in {m.seconds:.1f} s ({res['pixels_per_second']:.0f} pixels/s). Blue: training "
        "converged (the mean of the last 20 losses, normalised by the first, is below 1), "
        "shaded by the sum of the normalised losses; red: it diverged, shaded by how fast."
    )
    rep.figure(plot.trainability.trainability_map(m, what), "trainability", "The map.")
    dim = res["box_dimension"]
    rep.text(
        f"Box-counting dimension of the boundary: {dim:.3f} (1 for a smooth curve)."
        if dim is not None
        else "This map has no boundary: every pixel trains, or every pixel diverges.",
        note=True,
    )
    if study.zooms:
        rep.figure(
            plot.trainability.zoom_sequence(study.zooms),
            "zoom_sequence",
            f"{len(study.zooms)} zooms into a point of the boundary, each 8x narrower, "
            f"{study.settings['zoom_grid']}^2 pixels each; the next window is outlined.",
        )
        measured = any(z["uncertainty"] is not None for z in res["zooms"])
        rep.table(
            ["zoom", "window width (x, y)", "trainable", "box dimension"]
            + (["uncertainty dimension"] if measured else []),
            [
                [
                    k,
                    f"{z['window']['wx']:.3g}, {z['window']['wy']:.3g}",
                    f"{100 * z['converged_fraction']:.1f}%",
                    "-" if z["box_dimension"] is None else f"{z['box_dimension']:.3f}",
                ]
                + ([_short(z["uncertainty"])] if measured else [])
                for k, z in enumerate(res["zooms"])
            ],
        )
        if measured:
            rep.text(
                "Each zoom's uncertainty exponent re-runs trainings from "
                f"{study.settings['zoom_uncertainty']:,} random points of its window per "
                "perturbation size (the sizes scale with the window, from 1e-6 of its width or "
                f"{fractal.MIN_EPS_SPACINGS} float spacings of its coordinates, whichever is "
                'more, to 1e-1). "Fills the window": more than '
                f"{100 * fractal.FIT_MAX_FRACTION:g}% of the points are uncertain at most sizes, "
                "so there is no small-ε power law to fit: at these scales the boundary is "
                "everywhere.",
                note=True,
            )
    if dim is not None:
        rep.figure(plot.trainability.box_counting(study.box), "box_counting", "The fit.")
    u = res["uncertainty"]
    unit = "log10 units" if m.x.log else "units of the axes"
    if u is not None:
        rep.text(
            "The uncertainty exponent does not read pixels: trainings are re-run from "
            f"{u['starts_per_eps']:,} random points of the window per perturbation size ε "
            f"(from {min(u['eps']):.2g} to {max(u['eps']):.2g} {unit}, far below one pixel "
            "at the small end) and from x ± ε v (v a random direction); a point is uncertain "
            "when the three do not all train or all diverge. The fraction of uncertain points "
            "scales as ε^α, and the boundary's dimension is 2 - α (Grebogi et al. 1983): "
            + study.uncertainty.words()
            + ("" if dim is None else f", against {dim:.3f} from box counting on the map.")
            + (
                ""
                if study.uncertainty.power_law
                else " Where the slope changes with ε, the small-ε slope belongs to the finest "
                "scales: compare the zooms' box dimensions above."
            ),
            note=True,
        )
    named = [("the map's window", study.uncertainty)] if u is not None else []
    named += [(f"zoom {k}", z) for k, z in enumerate(study.zoom_uncertainty) if z is not None]
    if named:
        rep.figure(
            plot.fractal.uncertainty_fits(named, unit=unit, points="points"),
            "uncertainty",
            plot.fractal.uncertainty_caption("points"),
        )
    rep.code(res["command"])
    rep.write(out)
    return res


def run(out: Path, *, seed: int = 0, progress=None, **options) -> dict:
    """:func:`compute`, then :func:`write`."""
    return write(out, compute(seed=seed, progress=progress, **options))


def summary(res: dict) -> str:
    dim = res["box_dimension"]
    n = len(res["axes"]["x"]["values"]) * len(res["axes"]["y"]["values"])
    u = res.get("uncertainty")
    return (
        f"trainability: {n:,} pixels in {res['seconds']:.1f} s, "
        f"{100 * res['converged_fraction']:.1f}% trainable, boundary dimension "
        + ("-" if dim is None else f"{dim:.3f}")
        + (
            ""
            if u is None
            else f"\n  uncertainty dimension {fractal.Uncertainty.from_json(u).words()}"
        )
        + "".join(
            f"\n  zoom {k}: width {z['window']['wx']:.3g}, dimension "
            + ("-" if z["box_dimension"] is None else f"{z['box_dimension']:.3f}")
            + ("" if z.get("uncertainty") is None else f", uncertainty {_short(z['uncertainty'])}")
            for k, z in enumerate(res["zooms"])
        )
    )
