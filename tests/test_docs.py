"""Every gdjax command line shown in README.md and docs/ runs.

Each line of a fenced code block that starts with ``gdjax`` (or
``.venv/bin/gdjax``) is parsed by the real command-line parser (an option
renamed or removed fails here), then run at reduced sizes (the sizes below
replace the ones shown; the rest of the line is as written). Lines that need
a cluster or an earlier run are parsed only, and ``gdjax lessons`` runs in
tests/test_lessons.py (so do ``gdjax lesson NAME --out DIR`` lines of the
lessons it runs: parsed here, run there on the same defaults).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from gdjax.cli import _build_parser, main
from gdjax.cli.lessons import LESSONS as MAIN_JOB

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

SMALLER = {
    "--grid": "16",
    "--starts": "2000",
    "--steps": "30",
    "--epochs": "1",
    "--lrs": "4",
    "--subset": "256",
    "--test-subset": "100",
    "--samples": "20000",
    "--landscapes": "2",
    "--zoom-grid": "16",
    "--zoom-levels": "1",
    "--uncertainty": "256",
}
"""Sizes that replace the documented ones (a tiled --grid stays tiled)."""

TRAINS = ("lenet", "lr-scheduling")


def _command_lines() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        fenced = False
        for line in page.read_text().splitlines():
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            text = line.split(" #", 1)[0].strip().rstrip("&").strip()
            if fenced and re.match(r"^(\.venv/bin/)?gdjax\s", text):
                found.append((page.name, re.sub(r"^\.venv/bin/", "", text)))
    first = {}
    for page, line in found:  # a line shown on several pages runs once
        first.setdefault(" ".join(line.split()), page)
    return sorted((page, line) for line, page in first.items())


LINES = _command_lines()


MAPS = ("basins", "local-minima", "optimizers", "continuation", "trainability")
"""Commands that map a grid: given a small one when the line shows none."""

HIGH_DIM = {"--dims": "3", "--samples": "2000", "--landscapes": "1", "--starts": "32"}

BIFURCATION = {"--doublings": "2", "--doubling-transient": "2000"}
"""Two doublings bisected with short transients (the default bisects 5 with
transients up to 320,000 steps)."""


def _in_the_main_job(argv: list[str]) -> bool:
    """``gdjax lesson NAME --out DIR`` of a lesson the main job runs on the
    same defaults (tests/test_lessons.py runs it), and ``gdjax schedules --out
    DIR`` (lesson E's plots: the same run as ``gdjax lesson schedules``)."""
    if argv[:1] == ["schedules"] and len(argv) == 3 and argv[1] == "--out":
        return True
    return len(argv) == 4 and argv[0] == "lesson" and argv[1] in MAIN_JOB and argv[2] == "--out"


def _smaller(argv: list[str], out: Path) -> list[str]:
    args = list(argv)
    high_dim = "high-dim" in args
    for i, word in enumerate(args[:-1]):
        if high_dim and word in HIGH_DIM:
            args[i + 1] = HIGH_DIM[word]
        elif word in SMALLER:
            if word == "--grid" and int(args[i + 1]) > 4096 and "--tiled" not in args:
                args.append("--tiled")  # the documented path: tiles on disk
            args[i + 1] = SMALLER[word]
        if word in BIFURCATION and "bifurcation" in args:
            args[i + 1] = BIFURCATION[word]
        if word == "--seeds":  # one seed
            rest = args[i + 1 :]
            n = next((k for k, w in enumerate(rest) if w.startswith("--")), len(rest))
            args[i + 1 : i + 1 + n] = rest[:1]
            break
    extra = {}
    if high_dim:
        extra = HIGH_DIM
    if "bifurcation" in args:
        extra = BIFURCATION
    if any(t in args for t in TRAINS):
        extra = {f: SMALLER[f] for f in ("--subset", "--test-subset", "--epochs")}
        if "lr-scheduling" in args:  # its policies in one compiled program, not one each
            extra["--mode"] = "population"
        if "--sharpness" in args:
            extra["--sharpness-examples"] = "64"
    if any(m in args for m in MAPS) and "--grid" not in args and "--starts" not in args:
        extra = {"--grid": SMALLER["--grid"], "--steps": SMALLER["--steps"]}
    for flag, value in extra.items():
        if flag not in args:
            args += [flag, value]
    if "--out" in args:
        args[args.index("--out") + 1] = str(out)
    else:
        args += ["--out", str(out)]
    return args


def test_the_pages_show_commands():
    assert len(LINES) >= 30, LINES
    assert {page for page, _ in LINES} >= {"README.md", "lessons.md", "trainability.md"}


@pytest.mark.parametrize("page, line", LINES, ids=[f"{p}: {c}" for p, c in LINES])
def test_a_documented_command_runs(tmp_path, page, line):
    argv = shlex.split(line)[1:]
    _build_parser().parse_args(argv)  # every documented option exists, every value parses
    if "--coordinator" in argv or "--resume" in argv or argv[:1] == ["lessons"]:
        return  # a cluster, an earlier run, or the main job (tests/test_lessons.py)
    if _in_the_main_job(argv):
        return  # this lesson on its defaults runs in the main job (tests/test_lessons.py)
    args = _smaller(argv, tmp_path / "out")
    if "--dry-run" in args:
        with pytest.raises(SystemExit) as e:
            main(args)
        assert e.value.code == 0
        return
    assert main(args) == 0, args
