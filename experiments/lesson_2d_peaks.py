"""Lesson B: gradient descent in 2D on the peaks surface.

Run: python experiments/lesson_2d_peaks.py --out runs/lesson_2d_peaks (--help for options);
the same as: gdjax lesson 2d --out runs/lesson_2d_peaks
"""

import sys

from gdjax.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a == "--out" or a.startswith("--out=") for a in args):
        args = ["--out", "runs/lesson_2d_peaks", *args]
    sys.exit(main(["lesson", "2d", *args]))
