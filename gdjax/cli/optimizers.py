"""Options of ``gdjax optimizers`` (the study: :mod:`gdjax.lessons.optimizer_maps`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gdjax import optimizers as O
from gdjax.cli._common import (
    Command,
    add_progress_option,
    positive_float,
    positive_int,
    progress_bar,
)
from gdjax.lessons import optimizer_maps as lesson

__all__ = ["COMMAND", "add_arguments", "run"]


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    for n in names:
        if n not in O.PRESETS:
            raise argparse.ArgumentTypeError(
                f"unknown optimizer {n!r}; choose from {', '.join(O.PRESETS)}"
            )
    if len(set(names)) != len(names) or not names:
        raise argparse.ArgumentTypeError(f"give each optimizer once, got {text!r}")
    return names


def _lr(text: str) -> tuple[str | None, float]:
    """``--lr VALUE`` (every optimizer) or ``--lr NAME=VALUE`` (one)."""
    name, eq, value = text.partition("=")
    if not eq:
        return None, positive_float("--lr")(text)
    name = name.strip()
    if name not in O.PRESETS:
        raise argparse.ArgumentTypeError(
            f"--lr takes VALUE or NAME=VALUE with NAME one of {', '.join(O.PRESETS)}, got {text!r}"
        )
    return name, positive_float(f"--lr {name}")(value)


def add_arguments(parser: argparse.ArgumentParser, *, defaults: dict | None = None) -> None:
    """The options of ``gdjax optimizers`` (``defaults`` overrides the sizes)."""
    d = {"grid": 512, "steps": 2000, **(defaults or {})}
    parser.add_argument("--surface", default="peaks", help="surface name (default: peaks)")
    parser.add_argument(
        "--grid",
        type=positive_int("--grid"),
        default=d["grid"],
        help="n x n grid of starts (default: %(default)s)",
    )
    parser.add_argument(
        "--steps",
        type=positive_int("--steps"),
        default=d["steps"],
        help="steps (default: %(default)s)",
    )
    parser.add_argument(
        "--tol",
        type=positive_float("--tol"),
        default=1e-3,
        help="converged: |grad| < tol at the last step (default: %(default)s)",
    )
    parser.add_argument(
        "--optimizers",
        type=_names,
        default=list(O.PRESETS),
        help=f"comma-separated, from {','.join(O.PRESETS)} (default: all)",
    )
    parser.add_argument(
        "--lr",
        type=_lr,
        action="append",
        default=None,
        metavar="[NAME=]VALUE",
        help="the rate of every optimizer (VALUE), or of one (NAME=VALUE, e.g. adam=0.05; "
        "repeat for several; overrides VALUE for that one) (default: each one's own, "
        + ", ".join(f"{p.name} {p.lr:g}" for p in O.PRESETS.values())
        + ")",
    )
    parser.add_argument(
        "--momentum",
        type=float,
        default=None,
        help="momentum and Nesterov's momentum (default: 0.9)",
    )
    parser.add_argument("--b1", type=float, default=None, help="Adam's b1 (default: 0.9)")
    parser.add_argument("--b2", type=float, default=None, help="Adam's b2 (default: 0.999)")
    parser.add_argument("--decay", type=float, default=None, help="RMSprop's decay (default: 0.9)")
    parser.add_argument(
        "--radius",
        type=positive_float("--radius"),
        default=None,
        help="a run reached a minimum if it passed the gradient test there, or ends within "
        "this distance of it (default: 1%% of the domain's width)",
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
        "--attractors",
        action="store_true",
        help="label where the starts that end not converged (and not near a minimum) go: a "
        "periodic orbit around a minimum (its period), chaos, or still moving; each is "
        "continued from its end point with its own optimizer and a fresh optimizer state "
        "(off by default, as for gdjax basins)",
    )
    add_progress_option(parser)


def run(out: Path, *, seed: int = 0, no_progress: bool = False, **options) -> dict:
    """:func:`gdjax.lessons.optimizer_maps.compute` with a progress bar, then
    its ``write``; returns optimizers.json's content."""
    del seed  # a grid of starts has no randomness
    with progress_bar("optimizers", "start", not no_progress) as progress:
        cmp = lesson.compute(progress=progress, **options)
    return lesson.write(out, cmp)


COMMAND = Command(
    name="optimizer_maps",
    doc=lesson.__doc__,
    add_arguments=add_arguments,
    run=run,
    summary=lesson.summary,
    shards=True,
    multiprocess=True,
)
