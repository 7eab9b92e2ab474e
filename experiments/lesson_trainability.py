"""Trainability maps: which hyperparameters train, with a fractal boundary.

Run: python experiments/lesson_trainability.py --out runs/lesson_trainability (--help for
options); the same as: gdjax lesson trainability --out runs/lesson_trainability
(128^2 networks; gdjax trainability runs it at full size)
"""

import sys

from gdjax.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a == "--out" or a.startswith("--out=") for a in args):
        args = ["--out", "runs/lesson_trainability", *args]
    sys.exit(main(["lesson", "trainability", *args]))
