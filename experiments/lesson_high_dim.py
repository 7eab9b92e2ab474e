"""Lesson C in high dimensions: almost every critical point is a saddle.

Run: python experiments/lesson_high_dim.py --out runs/lesson_high_dim (--help for options);
the same as: gdjax lesson high-dim --out runs/lesson_high_dim
(small sizes; --samples 100000000 for d = 7)
"""

import sys

from gdjax.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a == "--out" or a.startswith("--out=") for a in args):
        args = ["--out", "runs/lesson_high_dim", *args]
    sys.exit(main(["lesson", "high-dim", *args]))
