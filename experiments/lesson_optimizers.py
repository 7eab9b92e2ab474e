"""GD, momentum, Nesterov, Adam and RMSprop side by side on the same starts.

Run: python experiments/lesson_optimizers.py --out runs/lesson_optimizers (--help for options);
the same as: gdjax lesson optimizers --out runs/lesson_optimizers
(128^2 starts; gdjax optimizers runs it at full size)
"""

import sys

from gdjax.cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if not any(a == "--out" or a.startswith("--out=") for a in args):
        args = ["--out", "runs/lesson_optimizers", *args]
    sys.exit(main(["lesson", "optimizers", *args]))
