"""The LeNet, its training step and the training loop: exact values against
independent references, on small synthetic or real subsets (seconds each)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gdjax import data, lenet, train
from gdjax import schedules as S
from gdjax.lessons.chapter import chapter_schedule


@pytest.fixture(scope="module")
def fmnist() -> data.FashionMNIST:
    if data.find_dir() is None:
        pytest.fail("Fashion-MNIST files not found; run ./setup.sh or set GDJAX_DATA_DIR")
    return data.fashion_mnist(download_missing=False)


def _synthetic(n_train=300, n_test=130, seed=0) -> data.FashionMNIST:
    rng = np.random.default_rng(seed)
    return data.FashionMNIST(
        train_images=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        train_labels=rng.integers(0, 10, n_train).astype(np.uint8),
        test_images=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        test_labels=rng.integers(0, 10, n_test).astype(np.uint8),
        source="synthetic",
    )


# --------------------------------------------------------------------------
# The model.


def test_parameter_count_and_shapes():
    params = lenet.init_state(0).params["params"]
    assert lenet.param_count(params) == 61_706
    shapes = jax.tree_util.tree_map(lambda a: a.shape, params)
    assert shapes == {
        "conv1": {"kernel": (5, 5, 1, 6), "bias": (6,)},
        "conv2": {"kernel": (5, 5, 6, 16), "bias": (16,)},
        "fc1": {"kernel": (400, 120), "bias": (120,)},
        "fc2": {"kernel": (120, 84), "bias": (84,)},
        "fc3": {"kernel": (84, 10), "bias": (10,)},
    }


def test_xavier_init_and_seeds():
    params = lenet.init_state(0).params["params"]
    for name, layer in params.items():
        k = np.asarray(layer["kernel"])
        receptive = int(np.prod(k.shape[:-2])) if k.ndim == 4 else 1
        fan_in, fan_out = k.shape[-2] * receptive, k.shape[-1] * receptive
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        assert np.abs(k).max() <= limit, name
        assert np.abs(k).max() > 0.9 * limit, name  # uniform over the whole range
        np.testing.assert_array_equal(layer["bias"], 0.0)
    same = lenet.init_state(0).params
    other = lenet.init_state(1).params
    assert all(
        jax.tree_util.tree_leaves(jax.tree_util.tree_map(np.array_equal, params, same["params"]))
    )
    assert not np.array_equal(params["fc1"]["kernel"], other["params"]["fc1"]["kernel"])


def test_the_initial_state_compiled_for_one_run_equals_the_default_compile():
    """The initial state compiles at LLVM's level 0 on the CPU
    (gdjax._compile.jit_once): every value of a population's initial state
    equals the default compile's bit for bit."""
    default = jax.jit(lenet._init_state.__wrapped__, static_argnums=1)
    seeds = jnp.arange(5, 7, dtype=jnp.uint32)
    batched = lambda init: jax.vmap(init, in_axes=(0, None, None))(seeds, lenet.SGD, {})  # noqa: E731
    quick, slow = jax.tree.leaves(batched(lenet._init_state)), jax.tree.leaves(batched(default))
    assert len(quick) == len(slow) == 12  # 5 kernels, 5 biases, the step, the seed
    for a, b in zip(quick, slow, strict=True):
        np.testing.assert_array_equal(a, b)


def _numpy_lenet(params, images):
    """An independent NumPy forward pass: convolutions as sums over the 25 offsets."""
    p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params["params"])

    def conv(x, kernel, bias, pad):
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
        kh, kw, _, cout = kernel.shape
        h, w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
        y = np.zeros((x.shape[0], h, w, cout))
        for dy in range(kh):
            for dx in range(kw):
                y += x[:, dy : dy + h, dx : dx + w, :] @ kernel[dy, dx]
        return y + bias

    def pool(x):
        b, h, w, c = x.shape
        return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))

    relu = lambda z: np.maximum(z, 0.0)  # noqa: E731
    x = images.astype(np.float64)[..., None] / 255.0
    x = pool(relu(conv(x, p["conv1"]["kernel"], p["conv1"]["bias"], 2)))
    x = pool(relu(conv(x, p["conv2"]["kernel"], p["conv2"]["bias"], 0)))
    x = x.reshape(x.shape[0], -1)
    x = relu(x @ p["fc1"]["kernel"] + p["fc1"]["bias"])
    x = relu(x @ p["fc2"]["kernel"] + p["fc2"]["bias"])
    return x @ p["fc3"]["kernel"] + p["fc3"]["bias"]


def _perturbed_params(seed):
    # non-zero biases, so they are checked too
    return jax.tree_util.tree_map(
        lambda a: a + 0.05 * jnp.cos(jnp.arange(a.size, dtype=a.dtype).reshape(a.shape)),
        lenet.init_state(seed).params,
    )


@pytest.mark.parametrize("conv", ["banded", "lax"])
def test_forward_matches_numpy(conv):
    ds = _synthetic()
    params = _perturbed_params(3)
    images = ds.train_images[:8]
    got = lenet.LeNet(conv=conv).apply(params, images.astype(np.float32) / 255.0)
    np.testing.assert_allclose(got, _numpy_lenet(params, images), rtol=1e-4, atol=1e-4)


def test_banded_and_lax_convolutions_have_the_same_gradients(fmnist):
    """On real images (ties in max pooling are common on their black background)."""
    params = _perturbed_params(5)
    images = jnp.asarray(fmnist.train_images[:64], jnp.float32) / 255.0
    labels = jnp.asarray(fmnist.train_labels[:64], jnp.int32)

    def loss(p, conv):
        logits = lenet.LeNet(conv=conv).apply(p, images)
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))

    grad = jax.jit(jax.grad(loss), static_argnums=1)
    g_banded, g_lax = grad(params, "banded"), grad(params, "lax")
    for (path, a), b in zip(
        jax.tree_util.tree_leaves_with_path(g_banded),
        jax.tree_util.tree_leaves(g_lax),
        strict=True,
    ):
        scale = float(jnp.abs(b).max())
        np.testing.assert_allclose(a, b, atol=1e-4 * scale, err_msg=jax.tree_util.keystr(path))


