"""Lesson C: local minima on peaks: basins of attraction, restarts and the best-of-k curve.

Maps which minimum gradient descent reaches from every start of a grid over
the peaks surface, finds every critical point (minima, saddles, maxima),
measures basin fractions with 95% intervals, and shows how the chance that
the best of k random restarts reaches a global minimum grows with k.
``gdjax basins`` (:mod:`gdjax.cli.basins`) runs this study at any size, with
any rule.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import gdjax
from gdjax import basins, plot, runs
from gdjax._progress import Progress
from gdjax.descent import Trajectory
from gdjax.maps.critical import claim_radius
from gdjax.plot.basins import NOISE, value_scale, value_text
from gdjax.report import Report, versions, write_json
from gdjax.runs import command_line

KS = (1, 2, 3, 5, 10, 20, 50, 100)
FIGURE_BYTES_PER_START = 96  # a grid's maps as images (measured: docs/basins.md)
DEFAULT_GRID = 256
SHOWN_PATHS = 12  # full trajectories drawn on the map


class BasinStudy(NamedTuple):
    """Lesson C's numbers: the basin map, the critical points, a few full
    trajectories and the best-of-k curve (exact and simulated)."""

    bmap: basins.BasinMap
    critical: list[basins.CriticalPoint]
    trajs: Trajectory
    ks: tuple[int, ...]
    exact: np.ndarray
    simulated: np.ndarray
    seed: int


def check_size(config: basins.MapConfig) -> None:
    """Refuses, before any compute, a map (with its figures) that cannot fit in memory."""
    config.check_memory(FIGURE_BYTES_PER_START if config.grid is not None else 0)


def config(surface: str | gdjax.Surface = "peaks", *, x64: bool = False, **options):
    """The study's :class:`gdjax.basins.MapConfig` (a :data:`DEFAULT_GRID`
    grid unless ``grid`` or ``starts`` is given; float64 with ``x64``)."""
    if options.get("grid") is None and options.get("starts") is None:
        options["grid"] = DEFAULT_GRID
    with jax.enable_x64(x64):
        return basins.MapConfig(surface, **options)


def compute(
    config: basins.MapConfig,
    *,
    seed: int = 0,
    progress: Progress | None = None,
) -> BasinStudy:
    """Maps the basins of ``config`` (random starts drawn from ``seed``;
    with ``config.attractors``, the not-converged runs' attractors labelled
    too: :mod:`gdjax.maps.orbit_labels`), finds the critical
    points, descends a few starts in full and measures the best-of-k curve.
    ``progress`` is :func:`gdjax.basins.run_map`'s."""
    check_size(config)
    with jax.enable_x64(config.dtype == "float64"):
        bmap = basins.run_map(config, key=jax.random.key(seed), progress=progress)
        crit = basins.critical_points(config.surface, domain=bmap.domain)
        # a few full trajectories for the map (not for every start)
        shown = bmap.starts[shown_starts(bmap)]
        surf, steps, lr, rule = config.surface, config.steps, config.lr, config.rule
        trajs = jax.vmap(lambda x: gdjax.descend(surf, x, steps=steps, lr=lr, rule=rule))(
            jnp.asarray(shown)
        )
    exact = basins.best_of_k(bmap.p_global[0], KS)
    simulated = basins.simulate_best_of_k(
        bmap.labels, KS, key=jax.random.key(seed + 1), targets=bmap.global_minima or (-3,)
    )
    return BasinStudy(bmap, crit, trajs, KS, exact, simulated, seed)


def shown_starts(bmap: basins.BasinMap) -> np.ndarray:
    """The indices of the :data:`SHOWN_PATHS` starts whose full paths the map
    draws: on a grid, a 4 x 3 lattice of its cells away from the edges (its
    first and last starts are corners of the box, where a flat surface such as
    peaks does not move them: a lone dot, no path); else evenly spaced."""
    n = len(bmap.starts)
    if bmap.grid is None:
        return np.linspace(0, n - 1, min(SHOWN_PATHS, n)).astype(int)
    rows, cols = bmap.grid
    nx, ny = 4, SHOWN_PATHS // 4
    xs = ((np.arange(nx) + 0.5) * cols / nx).astype(int)
    ys = ((np.arange(ny) + 0.5) * rows / ny).astype(int)
    return np.unique((ys[:, None] * cols + xs[None, :]).ravel())


