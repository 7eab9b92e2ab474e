"""Every listed minimum is checked against SciPy, and jax.grad against finite
differences and closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

import gdjax
from gdjax import surfaces

# Literature minima are given to 6 decimals; SciPy's BFGS from a nearby start
# must land within these tolerances.
LOC_TOL = 2e-4
VALUE_TOL = 5e-6


def _np_fn(surface):
    f = jax.jit(surface.fn)
    g = jax.jit(jax.grad(surface.fn))

    def fun(x):
        x = jnp.asarray(x[0] if surface.dim == 1 else x)
        return float(f(x))

    def jac(x):
        x = jnp.asarray(x[0] if surface.dim == 1 else x)
        return np.atleast_1d(np.asarray(g(x), dtype=np.float64))

    return fun, jac


@pytest.mark.parametrize("name", surfaces.names())
def test_listed_minima_match_scipy(name, x64):
    surface = surfaces.get(name)
    fun, jac = _np_fn(surface)
    rng = np.random.default_rng(0)
    for m in surface.minima:
        start = np.asarray(m.location) + rng.uniform(-0.05, 0.05, size=surface.dim)
        res = scipy.optimize.minimize(fun, start, jac=jac, method="BFGS", options={"gtol": 1e-10})
        np.testing.assert_allclose(res.x, m.location, atol=LOC_TOL, err_msg=f"{name} {m}")
        assert abs(res.fun - m.value) < VALUE_TOL, (name, m, res.fun)
        lo, hi = np.asarray(surface.domain).T
        assert np.all((lo <= res.x) & (res.x <= hi))


@pytest.mark.parametrize("name", surfaces.names())
def test_global_minimum_is_lowest_and_flagged(name):
    surface = surfaces.get(name)
    best = min(m.value for m in surface.minima)
    assert surface.global_minimum.value == best
    for m in surface.minima:
        assert m.is_global == (abs(m.value - best) < 1e-6)


@pytest.mark.parametrize("name", [n for n in surfaces.names() if surfaces.get(n).all_minima])
def test_no_unlisted_minima_in_domain(name, x64):
    """Where a surface claims to list all minima, SciPy from a grid of starts
    finds nothing else inside the domain."""
    surface = surfaces.get(name)
    fun, jac = _np_fn(surface)
    axes = [np.linspace(lo, hi, 9) for lo, hi in surface.domain]
    starts = np.stack(np.meshgrid(*axes), -1).reshape(-1, surface.dim)
    lo, hi = np.asarray(surface.domain).T
    listed = np.asarray([m.location for m in surface.minima])
    for s in starts:
        res = scipy.optimize.minimize(fun, s, jac=jac, method="BFGS", options={"gtol": 1e-9})
        if not (res.success and np.all((lo <= res.x) & (res.x <= hi))):
            continue
        # a saddle can stop BFGS; only count points with positive curvature
        h = np.asarray(
            jax.hessian(surface.fn)(jnp.asarray(res.x[0] if surface.dim == 1 else res.x))
        )
        if np.any(np.linalg.eigvalsh(np.atleast_2d(h)) <= 0):
            continue
        dist = np.min(np.linalg.norm(listed - res.x, axis=1))
        assert dist < 1e-3, f"{name}: unlisted minimum at {res.x} (f = {res.fun})"


@pytest.mark.parametrize("name", surfaces.names())
def test_grad_matches_finite_differences(name, x64):
    surface = surfaces.get(name)
    rng = np.random.default_rng(1)
    lo, hi = np.asarray(surface.domain).T
    g = jax.grad(surface.fn)
    h = 1e-6
    for _ in range(5):
        x = rng.uniform(lo, hi)
        if surface.dim == 1:
            x = x[0]
            fd = (surface.fn(x + h) - surface.fn(x - h)) / (2 * h)
        else:
            eye = np.eye(surface.dim)
            fd = np.array([(surface.fn(x + h * e) - surface.fn(x - h * e)) / (2 * h) for e in eye])
        np.testing.assert_allclose(np.asarray(g(jnp.asarray(x))), fd, rtol=1e-6, atol=1e-6)


def test_analytic_gradients(x64):
    q = surfaces.get("quadratic")
    for x in [-2.0, 0.0, 0.5, 1.7]:
        assert float(jax.grad(q.fn)(jnp.asarray(x))) == pytest.approx(6 * x - 3)
    h = surfaces.get("himmelblau")
    x, y = 1.3, -0.7
    expected = [
        4 * x * (x**2 + y - 11) + 2 * (x + y**2 - 7),
        2 * (x**2 + y - 11) + 4 * y * (x + y**2 - 7),
    ]
    np.testing.assert_allclose(jax.grad(h.fn)(jnp.array([x, y])), expected, rtol=1e-12)


def test_ackley_gradient_is_finite_at_origin():
    g = jax.grad(surfaces.get("ackley").fn)(jnp.zeros(2))
    assert np.all(np.isfinite(g))
    assert float(surfaces.get("ackley").fn(jnp.zeros(2))) == pytest.approx(0.0, abs=1e-6)


def test_peaks_global_minimum_is_the_lesson_one():
    m = surfaces.get("peaks").global_minimum
    np.testing.assert_allclose(m.location, (0.23, -1.63), atol=0.01)
    assert m.value == pytest.approx(-6.55, abs=0.01)


def test_unknown_surface_lists_known_names():
    with pytest.raises(ValueError, match="himmelblau") as err:
        surfaces.get("banana")
    assert "banana" in str(err.value)


def test_surface_metadata():
    for name in surfaces.names():
        s = surfaces.get(name)
        assert s.name == name
        assert len(s.domain) == s.dim
        assert all(lo < hi for lo, hi in s.domain)
        assert all(len(m.location) == s.dim for m in s.minima)
        x = jnp.zeros(s.shape)
        assert jnp.shape(s(x)) == ()
    assert surfaces.get(surfaces.get("peaks")) is surfaces.get("peaks")
    assert isinstance(surfaces.get("peaks"), gdjax.Surface)
