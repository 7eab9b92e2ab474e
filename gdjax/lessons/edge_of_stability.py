"""Beyond the stability limit: period doubling, chaos and the edge of stability.

Gradient descent converges to a minimum only while lr < 2 / lambda_max, the
stability limit of its Hessian's top eigenvalue. Past it the update is a
nonlinear map with cycles and chaos: the double well's bifurcation diagram
and its period doublings, whose intervals shrink by Feigenbaum's 4.669; peaks'
global minimum from a 2-cycle to chaos, with maps of which attractor each
start near it reaches; and a small network trained by full-batch gradient
descent, whose sharpness rises to 2 / lr and stays there (the edge of
stability, Cohen et al. 2021; ``gdjax lenet --sharpness`` measures the
LeNet's).
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import gdjax
from gdjax import _validate, sharpness
from gdjax import attractors as A
from gdjax.lessons import bifurcation as B
from gdjax.maps.config import grid_starts
from gdjax.plot import attractors as P
from gdjax.plot import run_colors
from gdjax.report import Report, versions, write_json
from gdjax.runs import command_line

__all__ = [
    "Edge",
    "Lesson",
    "Maps",
    "compute",
    "edge_of_stability",
    "maps",
    "run",
    "summary",
    "to_json",
    "write",
]

_MAP_RATES = (0.06, 0.075, 0.09, 0.15)
"""Peaks' rates mapped: below the global minimum's limit 0.0663, a 2-cycle,
a 4-cycle, chaos."""
_MAP_HALF_WIDTH = 1.2
"""The maps' box: the global minimum plus or minus this in x and y."""
MAP_TRANSIENT = 1000
_MAX_GRID = 512
AT_MINIMUM = 1e-2
"""A fixed point within this distance (times 1 + |minimum|) of a minimum is
at it; farther, the run stopped where the gradient vanished in the
arithmetic (peaks' flat outer ground)."""

_PEAKS_DOUBLINGS = "gdjax bifurcation --surface peaks --x64 --doublings 6 --out runs/peaks"
"""The command that measures peaks' doublings (9.6 s here; the lesson leaves
them out to stay quick): 0.066243, 0.087092, 0.092288, 0.093367, 0.093596,
0.093644, ratios 4.012, 4.813, 4.729, 4.680."""

NET_WIDTH = 32
NET_POINTS = 64
NET_STEPS = 3000
NET_EVERY = 20
MIN_NET_STEPS = 100
NET_LIMITS = (8.0, 1.15, 1.05)
"""The net's rates, as 2 / lr in units of its initial sharpness: one far
below the edge, two just above the initial sharpness."""


@dataclasses.dataclass(frozen=True)
class Maps:
    """Which attractor each start of a grid reaches, at a few rates.

    Attributes:
        lrs: (R,) the rates.
        extent: (x0, x1, y0, y1) the box of starts.
        labels: (R, n, n) the category of each start (row 0 at y0).
        names: the categories, indexed by the labels.
        colors: one colour per category.
        attractors: per rate, :func:`gdjax.attractors.distinct` of its runs.
        category_of: per rate, the category of each distinct attractor.
        marks: per rate, (points (k, 2), is_cloud) to draw: each fixed point
            or cycle, and a chaotic attractor's last points.
        limit: the global minimum's stability limit 2 / lambda_max.
        seconds: the time of the runs (compilation included).
    """

    lrs: np.ndarray
    extent: tuple[float, float, float, float]
    labels: np.ndarray
    names: list[str]
    colors: list[str]
    attractors: list[A.Attractors]
    category_of: list[np.ndarray]
    marks: list[list[tuple[np.ndarray, bool]]]
    limit: float
    seconds: float


@dataclasses.dataclass(frozen=True)
class Edge:
    """A small network's sharpness under full-batch gradient descent.

    Attributes:
        lrs: (L,) the rates.
        steps: (T,) the steps where the sharpness was measured.
        sharpness: (L, T) the top Hessian eigenvalue there (Lanczos).
        loss: (L, T) the training loss there.
        initial: the sharpness at the start.
        params: the network's parameter count.
        seconds: the time (compilation included).
    """

    lrs: np.ndarray
    steps: np.ndarray
    sharpness: np.ndarray
    loss: np.ndarray
    initial: float
    params: int
    seconds: float


