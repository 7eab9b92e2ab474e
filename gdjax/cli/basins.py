"""The ``gdjax basins`` command: basins of attraction at any size, with any rule.

Maps which minimum gradient descent reaches from every start of a grid (or
of N random starts) over a 2D surface, finds every critical point (minima,
saddles, maxima), measures basin fractions with 95% intervals, and shows how
the chance that the best of k random restarts reaches a global minimum grows
with k: lesson C's study (gdjax.lessons.local_minima), with a fixed rate, a
schedule or an optax optimizer. Writes basins.json, the figures and
report.html. With --attractors, the starts that end not converged (above a
minimum's stability limit 2/lambda_max: its periodic orbits and chaos) are
continued and labelled by the attractor they reach (plain gradient descent,
maps in memory).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
from pathlib import Path

import gdjax
from gdjax import _registry, distributed
from gdjax import schedules as S
from gdjax import tiled as tiled_maps
from gdjax._format import duration
from gdjax.cli._common import (
    Command,
    add_descent_options,
    add_progress_option,
    positive_float,
    positive_int,
    progress_bar,
    setting_type,
)
from gdjax.lessons import disk_map, local_minima
from gdjax.maps.config import available_memory

__all__ = [
    "COMMAND",
    "OPTIMIZERS",
    "TILED_ABOVE",
    "add_arguments",
    "describe_plan",
    "parse_rule",
    "run",
]

TILED_ABOVE = 4096
"""Grids larger than this are mapped tile by tile (:mod:`gdjax.tiled`)."""

OPTIMIZERS = _registry.OPTAX
"""The optimizers ``--optimizer`` accepts (:mod:`gdjax._registry`): optax factories
whose only required argument is the learning rate (tested on a parabola)."""


def add_arguments(parser: argparse.ArgumentParser, *, default_grid: int = 1024) -> None:
    """The options of ``gdjax basins`` (and of ``gdjax lesson local-minima``,
    whose grid is smaller by default)."""
    parser.add_argument("--surface", default="peaks", help="surface name (default: peaks)")
    parser.add_argument(
        "--grid",
        type=positive_int("--grid"),
        default=None,
        help=f"n x n grid of starts (default: {default_grid} unless --starts)",
    )
    parser.add_argument(
        "--starts",
        type=positive_int("--starts"),
        default=None,
        help="N uniform random starts instead of a grid",
    )
    add_descent_options(parser)
    parser.add_argument(
        "--optimizer",
        default=None,
        choices=OPTIMIZERS,
        metavar="NAME",
        help=f"an optax optimizer, lr = --lr: {', '.join(OPTIMIZERS)}",
    )
    parser.add_argument("--momentum", type=float, default=None, help="momentum for --optimizer sgd")
    parser.add_argument(
        "--setting",
        type=setting_type,
        action="append",
        default=None,
        metavar="NAME=VALUE",
        help="a float setting of --optimizer, e.g. b1=0.8 (adam); repeat for several",
    )
    parser.add_argument(
        "--schedule",
        default=None,
        help="a schedule, NAME[:key=value,...], base_lr = --lr; e.g. "
        "cosine:max_steps=1000,final_lr=0.001",
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
        "--bound",
        type=positive_float("--bound"),
        default=None,
        help="a run that ends beyond this |coordinate| without settling counts as diverged "
        "(default: 1e10; a run that settles, |grad| < tol, never does)",
    )
    parser.add_argument(
        "--global-tol",
        type=positive_float("--global-tol"),
        default=1e-6,
        help="minima within this (relative to max(1, |f_min|)) of the lowest value count "
        "as global (default: %(default)s)",
    )
    parser.add_argument("--x64", action="store_true", help="compute in float64")
    parser.add_argument(
        "--chunk-size",
        type=positive_int("--chunk-size"),
        default=None,
        help="starts per compiled call (default: 2^17 on a CPU, 2^22 on an accelerator)",
    )
    parser.add_argument(
        "--label-on",
        choices=("auto", "host", "device"),
        default="auto",
        help="label the runs on the device (only labels and steps come back) or on the host "
        "(every end point comes back); default auto: the device on an accelerator",
    )
    parser.add_argument(
        "--attractors",
        action="store_true",
        help="label where the starts that end not converged go: a periodic orbit around a "
        "minimum (its period), chaos, or still moving (continued from their end points; plain "
        "gradient descent or --optimizer, not --schedule; maps in memory; off by default)",
    )
    parser.add_argument(
        "--tiled",
        action="store_true",
        help=f"compute the grid tile by tile, labels streamed to labels.npy (automatic above "
        f"--grid {TILED_ABOVE}): memory stays under a few GB at any size",
    )
    parser.add_argument(
        "--tile-rows",
        type=positive_int("--tile-rows"),
        default=None,
        help="grid rows per tile (default: about 4 million starts)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="a tiled map: print the estimated time, disk and memory, then stop",
    )
    add_progress_option(parser)
    parser.set_defaults(default_grid=default_grid)


def parse_rule(
    lr: float,
    optimizer: str | None,
    momentum: float | None,
    schedule: str | None,
    setting: list[tuple[str, float]] | None = None,
):
    """Turns the CLI's rule options into (rule, lr) for :func:`gdjax.basins.map_basins`."""
    if optimizer and schedule:
        raise ValueError("give --optimizer or --schedule, not both")
    if momentum is not None and optimizer != "sgd":
        raise ValueError("--momentum goes with --optimizer sgd")
    if setting and optimizer is None:
        raise ValueError("--setting goes with --optimizer")
    if optimizer is not None:
        record = _registry.get(optimizer, OPTIMIZERS)
        kwargs = dict(setting or ())
        if momentum is not None:
            kwargs["momentum"] = momentum
        return gdjax.optimizer(record.factory, **dict(record.flags), **record.check(kwargs)), lr
    if schedule is not None:
        if not schedule.strip():
            raise ValueError("--schedule is empty; give NAME[:key=value,...], e.g. cosine")
        rule = S.parse_spec(schedule, base_lr=lr)
        given = dict(rule.args).get("base_lr", lr)
        if float(given) != float(lr):  # the spec's own base_lr would silently win
            raise ValueError(
                f"--schedule sets base_lr={given:g} but --lr is {lr:g}: the schedule's base rate "
                f"is --lr; give --lr {given:g} and leave base_lr out of the spec"
            )
        return rule, None
    return "fixed", lr


