"""Lesson C: local minima on peaks: basins of attraction, restarts and the best-of-k curve.

Maps which minimum gradient descent reaches from every start of a grid over
the peaks surface, finds every critical point (minima, saddles, maxima),
measures basin fractions with 95% intervals, and shows how the chance that
the best of k random restarts reaches a global minimum grows with k.
Also the engine behind ``gdjax basins``.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

import gdjax
from gdjax import basins, plot
from gdjax import schedules as S
from gdjax.cli import _common
from gdjax.report import Report, versions, write_json

KS = (1, 2, 3, 5, 10, 20, 50, 100)
OPTIMIZERS = (
    "sgd",
    "adam",
    "adamw",
    "nadam",
    "adamax",
    "amsgrad",
    "radam",
    "adabelief",
    "adagrad",
    "adadelta",
    "rmsprop",
    "lion",
    "lamb",
    "novograd",
    "yogi",
)
"""The optax optimizers ``--optimizer`` accepts: factories whose only required
argument is the learning rate (tested on a parabola)."""
FIGURE_BYTES_PER_START = 96  # a grid's maps as images (measured: see basins.memory_needed)
SHARDS = True  # map_basins shards its starts: one CPU device per core (_common.prepare)


def add_arguments(parser: argparse.ArgumentParser, *, default_grid: int = 256) -> None:
    p = _common
    parser.add_argument("--surface", default="peaks", help="surface name (default: peaks)")
    parser.add_argument(
        "--grid",
        type=p.positive_int("--grid"),
        default=None,
        help=f"n x n grid of starts (default: {default_grid} unless --starts)",
    )
    parser.add_argument(
        "--starts",
        type=p.positive_int("--starts"),
        default=None,
        help="N uniform random starts instead of a grid",
    )
    parser.add_argument(
        "--lr",
        type=p.positive_float("--lr"),
        default=0.01,
        help="learning rate (default: %(default)s)",
    )
    parser.add_argument(
        "--steps",
        type=p.positive_int("--steps"),
        default=1000,
        help="descent steps (default: %(default)s)",
    )
    parser.add_argument(
        "--tol",
        type=p.positive_float("--tol"),
        default=1e-3,
        help="converged: |grad| < tol at the last step (default: %(default)s)",
    )
    parser.add_argument(
        "--optimizer",
        default=None,
        choices=OPTIMIZERS,
        metavar="NAME",
        help=f"an optax optimizer, lr = --lr: {', '.join(OPTIMIZERS)}",
    )
    parser.add_argument("--momentum", type=float, default=None, help="momentum for --optimizer sgd")
    parser.add_argument(
        "--schedule",
        default=None,
        help="a schedule, NAME[:key=value,...], base_lr = --lr; e.g. "
        "cosine:max_steps=1000,final_lr=0.001",
    )
    parser.add_argument(
        "--domain",
        type=float,
        nargs=4,
        metavar=("X0", "X1", "Y0", "Y1"),
        default=None,
        help="box of starts (default: the surface's)",
    )
    parser.add_argument(
        "--bound",
        type=p.positive_float("--bound"),
        default=None,
        help="a run that ends beyond this |coordinate| without settling counts as diverged "
        "(default: 1e10; a run that settles, |grad| < tol, never does)",
    )
    parser.add_argument(
        "--global-tol",
        type=p.positive_float("--global-tol"),
        default=1e-6,
        help="minima within this (relative to max(1, |f_min|)) of the lowest value count "
        "as global (default: %(default)s)",
    )
    parser.add_argument("--x64", action="store_true", help="compute in float64")
    parser.add_argument(
        "--chunk-size",
        type=p.positive_int("--chunk-size"),
        default=None,
        help="starts per compiled call (default: 2^18 on a CPU, 2^22 on an accelerator)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(_default_grid=default_grid)


def parse_rule(lr: float, optimizer: str | None, momentum: float | None, schedule: str | None):
    """Turns the CLI's rule options into (rule, lr) for the engine."""
    if optimizer and schedule:
        raise ValueError("give --optimizer or --schedule, not both")
    if momentum is not None and optimizer != "sgd":
        raise ValueError("--momentum goes with --optimizer sgd")
    if optimizer is not None:
        if optimizer not in OPTIMIZERS:
            raise ValueError(
                f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}"
            )
        kwargs = {} if momentum is None else {"momentum": momentum}
        return gdjax.optimizer(getattr(optax, optimizer), **kwargs), lr
    if schedule is not None:
        if not schedule.strip():
            raise ValueError("--schedule is empty; give NAME[:key=value,...], e.g. cosine")
        return S.parse_spec(schedule, base_lr=lr), None
    return "fixed", lr