@dataclasses.dataclass(frozen=True)
class Lesson:
    double_well: B.Study
    peaks: B.Study
    maps: Maps
    edge: Edge


# --------------------------------------------------------------------------
# Maps of attractors.


def _category(kind: int, period: int, minimum: int, at_minimum: bool, glob: set) -> str:
    name = f"min {minimum}" + (" (global)" if minimum in glob else "")
    if kind == A.DIVERGED:
        return "diverged"
    if kind == A.MOVING:
        return "still moving"
    if kind == A.FIXED:
        return f"converged to {name}" if at_minimum else "stopped on flat ground (no minimum)"
    if kind == A.PERIODIC:
        return f"period {period} around {name}"
    return f"chaotic around {name}"


def _distinct(o: A.Orbits, r: int) -> tuple[A.Attractors, np.ndarray, np.ndarray]:
    """:func:`gdjax.attractors.distinct` of the runs at rate index ``r``,
    computed on one run per group of runs whose kind, period, minimum and
    cycle (rounded to 1e-3) agree: (attractors, the attractor of every run,
    the first run of every attractor). Thousands of starts reach a few
    attractors; distinct() compares runs one at a time."""
    kind, period, minimum = o.kind[:, r], o.period[:, r], o.minimum[:, r]
    cyc = np.nan_to_num(np.round(o.cycle[:, r].reshape(kind.size, -1), 3), nan=np.inf)
    key = np.concatenate([kind[:, None], period[:, None], minimum[:, None], cyc], axis=1)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)  # representatives in the order of their first run
    reps = first[order]
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    sub = A.Orbits(
        lr=o.lr[r],
        **{f: getattr(o, f)[reps, r] for f in A.Orbits._fields if f not in ("lr", "rtol", "chaos")},
        rtol=o.rtol,
        chaos=o.chaos,
    )
    at = A.distinct(sub)
    labels = at.labels[rank[inverse.reshape(-1)]]
    first_run = np.asarray([reps[np.flatnonzero(at.labels == a)[0]] for a in range(at.count.size)])
    count = np.bincount(labels, minlength=at.count.size)
    return dataclasses.replace(at, count=count, labels=labels), labels, first_run


_FIXED_COLORS = {"diverged": "#8c8c8c", "stopped on flat ground (no minimum)": "#e8e8e8"}


def maps(
    surface: str = "peaks",
    lrs=_MAP_RATES,
    *,
    grid: int = 128,
    half_width: float = _MAP_HALF_WIDTH,
    transient: int = MAP_TRANSIENT,
) -> Maps:
    """Runs gradient descent from an n x n grid of starts around the
    surface's global minimum at every rate of ``lrs`` (one program vmapped
    over starts and rates, :func:`gdjax.attractors.orbits`) and labels each
    start by its attractor's category: converged to a minimum, period p
    around one, chaotic around one, stopped off every minimum, still
    moving, diverged."""
    surf = gdjax.surfaces.get(surface)
    if surf.dim != 2:
        raise ValueError(f"attractor maps need a 2-D surface, {surf.name} is {surf.dim}-D")
    grid = _validate.check_count("grid", grid)
    lrs = np.asarray(lrs, np.float64)
    g = np.asarray(surf.global_minimum.location, np.float64)
    extent = (g[0] - half_width, g[0] + half_width, g[1] - half_width, g[1] + half_width)
    starts = grid_starts((extent[:2], extent[2:]), grid, np.float64)
    t0 = time.perf_counter()
    o = A.orbits(surf, starts, lrs, transient=transient, window=256, keep=128, max_period=16)
    seconds = time.perf_counter() - t0
    glob = {i for i, m in enumerate(surf.minima) if m.value == surf.global_minimum.value}
    mins = np.asarray([m.location for m in surf.minima], np.float64)
    names: list[str] = []
    labels = np.zeros((lrs.size, grid * grid), np.int64)
    found, cats, marks = [], [], []
    for r in range(lrs.size):
        at, run_labels, first_run = _distinct(o, r)
        cat = []
        mk: list[tuple[np.ndarray, bool]] = []
        for a in range(at.count.size):
            m = int(at.minimum[a])
            near = m >= 0 and float(np.max(np.abs(at.centroid[a] - mins[m]))) <= AT_MINIMUM * (
                1 + float(np.max(np.abs(mins[m])))
            )
            name = _category(int(at.kind[a]), int(at.period[a]), m, near, glob)
            if name not in names:
                names.append(name)
            cat.append(names.index(name))
            if at.kind[a] in (A.FIXED, A.PERIODIC) and (at.kind[a] != A.FIXED or near):
                mk.append((at.points[a][: int(at.period[a])], False))
            elif at.kind[a] == A.CHAOTIC:
                mk.append((o.tail[first_run[a], r], True))
        cat = np.asarray(cat, np.int64)
        labels[r] = cat[run_labels]
        found.append(at)
        cats.append(cat)
        marks.append(mk)
    palette = iter(run_colors(len(names)))
    colors = [_FIXED_COLORS.get(n) or next(palette) for n in names]
    limit, _ = B.sharpest(surf, surf.global_minimum.location)
    return Maps(
        lrs=lrs,
        extent=tuple(float(v) for v in extent),
        labels=labels.reshape(lrs.size, grid, grid),
        names=names,
        colors=colors,
        attractors=found,
        category_of=cats,
        marks=marks,
        limit=limit,
        seconds=seconds,
    )


