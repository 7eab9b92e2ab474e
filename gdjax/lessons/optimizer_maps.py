"""The ``gdjax optimizers`` command: optimizers side by side on the same starts.

Runs gradient descent, momentum, Nesterov, Adam and RMSprop (or a subset;
rates and settings as options) from the same grid of starts, as one compiled
program over (optimizer x start): one family of updates whose settings are
data (gdjax.optimizers). Draws their basin maps side by side, measures the
fraction reaching the global minimum for each and the pairwise agreement
(the fraction of starts that reach the same minimum under both), and answers
lesson C's claim that momentum helps escape shallow minima with the counts.
With --attractors (off by default, as for gdjax basins), the starts that end
not converged and not near a minimum are labelled by where they go: a
periodic orbit around a minimum, chaos, or still moving (each continued from
its end point with its own optimizer and a fresh optimizer state).
Writes optimizers.json, the figures and report.html.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from gdjax import _registry, basins
from gdjax import optimizers as O
from gdjax.plot import optimizers as P
from gdjax.plot.continuation import minimum_name
from gdjax.report import Report, versions, write_json
from gdjax.runs import command_line

__all__ = ["build_presets", "compute", "escapes", "run", "summary", "to_json", "write"]


def _rates(lr) -> tuple[float | None, dict[str, float]]:
    """``lr`` as (the rate of every optimizer, each named one's rate): a
    number, a mapping name -> rate, or the CLI's ``--lr`` items, pairs
    (None or a name, rate)."""
    if lr is None:
        return None, {}
    if isinstance(lr, Mapping):
        return None, {str(k): float(v) for k, v in lr.items()}
    if not isinstance(lr, list | tuple):
        return float(lr), {}
    every = [v for name, v in lr if name is None]
    if len(every) > 1:
        raise ValueError(f"give --lr VALUE once (the rate of every optimizer), got {len(every)}")
    named: dict[str, float] = {}
    for name, v in lr:
        if name is None:
            continue
        if name in named:
            raise ValueError(f"--lr {name}=... is given twice")
        named[name] = float(v)
    return (every[0] if every else None), named


def build_presets(
    optimizers, lr=None, momentum=None, b1=None, b2=None, decay=None
) -> list[O.Preset]:
    """The CLI's options as presets; a setting no chosen optimizer has is
    refused. ``lr``: see :func:`compute`."""
    lr, rates = _rates(lr)
    for name in rates:
        if name not in optimizers:
            raise ValueError(f"--lr {name}=... but {name} is not in --optimizers")
    owners = {
        key: tuple(n for n in O.PRESETS if key in _registry.OPTIMIZERS[n].family_settings)
        for key in ("momentum", "b1", "b2", "decay")
    }
    given = {"momentum": momentum, "b1": b1, "b2": b2, "decay": decay}
    for key, value in given.items():
        if value is not None and not set(owners[key]) & set(optimizers):
            raise ValueError(f"--{key} goes with {' or '.join(owners[key])} in --optimizers")
    out = []
    for name in optimizers:
        mine = {k: v for k, v in given.items() if v is not None and name in owners[k]}
        out.append(O.preset(name, rates.get(name, lr), **mine))
    return out


def compute(
    surface: str = "peaks",
    *,
    grid: int = 512,
    steps: int = 2000,
    tol: float = 1e-3,
    optimizers=None,
    lr=None,
    momentum: float | None = None,
    b1: float | None = None,
    b2: float | None = None,
    decay: float | None = None,
    radius: float | None = None,
    domain=None,
    attractors=False,
    progress=None,
) -> O.Comparison:
    """Validates (before any compute), then runs every optimizer from the
    same grid of starts (:func:`gdjax.optimizers.compare`). ``lr``: one
    rate for every optimizer, a mapping ``{name: rate}``, or pairs
    ``(name or None, rate)`` as ``--lr`` gives them (default: each
    optimizer's own). ``attractors``: label where the not-converged runs
    go (True or an AttractorSettings; :func:`gdjax.optimizers.compare`)."""
    presets = build_presets(list(optimizers or O.PRESETS), lr, momentum, b1, b2, decay)
    dom = None if domain is None else ((domain[0], domain[1]), (domain[2], domain[3]))
    # one configuration (its rate and rule become the presets'): refusals before compute
    config = basins.MapConfig(
        surface, grid=grid, steps=steps, tol=tol, domain=dom, attractors=attractors
    )
    basins.check_memory(grid * grid, sets=len(presets))
    return O.compare(config, presets, radius=radius, attractors=attractors, progress=progress)


def write(out: str | Path, cmp: O.Comparison) -> dict:
    """Writes optimizers.json, the figures and report.html into ``out``;
    returns the JSON's content."""
    out = Path(out)
    res = to_json(cmp)
    write_json(out / "optimizers.json", res)
    _report(out, cmp, res)
    return res


def run(out: Path, *, seed: int = 0, **options) -> dict:
    """:func:`compute` with ``options``, then :func:`write`. (``seed`` is
    unused: a grid has no randomness.)"""
    del seed
    return write(out, compute(**options))


def _one(fr: basins.Fractions, i: int) -> basins.Fractions:
    return basins.Fractions(fr.outcomes, fr.fraction[i], fr.ci_low[i], fr.ci_high[i])


def escapes(cmp: O.Comparison, base: str = "gd") -> list[dict]:
    """For each other optimizer and each local (not global) minimum: of the
    starts that ``base`` leaves in that minimum, the fraction the optimizer
    takes to a global minimum, leaves there, or takes elsewhere."""
    if base not in cmp.names:
        return []
    b = cmp.reached[cmp.index(base)]
    glob = list(cmp.bmap.global_minima)
    rows = []
    for k in range(len(cmp.bmap.minima)):
        if k in glob:
            continue
        mine = b == k
        if not mine.any():
            continue
        for name in cmp.names:
            if name == base:
                continue
            other = cmp.reached[cmp.index(name)][mine]
            rows.append(
                {
                    "minimum": k,
                    "optimizer": name,
                    "starts": int(mine.sum()),
                    "to_global": float(np.isin(other, glob).mean()),
                    "stays": float((other == k).mean()),
                    "elsewhere": float(((other != k) & ~np.isin(other, glob)).mean()),
                }
            )
    return rows


def to_json(cmp: O.Comparison) -> dict:
    """optimizers.json's content."""
    bmap = cmp.bmap
    converged = bmap.labels >= 0
    return {
        "config": {
            **dataclasses.asdict(bmap.config),
            "lr": None,
            "rule": "gdjax.optimizers.family",
            "radius": cmp.radius,
        },
        "optimizers": cmp.names,
        "settings": {p.name: {"lr": p.lr, **p.settings} for p in cmp.presets},
        "minima": [m.to_json() for m in bmap.minima],
        "global_minima": list(bmap.global_minima),
        "fractions": {name: _one(cmp.fractions, i).to_json() for i, name in enumerate(cmp.names)},
        "p_global": {
            name: {k: float(np.asarray(v)[i]) for k, v in cmp.p_global._asdict().items()}
            for i, name in enumerate(cmp.names)
        },
        "converged_by_gradient": {
            name: float(converged[i].mean()) for i, name in enumerate(cmp.names)
        },
        "outcomes": [{"label": label, "name": name} for label, name in cmp.outcomes],
        "attractors": None if bmap.attractors is None else bmap.attractors.to_json(cmp.fractions),
        "agreement": np.asarray(cmp.agreement).tolist(),
        "escapes": escapes(cmp),
        "timing": bmap.timing._asdict(),
        "versions": versions(),
        "command": command_line(),
    }


def _claim(cmp: O.Comparison, res: dict) -> list[str]:
    """Lesson C's claim, momentum helps escape shallow minima, in numbers."""
    if "gd" not in cmp.names:
        return ["Gradient descent is not among the optimizers: the claim needs it as baseline."]
    bmap = cmp.bmap
    glob = list(bmap.global_minima)
    local = [k for k in range(len(bmap.minima)) if k not in glob]
    if not local:
        return [f"{bmap.surface.name} has no local minimum: there is nothing to escape."]
    pg = res["p_global"]
    lines = []
    for name in cmp.names:
        if name == "gd":
            continue
        d = pg[name]["fraction"] - pg["gd"]["fraction"]
        lines.append(
            f"{name}: {100 * pg[name]['fraction']:.1f}% of starts reach a global minimum "
            f"[{100 * pg[name]['ci_low']:.1f}, {100 * pg[name]['ci_high']:.1f}] against "
            f"{100 * pg['gd']['fraction']:.1f}% for gradient descent ({100 * d:+.1f} points)."
        )
    shallow = max(local, key=lambda k: bmap.minima[k].value)
    for row in res["escapes"]:
        if row["minimum"] != shallow or row["optimizer"] not in ("momentum", "nesterov"):
            continue
        lines.append(
            f"Of the {row['starts']:,} starts that gradient descent leaves in the shallowest "
            f"minimum, {minimum_name(bmap, shallow)} (f = {bmap.minima[shallow].value:.3g}), "
            f"{row['optimizer']} takes {100 * row['to_global']:.1f}% to the global minimum, "
            f"leaves {100 * row['stays']:.1f}% there and takes {100 * row['elsewhere']:.1f}% "
            "elsewhere."
        )
    return lines


def _report(out: Path, cmp: O.Comparison, res: dict) -> None:
    bmap = cmp.bmap
    c = bmap.config
    rep = Report(f"Optimizers side by side: {bmap.surface.name}")
    rep.text(
        f"{len(cmp.presets)} optimizers from the same {c.grid} x {c.grid} grid of starts, "
        f"{c.steps} steps each, as one compiled program over (optimizer x start): "
        f"{bmap.timing.seconds:.1f} s ({bmap.timing.restart_steps_per_second:.3g} "
        "restart-steps/s). A run reached a minimum if it ended there with |grad| < "
        f"{c.tol:g}, or ended within {cmp.radius:.3g} of it: Adam and RMSprop at a constant "
        "rate hover around a minimum at a distance of about their rate."
    )
    if bmap.attractors is not None:
        rep.heading("Beyond the stability limit: attractors")
        for line in _attractor_lines(cmp, res):
            rep.text(line)
    rep.heading("Does momentum help escape shallow minima?")
    for line in _claim(cmp, res):
        rep.text(line)
    rep.figure(
        P.maps_side_by_side(cmp),
        "maps",
        "Each optimizer's basin map, same starts, same colours.",
    )
    rep.figure(
        P.global_fractions(cmp),
        "global_fractions",
        "Fraction of starts reaching a global minimum, with 95% Wilson intervals.",
    )
    rep.figure(
        P.agreement_matrix(cmp),
        "agreement",
        "Pairwise agreement: the fraction of starts that reach the same minimum under both "
        "optimizers; the diagonal is each one's fraction reaching any minimum.",
    )
    rep.heading("Fractions")
    keys = list(cmp.fractions)
    rep.table(
        ["optimizer", "lr", *(_key_words(k) for k in keys), "gradient test passed"],
        [
            [
                p.words,
                p.lr,
                *(f"{100 * cmp.fractions[k].fraction[i]:.2f}%" for k in keys),
                f"{100 * res['converged_by_gradient'][p.name]:.1f}%",
            ]
            for i, p in enumerate(cmp.presets)
        ],
    )
    if res["escapes"]:
        rep.heading("Starts that gradient descent leaves in a local minimum")
        rep.table(
            ["local minimum", "optimizer", "starts", "to a global min", "stay", "elsewhere"],
            [
                [
                    minimum_name(bmap, r["minimum"]),
                    r["optimizer"],
                    r["starts"],
                    f"{100 * r['to_global']:.1f}%",
                    f"{100 * r['stays']:.1f}%",
                    f"{100 * r['elsewhere']:.1f}%",
                ]
                for r in res["escapes"]
            ],
        )
    rep.heading("Settings")
    rep.table(
        ["optimizer", "lr", "settings (gdjax.optimizers.family)"],
        [
            [p.name, p.lr, ", ".join(f"{k} {v:g}" for k, v in p.settings.items()) or "-"]
            for p in cmp.presets
        ],
    )
    rep.code(res["command"])
    rep.write(out)


def _key_words(key: str) -> str:
    """A fractions key in a table's words: "min 0", "not converged",
    "period 2 around min 0", "chaotic", "moving", "diverged"."""
    return f"min {key}" if key.isdigit() else key.replace("_", " ")


def _attractor_lines(cmp: O.Comparison, res: dict) -> list[str]:
    """The attractors by name, and per optimizer the share of starts on
    each (with its 95% interval) and the share still moving."""
    table = res["attractors"]
    names = [row["name"] for row in table["table"]]
    lines = [
        "The runs that end not converged, and not within the radius of a minimum, are "
        "continued from their end points with their own optimizer and a fresh optimizer "
        "state (a map keeps only end points: the continuation's transient lets the state "
        "settle onto the attractor), then labelled: "
        + (", ".join(names) if names else "no periodic orbit or chaos was found")
        + "; the rest are moving."
    ]
    for name in cmp.names:
        fr = res["fractions"][name]
        parts = [
            f"{100 * fr[k]['fraction']:.1f}% {k} [{100 * fr[k]['ci_low']:.1f}, "
            f"{100 * fr[k]['ci_high']:.1f}]"
            for k in [*names, "moving"]
            if fr[k]["fraction"] > 0
        ]
        lines.append(
            f"{name}: "
            + ("; ".join(parts) if parts else "every start reached a minimum or diverged")
            + "."
        )
    return lines


def summary(res: dict) -> str:
    lines = ["optimizers: fraction of starts reaching a global minimum"]
    for name in res["optimizers"]:
        p = res["p_global"][name]
        lines.append(
            f"  {name:9s} {100 * p['fraction']:5.1f}% "
            f"[{100 * p['ci_low']:.1f}, {100 * p['ci_high']:.1f}]"
        )
    if res.get("attractors"):
        names = [row["name"] for row in res["attractors"]["table"]]
        lines.append("beyond the minima (attractors; moving):")
        for name in res["optimizers"]:
            fr = res["fractions"][name]
            shares = ", ".join(
                f"{k} {100 * fr[k]['fraction']:.1f}%"
                for k in [*names, "moving"]
                if fr[k]["fraction"] > 0
            )
            lines.append(f"  {name:9s} {shares or '-'}")
    return "\n".join(lines)