def to_json(study: BasinStudy) -> dict:
    """basins.json's content."""
    bmap = study.bmap
    return {
        **dataclasses.asdict(bmap.config),
        "seed": study.seed,
        "minima": [m.to_json() for m in bmap.minima],
        "global_minima": list(bmap.global_minima),
        "p_global": bmap.p_global._asdict(),
        "critical_points": [c.to_json() for c in study.critical],
        "fractions": bmap.fractions.to_json(),
        **(
            {}
            if bmap.attractors is None
            else {"attractors": bmap.attractors.to_json(bmap.fractions)}
        ),
        "best_of_k": {
            "k": list(study.ks),
            "exact": study.exact.tolist(),
            "simulated": study.simulated.tolist(),
        },
        "timing": bmap.timing._asdict(),
        "versions": versions(),
        "command": command_line(),
    }


def write(out: str | Path, study: BasinStudy) -> dict:
    """Writes basins.json, ``labels.npy`` and ``converged_step.npy`` (every
    start's minimum and convergence step, shaped (grid, grid) for a map, as a
    tiled map writes them), the figures and report.html into ``out``;
    returns the JSON's content."""
    out = Path(out)
    results = to_json(study)
    write_json(out / "basins.json", results)
    _write_npy(out / "labels.npy", _shaped(study.bmap, study.bmap.labels, np.int8))
    _write_npy(out / "converged_step.npy", _shaped(study.bmap, study.bmap.converged_step, np.int32))
    _report(out, study.bmap, study.critical, study.trajs, results)
    return results


def _shaped(bmap: basins.BasinMap, values: np.ndarray, dtype) -> np.ndarray:
    values = np.asarray(values)
    if values.size and np.abs(values).max() > np.iinfo(dtype).max:
        dtype = np.int32
    if bmap.grid is not None:
        values = values.reshape(values.shape[:-1] + bmap.grid)
    return values.astype(dtype)


def _write_npy(path: Path, array: np.ndarray) -> Path:
    """``array`` as a ``.npy`` file, written atomically."""
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return runs.write_bytes(path, buf.getvalue())


def run(out: Path, *, seed: int = 0, progress=None, **options) -> dict:
    """:func:`compute` of :func:`config` ``(**options)``, then :func:`write` into ``out``."""
    return write(out, compute(config(**options), seed=seed, progress=progress))


def _report(out, bmap, crit, trajs, res) -> None:
    rep = Report(f"Basins of attraction: {bmap.surface.name}")
    rep.text(
        f"{res['starts']:,} starts ({res['mode']}), {res['rule']}, "
        f"{res['steps']} steps, tol {res['tol']:g}, {res['devices']} device(s), "
        f"{res['timing']['seconds']:.1f} s "
        f"({res['timing']['restart_steps_per_second']:.3g} restart-steps/s)."
    )
    rep.text(outcome(res), note=True)
    if bmap.attractors is not None:
        rep.text(attractor_words(res))
    white = "white: not converged" if bmap.attractors is None else "white: moving"
    if bmap.grid is not None:
        rep.figure(
            plot.basin_map(bmap, crit, trajs),
            "basin_map",
            f"Each start coloured by the minimum it reaches; {white}"
            + (
                " (on peaks, starts on the flat outer plateau crawl and never settle)"
                if bmap.surface.name == "peaks"
                else "; grey: diverged"
            )
            + _attractor_caption(bmap)
            + f"; black: {len(trajs.params)} example paths, each from the dot at its start.",
        )
        rep.figure(
            plot.convergence_time_map(bmap), "convergence_time", "How many steps each start needs."
        )
    else:
        shown = min(len(bmap.labels), 20000)
        rep.figure(
            plot.basin_scatter(bmap, crit, max_points=20000),
            "basin_scatter",
            f"{shown:,} of the random starts, each coloured by the minimum it reaches; "
            f"white with a black edge: {'not converged' if bmap.attractors is None else 'moving'}"
            f", grey: diverged{_attractor_caption(bmap)}.",
        )
    scale = value_scale([m.value for m in bmap.minima] + [c.value for c in crit])
    rep.heading("Minima found (sorted by value; 0 is the lowest; * global)")
    rep.text(
        f"Values f of the surface here and below to 4 significant digits; |f| up to {NOISE:g} "
        f"x {scale:.4g} (the largest |f| at a critical point, or 1) reads 0: float64 "
        "round-off of Newton's refinement (basins.json holds every value as computed)."
    )
    rep.table(
        ["label", "location", "f", "Hessian eigenvalues", "basin fraction", "95% CI"],
        [
            [
                f"{i}*" if i in bmap.global_minima else i,
                point(m.location),
                value_text(m.value, scale),
                point(m.eigenvalues),
                bmap.fractions[str(i)][0],
                f"[{bmap.fractions[str(i)][1]:.4f}, {bmap.fractions[str(i)][2]:.4f}]",
            ]
            for i, m in enumerate(bmap.minima)
        ]
        + [
            [
                k,
                "",
                "",
                "",
                bmap.fractions[k][0],
                f"[{bmap.fractions[k][1]:.4f}, {bmap.fractions[k][2]:.4f}]",
            ]
            for k in (*_attractor_keys(bmap), bmap.outcome(-1), "diverged")
        ],
    )
    rep.heading("Critical points")
    rep.text(
        "Found by Newton's method from a grid of starts over the domain; a minimum that the "
        "runs reached shows its label and the values of the table above."
    )
    rows = []
    for c in crit:
        label = matching_minimum(bmap, c)
        shown = c if label is None else bmap.minima[label]
        rows.append(
            [
                c.kind if label is None else f"min (label {label})",
                point(shown.location),
                value_text(shown.value, scale),
                point(shown.eigenvalues),
            ]
        )
    rep.table(["kind", "location", "f", "Hessian eigenvalues"], rows)
    rep.heading("Random restarts")
    rep.text(
        f"A restart succeeds when it reaches a global minimum (labels "
        f"{', '.join(map(str, bmap.global_minima)) or 'none found'}); p = "
        f"{res['p_global']['fraction']:.4g}."
    )
    bk = res["best_of_k"]
    rep.figure(
        plot.best_of_k_curve(bk["k"], bk["exact"], bk["simulated"]),
        "best_of_k",
        "Restarting from random points and keeping the best: the chance of reaching "
        "a global minimum grows as 1 - (1 - p)^k.",
    )
    rep.table(
        ["k", "exact", "simulated"],
        [[k, e, s] for k, e, s in zip(bk["k"], bk["exact"], bk["simulated"], strict=True)],
    )
    rep.heading("Command and configuration")
    rep.code(res["command"])
    rep.code(configuration(res))
    rep.write(out)