# --------------------------------------------------------------------------
# The edge of stability in a small network.


def _net_data():
    x = jnp.linspace(-2.0, 2.0, NET_POINTS)
    return x, jnp.sin(3.0 * x)


def _net_loss(flat):
    """Mean squared error / 2 of a 1-32-1 tanh network on 64 points of sin(3x)."""
    x, y = _net_data()
    w = NET_WIDTH
    w1, b1, w2, b2 = flat[:w], flat[w : 2 * w], flat[2 * w : 3 * w], flat[3 * w]
    out = jnp.tanh(x[:, None] * w1[None, :] + b1[None, :]) @ w2 + b2
    return 0.5 * jnp.mean((out - y) ** 2)


def edge_of_stability(seed: int = 0, steps: int = NET_STEPS, every: int = NET_EVERY) -> Edge:
    """Trains a 1-32-1 tanh network (97 parameters) on 64 points of sin(3x)
    by full-batch gradient descent (:func:`gdjax.descend`) at three rates,
    2 / lr = 8, 1.15 and 1.05 times its initial sharpness, and measures the
    sharpness (:func:`gdjax.sharpness.top_eigenvalue`) every ``every`` steps."""
    t0 = time.perf_counter()
    k1, k2 = jax.random.split(jax.random.key(seed))
    w = NET_WIDTH
    flat0 = jnp.concatenate(
        [
            jax.random.normal(k1, (w,)),
            jnp.zeros(w),
            jax.random.normal(k2, (w,)) / math.sqrt(w),
            jnp.zeros(1),
        ]
    )

    def top(p):
        return sharpness.top_eigenvalue(_net_loss, p).value

    s0 = float(jax.jit(top)(flat0))
    lrs = 2.0 / (s0 * np.asarray(NET_LIMITS))
    traj = gdjax.descend(_net_loss, flat0, steps=steps, lr=lrs)
    params = traj.params[:, ::every]
    sharp = jax.jit(jax.vmap(jax.vmap(top)))(params)
    return Edge(
        lrs=lrs,
        steps=np.arange(0, steps + 1, every),
        sharpness=np.asarray(sharp, np.float64),
        loss=np.asarray(traj.loss[:, ::every], np.float64),
        initial=s0,
        params=int(flat0.size),
        seconds=time.perf_counter() - t0,
    )


# --------------------------------------------------------------------------
# The lesson.


