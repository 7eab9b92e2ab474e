"""Options of ``gdjax lesson high-dim`` (the lesson: :mod:`gdjax.lessons.high_dim`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gdjax.cli._common import Command, add_progress_option, positive_int, progress_bar
from gdjax.lessons import high_dim as lesson

__all__ = ["COMMAND", "add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dims", type=positive_int("--dims"), default=8, help="d = 1..DIMS (default: 8)"
    )
    parser.add_argument(
        "--samples",
        type=positive_int("--samples"),
        default=1 << 20,
        help="GOE matrices per d (default: 1048576; 1e8 sees some at d = 7)",
    )
    parser.add_argument(
        "--landscapes",
        type=positive_int("--landscapes"),
        default=4,
        help="random landscapes per d (default: 4)",
    )
    parser.add_argument(
        "--starts",
        type=positive_int("--starts"),
        default=1024,
        help="Newton starts per landscape (default: 1024)",
    )
    add_progress_option(parser)


def run(out: Path, *, seed: int = 0, no_progress: bool = False, **options) -> dict:
    """The lesson with one progress bar over its two stages: the GOE chunks,
    then the landscapes (one step per dimension)."""
    with progress_bar("GOE chunks, then landscapes", "step", not no_progress) as progress:
        return lesson.run(out, seed=seed, progress=progress, **options)


COMMAND = Command("high_dim", lesson.__doc__, add_arguments, run, lesson.summary)
