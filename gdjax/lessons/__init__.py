"""The lessons as experiments: each writes figures, a JSON of its numbers and
an HTML report into an output directory, and returns a printable summary.

``LESSONS`` maps the CLI name of each lesson to its module; every module has
``add_arguments(parser)``, ``run(out, **options) -> dict`` and
``summary(results) -> str``.
"""

from gdjax.lessons import (
    dynamic_lr,
    gd_1d,
    gd_2d_peaks,
    local_minima,
    lr_scheduling,
    schedule_plots,
)

LESSONS = {
    "1d": gd_1d,
    "2d": gd_2d_peaks,
    "local-minima": local_minima,
    "dynamic-lr": dynamic_lr,
    "schedules": schedule_plots,
}

STUDIES = {"lr-scheduling": lr_scheduling}
"""Lessons that train networks for minutes to an hour: ``gdjax lesson NAME``
runs them; ``gdjax lessons`` (the quick main job) leaves them out."""

__all__ = ["LESSONS", "STUDIES"]