def compute(
    *,
    lrs: int = 1500,
    grid: int = 128,
    doublings: int = 6,
    steps: int = NET_STEPS,
    seed: int = 0,
    progress=None,
) -> Lesson:
    """The double well's diagram and ``doublings`` period doublings
    (float64), peaks' diagram (float32; its doublings are the command's:
    ``gdjax bifurcation --surface peaks --x64``), the maps and the network trained for ``steps``
    steps. ``progress(done, 4)`` after each part."""
    lrs = _validate.check_count("--lrs", lrs)
    if lrs < 2:
        raise ValueError(f"--lrs must be at least 2, got {lrs}")
    grid = _validate.check_count("--grid", grid)
    if grid > _MAX_GRID:
        raise ValueError(
            f"--grid must be at most {_MAX_GRID} (4 maps of grid^2 starts, each run's last 128 "
            f"points kept: 1.2 GB at {_MAX_GRID}), got {grid}"
        )
    steps = _validate.check_count("--steps", steps)
    if steps < MIN_NET_STEPS:
        raise ValueError(
            f"--steps must be at least {MIN_NET_STEPS} (the sharpness is measured every "
            f"{NET_EVERY}), got {steps}"
        )
    dw = B.resolve("double_well", lrs=lrs, keep=32, x64=True, doublings=doublings)
    pk = B.resolve("peaks", lrs=lrs, keep=32, doublings=0)

    def step(k):
        if progress is not None:
            progress(k, 4)

    step(0)
    double_well = B.compute(dw)
    step(1)
    peaks = B.compute(pk)
    step(2)
    found = maps("peaks", grid=grid)
    step(3)
    edge = edge_of_stability(seed, steps=steps)
    step(4)
    return Lesson(double_well, peaks, found, edge)


def _edge_summary(e: Edge) -> list[dict]:
    out = []
    half = e.steps >= e.steps[-1] / 2
    for i, lr in enumerate(e.lrs.tolist()):
        ed = sharpness.edge(e.sharpness[i], np.full(e.steps.size, lr), "gd")
        ratio = e.sharpness[i] / (2.0 / lr)
        first = None if ed.first_edge is None else int(e.steps[ed.first_edge - 1])
        out.append(
            {
                "lr": lr,
                "limit": 2.0 / lr,
                "first_step_at_edge": first,
                "median_ratio_second_half": float(np.median(ratio[half])),
                "max_ratio": float(np.max(ratio)),
                "final_sharpness": float(e.sharpness[i, -1]),
                "final_loss": float(e.loss[i, -1]),
            }
        )
    return out


def to_json(lesson: Lesson) -> dict:
    """edge_of_stability.json's content."""
    m, e = lesson.maps, lesson.edge
    total = m.labels[0].size
    panels = []
    for r, lr in enumerate(m.lrs.tolist()):
        counts = np.bincount(m.labels[r].ravel(), minlength=len(m.names))
        per = np.bincount(m.category_of[r], minlength=len(m.names))
        panels.append(
            {
                "lr": lr,
                "categories": {
                    m.names[c]: {
                        "count": int(counts[c]),
                        "fraction": float(counts[c] / total),
                        "attractors": int(per[c]),
                    }
                    for c in np.flatnonzero(counts)
                },
            }
        )
    return {
        "double_well": B.to_json(lesson.double_well, points=False),
        "peaks": B.to_json(lesson.peaks, points=False),
        "maps": {
            "surface": "peaks",
            "box": list(m.extent),
            "grid": int(m.labels.shape[1]),
            "transient": MAP_TRANSIENT,
            "stability_limit": m.limit,
            "categories": m.names,
            "panels": panels,
            "seconds": m.seconds,
        },
        "edge_of_stability": {
            "network": f"1-{NET_WIDTH}-1 tanh, {e.params} parameters, {NET_POINTS} points of "
            "sin(3x) on [-2, 2], mean squared error / 2, full-batch gradient descent",
            "initial_sharpness": e.initial,
            "steps": e.steps.tolist(),
            "runs": _edge_summary(e),
            "sharpness": e.sharpness.tolist(),
            "loss": e.loss.tolist(),
            "seconds": e.seconds,
        },
        "versions": versions(),
        "command": command_line(),
    }


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%" if v >= 0.001 else f"{100 * v:.2g}%"


