"""Lesson A: gradient descent in 1D.

Run: python experiments/lesson_1d.py --out runs/lesson_1d (--help for options)
"""

from gdjax.lessons import _common, gd_1d

if __name__ == "__main__":
    _common.script_main(gd_1d, "runs/lesson_1d")