# --------------------------------------------------------------------------
# The step.


def test_epoch_permutation_covers_every_example_once():
    perm = np.asarray(lenet.epoch_permutation(5, 0, 300, 256))
    assert perm.shape == (512,)
    np.testing.assert_array_equal(np.sort(perm[:300]), np.arange(300))
    np.testing.assert_array_equal(perm[300:], -1)
    again = np.asarray(lenet.epoch_permutation(5, 0, 300, 256))
    np.testing.assert_array_equal(perm, again)
    assert not np.array_equal(perm, lenet.epoch_permutation(5, 1, 300, 256))
    assert not np.array_equal(perm, lenet.epoch_permutation(6, 0, 300, 256))


@jax.jit
def _reference_update(params, images, labels, lr):
    """SGD on the mean cross-entropy, written out with log_softmax."""

    def loss(p):
        logits = lenet.MODEL.apply(p, images.astype(jnp.float32) / 255.0)
        logp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), 1))

    value, grads = jax.value_and_grad(loss)(params)
    return value, jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)


@pytest.mark.parametrize("per", ["epoch", "update"])
def test_step_is_sgd_with_the_scheduled_rate_and_masks_the_last_batch(per):
    ds = _synthetic(n_train=300)
    sched = S.multi_factor(0.5, [1, 2], 0.5)  # 0.5, 0.25, 0.125 at t = 0, 1, 2
    spe = lenet.steps_per_epoch(300, 256)
    assert spe == 2
    step = jax.jit(lenet.make_train_step(S.evaluate, batch_size=256, steps_per_epoch=spe, per=per))
    hyper = lenet.StepHyper(sched.params(jnp.float32))
    dev = (jnp.asarray(ds.train_images), jnp.asarray(ds.train_labels))
    state = lenet.init_state(0)
    lrs = []
    for epoch in range(2):
        perm = lenet.epoch_permutation(state.seed, epoch, 300, 256)
        for i in range(spe):
            idx = np.asarray(perm[i * 256 : (i + 1) * 256])
            idx = idx[idx >= 0]
            expected_loss, expected = _reference_update(
                state.params,
                ds.train_images[idx],
                ds.train_labels[idx],
                sched(epoch if per == "epoch" else 2 * epoch + i),
            )
            state, m = step(state, hyper, dev, perm, np.int32(i))
            lrs.append(float(m.lr))
            assert float(m.count) == len(idx) == (256 if i == 0 else 44)
            np.testing.assert_allclose(m.loss_sum / m.count, expected_loss, rtol=1e-5)
            # float32 sums over 256 (masked) vs 44 rows differ in rounding: 3e-5 is
            # under 1% of an update (a wrong rate or mask is off by 50% or more)
            jax.tree_util.tree_map(
                lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=3e-5),
                state.params,
                expected,
            )
    assert int(state.step) == 4
    if per == "epoch":
        assert lrs == [0.5, 0.5, 0.25, 0.25]
    else:
        assert lrs == [0.5, 0.25, 0.125, 0.125]


def test_eval_accuracy_matches_numpy():
    ds = _synthetic(n_test=1234)
    params = lenet.init_state(1).params
    acc = lenet.make_eval(batch_size=500)(params, ds.test_images, ds.test_labels)
    logits = _numpy_lenet(params, ds.test_images)
    pred = logits.argmax(-1)
    # float32 against float64: an image whose top two logits are closer than float32
    # rounding may go either way (here 1 of 1234 within 1e-4; the closest 3e-5 apart)
    top2 = np.sort(logits, -1)[:, -2:]
    near_ties = int(np.sum(top2[:, 1] - top2[:, 0] < 1e-4))
    assert near_ties <= 3
    assert float(acc) == pytest.approx(np.mean(pred == ds.test_labels), abs=near_ties / 1234 + 1e-6)


# --------------------------------------------------------------------------
# The loop.


def test_training_learns_on_real_data(fmnist, tmp_path):
    """Learning with margin on any x86-64 CPU and any host device count.

    Early training is chaotic at the chapter's rate 0.3: 48 steps of 256 ended
    at test accuracy 0.52 here with one device, 0.41 with the tests' eight and
    0.41 on an AVX-512 machine. At rate 0.1 with minibatches of 64 (256 steps)
    this config ends at 0.727 with 1 and 2 host devices and 0.725 with 8
    (0.684, 0.684, 0.690 after the first epoch)."""
    cfg = train.TrainConfig(
        schedule=S.constant(0.1),
        epochs=2,
        batch_size=64,
        subset=8192,
        test_subset=2000,
        log_every=32,
    )
    result = train.train(cfg, fmnist, out=tmp_path, progress=False)
    epochs = result.epochs[0]
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"] < 2.0  # chance: ln 10 = 2.30
    assert epochs[-1]["test_acc"] > 0.6  # 10 classes: chance is 0.1
    assert epochs[-1]["train_acc"] > 0.6
    assert all(e["lr"] == pytest.approx(0.1) for e in epochs)
    # train points every 32 minibatches: 128 minibatches per epoch -> 4 per epoch
    assert [round(p["epoch"], 4) for p in result.curves[0][:4]] == [0.25, 0.5, 0.75, 1.0]
    saved = json.loads((tmp_path / "metrics.json").read_text())
    model = saved["models"][0]
    assert model["config"]["schedule"] == "constant:base_lr=0.1"
    assert set(model["epochs"][0]) == {
        "epoch",
        "train_loss",
        "train_acc",
        "test_acc",
        "lr",
        "seconds",
    }
    assert saved["param_count"] == 61_706
    assert (tmp_path / train.CHECKPOINT).is_file()
    # which files it trained on
    assert saved["data"]["source"] == fmnist.source
    assert [f["key"] for f in saved["data"]["files"]] == list(data.FILES)
    for f in saved["data"]["files"]:
        assert f["data_sha256"] == data.FILES[f["key"]].sha256
        with open(f["path"], "rb") as stored:
            assert f["sha256"] == hashlib.sha256(stored.read()).hexdigest()


