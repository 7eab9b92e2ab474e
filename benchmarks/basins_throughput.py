"""Throughput of gdjax's peaks basin map against a tuned NumPy baseline.

Run by hand (not a test):

    python benchmarks/basins_throughput.py            # N = 1e4, 1e5, 1e6
    python benchmarks/basins_throughput.py --big      # also the 4096^2 x 1000-step map
    python benchmarks/basins_throughput.py --sizes 1e5 --attractors   # with attractors on / off
    python benchmarks/basins_throughput.py --sizes 1e6 --chunks 131072 262144 1048576

Prints restart-steps per second for gdjax (``map_basins`` end to end:
descent, minima, labels and counts; float32, lr 0.01, 1000 steps, random
starts, all devices; labels on the host and on the device,
``--label-on``) and, in the same run, for a
vectorised NumPy gradient descent with the analytic peaks gradient (shared
subexpressions, no ``**`` on float32), and their ratio; and gdjax against the
ceiling (plain ``jit(vmap(scan))`` with no bookkeeping), the two timed in
turns (``--rounds``) so that a slow spell of a shared machine hits both. The CPU is split
into one XLA device per core (``basins.use_all_cores``, as ``gdjax basins``
does) unless XLA_FLAGS already sets a device count.

``--attractors`` adds, in the same run, the map with attractor labelling on
against off (:func:`gdjax.maps.orbit_labels.run_map` against
:func:`gdjax.basins.run_map`, timed in turns, labels on the host) at
``--attractor-lrs``: at lr 0.01 few runs end not converged off the plateau
(peaks' outer plateau crawls and is left moving without being continued),
beyond the global minimum's limit 0.0663 its whole basin is continued, at
0.15 chaos too. It prints both rates, their ratio (on / off), how many runs
were continued and how many were left moving.
"""

from __future__ import annotations

import argparse
import resource
import time

import jax
import numpy as np

from gdjax import basins
from gdjax.cli._common import positive_int
from gdjax.maps import orbit_labels

basins.use_all_cores()


def numpy_peaks_descent(x: np.ndarray, y: np.ndarray, lr: float, steps: int):
    """Gradient descent on peaks with the analytic gradient, in place, float32."""
    lr = np.float32(lr)
    for _ in range(steps):
        x2, y2 = x * x, y * y
        e1 = np.exp(-x2 - (y + 1) * (y + 1))
        e2 = np.exp(-x2 - y2)
        e3 = np.exp(-(x + 1) * (x + 1) - y2)
        a = 1 - x
        poly = x / 5 - x2 * x - y2 * y2 * y
        # d/dx and d/dy of 3 a^2 e1 - 10 poly e2 - e3 / 3
        gx = (-6 * a - 6 * a * a * x) * e1 - 10 * ((0.2 - 3 * x2) - 2 * x * poly) * e2
        gx += (2.0 / 3.0) * (x + 1) * e3
        gy = -6 * a * a * (y + 1) * e1 - 10 * (-5 * y2 * y2 - 2 * y * poly) * e2
        gy += (2.0 / 3.0) * y * e3
        x -= lr * gx
        y -= lr * gy
    return x, y


def time_numpy(n: int, steps: int) -> float:
    rng = np.random.default_rng(0)
    x = rng.uniform(-3, 3, n).astype(np.float32)
    y = rng.uniform(-3, 3, n).astype(np.float32)
    t = time.perf_counter()
    numpy_peaks_descent(x, y, 0.01, steps)
    return n * steps / (time.perf_counter() - t)


def gdjax_runner(n: int, steps: int, check_every: int, label_on: str = "auto"):
    """(run() -> restart-steps/s of one map_basins call end to end: descent,
    minima, labels and counts, compile seconds)."""
    kw = dict(
        starts=n,
        key=jax.random.key(0),
        steps=steps,
        lr=0.01,
        check_every=check_every,
        label_on=label_on,
    )
    compile_s = basins.map_basins("peaks", **kw).timing.compile_seconds  # first call compiles

    def run() -> float:
        t = time.perf_counter()
        basins.map_basins("peaks", **kw)
        return n * steps / (time.perf_counter() - t)

    return run, compile_s


def attractor_runner(n: int, steps: int, lr: float, on: bool):
    """(run() -> restart-steps/s of one map end to end with attractor
    labelling ``on`` or off, the last map)."""
    config = basins.MapConfig("peaks", starts=n, steps=steps, lr=lr, attractors=on, label_on="host")
    key = jax.random.key(0)
    last = [orbit_labels.run_map(config, key=key)]  # first call compiles

    def run() -> float:
        t = time.perf_counter()
        last[0] = orbit_labels.run_map(config, key=key)
        return n * steps / (time.perf_counter() - t)

    return run, last


