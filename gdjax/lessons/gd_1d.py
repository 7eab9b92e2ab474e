"""Lesson A: gradient descent in 1D on f(x) = 3x^2 - 3x + 4 (minimum at x = 0.5).

Shows the learning journey (x and f'(x) vs epoch), what a too-large (lr = 1:
explodes to ~1e70 in float64) and a too-small (lr = 0.001: still far after
100 epochs) learning rate do, and the lr x epochs trade-off: 10x smaller lr
needs about 10x the epochs.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import gdjax
from gdjax import _validate, plot
from gdjax.descent import DEFAULT_BOUND
from gdjax.maps.config import available_memory
from gdjax.report import Report, write_json
from gdjax.runs import command_line

SURFACE = "quadratic"
SWEEP_LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
SWEEP_EPOCHS = (10, 30, 100, 300, 1000, 3000, 10000)
RUNS = ("main", "small_lr", "large_lr")


def quadratic_problem(seed: int):
    """Lessons A and D's problem: the parabola, its minimum and a random start
    drawn uniformly from the plotted range. Returns (surface, target, x0)."""
    surface = gdjax.surfaces.get(SURFACE)
    target = surface.minima[0].location[0]
    lo, hi = surface.domain[0]
    return surface, target, jax.random.uniform(jax.random.key(seed), (), minval=lo, maxval=hi)


class Journey(NamedTuple):
    """Lesson A's numbers.

    Attributes:
        surface: the parabola.
        seed: the seed of the start.
        x0: the start.
        target: the minimum, x = 0.5.
        lrs: the main, too-small and too-large learning rates (:data:`RUNS`).
        trajs: their trajectories, one row per learning rate.
        large_final_x64: the too-large rate's x after the epochs, in float64.
        large_diverged_step64: the step it diverged at in float64 (-1: never).
        sweep: every lr of :data:`SWEEP_LRS` x every count of :data:`SWEEP_EPOCHS`.
    """

    surface: gdjax.Surface
    seed: int
    x0: jax.Array
    target: float
    lrs: jax.Array
    trajs: gdjax.Trajectory
    large_final_x64: float
    large_diverged_step64: int
    sweep: gdjax.Sweep

    @property
    def epochs(self) -> int:
        return self.trajs.params.shape[1] - 1


def compute(
    *,
    seed: int = 0,
    lr: float = 0.01,
    epochs: int = 100,
    large_lr: float = 1.0,
    small_lr: float = 0.001,
    tol: float = 0.01,
) -> Journey:
    """Descends the parabola with ``lr``, ``small_lr`` and ``large_lr`` (one
    vmapped call; the large one again in float64) and sweeps lr x epochs;
    arrival means ``|x - 0.5| < tol``.

    Raises:
        ValueError: before any compute, for a rate or tol that float32 does
            not hold (:func:`check_float32`), or for more epochs than the
            trajectories' memory allows (:func:`check_epochs_memory`).
    """
    for name, value in (("lr", lr), ("small_lr", small_lr), ("large_lr", large_lr), ("tol", tol)):
        check_float32(name, value)
    epochs = _validate.check_count("epochs", epochs)
    check_epochs_memory(epochs)
    surface, target, x0 = quadratic_problem(seed)
    lrs = jnp.array([lr, small_lr, large_lr])
    trajs = jax.vmap(lambda r: gdjax.descend(surface, x0, steps=epochs, lr=r))(lrs)
    with jax.enable_x64(True):
        big64 = gdjax.descend(
            surface, jnp.asarray(float(x0), jnp.float64), steps=epochs, lr=large_lr
        )
        big64_final = float(big64.final)
        big64_step = int(big64.diverged_step)
    sw = gdjax.sweep(surface, x0, jnp.array(SWEEP_LRS), epochs=SWEEP_EPOCHS, target=target, tol=tol)
    return Journey(surface, seed, x0, target, lrs, trajs, big64_final, big64_step, sw)


FLOAT32_RANGE = (float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max))
"""The positive float32 numbers with full precision: the lessons' rates and
tolerances run in float32, where a number outside this range turns into 0,
inf or a subnormal approximation."""

BYTES_PER_EPOCH = 400
"""Host memory lesson A needs per epoch, a measured ~320 bytes with some
margin (three float32 trajectories, the float64 one, their copies and the
figures' lines), on top of :data:`BASE_BYTES`."""

BASE_BYTES = 1 << 30


def check_float32(name: str, value) -> None:
    """Raises ValueError unless ``value`` is finite, > 0 and within
    :data:`FLOAT32_RANGE` (``name`` says which argument or option)."""
    _validate.check_positive(name, value)
    lo, hi = FLOAT32_RANGE
    if not lo <= float(value) <= hi:
        with np.errstate(over="ignore", under="ignore"):
            cast = float(np.float32(value))
        raise ValueError(
            f"{name} must be between {lo:.2g} and {hi:.2g} (the lesson computes in float32, "
            f"where {float(value):g} becomes {cast:g}), got {value!r}"
        )


def check_epochs_memory(epochs: int, what: str = "epochs") -> None:
    """Refuses, before any compute, more epochs than the memory available
    holds (:data:`BYTES_PER_EPOCH` each); ``what`` names ``epochs``."""
    need = BASE_BYTES + (int(epochs) + 1) * BYTES_PER_EPOCH
    have = available_memory()
    if have is not None and need > have:
        fits = max(0, have - BASE_BYTES) // BYTES_PER_EPOCH - 1
        raise ValueError(
            f"{what} {int(epochs):,}: the trajectories need about {need / 2**30:,.1f} GiB of "
            f"memory, and {have / 2**30:.1f} GiB is available; use at most {fits:,} epochs"
        )


def to_json(journey: Journey) -> dict:
    """results.json's content."""
    trajs, target, sw = journey.trajs, journey.target, journey.sweep
    runs = {}
    for i, name in enumerate(RUNS):
        runs[name] = {
            "lr": float(journey.lrs[i]),
            "final_x": float(trajs.params[i, -1]),
            "final_grad": float(trajs.grads[i, -1]),
            "distance": abs(float(trajs.params[i, -1]) - target),
            "diverged": bool(trajs.diverged[i]),
            "diverged_step": int(trajs.diverged_step[i]),
            "last_finite_step": _last_finite_step(trajs.lr[i]),
        }
    runs["large_lr"]["final_x_float64"] = journey.large_final_x64
    runs["large_lr"]["diverged_step_float64"] = journey.large_diverged_step64

    to_arrive = np.asarray(sw.converged_step[0, 0])
    error = np.abs(np.asarray(sw.value[0, 0]) - target)
    arrive = dict(zip(SWEEP_LRS, to_arrive.tolist(), strict=True))
    pairs = [
        (a, b, arrive[b] / arrive[a])
        # SWEEP_LRS steps by ~3x, so entries two apart are 10x apart; above lr = 1/6
        # the iterate overshoots and the 1/lr law no longer applies
        for a, b in zip(SWEEP_LRS[2:], SWEEP_LRS[:-2], strict=True)
        if a <= 0.1 and arrive[a] > 0 and arrive[b] > 0
    ]
    return {
        "lesson": "A: gradient descent in 1D",
        "surface": SURFACE,
        "seed": journey.seed,
        "x0": float(journey.x0),
        "target": target,
        "epochs": journey.epochs,
        "tol": float(sw.tol),
        "runs": runs,
        "runs_note": "diverged_step: the step from which |x| stayed beyond the divergence "
        f"bound ({DEFAULT_BOUND:g}) or met a non-finite value, -1: did not diverge; "
        "last_finite_step: the step whose x is final_x when the next step would have "
        "overflowed (the run stopped there), null: every step was taken",
        "sweep": {
            "lr": list(SWEEP_LRS),
            "epochs": list(SWEEP_EPOCHS),
            "distance": np.where(np.asarray(sw.diverged[0, 0]), -1.0, error).tolist(),
            "diverged": np.asarray(sw.diverged[0, 0]).tolist(),
            "epochs_to_arrive": to_arrive.tolist(),
            "note": "distance -1 marks a diverged run; epochs_to_arrive -1: not within tol",
        },
        "epochs_ratio_for_10x_smaller_lr": [
            {"lr": a, "smaller_lr": b, "ratio": r} for a, b, r in pairs
        ],
    }


def write(out: str | Path, journey: Journey) -> dict:
    """Writes results.json, the figures and report.html into ``out``; returns the JSON's content."""
    out = Path(out)
    results = to_json(journey)
    write_json(out / "results.json", results)
    _report(out, journey, results)
    return results


def run(out: Path, *, seed: int = 0, **options) -> dict:
    """:func:`compute` with ``options``, then :func:`write` into ``out``."""
    return write(out, compute(seed=seed, **options))


def _report(out: Path, journey: Journey, res: dict) -> None:
    surface, trajs, lrs, sw = journey.surface, journey.trajs, journey.lrs, journey.sweep
    r = Report("Lesson A: gradient descent in 1D")
    r.text(
        f"f(x) = {surface.formula}, f'(x) by jax.grad. Start x0 = {res['x0']:.4f} drawn "
        f"uniformly from {surface.domain[0]} (seed {res['seed']}). Minimum at x = 0.5."
    )
    main = res["runs"]["main"]
    r.heading("The learning journey")
    main_traj = jax.tree.map(lambda a: a[0], trajs)
    r.figure(
        plot.learning_journey(
            jax.tree.map(lambda a: a[:1], trajs), [f"lr = {main['lr']:g}"], target=0.5
        ),
        "journey",
        "x settles at 0.5 while f'(x) goes to 0: the steps shrink with the "
        "derivative, so the approach is asymptotic.",
    )
    r.figure(plot.curve_1d(surface, main_traj), "curve", "The iterates on the parabola.")
    r.heading("Too large and too small")
    small, large = res["runs"]["small_lr"], res["runs"]["large_lr"]
    r.figure(
        plot.learning_journey(
            trajs,
            [f"lr = {v:g}" for v in np.asarray(lrs)],
            target=0.5,
            notes=[None, None, _float64_note(large, res["epochs"])],
        ),
        "lr_compare",
        "Three learning rates; the axes are set by the runs that stay bounded, and a run "
        "that diverges is drawn until it leaves them.",
    )
    r.table(
        ["lr", f"x after {res['epochs']} epochs", "|x - 0.5|", "diverged"],
        [
            [
                v["lr"],
                _final_x_words(v),
                v["distance"],
                f"yes, at step {v['diverged_step']}" if v["diverged"] else "no",
            ]
            for v in (main, small, large)
        ],
    )
    if any(v["last_finite_step"] is not None for v in (main, small, large)):
        r.text(
            f"A run diverges at the step from which |x| stays beyond {DEFAULT_BOUND:g} (or "
            "meets a non-finite value). One whose next step would overflow float32 stops at "
            "its last finite point: its x and |x - 0.5| are that point's, at the step shown."
        )
    r.text(
        f"lr = {large['lr']:g} in float64: x after {res['epochs']} epochs = "
        f"{large['final_x_float64']:.3e} (the lesson's ~1e70). In float32 the run overflows; "
        "gdjax freezes it at its last finite point and flags it, so no NaN reaches a plot."
    )
    r.heading("Learning rate x epochs")
    r.figure(
        plot.error_grid(sw),
        "lr_epochs_grid",
        "|x - 0.5| after n epochs for each learning rate."
        + (
            " A white cell reading 0 is exactly 0: x = 0.5 in float32."
            if np.any(np.asarray(sw.value) == journey.target)
            else ""
        ),
    )
    r.figure(
        plot.epochs_to_arrive(sw),
        "epochs_to_arrive",
        "Epochs to arrive within tol against lr: slope -1 on log-log axes means 10x "
        "smaller lr needs 10x the epochs.",
    )
    r.table(
        ["lr", "smaller lr", "epochs ratio"],
        [[p["lr"], p["smaller_lr"], p["ratio"]] for p in res["epochs_ratio_for_10x_smaller_lr"]],
    )
    r.heading("Command")
    r.code(command_line())
    r.write(out)


def _last_finite_step(lr) -> int | None:
    """The step a run stopped at because its next step would not be finite
    (gdjax records a rate of 0 for a step not taken), or None."""
    stopped = np.flatnonzero(np.asarray(lr) == 0)
    return int(stopped[0]) if stopped.size else None


def _number(v: float) -> str:
    """A number as the report's tables write it."""
    return f"{v:.4g}" if v == 0 or 1e-3 <= abs(v) < 1e5 else f"{v:.3e}"


def _final_x_words(run: dict) -> str:
    """A run's x after the epochs, or its last finite x and where it stopped."""
    if run["last_finite_step"] is None:
        return _number(run["final_x"])
    return f"{_number(run['final_x'])} (last finite, step {run['last_finite_step']})"


def _float64_note(large: dict, epochs: int) -> str | None:
    """Where the too-large lr's float64 run ends, as a power of ten."""
    x = abs(large["final_x_float64"])
    if not large["diverged"] or not np.isfinite(x) or x < 1e3:
        return None
    return f"|x| \u2192 1e{int(np.floor(np.log10(x)))} after {epochs} epochs in float64"


def summary(res: dict) -> str:
    main, small, large = (res["runs"][k] for k in ("main", "small_lr", "large_lr"))
    lines = [
        f"Lesson A (1D): x0 = {res['x0']:.4f}, {res['epochs']} epochs",
        f"  lr = {main['lr']:g}: x = {main['final_x']:.5f}, |x - 0.5| = {main['distance']:.2e},"
        f" f'(x) = {main['final_grad']:.2e}",
        f"  lr = {small['lr']:g} (too small): still {small['distance']:.3f} away from 0.5",
        f"  lr = {large['lr']:g} (too large): diverged at epoch {large['diverged_step']};"
        f" float64 x after {res['epochs']} epochs = {large['final_x_float64']:.3e}",
    ]
    for p in res["epochs_ratio_for_10x_smaller_lr"]:
        lines.append(f"  lr {p['lr']:g} -> {p['smaller_lr']:g}: {p['ratio']:.2f}x the epochs")
    return "\n".join(lines)
