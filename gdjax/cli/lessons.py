"""``gdjax lessons`` (every lesson on its defaults, the main job) and
``gdjax lesson NAME`` (one lesson, with its options).

Each lesson (:mod:`gdjax.lessons`) computes its numbers, draws them with
:mod:`gdjax.plot` and writes them with :mod:`gdjax.report`; this module
gives each its command-line options and runs it into its folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import html
import time
from pathlib import Path

from gdjax import _format, runs
from gdjax.cli import basins, continuation, high_dim, optimizers, trainability
from gdjax.cli._common import (
    Command,
    add_descent_options,
    add_parser,
    add_progress_option,
    open_out,
    positive_float,
    positive_int,
    prepare,
    progress_bar,
    run_and_print,
    seed_type,
)
from gdjax.cli.lenet import add_training_arguments
from gdjax.lessons import (
    dynamic_lr,
    edge_of_stability,
    gd_1d,
    gd_2d_peaks,
    local_minima,
    lr_scheduling,
    schedule_plots,
)
from gdjax.lessons.chapter import CHAPTER_POLICIES

__all__ = ["LESSONS", "LESSON_SIZES", "STUDIES", "add_parsers", "folder", "run_all", "run_one"]


def _float32_positive(name: str):
    """argparse type of a lesson's rate or tol: finite, > 0 and held by
    float32 (:func:`gdjax.lessons.gd_1d.check_float32`), refused in one line
    before any compute."""
    parse = positive_float(name)

    def parse_float32(text: str) -> float:
        value = parse(text)
        try:
            gd_1d.check_float32(name, value)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        return value

    return parse_float32


def _options_1d(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lr",
        type=_float32_positive("--lr"),
        default=0.01,
        help="learning rate of the main run (default: %(default)s)",
    )
    parser.add_argument(
        "--epochs",
        type=positive_int("--epochs"),
        default=100,
        help="epochs of the main, large-lr and small-lr runs (default: %(default)s)",
    )
    parser.add_argument(
        "--large-lr",
        type=_float32_positive("--large-lr"),
        default=1.0,
        help="a learning rate that is too large (default: %(default)s)",
    )
    parser.add_argument(
        "--small-lr",
        type=_float32_positive("--small-lr"),
        default=0.001,
        help="a learning rate that is too small (default: %(default)s)",
    )
    parser.add_argument(
        "--tol",
        type=_float32_positive("--tol"),
        default=0.01,
        help="arrival: |x - 0.5| < tol (default: %(default)s)",
    )


def _options_2d(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--starts",
        type=positive_int("--starts"),
        default=12,
        help="number of random starts (default: %(default)s)",
    )
    add_descent_options(parser)


def _options_dynamic_lr(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lr",
        type=_float32_positive("--lr"),
        default=0.3,
        help="lr_0 of the fixed and time-based rules (default: %(default)s)",
    )
    parser.add_argument(
        "--grad-scale",
        type=_float32_positive("--grad-scale"),
        default=0.02,
        help="scale of the gradient-based rule (default: %(default)s)",
    )
    parser.add_argument(
        "--epochs",
        type=positive_int("--epochs"),
        default=50,
        help="N, the number of epochs (default: %(default)s)",
    )
    parser.add_argument(
        "--tol",
        type=_float32_positive("--tol"),
        default=0.01,
        help="arrival: |x - 0.5| < tol (default: %(default)s)",
    )


def _no_options(parser: argparse.ArgumentParser) -> None:
    del parser  # the chapter's settings are the point; nothing to choose


def _options_lr_scheduling(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--with-factor", action="store_true", help="also the factor schedule")
    parser.add_argument(
        "--seeds",
        type=seed_type("--seeds"),
        nargs="+",
        default=None,
        help="train every policy with each seed; the table gives means (default: --seed)",
    )
    parser.add_argument(
        "--policies",
        nargs="+",
        choices=list(CHAPTER_POLICIES),
        default=None,
        help="a subset of the policies (default: all five of the book's)",
    )
    add_training_arguments(parser)


def _options_edge_of_stability(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lrs",
        type=positive_int("--lrs"),
        default=1500,
        help="rates of each bifurcation diagram (default: %(default)s)",
    )
    parser.add_argument(
        "--grid",
        type=positive_int("--grid"),
        default=128,
        help="n x n starts of each attractor map, at most 512 (default: %(default)s)",
    )
    parser.add_argument(
        "--doublings",
        type=positive_int("--doublings"),
        default=6,
        help="the double well's period doublings bisected in float64, at most 16 "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--steps",
        type=positive_int("--steps"),
        default=3000,
        help="full-batch steps of the network, at least 100 (default: %(default)s)",
    )
    add_progress_option(parser)


def _run_edge_of_stability(out: Path, *, seed: int = 0, no_progress: bool = False, **options):
    """The lesson with a progress bar over its four parts."""
    with progress_bar("diagrams, maps, network", "part", not no_progress) as progress:
        return edge_of_stability.run(out, seed=seed, progress=progress, **options)


def _lesson(module, add_arguments, **kwargs) -> Command:
    name = module.__name__.rsplit(".", 1)[-1]  # the folder's manifest names the module
    return Command(name, module.__doc__, add_arguments, module.run, module.summary, **kwargs)


def _smaller(command: Command, **sizes) -> Command:
    """A command as a lesson: the same options, smaller sizes by default
    (``gdjax lessons`` runs every lesson in about a minute or two)."""
    return dataclasses.replace(
        command,
        add_arguments=functools.partial(command.add_arguments, defaults=sizes),
        run=functools.partial(command.run, **sizes),
    )


LESSON_SIZES = {
    "continuation": {"grid": 128, "lrs": 24, "steps": 1000, "uncertainty": 4096},
    "optimizers": {"grid": 128, "steps": 2000},
    "trainability": {"grid": 128, "zoom_grid": 64, "zoom_levels": 3, "uncertainty": 512},
}
"""The sizes at which ``gdjax lessons`` runs the research commands (their
own commands default to the full sizes)."""

LESSONS: dict[str, Command] = {
    "1d": _lesson(gd_1d, _options_1d),
    "2d": _lesson(gd_2d_peaks, _options_2d),
    "local-minima": Command(
        "local_minima",
        local_minima.__doc__,
        functools.partial(basins.add_arguments, default_grid=local_minima.DEFAULT_GRID),
        basins.run,
        local_minima.summary,
        shards=True,
    ),
    "dynamic-lr": _lesson(dynamic_lr, _options_dynamic_lr),
    "schedules": _lesson(schedule_plots, _no_options),
    "continuation": _smaller(continuation.COMMAND, **LESSON_SIZES["continuation"]),
    "optimizers": _smaller(optimizers.COMMAND, **LESSON_SIZES["optimizers"]),
    "high-dim": high_dim.COMMAND,
    "trainability": _smaller(trainability.COMMAND, **LESSON_SIZES["trainability"]),
    "edge-of-stability": Command(
        "edge_of_stability",
        edge_of_stability.__doc__,
        _options_edge_of_stability,
        _run_edge_of_stability,
        edge_of_stability.summary,
    ),
}
"""The lessons ``gdjax lessons`` runs, by their CLI names (those of
:data:`gdjax.lessons.LESSONS`)."""

STUDIES: dict[str, Command] = {
    "lr-scheduling": _lesson(lr_scheduling, _options_lr_scheduling, trains=True, multiprocess=True),
}
"""Lessons that train networks for minutes to an hour: ``gdjax lesson NAME``
runs them; ``gdjax lessons`` (the quick main job) leaves them out."""


def folder(name: str) -> str:
    """A lesson's folder: ``lesson_NAME`` (dashes to underscores)."""
    return f"lesson_{name.replace('-', '_')}"


