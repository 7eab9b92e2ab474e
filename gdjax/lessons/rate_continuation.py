"""The ``gdjax continuation`` command: basins of gradient descent over a grid of rates.

Maps the basins of plain gradient descent at every rate of a log grid as one
compiled program over (rate x start), follows each minimum's basin fraction
as the rate grows, compares where each basin vanishes with its stability
limit 2 / lambda_max, and measures every map's boundaries (box-counting
dimension, basin entropy, boundary basin entropy; and, at three rates, the
uncertainty exponent from re-run descents). Beyond a minimum's limit the
starts that no longer converge are labelled by the attractor they reach: a
periodic orbit around a minimum (drawn in a lighter shade of its colour),
chaos or still moving (``--minima-only`` turns this off), and the report
says where each vanished basin's starts go. Writes continuation.json, the
figures, an animated GIF of the map as the rate grows, and report.html.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import jax
import numpy as np

import gdjax
from gdjax import _validate, basins, fractal
from gdjax import continuation as C
from gdjax._progress import Progress
from gdjax.plot import continuation as P
from gdjax.plot.fractal import uncertainty_caption
from gdjax.report import Report, versions, write_json
from gdjax.runs import command_line

__all__ = [
    "UNCERTAINTY_STARTS",
    "compute",
    "destination_words",
    "run",
    "summary",
    "three_rates",
    "to_json",
    "vanishing_words",
    "write",
]

UNCERTAINTY_STARTS = 1 << 16
"""Random starts per perturbation size of the uncertainty exponent, by default."""


def compute(
    surface: str = "peaks",
    *,
    lr_min: float = 0.001,
    lr_max: float = 0.2,
    lrs: int = 64,
    grid: int = 512,
    steps: int = 2000,
    tol: float = 1e-3,
    box: int = 5,
    domain=None,
    x64: bool = False,
    uncertainty: int | str = "auto",
    seed: int = 0,
    minima_only: bool = False,
    progress: Progress | None = None,
) -> C.Continuation:
    """Validates (before any compute), then maps the basins at ``lrs``
    log-spaced rates from ``lr_min`` to ``lr_max``
    (:func:`gdjax.continuation.continuation`), and measures the
    uncertainty exponent at the three rates :func:`three_rates` picks, from
    ``uncertainty`` random starts per perturbation size (0: not measured;
    ``"auto"``: as many as cost about what the maps cost, up to
    :data:`UNCERTAINTY_STARTS`; the starts are drawn from ``seed``).
    Unless ``minima_only``, the maps label the attractors of the runs that
    end not converged (:mod:`gdjax.maps.orbit_labels`).
    ``progress`` gets (runs done, runs) of the maps, then of the runs the
    attractor labelling continues, then of the uncertainty exponent's
    descents."""
    surf = gdjax.surfaces.get(surface)
    if not lr_min < lr_max:
        raise ValueError(f"--lr-min ({lr_min}) must be below --lr-max ({lr_max})")
    if lrs < 2:
        raise ValueError(f"--lrs must be at least 2, got {lrs}")
    if not 2 <= box <= grid:
        raise ValueError(f"--box must be in 2..--grid ({grid}), got {box}")
    if uncertainty == "auto":
        uncertainty = _validate.matched_uncertainty_starts(grid * grid * lrs, 3, UNCERTAINTY_STARTS)
    uncertainty = _validate.check_uncertainty_starts(uncertainty)
    if uncertainty:  # 3 rates, one after the other: one rate's points at a time
        dtype = np.float64 if x64 else np.float32
        fractal.check_uncertainty_memory(uncertainty, dtype=dtype, what="--uncertainty")
    dom = None if domain is None else ((domain[0], domain[1]), (domain[2], domain[3]))
    with jax.enable_x64(x64):  # one configuration, every refusal before compute
        config = basins.MapConfig(
            surf,
            grid=grid,
            steps=steps,
            lr=C.check_rates(np.geomspace(lr_min, lr_max, lrs)),
            tol=tol,
            domain=dom,
            attractors=not minima_only,
        )
    config.check_memory()  # every map is kept
    cont = C.continuation(config, box=box, progress=progress)
    if uncertainty:
        at = three_rates(cont.fractal.box_dimension)
        found = C.uncertainty(cont, at, key=jax.random.key(seed), n=uncertainty, progress=progress)
        cont = dataclasses.replace(cont, uncertainty=found)
    return cont


def write(out: str | Path, cont: C.Continuation, panels: int = 6) -> dict:
    """Writes continuation.json, the figures, the GIF and report.html into
    ``out``; returns the JSON's content."""
    out = Path(out)
    res = to_json(cont)
    write_json(out / "continuation.json", res)
    _report(out, cont, res, panels)
    return res


