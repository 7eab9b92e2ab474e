"""Sweeps: one vmapped call equals the single runs it stands for."""

import jax.numpy as jnp
import numpy as np
import pytest

import gdjax
from gdjax import surfaces

QUAD = surfaces.get("quadratic")


def test_lr_by_epochs_grid_matches_closed_form():
    lrs = jnp.array([0.001, 0.01, 0.1])
    epochs = [10, 100, 1000]
    sw = gdjax.sweep(QUAD, -1.5, lrs, epochs=epochs, target=0.5, tol=1e-2)
    assert sw.value.shape == (1, 1, 3, 3)
    for j, lr in enumerate([0.001, 0.01, 0.1]):
        for k, e in enumerate(epochs):
            expected = 0.5 + (1 - 6 * lr) ** e * (-2.0)
            assert float(sw.value[0, 0, j, k]) == pytest.approx(expected, rel=1e-4, abs=1e-6)
            assert bool(sw.converged[0, 0, j, k]) == (abs(expected - 0.5) < 1e-2)


def test_tenfold_smaller_lr_needs_about_tenfold_epochs():
    sw = gdjax.sweep(QUAD, -1.5, jnp.array([0.001, 0.01]), steps=2000, target=0.5, tol=1e-2)
    slow, fast = np.asarray(sw.converged_step[0, 0])
    # k = log(0.01 / 2) / log(1 - 6 lr): 881 and 86
    assert fast == 86 and slow == 881
    assert 9 < slow / fast < 11


def test_start_by_lr_grid_matches_descend_final():
    starts = jnp.array([[0.5, -1.0], [-1.0, 0.5], [2.0, 2.0]])
    lrs = jnp.array([0.01, 0.05])
    peaks = surfaces.get("peaks")
    sw = gdjax.sweep(peaks, starts, lrs, steps=300, tol=1e-3)
    assert sw.value.shape == (1, 3, 2, 1, 2)
    for i in range(3):
        for j in range(2):
            fin = gdjax.descend_final(peaks, starts[i], steps=300, lr=lrs[j], tol=1e-3)
            np.testing.assert_allclose(sw.value[0, i, j, 0], fin.params, rtol=1e-6)
            assert bool(sw.converged[0, i, j, 0]) == bool(fin.converged)
            assert int(sw.converged_step[0, i, j]) == int(fin.converged_step)


def test_rules_side_by_side_equal_single_runs():
    starts = jnp.array([-2.0, 1.9])
    lrs = jnp.array([0.02, 0.2])
    sw = gdjax.sweep(QUAD, starts, lrs, epochs=[5, 50], rules=gdjax.RULES, target=0.5)
    assert sw.rules == ("fixed", "time", "grad")
    for r, rule in enumerate(gdjax.RULES):
        for i in range(2):
            for j in range(2):
                traj = gdjax.descend(QUAD, starts[i], steps=50, lr=lrs[j], rule=rule)
                np.testing.assert_allclose(
                    sw.value[r, i, j], traj.params[jnp.array([5, 50])], rtol=1e-6
                )


def test_sweep_diverged_flags():
    sw = gdjax.sweep(QUAD, 2.0, jnp.array([0.1, 1.0]), epochs=[5, 20, 100])
    np.testing.assert_array_equal(sw.diverged[0, 0], [[False] * 3, [False, True, True]])
    assert np.all(np.isfinite(sw.value)) and np.all(np.isfinite(sw.loss))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": None}, "needs steps"),
        ({"epochs": [10, 5]}, "increasing"),
        ({"epochs": []}, "must not be empty"),
        ({"epochs": [5, 10], "steps": 20}, "disagrees"),
        ({"steps": 10, "rules": ["fixed", "newton"]}, "unknown rule"),
        ({"steps": 10, "tol": 0.0}, "tol must be"),
    ],
)
def test_sweep_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gdjax.sweep(QUAD, 1.0, jnp.array([0.1]), **kwargs)


def test_sweep_bad_start_shape_for_surface():
    with pytest.raises(ValueError, match="shape"):
        gdjax.sweep(surfaces.get("peaks"), jnp.zeros((4, 3)), 0.1, steps=5)
