"""Lesson E's schedules: the textbook's schedule plots with their optax twins.

Run: python experiments/lesson_schedules.py --out runs/lesson_schedules
"""

from gdjax.lessons import _common, schedule_plots

if __name__ == "__main__":
    _common.script_main(schedule_plots, "runs/lesson_schedules")
