"""Sharpness: Lanczos on Hessian-vector products against dense and ARPACK
eigenvalues, the stability limits against optax runs, and the LeNet's
per-epoch sharpness through training, populations, resume and reports."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree
from test_lenet import _synthetic

from gdjax import lenet, train
from gdjax import schedules as S
from gdjax import sharpness as sh


def _mlp():
    k1, k2, k3 = jax.random.split(jax.random.key(1), 3)
    params = {"w1": jax.random.normal(k1, (5, 8)) * 0.7, "w2": jax.random.normal(k2, (8,)) * 0.7}
    x = jax.random.normal(k3, (40, 5))
    y = jnp.sin(x[:, 0])

    def loss(p):
        return jnp.mean((jnp.tanh(x @ p["w1"]) @ p["w2"] - y) ** 2)

    return loss, params


def test_lanczos_top_eigenvalue_equals_the_dense_hessians():
    loss, params = _mlp()
    flat, unravel = ravel_pytree(params)
    dense = np.linalg.eigvalsh(
        np.asarray(jax.hessian(lambda f: loss(unravel(f)))(flat), np.float64)
    )
    got = jax.jit(lambda p: sh.top_eigenvalue(loss, p, iters=20))(params)
    assert dense[0] < 0  # an indefinite Hessian: the top eigenvalue is not the largest |.|
    np.testing.assert_allclose(float(got.value), dense[-1], rtol=1e-4)
    assert float(got.residual) < 1e-3 * dense[-1]


def test_the_algebraically_largest_eigenvalue_not_the_largest_in_magnitude():
    # Hessian diag(-2, -4, -6): power iteration would find -6
    got = sh.top_eigenvalue(lambda p: -jnp.sum(p**2 * jnp.arange(1.0, 4.0)), jnp.ones(3))
    np.testing.assert_allclose(float(got.value), -2.0, rtol=1e-5)


@pytest.mark.parametrize("c", [3.0, -1.5])
def test_a_closed_krylov_space_keeps_the_top_eigenvalue(c):
    # Hessian c * I: Lanczos breaks down after one step; the rest cannot add a larger value
    got = sh.top_eigenvalue(lambda p: 0.5 * c * jnp.sum(p**2), jnp.ones(50), iters=10)
    np.testing.assert_allclose(float(got.value), c, rtol=1e-5)
    assert float(got.residual) == 0.0


def test_lanczos_vmaps_over_a_population_of_parameters():
    loss, params = _mlp()
    stacked = jax.tree_util.tree_map(lambda a: jnp.stack([a, 1.3 * a, 0.5 * a]), params)
    many = jax.vmap(lambda p: sh.top_eigenvalue(loss, p).value)(stacked)
    one = [
        float(sh.top_eigenvalue(loss, jax.tree_util.tree_map(lambda a, i=i: a[i], stacked)).value)
        for i in range(3)
    ]
    np.testing.assert_allclose(np.asarray(many), one, rtol=1e-5)


def test_lenet_sharpness_equals_arpack_on_the_same_hessian():
    from scipy.sparse.linalg import LinearOperator, eigsh

    ds = _synthetic(n_train=64)
    data = (jnp.asarray(ds.train_images), jnp.asarray(ds.train_labels))
    params = lenet.init_state(3).params
    got = jax.jit(lenet.make_sharpness(64, 20))(params, data)

    flat, unravel = ravel_pytree(params)
    x = ds.train_images.astype(np.float32) / 255.0
    y = ds.train_labels.astype(np.int32)

    def loss(p):
        logits = lenet.MODEL.apply(p, x)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))

    matvec = jax.jit(lambda v: ravel_pytree(sh.hvp(loss, params, unravel(v)))[0])
    op = LinearOperator(
        (flat.size, flat.size),
        matvec=lambda v: np.asarray(matvec(jnp.asarray(v.ravel(), jnp.float32)), np.float64),
        dtype=np.float64,
    )
    top = eigsh(op, k=1, which="LA", tol=1e-6, return_eigenvectors=False)[0]
    np.testing.assert_allclose(float(got.value), top, rtol=1e-3)


@pytest.mark.parametrize(
    ("optimizer", "momentum"), [("sgd", 0.0), ("sgd", 0.9), ("nesterov", 0.9), ("nesterov", 0.5)]
)
def test_stability_limit_is_where_optax_starts_to_diverge(optimizer, momentum):
    lr = 0.1
    settings = {"momentum": momentum} if momentum else {}
    limit = float(sh.stability_limit(optimizer, lr, settings))
    for factor, converges in ((0.98, True), (1.02, False)):
        opt = optax.sgd(lr, momentum=momentum or None, nesterov=optimizer == "nesterov")
        p = jnp.float64(1.0) if jax.config.jax_enable_x64 else jnp.float32(1.0)
        state = opt.init(p)
        for _ in range(2000):
            update, state = opt.update(limit * factor * p, state)
            p = p + update
        assert (abs(float(p)) < 1e-6) == converges, (factor, float(p))


def test_adaptive_optimizers_have_no_limit_and_unknown_ones_are_refused():
    assert sh.stability_limit("adam", 0.1) is None
    assert sh.edge(np.ones(3), np.ones(3), "rmsprop") is None
    with pytest.raises(ValueError, match="no stability limit known"):
        sh.stability_limit("lbfgs", 0.1)


def test_edge_summary_and_its_words():
    # limit 2/lr = 10 at lr 0.2: ratios 0.5, 0.95, nan (diverged), 1.2, 0.8
    e = sh.edge(np.array([5.0, 9.5, np.nan, 12.0, 8.0]), np.full(5, 0.2), "sgd")
    np.testing.assert_allclose(e.ratio, [0.5, 0.95, np.nan, 1.2, 0.8])
    fields = (e.final, e.peak, e.peak_epoch, e.first_edge, e.edge_epochs, e.above_epochs)
    assert fields == (0.8, 1.2, 4, 2, 1, 1) and e.measured == 4
    assert sh.verdict(e).startswith(
        "reaches the edge at epoch 2; of 4 epochs, 1 at the edge (0.9-1.1 of its limit) and 1 "
        "above it (peak 1.20 at epoch 4); median 0.88, 0.80 at the end"
    )
    assert e.median == pytest.approx(0.875)
    # a rate of 0 (a warmup's first epoch) has no limit: no ratio, no warning
    np.testing.assert_array_equal(sh.edge_ratio([3.0, 3.0], "sgd", [0.0, 1.0]), [np.nan, 1.5])
    below = sh.edge(np.array([1.0, 2.0]), np.full(2, 0.2), "sgd")
    assert below.first_edge is None
    assert sh.verdict(below).startswith("stays below the edge: at most 0.20 of its limit (epoch 2)")
    assert sh.verdict(sh.edge(np.full(2, np.nan), np.ones(2), "sgd")) == "not measured (diverged)"


# --------------------------------------------------------------------------
# The LeNet's sharpness per epoch.


def _config(**kw):
    base = dict(schedule=S.constant(0.05), epochs=2, batch_size=64, log_every=2, sharpness=48)
    return train.TrainConfig(**{**base, **kw})


def test_training_tracks_the_sharpness_of_its_parameters_each_epoch():
    ds = _synthetic(n_train=128, n_test=64)
    tracked = train.train(_config(epochs=1), ds, progress=False)
    plain = train.train(_config(epochs=1, sharpness=0), ds, progress=False)
    assert "sharpness" in tracked.epochs[0][0] and "sharpness" not in plain.epochs[0][0]
    assert np.isnan(plain.metrics.sharpness).all()
    data = (jnp.asarray(ds.train_images), jnp.asarray(ds.train_labels))
    expected = jax.jit(lenet.make_sharpness(48, 20))(tracked.params, data).value
    np.testing.assert_allclose(tracked.metrics.sharpness[0, 0], float(expected), rtol=1e-5)
    # the metrics do not change by measuring the sharpness
    for key in ("train_loss", "train_acc", "test_acc"):
        assert tracked.epochs[0][0][key] == plain.epochs[0][0][key]


def test_a_population_measures_each_models_sharpness():
    ds = _synthetic(n_train=128, n_test=64)
    configs = [_config(seed=0), _config(seed=5, schedule=S.constant(0.1))]
    together = train.train(configs, ds, progress=False)
    alone = [train.train(c, ds, progress=False) for c in configs]
    for m, one in enumerate(alone):
        np.testing.assert_allclose(
            together.metrics.sharpness[m], one.metrics.sharpness[0], rtol=2e-3
        )


def test_sharpness_survives_a_resume_exactly(tmp_path):
    ds = _synthetic(n_train=128, n_test=64)
    cfg = _config(settings=(("momentum", 0.9),))
    whole = train.train(cfg, ds, out=tmp_path / "whole", progress=False)
    train.train(
        _config(settings=(("momentum", 0.9),), epochs=1), ds, out=tmp_path / "cut", progress=False
    )
    resumed = train.train(cfg, ds, out=tmp_path / "cut", resume=True, progress=False)
    np.testing.assert_array_equal(resumed.metrics.sharpness, whole.metrics.sharpness)
    rows = json.loads((tmp_path / "cut" / "metrics.json").read_text())["models"][0]["epochs"]
    assert [r["sharpness"] for r in rows] == whole.metrics.sharpness[0].tolist()
    # resuming with other sharpness settings is refused
    with pytest.raises(train.CheckpointError, match="sharpness: 48 in the checkpoint, 32 now"):
        train.train(
            _config(sharpness=32, epochs=3), ds, out=tmp_path / "cut", resume=True, progress=False
        )


def test_bad_sharpness_settings_are_refused_before_any_compute():
    with pytest.raises(ValueError, match="sharpness must be"):
        _config(sharpness=-1)
    with pytest.raises(ValueError, match="sharpness_iters must be"):
        _config(sharpness_iters=0)
    with pytest.raises(ValueError, match="a population shares sharpness"):
        train.train([_config(), _config(sharpness=0)], _synthetic(n_train=64), progress=False)
    with pytest.raises(ValueError, match="--sharpness-examples 500 is larger than the 128"):
        train.train(_config(sharpness=500), _synthetic(n_train=128), progress=False)


def test_cli_writes_the_sharpness_figure_and_the_edge_table(tmp_path, capsys):
    from gdjax.cli import main

    main(
        [
            "lesson",
            "lr-scheduling",
            "--policies",
            "constant",
            "cosine",
            "--epochs",
            "2",
            "--subset",
            "256",
            "--test-subset",
            "100",
            "--sharpness",
            "--sharpness-examples",
            "64",
            "--sharpness-iters",
            "8",
            "--no-progress",
            "--out",
            str(tmp_path),
        ]
    )
    out = tmp_path
    assert (out / "sharpness.png").is_file()
    page = (out / "report.html").read_text()
    assert "Sharpness and the edge of stability" in page
    assert "At the edge of stability? (per policy)" in page
    results = json.loads((out / "results.json").read_text())
    for row in results["table"]:
        assert row["edge_measured"] == 2
        assert row["edge_final"] is None or row["edge_final"] > 0
    metrics = json.loads((out / "metrics.json").read_text())
    for model in metrics["models"]:
        assert model["config"]["sharpness"] == 64
        assert all("sharpness" in e for e in model["epochs"])
    assert "sharpness/limit" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["lenet", "--sharpness-examples", "500"], "go with --sharpness"),
        (["lesson", "lr-scheduling", "--sharpness-iters", "5"], "go with --sharpness"),
        (["lenet", "--sharpness", "--sharpness-iters", "100000"], "must be at most 1000"),
    ],
)
def test_sharpness_options_are_refused_where_they_would_do_nothing_or_too_much(
    tmp_path, capsys, argv, message
):
    """--sharpness-examples without --sharpness was accepted and ignored;
    --sharpness-iters 100000 ran out of memory after an epoch."""
    from gdjax.cli import main

    with pytest.raises(SystemExit) as e:
        main([*argv, "--out", str(tmp_path / "x")])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
