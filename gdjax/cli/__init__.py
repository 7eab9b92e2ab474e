"""The ``gdjax`` command line.

    gdjax lessons [--out DIR]               every lesson on its defaults (the main job);
                                            out/index.html links the five reports
    gdjax lesson 1d|2d|local-minima|dynamic-lr|schedules|lr-scheduling [--out DIR] [options]
    gdjax schedules [--out DIR]             the textbook's schedule plots, with optax twins
    gdjax basins --surface peaks --grid 1024 --lr 0.01 --steps 1000 --out DIR
    gdjax continuation --surface peaks --lr-min 0.001 --lr-max 0.2 --lrs 64 --grid 512 --out DIR
    gdjax bifurcation --surface double_well --start 0.5 --lr-min 0.9 --lr-max 1.4 --out DIR
    gdjax optimizers --surface peaks --grid 512 --out DIR
    gdjax trainability --grid 1024 --out DIR [--surface peaks --x lr --y momentum] [--zoom CX,CY,W]
    gdjax lenet --schedule cosine --epochs 30 --out DIR [--resume] [--subset N]
    gdjax surfaces                          the surface zoo and its minima

``gdjax COMMAND --help`` lists each command's options. Exit status: 0 done,
2 bad input (one line on stderr), 1 a run that could not finish, 130 Ctrl-C.
A folder that holds another run is refused unless ``--overwrite`` (or, for
training, ``--resume``) is given.

One module per command: :mod:`gdjax.cli.lessons` (``lessons``, ``lesson``),
:mod:`gdjax.cli.basins`, :mod:`gdjax.cli.continuation`, :mod:`gdjax.cli.bifurcation`,
:mod:`gdjax.cli.optimizers`, :mod:`gdjax.cli.trainability`,
:mod:`gdjax.cli.lenet`, :mod:`gdjax.cli.schedules`
and :mod:`gdjax.cli.surfaces`; ``main`` here dispatches to them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gdjax.cli import (
    basins,
    bifurcation,
    continuation,
    lenet,
    lessons,
    optimizers,
    schedules,
    surfaces,
    trainability,
)
from gdjax.cli._common import Parser, add_parser, run_and_print

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    names = ", ".join({**lessons.LESSONS, **lessons.STUDIES})
    parser = Parser(
        prog="gdjax",
        description="JAX-accelerated, vectorized experiments on gradient descent.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"lessons: {names} (gdjax lesson NAME --help for each)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    lessons.add_parsers(sub)
    add_parser(
        sub,
        "schedules",
        schedules.COMMAND,
        "runs/lesson_schedules",
        help="draw the textbook's schedules with their optax twins",
    )
    add_parser(
        sub,
        "basins",
        basins.COMMAND,
        "runs/basins",
        help="map basins of attraction (report.html, basins.json, figures)",
    )
    add_parser(
        sub,
        "continuation",
        continuation.COMMAND,
        "runs/continuation",
        help="basin maps over a grid of learning rates (continuation.json, figures, GIF)",
    )
    add_parser(
        sub,
        "bifurcation",
        bifurcation.COMMAND,
        "runs/bifurcation",
        help="gradient descent beyond 2/lambda_max: orbits, period doublings, Feigenbaum's "
        "constant (bifurcation.json, figures)",
    )
    add_parser(
        sub,
        "optimizers",
        optimizers.COMMAND,
        "runs/optimizers",
        help="GD, momentum, Nesterov, Adam, RMSprop side by side on the same starts",
    )
    add_parser(
        sub,
        "trainability",
        trainability.COMMAND,
        "runs/trainability",
        help="trainable / divergent over two hyperparameters, zooms into the boundary",
    )
    add_parser(
        sub,
        "lenet",
        lenet.COMMAND,
        "runs/lenet",
        help="train the chapter's LeNet on Fashion-MNIST with a schedule",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub.add_parser("surfaces", help="list the surface zoo and its minima")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Runs ``gdjax COMMAND ...`` (``argv`` defaults to the process's);
    returns 0, or exits with 2 (bad input), 1 (a run that could not finish)
    or 130 (Ctrl-C)."""
    args = vars(_build_parser().parse_args(argv))
    command = args.pop("command")
    if command == "surfaces":
        surfaces.main()
    elif command == "lesson":
        lessons.run_one(args.pop("lesson"), args)
    elif command == "lessons":
        lessons.run_all(Path(args["out"]), args["seed"], args["overwrite"])
    else:
        commands = {
            "basins": basins,
            "bifurcation": bifurcation,
            "continuation": continuation,
            "lenet": lenet,
            "optimizers": optimizers,
            "schedules": schedules,
            "trainability": trainability,
        }
        run_and_print(commands[command].COMMAND, args)
    return 0
