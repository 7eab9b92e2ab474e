"""The descent engine against closed forms, loops and clear errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gdjax
from gdjax import surfaces

QUAD = surfaces.get("quadratic")


def closed_form(x0, lr, k):
    """x_k - 0.5 = (1 - 6 lr)^k (x_0 - 0.5) for f = 3x^2 - 3x + 4."""
    return 0.5 + (1 - 6 * lr) ** np.arange(k + 1) * (x0 - 0.5)


@pytest.mark.parametrize("lr", [0.001, 0.01, 0.1, 0.15, 0.3])
@pytest.mark.parametrize("x0", [-2.0, 1.7])
def test_quadratic_closed_form_float32(x0, lr):
    traj = gdjax.descend(QUAD, x0, steps=60, lr=lr)
    assert traj.params.dtype == jnp.float32
    np.testing.assert_allclose(traj.params, closed_form(x0, lr, 60), rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(traj.grads, 6 * closed_form(x0, lr, 60) - 3, rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(traj.lr, np.full(60, lr), rtol=1e-7)
    assert not traj.diverged and int(traj.diverged_step) == -1


@pytest.mark.parametrize("lr", [0.001, 0.01, 0.1, 0.15, 0.3])
def test_quadratic_closed_form_float64(lr, x64):
    traj = gdjax.descend(QUAD, -2.0, steps=200, lr=lr)
    assert traj.params.dtype == jnp.float64
    np.testing.assert_allclose(traj.params, closed_form(-2.0, lr, 200), rtol=1e-12, atol=1e-14)
    expected_loss = 3 * closed_form(-2.0, lr, 200) ** 2 - 3 * closed_form(-2.0, lr, 200) + 4
    np.testing.assert_allclose(traj.loss, expected_loss, rtol=1e-12)


def test_lr_one_explodes_to_1e70_in_float64(x64):
    traj = gdjax.descend(QUAD, 2.0, steps=100, lr=1.0)
    final = float(traj.final)
    assert final == pytest.approx(0.5 + (-5.0) ** 100 * 1.5, rel=1e-12)
    assert 1e69 < abs(final) < 1e71
    assert bool(traj.diverged)
    # |x_k - 0.5| = 1.5 * 5^k passes the default bound 1e10 at k = 15
    assert int(traj.diverged_step) == 15
    assert np.all(np.isfinite(traj.params)) and np.all(np.isfinite(traj.loss))


def test_lr_one_in_float32_freezes_finite_and_flags():
    traj = gdjax.descend(QUAD, 2.0, steps=100, lr=1.0)
    assert bool(traj.diverged) and int(traj.diverged_step) == 15
    for leaf in (traj.params, traj.loss, traj.grads, traj.lr):
        assert np.all(np.isfinite(leaf))
    # frozen at the last point whose loss and gradient were finite
    p = np.asarray(traj.params)
    last = p[-1]
    assert np.all(p[np.argmax(p == last) :] == last)
    assert abs(last) > 1e15


def test_small_lr_is_still_far_after_100_epochs():
    traj = gdjax.descend(QUAD, -2.0, steps=100, lr=0.001)
    assert abs(float(traj.final) - 0.5) > 1.0  # (0.994)^100 * 2.5 = 1.37


def test_pytree_params():
    def loss(p):
        return jnp.sum((p["w"] - 1.0) ** 2) + (p["b"] + 2.0) ** 2

    traj = gdjax.descend(loss, {"w": jnp.zeros(3), "b": 0.0}, steps=50, lr=0.25)
    np.testing.assert_allclose(traj.final["w"], np.ones(3), atol=1e-6)
    assert float(traj.final["b"]) == pytest.approx(-2.0, abs=1e-6)
    assert traj.params["w"].shape == (51, 3)
    assert traj.grad_norm.shape == (51,)


def test_vmap_equals_python_loop():
    x0s = jnp.array([-2.0, -0.3, 0.9, 1.8])
    lrs = jnp.array([0.01, 0.05, 0.1, 0.2])

    def run(x0, lr):
        return gdjax.descend(QUAD, x0, steps=30, lr=lr, rule="time")

    batched = jax.vmap(run)(x0s, lrs)
    for i in range(4):
        single = run(x0s[i], lrs[i])
        for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(single), strict=True):
            np.testing.assert_array_equal(a[i], b)


def test_vmap_over_2d_starts():
    peaks = surfaces.get("peaks")
    starts = jax.random.uniform(jax.random.key(0), (16, 2), minval=-3.0, maxval=3.0)
    batched = jax.vmap(lambda x: gdjax.descend(peaks, x, steps=20, lr=0.02))(starts)
    single = gdjax.descend(peaks, starts[5], steps=20, lr=0.02)
    np.testing.assert_allclose(batched.params[5], single.params, rtol=1e-6, atol=1e-7)


def test_no_recompile_for_new_values():
    from gdjax.descent import _descend

    gdjax.descend(QUAD, 1.0, steps=17, lr=0.1)
    before = _descend._cache_size()
    gdjax.descend(QUAD, -1.5, steps=17, lr=0.03)
    gdjax.descend(QUAD, jnp.float32(0.25), steps=17, lr=jnp.float32(0.2))
    assert _descend._cache_size() == before
    gdjax.descend(QUAD, 1.0, steps=18, lr=0.1)  # a new length is a new program
    assert _descend._cache_size() == before + 1


def test_no_recompile_between_rate_rules():
    """fixed, time and any gdjax schedule are one kind of update (a rate table);
    lesson D's grad rule, whose rate depends on the gradient, is another."""
    from gdjax.descent import _descend

    gdjax.descend(QUAD, 1.0, steps=13, lr=0.1, rule="fixed")
    before = _descend._cache_size()
    gdjax.descend(QUAD, 1.0, steps=13, lr=0.1, rule="time")
    gdjax.descend(QUAD, 1.0, steps=13, rule=gdjax.schedules.cosine(0.3, 13))
    assert _descend._cache_size() == before
    gdjax.descend(QUAD, 1.0, steps=13, lr=0.1, rule="grad")
    assert _descend._cache_size() == before + 1