def run(
    out: Path,
    *,
    seed: int = 0,
    surface: str = "peaks",
    grid: int | None = None,
    starts: int | None = None,
    lr: float = 0.01,
    steps: int = 1000,
    tol: float = 1e-3,
    optimizer: str | None = None,
    momentum: float | None = None,
    schedule: str | None = None,
    domain=None,
    bound: float | None = None,
    global_tol: float = 1e-6,
    x64: bool = False,
    chunk_size: int | None = None,
    no_progress: bool = False,
    _default_grid: int = 256,
) -> dict:
    surf = gdjax.surfaces.get(surface)  # clear error before any compute
    rule, rate = parse_rule(lr, optimizer, momentum, schedule)
    if grid is None and starts is None:
        grid = _default_grid
    dom = None if domain is None else ((domain[0], domain[1]), (domain[2], domain[3]))
    with jax.enable_x64(x64):
        # refused before any compute (and before the progress bar draws)
        basins.check_memory(
            grid * grid if grid else starts,
            jnp.result_type(float),
            extra_per_start=FIGURE_BYTES_PER_START if grid else 0,
        )
        bar = (
            None
            if no_progress
            else tqdm(
                total=(grid * grid if grid else starts),
                unit="start",
                unit_scale=True,
                desc="basins",
            )
        )

        def progress(done, total, seconds):
            if bar is None:
                return
            if done == 0:  # compiled: restart the clock, so the rate is the descent's
                bar.reset(total=total)
            bar.update(done - bar.n)
            if done == total:  # closed before labelling, which takes a few seconds
                bar.close()

        try:
            bmap = basins.map_basins(
                surf,
                grid=grid,
                starts=starts,
                key=jax.random.key(seed),
                steps=steps,
                lr=rate,
                rule=rule,
                tol=tol,
                domain=dom,
                bound=bound,
                global_tol=global_tol,
                chunk_size=chunk_size,
                progress=progress,
            )
        finally:
            if bar is not None:
                bar.close()  # before any message, Ctrl-C's included
        crit = basins.critical_points(surf, domain=bmap.domain)
        # a few full trajectories for the map (not for every start)
        shown = bmap.starts[np.linspace(0, len(bmap.starts) - 1, 12).astype(int)]
        trajs = jax.vmap(lambda x: gdjax.descend(surf, x, steps=steps, lr=rate, rule=rule))(
            jnp.asarray(shown)
        )
    p_global = bmap.p_global[0]
    exact = basins.best_of_k(p_global, KS)
    simulated = basins.simulate_best_of_k(
        bmap.labels, KS, key=jax.random.key(seed + 1), targets=bmap.global_minima or (-3,)
    )
    results = {
        **dataclasses.asdict(bmap.config),
        "seed": seed,
        "minima": [m.to_json() for m in bmap.minima],
        "global_minima": list(bmap.global_minima),
        "p_global": bmap.p_global._asdict(),
        "critical_points": [c.to_json() for c in crit],
        "fractions": bmap.fractions.to_json(),
        "best_of_k": {"k": list(KS), "exact": exact.tolist(), "simulated": simulated.tolist()},
        "timing": bmap.timing._asdict(),
        "versions": versions(),
        "command": _common.command_line(),
    }
    write_json(out / "basins.json", results)
    _report(out, bmap, crit, trajs, results)
    return results


