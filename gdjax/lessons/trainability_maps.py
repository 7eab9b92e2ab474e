"""Trainability maps: where training converges and where it diverges, and zooms into the boundary.

For every pixel of a grid of two hyperparameters, train and record converged
or diverged and a normalised loss: by default Sohl-Dickstein's setup (a
one-hidden-layer tanh network, a learning rate per layer, full-batch gradient
descent; arXiv 2402.06184), or, with --surface, gradient descent with
momentum on a surface over (lr, momentum). Zooms into the boundary at the same
resolution show its structure at every scale; its box-counting dimension is
measured, and its uncertainty exponent from trainings re-run at perturbations
far below a pixel. Each zoom is 8x narrower than the map or zoom before it
and is outlined there. It runs in float32; --x64 computes in float64, as the
paper does. A window whose pixels the precision cannot tell apart is refused.
Writes trainability.json, the map, the zoom sequence and report.html.
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
    "UNCERTAINTY_STARTS",
    "Study",
    "check_resolution",
    "compute",
    "run",
    "summary",
    "to_json",
    "write",
]

_MIN_GRID = 16
"""The fewest pixels per side of a map or a zoom: the box-counting
dimension of its boundary needs 16 x 16."""

_PIXEL_BYTES = 64
"""Host memory per pixel of a map (its rates, outcome, score and final
loss, and their copies on the way), for the refusal before compute."""

_ZOOM_GRID = 256
"""Pixels per side of each zoom at full size (``"auto"``: half the map's
side, at most this)."""

_ZOOM_FACTOR = 8.0
"""Each zoom is this many times narrower than the map or zoom it is taken
from (zoom k: 8^(k + 1) times narrower than the map)."""

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
    x64: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Study:
    """Validates, computes the map (in ``zoom``'s window if given: (cx, cy,
    w) in axis units, log10 on a log axis), then ``zoom_levels`` zooms of
    ``zoom_grid`` pixels (``"auto"``: half the map's side, at most
    256) into a boundary point, then the main map's
    uncertainty exponent from ``uncertainty`` random points per
    perturbation size (0: not measured; ``"auto"``: as many as cost about
    what the map costs, up to :data:`UNCERTAINTY_STARTS`; drawn from
    ``seed``), and each
    zoom's from ``zoom_uncertainty`` (0: not measured); everything in
    float64 with ``x64`` (the same network, drawn in float32), else
    float32. Zoom k is 8^(k+1) times narrower than the map, inside the map
    or zoom before it. A window whose pixels, or an uncertainty exponent
    whose perturbations, the precision does not resolve is refused before
    any compute (:func:`check_resolution`). ``progress`` gets
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
    if surface is None:
        T.check_width(width)
    grid = _validate.check_count("grid", grid)
    if grid < _MIN_GRID:
        raise ValueError(
            f"--grid must be at least {_MIN_GRID} (the boundary's box-counting dimension needs "
            f"{_MIN_GRID} x {_MIN_GRID} pixels), got {grid}"
        )
    have = available_memory()
    if have is not None and grid * grid * _PIXEL_BYTES > have:
        fits = math.isqrt(have // _PIXEL_BYTES)
        raise ValueError(
            f"a {grid:,}^2 map needs about {grid * grid * _PIXEL_BYTES / 2**30:.1f} GiB of "
            f"memory and {have / 2**30:.1f} GiB is available; use --grid {fits:,} or less"
        )
    if zoom_grid == "auto":  # the zooms together cost about what the map costs
        zoom_grid = min(_ZOOM_GRID, max(16, grid // 2))
    zoom_grid = _validate.check_count("zoom_grid", zoom_grid)
    if zoom_levels > 0 and zoom_grid < _MIN_GRID:
        raise ValueError(f"--zoom-grid must be at least {_MIN_GRID}, got {zoom_grid}")
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
    check_resolution(
        base,
        surface is not None,
        grid=grid,
        zoom_given=zoom is not None,
        zoom_levels=zoom_levels,
        zoom_grid=zoom_grid,
        uncertainty=uncertainty,
        zoom_uncertainty=zoom_uncertainty,
        x64=x64,
    )
    with jax.enable_x64(x64):
        return _compute(
            base,
            surface=surface,
            start=start,
            seed=seed,
            grid=grid,
            steps=steps,
            width=width,
            zoom_levels=zoom_levels,
            zoom_grid=zoom_grid,
            uncertainty=uncertainty,
            zoom_uncertainty=zoom_uncertainty,
            precision="float64" if x64 else "float32",
            progress=progress,
        )


def _compute(
    base: T.Window,
    *,
    surface,
    start,
    seed,
    grid,
    steps,
    width,
    zoom_levels,
    zoom_grid,
    uncertainty,
    zoom_uncertainty,
    precision,
    progress,
) -> Study:
    """:func:`compute`'s work, validated, in the working precision."""

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
        # each zoom centres on the most intricate boundary point of the map
        # before it, 8x narrower than that map and inside it
        limits = T.MOMENTUM_LIMITS if surface else None
        centre, current = T.boundary_point(main), main
        for k in range(zoom_levels):
            window = T.zoom_window(current.window, centre, _ZOOM_FACTOR, y_limits=limits)
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
        "precision": precision,
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


def _unit(log: bool) -> str:
    return " decades" if log else ""


def check_resolution(
    base: T.Window,
    surface: bool,
    *,
    grid: int,
    zoom_given: bool,
    zoom_levels: int,
    zoom_grid: int,
    uncertainty: int,
    zoom_uncertainty: int,
    x64: bool,
) -> None:
    """Refuses, before compute, what the working precision (float64 with
    ``x64``, else float32) does not resolve, naming the option and saying
    where --x64 would help: the map's pixels (:func:`gdjax.trainability.unresolved`),
    each zoom's (its centre is not known yet: the bound is the map's
    largest coordinates), and the perturbations of the uncertainty
    exponents (:func:`gdjax.fractal.uncertainty_exponent` refuses sizes
    under :data:`gdjax.fractal.MIN_EPS_SPACINGS` float spacings of the
    coordinates, and needs them below 1% of the window)."""
    dtype = np.dtype(np.float64 if x64 else np.float32)
    names = ("lr", "momentum") if surface else ("lr_0", "lr_1")
    logs = (True, not surface)
    extent = (abs(base.cx) + base.wx / 2, abs(base.cy) + base.wy / 2)

    def hint(fine_in_float64: bool) -> str:
        if x64:
            return ""
        if fine_in_float64:
            return "; --x64 may help: float64 resolves it"
        return " (nor would float64: give a wider window)"

    def zoom(k: int) -> T.Window:
        f = _ZOOM_FACTOR ** (k + 1)
        return T.Window(base.cx, base.cy, base.wx / f, base.wy / f)

    bad = T.unresolved(base, logs, grid, dtype)
    if bad is not None:
        k, step, res = bad
        flag = "--zoom" if zoom_given else "--grid"
        raise ValueError(
            f"{flag}: the map's {grid} pixels per side would be {step:.2g}{_unit(logs[k])} "
            f"apart on {names[k]}, below {dtype.name}'s resolution there "
            f"({res:.2g}{_unit(logs[k])}): their values would not be distinct"
            + hint(T.unresolved(base, logs, grid, np.float64) is None)
        )
    for k in range(zoom_levels):
        bad = T.unresolved(zoom(k), logs, zoom_grid, dtype, extent)
        if bad is not None:
            a, step, res = bad
            deepest = k
            while deepest < zoom_levels and (
                T.unresolved(zoom(deepest), logs, zoom_grid, np.float64, extent) is None
            ):
                deepest += 1
            raise ValueError(
                f"--zoom-levels {zoom_levels}: zoom {k}, {_ZOOM_FACTOR:g}^{k + 1} times "
                f"narrower than the map, would have its {zoom_grid} pixels per side "
                f"{step:.2g}{_unit(logs[a])} apart on {names[a]}, below {dtype.name}'s "
                f"resolution at these values ({res:.2g}{_unit(logs[a])}): they would not be "
                f"distinct; use --zoom-levels {k} or fewer"
                + (
                    f"; --x64 may help: float64 resolves --zoom-levels {deepest}"
                    if deepest > k and not x64
                    else ""
                )
            )
    biggest = max(extent)
    smallest = fractal.MIN_EPS_SPACINGS * float(np.spacing(np.asarray(biggest, dtype)))
    smallest64 = fractal.MIN_EPS_SPACINGS * float(np.spacing(np.float64(biggest)))
    checks = [(uncertainty, "--uncertainty", "the map's window", base)]
    checks += [
        (zoom_uncertainty, "--zoom-uncertainty", f"zoom {k}'s window", zoom(k))
        for k in range(zoom_levels)
    ]
    for n, flag, what, window in checks:
        width = max(window.wx, window.wy)
        if n and not smallest < 1e-2 * width:
            raise ValueError(
                f"{flag} {n}: {what}, {width:.3g} wide at coordinates up to {biggest:.3g}, is "
                f"too narrow for {dtype.name} perturbations (the smallest, "
                f"{fractal.MIN_EPS_SPACINGS} float spacings, is {smallest:.2g}, not below 1% "
                f"of the width); give {flag} 0" + hint(smallest64 < 1e-2 * width)
            )


def _axis(a: T.Axis) -> dict:
    return {"name": a.name, "values": a.values.tolist(), "log": a.log}


def to_json(study: Study) -> dict:
    m = study.main
    return {
        "axes": {"x": _axis(m.x), "y": _axis(m.y)},
        "window": m.window._asdict(),
        "converged_fraction": m.converged_fraction,
        "box_dimension": None if not np.isfinite(study.box.dimension) else study.box.dimension,
        "box_dimension_se": _finite(T.box_dimension_se(study.box)),
        "box_sizes": study.box.sizes.tolist(),
        "box_counts": study.box.counts.tolist(),
        "zooms": [
            {
                "window": z.window._asdict(),
                "converged_fraction": z.converged_fraction,
                "box_dimension": _finite(z.box_dimension().dimension),
                "box_dimension_se": _finite(T.box_dimension_se(z.box_dimension())),
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
    """An uncertainty exponent (JSON) in a table cell: its dimension where the
    sample resolves it, else why not (:meth:`gdjax.fractal.Uncertainty.brief`)."""
    if u is None:
        return "-"
    return fractal.Uncertainty.from_json(u).brief("points")


def _finite(v):
    return None if not np.isfinite(v) else float(v)


def _dim(d: dict, key: str = "box_dimension") -> str:
    """A box dimension (JSON) with its standard error, to the digits the
    error supports (none from two box sizes); "-" without a boundary."""
    if d[key] is None:
        return "-"
    se = d.get(key + "_se")
    if se is None:  # a line through two box sizes: nothing to estimate it from
        return f"{d[key]:.2f} (no error: 2 box sizes)"
    return T.with_error(d[key], se)


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
    precision = study.settings["precision"]
    rep = Report("Trainability map")
    shade = (
        "Blue: training converged (the mean of the last 20 losses, normalised by the first, "
        "is below 1), shaded by the rank of the sum of the normalised losses among the blue "
        "pixels (darker: trains more slowly); red: it diverged, shaded by the rank of the sum "
        "of their inverses among the red pixels (darker: diverges more slowly)."
        if study.settings["mode"] == "network"
        else "Blue: descent converged (|grad| < 1e-3), shaded by the rank of |final loss| / "
        "max(|loss at the start|, 1) among the blue pixels (darker: larger); red: it did not "
        "converge, darker where it diverged, lighter where it stayed bounded."
    )
    rep.text(
        f"{m.converged.size:,} trainings of {what}, one per pixel, as one vmapped program "
        f"in {precision}, in {m.seconds:.1f} s ({res['pixels_per_second']:.0f} pixels/s). "
        + shade
        + " Equal scores share a shade; the colour bars give the ranks."
    )
    rep.figure(
        plot.trainability.trainability_map(
            m, what, zoom=study.zooms[0].window if study.zooms else None
        ),
        "trainability",
        "The map" + ("; the window of zoom 0 is outlined." if study.zooms else "."),
    )
    dim = res["box_dimension"]
    sizes = res["box_sizes"]
    rep.text(
        f"Box-counting dimension of the boundary: {_dim(res)} (the fit over box sizes "
        f"{sizes[0]} to {sizes[-1]} pixels, with the standard error of its slope; 1 for a "
        "smooth curve)."
        if dim is not None
        else "This map has no boundary: every pixel trains, or every pixel diverges.",
        note=True,
    )
    if study.zooms:
        rep.figure(
            plot.trainability.zoom_sequence(study.zooms),
            "zoom_sequence",
            f"{len(study.zooms)} zooms into a point of the boundary, each "
            f"{_ZOOM_FACTOR:g}x narrower than the map or zoom before it (zoom k: "
            f"{_ZOOM_FACTOR:g}^(k+1)x narrower than the map) and inside it, "
            f"{study.settings['zoom_grid']}^2 pixels each, in {precision}; each panel outlines "
            "the next window.",
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
                    _dim(z),
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
        rep.figure(
            plot.trainability.box_counting(study.box, se=T.box_dimension_se(study.box)),
            "box_counting",
            "The fit over the box sizes counted (its slope's standard error in the legend).",
        )
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
            + (
                f", against {_dim(res)} from box counting on the map."
                if dim is not None and study.uncertainty.resolved
                else "."
            )
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
    n = len(res["axes"]["x"]["values"]) * len(res["axes"]["y"]["values"])
    u = res.get("uncertainty")
    return (
        f"trainability: {n:,} pixels in {res['seconds']:.1f} s, "
        f"{100 * res['converged_fraction']:.1f}% trainable "
        f"({res['settings'].get('precision', 'float32')}), boundary dimension "
        + _dim(res)
        + (
            ""
            if u is None
            else f"\n  uncertainty dimension {fractal.Uncertainty.from_json(u).words()}"
        )
        + "".join(
            f"\n  zoom {k}: width {z['window']['wx']:.3g}, dimension "
            + _dim(z)
            + ("" if z.get("uncertainty") is None else f", uncertainty {_short(z['uncertainty'])}")
            for k, z in enumerate(res["zooms"])
        )
    )
