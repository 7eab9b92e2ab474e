"""Options of ``gdjax trainability`` (the study: :mod:`gdjax.lessons.trainability_maps`)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from gdjax.cli._common import (
    Command,
    add_progress_option,
    add_uncertainty_option,
    positive_int,
    progress_bar,
)
from gdjax.lessons import trainability_maps as lesson

__all__ = ["COMMAND", "add_arguments", "run"]


def _floats(n: int, flag: str):
    def parse(text: str):
        try:
            values = tuple(float(v) for v in text.split(","))
        except ValueError:
            values = ()
        if len(values) != n or not all(math.isfinite(v) for v in values):
            raise argparse.ArgumentTypeError(
                f"{flag} takes {n} comma-separated finite numbers, got {text!r}"
            )
        return values

    return parse


def _count_or_auto(flag: str):
    count = positive_int(flag)

    def parse(text: str):
        return text if text == "auto" else count(text)

    return parse


def add_arguments(parser: argparse.ArgumentParser, *, defaults: dict | None = None) -> None:
    d = {
        "grid": 1024,
        "zoom_grid": "auto",
        "zoom_levels": 4,
        "uncertainty": "auto",
        **(defaults or {}),
    }
    parser.add_argument(
        "--grid",
        type=positive_int("--grid"),
        default=d["grid"],
        help="n x n pixels (default: %(default)s)",
    )
    parser.add_argument(
        "--steps",
        type=positive_int("--steps"),
        default=None,
        help="training steps per pixel (default: 100 for the network, 1000 for a surface)",
    )
    parser.add_argument(
        "--width",
        type=positive_int("--width"),
        default=8,
        help="the network's hidden units (default: 8; the paper's figures: 16)",
    )
    parser.add_argument(
        "--surface", default=None, help="map a surface of the zoo over (lr, momentum) instead"
    )
    parser.add_argument("--x", default=None, help="the x axis: lr_0 (network) or lr (surface)")
    parser.add_argument(
        "--y", default=None, help="the y axis: lr_1 (network) or momentum (surface)"
    )
    parser.add_argument(
        "--start",
        type=_floats(2, "--start"),
        default=(0.0, 0.0),
        metavar="X,Y",
        help="a surface's start (default: 0,0)",
    )
    parser.add_argument(
        "--zoom",
        type=_floats(3, "--zoom"),
        default=None,
        metavar="CX,CY,W",
        help="map this window instead: centre and width in axis units (log10 on a log axis)",
    )
    parser.add_argument(
        "--zoom-levels",
        type=int,
        default=d["zoom_levels"],
        help="zooms into the boundary, each 8x narrower than the map or zoom before it and "
        "inside it (zoom k: 8^(k+1)x narrower than the map); deeper zooms than the "
        "precision resolves are refused (default: %(default)s)",
    )
    parser.add_argument(
        "--zoom-grid",
        type=_count_or_auto("--zoom-grid"),
        default=d["zoom_grid"],
        help="pixels per side of each zoom; auto: half the map's side, at most 256, so the "
        "zooms cost about what the map costs (default: %(default)s)",
    )
    add_uncertainty_option(parser, d["uncertainty"], "of the main map's boundary", "trainings")
    add_uncertainty_option(
        parser,
        d.get("zoom_uncertainty", 0),
        "of each zoom's boundary (about 25 s a zoom at 4096 here)",
        "trainings",
        flag="--zoom-uncertainty",
    )
    parser.add_argument(
        "--x64",
        action="store_true",
        help="compute in float64, as the paper does (the same network; on a 2-core CPU the "
        "map took 2.4x the time, the deep zooms 4-9x): float32 resolves no window narrower "
        "than 1e-7 decades per pixel, float64 about 2e-15 (docs/trainability.md)",
    )
    add_progress_option(parser)


def run(out: Path, *, seed: int = 0, no_progress: bool = False, **options) -> dict:
    """The study with a progress bar over the main map's pixels."""
    if options.get("zoom_levels", 0) < 0:
        raise ValueError("--zoom-levels must be >= 0")
    with progress_bar("trainability", "training", not no_progress) as progress:
        return lesson.run(out, seed=seed, progress=progress, **options)


COMMAND = Command(
    "trainability_maps",
    lesson.__doc__,
    add_arguments,
    run,
    lesson.summary,
    shards=True,
    multiprocess=True,
)