def chunk_runner(n: int, steps: int, chunk: int, check_every: int):
    """(run() -> restart-steps/s of the map's chunk calls alone: the runner
    over every chunk, ends back on the host, no labelling; the chunk
    actually used)."""
    from gdjax.maps import runner as maps_runner

    config = basins.MapConfig(
        "peaks", starts=n, steps=steps, lr=0.01, check_every=check_every, chunk_size=chunk
    )
    pts = maps_runner.make_starts(config, jax.random.key(0))
    runner = maps_runner.Runner(config)
    runner(pts, None)  # compiles

    def run() -> float:
        t = time.perf_counter()
        runner(pts, None)
        return n * steps / (time.perf_counter() - t)

    return run, runner.chunk


def labelling_seconds(n: int, steps: int, rounds: int) -> float:
    """The best of ``rounds`` timings of the host's labelling alone
    (:func:`gdjax.maps.critical.find_and_label`: minima found among the
    ends, every run labelled) on the ends of one N-start map."""
    from gdjax.maps import critical
    from gdjax.maps import runner as maps_runner

    config = basins.MapConfig("peaks", starts=n, steps=steps, lr=0.01)
    ends, _ = maps_runner.Runner(config)(maps_runner.make_starts(config, jax.random.key(0)), None)
    args = (ends.final[0], ends.converged[0], ends.diverged[0], config.domain)
    critical.find_and_label(config.surface, *args)  # compiles Newton's programs
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        critical.find_and_label(config.surface, *args)
        best = min(best, time.perf_counter() - t)
    return best