def write(out: str | Path, lesson: Lesson) -> dict:
    """Writes edge_of_stability.json, the figures and report.html; returns
    the JSON's content."""
    out = Path(out)
    res = to_json(lesson)
    write_json(out / "edge_of_stability.json", res)
    rep = Report("Beyond the stability limit: period doubling, chaos, the edge of stability")
    rep.text(
        "Gradient descent x -> x - lr grad f(x) converges to a minimum only while lr < 2/λ_max, "
        "λ_max the largest eigenvalue of the Hessian there: near the minimum each step "
        "multiplies the distance along that eigenvector by 1 - lr λ_max, which is below -1 "
        "past the limit. This lesson looks at what gradient descent does past it: on a double "
        "well, on peaks, and in a small network."
    )
    rep.heading("1. The double well x^4/4 - x^2/2")
    dw = res["double_well"]
    B.report_sections(rep, lesson.double_well, dw, name="double_well")
    rep.heading("2. Peaks' global minimum, from a 2-cycle to chaos")
    pk = res["peaks"]
    rep.text(
        "The same diagram on peaks, from (0.25, -1.6) next to its global minimum "
        f"(0.228, -1.626), whose Hessian's largest eigenvalue is "
        f"{2 / pk['stability_limit']:.1f}: its stability limit is {pk['stability_limit']:.4g}. "
        "The surface is two-dimensional, so the diagram draws each point's offset from the "
        "minimum along the Hessian's top eigenvector, the direction in which the first "
        "2-cycle oscillates. The cascade is the double well's: each doubling interval about "
        "4.7 times the next."
    )
    B.report_sections(rep, lesson.peaks, pk, name="peaks")
    rep.text(
        "Its period doublings, bisected as the double well's, take longer than this lesson "
        "allows; this command measures them (float64, 6 doublings: ratios 4.012, 4.813, "
        "4.729, 4.680, closing on δ = 4.669 as the double well's do):"
    )
    rep.code(_PEAKS_DOUBLINGS)
    _maps_section(rep, lesson.maps, res["maps"])
    _edge_section(rep, lesson.edge, res["edge_of_stability"])
    rep.heading("Settings")
    rep.code(res["command"])
    rep.write(out)
    return res


def _maps_section(rep: Report, m: Maps, res: dict) -> None:
    n = res["grid"]
    rep.heading("3. Which start reaches which attractor")
    rep.text(
        f"Gradient descent from a {n} x {n} grid of starts in the box x, y = global minimum "
        f"± {_MAP_HALF_WIDTH:g} of peaks, at {len(m.lrs)} rates around the global minimum's "
        f"stability limit {m.limit:.4g}, {res['transient']:,} steps and then 256 measured "
        "ones; each start is coloured by the attractor its run reaches (a minimum, a cycle "
        "around one, a chaotic set around one). Attractors are told apart as Attractors.jl "
        "does, by the minimum nearest their centroid and their period "
        "(gdjax.attractors.distinct)."
    )
    rep.figure(
        P.attractor_maps(
            [P.MapPanel(lr, m.labels[r], m.marks[r]) for r, lr in enumerate(m.lrs.tolist())],
            m.names,
            m.extent,
            colors=m.colors,
            minima=[mm.location for mm in gdjax.surfaces.get("peaks").minima],
            limit=m.limit,
        ),
        "attractor_maps",
        "Each pixel is a start, coloured by where its run ends up; black crosses: the points "
        "of each fixed point or cycle, black dots: a chaotic attractor's last points; star: "
        "the global minimum (peaks' other two minima lie outside the box). Each title gives "
        "the rate, its multiple of the global minimum's "
        "limit 2/λ_max and the largest share.",
    )
    rows = []
    for p in res["panels"]:
        for name, c in sorted(p["categories"].items(), key=lambda kv: -kv[1]["count"]):
            rows.append([p["lr"], name, c["count"], _pct(c["fraction"]), c["attractors"]])
    rep.table(["lr", "attractor", "starts", "fraction", "distinct attractors"], rows)
    first = res["panels"][0]["categories"]
    glob = max(first.items(), key=lambda kv: kv[1]["count"])
    rep.text(
        f"The global minimum's basin keeps its starts as the rate crosses the limit: at "
        f"lr = {res['panels'][0]['lr']:g} {_pct(glob[1]['fraction'])} of the box converges to "
        "it, and above the limit nearly the same starts follow its 2-cycle, its 4-cycle, then "
        "its chaotic attractor, which stays around the minimum. What changes is the "
        "attractor, not the basin: past the limit the minimum is no longer reached, but the "
        "run still lives in its valley. The smaller basins belong to the other minima, which "
        "have their own limits. 'Stopped on flat ground' are runs that end where peaks' "
        "gradient underflows to 0 in float32, far from any minimum."
    )


