"""A zoo of test surfaces with their literature minima.

Every surface is a :class:`Surface`: a differentiable scalar function ``fn``
together with its dimension, its usual plotting box and the minima known from
the literature. ``get(name)`` looks one up by name; ``names()`` lists them.

Conventions:

* a 1D surface takes a scalar (shape ``()``); an n-D surface takes a vector of
  shape ``(n,)``;
* ``domain`` is a tuple of ``(low, high)`` pairs, one per coordinate;
* ``minima`` lists :class:`Minimum` records (location, value). When
  ``all_minima`` is true the list holds every local minimum inside the
  domain; otherwise only the global one(s) (Rastrigin and Ackley have
  hundreds of local minima in their boxes).

Example:
    >>> import gdjax
    >>> s = gdjax.surfaces.get("himmelblau")
    >>> float(s.fn(jax.numpy.array([3.0, 2.0])))
    0.0
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = [
    "Minimum",
    "Surface",
    "ackley",
    "double_well",
    "get",
    "himmelblau",
    "names",
    "peaks",
    "quadratic",
    "rastrigin",
    "rosenbrock",
    "six_hump_camel",
    "styblinski_tang",
]


@dataclasses.dataclass(frozen=True)
class Minimum:
    """A known minimum of a surface: where it is and the value there."""

    location: tuple[float, ...]
    value: float
    is_global: bool = False


@dataclasses.dataclass(frozen=True)
class Surface:
    """A named, differentiable test function.

    Attributes:
        name: the registry name.
        fn: the function; scalar output, jax-differentiable.
        dim: number of coordinates (1 means ``fn`` takes a scalar).
        domain: the usual plotting box, one ``(low, high)`` per coordinate.
        minima: known minima (see ``all_minima``).
        all_minima: whether ``minima`` lists every local minimum in ``domain``.
        formula: the formula in plain text.
    """

    name: str
    fn: Callable[[Array], Array] = dataclasses.field(repr=False)
    dim: int
    domain: tuple[tuple[float, float], ...]
    minima: tuple[Minimum, ...]
    all_minima: bool
    formula: str

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one point: ``()`` in 1D, ``(dim,)`` otherwise."""
        return () if self.dim == 1 else (self.dim,)

    @property
    def global_minimum(self) -> Minimum:
        """The lowest listed minimum."""
        return min(self.minima, key=lambda m: m.value)

    def __call__(self, x: Array) -> Array:
        return self.fn(x)


# --------------------------------------------------------------------------
# The functions. Each takes one point; vmap for batches.


def quadratic(x: Float[Array, ""]) -> Float[Array, ""]:
    """Lesson A's parabola, 3x^2 - 3x + 4, minimum 3.25 at x = 0.5."""
    return 3.0 * x * x - 3.0 * x + 4.0


def double_well(x: Float[Array, ""]) -> Float[Array, ""]:
    """The symmetric double well x^4/4 - x^2/2: two global minima of value
    -1/4 at x = -1 and x = +1, a maximum at 0.

    Its gradient descent map is the cubic ``x -> x - lr (x^3 - x)``; the
    curvature at either minimum is f''(+-1) = 2, so the minima are stable
    for lr < 1 and the first period doubling (a symmetric 2-cycle around
    each minimum) is at lr = 1 (see :mod:`gdjax.attractors`).
    """
    return 0.25 * x**4 - 0.5 * x * x


def peaks(p: Float[Array, "2"]) -> Float[Array, ""]:
    """MATLAB's peaks function."""
    x, y = p[0], p[1]
    return (
        3.0 * (1.0 - x) ** 2 * jnp.exp(-(x**2) - (y + 1.0) ** 2)
        - 10.0 * (x / 5.0 - x**3 - y**5) * jnp.exp(-(x**2) - y**2)
        - jnp.exp(-((x + 1.0) ** 2) - y**2) / 3.0
    )


def himmelblau(p: Float[Array, "2"]) -> Float[Array, ""]:
    """Himmelblau's function, four global minima of value 0."""
    x, y = p[0], p[1]
    return (x**2 + y - 11.0) ** 2 + (x + y**2 - 7.0) ** 2


def rosenbrock(p: Float[Array, " n"]) -> Float[Array, ""]:
    """Rosenbrock's banana valley, minimum 0 at (1, ..., 1)."""
    return jnp.sum(100.0 * (p[1:] - p[:-1] ** 2) ** 2 + (1.0 - p[:-1]) ** 2)


def rastrigin(p: Float[Array, " n"]) -> Float[Array, ""]:
    """Rastrigin's egg crate, global minimum 0 at the origin."""
    return 10.0 * p.shape[0] + jnp.sum(p**2 - 10.0 * jnp.cos(2.0 * jnp.pi * p))


def _safe_norm(p: Array) -> Array:
    # sqrt has an infinite derivative at 0; the double-where keeps the gradient
    # at the origin finite (0, a valid subgradient of the cone).
    r2 = jnp.sum(p**2)
    positive = r2 > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, r2, 1.0)), 0.0)


def ackley(p: Float[Array, " n"]) -> Float[Array, ""]:
    """Ackley's function, global minimum 0 at the origin."""
    n = p.shape[0]
    return (
        -20.0 * jnp.exp(-0.2 * _safe_norm(p) / jnp.sqrt(n))
        - jnp.exp(jnp.sum(jnp.cos(2.0 * jnp.pi * p)) / n)
        + 20.0
        + jnp.e
    )