def test_quick_look_learns(fmnist):
    """The README's quick look (gdjax lenet --epochs 2 --test-subset 2000), its
    first epoch: test accuracy 0.777 with 1 and 2 host devices, 0.764 with 8
    (0.819, 0.819, 0.815 after the second)."""
    cfg = train.TrainConfig(epochs=1, test_subset=2000)
    result = train.train(cfg, fmnist, progress=False)
    last = result.epochs[0][-1]
    assert last["test_acc"] > 0.65
    assert last["train_acc"] > 0.55


def _same_numbers(a, b, rtol, acc_tol):
    """Losses and rates to rtol; accuracies to acc_tol (vmapped float32 sums round
    differently, which can flip the argmax of a near-tie)."""
    for ea, eb in zip(a, b, strict=True):
        for key in ("train_loss", "lr"):
            assert ea[key] == pytest.approx(eb[key], rel=rtol), key
        for key in ("train_acc", "test_acc"):
            assert ea[key] == pytest.approx(eb[key], abs=acc_tol), key


def test_population_equals_separate_runs():
    ds = _synthetic(n_train=600, n_test=200)
    configs = [
        train.TrainConfig(schedule=S.constant(0.1), epochs=2, seed=0, log_every=1),
        train.TrainConfig(
            schedule=chapter_schedule("cosine:max_steps=2"), epochs=2, seed=7, log_every=1
        ),
        train.TrainConfig(schedule=chapter_schedule("square_root"), epochs=2, seed=3, log_every=1),
    ]
    pop = train.train(configs, ds, progress=False)
    assert pop.meta["mode"] == "population"
    # sharded over the most devices that divide the population: 3 of the tests' 8 host
    # devices (1 on a single GPU)
    assert pop.meta["devices"] == max(d for d in (1, 3) if d <= jax.device_count())
    for m, cfg in enumerate(configs):
        alone = train.train(cfg, ds, progress=False)
        _same_numbers(pop.epochs[m], alone.epochs[0], 1e-4, acc_tol=2.5 / 200)
        # 6 SGD steps amplify float32 rounding to ~2e-4; a mixed-up seed, batch order
        # or schedule moves weights by O(0.1)
        jax.tree_util.tree_map(
            lambda p, a, m=m: np.testing.assert_allclose(p[m], a, rtol=1e-2, atol=1e-3),
            pop.params,
            alone.params,
        )


def test_the_pure_core_is_the_run_without_its_shell(tmp_path, monkeypatch):
    """make_program, init_state, make_hyper and run_epoch train exactly what
    train() trains, and write nothing."""
    ds = _synthetic(n_train=300, n_test=100)
    cfg = train.TrainConfig(schedule=S.cosine(0.2, 2, 0.01), epochs=2, seed=1, log_every=1)
    monkeypatch.chdir(tmp_path)
    program = train.make_program(cfg, 300)
    assert program.steps_per_epoch == 2
    state, hyper = train.init_state(cfg), train.make_hyper(cfg)
    data = (jnp.asarray(ds.train_images), jnp.asarray(ds.train_labels))
    test = (jnp.asarray(ds.test_images), jnp.asarray(ds.test_labels))
    compiled = train.compile_program(program, state, hyper, data, test)
    outs = []
    for epoch in range(2):
        state, out = train.run_epoch(compiled, state, hyper, data, test, epoch)
        outs.append(out)
    assert list(tmp_path.iterdir()) == []

    shell = train.train(cfg, ds, progress=False)
    for name in ("train_loss", "train_acc", "test_acc", "lr"):
        np.testing.assert_array_equal(
            getattr(shell.metrics, name), np.stack([getattr(o, name) for o in outs], axis=1)
        )
    np.testing.assert_array_equal(
        shell.points.train_loss, np.concatenate([o.points.train_loss for o in outs], axis=1)
    )
    jax.tree_util.tree_map(np.testing.assert_array_equal, shell.params, state.params)


def test_results_are_typed_arrays_and_json_comes_from_them(tmp_path):
    """RunResult's tables are arrays of shape (models, epochs) and (models,
    points); metrics.json's rows (keys unchanged) are read off them."""
    ds = _synthetic(n_train=300, n_test=100)
    configs = [
        train.TrainConfig(schedule=S.cosine(0.2, 2, 0.01), epochs=2, seed=1, log_every=1),
        train.TrainConfig(schedule=S.constant(0.1), epochs=2, seed=2, log_every=1),
    ]
    result = train.train(configs, ds, out=tmp_path, progress=False)
    m = result.metrics
    assert isinstance(m, train.EpochMetrics) and isinstance(result.points, train.CurvePoints)
    assert all(np.shape(a) == (2, 2) for a in m)
    assert result.points.epoch.shape == (2, 4)  # 2 points an epoch (log_every 1)
    np.testing.assert_array_equal(m.epoch, [[1, 2], [1, 2]])
    np.testing.assert_array_equal(result.points.epoch[0], [0.5, 1.0, 1.5, 2.0])
    np.testing.assert_array_equal(m.lr[:, 0], [np.float32(0.2), np.float32(0.1)])
    np.testing.assert_array_equal(m.seconds[0], m.seconds[1])  # an epoch's time is shared
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for k, model in enumerate(saved["models"]):
        assert model["epochs"] == result.epochs[k] and model["curve"] == result.curves[k]
        assert [e["test_acc"] for e in model["epochs"]] == m.test_acc[k].tolist()
        assert [e["epoch"] for e in model["epochs"]] == [1, 2]
        assert set(model["epochs"][0]) == {
            "epoch",
            "train_loss",
            "train_acc",
            "test_acc",
            "lr",
            "seconds",
        }


