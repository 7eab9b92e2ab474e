"""Lesson E's schedules: the textbook's schedule plots with their optax twins.

Run: python experiments/lesson_schedules.py --out runs/lesson_schedules
"""

import sys

from gdjax.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a == "--out" or a.startswith("--out=") for a in args):
        args = ["--out", "runs/lesson_schedules", *args]
    sys.exit(main(["lesson", "schedules", *args]))
