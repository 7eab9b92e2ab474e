"""``gdjax schedules``: the textbook's schedule plots, each with its optax twin.

Runs lesson E's schedule plots (:mod:`gdjax.lessons.schedule_plots`) into
``--out``: the chapter's settings are the point, so there is nothing else to
choose.
"""

from __future__ import annotations

from gdjax.cli._common import Command
from gdjax.lessons import schedule_plots

__all__ = ["COMMAND"]

COMMAND = Command(
    name="schedule_plots",  # the lesson's name: `gdjax lesson schedules` writes the same folder
    doc=schedule_plots.__doc__,
    add_arguments=lambda parser: None,
    run=schedule_plots.run,
    summary=schedule_plots.summary,
)
