"""Options of ``gdjax continuation`` (the study: :mod:`gdjax.lessons.rate_continuation`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gdjax.cli._common import (
    Command,
    add_progress_option,
    add_uncertainty_option,
    positive_float,
    positive_int,
    progress_bar,
)
from gdjax.lessons import rate_continuation as lesson

__all__ = ["COMMAND", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser, *, defaults: dict | None = None) -> None:
    """The options of ``gdjax continuation`` (``defaults`` overrides the
    built-in sizes: the lesson runs it smaller)."""
    d = {
        "grid": 512,
        "lrs": 64,
        "steps": 2000,
        "uncertainty": "auto",
        **(defaults or {}),
    }
    parser.add_argument("--surface", default="peaks", help="surface name (default: peaks)")
    parser.add_argument(
        "--lr-min",
        type=positive_float("--lr-min"),
        default=0.001,
        help="smallest rate (default: %(default)s)",
    )
    parser.add_argument(
        "--lr-max",
        type=positive_float("--lr-max"),
        default=0.2,
        help="largest rate (default: %(default)s)",
    )
    parser.add_argument(
        "--lrs",
        type=positive_int("--lrs"),
        default=d["lrs"],
        help="rates, log-spaced from --lr-min to --lr-max (default: %(default)s)",
    )
    parser.add_argument(
        "--grid",
        type=positive_int("--grid"),
        default=d["grid"],
        help="n x n starts per rate (default: %(default)s)",
    )
    parser.add_argument(
        "--steps",
        type=positive_int("--steps"),
        default=d["steps"],
        help="descent steps (default: %(default)s)",
    )
    parser.add_argument(
        "--tol",
        type=positive_float("--tol"),
        default=1e-3,
        help="converged: |grad| < tol at the last step (default: %(default)s)",
    )
    parser.add_argument(
        "--box",
        type=positive_int("--box"),
        default=5,
        help="box size in pixels of the basin entropies (default: %(default)s)",
    )
    parser.add_argument(
        "--panels",
        type=positive_int("--panels"),
        default=6,
        help="maps shown side by side in the panel figure (default: %(default)s)",
    )
    parser.add_argument(
        "--domain",
        type=float,
        nargs=4,
        metavar=("X0", "X1", "Y0", "Y1"),
        default=None,
        help="box of starts (default: the surface's)",
    )
    add_uncertainty_option(parser, d["uncertainty"], "at three rates", "descents")
    parser.add_argument(
        "--minima-only",
        action="store_true",
        help="label minima only: the starts that end not converged stay 'not converged' "
        "(by default they are continued and labelled by the periodic orbit around a minimum, "
        "the chaos or the motion they reach)",
    )
    parser.add_argument(
        "--x64",
        action="store_true",
        help="compute in float64 (float32 runs can stay at a minimum past its stability limit)",
    )
    add_progress_option(parser)


def run(
    out: Path,
    *,
    seed: int = 0,
    panels: int = 6,
    no_progress: bool = False,
    **options,
) -> dict:
    """:func:`gdjax.lessons.rate_continuation.compute` with a progress bar,
    then its ``write``; returns continuation.json's content."""
    stages = ["uncertainty exponent"]  # after the maps: its perturbed starts
    if not options.get("minima_only"):
        stages.insert(0, "attractors")  # the not-converged runs, continued
    with progress_bar("maps", "start", not no_progress, stages) as progress:
        cont = lesson.compute(progress=progress, seed=seed, **options)
    return lesson.write(out, cont, panels)


COMMAND = Command(
    name="rate_continuation",
    doc=lesson.__doc__,
    add_arguments=add_arguments,
    run=run,
    summary=lesson.summary,
    shards=True,
    multiprocess=True,
)
