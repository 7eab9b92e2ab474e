"""Lesson C: local minima on peaks: basins, restarts and the best-of-k curve.

Run: python experiments/lesson_local_minima.py --out runs/lesson_local_minima (--help for options)
"""

from gdjax.lessons import _common, local_minima

if __name__ == "__main__":
    _common.script_main(local_minima, "runs/lesson_local_minima")
