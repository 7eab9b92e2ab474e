"""A basin map larger than memory: time, peak memory and rate of the tiled path.

Runs, each in its own process (so each peak RSS is its own):

* ``gdjax basins --grid G --steps S`` with G above 4096: tiles streamed to
  disk (gdjax.tiled);
* the in-memory path (``map_basins``) at grids that fit, the baseline rates.

Prints the tiled map's time, peak RSS and restart-steps/s, the in-memory
rate, their ratio, and whether the maps' fractions agree within sampling
error (|difference| / combined standard error, per outcome).

    .venv/bin/python benchmarks/tiled_map.py     # 20000^2 vs 2000^2 and 4096^2, 200 steps
    .venv/bin/python benchmarks/tiled_map.py --grid 8192 --baseline 1024
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(args: list[str]) -> tuple[float, float]:
    """Runs a command; returns (wall seconds, its peak RSS in GiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of the children is the largest of them: run the big map first
    return wall, max(after, before) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=20000)
    parser.add_argument(
        "--baseline", type=int, nargs="+", default=[2000, 4096], help="the in-memory grids"
    )
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--surface", default="peaks")
    args = parser.parse_args()
    gdjax = [sys.executable, "-m", "gdjax.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "big"
        common = ["--surface", args.surface, "--steps", str(args.steps), "--no-progress"]
        wall, rss = _run(
            [*gdjax, "basins", "--grid", str(args.grid), "--tiled", *common, "--out", str(big)]
        )
        b = json.loads((big / "basins.json").read_text())
        disk = sum(p.stat().st_size for p in big.glob("*.npy"))
        rate = b["timing"]["restart_steps_per_second"]
        print(
            f"tiled {args.grid}^2 x {args.steps} steps: {wall:.0f} s wall, "
            f"{b['timing']['seconds']:.0f} s descent ({rate:.3g} restart-steps/s), "
            f"peak RSS {rss:.2f} GiB, {disk / 1e9:.2f} GB on disk"
        )
        for grid in args.baseline:
            small = Path(tmp) / f"small{grid}"
            _run([*gdjax, "basins", "--grid", str(grid), *common, "--out", str(small)])
            s = json.loads((small / "basins.json").read_text())
            base = s["timing"]["restart_steps_per_second"]
            print(
                f"in memory {grid}^2: {s['timing']['seconds']:.2f} s descent "
                f"({base:.3g} restart-steps/s): tiled / in memory = {rate / base:.2f}"
            )
            n1, n2 = b["starts"], s["starts"]
            print("  fractions (tiled vs in memory, z = difference / combined standard error):")
            for k in s["fractions"]:
                p1 = b["fractions"].get(k, {"fraction": 0.0})["fraction"]
                p2 = s["fractions"][k]["fraction"]
                se = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2) or 1.0
                print(f"    {k:14s} {p1:.5f}  {p2:.5f}  z = {(p1 - p2) / se:+.2f}")


if __name__ == "__main__":
    main()
