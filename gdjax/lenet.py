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
  held on the device, does one SGD update at the learning rate
  ``lr_fn(hyper, t)`` (``t`` the update or the epoch, by ``per``) and returns
  the new state and the minibatch's metric sums;
* :func:`epoch_permutation` gives an epoch's example order from the seed, so
  a run resumed at epoch e sees exactly the batches it would have seen;
* :func:`make_eval` returns a jitted accuracy over a padded, batched set.

``hyper`` is any PyTree the learning-rate function reads: a
:class:`gdjax.schedules.ScheduleParams` for gdjax schedules (so models with
different schedules vmap together), or ``()`` for a closed-over optax
schedule. The training loop, checkpoints and metrics live in
:mod:`gdjax.train`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int

__all__ = [
    "BatchMetrics",
    "LeNet",
    "TrainState",
    "epoch_permutation",
    "init_state",
    "make_eval",
    "make_train_step",
    "param_count",
    "steps_per_epoch",
]

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10


def _max_pool_2x2(x: Array) -> Array:
    # A reshape + max: its backward is a select, where reduce_window's is a
    # scatter (measured 73 vs 90 ms per step on a 2-core CPU).
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class LeNet(nn.Module):
    """The chapter's LeNet: images (B, 28, 28) in [0, 1] -> logits (B, 10)."""

    @nn.compact
    def __call__(self, images: Float[Array, "b 28 28"]) -> Float[Array, "b 10"]:
        xavier = nn.initializers.xavier_uniform()
        x = images[..., None]
        x = nn.Conv(6, (5, 5), padding=2, kernel_init=xavier, name="conv1")(x)
        x = _max_pool_2x2(nn.relu(x))
        x = nn.Conv(16, (5, 5), padding="VALID", kernel_init=xavier, name="conv2")(x)
        x = _max_pool_2x2(nn.relu(x))
        x = x.reshape(x.shape[0], -1)
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
        step: updates done so far.
        seed: the run's seed; the initialisation and every epoch's example
            order derive from it.
    """

    params: Any
    step: Int[Array, ""]
    seed: Int[Array, ""]


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


def init_state(seed: int | Int[Array, ""]) -> TrainState:
    """A fresh state: Xavier-uniform weights, zero biases, from ``seed``.

    Works on a traced seed, so ``jax.vmap(init_state)(seeds)`` starts a
    population.
    """
    seed = jnp.asarray(seed, jnp.int32)
    init_key, _ = _keys(seed)
    params = MODEL.init(init_key, jnp.zeros((1, *IMAGE_SHAPE), jnp.float32))
    return TrainState(params=params, step=jnp.zeros((), jnp.int32), seed=seed)


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
) -> Callable[..., tuple[TrainState, BatchMetrics]]:
    """Builds one SGD update on minibatch ``i`` of an epoch.

    Args:
        lr_fn: ``(hyper, t) -> lr``; ``t`` is the epoch (0-based) when ``per``
            is ``"epoch"``, the update count when it is ``"update"``.
        batch_size: examples per minibatch.
        steps_per_epoch: minibatches per epoch (to turn updates into epochs).
        per: ``"epoch"`` (the PyTorch edition's convention) or ``"update"``
            (MXNet's and optax's).

    Returns:
        ``step(state, hyper, data, perm, i) -> (state, BatchMetrics)``, pure
        and unjitted: jit it, or vmap it over a population first.
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
        lr = jnp.asarray(lr_fn(hyper, t), jnp.float32)
        params = jax.tree_util.tree_map(lambda p, g: p - lr * g, state.params, grads)
        new = TrainState(params=params, step=state.step + 1, seed=state.seed)
        return new, BatchMetrics(loss_sum, correct, count, lr)

    return step


def make_eval(batch_size: int = 1000) -> Callable[[Any, Array, Array], Array]:
    """Returns a jitted ``accuracy(params, images_uint8, labels)``, computed in
    padded batches of ``batch_size`` inside one program (a ``lax.map``)."""

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