def six_hump_camel(p: Float[Array, "2"]) -> Float[Array, ""]:
    """The six-hump camel back, two global minima of value -1.0316."""
    x, y = p[0], p[1]
    return (4.0 - 2.1 * x**2 + x**4 / 3.0) * x**2 + x * y + (-4.0 + 4.0 * y**2) * y**2


def styblinski_tang(p: Float[Array, " n"]) -> Float[Array, ""]:
    """Styblinski-Tang, global minimum -39.16617 n at (-2.903534, ...)."""
    return 0.5 * jnp.sum(p**4 - 16.0 * p**2 + 5.0 * p)


# --------------------------------------------------------------------------
# The registry.


def _m(location, value, is_global=False) -> Minimum:
    return Minimum(tuple(float(v) for v in location), float(value), is_global)


# Styblinski-Tang separates into g(t) = (t^4 - 16 t^2 + 5 t) / 2 per
# coordinate, with local minima at t = -2.903534 (g = -39.166166) and
# t = 2.746803 (g = -25.029445).
_ST_A, _ST_GA = -2.903534, -39.166166
_ST_B, _ST_GB = 2.746803, -25.029445

_SURFACES: dict[str, Surface] = {
    s.name: s
    for s in [
        Surface(
            "quadratic",
            quadratic,
            1,
            ((-2.0, 2.0),),
            (_m((0.5,), 3.25, True),),
            True,
            "3 x^2 - 3 x + 4",
        ),
        Surface(
            "double_well",
            double_well,
            1,
            ((-2.0, 2.0),),
            (_m((-1.0,), -0.25, True), _m((1.0,), -0.25, True)),
            True,
            "x^4 / 4 - x^2 / 2",
        ),
        Surface(
            "peaks",
            peaks,
            2,
            ((-3.0, 3.0), (-3.0, 3.0)),
            (
                _m((0.228280, -1.625535), -6.551133, True),
                _m((-1.347396, 0.204519), -3.049849),
                _m((0.296446, 0.320196), -0.064936),
            ),
            True,
            "3(1-x)^2 exp(-x^2-(y+1)^2) - 10(x/5 - x^3 - y^5) exp(-x^2-y^2) - exp(-(x+1)^2-y^2)/3",
        ),
        Surface(
            "himmelblau",
            himmelblau,
            2,
            ((-5.0, 5.0), (-5.0, 5.0)),
            (
                _m((3.0, 2.0), 0.0, True),
                _m((-2.805118, 3.131312), 0.0, True),
                _m((-3.779310, -3.283186), 0.0, True),
                _m((3.584428, -1.848126), 0.0, True),
            ),
            True,
            "(x^2 + y - 11)^2 + (x + y^2 - 7)^2",
        ),
        Surface(
            "rosenbrock",
            rosenbrock,
            2,
            ((-2.0, 2.0), (-1.0, 3.0)),
            (_m((1.0, 1.0), 0.0, True),),
            True,
            "sum 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2",
        ),
        Surface(
            "rastrigin",
            rastrigin,
            2,
            ((-5.12, 5.12), (-5.12, 5.12)),
            (_m((0.0, 0.0), 0.0, True),),
            False,
            "10 n + sum x_i^2 - 10 cos(2 pi x_i)",
        ),
        Surface(
            "ackley",
            ackley,
            2,
            ((-5.0, 5.0), (-5.0, 5.0)),
            (_m((0.0, 0.0), 0.0, True),),
            False,
            "-20 exp(-0.2 sqrt(mean x_i^2)) - exp(mean cos(2 pi x_i)) + 20 + e",
        ),
        Surface(
            "six_hump_camel",
            six_hump_camel,
            2,
            ((-3.0, 3.0), (-2.0, 2.0)),
            (
                _m((0.089842, -0.712656), -1.031628, True),
                _m((-0.089842, 0.712656), -1.031628, True),
                _m((-1.703607, 0.796084), -0.215464),
                _m((1.703607, -0.796084), -0.215464),
                _m((-1.607105, -0.568651), 2.104251),
                _m((1.607105, 0.568651), 2.104251),
            ),
            True,
            "(4 - 2.1 x^2 + x^4/3) x^2 + x y + (-4 + 4 y^2) y^2",
        ),
        Surface(
            "styblinski_tang",
            styblinski_tang,
            2,
            ((-5.0, 5.0), (-5.0, 5.0)),
            (
                _m((_ST_A, _ST_A), 2 * _ST_GA, True),
                _m((_ST_A, _ST_B), _ST_GA + _ST_GB),
                _m((_ST_B, _ST_A), _ST_GA + _ST_GB),
                _m((_ST_B, _ST_B), 2 * _ST_GB),
            ),
            True,
            "sum (x_i^4 - 16 x_i^2 + 5 x_i) / 2",
        ),
    ]
}


def names() -> tuple[str, ...]:
    """The names ``get`` accepts, in registry order."""
    return tuple(_SURFACES)


def get(name: str | Surface) -> Surface:
    """Looks a surface up by name.

    Args:
        name: a registry name (see ``names()``), or a Surface (returned as is).

    Returns:
        The Surface.

    Raises:
        ValueError: for an unknown name; the message lists the known ones.
    """
    if isinstance(name, Surface):
        return name
    try:
        return _SURFACES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown surface {name!r}; known surfaces: {', '.join(_SURFACES)}"
        ) from None
