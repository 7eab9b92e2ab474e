"""Lesson E's schedules: the textbook chapter's schedule plots, hand-written and optax twin.

Draws square root (base 1.0, 30 steps), factor (0.9, min 1e-2, base 2.0, 50
steps), multi-factor ([15, 30] x 0.5, base 0.5, 30 steps), cosine (20 steps,
base 0.5, final 0.01, 30 steps) and cosine with 5 warmup steps, each with its
optax twin overlaid and, where MXNet has the scheduler, the value MXNet's
convention gives each update.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

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


def run(out: Path, *, seed: int = 0) -> dict:
    del seed  # deterministic
    entries = {}
    # every schedule at once: one vmapped program over the stacked population
    longest = max(n for _, n, _ in TEXTBOOK.values())
    counts = jnp.arange(longest)
    batch = S.stack([s for s, _, _ in TEXTBOOK.values()])
    grid = jax.jit(jax.vmap(jax.vmap(S.evaluate, in_axes=(None, 0)), in_axes=(0, None)))(
        batch, counts
    )
    for i, (name, (sched, n, mx)) in enumerate(TEXTBOOK.items()):
        ours = np.asarray(grid[i, :n])
        twin = sched.optax()
        with jax.numpy_dtype_promotion("standard"):  # optax mixes int counts and floats
            theirs = None if twin is None else np.asarray(jax.vmap(twin)(counts[:n]))
        mxnet = (
            None if mx is None else np.asarray(jax.vmap(S.from_mxnet(mx[0], **mx[1]))(counts[:n]))
        )
        entries[name] = {
            "schedule": repr(sched),
            "steps": n,
            "gdjax": ours.tolist(),
            "optax": None if theirs is None else theirs.tolist(),
            "optax_max_rel_diff": None if theirs is None else _rel(ours, theirs),
            "mxnet_convention": None if mxnet is None else mxnet.tolist(),
        }
    results = {
        "lesson": "E: learning-rate schedules (textbook plots)",
        "convention": "update k uses schedule(k) (optax, PyTorch); MXNet's column is "
        "what its scheduler gives update k (num_update = k + 1)",
        "schedules": entries,
    }
    write_json(out / "results.json", results)

    rep = Report("Lesson E: learning-rate schedules")
    rep.text(
        "Each schedule is written by hand in gdjax.schedules and drawn with its optax twin "
        "(built from optax's own functions with the same arguments) overlaid. The dotted line "
        "is MXNet's convention: its scheduler is read at num_update = k + 1 for update k."
    )
    rep.figure(_overview(entries), "schedules", "The chapter's five schedules.")
    for name, e in entries.items():
        rep.figure(_one(name, e), f"schedule_{name}", e["schedule"])
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


def _rel(a, b) -> float:
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12)))


def _draw(ax, name, e):
    """One schedule: the learning rate of each update, drawn as a step (it holds
    for the whole update)."""
    k = np.arange(e["steps"])
    steps = {"drawstyle": "steps-post"}
    ax.plot(k, e["gdjax"], "-", lw=2.5, alpha=0.6, label="gdjax (hand-written)", **steps)
    if e["optax"] is not None:
        ax.plot(k, e["optax"], "k--", lw=1, label="optax twin", **steps)
    if e["mxnet_convention"] is not None:
        ax.plot(
            k, e["mxnet_convention"], ":", color="C3", lw=1.2, label="MXNet convention", **steps
        )
    ax.set_title(name.replace("_", " "), fontsize=10)
    ax.set_xlabel("update")
    ax.set_ylabel("learning rate")
    ax.grid(alpha=0.3)


def _overview(entries):
    """Every schedule in a grid three panels wide (reads at ~1000 px), the
    legend in the spare panel."""
    cols = 3
    rows = -(-(len(entries) + 1) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(9.5, 2.9 * rows), squeeze=False, layout="constrained"
    )
    flat = axes.ravel()
    for ax, (name, e) in zip(flat, entries.items(), strict=False):
        _draw(ax, name, e)
    handles, labels = {}, {}
    for ax in flat[: len(entries)]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
            labels[lab] = lab
    for ax in flat[len(entries) :]:
        ax.axis("off")
    flat[len(entries)].legend(list(handles.values()), list(labels), loc="center", fontsize=9)
    return fig


def _one(name, e):
    fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
    _draw(ax, name, e)
    ax.legend(fontsize=8)
    return fig


def summary(res: dict) -> str:
    lines = ["Lesson E schedules: hand-written vs optax twin (max relative difference)"]
    for name, e in res["schedules"].items():
        diff = e["optax_max_rel_diff"]
        lines.append(
            f"  {name:14s} {'no optax twin' if diff is None else f'{diff:.1e}'}   {e['schedule']}"
        )
    return "\n".join(lines)
