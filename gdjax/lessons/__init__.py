"""The lessons, course content only: each computes a typed result
(``compute(...)``), which ``gdjax.plot`` draws and ``write(out, result)``
writes (figures, a JSON of its numbers, an HTML report); ``run(out,
**options) -> dict`` does both and ``summary(results) -> str`` prints it.

``LESSONS`` maps the CLI name of each lesson to its module; their options
and commands live in :mod:`gdjax.cli.lessons`.
"""

from gdjax.lessons import (
    dynamic_lr,
    edge_of_stability,
    gd_1d,
    gd_2d_peaks,
    high_dim,
    local_minima,
    lr_scheduling,
    optimizer_maps,
    rate_continuation,
    schedule_plots,
    trainability_maps,
)

LESSONS = {
    "1d": gd_1d,
    "2d": gd_2d_peaks,
    "local-minima": local_minima,
    "dynamic-lr": dynamic_lr,
    "schedules": schedule_plots,
    "continuation": rate_continuation,
    "optimizers": optimizer_maps,
    "high-dim": high_dim,
    "trainability": trainability_maps,
    "edge-of-stability": edge_of_stability,
}

STUDIES = {"lr-scheduling": lr_scheduling}
"""Lessons that train networks for minutes to an hour: ``gdjax lesson NAME``
runs them; ``gdjax lessons`` (the quick main job) leaves them out."""

__all__ = ["LESSONS", "STUDIES"]