def test_time_rule_is_linear_decay():
    traj = gdjax.descend(QUAD, 2.0, steps=10, lr=0.2, rule="time")
    np.testing.assert_allclose(traj.lr, 0.2 * (1 - np.arange(10) / 10), rtol=1e-6)
    x = 2.0
    for i in range(10):
        x = x - 0.2 * (1 - i / 10) * (6 * x - 3)
    assert float(traj.final) == pytest.approx(x, rel=1e-5)


def test_grad_rule_scales_with_gradient_norm():
    traj = gdjax.descend(QUAD, 2.0, steps=10, lr=0.01, rule="grad")
    np.testing.assert_allclose(traj.lr, 0.01 * np.abs(np.asarray(traj.grads[:-1])), rtol=1e-6)
    x = 2.0
    for _ in range(10):
        g = 6 * x - 3
        x = x - 0.01 * abs(g) * g
    assert float(traj.final) == pytest.approx(x, rel=1e-5)


def test_schedule_rule():
    sched = optax.exponential_decay(0.1, transition_steps=1, decay_rate=0.9)
    traj = gdjax.descend(QUAD, 2.0, steps=8, rule=sched)
    np.testing.assert_allclose(traj.lr, 0.1 * 0.9 ** np.arange(8), rtol=1e-6)


def test_optax_rules_match_optax_loop():
    peaks = surfaces.get("peaks")
    x0 = jnp.array([0.5, -0.5])
    for rule, tx in [
        (optax.adam(0.05), optax.adam(0.05)),
        (gdjax.optimizer(optax.sgd, momentum=0.9), optax.sgd(0.02, momentum=0.9)),
    ]:
        lr = None if isinstance(rule, optax.GradientTransformation) else 0.02
        traj = gdjax.descend(peaks, x0, steps=25, lr=lr, rule=rule)
        x, state = x0, tx.init(x0)
        with jax.numpy_dtype_promotion("standard"):  # optax's adam computes b1 ** int_count
            for _ in range(25):
                updates, state = tx.update(jax.grad(peaks.fn)(x), state, x)
                x = optax.apply_updates(x, updates)
        np.testing.assert_allclose(traj.final, x, rtol=1e-5, atol=1e-6)


