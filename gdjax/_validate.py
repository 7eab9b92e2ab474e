"""Argument checks shared by every public function (private core).

Each check raises a ValueError that names the argument and what it must be,
before any compute. Values that are traced (under ``jit`` or ``vmap``)
cannot be checked and pass: the numeric code handles them.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x) -> bool:
    """False for a traced value (or a PyTree holding one)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(x))


def check_number(name: str, value, ok, what: str) -> None:
    """Raises ValueError unless a concrete ``value`` is numeric, finite and
    ``ok`` (a predicate on arrays) everywhere; ``what`` says what it must be."""
    if not is_concrete(value):
        return
    try:  # NumPy, not jnp: checking a Python number must not start JAX's backends
        arr = np.asarray(value)
    except TypeError:
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not bool(np.all(np.isfinite(arr))) or not bool(np.all(ok(arr))):
        raise ValueError(f"{name} must be {what}, got {value!r}")


def check_positive(name: str, value) -> None:
    """Raises ValueError unless every entry of a concrete ``value`` is finite and > 0."""
    check_number(name, value, lambda a: a > 0, "finite and > 0")


def check_nonnegative(name: str, value) -> None:
    """Raises ValueError unless every entry of a concrete ``value`` is finite and >= 0."""
    check_number(name, value, lambda a: a >= 0, "finite and >= 0")


def check_count(name: str, value, minimum: int = 1) -> int:
    """Returns ``value`` as an int, or raises ValueError unless it is an integer >= minimum."""
    ok_type = isinstance(value, int | np.integer) and not isinstance(value, bool)
    ok_type = ok_type or (isinstance(value, float) and value.is_integer())
    if not ok_type or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    return int(value)


MIN_UNCERTAINTY_STARTS = 256
"""Fewer starts per perturbation size leave most sizes of an uncertainty
exponent with no uncertain start to fit."""


EPS_SIZES = 12
"""Perturbation sizes of an uncertainty exponent, by default."""


def matched_uncertainty_starts(runs: int, exponents: int = 1, full: int = 1 << 16) -> int:
    """Starts per perturbation size for ``--uncertainty auto``: the
    exponents' runs (3 per start and size: the start and its two
    perturbations, at :data:`EPS_SIZES` sizes) cost about ``runs``, what the
    map they accompany costs. A power of two from
    :data:`MIN_UNCERTAINTY_STARTS` to ``full`` (the full size)."""
    per_start = 3 * EPS_SIZES * max(1, exponents)
    n = max(1, int(runs) // per_start)
    n = 1 << (n.bit_length() - 1)  # the power of two at or below
    return int(min(full, max(MIN_UNCERTAINTY_STARTS, n)))


def check_uncertainty_starts(n, flag: str = "--uncertainty") -> int:
    """``--uncertainty N`` (or ``flag``): 0 (not measured) or at least
    :data:`MIN_UNCERTAINTY_STARTS` starts per perturbation size."""
    n = check_count(flag, n, minimum=0)
    if 0 < n < MIN_UNCERTAINTY_STARTS:
        raise ValueError(
            f"{flag} must be 0 (not measured) or at least {MIN_UNCERTAINTY_STARTS} "
            f"starts per perturbation size, got {n}"
        )
    return n


def check_domain(domain, dim: int) -> tuple[tuple[float, float], ...]:
    """``dim`` (low, high) pairs with finite low < high, as floats."""
    try:
        dom = tuple((float(lo), float(hi)) for lo, hi in domain)
    except (TypeError, ValueError):
        raise ValueError(f"domain must be {dim} (low, high) pairs, got {domain!r}") from None
    if len(dom) != dim:
        raise ValueError(f"domain must have {dim} (low, high) pairs, got {len(dom)}")
    for lo, hi in dom:
        if not (math.isfinite(lo) and math.isfinite(hi)) or not lo < hi:
            raise ValueError(f"each domain interval needs finite low < high, got {(lo, hi)}")
    return dom


def check_finite_start(x0) -> None:
    """A start must have parameters (no empty array or PyTree), and a concrete
    one must be finite (under jit or vmap it cannot be checked: a non-finite
    start is then flagged diverged at step 0)."""
    leaves = jax.tree.leaves(x0)
    if not leaves or all(np.size(x) == 0 for x in leaves):
        raise ValueError(f"x0 has no parameters to descend (got {x0!r}); give a start")
    if is_concrete(x0) and not all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(x0)):
        raise ValueError("x0 has a NaN or inf: gradient descent needs a finite start")


def check_dtype(dtype) -> np.dtype:
    """A float dtype gdjax computes in: float32 or float64 (None: JAX's
    default float); raises ValueError otherwise."""
    if dtype is None:
        return np.dtype(jnp.result_type(float))
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return dt
