"""Lesson B: gradient descent in 2D on the peaks surface.

Run: python experiments/lesson_2d_peaks.py --out runs/lesson_2d_peaks (--help for options)
"""

from gdjax.lessons import _common, gd_2d_peaks

if __name__ == "__main__":
    _common.script_main(gd_2d_peaks, "runs/lesson_2d_peaks")
