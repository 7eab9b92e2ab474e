"""Lesson A: gradient descent in 1D.

Run: python experiments/lesson_1d.py --out runs/lesson_1d (--help for options);
the same as: gdjax lesson 1d --out runs/lesson_1d
"""

import sys

from gdjax.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a == "--out" or a.startswith("--out=") for a in args):
        args = ["--out", "runs/lesson_1d", *args]
    sys.exit(main(["lesson", "1d", *args]))