def ceiling_runner(n: int, steps: int, chunk: int | None = None):
    """run() -> restart-steps/s of the most XLA makes of this descent here:
    jit(vmap(scan(jax.grad))) with no convergence tracking and no labels,
    sharded like map_basins, final points only, in one call (or, with
    ``chunk``, in calls of ``chunk`` starts, as gdjax's runner makes them).
    gdjax's rate over this is the cost of its bookkeeping."""
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    from gdjax import surfaces

    grad = jax.grad(surfaces.peaks)
    n_dev = jax.device_count()
    n = -(-n // n_dev) * n_dev
    size = n if chunk is None else chunk
    sharding = NamedSharding(Mesh(np.asarray(jax.devices()), ("s",)), PartitionSpec("s"))

    def one(x0):
        step = lambda x, _: (x - 0.01 * grad(x), None)  # noqa: E731
        return jax.lax.scan(step, x0, None, length=steps, unroll=10)[0]

    pts = np.random.default_rng(0).uniform(-3, 3, (n, 2)).astype(np.float32)
    parts = [
        jax.device_put(pts[i : i + size], sharding)
        for i in range(0, n - size + 1, size)  # whole chunks only
    ]
    compiled = jax.jit(jax.vmap(one)).lower(parts[0]).compile()
    jax.block_until_ready(compiled(parts[0]))
    done = size * len(parts)

    def run() -> float:
        t = time.perf_counter()
        jax.block_until_ready([compiled(x) for x in parts])
        return done * steps / (time.perf_counter() - t)

    return run


def best_of_alternating(runs, rounds: int) -> list[float]:
    """The best rate of each runner over ``rounds`` rounds, the runners taking
    turns, so that a slow spell of a shared machine hits them alike."""
    best = [0.0] * len(runs)
    for _ in range(rounds):
        for i, run in enumerate(runs):
            best[i] = max(best[i], run())
    return best


def check_gradient() -> None:
    """The baseline's hand-written gradient equals jax.grad's."""
    from gdjax import surfaces

    pts = np.random.default_rng(1).uniform(-3, 3, (64, 2)).astype(np.float32)
    x, y = pts[:, 0].copy(), pts[:, 1].copy()
    numpy_peaks_descent(x, y, 1.0, 1)
    g = -np.stack([x - pts[:, 0], y - pts[:, 1]], 1)
    ref = np.asarray(jax.vmap(jax.grad(surfaces.peaks))(pts))
    np.testing.assert_allclose(g, ref, rtol=2e-3, atol=2e-4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e4, 1e5, 1e6])
    parser.add_argument(
        "--numpy-steps",
        type=int,
        default=50,
        help="steps for the NumPy baseline (its rate does not depend on it)",
    )
    parser.add_argument("--big", action="store_true", help="also time the 4096^2 map")
    parser.add_argument(
        "--attractors",
        action="store_true",
        help="also time the map with attractor labelling on against off",
    )
    parser.add_argument(
        "--attractor-lrs",
        type=float,
        nargs="+",
        default=[0.01, 0.075, 0.15],
        help="rates of the attractor comparison (default: %(default)s)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=4,
        help="gdjax and the ceiling are timed in turns this many times; best of each "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--check-every",
        type=int,
        default=10,
        help="gdjax's convergence-check interval (default: %(default)s; 1 checks every step)",
    )
    parser.add_argument(
        "--chunks",
        type=positive_int("--chunks"),
        nargs="+",
        default=[],
        metavar="SIZE",
        help="also time the runner's chunk calls alone (no labelling) at these chunk sizes "
        "against the ceiling, at the largest of --sizes; and the ceiling itself in calls of "
        "that size (what cutting into chunks costs a program with no bookkeeping)",
    )
    parser.add_argument(
        "--label-on",
        nargs="+",
        choices=("host", "device"),
        default=["host", "device"],
        help="where map_basins labels the runs; each is timed (default: both)",
    )
    args = parser.parse_args()
    check_gradient()
    print(f"devices: {jax.device_count()} x {jax.devices()[0].platform}, steps {args.steps}")
    print(
        "rates in restart-steps/s, end to end (descent, minima, labels, counts); "
        "ceiling: plain jit(vmap(scan)), no bookkeeping"
    )
    head = f"{'N':>10} {'labels on':>9} {'gdjax':>10} {'numpy':>10} {'ratio':>7} {'ceiling':>10}"
    print(head + f" {'gdjax/ceil':>10} {'compile s':>10}")
    for n in (int(s) for s in args.sizes):
        runners, compiles = [], []
        for where in args.label_on:
            run, compile_s = gdjax_runner(n, args.steps, args.check_every, where)
            runners.append(run)
            compiles.append(compile_s)
        *ours, ceil = best_of_alternating([*runners, ceiling_runner(n, args.steps)], args.rounds)
        base = time_numpy(n, args.numpy_steps)
        for where, rate, compile_s in zip(args.label_on, ours, compiles, strict=True):
            print(
                f"{n:>10,} {where:>9} {rate:>10.3g} {base:>10.3g} {rate / base:>7.1f} "
                f"{ceil:>10.3g} {rate / ceil:>10.2f} {compile_s:>10.2f}"
            )
    if args.chunks:
        n = int(max(args.sizes))
        print(
            f"\nthe runner's chunk calls alone at N = {n:,} (ends to the host, no labels; "
            f"check every {args.check_every}; best of {args.rounds} rounds in turns)"
        )
        print(
            f"{'chunk':>10} {'runner':>10} {'ceiling':>10} {'runner/ceil':>11} "
            f"{'ceil chunked':>12} {'chunked/ceil':>12}"
        )
        for size in args.chunks:
            run, used = chunk_runner(n, args.steps, size, args.check_every)
            runs = [run, ceiling_runner(n, args.steps), ceiling_runner(n, args.steps, used)]
            rate, ceil, chunked = best_of_alternating(runs, args.rounds)
            print(
                f"{used:>10,} {rate:>10.3g} {ceil:>10.3g} {rate / ceil:>11.2f} "
                f"{chunked:>12.3g} {chunked / ceil:>12.2f}"
            )
        label_s = labelling_seconds(n, args.steps, args.rounds)
        print(
            f"host labelling alone (find_and_label on the {n:,} ends): {label_s:.3f} s, "
            f"{label_s / (n * args.steps / ceil):.1%} of the ceiling's time for the descent"
        )
    if args.attractors:
        print(
            "\nattractor labelling on against off (end to end, labels on the host; best of "
            f"{args.rounds} rounds in turns)"
        )
        print(
            f"{'N':>10} {'lr':>7} {'off':>10} {'on':>10} {'on/off':>7} {'not conv':>9} "
            f"{'continued':>9} {'slow':>9}"
        )
        for n in (int(s) for s in args.sizes):
            for lr in args.attractor_lrs:
                off_run, _ = attractor_runner(n, args.steps, lr, False)
                on_run, last = attractor_runner(n, args.steps, lr, True)
                off, on = best_of_alternating([off_run, on_run], args.rounds)
                table = last[0].attractors
                cont, slow = int(table.continued), int(table.slow)
                print(
                    f"{n:>10,} {lr:>7.3g} {off:>10.3g} {on:>10.3g} {on / off:>7.2f} "
                    f"{(cont + slow) / n:>9.1%} {cont / n:>9.1%} {slow / n:>9.1%}"
                )
    if args.big:
        for where in args.label_on:
            t = time.perf_counter()
            b = basins.map_basins("peaks", grid=4096, steps=args.steps, lr=0.01, label_on=where)
            wall = time.perf_counter() - t
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            print(
                f"4096^2 x {args.steps} map, labels on the {where}: {wall:.1f} s wall "
                f"({b.timing.seconds:.1f} s descending, "
                f"{b.timing.restart_steps_per_second:.3g} rs/s), peak RSS {peak:.2f} GiB"
            )


if __name__ == "__main__":
    main()