def run(
    out: Path,
    *,
    seed: int = 0,
    surface: str = "peaks",
    grid: int | None = None,
    starts: int | None = None,
    lr: float = 0.01,
    steps: int = 1000,
    tol: float = 1e-3,
    optimizer: str | None = None,
    momentum: float | None = None,
    setting: list[tuple[str, float]] | None = None,
    schedule: str | None = None,
    domain=None,
    bound: float | None = None,
    global_tol: float = 1e-6,
    x64: bool = False,
    chunk_size: int | None = None,
    label_on: str = "auto",
    no_progress: bool = False,
    tiled: bool = False,
    tile_rows: int | None = None,
    dry_run: bool = False,
    default_grid: int = 1024,
    attractors: bool = False,
) -> dict:
    """Parses the options into one :class:`gdjax.basins.MapConfig` (every
    refusal here, before any compute), maps the basins with a progress bar,
    writes the study into ``out`` (:func:`gdjax.lessons.local_minima.write`);
    returns basins.json's content."""
    rule, rate = parse_rule(lr, optimizer, momentum, schedule, setting)
    if attractors and schedule is not None:
        raise ValueError(
            "--attractors continues the runs from their end points at the map's rate; a "
            "schedule's rate changes with the step: leave out --schedule"
        )
    if attractors and label_on == "device":
        raise ValueError("--attractors needs the runs' end points: leave out --label-on device")
    if grid is None and starts is None:
        grid = default_grid
    dom = None if domain is None else ((domain[0], domain[1]), (domain[2], domain[3]))
    on_disk = tiled or dry_run or tile_rows is not None or (grid is not None and grid > TILED_ABOVE)
    if on_disk:
        if attractors:
            raise ValueError(
                "--attractors needs a map in memory; a tiled map (--tiled, --tile-rows, "
                f"--dry-run, --grid above {TILED_ABOVE}) labels minima only"
            )
        if starts is not None:
            raise ValueError("--tiled, --tile-rows and --dry-run map a --grid, not --starts")
        if x64:
            raise ValueError("a tiled map runs in float32; leave out --x64")
        if label_on != "auto":
            raise ValueError("--label-on is for maps in memory; a tiled map labels on the host")
        if distributed.process_count() > 1:
            raise ValueError(
                "a tiled map (--grid above 4096, --tiled, --tile-rows) runs in one process; "
                "run it without --num-processes, or map --grid 4096 or less"
            )
    config = local_minima.config(
        surface,
        x64=x64,
        grid=grid,
        starts=starts,
        steps=steps,
        lr=rate,
        rule=rule,
        tol=tol,
        domain=dom,
        bound=bound,
        global_tol=global_tol,
        chunk_size=chunk_size,
        label_on=label_on,
        attractors=attractors,
    )
    if on_disk:
        return _run_tiled(out, config, seed, tile_rows, dry_run, no_progress)
    local_minima.check_size(config)  # refused before the progress bar draws
    stages = ["attractors"] if attractors else []
    with progress_bar("basins", "start", enabled=not no_progress, stages=stages) as update:
        study = local_minima.compute(config, seed=seed, progress=update)
    return local_minima.write(out, study)


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def describe_plan(p: tiled_maps.Plan) -> str:
    """A tiled map's estimate in one line."""
    secs = "" if p.seconds is None else f"about {duration(p.seconds)} of descent, "
    return (
        f"{p.starts:,} starts in {p.tiles} tiles of {p.tile_rows} rows: {secs}"
        f"{p.disk_bytes / 1e9:.2f} GB on disk (labels.npy, converged_step.npy), "
        f"about {_gb(p.memory_bytes)} of memory"
    )


