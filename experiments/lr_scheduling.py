"""Lesson E's study: the chapter's learning-rate policies on LeNet / Fashion-MNIST.

Run: python experiments/lr_scheduling.py --out runs/lr_scheduling (--help for options);
the same as: gdjax lesson lr-scheduling --out runs/lr_scheduling
"""

import sys

from gdjax.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a == "--out" or a.startswith("--out=") for a in args):
        args = ["--out", "runs/lr_scheduling", *args]
    sys.exit(main(["lesson", "lr-scheduling", *args]))