def test_run_result_tables_and_rows_agree():
    """Rows (as metrics.json and checkpoints hold them; None where a model
    diverged) give the typed tables and back; models of different lengths are
    padded with NaN, and the padding is no row."""
    rows = [
        [
            {
                "epoch": 1,
                "train_loss": 2.0,
                "train_acc": 0.1,
                "test_acc": 0.2,
                "lr": 0.5,
                "seconds": 1.0,
            },
            {
                "epoch": 2,
                "train_loss": None,
                "train_acc": None,
                "test_acc": None,
                "lr": 0.5,
                "seconds": 1.5,
            },
        ],
        [
            {
                "epoch": 1,
                "train_loss": 1.0,
                "train_acc": 0.3,
                "test_acc": 0.4,
                "lr": 0.1,
                "seconds": 1.0,
            },
        ],
    ]
    result = train.RunResult(
        [train.TrainConfig(epochs=2), train.TrainConfig(epochs=1)], rows, [[], []], 0.0, None, {}
    )
    assert result.metrics.train_loss.shape == (2, 2)
    assert np.isnan(result.metrics.train_loss[0, 1]) and np.isnan(result.metrics.epoch[1, 1])
    assert result.epochs == rows
    assert result.curves == [[], []] and result.points.epoch.shape == (2, 0)


def test_a_sequential_run_in_progress_pads_the_models_still_to_come(tmp_path):
    ds = _synthetic(n_train=100, n_test=50)
    configs = [
        train.TrainConfig(epochs=2, seed=0),
        train.TrainConfig(schedule=S.constant(0.1), epochs=1, seed=1),
    ]
    seen = []
    total = train.train_many(
        configs, ds, mode="sequential", progress=False, on_epoch=lambda r: seen.append(r)
    )
    # during the second model's run the first one's two epochs are there, its one
    assert [len(e) for e in seen[-1].epochs] == [2, 1]
    assert seen[-1].metrics.epoch.shape == (2, 2) and np.isnan(seen[-1].metrics.epoch[1, 1])
    assert [len(e) for e in total.epochs] == [2, 1]
    np.testing.assert_array_equal(total.metrics.lr[:, 0], [np.float32(0.3), np.float32(0.1)])


def test_sequential_many_writes_each_model(tmp_path):
    ds = _synthetic()
    configs = [
        train.TrainConfig(schedule=chapter_schedule("constant"), epochs=1, seed=0),
        train.TrainConfig(schedule=chapter_schedule("factor"), epochs=1, seed=0),
    ]
    res = train.train_many(
        configs, ds, names=["a", "b"], mode="sequential", out=tmp_path, progress=False
    )
    assert res.meta["mode"] == "sequential" and res.meta["names"] == ["a", "b"]
    assert (tmp_path / "a" / "metrics.json").is_file() and (
        tmp_path / "b" / train.CHECKPOINT
    ).is_file()
    saved = json.loads((tmp_path / "metrics.json").read_text())
    # the canonical specs, the chapter's values written out
    assert [m["config"]["schedule"] for m in saved["models"]] == [
        "constant:base_lr=0.3",
        "factor:base_lr=2.0,factor=0.9,final_lr=0.01",
    ]
    assert res.epochs[1][0]["lr"] == pytest.approx(2.0)  # the chapter's factor starts at 2.0


def test_bad_configs_fail_before_compute(tmp_path):
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        train.TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="unknown schedule 'cosh'"):
        chapter_schedule("cosh")
    with pytest.raises(ValueError, match="not the spec 'cosine'.*parse it once"):
        train.TrainConfig(schedule="cosine")
    with pytest.raises(ValueError, match="per must be"):
        train.TrainConfig(per="batch")
    with pytest.raises(ValueError, match="population shares epochs"):
        train.train([train.TrainConfig(epochs=1), train.TrainConfig(epochs=2)], _synthetic())
    with pytest.raises(ValueError, match="no checkpoint"):
        train.train(train.TrainConfig(epochs=1), _synthetic(), out=tmp_path, resume=True)


@pytest.mark.parametrize("seed", [2**32, 2**40, -1, 1.0, True])
def test_seeds_outside_32_bits_are_refused(seed):
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*32\)"):
        train.TrainConfig(seed=seed)


def test_the_largest_seeds_train():
    """Seeds fill 32 bits: 2**32 - 1 trains, alone and in a population, and a
    seed below 2**31 gives the same model as before seeds were uint32."""
    ds = _synthetic(n_train=100, n_test=50)
    top = 2**32 - 1
    alone = train.train(train.TrainConfig(epochs=1, seed=top), ds, progress=False)
    pop = train.train(
        [train.TrainConfig(epochs=1, seed=s) for s in (top, 2**31)], ds, progress=False
    )
    assert alone.epochs[0][0]["train_loss"] is not None
    assert alone.epochs[0][0]["train_loss"] == pytest.approx(pop.epochs[0][0]["train_loss"], 1e-4)
    key = jax.random.key_data(lenet._keys(jnp.asarray(7, jnp.int32))[0])
    np.testing.assert_array_equal(
        key, jax.random.key_data(lenet._keys(lenet.init_state(7).seed)[0])
    )