def add_parsers(sub) -> None:
    """Adds ``lessons`` and ``lesson NAME`` to the CLI's subparsers."""
    p_all = sub.add_parser("lessons", help="run every lesson on its defaults (the main job)")
    p_all.add_argument("--out", default="runs", help="output directory (default: %(default)s)")
    p_all.add_argument(
        "--seed",
        type=seed_type("--seed"),
        default=0,
        help="random seed, 0 <= N < 2**32 (default: %(default)s)",
    )
    p_all.add_argument(
        "--overwrite",
        action="store_true",
        help="replace whatever the lesson folders in --out hold (without it, a folder that "
        "holds an earlier run of its own lesson is replaced, anything else is refused)",
    )
    p_lesson = sub.add_parser("lesson", help="run one lesson")
    lessons = p_lesson.add_subparsers(dest="lesson", required=True, metavar="LESSON")
    for name, command in {**LESSONS, **STUDIES}.items():
        add_parser(lessons, name, command, f"runs/{folder(name)}")


def run_one(name: str, args: dict):
    """``gdjax lesson NAME``: one lesson with its parsed options."""
    return run_and_print({**LESSONS, **STUDIES}[name], args)


def run_all(out: Path, seed: int, overwrite: bool) -> None:
    """Every lesson into out/lesson_*/, then out/index.html linking the reports.

    A lesson's folder that holds an earlier run of that same lesson (a
    finished one, or one cut short by Ctrl-C) is replaced, so the main job
    runs again as it ran the first time; a folder that holds anything else
    is refused unless ``overwrite``."""
    prepare(*LESSONS.values())  # before the first lesson starts JAX
    jobs, waiting = [], []
    try:
        for name, command in LESSONS.items():  # every folder checked and locked before compute
            where = out / folder(name)
            earlier = runs.read_manifest(where)
            again = earlier is not None and earlier.get("command") == command.name
            args = {"out": where, "seed": seed, "overwrite": overwrite or again}
            jobs.append((name, command, args, open_out(command, args)))
            waiting.append(jobs[-1][-1])
        start = time.perf_counter()
        for _, command, args, run in jobs:
            waiting.remove(run)
            run_and_print(command, args, run=run)
    finally:  # a refused folder, Ctrl-C, a failure: the lessons not run are left as they were
        for run in waiting:
            run.abandon()
            run.close()
    _write_index(out, [(name, command) for name, command, _, _ in jobs])
    print(f"all lessons done in {time.perf_counter() - start:.1f} s; open {out}/index.html")


def _write_index(out: Path, lessons) -> Path:
    """out/index.html: one line per lesson, linking its report."""
    items = "".join(
        f'<li><a href="{folder(name)}/report.html">{html.escape(name)}</a>: '
        f"{_format.html_doc(command.doc.splitlines()[0])}</li>"
        for name, command in lessons
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>gdjax lessons</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:900px;margin:2em auto;"
        "padding:0 1em;line-height:1.6}</style></head><body><h1>gdjax lessons</h1>"
        f"<p>Each lesson's report, written by <code>gdjax lessons</code>.</p><ul>{items}</ul>"
        "</body></html>\n"
    )
    return runs.write_text(out / "index.html", page)
