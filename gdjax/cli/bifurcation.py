"""Options of ``gdjax bifurcation`` (the study: :mod:`gdjax.lessons.bifurcation`)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from gdjax.cli._common import (
    Command,
    add_progress_option,
    positive_float,
    positive_int,
    progress_bar,
)
from gdjax.lessons import bifurcation as lesson

__all__ = ["COMMAND", "add_arguments", "run", "start_type"]


def start_type(text: str) -> tuple[float, ...]:
    """``--start X[,Y,...]``: one finite number per coordinate."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--start takes numbers separated by commas (X or X,Y), got {text!r}"
        ) from None
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"--start must be finite, got {text}")
    return values


def _nonnegative(name: str):
    """An integer >= 0 (1e4 is one too)."""
    positive = positive_int(name)

    def parse(text: str) -> int:
        try:
            if float(text) == 0:
                return 0
        except ValueError:
            pass
        try:
            return positive(text)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"{name} must be an integer >= 0, got {text!r}"
            ) from None

    return parse


def add_arguments(parser: argparse.ArgumentParser, *, defaults: dict | None = None) -> None:
    """The options of ``gdjax bifurcation``."""
    d = {"lrs": 2000, **(defaults or {})}
    names = ", ".join(
        f"{k}: start {','.join(f'{v:g}' for v in x.start)}, {x.lr_min:g}..{x.lr_max:g}"
        for k, x in lesson.DEFAULTS.items()
    )
    parser.add_argument(
        "--surface", default="double_well", help="surface name (default: double_well)"
    )
    parser.add_argument(
        "--start",
        type=start_type,
        default=None,
        metavar="X[,Y]",
        help=f"the start, one number per coordinate (default by surface: {names}; "
        "elsewhere next to the global minimum)",
    )
    parser.add_argument(
        "--lr-min",
        type=positive_float("--lr-min"),
        default=None,
        help="smallest rate (default by surface, as --start; elsewhere 0.8 x 2/lambda_max)",
    )
    parser.add_argument(
        "--lr-max",
        type=positive_float("--lr-max"),
        default=None,
        help="largest rate (default by surface; elsewhere 1.6 x 2/lambda_max)",
    )
    parser.add_argument(
        "--lrs",
        type=positive_int("--lrs"),
        default=d["lrs"],
        help="rates, evenly spaced from --lr-min to --lr-max (default: %(default)s)",
    )
    parser.add_argument(
        "--transient",
        type=_nonnegative("--transient"),
        default=2000,
        help="steps at each rate before the orbit is read (default: %(default)s)",
    )
    parser.add_argument(
        "--keep",
        type=positive_int("--keep"),
        default=64,
        help=f"orbit points kept and drawn per rate, at most {lesson.MAX_KEEP} "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--max-period",
        type=positive_int("--max-period"),
        default=64,
        help=f"the longest period looked for, at most {lesson.MAX_PERIOD} (default: %(default)s)",
    )
    parser.add_argument(
        "--doublings",
        type=_nonnegative("--doublings"),
        default=None,
        help="period doublings to bisect: periods 2, 4, ..., 2^N; 0 for none "
        "(default: 5, or 8 with --x64)",
    )
    parser.add_argument(
        "--doubling-transient",
        type=positive_int("--doubling-transient"),
        default=lesson.DOUBLING_TRANSIENT,
        help="steps before the period is read at the first doubling, doubled at each next "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--tol",
        type=positive_float("--tol"),
        default=None,
        help="the bisection's final bracket on the rate (default: 1e-9 x --lr-max in "
        "float64, 16 eps x --lr-max in float32)",
    )
    parser.add_argument(
        "--x64",
        action="store_true",
        help="compute in float64 (float32 resolves only the first 4 or 5 doublings)",
    )
    add_progress_option(parser)


def run(out: Path, *, seed: int = 0, no_progress: bool = False, **options) -> dict:
    """The study (:func:`gdjax.lessons.bifurcation.run`) with a progress bar
    over its two parts, the diagram and the doublings (a Ctrl-C swallowed
    on the way stops the work at the next part)."""
    with progress_bar("diagram, then doublings", "part", not no_progress) as progress:
        return lesson.run(out, seed=seed, progress=progress, **options)


COMMAND = Command(
    name="bifurcation",
    doc=lesson.__doc__,
    add_arguments=add_arguments,
    run=run,
    summary=lesson.summary,
)