def test_labels_outside_the_classes_are_refused():
    ds = _synthetic()
    labels = ds.train_labels.copy()
    labels[17] = 12
    with pytest.raises(
        ValueError, match=r"train_labels hold 1 label\(s\) outside 0..9 .*12 at index 17"
    ):
        train.train(train.TrainConfig(epochs=1), ds._replace(train_labels=labels), progress=False)
    test_labels = ds.test_labels.astype(np.int64)
    test_labels[3] = -1
    with pytest.raises(ValueError, match="test_labels hold 1 label"):
        train.train(train.TrainConfig(epochs=1), ds._replace(test_labels=test_labels))


def test_a_subset_larger_than_the_data_is_refused():
    ds = _synthetic(n_train=300, n_test=130)
    with pytest.raises(
        ValueError, match="--subset 100000 is larger than the train set, which has 300"
    ):
        train.train(train.TrainConfig(epochs=1, subset=100000), ds)
    with pytest.raises(
        ValueError, match="--test-subset 131 is larger than the test set, which has 130"
    ):
        train.train(train.TrainConfig(epochs=1, test_subset=131), ds)
    # the whole set is fine
    train.train(train.TrainConfig(epochs=1, subset=300, test_subset=130), ds, progress=False)


# --------------------------------------------------------------------------
# Checkpoints and resuming.


def _flip(path, offset):
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x40
    path.write_bytes(bytes(raw))


