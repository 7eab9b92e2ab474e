"""The lessons as experiments: each writes figures, a JSON of its numbers and
an HTML report into an output directory, and returns a printable summary.

``LESSONS`` maps the CLI name of each lesson to its module; every module has
``add_arguments(parser)``, ``run(out, **options) -> dict`` and
``summary(results) -> str``.
"""

from gdjax.lessons import dynamic_lr, gd_1d, gd_2d_peaks, local_minima, schedule_plots

LESSONS = {
    "1d": gd_1d,
    "2d": gd_2d_peaks,
    "local-minima": local_minima,
    "dynamic-lr": dynamic_lr,
    "schedules": schedule_plots,
}

__all__ = ["LESSONS"]