def run(out: Path, *, seed: int = 0, panels: int = 6, **options) -> dict:
    """:func:`compute` with ``options``, then :func:`write`. (``seed`` draws
    the uncertainty exponent's random starts; the maps' grid has no
    randomness.)"""
    return write(out, compute(seed=seed, **options), panels)


def _nan_none(v: float):
    return None if v is None or not math.isfinite(v) else float(v)


def to_json(cont: C.Continuation) -> dict:
    """continuation.json's content."""
    bmap = cont.bmap
    fr = bmap.fractions
    return {
        "config": {**dataclasses.asdict(bmap.config), "lr": None, "box": cont.box},
        "lrs": cont.lrs.tolist(),
        "minima": [m.to_json() for m in bmap.minima],
        "global_minima": list(bmap.global_minima),
        "fractions": {k: np.asarray(fr[k].fraction).tolist() for k in fr},
        "ci_low": {k: np.asarray(fr[k].ci_low).tolist() for k in fr},
        "ci_high": {k: np.asarray(fr[k].ci_high).tolist() for k in fr},
        "attractors": None if bmap.attractors is None else bmap.attractors.to_json(fr),
        "attractors_by_rate": _by_rate(cont),
        "destinations": {
            str(m): [
                {
                    "outcome": d.outcome,
                    "label": d.label,
                    "lr_from": d.lr_from,
                    "lr_to": d.lr_to,
                    "share": d.share,
                }
                for d in ds
            ]
            for m, ds in cont.destinations.items()
        },
        "stability_limits": {
            str(i): _nan_none(v) for i, v in enumerate(cont.stability_limits.tolist())
        },
        "vanishing": {
            str(v.minimum): {
                "last_seen": v.last_seen,
                "vanished_at": v.vanished_at,
                "past_limit_runs": v.past_limit,
            }
            for v in cont.vanishing
        },
        "fractal": {
            "box_dimension": [_nan_none(v) for v in cont.fractal.box_dimension.tolist()],
            "basin_entropy": cont.fractal.basin_entropy.tolist(),
            "boundary_entropy": cont.fractal.boundary_entropy.tolist(),
            "uncertainty": [
                {"lr": float(cont.lrs[i]), "rate_index": i, **u.to_json()}
                for i, u in sorted(cont.uncertainty.items())
            ],
        },
        "timing": bmap.timing._asdict(),
        "versions": versions(),
        "command": command_line(),
    }


def _by_rate(cont: C.Continuation) -> list[dict] | None:
    """The attractors reached at each rate (those with a start), with their
    kind, period, minimum and fraction with its 95% interval; None without
    attractor labelling."""
    bmap = cont.bmap
    table = bmap.attractors
    if table is None:
        return None
    out = []
    for i, lr in enumerate(cont.lrs):
        rows = []
        for a, name in enumerate(table.names):
            est = bmap.fractions[name]
            if est.fraction[i] > 0:
                rows.append(
                    {
                        "name": name,
                        "kind": table.kind[a],
                        "period": table.period[a],
                        "minimum": table.minimum[a],
                        "fraction": float(est.fraction[i]),
                        "ci_low": float(est.ci_low[i]),
                        "ci_high": float(est.ci_high[i]),
                    }
                )
        moving = bmap.fractions["moving"]
        out.append(
            {
                "lr": float(lr),
                "attractors": rows,
                "moving": {k: float(v[i]) for k, v in moving._asdict().items()},
            }
        )
    return out


def destination_words(cont: C.Continuation, minimum: int) -> str:
    """Where a vanished basin's starts go, in a sentence."""
    ds = cont.destinations.get(minimum, ())
    name = P.minimum_name(cont.bmap, minimum)
    if not ds:
        return ""
    parts = []
    for d in ds:
        span = (
            f"lr {d.lr_from:.4g}" if d.lr_from == d.lr_to else f"lr {d.lr_from:.4g}-{d.lr_to:.4g}"
        )
        words = P.outcome_name(cont.bmap, d.label)
        parts.append(f"{words} ({100 * d.share:.0f}% of them, {span})")
    return (
        f"{name}: from lr {ds[0].lr_from:.4g}, where its basin is gone, the starts that reached "
        f"it at lr {_last_seen(cont, minimum):.4g} go to " + ", then ".join(parts) + "."
    )


