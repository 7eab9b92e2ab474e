"""Lesson C: local minima on peaks: basins, restarts and the best-of-k curve.

Run: python experiments/lesson_local_minima.py --out runs/lesson_local_minima (--help for options);
the same as: gdjax lesson local-minima --out runs/lesson_local_minima
"""

import sys

from gdjax.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a == "--out" or a.startswith("--out=") for a in args):
        args = ["--out", "runs/lesson_local_minima", *args]
    sys.exit(main(["lesson", "local-minima", *args]))
