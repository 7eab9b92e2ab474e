"""The pure core: a program fixed by the configs' shapes and kinds, the numbers
as arrays, and one epoch as a function of them. No files, no printing.

:func:`make_program` closes over what fixes the compiled programs (batch size,
steps per epoch, the kind of optimizer and of schedule) and returns the pure
step, evaluation and example order; :func:`init_state` and :func:`make_hyper`
give every number as arrays; :func:`compile_program` compiles it;
:func:`run_epoch` trains one epoch and returns its metrics as arrays."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from gdjax import distributed, lenet
from gdjax import schedules as S
from gdjax.train.config import TrainConfig, as_list
from gdjax.train.results import CurvePoints, empty_table

__all__ = [
    "EpochOutput",
    "Program",
    "compile_program",
    "init_state",
    "make_hyper",
    "make_program",
    "run_epoch",
]


class Program(NamedTuple):
    """The pure functions of a training run (:func:`make_program`), closed over
    what fixes the compiled programs: shapes, batch size, the kind of
    optimizer, the kind of schedule. Every number arrives as an array
    (:func:`init_state`, :func:`make_hyper`), so new values never recompile.

    Attributes:
        step: ``(state, hyper, data, perm, i) -> (state, BatchMetrics)``, one
            update of every model on minibatch ``i`` (vmapped over the model
            axis for a population).
        accuracy: ``(params, images, labels) -> accuracy`` (per model).
        permutation: ``(seeds, epoch) -> perm``, every model's example order.
        steps_per_epoch: minibatches per epoch.
        log_every: minibatches between train points.
        sharpness: ``(params, data) -> Sharpness`` on the fixed batch (per
            model), or None when not tracked.
        epoch: ``(state, hyper, data, perm) -> (state, BatchMetrics)``: a
            whole epoch as one program (``lax.scan`` over the minibatches,
            metrics stacked on a first axis), or None to loop over ``step``
            (``make_program(..., scan_epochs=True)``).
    """

    step: Callable[..., tuple[lenet.TrainState, lenet.BatchMetrics]]
    accuracy: Callable[[Any, Array, Array], Array]
    permutation: Callable[[Array, Any], Array]
    steps_per_epoch: int
    log_every: int
    sharpness: Callable[[Any, Any], Any] | None = None
    epoch: Callable[..., tuple[lenet.TrainState, lenet.BatchMetrics]] | None = None


def _lr_fn(configs: list[TrainConfig], population: bool):
    schedules = [c.schedule for c in configs]
    if all(isinstance(s, S.Schedule) for s in schedules):
        return S.evaluate  # the rate from the schedule's arrays: a population vmaps
    if population:
        raise ValueError(
            "a population needs gdjax schedules (gdjax.schedules objects); "
            "train a model with an optax schedule on its own"
        )
    optax_schedule = schedules[0]

    def lr_fn(hyper, t):
        del hyper
        # optax's schedules mix Python floats and the int32 count: run them under
        # JAX's standard promotion whatever the caller's setting
        with jax.numpy_dtype_promotion("standard"):
            return optax_schedule(t)

    return lr_fn


def make_program(
    configs: TrainConfig | Sequence[TrainConfig], n_train: int, *, scan_epochs: bool = False
) -> Program:
    """The run's pure functions, for ``n_train`` training examples.

    Args:
        configs: one :class:`TrainConfig` (no model axis), or a list for a
            population (a leading model axis; the models share everything but
            schedule, seed and the values of the optimizer settings).
        n_train: training examples (the data's length after ``subset``).
        scan_epochs: also build ``epoch``, a whole epoch as one
            ``lax.scan`` program (one dispatch an epoch: for accelerators,
            where a step's launch costs as much as its work).

    Returns:
        A :class:`Program`, unjitted: see :func:`compile_program`.
    """
    configs, population = as_list(configs)
    cfg = configs[0]
    spe = lenet.steps_per_epoch(n_train, cfg.batch_size)
    step = lenet.make_train_step(
        _lr_fn(configs, population),
        batch_size=cfg.batch_size,
        steps_per_epoch=spe,
        per=cfg.per,
        optimizer=cfg.build_optimizer(),
    )
    accuracy = lenet.make_eval()
    permutation = functools.partial(lenet.epoch_permutation, n=n_train, batch_size=cfg.batch_size)
    sharp = lenet.make_sharpness(cfg.sharpness, cfg.sharpness_iters) if cfg.sharpness else None
    if population:
        step = jax.vmap(step, in_axes=(0, 0, None, 0, None))  # hyper: schedules and settings
        accuracy = jax.vmap(accuracy, in_axes=(0, None, None))
        permutation = jax.vmap(permutation, in_axes=(0, None))
        sharp = jax.vmap(sharp, in_axes=(0, None)) if sharp is not None else None
    epoch = _scan_epoch(step, spe) if scan_epochs else None
    return Program(step, accuracy, permutation, spe, cfg.log_every, sharp, epoch)


def _scan_epoch(step, spe: int):
    def epoch(state, hyper, data, perm):
        def body(state, i):
            return step(state, hyper, data, perm, i)

        return jax.lax.scan(body, state, jnp.arange(spe, dtype=jnp.int32))

    return epoch


def make_hyper(configs: TrainConfig | Sequence[TrainConfig]) -> lenet.StepHyper:
    """Every number of the update as arrays: the schedule's (``()`` for an
    optax callable, whose numbers are fixed in it) and the optimizer's
    settings, float32; stacked on a model axis for a list of configs."""
    configs, population = as_list(configs)
    if population:
        settings = {
            k: jnp.asarray([dict(c.settings)[k] for c in configs], jnp.float32)
            for k, _ in configs[0].settings
        }
        _lr_fn(configs, population)  # gdjax schedules only
        return lenet.StepHyper(S.stack([c.schedule for c in configs], jnp.float32), settings)
    cfg = configs[0]
    settings = {k: jnp.asarray(v, jnp.float32) for k, v in cfg.settings}
    schedule = cfg.schedule.params(jnp.float32) if isinstance(cfg.schedule, S.Schedule) else ()
    return lenet.StepHyper(schedule, settings)


def init_state(configs: TrainConfig | Sequence[TrainConfig]) -> lenet.TrainState:
    """Every model's fresh state (parameters and optimizer state from its seed
    and settings); stacked on a model axis for a list of configs."""
    config_list, population = as_list(configs)
    opt = config_list[0].build_optimizer()
    settings = make_hyper(configs).settings
    if population:
        seeds = jnp.asarray([c.seed for c in config_list], jnp.uint32)
        return jax.vmap(lenet.init_state, in_axes=(0, None, 0))(seeds, opt, settings)
    return lenet.init_state(config_list[0].seed, opt, settings)


def compile_program(
    program: Program, state: lenet.TrainState, hyper: lenet.StepHyper, data, test
) -> Program:
    """``program`` with its functions compiled for these arrays' shapes and
    placements (the step donates the state it is given)."""
    perm = jax.jit(program.permutation)
    epoch, step = program.epoch, program.step
    if epoch is not None:  # the epoch is one program: no step program is needed
        epoch = jax.jit(epoch, donate_argnums=0)
        epoch = epoch.lower(state, hyper, data, perm(state.seed, 0)).compile()
    else:
        step = jax.jit(step, donate_argnums=0)
        step = step.lower(state, hyper, data, perm(state.seed, 0), np.int32(0)).compile()
    accuracy = jax.jit(program.accuracy).lower(state.params, *test).compile()
    sharp = program.sharpness
    if sharp is not None:
        sharp = jax.jit(sharp).lower(state.params, data).compile()
    return program._replace(
        step=step, accuracy=accuracy, permutation=perm, sharpness=sharp, epoch=epoch
    )


class EpochOutput(NamedTuple):
    """One epoch of every model (arrays of shape (models,); (models, points)
    for the train points)."""

    train_loss: np.ndarray
    train_acc: np.ndarray
    test_acc: np.ndarray
    lr: np.ndarray
    points: CurvePoints
    sharpness: np.ndarray


def run_epoch(
    program: Program,
    state: lenet.TrainState,
    hyper: lenet.StepHyper,
    data,
    test,
    epoch: int,
    *,
    on_progress: Callable[[int, np.ndarray, np.ndarray], None] | None = None,
) -> tuple[lenet.TrainState, EpochOutput]:
    """Trains epoch ``epoch`` (0-based) of every model: the example order from
    the seed, one update per minibatch, then the test accuracy (and the
    sharpness on the fixed batch, when the program tracks it).

    A Python loop over the (compiled) step, the metrics read back every
    ``log_every`` minibatches only (no device sync in between); or, when the
    program has ``epoch``, one ``lax.scan`` program over the minibatches,
    its stacked metrics read back once. Both give the same numbers.

    Args:
        program: the run's functions, compiled (:func:`compile_program`).
        state, hyper: every model's state and numbers.
        data, test: (images, labels) of the training and the test set.
        epoch: which epoch (its example order, and where its points lie).
        on_progress: called at every read-back with the minibatches done
            since the last one and the train loss and accuracy so far (per
            model): a progress bar.

    Returns:
        The new state and the epoch's :class:`EpochOutput`.
    """
    spe, log_every = program.steps_per_epoch, program.log_every
    perm = program.permutation(state.seed, epoch)
    totals = None  # loss sum, correct, count: per model, epoch so far (float64)
    first_lr, loss, acc = None, None, None
    points = []

    def read(got: list, done: int) -> None:  # the minibatches up to ``done``
        nonlocal totals, first_lr, loss, acc
        if first_lr is None:
            first_lr = np.atleast_1d(got[0].lr)
        sums = np.sum([np.reshape(m[:3], (3, -1)) for m in got], axis=0)
        totals = sums.astype(np.float64) if totals is None else totals + sums
        loss, acc = totals[0] / totals[2], totals[1] / totals[2]
        if done % log_every == 0:
            points.append((np.full_like(loss, epoch + done / spe), loss, acc))
        if on_progress is not None:
            on_progress(len(got), loss, acc)

    if program.epoch is not None:  # one program, then the points from its stacked metrics
        state, stacked = program.epoch(state, hyper, data, perm)
        stacked = distributed.fetch(stacked)
        for begin in range(0, spe, log_every):
            done = min(begin + log_every, spe)
            read([lenet.BatchMetrics(*(a[i] for a in stacked)) for i in range(begin, done)], done)
    else:
        pending: list[lenet.BatchMetrics] = []
        for i in range(spe):
            state, metrics = program.step(state, hyper, data, perm, np.int32(i))
            pending.append(metrics)
            if (i + 1) % log_every and i + 1 < spe:
                continue  # read metrics back only every log_every steps: no sync
            read(distributed.fetch(pending), i + 1)
            pending = []
    test_acc = np.atleast_1d(distributed.fetch(program.accuracy(state.params, *test)))
    sharp = np.full(test_acc.shape, np.nan)
    if program.sharpness is not None:
        sharp = np.atleast_1d(distributed.fetch(program.sharpness(state.params, data).value))
    if points:
        curve = CurvePoints(*(np.stack(column, axis=1) for column in zip(*points, strict=True)))
    else:
        curve = empty_table(CurvePoints, len(test_acc))
    return state, EpochOutput(
        loss, acc, test_acc.astype(np.float64), first_lr, curve, sharp.astype(np.float64)
    )