def _last_seen(cont: C.Continuation, minimum: int) -> float:
    return next(v.last_seen for v in cont.vanishing if v.minimum == minimum)


def three_rates(dims) -> list[int]:
    """The first, middle and last rates whose map has a boundary (a finite
    box dimension): the ones the report and summary quote."""
    ok = np.flatnonzero(np.isfinite(np.asarray(dims, np.float64)))
    if ok.size == 0:
        return []
    return sorted({int(ok[0]), int(ok[ok.size // 2]), int(ok[-1])})


def vanishing_words(v: C.Vanishing, name: str) -> str:
    """Where one basin vanished, against its stability limit, in a sentence."""
    limit = v.stability_limit
    if v.last_seen is None:
        return f"{name}: no start reached it at any rate of the grid."
    if v.vanished_at is None:
        where = (
            f"its stability limit 2/λ = {limit:.4g} is beyond the grid"
            if math.isfinite(limit)
            else "it has no stability limit"
        )
        return f"{name}: still reached at the largest rate, {v.last_seen:.4g} ({where})."
    ratio = v.last_seen / limit
    if v.last_seen <= limit < v.vanished_at:
        verdict = "exactly where its stability limit lies, within the grid's step"
    elif v.vanished_at <= limit:
        verdict = (
            f"before its stability limit ({100 * (1 - v.vanished_at / limit):.1f}% below it): "
            "the starts that still led there at smaller rates are thrown elsewhere first"
        )
    else:
        verdict = (
            f"after its stability limit (last seen {100 * (ratio - 1):.1f}% above it, by "
            f"{v.past_limit:,} runs over the rates beyond the limit). No run can converge "
            "there in exact arithmetic: in float32 a run that lands within rounding of the "
            "now unstable minimum can stay there (--x64 removes them), and just past the limit "
            "a period-2 orbit of small amplitude can pass the gradient test"
        )
    return (
        f"{name}: last reached at lr = {v.last_seen:.4g}, gone from lr = {v.vanished_at:.4g}; "
        f"2/λ_max = {limit:.4g}: {verdict}."
    )


def _report(out: Path, cont: C.Continuation, res: dict, panels: int) -> None:
    bmap = cont.bmap
    c = bmap.config
    rep = Report(f"Basins over the learning rate: {bmap.surface.name}")
    rep.text(
        f"Gradient descent from a {c.grid} x {c.grid} grid of starts at each of {len(cont.lrs)} "
        f"rates from {cont.lrs[0]:.3g} to {cont.lrs[-1]:.3g} (log-spaced), {c.steps} steps, "
        f"converged when |grad| < {c.tol:g}: {len(cont.lrs) * c.grid**2:,} descents as one "
        f"compiled program over (rate x start), in {bmap.timing.seconds:.1f} s "
        f"({bmap.timing.restart_steps_per_second:.3g} restart-steps/s)."
    )
    table = bmap.attractors
    if table is not None:
        st = table.settings
        rep.text(
            "The starts that end not converged are labelled by where they go: each is continued "
            f"from its end point for {st['transient']} + {st['window']} steps "
            "(gdjax.attractors.orbits) and is on a periodic orbit (periods up to "
            f"{st['max_period']}; named by the minimum it surrounds), chaotic (no period, largest "
            f"Lyapunov exponent above {st['chaos']:g} nats per step) or still moving. "
            f"{int(np.sum(table.continued)):,} runs were continued over the rates, in "
            f"{st['seconds']:.1f} s; {int(np.sum(table.slow)):,} others moved less than the "
            "period tolerance in their last step (a crawl: on peaks, its flat outer plateau) "
            "and count as moving. gdjax continuation --minima-only leaves them not converged."
        )
    rep.heading("Where each basin vanishes")
    rep.text(
        "Gradient descent cannot converge to a minimum whose Hessian has an eigenvalue "
        "λ > 2 / lr: each step multiplies the error along that direction by |1 - lr λ| > 1. "
        "So each minimum's basin must vanish at its stability limit 2 / λ_max."
    )
    reached = [v for v in cont.vanishing if v.last_seen is not None]
    if not reached:

        def share(key):
            lo, hi = (100 * float(f(cont.fraction(key))) for f in (np.min, np.max))
            return f"{lo:.0f}%" if f"{lo:.0f}" == f"{hi:.0f}" else f"{lo:.0f}-{hi:.0f}%"

        rep.text(
            "No start reached a minimum at any rate of the grid: every run ended not "
            f"converged ({share(bmap.outcome(-1))} of the starts, over the rates"
            + ("" if table is None else ", still moving; the rest on the attractors below")
            + f") or diverged ({share('diverged')}). No basin vanishes here"
            + ("; the figures show only these two outcomes." if table is None else "."),
            note=True,
        )
    rows = []
    for v in cont.vanishing:
        m = bmap.minima[v.minimum]
        rows.append(
            [
                P.minimum_name(bmap, v.minimum),
                m.value,
                max(m.eigenvalues),
                v.stability_limit,
                "-" if v.last_seen is None else v.last_seen,
                "survives" if v.vanished_at is None else v.vanished_at,
            ]
        )
    if rows:
        rep.table(
            ["minimum", "f", "λ_max", "2 / λ_max", "last reached at lr", "gone from lr"], rows
        )
    for v in cont.vanishing:
        rep.text(vanishing_words(v, P.minimum_name(bmap, v.minimum)))
    if cont.destinations:
        rep.heading("Where a vanished basin's starts go")
        for m in cont.destinations:
            rep.text(destination_words(cont, m))
        if table is None:
            rep.text(
                "Without attractor labelling (--minima-only) the starts beyond a limit are only "
                "'not converged'; by default they are labelled by the periodic orbit, chaos or "
                "motion they reach.",
                note=True,
            )
    if table is not None and len(table):
        rows = []
        for name in table.names:
            est = bmap.fractions[name]
            seen = np.flatnonzero(est.fraction > 0)
            top = int(np.argmax(est.fraction))
            rows.append(
                [
                    name,
                    float(cont.lrs[seen[0]]),
                    float(cont.lrs[seen[-1]]),
                    float(cont.lrs[top]),
                    float(est.fraction[top]),
                    f"[{est.ci_low[top]:.4f}, {est.ci_high[top]:.4f}]",
                ]
            )
        rep.table(
            [
                "attractor",
                "first seen at lr",
                "last seen at lr",
                "largest at lr",
                "fraction",
                "95% CI",
            ],
            rows,
        )
    bands = (
        "Fraction of starts reaching each minimum (stacked), not converging or diverging, "
        "against the rate; dashed: each minimum's stability limit."
        if table is None
        else "Fraction of starts reaching each minimum (stacked), each followed by the "
        "periodic orbits around it (lighter, hatched shades of its colour), then chaos "
        "(greyish tan), still moving (white) and diverged (grey), against the rate; dashed: "
        "each minimum's stability limit."
    )
    rep.figure(P.fractions_vs_rate(cont), "fractions_vs_rate", bands)
    # with attractors: the first rate past each global minimum's vanishing (its orbit) shown
    first = [
        int(np.flatnonzero(cont.lrs == ds[0].lr_from)[0])
        for m, ds in cont.destinations.items()
        if ds and m in bmap.global_minima and table is not None
    ]
    idx = P.panel_indices(len(cont.lrs), panels, include=first)
    rep.figure(
        P.map_panel(cont, idx),
        "maps",
        "The basin maps at a few rates of the grid"
        + (
            "."
            if table is None
            else ": beyond a minimum's limit its starts' orbit in a lighter shade of its colour, "
            "the orbit's points circled."
        ),
    )
    rep.animation(
        P.animation(cont), "maps", "The basin map at every rate of the grid, smallest first."
    )
    rep.heading("Fractal measures of the boundaries")
    rep.text(
        "Box-counting dimension of the boundary pixels (1 for smooth curves, up to 2 for a "
        f"boundary that fills the plane), basin entropy Sb and boundary basin entropy Sbb in "
        f"boxes of {cont.box} x {cont.box} pixels (Daza et al., Sci. Rep. 2016: Sbb > log 2 is "
        "a sufficient condition for a fractal boundary)."
        + (
            ""
            if table is None
            else " They read the boundaries between the minima's basins and the not-converged "
            "starts, all attractors of those one outcome, as the uncertainty exponent's re-run "
            "descents classify: the same numbers as with --minima-only."
        )
    )
    rep.figure(
        P.fractal_measures(cont),
        "fractal_measures",
        "The boundaries' dimension and the basin entropies against the rate.",
    )
    fr = cont.fractal
    three = three_rates(fr.box_dimension)
    unc = cont.uncertainty

    def udim(i):
        return "-" if i not in unc else unc[i].words()

    if not three:
        rep.text(
            "No map of the grid has a boundary (each has one outcome everywhere): there is "
            "no dimension or boundary entropy to measure, and no uncertainty exponent.",
            note=True,
        )
    else:
        rep.table(
            ["lr", "box dimension", "uncertainty dimension", "Sb", "Sbb", "Sbb > log 2"],
            [
                [
                    cont.lrs[i],
                    fr.box_dimension[i],
                    udim(i),
                    fr.basin_entropy[i],
                    fr.boundary_entropy[i],
                    "yes" if fr.boundary_entropy[i] > math.log(2) else "no",
                ]
                for i in three
            ],
        )
    if unc:
        n = next(iter(unc.values())).n
        rep.text(
            "The uncertainty dimension does not read pixels: at each of these rates, descents "
            f"are re-run from {n:,} random starts per perturbation size ε and from x ± ε u (u a "
            "random direction); a start is uncertain when the three do not reach the same "
            "outcome. The fraction of uncertain starts scales as ε^α, and the boundary's "
            "dimension is 2 - α (Grebogi et al. 1983), 1 for smooth boundaries. It is fitted "
            f"where at most {100 * fractal.FIT_MAX_FRACTION:g}% of starts are uncertain, by "
            "the maximum likelihood of the counts (sizes with no uncertain start included). "
            "A dimension is given only where the sample resolves one: uncertain starts at "
            f"{fractal.MIN_UNCERTAIN_SIZES} fitted sizes or more, one power law (χ²/dof at "
            f"most {fractal.POWER_LAW_CHI2:g}, and one line per half of the sizes not better "
            f"at p < {fractal.BEND_P:g}), and a fraction that falls with ε (slope 0 rejected "
            f"at p < {fractal.FLAT_P:g}, and the smaller half of the sizes no likelier under "
            "a flat fraction than under the power law); elsewhere the table says why not."
        )
        rep.figure(
            P.uncertainty_fits(cont),
            "uncertainty",
            uncertainty_caption("starts"),
        )
    rep.heading("Settings")
    rep.code(res["command"])
    rep.write(out)


def _outcome_words(key: str) -> str:
    return f"min {key}" if key.isdigit() else key.replace("_", " ")


def summary(res: dict) -> str:
    lrs = res["lrs"]
    lines = [f"continuation: {len(lrs)} rates from {lrs[0]:.3g} to {lrs[-1]:.3g}"]
    for i, v in res["vanishing"].items():
        limit = res["stability_limits"][i]
        gone = "survives" if v["vanished_at"] is None else f"gone from {v['vanished_at']:.4g}"
        seen = "never reached" if v["last_seen"] is None else f"last at {v['last_seen']:.4g}"
        lim = "none" if limit is None else f"{limit:.4g}"
        lines.append(f"  min {i}: {seen}, {gone}; 2/lambda_max = {lim}")
        went = res.get("destinations", {}).get(i, [])
        if went:
            lines.append(
                "    then its starts go to "
                + ", then ".join(
                    f"{_outcome_words(d['outcome'])} ({100 * d['share']:.0f}%, lr "
                    + (
                        f"{d['lr_from']:.4g})"
                        if d["lr_from"] == d["lr_to"]
                        else f"{d['lr_from']:.4g}-{d['lr_to']:.4g})"
                    )
                    for d in went
                )
            )
    dims = np.asarray(
        [np.nan if d is None else d for d in res["fractal"]["box_dimension"]], np.float64
    )
    idx = three_rates(dims)
    if idx:
        lines.append(
            "  box dimension of the boundaries: "
            + ", ".join(f"{dims[i]:.3f} at lr {lrs[i]:.3g}" for i in idx)
        )
    unc = res["fractal"].get("uncertainty", [])
    if unc:  # every measured rate, the ones with nothing to fit too
        lines.append(
            "  uncertainty dimension (re-run descents): "
            + ", ".join(
                f"{fractal.Uncertainty.from_json(u).words()} at lr {u['lr']:.3g}" for u in unc
            )
        )
    return "\n".join(lines)
