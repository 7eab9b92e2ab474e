"""Lesson C in high dimensions (gdjax.lessons.high_dim): GOE sampling against
known values, Newton on a landscape with known critical points."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gdjax.lessons import high_dim as H


def _z(p_hat, p, n):
    return abs(p_hat - p) / math.sqrt(p * (1 - p) / n)


def test_goe_fraction_matches_exact_small_d():
    g = H.goe_minimum_fraction(jax.random.key(0), [1, 2], samples=1 << 20)
    assert _z(g.fraction[0], 0.5, g.samples[0]) < 4
    assert _z(g.fraction[1], (2 - math.sqrt(2)) / 4, g.samples[1]) < 4
    assert np.all(g.ci_low <= g.fraction) and np.all(g.fraction <= g.ci_high)


def _dense_fraction(key, d, n):
    """Dense GOE matrices (diagonal N(0, 1), off-diagonal N(0, 1/2)):
    positive definite when the Cholesky factorisation succeeds."""
    k1, k2 = jax.random.split(key)
    a = jax.random.normal(k1, (n, d))
    b = jax.random.normal(k2, (n, d, d)) * jnp.sqrt(0.5)
    m = jnp.triu(b, 1)
    m = m + jnp.swapaxes(m, 1, 2) + a[:, :, None] * jnp.eye(d)[None]
    chol = jnp.linalg.cholesky(m)
    return float(jnp.mean(jnp.all(jnp.isfinite(chol), axis=(1, 2))))


@pytest.mark.parametrize("d", [3, 4])
def test_tridiagonal_model_agrees_with_dense_goe(d):
    n = 1 << 19
    tri = H.goe_minimum_fraction(jax.random.key(d), [d], samples=n).fraction[0]
    dense = _dense_fraction(jax.random.key(100 + d), d, n)
    se = math.sqrt(2 * dense * (1 - dense) / n)
    assert abs(tri - dense) < 4 * se, (tri, dense)


def test_newton_finds_every_critical_point_of_a_cosine_sum():
    """f(x) = cos x1 + cos x2 on [-4, 4]^2: critical points at x_i in
    {-pi, 0, pi}: 4 minima (index 0), 4 saddles (1), 1 maximum (2)."""
    d = 2
    params = (jnp.eye(d), jnp.zeros(d), jnp.full(d, math.sqrt(d / 2)))
    g = jnp.linspace(-3.9, 3.9, 40)
    x0 = jnp.stack(jnp.meshgrid(g, g), axis=-1).reshape(-1, 2)
    x, gnorm, eig = (np.asarray(v) for v in H._newton(params, x0, 30))
    ok = (gnorm < 1e-6) & np.all(np.abs(x) <= 4, axis=1)

    def place(p):
        return tuple(round(float(v), 3) + 0.0 for v in p)  # + 0.0: no -0.0

    points = {place(p): int((e < 0).sum()) for p, e in zip(x[ok], eig[ok], strict=True)}
    expected = {
        place((sx * math.pi, sy * math.pi)): (sx == 0) + (sy == 0)
        for sx in (-1, 0, 1)
        for sy in (-1, 0, 1)
    }
    assert points == expected


def test_progress_counts_the_goe_chunks_then_the_landscapes():
    """The GOE bar sat full for 12 s while the landscapes ran unlabelled."""
    seen = []
    H.compute(
        seed=0, dims=3, samples=1 << 10, landscapes=1, starts=16, progress=lambda *a: seen.append(a)
    )
    assert {total for _, total in seen} == {3 + 3}  # one task: 3 GOE chunks, 3 landscapes
    assert [done for done, _ in seen] == [1, 2, 3, 4, 5, 6]


def test_bad_dims_refused():
    with pytest.raises(ValueError, match="dims must be at most 12"):
        H.compute(dims=13, samples=16)
