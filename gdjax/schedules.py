"""Learning-rate schedules: pure ``count -> lr`` functions.

A schedule here speaks optax's language: it is a plain callable of the update
count that uses only ``jnp`` operations, so it jits, vmaps and can be passed as
``optax.sgd(learning_rate=schedule)``. Arguments are validated in Python when
the schedule is built (when they are concrete values).

Counting convention: like optax and PyTorch, the first update uses
``schedule(0)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike

__all__ = ["Schedule", "linear_decay"]

Schedule = Callable[[ArrayLike], Array]


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _as_float(x) -> Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def check_positive(name: str, value) -> None:
    """Raises ValueError unless every entry of a concrete ``value`` is finite and > 0."""
    if not _is_concrete(value):
        return
    try:
        arr = jnp.asarray(value)
    except TypeError:
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if not jnp.issubdtype(arr.dtype, jnp.number) or jnp.issubdtype(arr.dtype, jnp.bool_):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    if not bool(jnp.all(jnp.isfinite(arr))) or not bool(jnp.all(arr > 0)):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")


def check_count(name: str, value) -> int:
    """Returns ``value`` as an int, or raises ValueError unless it is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, int | jnp.integer):
        if not (isinstance(value, float) and value.is_integer()):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if value < 1 or not math.isfinite(value):
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def linear_decay(base_lr: ArrayLike, total_steps: int) -> Schedule:
    """Lesson D's time-based decay, ``lr_t = base_lr * (1 - t / total_steps)``.

    Big exploring steps early, tiny precise steps late. For t past
    ``total_steps`` the rate stays at 0.

    Args:
        base_lr: the rate at t = 0 (> 0; may be a traced array).
        total_steps: N, the number of updates over which the rate falls to 0.

    Returns:
        A schedule ``count -> lr``.

    Example:
        >>> s = linear_decay(1.0, 4)
        >>> [float(s(t)) for t in range(5)]
        [1.0, 0.75, 0.5, 0.25, 0.0]
    """
    check_positive("base_lr", base_lr)
    total_steps = check_count("total_steps", total_steps)

    def schedule(count: ArrayLike) -> Array:
        base = _as_float(base_lr)
        frac = jnp.clip(jnp.asarray(count).astype(base.dtype) / total_steps, 0.0, 1.0)
        return base * (1.0 - frac)

    return schedule
