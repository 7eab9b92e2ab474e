"""The textbook's LeNet in Flax, and its jitted, vmappable training step.

The model is the chapter's modernised LeNet (ReLU, max pooling, Xavier
initialisation, 61,706 parameters)::

    Conv(6, 5x5, padding 2) - ReLU - MaxPool(2)    28x28x1 -> 14x14x6
    Conv(16, 5x5)           - ReLU - MaxPool(2)    14x14x6 -> 5x5x16
    Dense(120) - ReLU - Dense(84) - ReLU - Dense(10)

Everything here is a pure function of arrays:

* :func:`init_state` builds a :class:`TrainState` from an integer seed (a
  traced one too, so a population of seeds is one ``vmap``);
* :func:`make_train_step` returns ``step(state, hyper, data, perm, i)`` that
  takes the i-th minibatch of an epoch's permutation from the training set
  held on the device, does one update through an optax optimizer (the
  chapter's plain SGD by default; momentum, Adam, ...) at the learning rate
  ``lr_fn(hyper.schedule, t)`` (``t`` the update or the epoch, by ``per``)
  and returns the new state and the minibatch's metric sums;
* :func:`epoch_permutation` gives an epoch's example order from the seed, so
  a run resumed at epoch e sees exactly the batches it would have seen;
* :func:`make_eval` returns a jitted accuracy over a padded, batched set;
* :func:`make_sharpness` returns the top Hessian eigenvalue of the training
  loss on a fixed batch (:mod:`gdjax.sharpness`).

``hyper`` is a :class:`StepHyper`: the PyTree the learning-rate function
reads (a :class:`gdjax.schedules.ScheduleParams` for gdjax schedules, or
``()`` for a closed-over optax schedule) and the optimizer's float settings.
Every number is an array, so models that differ in schedule and in
optimizer settings vmap together, and a new value does not recompile. The
training loop, checkpoints and metrics live in :mod:`gdjax.train`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int

from gdjax import _compile, _engine, sharpness

__all__ = [
    "SGD",
    "BatchMetrics",
    "ConvPoolReLU",
    "LeNet",
    "Optimizer",
    "StepHyper",
    "TrainState",
    "epoch_permutation",
    "init_state",
    "make_eval",
    "make_sharpness",
    "make_train_step",
    "param_count",
    "steps_per_epoch",
]

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10


# --------------------------------------------------------------------------
# Convolution + 2x2 max pooling as one matmul against a banded weight matrix.
#
# XLA's CPU convolutions are slow for these tiny channel counts (a lax.conv
# LeNet step took 2.4x PyTorch's time here), so each conv layer is written as
# a dense 2-D matmul. Output columns are cut into groups of GROUP columns; by
# shift invariance every group uses the same small banded ("row-Toeplitz")
# matrix of shape (5 (GROUP+4) C, GROUP Co), built from the HWIO kernel by an
# einsum with a constant 0/1 shift tensor, so the kernel's gradient is an
# einsum too (no scatter). All groups, batch rows and both output-row
# parities stack into the matmul's rows; the banded matrix's columns are
# ordered (column parity, column // 2, channel), so 2x2 max pooling is two
# elementwise maxima of contiguous halves. Bias and ReLU come after the pool
# (max commutes with adding a per-channel constant and with ReLU), on 4x
# fewer elements. Activations stay in a (B, H, W*C) row layout. On a 2-core
# CPU a whole epoch took 5.0-5.4 s against PyTorch eager's 6.1-6.6 s
# (benchmarks/lenet_epoch.py; docs/lenet.md has the per-step exploration).
# tests/test_lenet.py checks the forward pass against NumPy and the gradients
# against the lax.conv form (conv="lax").

GROUP = 4


def _shift_tensor(w_in: int, w_out: int) -> np.ndarray:
    s = np.zeros((5, w_in, w_out), np.float32)  # s[dx, w, j] = [w == j + dx]
    for dx in range(5):
        s[dx, np.arange(w_out) + dx, np.arange(w_out)] = 1.0
    return s


def _banded(kernel: Array, group: int) -> Array:
    """HWIO (5, 5, C, Co) -> (5 (group+4) C, group Co); rows (dy, w, c), cols (j%2, j//2, co)."""
    shift = jnp.asarray(_shift_tensor(group + 4, group), kernel.dtype)
    t = jnp.einsum("xwj,yxio->ywijo", shift, kernel)  # (5, group+4, C, group, Co)
    ky, w, c, j, co = t.shape
    t = t.reshape(ky, w, c, j // 2, 2, co).transpose(0, 1, 2, 4, 3, 5)
    return t.reshape(ky * w * c, j * co)


def _groups(w_out: int, group: int) -> tuple[int, int, int]:
    """(groups, column blocks each group reads, padded input width)."""
    g = -(-w_out // group)
    blocks = -(-(group + 4) // group)
    return g, blocks, group * (g + blocks - 1)


def _patches(xp: Array, h_out: int, group: int, c: int) -> Array:
    """Padded rows (B, h_out+4, W*c) -> (2 B h2 G, 5 (group+4) c): rows (row parity,
    b, output row pair, group), columns (dy, w, c)."""
    b = xp.shape[0]
    h2 = h_out // 2
    g, blocks, wq = _groups(h_out, group)
    xr = xp.reshape(b, h2 + 2, 2, wq * c)
    rows6 = jnp.concatenate([xr[:, 0:h2], xr[:, 1 : h2 + 1], xr[:, 2 : h2 + 2]], 2)
    xc = rows6.reshape(b, h2, 6, wq // group, group * c)
    xg = jnp.concatenate([xc[..., i : i + g, :] for i in range(blocks)], -1)
    xg = xg[..., : (group + 4) * c]  # (b, h2, 6, g, (group+4) c)
    lhs = jnp.stack([xg[:, :, p : p + 5] for p in range(2)], 0).transpose(0, 1, 2, 4, 3, 5)
    return lhs.reshape(2 * b * h2 * g, 5 * (group + 4) * c)


def _conv_pool_relu(xp: Array, kernel: Array, bias: Array, h_out: int, group: int) -> Array:
    """'Valid' 5x5 conv of padded square rows, 2x2 max pool, + bias, ReLU -> (B, h2, h2 Co)."""
    b, c, co = xp.shape[0], kernel.shape[2], kernel.shape[3]
    g, _, _ = _groups(h_out, group)
    h2, n = h_out // 2, group * co
    y = (_patches(xp, h_out, group, c) @ _banded(kernel, group)).reshape(2, b, h2, g, n)
    y = jnp.maximum(y[0], y[1])  # pool over row pairs
    y = jnp.maximum(y[..., : n // 2], y[..., n // 2 :])  # pool over column pairs
    y = y.reshape(b, h2, g * n // 2)[..., : h2 * co]  # drop the padding columns
    return nn.relu(y + jnp.tile(bias, h2)[None, None, :])


class ConvPoolReLU(nn.Module):
    """5x5 convolution (HWIO kernel, as ``nn.Conv``), then 2x2 max pool, then ReLU,
    on square maps in the (B, H, W*C) row layout, computed as one banded matmul.

    Attributes:
        features: output channels.
        padding: zero padding on each side (2 keeps the size, 0 is 'valid').
    """

    features: int
    padding: int = 0

    @nn.compact
    def __call__(self, x: Float[Array, "b h wc"]) -> Float[Array, "b h2 w2c"]:
        b, h, wc = x.shape
        c = wc // h
        kernel = self.param(
            "kernel", nn.initializers.xavier_uniform(), (5, 5, c, self.features), jnp.float32
        )
        bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        h_out = h + 2 * self.padding - 4
        _, _, wq = _groups(h_out, GROUP)
        pad_right = wq - (h + self.padding)  # columns after the image (>= the padding)
        x = x.reshape(b, h, h, c)
        x = jnp.pad(x, ((0, 0), (self.padding,) * 2, (self.padding, pad_right), (0, 0)))
        return _conv_pool_relu(x.reshape(b, h_out + 4, wq * c), kernel, bias, h_out, GROUP)


def _max_pool_2x2(x: Array) -> Array:
    # A reshape + max: its backward is a select, where reduce_window's is a scatter.
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class LeNet(nn.Module):
    """The chapter's LeNet: images (B, 28, 28) in [0, 1] -> logits (B, 10).

    Attributes:
        conv: ``"banded"`` (convolutions as banded matmuls: fastest on CPU) or
            ``"lax"`` (``nn.Conv``, i.e. ``lax.conv_general_dilated``, and a
            reshape max pool). Both have the same parameters and compute the
            same function.
        precision: matmul and convolution precision (``jax.default_matmul_precision``);
            "highest" keeps float32 on GPUs and TPUs, whose default (TF32 or
            bfloat16 passes) changes the numbers, so a run gives the same
            results everywhere up to rounding. None: the platform's default.
    """

    conv: str = "banded"
    precision: str | None = "highest"

    def __call__(self, images: Float[Array, "b 28 28"]) -> Float[Array, "b 10"]:
        if self.precision is None:
            return self._forward(images)
        with jax.default_matmul_precision(self.precision):
            return self._forward(images)

    @nn.compact
    def _forward(self, images: Array) -> Array:
        xavier = nn.initializers.xavier_uniform()
        b = images.shape[0]
        if self.conv == "banded":
            x = ConvPoolReLU(6, padding=2, name="conv1")(images)  # (b, 14, 14*6)
            x = ConvPoolReLU(16, padding=0, name="conv2")(x)  # (b, 5, 5*16)
        elif self.conv == "lax":
            x = nn.Conv(6, (5, 5), padding=2, kernel_init=xavier, name="conv1")(images[..., None])
            x = _max_pool_2x2(nn.relu(x))
            x = nn.Conv(16, (5, 5), padding="VALID", kernel_init=xavier, name="conv2")(x)
            x = _max_pool_2x2(nn.relu(x))
        else:
            raise ValueError(f"conv must be 'banded' or 'lax', got {self.conv!r}")
        x = x.reshape(b, -1)  # (h, w, c) order in both
        x = nn.relu(nn.Dense(120, kernel_init=xavier, name="fc1")(x))
        x = nn.relu(nn.Dense(84, kernel_init=xavier, name="fc2")(x))
        return nn.Dense(NUM_CLASSES, kernel_init=xavier, name="fc3")(x)


MODEL = LeNet()


def param_count(params: Any) -> int:
    """The number of scalars in a parameter PyTree."""
    return sum(int(x.size) for x in jax.tree_util.tree_leaves(params))


class TrainState(NamedTuple):
    """One model's training state.

    Attributes:
        params: the Flax parameters.
        opt_state: the optax optimizer's state (empty for plain SGD).
        step: updates done so far.
        seed: the run's seed (uint32); the initialisation and every epoch's
            example order derive from it.
    """

    params: Any
    opt_state: Any
    step: Int[Array, ""]
    seed: Int[Array, ""]


Optimizer = _engine.Method
"""The kind of update, static: ``Optimizer(factory, flags)``, an optax factory
(``optax.sgd``, ``optax.adam``, ...) called with ``learning_rate`` and the
float settings of :class:`StepHyper`, plus its flags (``(("nesterov", True),)``),
which fix the program. It is the descent engine's ``Method``: the LeNet step
updates through the same code as :func:`gdjax.descend`'s optax rules."""

SGD = Optimizer(optax.sgd)
"""The chapter's plain SGD, ``p <- p - lr * grad``, through ``optax.sgd``."""


class StepHyper(NamedTuple):
    """The numbers of one model's update, as arrays (traced: a new value does
    not recompile, and a population vmaps over them).

    Attributes:
        schedule: what ``lr_fn`` reads (a gdjax schedule's ScheduleParams, or
            ``()`` for a closed-over optax schedule).
        settings: the optimizer's float settings by name (``momentum``,
            ``b1``, ...); empty for plain SGD.
    """

    schedule: Any = ()
    settings: dict[str, Array] = {}


class BatchMetrics(NamedTuple):
    """Sums over one minibatch (padding excluded), so epochs average exactly."""

    loss_sum: Float[Array, ""]
    correct: Float[Array, ""]
    count: Float[Array, ""]
    lr: Float[Array, ""]


def _keys(seed) -> tuple[Array, Array]:
    key = jax.random.key(seed)
    init_key, data_key = jax.random.split(key)
    return init_key, data_key


def init_state(
    seed: int | Int[Array, ""],
    optimizer: Optimizer = SGD,
    settings: dict[str, Any] | None = None,
) -> TrainState:
    """A fresh state: Xavier-uniform weights, zero biases, from ``seed`` (an
    integer in [0, 2**32); the state keeps it as uint32), and the optimizer's
    initial state for these ``settings`` (float arrays, by name).

    Jitted, and works on a traced seed and settings, so
    ``jax.vmap(init_state, in_axes=(0, None, 0))(seeds, opt, settings)`` starts
    a population.
    """
    # uint32 before jit: a Python int of 2**31 or more does not fit jit's int32
    settings = {k: jnp.asarray(v, jnp.float32) for k, v in (settings or {}).items()}
    return _init_state(jnp.asarray(seed, jnp.uint32), optimizer, settings)


@_compile.jit_once(static_argnums=1)  # runs once per run: exact at any LLVM level (below)
def _init_state(seed: Int[Array, ""], optimizer: Optimizer, settings) -> TrainState:
    # Xavier-uniform weights are u * 2 - 1 (exact, FMA or not) times one scale, the
    # biases and the optimizer's state constants: the same bits at LLVM level 0
    init_key, _ = _keys(seed)
    params = MODEL.init(init_key, jnp.zeros((1, *IMAGE_SHAPE), jnp.float32))
    opt_state = _engine.optax_init(optimizer, settings, params, jnp.float32(0.0))
    return TrainState(params=params, opt_state=opt_state, step=jnp.zeros((), jnp.int32), seed=seed)


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Minibatches per epoch; the last one is partial (masked) when n % batch_size."""
    return -(-n // batch_size)


def epoch_permutation(seed, epoch, n: int, batch_size: int) -> Int[Array, " padded"]:
    """The example order of ``epoch`` (0-based), padded with -1 to whole batches."""
    _, data_key = _keys(seed)
    perm = jax.random.permutation(jax.random.fold_in(data_key, epoch), n).astype(jnp.int32)
    pad = steps_per_epoch(n, batch_size) * batch_size - n
    return jnp.concatenate([perm, jnp.full((pad,), -1, jnp.int32)])


def _images(x_uint8: Array) -> Array:
    return x_uint8.astype(jnp.float32) * (1.0 / 255.0)


def _batch(data: tuple[Array, Array], perm: Array, i, batch_size: int):
    images, labels = data
    idx = jax.lax.dynamic_slice_in_dim(perm, i * batch_size, batch_size)
    mask = (idx >= 0).astype(jnp.float32)
    idx = jnp.maximum(idx, 0)
    return _images(images[idx]), labels[idx].astype(jnp.int32), mask


def make_train_step(
    lr_fn: Callable[[Any, Array], Array],
    *,
    batch_size: int,
    steps_per_epoch: int,
    per: str = "epoch",
    optimizer: Optimizer = SGD,
) -> Callable[..., tuple[TrainState, BatchMetrics]]:
    """Builds one update on minibatch ``i`` of an epoch, through optax.

    Args:
        lr_fn: ``(schedule, t) -> lr``, reading ``hyper.schedule``; ``t`` is
            the epoch (0-based) when ``per`` is ``"epoch"``, the update count
            when it is ``"update"``.
        batch_size: examples per minibatch.
        steps_per_epoch: minibatches per epoch (to turn updates into epochs).
        per: ``"epoch"`` (the PyTorch edition's convention) or ``"update"``
            (MXNet's and optax's).
        optimizer: the kind of update (default: the chapter's plain SGD); the
            transformation is built inside the step from the rate of the step
            and ``hyper.settings``, so every number is data.

    Returns:
        ``step(state, hyper, data, perm, i) -> (state, BatchMetrics)`` with
        ``hyper`` a :class:`StepHyper`; pure and unjitted: jit it, or vmap it
        over a population (of schedules and settings) first.
    """
    if per not in ("epoch", "update"):
        raise ValueError(f"per must be 'epoch' or 'update', got {per!r}")

    def loss_fn(params, images, labels, mask):
        logits = MODEL.apply(params, images)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        count = jnp.sum(mask)
        loss_sum = jnp.sum(ce * mask)
        correct = jnp.sum((jnp.argmax(logits, -1) == labels).astype(jnp.float32) * mask)
        return loss_sum / jnp.maximum(count, 1.0), (loss_sum, correct, count)

    def step(state: TrainState, hyper, data, perm, i):
        images, labels, mask = _batch(data, perm, i, batch_size)
        grads, (loss_sum, correct, count) = jax.grad(loss_fn, has_aux=True)(
            state.params, images, labels, mask
        )
        t = state.step // steps_per_epoch if per == "epoch" else state.step
        lr = jnp.asarray(lr_fn(hyper.schedule, t), jnp.float32)
        params, opt_state, _ = _engine.optax_step(
            optimizer, hyper.settings, state.params, grads, state.opt_state, lr
        )
        new = TrainState(params=params, opt_state=opt_state, step=state.step + 1, seed=state.seed)
        return new, BatchMetrics(loss_sum, correct, count, lr)

    return step


def make_eval(batch_size: int = 250) -> Callable[[Any, Array, Array], Array]:
    """Returns a jitted ``accuracy(params, images_uint8, labels)``, computed in
    padded batches of ``batch_size`` inside one program (a ``lax.map``; the
    default's timing: docs/lenet.md)."""

    @jax.jit
    def accuracy(params, images, labels):
        n = images.shape[0]
        nb = -(-n // batch_size)
        pad = nb * batch_size - n
        x = jnp.pad(images, ((0, pad), (0, 0), (0, 0))).reshape(nb, batch_size, *IMAGE_SHAPE)
        y = jnp.pad(labels.astype(jnp.int32), (0, pad), constant_values=-1)
        y = y.reshape(nb, batch_size)

        def one(xy):
            xb, yb = xy
            pred = jnp.argmax(MODEL.apply(params, _images(xb)), -1)
            return jnp.sum((pred == yb).astype(jnp.float32))

        return jnp.sum(jax.lax.map(one, (x, y))) / n

    return accuracy


def make_sharpness(
    examples: int, iters: int = 20
) -> Callable[[Any, tuple[Array, Array]], sharpness.Sharpness]:
    """Returns ``sharp(params, data) -> Sharpness``: the top eigenvalue of the
    Hessian of the mean cross-entropy on the fixed batch of the first
    ``examples`` training images of ``data`` (images, labels), by ``iters``
    Lanczos steps (:func:`gdjax.sharpness.top_eigenvalue`). Pure and
    unjitted; vmap it over a population's parameters."""

    def sharp(params, data):
        images, labels = data
        x = _images(images[:examples])
        y = labels[:examples].astype(jnp.int32)

        def loss(p):
            logits = MODEL.apply(p, x)
            return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))

        return sharpness.top_eigenvalue(loss, params, iters=iters)

    return sharp