def _attractor_keys(bmap) -> tuple[str, ...]:
    return () if bmap.attractors is None else bmap.attractors.names


def _attractor_caption(bmap) -> str:
    """What the basin map's colours of the attractors mean, for its caption."""
    table = bmap.attractors
    if table is None:
        return ""
    words = (
        "; a lighter shade of a minimum's colour: the starts that end on a periodic orbit "
        "around it (its points circled in the minimum's colour)"
    )
    if "chaotic" in table.names:
        words += "; greyish tan: chaotic (white dots: a sample of the chaotic runs' points)"
    if not len(table):
        words += "; no not-converged start reached a periodic orbit or chaos"
    return words


def attractor_words(res: dict) -> str:
    """What the not-converged starts reach, in sentences (basins.json with
    attractors)."""
    att = res["attractors"]
    fr = res["fractions"]
    settings = att["settings"]
    parts = [
        f"{row['name']}: {100 * row['fraction']:.2f}% "
        f"[{100 * row['ci_low']:.2f}, {100 * row['ci_high']:.2f}]"
        + (
            ""
            if row["lyapunov"] is None
            else f" (Lyapunov exponent {row['lyapunov']:.3g} per step)"
        )
        for row in att["table"]
    ]
    moving = fr["moving"]
    head = (
        f"Attractors of the starts that did not converge: {att['continued']:,} of them were "
        f"continued from their end points for {settings['transient']} + {settings['window']} "
        f"steps (gdjax.attractors.orbits; periods up to {settings['max_period']}, chaos above "
        f"{settings['chaos']:g} nats per step); {att['slow']:,} moved less than the period "
        f"tolerance in their last step and count as moving ({settings['seconds']:.1f} s)."
    )
    found = "; ".join(parts) if parts else "no periodic orbit and no chaos"
    return (
        f"{head} They reach: {found}; still moving: {100 * moving['fraction']:.2f}% "
        f"[{100 * moving['ci_low']:.2f}, {100 * moving['ci_high']:.2f}]."
    )


def configuration(res: dict) -> str:
    """basins.json's configuration for people, one ``key: value`` a line;
    what was not set (None, an empty batch) is left out: a map of random
    starts has no grid, and says its starts."""
    skip = (
        "minima",
        "critical_points",
        "fractions",
        "attractors",
        "best_of_k",
        "versions",
        "command",
    )
    return "\n".join(
        f"{k}: {short(v)}"
        for k, v in res.items()
        if k not in skip and v is not None and not (isinstance(v, list | dict) and not v)
    )


def matching_minimum(bmap: basins.BasinMap, c: basins.CriticalPoint) -> int | None:
    """The label of the map's minimum that the critical point ``c`` is (a
    minimum within a tenth of the claim radius, the distance within which
    two refinements are one point), or None."""
    if c.kind != "min":
        return None
    radius = claim_radius(bmap.domain) / 10
    for i, m in enumerate(bmap.minima):
        if np.hypot(*np.subtract(c.location, m.location)[:2]) <= radius:
            return i
    return None


