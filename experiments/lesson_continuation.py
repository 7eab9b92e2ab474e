"""Basins over the learning rate: maps at every rate, stability limits, fractal measures.

Run: python experiments/lesson_continuation.py --out runs/lesson_continuation (--help for options);
the same as: gdjax lesson continuation --out runs/lesson_continuation
(128^2 starts; gdjax continuation runs it at full size)
"""

import sys

from gdjax.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a == "--out" or a.startswith("--out=") for a in args):
        args = ["--out", "runs/lesson_continuation", *args]
    sys.exit(main(["lesson", "continuation", *args]))
