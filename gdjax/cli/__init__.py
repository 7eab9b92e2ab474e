"""The ``gdjax`` command line.

    gdjax lessons [--out DIR]               every lesson on its defaults (the main job);
                                            out/index.html links the five reports
    gdjax lesson 1d|2d|local-minima|dynamic-lr|schedules|lr-scheduling [--out DIR] [options]
    gdjax schedules [--out DIR]             the textbook's schedule plots, with optax twins
    gdjax basins --surface peaks --grid 1024 --lr 0.01 --steps 1000 --out DIR
    gdjax lenet --schedule cosine --epochs 30 --out DIR [--resume] [--subset N]
    gdjax surfaces                          the surface zoo and its minima

``gdjax COMMAND --help`` lists each command's options. Exit status: 0 done,
2 bad input (one line on stderr), 1 a run that could not finish, 130 Ctrl-C.
A folder that holds another run is refused unless ``--overwrite`` (or, for
training, ``--resume``) is given.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from gdjax.cli import _common, lenet


def _build_parser() -> argparse.ArgumentParser:
    from gdjax.lessons import LESSONS, STUDIES

    parser = argparse.ArgumentParser(
        prog="gdjax",
        description="JAX-accelerated, vectorized experiments on gradient descent.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"lessons: {', '.join({**LESSONS, **STUDIES})} (gdjax lesson NAME --help for each)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p_all = sub.add_parser("lessons", help="run every lesson on its defaults (the main job)")
    p_all.add_argument("--out", default="runs", help="output directory (default: %(default)s)")
    p_all.add_argument(
        "--seed",
        type=_common.seed_type("--seed"),
        default=0,
        help="random seed, 0 <= N < 2**32 (default: %(default)s)",
    )
    p_all.add_argument(
        "--overwrite", action="store_true", help="replace the lessons' earlier runs in --out"
    )

    p_lesson = sub.add_parser("lesson", help="run one lesson")
    lessons = p_lesson.add_subparsers(dest="lesson", required=True, metavar="LESSON")
    for name, module in {**LESSONS, **STUDIES}.items():
        p = lessons.add_parser(
            name, help=module.__doc__.splitlines()[0], description=module.__doc__
        )
        _common.add_common(p, f"runs/lesson_{name.replace('-', '_')}")
        module.add_arguments(p)

    p_sched = sub.add_parser(
        "schedules",
        help="draw the textbook's schedules with their optax twins",
        description=LESSONS["schedules"].__doc__,
    )
    _common.add_common(p_sched, "runs/lesson_schedules")

    p_basins = sub.add_parser(
        "basins",
        help="map basins of attraction (report.html, basins.json, figures)",
        description=LESSONS["local-minima"].__doc__,
    )
    _common.add_common(p_basins, "runs/basins")
    LESSONS["local-minima"].add_arguments(p_basins, default_grid=1024)

    p_lenet = sub.add_parser(
        "lenet",
        help="train the chapter's LeNet on Fashion-MNIST with a schedule",
        description=lenet.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common.add_common(p_lenet, "runs/lenet")
    lenet.add_arguments(p_lenet)

    sub.add_parser("surfaces", help="list the surface zoo and its minima")
    return parser


def _surfaces() -> None:
    from gdjax import surfaces

    for name in surfaces.names():
        s = surfaces.get(name)
        box = " x ".join(f"[{lo:g}, {hi:g}]" for lo, hi in s.domain)
        print(f"{name} ({s.dim}D, domain {box}): {s.formula}")
        suffix = "" if s.all_minima else " (global only; many local minima)"
        for m in s.minima:
            loc = ", ".join(f"{v:.6g}" for v in m.location)
            tag = "global" if m.is_global else "local"
            print(f"    {tag:6s} min f({loc}) = {m.value:.6g}")
        if suffix:
            print(f"   {suffix}")


def main(argv: list[str] | None = None) -> int:
    args = vars(_build_parser().parse_args(argv))
    command = args.pop("command")
    from gdjax.lessons import LESSONS, STUDIES

    if command == "surfaces":
        _surfaces()
    elif command == "lesson":
        name = args.pop("lesson")
        _common.run_and_print({**LESSONS, **STUDIES}[name], args)
    elif command == "lenet":
        _common.run_and_print(lenet, args, command="lenet")
    elif command == "basins":
        _common.run_and_print(LESSONS["local-minima"], args, command="basins")
    elif command == "schedules":
        _common.run_and_print(LESSONS["schedules"], args)
    elif command == "lessons":
        _lessons(Path(args["out"]), args["seed"], args["overwrite"])
    return 0


def _lessons(out: Path, seed: int, overwrite: bool) -> None:
    """Every lesson into out/lesson_*/, then out/index.html linking the reports."""
    from gdjax.lessons import LESSONS

    _common.prepare(*LESSONS.values())  # before the first lesson starts JAX
    jobs = []
    for name, module in LESSONS.items():  # every folder checked and locked before any compute
        args = {"out": out / _folder(name), "seed": seed, "overwrite": overwrite}
        jobs.append((name, module, args, _common.open_out(module, args)))
    start = time.perf_counter()
    for _, module, args, run in jobs:
        _common.run_and_print(module, args, run=run)
    _write_index(out, [(name, module) for name, module, _, _ in jobs])
    print(f"all lessons done in {time.perf_counter() - start:.1f} s; open {out}/index.html")


def _folder(name: str) -> str:
    return f"lesson_{name.replace('-', '_')}"


def _write_index(out: Path, lessons) -> Path:
    """out/index.html: one line per lesson, linking its report."""
    import html

    from gdjax import runs

    items = "".join(
        f'<li><a href="{_folder(name)}/report.html">{html.escape(name)}</a>: '
        f"{html.escape(module.__doc__.splitlines()[0])}</li>"
        for name, module in lessons
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>gdjax lessons</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:900px;margin:2em auto;"
        "padding:0 1em;line-height:1.6}</style></head><body><h1>gdjax lessons</h1>"
        f"<p>Each lesson's report, written by <code>gdjax lessons</code>.</p><ul>{items}</ul>"
        "</body></html>\n"
    )
    return runs.write_text(out / "index.html", page)


if __name__ == "__main__":
    sys.exit(main())