def outcome(res: dict) -> str:
    """One sentence on the outcome, with the global minima named."""
    fr = res["fractions"]
    stuck = not_converged(res)
    conv = 1.0 - fr["diverged"]["fraction"] - stuck
    if not res["minima"] or conv == 0 and res.get("attractors"):
        if fr["diverged"]["fraction"] == 1.0:
            return "Every start diverged: no minimum was reached (try a smaller lr)."
        return (
            "No start reached a minimum "
            f"({100 * stuck:.1f}% not converged, "
            f"{100 * fr['diverged']['fraction']:.1f}% diverged): try more steps or another lr"
            + (
                "; beyond a minimum's stability limit 2/λ_max its starts go to the attractors "
                "below."
                if res.get("attractors")
                else "."
            )
        )
    glob = res["global_minima"]
    f_min = value_text(res["minima"][glob[0]]["value"], json_scale(res))
    which = ", ".join(str(i) for i in glob)
    tie = (
        f"Minima {which} are tied for the lowest value (f = {f_min}, within a relative "
        f"{res['global_tol']:g}) and all count as global"
        if len(glob) > 1
        else f"Minimum {which} (f = {f_min}) is the global minimum"
    )
    pg = res["p_global"]
    return (
        f"{tie}: {100 * pg['fraction']:.2f}% of starts reach one "
        f"[{100 * pg['ci_low']:.2f}, {100 * pg['ci_high']:.2f}]; "
        f"{100 * conv:.2f}% reach some minimum."
    )


def not_converged(res: dict) -> float:
    """The fraction of starts that did not converge (with attractors: moving,
    on an orbit or chaotic) of a basins.json."""
    fr = res["fractions"]
    if not res.get("attractors"):
        return fr["not_converged"]["fraction"]
    return fr["moving"]["fraction"] + sum(row["fraction"] for row in res["attractors"]["table"])


def json_scale(res: dict) -> float:
    """:func:`gdjax.plot.basins.value_scale` of a basins.json's minima and critical points."""
    return value_scale(
        [m["value"] for m in res["minima"]] + [c["value"] for c in res.get("critical_points", ())]
    )


def short(v):
    """A config value for people: floats to 6 significant digits, dicts flattened."""
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, dict):
        return ", ".join(f"{k} {short(x)}" for k, x in v.items())
    if isinstance(v, list):
        return "[" + ", ".join(str(short(x)) for x in v) + "]"
    return v


def point(p) -> str:
    """A point in words, 4 significant digits per coordinate."""
    return "(" + ", ".join(f"{v:.4g}" for v in p) + ")"


def summary(res: dict) -> str:
    lines = [
        f"Basins of {res['surface']}: {res['starts']:,} starts x {res['steps']} steps in "
        f"{res['timing']['seconds']:.1f} s "
        f"({res['timing']['restart_steps_per_second']:.3g} restart-steps/s)"
    ]
    scale = json_scale(res)
    for i, m in enumerate(res["minima"]):
        f = res["fractions"][str(i)]
        star = " (global)" if i in res["global_minima"] else ""
        lines.append(
            f"  min {i}{star} at ({m['location'][0]:.4f}, {m['location'][1]:.4f}), "
            f"f = {value_text(m['value'], scale)}: {100 * f['fraction']:.2f}% "
            f"[{100 * f['ci_low']:.2f}, {100 * f['ci_high']:.2f}]"
        )
    for row in (res.get("attractors") or {}).get("table", ()):
        lines.append(
            f"  {row['name']}: {100 * row['fraction']:.2f}% "
            f"[{100 * row['ci_low']:.2f}, {100 * row['ci_high']:.2f}]"
        )
    moving = "moving" if res.get("attractors") else "not_converged"
    for k in (moving, "diverged"):
        f = res["fractions"][k]
        lines.append(
            f"  {k.replace('_', ' ')}: {100 * f['fraction']:.2f}% "
            f"[{100 * f['ci_low']:.2f}, {100 * f['ci_high']:.2f}]"
        )
    kinds = [c["kind"] for c in res["critical_points"]]
    lines.append(
        f"  critical points: {kinds.count('min')} min, {kinds.count('saddle')} "
        f"saddle, {kinds.count('max')} max"
    )
    bk = res["best_of_k"]
    lines.append(
        "  P(best of k reaches a global min): "
        + ", ".join(f"k={k}: {e:.3f}" for k, e in zip(bk["k"], bk["exact"], strict=True))
    )
    if "files" in res:  # a map streamed to disk (gdjax.tiled)
        lines.append(
            "  on disk: " + ", ".join(res["files"].values()) + " (np.load(path, mmap_mode='r'))"
        )
    return "\n".join(lines)
