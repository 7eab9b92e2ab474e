"""Throughput of a bifurcation diagram against a NumPy baseline.

Run by hand (not a test):

    .venv/bin/python benchmarks/bifurcation.py                 # 10,000 rates, double well and peaks
    .venv/bin/python benchmarks/bifurcation.py --rates 50000

Prints rate-steps per second of :func:`gdjax.attractors.bifurcation`
(transient + window steps per rate, with the tangent vector of the
Lyapunov exponent carried by a JVP at every step, the period test and the
canonical cycle; float32, compiled once, then timed best of ``--rounds``)
and, in the same run, of a vectorised NumPy gradient descent over the same
rates and steps with the analytic gradient and no Lyapunov exponent (the
double well: x -> x - lr (x^3 - x)), and their ratio; the compile time is
printed apart.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from gdjax import attractors


def numpy_double_well(lrs: np.ndarray, x0: float, steps: int) -> np.ndarray:
    x = np.full(lrs.shape, x0, np.float32)
    lrs = lrs.astype(np.float32)
    for _ in range(steps):
        x -= lrs * (x * x * x - x)
    return x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    steps = attractors.TRANSIENT + attractors.WINDOW
    cases = [
        ("double_well", 0.5, np.linspace(0.9, 1.4, args.rates)),
        ("peaks", (0.25, -1.6), np.linspace(0.05, 0.2, args.rates)),
    ]
    print(
        f"{args.rates:,} rates x {steps:,} steps (transient {attractors.TRANSIENT:,} + window "
        f"{attractors.WINDOW:,}), float32; rate-steps/s, best of {args.rounds}"
    )
    t = time.perf_counter()
    numpy_double_well(cases[0][2], 0.5, steps)
    numpy_rate = args.rates * steps / (time.perf_counter() - t)
    print(f"  NumPy double well (no Lyapunov exponent): {numpy_rate:.3g}")
    for name, start, lrs in cases:
        t = time.perf_counter()
        attractors.bifurcation(name, start, lrs)
        first = time.perf_counter() - t
        best = min(
            (lambda t0: (attractors.bifurcation(name, start, lrs), time.perf_counter() - t0)[1])(
                time.perf_counter()
            )
            for _ in range(args.rounds)
        )
        rate = args.rates * steps / best
        print(
            f"  gdjax {name:12s} {rate:.3g} ({best:.2f} s; first call {first:.2f} s with the "
            f"compile), {rate / numpy_rate:.2f}x NumPy's double well"
        )


if __name__ == "__main__":
    main()
