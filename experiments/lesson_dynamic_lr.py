"""Lesson D: fixed vs time-based vs gradient-based learning rate.

Run: python experiments/lesson_dynamic_lr.py --out runs/lesson_dynamic_lr (--help for options);
the same as: gdjax lesson dynamic-lr --out runs/lesson_dynamic_lr
"""

import sys

from gdjax.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a == "--out" or a.startswith("--out=") for a in args):
        args = ["--out", "runs/lesson_dynamic_lr", *args]
    sys.exit(main(["lesson", "dynamic-lr", *args]))