def test_optax_sgd_effective_lr_is_lr():
    traj = gdjax.descend(QUAD, 2.0, steps=5, rule=optax.sgd(0.07))
    np.testing.assert_allclose(traj.lr, np.full(5, 0.07), rtol=1e-5)


def test_descend_final_matches_trajectory_end():
    traj = gdjax.descend(QUAD, -2.0, steps=40, lr=0.05)
    fin = gdjax.descend_final(QUAD, -2.0, steps=40, lr=0.05, tol=1e-2, target=0.5)
    assert float(fin.params) == float(traj.final)
    err = np.abs(np.asarray(traj.params) - 0.5)
    # |x_k - 0.5| = 2.5 * 0.7^k < 0.01 first at k = 16
    assert int(fin.converged_step) == int(np.argmax(err < 1e-2)) == 16
    assert bool(fin.converged) and not bool(fin.diverged)
    fin_g = gdjax.descend_final(QUAD, -2.0, steps=40, lr=0.05, tol=1e-2)
    assert int(fin_g.converged_step) == int(np.argmax(6 * err < 1e-2))


def test_descend_final_not_converged_and_diverged():
    fin = gdjax.descend_final(QUAD, -2.0, steps=10, lr=0.001, target=0.5)
    assert not bool(fin.converged) and int(fin.converged_step) == -1
    fin = gdjax.descend_final(QUAD, -2.0, steps=100, lr=1.0, target=0.5)
    assert bool(fin.diverged) and not bool(fin.converged) and int(fin.converged_step) == -1
    assert np.isfinite(float(fin.params)) and np.isfinite(float(fin.loss))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lr": 0.0}, "lr must be finite and > 0"),
        ({"lr": -0.1}, "lr must be finite and > 0"),
        ({"lr": float("nan")}, "lr must be finite and > 0"),
        ({"lr": jnp.array([0.1, -1.0])}, "lr must be finite and > 0"),
        ({"lr": "fast"}, "lr must be a number"),
        ({"lr": None}, "needs a learning rate"),
        ({"lr": 0.1, "steps": 0}, "steps must be a positive integer"),
        ({"lr": 0.1, "steps": -3}, "steps must be a positive integer"),
        ({"lr": 0.1, "steps": 2.5}, "steps must be a positive integer"),
        ({"lr": 0.1, "rule": "newton"}, "unknown rule 'newton'.*fixed, time, grad"),
        ({"lr": 0.1, "rule": optax.adam(0.1)}, "lr must be left out"),
        ({"lr": 0.1, "bound": 0.0}, "bound must be finite and > 0"),
    ],
)
def test_bad_input_raises(kwargs, match):
    kwargs = {"steps": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        gdjax.descend(QUAD, 1.0, **kwargs)


def test_wrong_shape_for_surface():
    with pytest.raises(ValueError, match=r"shape \(2,\).*shape \(3,\)"):
        gdjax.descend(surfaces.get("peaks"), jnp.zeros(3), steps=5, lr=0.1)
    with pytest.raises(ValueError, match=r"shape \(\)"):
        gdjax.descend(QUAD, jnp.zeros(2), steps=5, lr=0.1)


def test_surface_name_string_is_a_clear_error():
    with pytest.raises(ValueError, match=r"surfaces.get\('peaks'\)"):
        gdjax.descend("peaks", jnp.zeros(2), steps=5, lr=0.1)


def test_validation_is_skipped_under_tracing():
    out = jax.vmap(lambda lr: gdjax.descend(QUAD, 1.0, steps=3, lr=lr).final)(jnp.array([0.1, 0.2]))
    assert out.shape == (2,)


def test_named_rules_side_by_side():
    lrs = jnp.array([0.1, 0.1, 0.02])
    trajs = gdjax.descend(QUAD, -1.0, steps=20, lr=lrs, rule=gdjax.RULES)
    assert trajs.params.shape == (3, 21)
    for r, rule in enumerate(gdjax.RULES):
        single = gdjax.descend(QUAD, -1.0, steps=20, lr=lrs[r], rule=rule)
        # the schedule's formula vmapped over families is a select over all of
        # them, compiled apart from the single run's: equal to the last bits
        np.testing.assert_allclose(trajs.params[r], single.params, rtol=1e-6)
        np.testing.assert_allclose(trajs.lr[r], single.lr, rtol=1e-6)
    with pytest.raises(ValueError, match="one per rule"):
        gdjax.descend(QUAD, -1.0, steps=20, lr=jnp.array([0.1, 0.2]), rule=gdjax.RULES)
    with pytest.raises(ValueError, match="share one kind of update"):
        gdjax.descend(QUAD, -1.0, steps=20, lr=0.1, rule=["fixed", gdjax.optimizer(optax.sgd)])


def test_trajectory_refuses_what_would_put_nan_in_it():
    """No NaN or inf reaches a Trajectory: a non-finite start, a function that is
    not finite at the start, and a rate that float32 turns into 0 or inf are
    refused; a step that is not taken records a rate of 0."""
    with pytest.raises(ValueError, match="x0 has a NaN or inf"):
        gdjax.descend(lambda x: x**2, jnp.nan, steps=3, lr=0.1)
    with pytest.raises(ValueError, match="x0 has a NaN or inf"):
        gdjax.descend_final(lambda x: jnp.sum(x**2), jnp.array([1.0, jnp.inf]), steps=3, lr=0.1)
    with pytest.raises(ValueError, match=r"fn\(x0\) is nan"):
        gdjax.descend(lambda x: jnp.nan * x, 1.0, steps=3, lr=0.1)
    with pytest.raises(ValueError, match=r"fn\(x0\) is inf"):
        gdjax.descend_final(lambda x: 1.0 / (x - 1.0) ** 2, 1.0, steps=3, lr=0.1)
    with pytest.raises(ValueError, match="lr 1e-50 is not representable in float32"):
        gdjax.descend(lambda x: x**2, 1.0, steps=3, lr=1e-50)
    with pytest.raises(ValueError, match="would become inf"):
        gdjax.descend(lambda x: x**2, 1.0, steps=3, lr=1e39)
    with pytest.raises(ValueError, match="--x64 on the command line, jax.enable_x64 in Python"):
        gdjax.descend(lambda x: x**2, 1.0, steps=3, lr=1e-50)
    # sqrt's gradient at 0 is inf: the first step lands at x = 1 - 10 * 0.5 < 0 (NaN)
    traj = gdjax.descend(jnp.sqrt, 1.0, steps=4, lr=10.0)
    assert bool(traj.diverged) and int(traj.diverged_step) == 1
    for field in (traj.params, traj.loss, traj.grads, traj.lr):
        assert np.all(np.isfinite(np.asarray(field)))
    np.testing.assert_array_equal(np.asarray(traj.lr), 0.0)
    np.testing.assert_array_equal(np.asarray(traj.params), 1.0)


def test_tiny_rate_is_kept_in_float64(x64):
    traj = gdjax.descend(lambda x: x**2, 1.0, steps=2, lr=1e-50)
    np.testing.assert_array_equal(np.asarray(traj.lr), 1e-50)


def test_non_finite_start_under_vmap_is_flagged_at_step_0():
    trajs = jax.vmap(lambda x: gdjax.descend(lambda y: y**2, x, steps=3, lr=0.1))(
        jnp.array([1.0, jnp.nan])
    )
    np.testing.assert_array_equal(np.asarray(trajs.diverged), [False, True])
    np.testing.assert_array_equal(np.asarray(trajs.diverged_step), [-1, 0])


def test_an_empty_start_is_refused():
    with pytest.raises(ValueError, match="x0 has no parameters"):
        gdjax.descend(lambda x: (x**2).sum(), jnp.zeros((0,)), steps=3, lr=0.1)