def test_corrupted_or_truncated_checkpoint_is_refused(tmp_path):
    """A flipped byte used to resume silently (a weight went from 0.103 to
    -105.5); a truncated file failed with msgpack's "Unpack failed" and no name."""
    ds = _synthetic()
    train.train(train.TrainConfig(epochs=1), ds, out=tmp_path, progress=False)
    path = tmp_path / train.CHECKPOINT
    good = path.read_bytes()
    more = train.TrainConfig(epochs=2)
    for damage, match in [
        (
            lambda: _flip(path, len(good) // 2),
            "is corrupted: its contents do not match the SHA-256",
        ),
        (lambda: _flip(path, len(good) - 1), "is corrupted"),
        (lambda: path.write_bytes(good[: len(good) - 100]), "is truncated: its header promises"),
        (lambda: path.write_bytes(good[:30]), "is truncated: its header is cut short"),
        (lambda: path.write_bytes(good[:5]), "is truncated"),
        (lambda: path.write_bytes(b""), "is truncated"),
        (lambda: _flip(path, 2), "is not a gdjax checkpoint"),
        (lambda: path.write_bytes(good + b"x"), "is corrupted"),
    ]:
        path.write_bytes(good)
        damage()
        with pytest.raises(train.CheckpointError, match=match) as info:
            train.train(more, ds, out=tmp_path, resume=True, progress=False)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
        assert isinstance(info.value, ValueError)
    path.write_bytes(good)
    resumed = train.train(more, ds, out=tmp_path, resume=True, progress=False)
    assert len(resumed.epochs[0]) == 2


def test_a_checkpoint_without_a_checksum_is_refused(tmp_path):
    """A checkpoint of an older gdjax (msgpack without the header) cannot be verified."""
    import flax.serialization

    ds = _synthetic()
    train.train(train.TrainConfig(epochs=1), ds, out=tmp_path, progress=False)
    path = tmp_path / train.CHECKPOINT
    ckpt = train.load_checkpoint(tmp_path)
    record = {k: ckpt[k] for k in ("configs", "epochs", "curves")}
    legacy = {"epoch": ckpt["epoch"], "state": ckpt["state"], "record": json.dumps(record)}
    path.write_bytes(flax.serialization.msgpack_serialize(legacy))
    with pytest.raises(train.CheckpointError, match="not a gdjax checkpoint .*older gdjax"):
        train.load_checkpoint(tmp_path)


def test_every_file_is_written_atomically(fmnist, tmp_path, monkeypatch):
    """Every file of a LeNet run (metrics.json, the checkpoint, curves.png,
    report.html) goes through gdjax.runs.write_bytes: a temporary file, synced,
    renamed; a kill never leaves a half-written or empty file."""
    from gdjax import runs
    from gdjax.cli import lenet as lesson

    written = []
    real = runs.write_bytes

    def spy(path, payload):
        written.append(os.path.relpath(path, tmp_path))
        return real(path, payload)

    monkeypatch.setattr(runs, "write_bytes", spy)
    res = lesson.run(
        tmp_path,
        epochs=1,
        subset=512,
        test_subset=100,
        no_progress=True,
        schedule=["constant:base_lr=0.1"],
    )
    files = {
        os.path.relpath(os.path.join(root, name), tmp_path)
        for root, _, names in os.walk(tmp_path)
        for name in names
    }
    assert files <= set(written), files - set(written)
    assert {"metrics.json", train.CHECKPOINT, "curves.png", "report.html"} <= files
    # and the report says which files it trained on, and what its figure draws
    page = (tmp_path / "report.html").read_text()
    for f in data.provenance(fmnist)["files"]:
        assert f["sha256"] in page and os.path.basename(f["path"]) in page
    assert "every 50 minibatches" not in page
    assert "once per epoch, averaged over the epoch (an epoch has 2 minibatches" in page
    assert res["result"].meta["data"]["files"][0]["key"] == "train_images"


def test_report_caption_says_what_is_drawn(tmp_path):
    from gdjax import report

    ds = _synthetic(n_train=600)  # 3 minibatches of 256 per epoch
    few = train.train(train.TrainConfig(epochs=1), ds, progress=False)
    assert "once per epoch" in report.curves_caption(few)
    assert "every 50" not in report.curves_caption(few)
    many = train.train(train.TrainConfig(epochs=1, log_every=1), ds, progress=False)
    assert report.curves_caption(many).startswith(
        "Train loss and train accuracy every minibatch (3 points per epoch of 3 minibatches)"
    )


def test_resume_with_fewer_epochs_than_done_is_refused(tmp_path):
    """A finished 2-epoch run resumed with --epochs 1 wrote a config that
    contradicted its contents."""
    ds = _synthetic()
    train.train(train.TrainConfig(epochs=2), ds, out=tmp_path, progress=False)
    before = (tmp_path / "metrics.json").read_bytes()
    with pytest.raises(ValueError, match=r"2 epochs done; cannot resume it with --epochs 1"):
        train.train(train.TrainConfig(epochs=1), ds, out=tmp_path, resume=True, progress=False)
    assert (tmp_path / "metrics.json").read_bytes() == before
    # the same number of epochs is fine (nothing left to train)
    again = train.train(train.TrainConfig(epochs=2), ds, out=tmp_path, resume=True, progress=False)
    assert [e["epoch"] for e in again.epochs[0]] == [1, 2]


def test_resume_of_a_finished_run_with_fewer_epochs_cli(tmp_path, capsys):
    from gdjax import cli

    argv = ["lenet", "--epochs", "2", "--subset", "300", "--test-subset", "100", "--no-progress"]
    cli.main([*argv, "--out", str(tmp_path)])
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        cli.main([*argv[:1], "--epochs", "1", *argv[3:], "--out", str(tmp_path), "--resume"])
    err = capsys.readouterr().err + str(info.value.code)
    assert "2 epochs done; cannot resume it with --epochs 1 (give --epochs 2 or more)" in err
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["models"][0]["config"]["epochs"] == 2 and len(saved["models"][0]["epochs"]) == 2


@pytest.mark.parametrize("mode", ["population", "sequential"])
def test_resume_of_nothing_is_refused_for_one_model_and_many(tmp_path, mode):
    """A population used to start afresh on an empty folder while a single model
    was refused; both are refused now, before any data is loaded."""
    from gdjax.cli import lenet as lesson

    configs = [train.TrainConfig(epochs=1, seed=s) for s in (0, 1)]
    with pytest.raises(ValueError, match="no checkpoint|nothing to resume"):
        train.train(configs[0], _synthetic(), out=tmp_path, resume=True)
    with pytest.raises(ValueError, match="no checkpoint|nothing to resume"):
        train.train_many(configs, _synthetic(), mode=mode, out=tmp_path, resume=True)
    with pytest.raises(ValueError, match="no checkpoint|nothing to resume"):
        lesson.run(tmp_path, seeds=[0, 1], mode=mode, resume=True, data_dir=str(tmp_path / "no"))
    assert list(tmp_path.iterdir()) == []


def test_a_sequential_resume_with_other_models_is_refused(tmp_path):
    """`gdjax lesson lr-scheduling --resume` with other --policies marked the
    folder complete while mixing two runs (the old cosine model's files kept,
    no cosine row in results.json)."""
    ds = _synthetic()
    configs = [train.TrainConfig(epochs=1, seed=s) for s in (0, 1)]
    train.train_many(
        configs, ds, mode="sequential", out=tmp_path, names=["constant", "cosine"], progress=False
    )
    with pytest.raises(train.CheckpointError, match=r"does not train \(cosine\)"):
        train.train_many(
            configs,
            ds,
            mode="sequential",
            out=tmp_path,
            names=["constant", "square_root"],
            resume=True,
        )
    assert not (tmp_path / "square_root").exists()


def test_resume_in_the_other_mode_is_refused(tmp_path):
    ds = _synthetic()
    configs = [train.TrainConfig(epochs=1, seed=s) for s in (0, 1)]
    train.train_many(configs, ds, mode="sequential", out=tmp_path / "seq", progress=False)
    with pytest.raises(ValueError, match="trained one after another .* --mode sequential"):
        train.train_many(configs, ds, mode="population", out=tmp_path / "seq", resume=True)
    train.train_many(configs, ds, mode="population", out=tmp_path / "pop", progress=False)
    with pytest.raises(ValueError, match="trained together .* --mode population"):
        train.train_many(configs, ds, mode="sequential", out=tmp_path / "pop", resume=True)


def test_resume_refuses_other_settings(tmp_path):
    ds = _synthetic()
    train.train(train.TrainConfig(epochs=1, seed=0), ds, out=tmp_path, progress=False)
    with pytest.raises(train.CheckpointError, match="seed: 0 in the checkpoint, 1 now"):
        train.train(train.TrainConfig(epochs=2, seed=1), ds, out=tmp_path, resume=True)


def test_resume_compares_canonical_specs(tmp_path):
    """The checkpoint holds the schedule's spec: another schedule is refused, the
    same schedule built another way resumes."""
    ds = _synthetic()
    warm = S.warmup(S.cosine(0.3, 4, 0.01), 2)
    train.train(train.TrainConfig(schedule=warm, epochs=1), ds, out=tmp_path, progress=False)
    spec = "cosine:base_lr=0.3,max_steps=6,final_lr=0.01,warmup_steps=2,warmup_begin_lr=0.0"
    saved = json.loads((tmp_path / "metrics.json").read_text())["models"][0]["config"]
    assert saved["schedule"] == spec == train.load_checkpoint(tmp_path)["configs"][0]["schedule"]
    other = train.TrainConfig(schedule=S.cosine(0.3, 6, 0.02, warmup_steps=2), epochs=2)
    with pytest.raises(
        train.CheckpointError, match=r"schedule: .*final_lr=0.01.* in the checkpoint"
    ):
        train.train(other, ds, out=tmp_path, resume=True, progress=False)
    same = train.TrainConfig(schedule=S.parse_spec(spec), epochs=2)
    resumed = train.train(same, ds, out=tmp_path, resume=True, progress=False)
    assert [e["epoch"] for e in resumed.epochs[0]] == [1, 2]


def test_resume_continues_in_process(tmp_path):
    ds = _synthetic(n_train=600)
    full = train.train(train.TrainConfig(epochs=3, log_every=1), ds, progress=False)
    train.train(train.TrainConfig(epochs=1, log_every=1), ds, out=tmp_path, progress=False)
    resumed = train.train(
        train.TrainConfig(epochs=3, log_every=1), ds, out=tmp_path, resume=True, progress=False
    )
    for a, b in zip(full.epochs[0], resumed.epochs[0], strict=True):
        assert {k: v for k, v in a.items() if k != "seconds"} == {
            k: v for k, v in b.items() if k != "seconds"
        }
    assert full.curves == resumed.curves
    jax.tree_util.tree_map(np.testing.assert_array_equal, full.params, resumed.params)


def _cli(out, *extra):
    return [
        sys.executable,
        "-m",
        "gdjax.cli",
        "lenet",
        "--schedule",
        "cosine:max_steps=6",
        "--epochs",
        "6",
        "--subset",
        "3000",
        "--test-subset",
        "500",
        "--no-progress",
        "--out",
        str(out),
        *extra,
    ]


def test_killed_run_resumes_to_the_same_numbers(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    killed = tmp_path / "killed"
    log = tmp_path / "killed.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(_cli(killed), env=env, stdout=sink, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while not (killed / train.CHECKPOINT).exists():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = int(train.load_checkpoint(killed)["epoch"])
    assert 1 <= done < 6, "the run must be killed before its last epoch"

    subprocess.run(_cli(killed, "--resume"), env=env, check=True, capture_output=True)
    whole = tmp_path / "whole"
    subprocess.run(_cli(whole), env=env, check=True, capture_output=True)

    a = json.loads((killed / "metrics.json").read_text())["models"][0]
    b = json.loads((whole / "metrics.json").read_text())["models"][0]
    assert len(a["epochs"]) == len(b["epochs"]) == 6
    for ea, eb in zip(a["epochs"], b["epochs"], strict=True):
        ea.pop("seconds"), eb.pop("seconds")
        assert ea == eb
    assert a["curve"] == b["curve"]
    for name in ("curves.png", "report.html", "metrics.json"):
        assert (killed / name).is_file()


def test_optax_and_gdjax_schedules_train_alike(tmp_path):
    """An optax schedule trains a model like its gdjax twin; populations need gdjax ones."""
    ds = _synthetic(n_train=600)
    twin = S.cosine(0.3, 2, 0.01)
    with_optax = train.train(
        train.TrainConfig(schedule=twin.optax(), epochs=3, per="update"),
        ds,
        out=tmp_path,
        progress=False,
    )
    with_gdjax = train.train(
        train.TrainConfig(schedule=twin, epochs=3, per="update"), ds, progress=False
    )
    # optax's float32 cosine ends at 0.0100000007, gdjax's at 0.0099999998: the
    # weights differ by ~1e-8, which may flip one near-tied prediction on another CPU
    _same_numbers(with_optax.epochs[0], with_gdjax.epochs[0], 1e-5, acc_tol=1.5 / 130)
    config = json.loads((tmp_path / "metrics.json").read_text())["models"][0]["config"]
    assert config["schedule"].startswith("optax:") and config["schedule_resolved"] is None
    with pytest.raises(ValueError, match="a population needs gdjax schedules"):
        train.train([train.TrainConfig(schedule=twin.optax())] * 2, ds)
    with pytest.raises(ValueError, match="schedule must be a gdjax Schedule or an optax"):
        train.TrainConfig(schedule=0.3)


def test_cli_bad_input_is_one_clear_line(tmp_path, capsys):
    from gdjax import cli

    for argv, message in [
        (["lenet", "--schedule", "cosh", "--out", str(tmp_path / "a")], "unknown schedule 'cosh'"),
        (["lenet", "--resume", "--out", str(tmp_path / "new")], "to resume"),
        (
            ["lenet", "--schedule", "cosine:max_steps=x", "--out", str(tmp_path / "b")],
            "must be a number",
        ),
    ]:
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        said = capsys.readouterr().err + str(info.value)  # the one line, on stderr or in the exit
        assert message in said and said.count("gdjax: error:") == 1
    with pytest.raises(SystemExit) as info:
        cli.main(["lenet", "--epochs", "0"])
    assert info.value.code == 2
    assert "--epochs must be >= 1" in capsys.readouterr().err
    for argv in (
        ["lenet", "--seeds", "1", str(2**32)],
        ["lesson", "lr-scheduling", "--seeds", "-1"],
    ):
        with pytest.raises(SystemExit) as info:
            cli.main(argv)
        assert info.value.code == 2
        assert "must be in [0, 2**32)" in capsys.readouterr().err


def _hand_written_sgd_step(lr_fn, batch_size, spe, per):
    """The step as it was before it went through optax: p - lr * g by hand."""

    def step(state, hyper, data, perm, i):
        images, labels, mask = lenet._batch(data, perm, i, batch_size)

        def loss_fn(params):
            logits = lenet.MODEL.apply(params, images)
            ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
            return jnp.sum(ce * mask) / jnp.maximum(jnp.sum(mask), 1.0)

        grads = jax.grad(loss_fn)(state.params)
        t = state.step // spe if per == "epoch" else state.step
        lr = jnp.asarray(lr_fn(hyper.schedule, t), jnp.float32)
        params = jax.tree_util.tree_map(lambda p, g: p - lr * g, state.params, grads)
        return state._replace(params=params, step=state.step + 1)

    return step


def test_sgd_through_optax_gives_the_hand_written_numbers():
    """The chapter's SGD with its schedules, now through optax.sgd, equals the
    hand-written p - lr * g update bit for bit."""
    ds = _synthetic(n_train=600)
    spe = lenet.steps_per_epoch(600, 128)
    dev = (jnp.asarray(ds.train_images), jnp.asarray(ds.train_labels))
    # one program each for both schedules (a schedule is data)
    ours = jax.jit(lenet.make_train_step(S.evaluate, batch_size=128, steps_per_epoch=spe))
    ref = jax.jit(_hand_written_sgd_step(S.evaluate, 128, spe, "epoch"))
    for sched in (S.cosine(0.3, 3, 0.01), S.multi_factor(0.5, [1], 0.5)):
        hyper = lenet.StepHyper(sched.params(jnp.float32))
        a = b = lenet.init_state(3)
        for epoch in range(2):
            perm = lenet.epoch_permutation(a.seed, epoch, 600, 128)
            for i in range(spe):
                a, _ = ours(a, hyper, dev, perm, np.int32(i))
                b = ref(b, hyper, dev, perm, np.int32(i))
        jax.tree_util.tree_map(np.testing.assert_array_equal, a.params, b.params)


def test_population_mixes_schedules_and_momentum_in_one_program():
    ds = _synthetic(n_train=256)
    spe = lenet.steps_per_epoch(256, 128)
    dev = (jnp.asarray(ds.train_images), jnp.asarray(ds.train_labels))
    opt = lenet.Optimizer(optax.sgd)
    scheds = [S.constant(0.1), S.cosine(0.2, 2, 0.01), S.constant(0.1)]
    moms = jnp.asarray([0.0, 0.9, 0.9], jnp.float32)
    settings = {"momentum": moms}
    step = jax.jit(
        jax.vmap(
            lenet.make_train_step(S.evaluate, batch_size=128, steps_per_epoch=spe, optimizer=opt),
            in_axes=(0, 0, None, 0, None),
        )
    )
    seeds = jnp.asarray([0, 0, 0], jnp.uint32)
    state = jax.vmap(lenet.init_state, in_axes=(0, None, 0))(seeds, opt, settings)
    hyper = lenet.StepHyper(S.stack(scheds, dtype=jnp.float32), settings)
    perm = jax.vmap(lenet.epoch_permutation, in_axes=(0, None, None, None))(state.seed, 0, 256, 128)
    for i in range(spe):
        state, _ = step(state, hyper, dev, perm, np.int32(i))

    # each model equals the same model trained alone with optax.sgd(schedule, momentum)
    # (one jitted reference step, its rate and momentum as arguments: one compile)
    @jax.jit
    def reference(params, opt_state, images, labels, mask, lr, mom):
        def loss(p):
            ce = optax.softmax_cross_entropy_with_integer_labels(
                lenet.MODEL.apply(p, images), labels
            )
            return jnp.sum(ce * mask) / jnp.maximum(jnp.sum(mask), 1.0)

        tx = optax.sgd(lr, momentum=mom)
        updates, opt_state = tx.update(jax.grad(loss)(params), opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    for m, (sched, mom) in enumerate(zip(scheds, np.asarray(moms), strict=True)):
        params = lenet.init_state(0).params
        opt_state = optax.sgd(float(sched(0)), momentum=float(mom)).init(params)
        for i in range(spe):
            images, labels, mask = lenet._batch(dev, perm[m], i, 128)
            lr, mu = np.float32(sched(0)), np.float32(mom)
            params, opt_state = reference(params, opt_state, images, labels, mask, lr, mu)
        jax.tree_util.tree_map(
            lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
            jax.tree_util.tree_map(lambda x, m=m: x[m], state.params),
            params,
        )
    # momentum changed the models: model 0 (no momentum) and model 2 differ
    leaf = jax.tree_util.tree_leaves(state.params)[0]
    assert not np.allclose(leaf[0], leaf[2])


def test_new_schedule_numbers_momentum_or_seed_do_not_recompile_the_step():
    from test_engine import count_compiles

    ds = _synthetic(n_train=256)
    spe = lenet.steps_per_epoch(256, 128)
    dev = (jnp.asarray(ds.train_images), jnp.asarray(ds.train_labels))
    opt = lenet.Optimizer(optax.sgd)
    step = jax.jit(
        lenet.make_train_step(S.evaluate, batch_size=128, steps_per_epoch=spe, optimizer=opt)
    )

    def one(seed, sched, momentum):
        settings = {"momentum": jnp.float32(momentum)}
        state = lenet.init_state(seed, opt, settings)
        perm = lenet.epoch_permutation(state.seed, 0, 256, 128)
        hyper = lenet.StepHyper(sched.params(jnp.float32), settings)
        return step(state, hyper, dev, perm, np.int32(0))

    jax.block_until_ready(one(0, S.cosine(0.1, 5, 0.0), 0.9))
    with count_compiles() as n:
        jax.block_until_ready(one(1, S.cosine(0.3, 7, 0.01), 0.5))
        jax.block_until_ready(one(2, S.poly(0.2, 9, 2.0, 0.0), 0.0))
    assert len(n) == 0


def test_cli_lenet_optimizer_and_settings(tmp_path, capsys):
    from gdjax import cli

    argv = ["lenet", "--epochs", "1", "--subset", "300", "--test-subset", "100", "--no-progress"]
    cli.main(
        [
            *argv,
            "--optimizer",
            "adam",
            "--setting",
            "b1=0.8",
            "--schedule",
            "constant:base_lr=0.001",
            "--out",
            str(tmp_path / "adam"),
        ]
    )
    config = json.loads((tmp_path / "adam" / "metrics.json").read_text())["models"][0]["config"]
    assert config["optimizer"] == "adam" and config["settings"] == [["b1", 0.8]]
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:  # refused before any data is read
        cli.main([*argv, "--setting", "b1=0.8", "--out", str(tmp_path / "bad")])
    assert info.value.code == 2
    assert "optimizer 'sgd' has no setting b1" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
