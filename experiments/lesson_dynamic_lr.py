"""Lesson D: fixed vs time-based vs gradient-based learning rate.

Run: python experiments/lesson_dynamic_lr.py --out runs/lesson_dynamic_lr (--help for options)
"""

from gdjax.lessons import _common, dynamic_lr

if __name__ == "__main__":
    _common.script_main(dynamic_lr, "runs/lesson_dynamic_lr")