def _run_tiled(out, config, seed, tile_rows, dry_run, no_progress) -> dict:
    p = tiled_maps.plan(config.grid, config.steps, tile_rows=tile_rows)
    available = available_memory()
    if available is not None and p.memory_bytes > available:
        raise ValueError(
            f"a tile needs about {_gb(p.memory_bytes)} and {_gb(available)} is available; "
            "give a smaller --tile-rows"
        )
    free = shutil.disk_usage(Path(out).resolve().parent if not Path(out).exists() else out).free
    if not dry_run and p.disk_bytes > free:
        raise ValueError(
            f"the labels need {p.disk_bytes / 1e9:.2f} GB on disk and {out} has "
            f"{free / 1e9:.2f} GB free"
        )
    with contextlib.ExitStack() as stack:
        bars = []

        def on_plan(p):
            print(f"gdjax basins: {describe_plan(p)}", file=sys.stderr, flush=True)
            if not no_progress and not dry_run:  # the bar starts with the first tile
                bars.append(stack.enter_context(progress_bar("tiles", "start")))

        def progress(done, total):
            for update in bars:
                update(done, total)

        result = tiled_maps.map_to_disk(
            config, out, tile_rows=tile_rows, progress=progress, on_plan=on_plan, dry_run=dry_run
        )
    if dry_run:
        raise SystemExit(0)  # nothing was written; the folder is left as it was
    return disk_map.write(out, result, seed)


COMMAND = Command(
    name="basins",
    doc=__doc__,
    add_arguments=add_arguments,
    run=run,
    summary=local_minima.summary,
    shards=True,  # map_basins shards its starts: one CPU device per core
    multiprocess=True,
)
