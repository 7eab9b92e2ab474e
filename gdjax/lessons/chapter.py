"""The textbook chapter's learning-rate schedules: course content, not library.

The chapter (PyTorch edition) trains its LeNet with each schedule at fixed
values, counted in epochs. :data:`CHAPTER_DEFAULTS` holds them;
:func:`chapter_schedule` parses a spec ``NAME[:key=value,...]`` with them
filling what the spec leaves out (the CLI's ``--schedule``), and
:data:`CHAPTER_POLICIES` names the chapter's training experiments.

Specs are parsed here, once, at the edge: the library (``gdjax.train``)
takes :class:`gdjax.schedules.Schedule` values, and writes their canonical
``spec`` into metrics.json and checkpoints.
"""

from __future__ import annotations

from typing import Any

from gdjax import schedules as S

__all__ = ["CHAPTER_DEFAULTS", "CHAPTER_POLICIES", "chapter_schedule"]

CHAPTER_DEFAULTS: dict[str, dict[str, Any]] = {
    "constant": {"base_lr": 0.3},
    "square_root": {"base_lr": 0.1},
    "factor": {"base_lr": 2.0, "factor": 0.9, "final_lr": 1e-2},
    "multi_factor": {"base_lr": 0.5, "milestones": (15, 30), "factor": 0.5},
    "cosine": {"base_lr": 0.3, "max_steps": 20, "final_lr": 0.01},
    "poly": {"base_lr": 0.3, "max_steps": 30, "power": 2.0, "final_lr": 0.01},
    "linear_decay": {"base_lr": 0.3, "max_steps": 30},
}
"""Each schedule's parameters in the chapter (PyTorch edition), in epochs."""

CHAPTER_POLICIES: dict[str, str] = {
    "constant": "constant",
    "square_root": "square_root",
    "multi_factor": "multi_factor",
    "cosine": "cosine",
    "cosine_warmup": "cosine:warmup_steps=5",
    "factor": "factor",
}
"""The chapter's training experiments as schedule specs (factor is only
plotted in the chapter)."""


def chapter_schedule(spec: str) -> S.Schedule:
    """A schedule from ``NAME[:key=value,...]``, the chapter's values filling the rest.

    Raises:
        ValueError: an unknown schedule or parameter, or a bad value.

    Example:
        >>> chapter_schedule("cosine:warmup_steps=5")
        cosine(base_lr=0.3, max_steps=20, final_lr=0.01, warmup_steps=5, warmup_begin_lr=0.0)
        >>> chapter_schedule("constant").spec
        'constant:base_lr=0.3'
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a schedule spec is NAME[:key=value,...], e.g. cosine; got {spec!r}")
    name = spec.partition(":")[0].strip()
    return S.parse_spec(spec, **CHAPTER_DEFAULTS.get(name, {}))