def _report(out, bmap, crit, trajs, res) -> None:
    rep = Report(f"Basins of attraction: {bmap.surface.name}")
    rep.text(
        f"{res['starts']:,} starts ({res['mode']}), {res['rule']}, "
        f"{res['steps']} steps, tol {res['tol']:g}, {res['devices']} device(s), "
        f"{res['timing']['seconds']:.1f} s "
        f"({res['timing']['restart_steps_per_second']:.3g} restart-steps/s)."
    )
    rep.text(_outcome(res), note=True)
    if bmap.grid is not None:
        rep.figure(
            plot.basin_map(bmap, crit, trajs),
            "basin_map",
            "Each start coloured by the minimum it reaches; white: not converged"
            + (
                " (on peaks, starts on the flat outer plateau crawl and never settle)."
                if bmap.surface.name == "peaks"
                else "; grey: diverged."
            ),
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
            "white: not converged, grey: diverged.",
        )
    rep.heading("Minima found (sorted by value; 0 is the lowest; * global)")
    rep.table(
        ["label", "location", "f", "Hessian eigenvalues", "basin fraction", "95% CI"],
        [
            [
                f"{i}*" if i in bmap.global_minima else i,
                _pt(m.location),
                m.value,
                _pt(m.eigenvalues),
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
            for k in ("not_converged", "diverged")
        ],
    )
    rep.heading("Critical points")
    rep.table(
        ["kind", "location", "f", "Hessian eigenvalues"],
        [[c.kind, _pt(c.location), c.value, _pt(c.eigenvalues)] for c in crit],
    )
    rep.heading("Random restarts (lesson C)")
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
    skip = ("minima", "critical_points", "fractions", "best_of_k", "versions", "command")
    rep.code("\n".join(f"{k}: {_short(v)}" for k, v in res.items() if k not in skip))
    rep.write(out)


def _outcome(res: dict) -> str:
    """One sentence on the outcome, with the global minima named."""
    fr = res["fractions"]
    conv = 1.0 - fr["diverged"]["fraction"] - fr["not_converged"]["fraction"]
    if not res["minima"]:
        if fr["diverged"]["fraction"] == 1.0:
            return "Every start diverged: no minimum was reached (try a smaller lr)."
        return (
            "No start reached a minimum "
            f"({100 * fr['not_converged']['fraction']:.1f}% not converged, "
            f"{100 * fr['diverged']['fraction']:.1f}% diverged): try more steps or another lr."
        )
    glob = res["global_minima"]
    f_min = res["minima"][glob[0]]["value"]
    which = ", ".join(str(i) for i in glob)
    tie = (
        f"Minima {which} are tied for the lowest value (f = {f_min:.6g}, within a relative "
        f"{res['global_tol']:g}) and all count as global"
        if len(glob) > 1
        else f"Minimum {which} (f = {f_min:.6g}) is the global minimum"
    )
    pg = res["p_global"]
    return (
        f"{tie}: {100 * pg['fraction']:.2f}% of starts reach one "
        f"[{100 * pg['ci_low']:.2f}, {100 * pg['ci_high']:.2f}]; "
        f"{100 * conv:.2f}% reach some minimum."
    )


def _short(v):
    """A config value for people: floats to 6 significant digits, dicts flattened."""
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_short(x)}" for k, x in v.items())
    if isinstance(v, list):
        return "[" + ", ".join(str(_short(x)) for x in v) + "]"
    return v


def _pt(p) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in p) + ")"


def summary(res: dict) -> str:
    lines = [
        f"Basins of {res['surface']}: {res['starts']:,} starts x {res['steps']} steps in "
        f"{res['timing']['seconds']:.1f} s "
        f"({res['timing']['restart_steps_per_second']:.3g} restart-steps/s)"
    ]
    for i, m in enumerate(res["minima"]):
        f = res["fractions"][str(i)]
        star = " (global)" if i in res["global_minima"] else ""
        lines.append(
            f"  min {i}{star} at ({m['location'][0]:.4f}, {m['location'][1]:.4f}), "
            f"f = {m['value']:.4f}: {100 * f['fraction']:.2f}% "
            f"[{100 * f['ci_low']:.2f}, {100 * f['ci_high']:.2f}]"
        )
    for k in ("not_converged", "diverged"):
        lines.append(f"  {k}: {100 * res['fractions'][k]['fraction']:.2f}%")
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
    return "\n".join(lines)
