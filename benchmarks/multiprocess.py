"""What several processes cost: the same basin map in one process and in N
local processes joined with jax.distributed (gloo over 127.0.0.1).

Runs ``gdjax basins --surface peaks --grid G --steps S`` with D devices in
all: once in one process (D devices), once in N processes of D / N devices
each (process 0 writes). Prints each run's descent seconds (from
basins.json), wall seconds (start-up, joining and compiling included), the
ratio of descent rates (several processes / one) and whether the two
basins.json agree (everything but timing and the command line).

    .venv/bin/python benchmarks/multiprocess.py                    # 1024^2, 1000 steps, 2 x 1
    .venv/bin/python benchmarks/multiprocess.py --grid 2048 --processes 2 --devices 2

On one machine the processes share its cores, so the ratio shows the
overhead of the multi-controller path (joining, per-chunk gathers over gloo),
not a speed-up; across machines each process brings its own cores or GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(args: list[str], out: Path, n: int, devices: int) -> float:
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices // n}",
    }
    port = _port()
    start = time.perf_counter()
    procs = []
    for i in range(n):
        extra = []
        if n > 1:
            extra = ["--coordinator", f"127.0.0.1:{port}", "--num-processes", str(n)]
            extra += ["--process-id", str(i)]
        cmd = [sys.executable, "-m", "gdjax", *args, "--out", str(out), *extra]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL))
    codes = [p.wait() for p in procs]
    if any(codes):
        raise SystemExit(f"a process failed: exit codes {codes}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--devices", type=int, default=2, help="devices in all (default: 2)")
    a = parser.parse_args()
    if a.devices % a.processes:
        raise SystemExit("--devices must be a multiple of --processes")
    args = ["basins", "--surface", "peaks", "--grid", str(a.grid), "--steps", str(a.steps)]
    args += ["--no-progress"]
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for n in (1, a.processes):
            wall = _run(args, Path(tmp) / str(n), n, a.devices)
            data = json.loads((Path(tmp) / str(n) / "basins.json").read_text())
            results[n] = (wall, data)
            print(
                f"{n} process(es) x {a.devices // n} device(s): descent "
                f"{data['timing']['seconds']:.2f} s "
                f"({data['timing']['restart_steps_per_second']:.3g} restart-steps/s), "
                f"wall {wall:.1f} s"
            )
    one, many = results[1][1], results[a.processes][1]
    ratio = many["timing"]["restart_steps_per_second"] / one["timing"]["restart_steps_per_second"]
    same = {k: v for k, v in one.items() if k not in ("timing", "command")} == {
        k: v for k, v in many.items() if k not in ("timing", "command")
    }
    print(f"descent rate, {a.processes} processes / 1: {ratio:.2f}")
    print(f"basins.json equal (but timing and command): {same}")


if __name__ == "__main__":
    main()
