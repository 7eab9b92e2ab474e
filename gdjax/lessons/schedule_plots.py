"""Lesson E's schedules: the textbook chapter's schedule plots, hand-written and optax twin.

Draws square root (base 1.0, 30 steps), factor (0.9, min 1e-2, base 2.0, 50
steps), multi-factor ([15, 30] x 0.5, base 0.5, 30 steps), cosine (20 steps,
base 0.5, final 0.01, 30 steps) and cosine with 5 warmup steps, each with its
optax twin overlaid and, where MXNet has the scheduler, the value MXNet's
convention gives each update.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gdjax import plot
from gdjax import schedules as S
from gdjax.report import Report, write_json
from gdjax.runs import command_line

# name -> (schedule, steps drawn, MXNet equivalent or None)
TEXTBOOK = {
    "square_root": (S.square_root(1.0), 30, None),
    "factor": (
        S.factor(2.0, 0.9, 1e-2),
        50,
        ("FactorScheduler", {"step": 1, "factor": 0.9, "stop_factor_lr": 1e-2, "base_lr": 2.0}),
    ),
    "multi_factor": (
        S.multi_factor(0.5, [15, 30], 0.5),
        30,
        ("MultiFactorScheduler", {"step": [15, 30], "factor": 0.5, "base_lr": 0.5}),
    ),
    "cosine": (
        S.cosine(0.5, 20, 0.01),
        30,
        ("CosineScheduler", {"max_update": 20, "base_lr": 0.5, "final_lr": 0.01}),
    ),
    "cosine_warmup": (
        S.cosine(0.5, 20, 0.01, warmup_steps=5),
        30,
        (
            "CosineScheduler",
            {"max_update": 20, "base_lr": 0.5, "final_lr": 0.01, "warmup_steps": 5},
        ),
    ),
}


class ScheduleCurve(NamedTuple):
    """One schedule's learning rate at each update it is drawn for.

    Attributes:
        schedule: the hand-written schedule.
        gdjax: its rate at updates 0, 1, ... (one vmapped program for all).
        optax: the same from its optax twin, or None (no twin).
        mxnet: what MXNet's scheduler gives each update (it counts from 1),
            or None (MXNet has no such scheduler).
    """

    schedule: S.Schedule
    gdjax: np.ndarray
    optax: np.ndarray | None
    mxnet: np.ndarray | None


def compute() -> dict[str, ScheduleCurve]:
    """Every schedule of :data:`TEXTBOOK`, by name."""
    # every schedule at once: one vmapped program over the stacked population
    longest = max(n for _, n, _ in TEXTBOOK.values())
    counts = jnp.arange(longest)
    batch = S.stack([s for s, _, _ in TEXTBOOK.values()])
    grid = jax.jit(jax.vmap(jax.vmap(S.evaluate, in_axes=(None, 0)), in_axes=(0, None)))(
        batch, counts
    )
    curves = {}
    for i, (name, (sched, n, mx)) in enumerate(TEXTBOOK.items()):
        twin = sched.optax()
        with jax.numpy_dtype_promotion("standard"):  # optax mixes int counts and floats
            theirs = None if twin is None else np.asarray(jax.vmap(twin)(counts[:n]))
        mxnet = (
            None if mx is None else np.asarray(jax.vmap(S.from_mxnet(mx[0], **mx[1]))(counts[:n]))
        )
        curves[name] = ScheduleCurve(sched, np.asarray(grid[i, :n]), theirs, mxnet)
    return curves


def to_json(curves: dict[str, ScheduleCurve]) -> dict:
    """results.json's content."""
    entries = {
        name: {
            "schedule": repr(c.schedule),
            "steps": len(c.gdjax),
            "gdjax": c.gdjax.tolist(),
            "optax": None if c.optax is None else c.optax.tolist(),
            "optax_max_rel_diff": None if c.optax is None else _rel(c.gdjax, c.optax),
            "mxnet_convention": None if c.mxnet is None else c.mxnet.tolist(),
        }
        for name, c in curves.items()
    }
    return {
        "lesson": "E: learning-rate schedules (textbook plots)",
        "convention": "update k uses schedule(k) (optax, PyTorch); MXNet's column is "
        "what its scheduler gives update k (num_update = k + 1)",
        "schedules": entries,
    }


def write(out: str | Path, curves: dict[str, ScheduleCurve]) -> dict:
    """Writes results.json, the figures and report.html into ``out``; returns the JSON's content."""
    out = Path(out)
    results = to_json(curves)
    write_json(out / "results.json", results)
    entries = results["schedules"]
    rep = Report("Lesson E: learning-rate schedules")
    rep.text(
        "Each schedule is written by hand in gdjax.schedules and drawn with its optax twin "
        "(built from optax's own functions with the same arguments) overlaid. The dotted line "
        "is MXNet's convention: its scheduler is read at num_update = k + 1 for update k."
    )
    rep.figure(plot.schedule_grid(curves), "schedules", "The chapter's five schedules.")
    for name, curve in curves.items():
        rep.figure(plot.schedule_curve(name, curve), f"schedule_{name}", entries[name]["schedule"])
    rep.table(
        ["schedule", "optax twin", "max |gdjax - optax| / optax"],
        [
            [
                e["schedule"],
                "none (no optax twin)" if e["optax"] is None else "yes",
                "-" if e["optax_max_rel_diff"] is None else e["optax_max_rel_diff"],
            ]
            for e in entries.values()
        ],
    )
    rep.heading("Command")
    rep.code(command_line())
    rep.write(out)
    return results


def run(out: Path, *, seed: int = 0) -> dict:
    """:func:`compute`, then :func:`write` into ``out`` (``seed`` is unused:
    the plots are deterministic)."""
    del seed
    return write(out, compute())


def _rel(a, b) -> float:
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


def summary(res: dict) -> str:
    lines = ["Lesson E schedules: hand-written vs optax twin (max relative difference)"]
    for name, e in res["schedules"].items():
        diff = e["optax_max_rel_diff"]
        lines.append(
            f"  {name:14s} {'no optax twin' if diff is None else f'{diff:.1e}'}   {e['schedule']}"
        )
    return "\n".join(lines)
