"""Helpers shared by the lesson scripts."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path


def add_common(parser: argparse.ArgumentParser, default_out: str) -> None:
    parser.add_argument(
        "--out", default=default_out, help="output directory (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")


def command_line() -> str:
    return " ".join(shlex.quote(a) for a in sys.argv)


def script_main(module, default_out: str, argv=None) -> dict:
    """The body of an ``experiments/*.py`` script: parse, run, print."""
    parser = argparse.ArgumentParser(description=module.__doc__.splitlines()[0])
    add_common(parser, default_out)
    module.add_arguments(parser)
    args = vars(parser.parse_args(argv))
    return run_and_print(module, args)


def prepare(*modules) -> None:
    """Before JAX starts: modules that shard over devices (``SHARDS = True``)
    get one CPU device per core (see :func:`gdjax.basins.use_all_cores`)."""
    if any(getattr(m, "SHARDS", False) for m in modules):
        from gdjax.basins import use_all_cores

        use_all_cores()


def run_and_print(module, args: dict) -> dict:
    prepare(module)
    out = Path(args.pop("out"))
    start = time.perf_counter()
    from gdjax.data import DatasetError

    try:
        results = module.run(out, **args)
    except (ValueError, FileNotFoundError, DatasetError) as err:  # one clear line, status 2
        raise SystemExit(f"gdjax: error: {err}") from None
    print(module.summary(results))
    print(f"[{time.perf_counter() - start:.1f} s] wrote {out}/ (report.html, JSON, *.png)")
    return results


def quadratic_problem(seed: int):
    """Lessons A and D's problem: the parabola, its minimum and a random start
    drawn uniformly from the plotted range. Returns (surface, target, x0)."""
    import jax

    import gdjax

    surface = gdjax.surfaces.get("quadratic")
    target = surface.minima[0].location[0]
    lo, hi = surface.domain[0]
    return surface, target, jax.random.uniform(jax.random.key(seed), (), minval=lo, maxval=hi)


def positive_float(name: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not value > 0 or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{name} must be finite and > 0, got {text}")
        return value

    return parse


def positive_int(name: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be >= 1, got {value}")
        return value

    return parse
