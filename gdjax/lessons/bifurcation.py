"""The ``gdjax bifurcation`` command: gradient descent beyond the stability limit.

From one start, gradient descent runs at thousands of learning rates (one
compiled program vmapped over the rates, :func:`gdjax.attractors.bifurcation`);
at each rate the last points of the run, its period, its kind (fixed,
periodic, chaotic, still moving, diverged) and its largest Lyapunov exponent
are kept. Below the stability limit 2 / lambda_max of the minimum nearest the
start the run converges there; above it the minimum repels, and the run
settles on a 2-cycle, then a 4-cycle, 8, ... until it is chaotic. The rates
where the period doubles are bisected (:func:`gdjax.attractors.period_doublings`)
and the ratios of successive doubling intervals compared with Feigenbaum's
constant 4.6692. Writes bifurcation.json, bifurcation.png, doublings.png and
report.html. One process (no --coordinator): thousands of rates take seconds.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import gdjax
from gdjax import _engine, _validate
from gdjax import attractors as A
from gdjax.maps.config import available_memory
from gdjax.maps.critical import hessian_at
from gdjax.plot import attractors as P
from gdjax.report import Report, versions, write_json
from gdjax.runs import command_line

__all__ = [
    "DEFAULTS",
    "EXACT_DOUBLE_WELL",
    "EXACT_DOUBLE_WELL_RATES",
    "FEIGENBAUM_DELTA",
    "MAX_KEEP",
    "MAX_PERIOD",
    "Axis",
    "Settings",
    "Study",
    "compute",
    "memory_needed",
    "report_sections",
    "resolve",
    "sharpest",
    "run",
    "summary",
    "to_json",
    "write",
]

FEIGENBAUM_DELTA = 4.669201609102990
"""Feigenbaum's delta: the limit of the ratios of successive period-doubling
intervals of a one-hump (quadratic-maximum) map."""

EXACT_DOUBLE_WELL = (4.5429, 4.6412, 4.6632, 4.6679, 4.6689, 4.6691)
"""The first ratios of the double well's exact cascade (its doubling rates
solved by Newton's method on the cycles' multipliers; :mod:`gdjax.attractors`):
what a perfect measurement of the first doublings gives. They differ from
delta because the cascade reaches its universal form only as the period
grows."""

EXACT_DOUBLE_WELL_RATES = (
    1.0,
    1.2360679774997896,
    1.2880317544828426,
    1.299227939650204,
    1.3016289140370803,
    1.3021432715814583,
    1.3022534377421273,
    1.302277032259642,
)
"""The double well's first doubling rates, exactly: where the 2^(k-1)-cycle's
multiplier is -1 (Newton's method on the cycle and the rate together, in
float64; the first is 2 / f''(1) = 1, the second sqrt(5) - 1)."""

MAX_KEEP = 4096
"""The most orbit points kept per rate (--keep)."""
MAX_PERIOD = 1024
"""The longest period that can be looked for (--max-period)."""
MAX_DOUBLINGS = 16
"""The most doublings looked for (period 65536)."""
DOUBLING_TRANSIENT = 20_000
"""Steps before the period is read at the first doubling (doubled at each next)."""


@dataclasses.dataclass(frozen=True)
class _Default:
    start: tuple[float, ...]
    lr_min: float
    lr_max: float


DEFAULTS: dict[str, _Default] = {
    "double_well": _Default((0.5,), 0.9, 1.4),
    "peaks": _Default((0.25, -1.6), 0.05, 0.2),
}
"""Starts and rate ranges that reach the cascade: the double well from its
right-hand side, peaks from near its global minimum. Other surfaces start
next to their global minimum (1% of the domain's width off it) with rates
from 0.8 to 1.6 times its stability limit."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """A run's settings, every default resolved and every value checked
    (:func:`resolve`). ``tol`` is the bisection's final bracket on the rate
    (None: :func:`gdjax.attractors.period_doublings`' default)."""

    surface: str
    start: tuple[float, ...]
    lr_min: float
    lr_max: float
    lrs: int
    transient: int
    keep: int
    max_period: int
    doublings: int
    doubling_transient: int
    tol: float | None
    x64: bool

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float64 if self.x64 else np.float32)


@dataclasses.dataclass(frozen=True)
class Axis:
    """What the diagram's vertical axis shows: ``(point - origin) . direction``.

    In 1-D the point itself (origin 0, direction 1). In n-D the offset from
    the minimum nearest the start along its Hessian's top eigenvector, the
    direction whose multiplier ``1 - lr lambda_max`` passes -1 first: the
    2-cycle born at the stability limit oscillates along it."""

    origin: tuple[float, ...]
    direction: tuple[float, ...]
    label: str

    def span(self, surface: gdjax.Surface) -> tuple[float, float]:
        """The range of the axis over the surface's domain box, widened by
        half its width each side: the diagram's vertical bounds."""
        corners = np.stack(
            np.meshgrid(*[np.asarray(b, np.float64) for b in surface.domain]), axis=-1
        ).reshape(-1, surface.dim)
        proj = self.project(corners)
        lo, hi = float(proj.min()), float(proj.max())
        return lo - (hi - lo) / 2, hi + (hi - lo) / 2

    def project(self, points: np.ndarray) -> np.ndarray:
        """(..., d) points to (...) values on the axis."""
        pts = np.asarray(points, np.float64)
        return (pts - np.asarray(self.origin)) @ np.asarray(self.direction)


@dataclasses.dataclass(frozen=True)
class Study:
    """One run of the study: the diagram, the doublings and their ratios."""

    surface: gdjax.Surface
    settings: Settings
    bifurcation: A.Bifurcation
    doublings: A.Doublings | None
    ratios: np.ndarray
    axis: Axis
    seconds: dict[str, float]


def sharpest(surface: gdjax.Surface, location) -> tuple[float, np.ndarray]:
    """Plain GD's stability limit 2 / lambda_max at ``location`` and the top
    eigenvector of the Hessian there (float64)."""
    with jax.enable_x64(True):
        x = jnp.asarray(np.asarray(location, np.float64).reshape(surface.shape))
        hess = np.asarray(hessian_at(surface.fn, x), np.float64).reshape(surface.dim, -1)
    vals, vecs = np.linalg.eigh(hess)
    v = vecs[:, -1]
    if v[np.flatnonzero(np.abs(v) > 1e-12)[0]] < 0:
        v = -v  # one sign: the first nonzero coordinate positive
    top = float(vals[-1])
    return (2.0 / top if top > 0 else math.inf), v


def _nearest(surface: gdjax.Surface, start) -> int:
    locs = np.asarray([m.location for m in surface.minima], np.float64)
    return int(np.argmin(np.sum((locs - np.asarray(start)[None, :]) ** 2, axis=1)))


def memory_needed(lrs: int, keep: int, max_period: int, dim: int) -> int:
    """Bytes a run needs, estimated with margin: the kept points and cycles,
    their JSON (Python objects and text: 480 bytes per number measured, peak
    RSS 1.6 GB for 40,000 rates of 64 points) and the figure's dots, plus
    about 1 GiB for JAX and a chunk of rates in flight."""
    per_rate = 600 * (keep * dim + 8) + 16 * max_period * dim
    return (1 << 30) + lrs * per_rate


def resolve(
    surface: str = "double_well",
    *,
    start=None,
    lr_min: float | None = None,
    lr_max: float | None = None,
    lrs: int = 2000,
    transient: int = A.TRANSIENT,
    keep: int = A.KEEP,
    max_period: int = A.MAX_PERIOD,
    doublings: int | None = None,
    doubling_transient: int = DOUBLING_TRANSIENT,
    tol: float | None = None,
    x64: bool = False,
) -> Settings:
    """Every default resolved and every value checked, before any compute;
    a bad value raises ValueError naming its option."""
    surf = gdjax.surfaces.get(surface)
    default = DEFAULTS.get(surf.name)
    if start is None:
        if default is not None:
            start = default.start
        else:  # next to the global minimum: a start on it stays there in exact arithmetic
            g = np.asarray(surf.global_minimum.location, np.float64)
            width = np.asarray([hi - lo for lo, hi in surf.domain], np.float64)
            start = tuple((g + 0.01 * width).tolist())
    try:
        start = tuple(float(v) for v in np.atleast_1d(np.asarray(start, np.float64)))
    except (TypeError, ValueError):
        raise ValueError(f"--start must be numbers, got {start!r}") from None
    if len(start) != surf.dim:
        raise ValueError(
            f"--start must have {surf.dim} coordinate{'s' if surf.dim > 1 else ''} for "
            f"{surf.name} ({surf.dim}-D), got {len(start)}: {','.join(f'{v:g}' for v in start)}"
        )
    if not all(math.isfinite(v) for v in start):
        raise ValueError(f"--start must be finite, got {','.join(f'{v:g}' for v in start)}")
    if lr_min is None or lr_max is None:
        if default is not None:
            lo, hi = default.lr_min, default.lr_max
        else:
            limit, _ = sharpest(surf, surf.minima[_nearest(surf, start)].location)
            lo, hi = (0.8 * limit, 1.6 * limit) if math.isfinite(limit) else (0.01, 1.0)
        given = "--lr-max" if lr_min is None else "--lr-min"
        lr_min = lo if lr_min is None else lr_min
        lr_max = hi if lr_max is None else lr_max
        if not lr_min < lr_max:
            raise ValueError(
                f"--lr-min ({lr_min:g}) must be below --lr-max ({lr_max:g}); {given} was given "
                f"and the other is {surf.name}'s default: give both"
            )
    for name, v in (("--lr-min", lr_min), ("--lr-max", lr_max)):
        _validate.check_positive(name, v)
    if not lr_min < lr_max:
        raise ValueError(f"--lr-min ({lr_min:g}) must be below --lr-max ({lr_max:g})")
    dtype = np.float64 if x64 else np.float32
    _engine.check_lr(np.asarray([lr_min, lr_max]), dtype)
    if not dtype(lr_min) < dtype(lr_max):
        raise ValueError(
            f"--lr-min {lr_min!r} and --lr-max {lr_max!r} are the same rate in "
            f"{np.dtype(dtype).name}; widen the range or use --x64"
        )
    lrs = _validate.check_count("--lrs", lrs)
    if lrs < 2:
        raise ValueError(f"--lrs must be at least 2, got {lrs}")
    transient = _validate.check_count("--transient", transient, minimum=0)
    if transient >= 2**31:
        raise ValueError(f"--transient must be below 2^31 steps, got {transient}")
    keep = _validate.check_count("--keep", keep)
    if keep > MAX_KEEP:
        raise ValueError(f"--keep must be at most {MAX_KEEP}, got {keep}")
    max_period = _validate.check_count("--max-period", max_period)
    if max_period > MAX_PERIOD:
        raise ValueError(f"--max-period must be at most {MAX_PERIOD}, got {max_period}")
    if doublings is None:
        doublings = 8 if x64 else 5
    doublings = _validate.check_count("--doublings", doublings, minimum=0)
    if doublings > MAX_DOUBLINGS:
        raise ValueError(
            f"--doublings must be at most {MAX_DOUBLINGS} (period {2**MAX_DOUBLINGS}), "
            f"got {doublings}"
        )
    doubling_transient = _validate.check_count("--doubling-transient", doubling_transient)
    if doublings and doubling_transient * 2 ** (doublings - 1) >= 2**31:
        raise ValueError(
            f"--doubling-transient {doubling_transient:,} doubled for each of --doublings "
            f"{doublings} is {doubling_transient * 2 ** (doublings - 1):,} steps at the last "
            "doubling, above 2^31; use fewer doublings or a shorter transient"
        )
    if tol is not None:
        _validate.check_positive("--tol", tol)
    need = memory_needed(lrs, keep, max_period, surf.dim)
    have = available_memory()
    if have is not None and need > have:
        per_rate = memory_needed(1, keep, max_period, surf.dim) - memory_needed(0, 1, 1, 1)
        fits = max(0, have - memory_needed(0, 1, 1, 1)) // per_rate
        raise ValueError(
            f"--lrs {lrs:,} ({keep} orbit points kept per rate): about {need / 2**30:,.1f} GiB "
            f"of memory is needed and {have / 2**30:.1f} GiB is available; use --lrs {fits:,} "
            "or fewer"
        )
    return Settings(
        surface=surf.name,
        start=start,
        lr_min=float(lr_min),
        lr_max=float(lr_max),
        lrs=lrs,
        transient=transient,
        keep=keep,
        max_period=max_period,
        doublings=doublings,
        doubling_transient=doubling_transient,
        tol=None if tol is None else float(tol),
        x64=bool(x64),
    )


def _axis(surf: gdjax.Surface, bif: A.Bifurcation) -> Axis:
    if surf.dim == 1:
        return Axis((0.0,), (1.0,), "x (where the run is)")
    if bif.nearest < 0:
        return Axis((0.0,) * surf.dim, (1.0,) + (0.0,) * (surf.dim - 1), "x (first coordinate)")
    m = np.asarray(surf.minima[bif.nearest].location, np.float64)
    _, v = sharpest(surf, m)
    vec = ", ".join(f"{c:.2f}" for c in v)
    return Axis(
        tuple(m.tolist()),
        tuple(v.tolist()),
        f"offset from min {bif.nearest} along its sharpest direction v = ({vec})",
    )


def compute(settings: Settings | None = None, *, progress=None, **options) -> Study:
    """The diagram at ``settings.lrs`` evenly spaced rates, then the period
    doublings in the same range (none when ``settings.doublings`` is 0).
    ``options`` are :func:`resolve`'s when no settings are given;
    ``progress(done, 2)`` is called before, between and after the two."""
    s = resolve(**options) if settings is None else settings
    if progress is not None:
        progress(0, 2)
    surf = gdjax.surfaces.get(s.surface)
    start = np.asarray(s.start, np.float64).reshape(surf.shape)
    rates = np.linspace(s.lr_min, s.lr_max, s.lrs)
    t0 = time.perf_counter()
    bif = A.bifurcation(
        surf,
        start,
        rates,
        transient=s.transient,
        keep=s.keep,
        max_period=s.max_period,
        window=max(A.WINDOW, 2 * s.max_period, s.keep),
        dtype=s.dtype,
    )
    t1 = time.perf_counter()
    if progress is not None:
        progress(1, 2)
    doublings = None
    if s.doublings:
        doublings = A.period_doublings(
            surf,
            start,
            s.lr_min,
            s.lr_max,
            max_doublings=s.doublings,
            tol=s.tol,
            transient=s.doubling_transient,
            dtype=s.dtype,
        )
    ratios = A.feigenbaum(doublings) if doublings is not None else np.zeros(0)
    t2 = time.perf_counter()
    if progress is not None:
        progress(2, 2)
    return Study(
        surface=surf,
        settings=s,
        bifurcation=bif,
        doublings=doublings,
        ratios=ratios,
        axis=_axis(surf, bif),
        seconds={"diagram": t1 - t0, "doublings": t2 - t1},
    )


# --------------------------------------------------------------------------
# JSON.


def _num(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _points(points: np.ndarray, kind: np.ndarray) -> list:
    """Orbit points as lists, float32 values in their shortest form (null
    for a diverged run: it has no orbit)."""
    if points.dtype == np.float32:
        rows = [[[float(str(c)) for c in p] for p in pts] for pts in points]
    else:
        rows = points.tolist()
    return [None if k == A.DIVERGED else r for r, k in zip(rows, kind.tolist(), strict=True)]


def _windows(study: Study, limit: int = 8) -> list[dict]:
    """Periodic windows inside the chaos: runs of consecutive rates past the
    first chaotic one with one period (at least 3 rates), widest first."""
    b = study.bifurcation
    chaotic = np.flatnonzero(b.kind == A.CHAOTIC)
    if not chaotic.size:
        return []
    found, i, n = [], int(chaotic[0]), len(b.lrs)
    while i < n:
        if b.kind[i] != A.PERIODIC:
            i += 1
            continue
        j = i
        while j + 1 < n and b.kind[j + 1] == A.PERIODIC and b.period[j + 1] == b.period[i]:
            j += 1
        if j - i + 1 >= 3:
            found.append(
                {
                    "period": int(b.period[i]),
                    "lr_from": float(b.lrs[i]),
                    "lr_to": float(b.lrs[j]),
                    "rates": j - i + 1,
                }
            )
        i = j + 1
    found.sort(key=lambda w: -w["rates"])
    return found[:limit]


def _counts(b: A.Bifurcation) -> dict[str, int]:
    return {name: int(np.sum(b.kind == code)) for code, name in enumerate(A.KINDS)}


def _first(b: A.Bifurcation, code: int) -> float | None:
    idx = np.flatnonzero(b.kind == code)
    return float(b.lrs[idx[0]]) if idx.size else None


def to_json(study: Study, *, points: bool = True) -> dict:
    """bifurcation.json's content (``points=False`` leaves the orbit points out)."""
    b, s, d = study.bifurcation, study.settings, study.doublings
    lyap = np.asarray(b.lyapunov, np.float64)
    res: dict[str, Any] = {
        "surface": s.surface,
        "formula": study.surface.formula,
        "start": list(s.start),
        "dtype": s.dtype.name,
        "lrs": b.lrs.astype(np.float64).tolist(),
        "kind": [A.KINDS[k] for k in b.kind.tolist()],
        "period": b.period.tolist(),
        "lyapunov": [_num(v) for v in lyap.tolist()],
        "superstable": np.flatnonzero(np.isneginf(lyap)).tolist(),
        "counts": _counts(b),
        "first_periodic": _first(b, A.PERIODIC),
        "first_chaotic": _first(b, A.CHAOTIC),
        "windows": _windows(study),
        "nearest_minimum": None
        if b.nearest < 0
        else {
            "index": b.nearest,
            "location": list(study.surface.minima[b.nearest].location),
            "value": study.surface.minima[b.nearest].value,
        },
        "stability_limit": _num(b.stability_limit),
        "axis": dataclasses.asdict(study.axis),
        "period_doublings": None
        if d is None
        else {
            "period": d.period.tolist(),
            "lr": d.lr.tolist(),
            "lo": d.lo.tolist(),
            "hi": d.hi.tolist(),
            "tol": d.tol,
            "transient": s.doubling_transient,
            "searched": [s.lr_min, s.lr_max],
            "exact": list(EXACT_DOUBLE_WELL_RATES[: d.lr.size])
            if s.surface == "double_well" and _from_first(study)
            else None,
        },
        "feigenbaum": {
            "ratios": study.ratios.tolist(),
            "delta": FEIGENBAUM_DELTA,
            "difference": (study.ratios - FEIGENBAUM_DELTA).tolist(),
            "exact_cascade": list(EXACT_DOUBLE_WELL[: len(study.ratios)])
            if s.surface == "double_well" and _from_first(study)
            else None,
        },
        "settings": {
            **dataclasses.asdict(s),
            "start": list(s.start),
            "window": max(A.WINDOW, 2 * s.max_period, s.keep),
            "period_rtol": b.rtol,
            "chaos": b.chaos,
        },
        "seconds": study.seconds,
    }
    if points:
        res["points"] = _points(np.asarray(b.points), b.kind)
    res["versions"] = versions()
    res["command"] = command_line()
    return res


def _from_first(study: Study) -> bool:
    """Whether the doublings found start at period 2 and miss none: the
    exact cascade's ratios then line up with the measured ones."""
    d = study.doublings
    return (
        d is not None
        and d.period.size > 0
        and np.array_equal(d.period, 2 ** np.arange(1, d.period.size + 1))
    )


# --------------------------------------------------------------------------
# Report.


def _kind_words(res: dict) -> str:
    c = res["counts"]
    parts = [f"{c[k]:,} {k}" for k in A.KINDS if c[k]]
    return ", ".join(parts)


def _newcomer_text(study: Study) -> list[str]:
    """What the diagram shows, in paragraphs a newcomer reads."""
    b, s = study.bifurcation, study.settings
    limit = b.stability_limit
    mname = (
        ""
        if b.nearest < 0
        else f"min {b.nearest} "
        + (
            f"(x = {study.surface.minima[b.nearest].location[0]:g})"
            if study.surface.dim == 1
            else "(" + ", ".join(f"{v:.3g}" for v in study.surface.minima[b.nearest].location) + ")"
        )
    )
    out = [
        f"Each column of dots is one learning rate: gradient descent ran from "
        f"{_start_words(s)} for {s.transient:,} steps, then the dots are where it was at the "
        f"last {s.keep} of {max(A.WINDOW, 2 * s.max_period, s.keep):,} more steps. "
        "One dot per column: the run settled on a fixed point. Two dots: it jumps between two "
        "points forever (a 2-cycle), four dots a 4-cycle, and so on. A smear of dots: "
        "chaos, a run that never repeats."
    ]
    if math.isfinite(limit):
        out.append(
            f"The red dashed line is the stability limit 2/λ_max = {limit:.4g} of the minimum "
            f"nearest the start, {mname}: λ_max is the largest eigenvalue of the Hessian there "
            "(in one dimension, the second derivative). Near a minimum one step multiplies "
            "the distance to it by 1 - lr λ along each eigenvector; past 2/λ_max that factor "
            "is below -1, so the minimum pushes runs away, overshooting from side to side. "
            "They need not fly off: away from the minimum the gradient is no longer "
            "proportional to the distance, and the overshoots can balance on a 2-cycle around "
            "the minimum (where they cannot, the run diverges: grey). As the rate grows the "
            "2-cycle itself becomes unstable and doubles, and so on, each doubling closer to "
            "the last, until no cycle is stable: chaos."
        )
    out.append(
        "The lower panel is the largest Lyapunov exponent: how fast two runs that start a "
        "hair apart separate, in nats per step (their distance grows like e^(exponent x "
        "steps)). Below 0 the run settles and nearby runs follow it; it touches 0 at every "
        "doubling (the old cycle is just losing stability), and above 0 the run is chaotic."
        + (
            " Dotted blue lines mark the doubling rates found by bisection."
            if study.doublings is not None and study.doublings.lr.size
            else ""
        )
    )
    return out


def _ylim(study: Study) -> tuple[float, float] | None:
    """The diagram's vertical range: its orbit points' (not the diverged
    runs'), within :meth:`Axis.span` of the surface's domain."""
    b = study.bifurcation
    keep = b.kind != A.DIVERGED
    if not keep.any():
        return None
    vals = study.axis.project(np.asarray(b.points[keep], np.float64))
    vals = vals[np.isfinite(vals)]
    if not vals.size:
        return None
    lo, hi = study.axis.span(study.surface)
    return max(float(vals.min()), lo), min(float(vals.max()), hi)


def _start_words(s: Settings) -> str:
    if len(s.start) == 1:
        return f"x0 = {s.start[0]:g}"
    return "(" + ", ".join(f"{v:g}" for v in s.start) + ")"


def _early_words(study: Study, res: dict) -> str:
    """Why the diagram's first cycle can appear just below 2/lambda_max."""
    first, limit = res["first_periodic"], study.bifurcation.stability_limit
    if first is None or not math.isfinite(limit) or first >= limit:
        return ""
    return (
        f" That is a little below 2/λ_max = {limit:.4g}: just below the limit the step's "
        "factor 1 - lr λ_max is close to -1, the run converges very slowly, and after "
        f"{study.settings.transient:,} steps it still flips from side to side, which reads as "
        "period 2 (critical slowing down"
        + (
            f"; the bisection below runs {study.settings.doubling_transient:,} steps and more)."
            if study.doublings is not None
            else ")."
        )
    )


def _doubling_rows(study: Study) -> tuple[list[str], list[list]]:
    """The doublings table: headers and rows."""
    d = study.doublings
    exact = study.settings.surface == "double_well" and _from_first(study)
    headers = ["k", "period", "rate r_k", "bracket", "r_k - r_(k-1)", "ratio", "ratio - δ"]
    if exact:
        headers[3:3] = ["exact r_k", "error / interval"]
        headers.append("exact cascade's ratio")
    rows: list[list] = []
    if d is None:
        return headers, rows
    for k in range(d.period.size):
        gap = "-" if k == 0 else f"{d.lr[k] - d.lr[k - 1]:.4g}"
        ratio = "-" if k < 2 else f"{study.ratios[k - 2]:.4f}"
        diff = "-" if k < 2 else f"{study.ratios[k - 2] - FEIGENBAUM_DELTA:+.4f}"
        row = [
            k + 1,
            int(d.period[k]),
            f"{d.lr[k]:.8f}",
            f"[{d.lo[k]:.8f}, {d.hi[k]:.8f}]",
            gap,
            ratio,
            diff,
        ]
        if exact:
            ex = EXACT_DOUBLE_WELL_RATES[k] if k < len(EXACT_DOUBLE_WELL_RATES) else None
            gap_k = 1.0 if k == 0 else d.lr[k] - d.lr[k - 1]
            row[3:3] = [
                "-" if ex is None else f"{ex:.8f}",
                "-" if ex is None else f"{(d.lr[k] - ex) / gap_k:+.1e}",
            ]
            row.append("-" if k < 2 else f"{EXACT_DOUBLE_WELL[k - 2]:.4f}")
        rows.append(row)
    return headers, rows


def _precision_words(study: Study) -> str:
    """How close the ratios are to delta, and why not closer."""
    r, s, d = study.ratios, study.settings, study.doublings
    if d is None:
        return "No doublings were looked for (--doublings 0)."
    if r.size == 0:
        return (
            f"{d.period.size} doubling(s) found between {s.lr_min:g} and {s.lr_max:g}: a ratio "
            "needs three. Widen the range or ask for more --doublings."
        )
    gap = abs(r[-1] - FEIGENBAUM_DELTA)
    parts = [
        f"The last ratio, {r[-1]:.4f}, is {gap:.4f} from δ = {FEIGENBAUM_DELTA:.4f} "
        f"({100 * gap / FEIGENBAUM_DELTA:.2f}%). Why not closer:",
        "(1) The first ratios are not δ even when measured exactly: δ is their limit as the "
        "period grows, and each ratio is about δ times closer to it than the one before.",
    ]
    if s.surface == "double_well" and _from_first(study):
        ex = np.asarray(EXACT_DOUBLE_WELL[: r.size])
        err = float(np.max(np.abs(r - ex)))
        parts.append(
            f"Against the double well's exact cascade ({', '.join(f'{v:.4f}' for v in ex)}) "
            f"the measured ratios are off by at most {err:.4f}."
        )
    parts.append(
        f"(2) Critical slowing down: just below a doubling the old cycle's multiplier is "
        f"near -1 and runs converge to it slowly, so within the {s.doubling_transient:,} "
        "steps (doubled for each next doubling) a run still flips and reads as the doubled "
        "period: each rate is found slightly low, by about the same share of its interval, "
        "which cancels to first order in the ratios"
        + (
            " (the error / interval column: the exact rates are Newton's method's on the "
            "cycles' multipliers)."
            if s.surface == "double_well" and _from_first(study)
            else "."
        )
    )
    if s.dtype == np.float32:
        parts.append(
            "(3) Precision: this run is float32, which resolves rates to about 6e-8 of their "
            "size and orbits to about 3e-4 near a doubling, while the later doubling intervals "
            "are 1e-4 to 1e-5 wide: past the 5th doubling float32's ratios wander off (the "
            "double well's 4th to 6th measured 4.61, 4.41 and 5.29), which is why a float32 "
            "run looks for 5 by default. Run with --x64 (float64, 8 doublings by default) for "
            "ratios that reach 4.669."
        )
    else:
        parts.append(
            f"(3) Precision: float64 resolves the rates far below the brackets' width "
            f"({float(np.max(d.hi - d.lo)):.2g} at most here); the deepest doublings are "
            "limited by the slowing down, not by rounding."
        )
    return " ".join(parts)


def report_sections(rep: Report, study: Study, res: dict, *, name: str = "bifurcation") -> None:
    """The study's text, figures and tables, added to ``rep`` (the lesson
    edge-of-stability adds two of them to its own report)."""
    for para in _newcomer_text(study):
        rep.text(para)
    rep.text(
        f"{len(res['lrs']):,} rates from {study.settings.lr_min:g} to {study.settings.lr_max:g}: "
        f"{_kind_words(res)}."
        + (
            f" The first cycle (period 2 or more) appears at lr = {res['first_periodic']:.4g}"
            if res["first_periodic"] is not None
            else ""
        )
        + (
            f", the first chaotic run at lr = {res['first_chaotic']:.4g}."
            if res["first_chaotic"] is not None
            else "."
        )
        + _early_words(study, res)
    )
    windows = sorted(res["windows"][:4], key=lambda w: w["lr_from"])
    if windows:
        rep.text(
            "Past the first chaotic rate there are windows of order, where a cycle is stable "
            "again (the white gaps in the smear; widest first, at most four): "
            + "; ".join(
                f"period {w['period']} from lr = {w['lr_from']:.4g} to {w['lr_to']:.4g}"
                for w in windows
            )
            + "."
            + (
                " A cycle of period 3 in a map of one variable implies cycles of every "
                "period (Sharkovskii; Li and Yorke's 'period three implies chaos')."
                if study.surface.dim == 1 and any(w["period"] == 3 for w in windows)
                else ""
            )
        )
    rep.figure(
        P.bifurcation_diagram(
            study.bifurcation,
            study.doublings,
            origin=study.axis.origin,
            direction=study.axis.direction,
            ylabel=study.axis.label,
            title=f"{study.surface.name}: gradient descent from {_start_words(study.settings)}",
            ylim=_ylim(study),
        ),
        name,
        f"Top: the last {study.settings.keep} points of the run at each rate; the "
        f"vertical axis is {study.axis.label}. Bottom: the largest Lyapunov exponent (0: the "
        "dotted black line). Red dashed: the stability limit 2/λ_max; dotted blue: the rates "
        "where the period doubles; grey: rates where the run diverged.",
    )
    d = study.doublings
    if d is None:
        return
    rep.heading("Period doublings and Feigenbaum's constant")
    rep.text(
        f"Each doubling was bracketed on a scan of 512 rates, then bisected to "
        f"{d.tol:.2g} on the rate (the bracket's ends: the period is below 2^k at the "
        "lower end, 2^k at the upper). Feigenbaum (1978) found that the intervals "
        "between successive doublings shrink by the same factor δ = 4.6692... in every "
        "smooth map with one quadratic hump; the ratio column is (r_(k-1) - r_(k-2)) / "
        "(r_k - r_(k-1))."
    )
    headers, rows = _doubling_rows(study)
    if rows:
        rep.table(headers, rows)
    rep.text(_precision_words(study))
    if d.period.size >= 2:
        rep.figure(
            P.doubling_intervals(
                d,
                delta=FEIGENBAUM_DELTA,
                exact=EXACT_DOUBLE_WELL
                if study.settings.surface == "double_well" and _from_first(study)
                else None,
            ),
            f"{name}_doublings" if name != "bifurcation" else "doublings",
            "Left: the interval between successive doublings on a log scale, a straight "
            "line of slope -log δ when the intervals shrink by δ each time (dashed: δ^-k "
            "through the last interval). Right: the ratios themselves against δ (dashed)"
            + (
                "; hollow circles: the exact cascade's ratios, what a perfect measurement gives"
                if study.settings.surface == "double_well" and _from_first(study)
                else ""
            )
            + ".",
        )


def write(out: str | Path, study: Study) -> dict:
    """Writes bifurcation.json, the figures and report.html into ``out``;
    returns the JSON's content."""
    out = Path(out)
    res = to_json(study)
    write_json(out / "bifurcation.json", res)
    rep = Report(f"Beyond the stability limit: {study.surface.name}")
    report_sections(rep, study, res)
    rep.heading("Settings")
    s = study.settings
    rep.table(
        ["setting", "value"],
        [
            ["surface", f"{s.surface}: {study.surface.formula}"],
            ["start", _start_words(s)],
            ["rates", f"{s.lrs:,} evenly spaced from {s.lr_min:g} to {s.lr_max:g}"],
            ["transient", f"{s.transient:,} steps"],
            ["measured steps", f"{max(A.WINDOW, 2 * s.max_period, s.keep):,}"],
            ["orbit points kept", s.keep],
            ["longest period looked for", s.max_period],
            ["period tolerance (relative)", f"{study.bifurcation.rtol:.2g}"],
            ["chaos: Lyapunov exponent above", f"{study.bifurcation.chaos:g}"],
            ["doublings looked for", s.doublings],
            [
                "bisection's final bracket",
                "-" if study.doublings is None else f"{study.doublings.tol:.2g} on the rate",
            ],
            ["doubling transient", f"{s.doubling_transient:,} steps, doubled at each doubling"],
            ["precision", s.dtype.name],
            [
                "time",
                f"diagram {study.seconds['diagram']:.1f} s, doublings "
                f"{study.seconds['doublings']:.1f} s (compilation included)",
            ],
        ],
    )
    rep.code(res["command"])
    rep.write(out)
    return res


def run(out: Path, *, seed: int = 0, progress=None, **options) -> dict:
    """:func:`compute` with ``options``, then :func:`write`. (Nothing here is
    random: ``seed`` is accepted as every command's and unused.)"""
    del seed
    return write(out, compute(progress=progress, **options))


def summary(res: dict) -> str:
    lrs = res["lrs"]
    start = ",".join(f"{v:g}" for v in res["start"])
    lines = [
        f"bifurcation: {res['surface']} from {start}, {len(lrs):,} rates from {lrs[0]:.4g} "
        f"to {lrs[-1]:.4g} ({res['dtype']}): {_kind_words(res)}"
    ]
    limit = res["stability_limit"]
    lines.append(f"  2/lambda_max = {'none' if limit is None else f'{limit:.6g}'}")
    d = res["period_doublings"]
    if d is not None and d["lr"]:
        lines.append(
            "  period doublings: "
            + ", ".join(f"{lr:.6f} (->{p})" for lr, p in zip(d["lr"], d["period"], strict=True))
        )
    ratios = res["feigenbaum"]["ratios"]
    if ratios:
        lines.append(
            "  Feigenbaum ratios: "
            + ", ".join(f"{r:.4f}" for r in ratios)
            + f" (delta = {FEIGENBAUM_DELTA:.4f})"
        )
    return "\n".join(lines)