def _edge_section(rep: Report, e: Edge, res: dict) -> None:
    rep.heading("4. The edge of stability: sharpness rises to 2/lr")
    runs = res["runs"]
    rep.text(
        "In a network the minima are not isolated points but connected valleys of different "
        "sharpness, and training moves along them. Cohen et al. (ICLR 2021, 'Gradient descent "
        "on neural networks typically occurs at the edge of stability') found that full-batch "
        "gradient descent makes the loss sharper as it trains (progressive sharpening) until "
        "the sharpness, the top eigenvalue of the loss's Hessian, reaches 2/lr, the limit "
        "above; then it stays there, the run oscillating along the sharpest direction as the "
        "2-cycles above do, while the loss still falls, non-monotonically."
    )
    rep.text(
        f"Here a network ({res['network']}) is trained at three rates chosen from "
        f"its initial sharpness {e.initial:.3g}: 2/lr = "
        + ", ".join(f"{r['limit']:.3g}" for r in runs)
        + f". The sharpness (Lanczos on Hessian-vector products, every {NET_EVERY} steps) "
        "rises at the smallest rate past the other two limits (to "
        f"{runs[0]['final_sharpness']:.3g} after {int(e.steps[-1]):,} steps). At the two "
        "large rates it climbs to its limit and then stays around it: each time it "
        "overshoots, the sharpest direction is unstable, the loss spikes for a few dozen "
        "steps and the sharpness falls back below 2/lr (a 'catapult'), and it climbs again. "
        "Over the second half of training the median of "
        "sharpness / (2/lr) is "
        + " and ".join(f"{r['median_ratio_second_half']:.3f}" for r in runs[1:])
        + f" ({e.seconds:.1f} s with compilation). The table counts a measurement as at the "
        f"edge from {sharpness.EDGE[0]:g} of the limit on (the largest rate's limit is "
        "within that of the initial sharpness: it starts at the edge)."
    )
    rep.figure(
        P.sharpness_edge(e.steps, e.sharpness, e.loss, e.lrs.tolist()),
        "sharpness",
        "Top: the sharpness (top Hessian eigenvalue) during training at each rate (solid) and "
        "its limit 2/lr (dashed, same colour). Bottom: the training loss.",
    )
    rep.table(
        [
            "lr",
            "2/lr",
            "first step at the edge",
            "median sharpness / (2/lr), 2nd half",
            "peak",
            "final loss",
        ],
        [
            [
                r["lr"],
                r["limit"],
                "-" if r["first_step_at_edge"] is None else r["first_step_at_edge"],
                r["median_ratio_second_half"],
                r["max_ratio"],
                r["final_loss"],
            ]
            for r in runs
        ],
    )
    rep.text(
        "The same measurement on the chapter's LeNet: gdjax lenet --sharpness tracks the "
        "top Hessian eigenvalue once per epoch on a fixed batch and draws it against 2/lr "
        "(minibatch SGD at the chapter's lr 0.3, so the limit is 2/0.3 = 6.7):"
    )
    rep.code("gdjax lenet --sharpness --epochs 10 --out runs/edge")


def run(out: Path, *, seed: int = 0, progress=None, **options) -> dict:
    """:func:`compute`, then :func:`write`. ``seed`` draws the network's
    initial weights."""
    return write(out, compute(seed=seed, progress=progress, **options))


def summary(res: dict) -> str:
    dw, m, e = res["double_well"], res["maps"], res["edge_of_stability"]
    ratios = ", ".join(f"{r:.4f}" for r in dw["feigenbaum"]["ratios"])
    lines = [
        "edge of stability:",
        f"  double well: 2/lambda_max = {dw['stability_limit']:.4g}; doublings at "
        + ", ".join(f"{v:.6f}" for v in dw["period_doublings"]["lr"])
        + f"; Feigenbaum ratios {ratios} (delta = 4.6692)",
    ]
    for p in m["panels"]:
        top = max(p["categories"].items(), key=lambda kv: kv[1]["count"])
        lines.append(f"  peaks lr {p['lr']:g}: {_pct(top[1]['fraction'])} {top[0]}")
    for r in e["runs"]:
        lines.append(
            f"  net lr {r['lr']:.4g} (2/lr = {r['limit']:.3g}): sharpness / (2/lr) median "
            f"{r['median_ratio_second_half']:.3f} over the second half"
        )
    return "\n".join(lines)
