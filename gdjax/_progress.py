"""Progress callbacks (private core): one signature for every long
computation of gdjax, ``progress(done, total)`` (:data:`Progress`), and the
callbacks of tasks made of parts."""

from __future__ import annotations

import functools
from collections.abc import Callable

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called as work is done (``done == 0`` once the
program is compiled and the work starts)."""


def part(progress: Progress | None, k: int, parts: int) -> Progress | None:
    """The callback of the k-th of ``parts`` equal parts of a task: its
    (done, total) reported to ``progress`` as the whole task's
    (k total + done, parts total). None when ``progress`` is None."""
    if progress is None:
        return None
    return functools.partial(_report, progress, k, parts)


def _report(progress: Progress, k: int, parts: int, done: int, total: int) -> None:
    progress(k * total + done, parts * total)
