"""Gradient descent with jax.grad, under jit and lax.scan.

``descend`` runs one descent and returns its whole :class:`Trajectory`;
``descend_final`` runs one and keeps only the end (memory independent of the
number of steps); ``sweep`` computes grids of outcomes over rules, starts,
hyperparameters and epoch counts in one vmapped call. All three (and
:func:`gdjax.basins.map_basins`) run on one engine (``gdjax._engine``).

Rules (the ``rule`` argument):

* ``"fixed"``: ``x <- x - lr * grad``.
* ``"time"``: lesson D's time-based decay, ``lr_i = lr (1 - i / steps)``
  (:func:`gdjax.schedules.linear_decay`).
* ``"grad"``: lesson D's gradient-based rate, ``lr_i = lr * |grad_i|`` (the
  global norm): big steps far away on a steep slope, shrinking to zero at the
  bottom. ``lr`` is the scale; too large a scale makes the steps grow.
* a gdjax schedule (:mod:`gdjax.schedules`); ``lr`` must then be left out.
* any other ``count -> lr`` callable (an optax schedule); ``lr`` left out.
* ``gdjax.optimizer(optax.adam, b1=0.9)``: an optax factory that is given
  ``learning_rate=lr`` and its settings inside the program.
* a prebuilt ``optax.GradientTransformation``, with its learning rate built
  in; ``lr`` must then be left out.

Hyperparameters are data, never static arguments: the learning rate, a gdjax
schedule's numbers (and its family), an optimizer(...)'s float settings, the
tolerance and the bound are traced arrays, so a new value does not compile a
new program, and an array of values is a batch run as one vmapped program.
Only the function, the kind of update (plain or which optax factory, and its
flags), the number of steps and the shapes fix a program. The named rules
and gdjax schedules are one kind (a rate table), so they share one program.
A prebuilt transformation or an opaque callable schedule carries its numbers
inside it: each one is its own program.

Divergence (one policy for every entry point and for basin maps): a step
whose result is not finite (parameters, loss or gradient) is not taken; the
run freezes at its last finite point and is diverged. A run that ends with a
parameter magnitude beyond ``bound`` without having converged is diverged
too (lesson A's lr = 1 run keeps going to 1e70 in float64 and is flagged
from the step where it left the bound for good). A converged run is never
diverged. A step that is not taken records a rate of 0. No NaN or inf
reaches a Trajectory: a start that is not finite, or where ``fn`` or its
gradient is not, is refused with a ValueError, and so is a learning rate that
the dtype turns into 0 or inf (lr = 1e-50 in float32). Under ``jit`` or
``vmap`` the start cannot be checked: such a run is flagged ``diverged`` at
step 0 and keeps its start.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PyTree

from gdjax import _engine, _validate
from gdjax import schedules as _schedules
from gdjax._engine import OptaxFactory
from gdjax._format import short_number
from gdjax.surfaces import Surface

__all__ = [
    "Final",
    "RULES",
    "Sweep",
    "Trajectory",
    "descend",
    "descend_final",
    "describe_rule",
    "optimizer",
    "sweep",
]

RULES: tuple[str, ...] = _engine.RULES
"""The named rules."""

DEFAULT_BOUND = 1e10


class Trajectory(NamedTuple):
    """A whole descent. Leading axis: step (``steps + 1`` entries, start first).

    Attributes:
        params: parameters at every step (same PyTree structure as ``x0``).
        loss: loss at every step.
        grads: gradient at every step.
        lr: learning rate used by each of the ``steps`` updates (for optax
            rules: the effective rate ``|update| / |grad|``); 0 for a step
            that was not taken (its result was not finite).
        diverged: whether the run diverged (met a non-finite value, or ends
            beyond ``bound``).
        diverged_step: the step from which it stayed beyond the bound, or at
            which it met a non-finite value; -1 if it did not diverge.

    With a batch of hyperparameters (or a sequence of rules) every field has
    the batch's leading axes.
    """

    params: PyTree[Float[Array, "steps+1 ..."]]
    loss: Float[Array, " steps+1"]
    grads: PyTree[Float[Array, "steps+1 ..."]]
    lr: Float[Array, " steps"]
    diverged: Bool[Array, ""]
    diverged_step: Int[Array, ""]

    @property
    def final(self) -> PyTree:
        """The parameters after the last step."""
        axis = self.loss.ndim - 1  # the step axis, after any batch axes
        return jax.tree.map(lambda p: jnp.take(p, -1, axis=axis), self.params)

    @property
    def grad_norm(self) -> Float[Array, "*batch steps+1"]:
        """Global gradient norm at every step."""
        # works with leading batch axes too (vmapped trajectories)
        lead = self.loss.ndim
        leaves = jax.tree.leaves(self.grads)
        return jnp.sqrt(sum(jnp.sum(g**2, axis=tuple(range(lead, g.ndim))) for g in leaves))


class Final(NamedTuple):
    """The end of a descent, reduced on the fly (see :func:`descend_final`).

    Attributes:
        params: final parameters.
        loss: final loss.
        grad_norm: final global gradient norm.
        diverged: met a non-finite value, or ends beyond ``bound`` without
            having converged.
        diverged_step: as in Trajectory.
        converged: whether the convergence criterion holds at the end (a
            converged run is never diverged).
        converged_step: the step from which the criterion held through the
            end; -1 if not converged.
    """

    params: PyTree
    loss: Float[Array, ""]
    grad_norm: Float[Array, ""]
    diverged: Bool[Array, ""]
    diverged_step: Int[Array, ""]
    converged: Bool[Array, ""]
    converged_step: Int[Array, ""]


# --------------------------------------------------------------------------
# Rules.


def optimizer(factory: Callable[..., optax.GradientTransformation], **kwargs) -> OptaxFactory:
    """Wraps an optax factory as a descent rule whose learning rate is ``lr``.

    Its float settings (``momentum=0.9``, ``b1=0.95``, ...) are data, like
    ``lr``: a new value does not recompile, and an array of values is a batch
    run as one program (:func:`sweep`, :func:`gdjax.basins.map_basins`).
    Flags, integers, strings and None (``nesterov=True``) fix the program.

    Args:
        factory: for instance ``optax.sgd``, ``optax.adam``; it must accept
            ``learning_rate``.
        **kwargs: its other arguments.

    Returns:
        A rule for ``descend``, ``descend_final``, ``sweep`` and ``map_basins``.

    Example:
        >>> rule = optimizer(optax.sgd, momentum=0.9)
        >>> traj = descend(lambda x: x**2, 1.0, steps=10, lr=0.1, rule=rule)
    """
    if not callable(factory):
        raise TypeError(f"optimizer() needs an optax factory such as optax.adam, got {factory!r}")
    if "learning_rate" in kwargs:
        raise ValueError("give the learning rate as lr=..., not as an optimizer() argument")
    return OptaxFactory(factory, tuple(sorted(kwargs.items())))


def _rule_name(rule) -> str:
    if isinstance(rule, str):
        return rule
    if isinstance(rule, OptaxFactory):
        return rule.name
    if isinstance(rule, optax.GradientTransformation):
        return "optax"
    if isinstance(rule, _schedules.Schedule):
        return rule.name
    return getattr(rule, "__name__", "schedule")


def describe_rule(rule, lr=None) -> str:
    """A descent rule (as given to :func:`descend`) in words, for titles and
    reports: ``"fixed lr 0.01"``, ``"optax sgd (momentum 0.9), lr 0.05"``,
    ``"cosine schedule (base_lr 0.05, max_steps 1000, final_lr 0.001)"`` (a
    gdjax schedule in the words of its canonical spec).
    Never a Python repr or a memory address; a batch of values is shown as
    its range."""
    rate = None if lr is None else short_number(lr)

    def with_rate(words: str) -> str:
        return words if rate is None else f"{words}, lr {rate}"

    def args(pairs) -> str:
        text = ", ".join(f"{k} {short_number(v)}" for k, v in pairs)
        return f" ({text})" if text else ""

    if isinstance(rule, str):
        named = {
            "fixed": "fixed lr" + ("" if rate is None else f" {rate}"),
            "time": "time-based lr decay" + ("" if rate is None else f" from {rate}"),
            "grad": "gradient-scaled lr" if rate is None else f"lr = {rate} x |gradient|",
        }
        return named.get(rule, rule)
    if isinstance(rule, OptaxFactory):
        return with_rate(f"optax {rule.name}{args(rule.kwargs)}")
    if isinstance(rule, optax.GradientTransformation):
        return "an optax transformation"
    if isinstance(rule, _schedules.Schedule):  # in its canonical spec's words
        name, _, rest = rule.spec.partition(":")
        pairs = [item.partition("=")[::2] for item in rest.split(",") if item]
        return f"{name} schedule{args(pairs)}"
    return f"schedule {getattr(rule, '__name__', type(rule).__name__)}"


# --------------------------------------------------------------------------
# Input handling.


def _as_params(x0) -> PyTree:
    def conv(x):
        # an explicit dtype drops JAX's weak type, so 1.0 and float32(1.0)
        # share one compiled program
        dtype = jnp.asarray(x).dtype
        if not jnp.issubdtype(dtype, jnp.inexact):
            dtype = jnp.result_type(float)
        return jnp.asarray(x, dtype=dtype)

    return jax.tree.map(conv, x0)


def _resolve_fn(fn, x0):
    if isinstance(fn, Surface):
        shape = jnp.shape(x0) if not isinstance(x0, dict | list | tuple) else None
        if shape != fn.shape:
            raise ValueError(
                f"surface {fn.name!r} takes a point of shape {fn.shape}, got x0 of shape {shape}"
            )
        return fn.fn
    if isinstance(fn, str):
        raise ValueError(f"fn={fn!r} is a string: pass gdjax.surfaces.get({fn!r}) or a callable")
    if not callable(fn):
        raise TypeError(f"fn must be a callable or a gdjax Surface, got {fn!r}")
    return fn


def _check_defined_at_start(loss0, grads0) -> None:
    """A concrete run whose function (or gradient) is not finite at the start
    is refused after the fact: its trajectory would be NaN from step 0."""
    if not _validate.is_concrete((loss0, grads0)):
        return
    if not (np.all(np.isfinite(np.asarray(loss0)))):
        raise ValueError(
            f"fn(x0) is {float(np.ravel(np.asarray(loss0))[0])}: gradient descent needs a start "
            "where the function is finite"
        )
    if not all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree.leaves(grads0)):
        raise ValueError("the gradient of fn at x0 is not finite: choose another start")


def _check_bound(bound) -> float:
    _validate.check_positive("bound", bound)
    return float(bound)


def _resolve(rule, lr, *, steps, dtype, tol=0.0, bound=DEFAULT_BOUND):
    """(Method, Hyper, batch shape) for a rule or a sequence of rules."""
    _engine.check_lr(lr, dtype)
    kw = dict(steps=steps, dtype=dtype, tol=tol, bound=bound)
    if _engine.is_single_rule(rule):
        method, h = _engine.resolve(rule, lr, **kw)
    else:
        method, h = _engine.resolve_many(rule, lr, **kw)
    return method, h, _engine.batch_shape(h)


def _unflatten(tree, shape):
    return jax.tree.map(lambda a: a.reshape(tuple(shape) + a.shape[1:]), tree)


# --------------------------------------------------------------------------
# The compiled programs: one run; batches of hyperparameters are vmapped.


def _rate0(method, h, dtype):
    return _engine.rates(method, h, 0, 1, dtype)[0]


def _trajectory(fn, method, steps, x0, h) -> Trajectory:
    dtype = jax.tree.leaves(x0)[0].dtype
    stepper = _engine.Stepper(fn, method)
    state = stepper.init(h, x0, None, _rate0(method, h, dtype))
    end, (params, loss, grads, lrs) = stepper.scan(h, state, 0, steps, None, True)
    fin = stepper.end(end, steps)

    def stack(first, rest):
        return jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, rest)

    return Trajectory(
        params=stack(x0, params),
        loss=stack(state.loss, loss),
        grads=stack(state.grads, grads),
        lr=lrs,
        diverged=fin.diverged,
        diverged_step=fin.diverged_step,
    )


def _final(fn, method, steps, x0, h, target) -> Final:
    dtype = jax.tree.leaves(x0)[0].dtype
    stepper = _engine.Stepper(fn, method)
    state = stepper.init(h, x0, target, _rate0(method, h, dtype))
    end, _ = stepper.scan(h, state, 0, steps, target, False)
    return Final(*stepper.end(end, steps))


def _finals_at(fn, method, epochs, x0, h, target) -> Final:
    """One run read at every epoch count (leading axis: epoch)."""
    dtype = jax.tree.leaves(x0)[0].dtype
    stepper = _engine.Stepper(fn, method)
    state = stepper.init(h, x0, target, _rate0(method, h, dtype))
    finals, done = [], 0
    for e in epochs:
        if e > done:
            state, _ = stepper.scan(h, state, done, e - done, target, False)
            done = e
        finals.append(Final(*stepper.end(state, e)))
    return jax.tree.map(lambda *xs: jnp.stack(xs), *finals)


_STATIC = ("fn", "method", "steps")
_descend = jax.jit(_trajectory, static_argnames=_STATIC)
_descend_many = jax.jit(
    jax.vmap(_trajectory, in_axes=(None, None, None, None, 0)), static_argnums=(0, 1, 2)
)
_descend_final = jax.jit(_final, static_argnames=_STATIC)
_descend_final_many = jax.jit(
    jax.vmap(_final, in_axes=(None, None, None, None, 0, None)), static_argnums=(0, 1, 2)
)


@functools.partial(jax.jit, static_argnames=("fn", "method", "epochs"))
def _sweep(fn, method, epochs, x0s, h, target):
    """Axes of the result: (rule, start, hyperparameter batch, epoch)."""
    one = functools.partial(_finals_at, fn, method, epochs)
    over_h = jax.vmap(one, in_axes=(None, 0, None))
    over_start = jax.vmap(over_h, in_axes=(0, None, None))
    over_rule = jax.vmap(over_start, in_axes=(None, 0, None))
    return over_rule(x0s, h, target)


def descend(
    fn: Callable[[PyTree], Array] | Surface,
    x0: PyTree | ArrayLike,
    *,
    steps: int,
    lr: ArrayLike | None = None,
    rule: str | Callable | optax.GradientTransformation | OptaxFactory = "fixed",
    bound: float = DEFAULT_BOUND,
) -> Trajectory:
    """Runs gradient descent from ``x0`` and returns the whole trajectory.

    ``x_{i+1} = x_i - lr_i * grad f(x_i)`` with ``grad`` from :func:`jax.grad`,
    under :func:`jax.jit` and :func:`jax.lax.scan`. The compiled program is
    cached on ``fn``, the kind of rule and ``steps`` (and the shapes): new
    values of ``x0``, ``lr``, a schedule's numbers, an optimizer's settings or
    ``bound`` do not recompile. ``descend`` can be vmapped over ``x0`` and
    ``lr``.

    Args:
        fn: a scalar function of a scalar, an array or any PyTree, or a
            :class:`gdjax.surfaces.Surface` (then x0's shape is checked).
        x0: the start (integers are converted to floats).
        steps: number of updates (>= 1).
        lr: learning rate (> 0), or the scale of the ``"grad"`` rule; leave
            it out for schedule and GradientTransformation rules. An array of
            rates is a batch: every field of the result gets its leading axes.
        rule: see the module docstring; or a sequence of rules of one kind
            (named rules and gdjax schedules, or one optimizer(...) factory)
            run side by side in one vmapped call (``lr`` is then one value or
            one per rule).
        bound: a run that ends with a parameter magnitude above this diverged.

    Returns:
        A :class:`Trajectory` with ``steps + 1`` points; with a sequence of
        rules or a batch of hyperparameters every field gets leading axes.

    Raises:
        ValueError: lr <= 0 or NaN, steps <= 0, an unknown rule, x0 of the
            wrong shape for a Surface.

    Example:
        >>> traj = descend(lambda x: 3 * x**2 - 3 * x + 4, 2.0, steps=50, lr=0.1)
        >>> round(float(traj.final), 4)
        0.5
    """
    steps = _validate.check_count("steps", steps)
    bound = _check_bound(bound)
    f = _resolve_fn(fn, x0)
    x0 = _as_params(x0)
    _validate.check_finite_start(x0)
    dtype = jax.tree.leaves(x0)[0].dtype
    method, h, batch = _resolve(rule, lr, steps=steps, dtype=dtype, bound=bound)
    if not batch:
        traj = _descend(f, method, steps, x0, h)
        _check_defined_at_start(traj.loss[0], jax.tree.map(lambda g: g[0], traj.grads))
        return traj
    traj = _unflatten(_descend_many(f, method, steps, x0, _engine.flatten(h, batch)), batch)
    lead = (0,) * len(batch)
    _check_defined_at_start(traj.loss[lead], jax.tree.map(lambda g: g[lead][0], traj.grads))
    return traj


def descend_final(
    fn: Callable[[PyTree], Array] | Surface,
    x0: PyTree | ArrayLike,
    *,
    steps: int,
    lr: ArrayLike | None = None,
    rule: str | Callable | optax.GradientTransformation | OptaxFactory = "fixed",
    tol: ArrayLike = 1e-3,
    target: PyTree | None = None,
    bound: float = DEFAULT_BOUND,
) -> Final:
    """Like :func:`descend`, but keeps only the end: memory does not grow with
    ``steps``.

    Convergence at a step means ``|x - target| < tol`` when ``target`` is
    given, else ``|grad f(x)| < tol``; a converged run is never diverged.

    Args:
        fn, x0, steps, lr, rule, bound: as in :func:`descend` (a batch of
            hyperparameters gives every field leading axes).
        tol: convergence tolerance (> 0; data: a new value does not recompile).
        target: optional point to converge to (same structure as x0).

    Returns:
        A :class:`Final`.
    """
    steps = _validate.check_count("steps", steps)
    _validate.check_positive("tol", tol)
    bound = _check_bound(bound)
    f = _resolve_fn(fn, x0)
    x0 = _as_params(x0)
    _validate.check_finite_start(x0)
    dtype = jax.tree.leaves(x0)[0].dtype
    method, h, batch = _resolve(rule, lr, steps=steps, dtype=dtype, tol=tol, bound=bound)
    tgt = None if target is None else jax.tree.map(lambda t: jnp.asarray(t, dtype), target)
    if not batch:
        fin = _descend_final(f, method, steps, x0, h, tgt)
    else:
        flat = _descend_final_many(f, method, steps, x0, _engine.flatten(h, batch), tgt)
        fin = _unflatten(flat, batch)
    # steps that would leave the finite are not taken, so a non-finite loss
    # here is the start's own
    _check_defined_at_start(fin.loss, ())
    return fin


# --------------------------------------------------------------------------
# Sweeps.


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A grid of descent outcomes.

    Axes of every array: (rule, start, *hyperparameter batch, epoch); ``value``
    has the point's shape after them. The batch is the learning rates' axis
    (``lr`` one value or 1-D: one axis), or the broadcast shape of ``lr`` and
    an optimizer's array settings (``lr[:, None]`` and ``momentum=[...]``:
    an lr x momentum grid).

    Attributes:
        rules: names of the rules on axis 0.
        starts: the starts, shape (S, *point).
        lr: the learning rates (or scales), broadcast to the batch shape.
        settings: an optimizer's float settings, each broadcast to the batch
            shape (empty for the named rules and schedules).
        epochs: the epoch counts on the last axis.
        tol: convergence tolerance.
        target: convergence target, or None (then the gradient norm is used).
        value: parameters after each epoch count.
        loss: loss there.
        grad_norm: gradient norm there.
        converged: criterion holds there and not diverged.
        diverged: diverged, judged at that epoch.
        converged_step: (rule, start, *batch): the step from which the
            criterion held through the last epoch, -1 if never.
    """

    rules: tuple[str, ...]
    starts: Array
    lr: Array
    settings: dict[str, Array]
    epochs: tuple[int, ...]
    tol: float
    target: Array | None
    value: Array
    loss: Array
    grad_norm: Array
    converged: Array
    diverged: Array
    converged_step: Array


def sweep(
    fn: Callable[[Array], Array] | Surface,
    starts: ArrayLike,
    lr: ArrayLike | None,
    *,
    steps: int | None = None,
    epochs: Sequence[int] | None = None,
    rules: Sequence | str | Callable | optax.GradientTransformation | OptaxFactory = "fixed",
    tol: float = 1e-3,
    target: ArrayLike | None = None,
    bound: float = DEFAULT_BOUND,
) -> Sweep:
    """Grids of descent outcomes over rules x starts x hyperparameters x
    epochs, in one compiled, vmapped call.

    Each (rule, start, hyperparameter set) runs once for ``max(epochs)``
    steps; the state is read off at every epoch count on the way, so an
    (lr x epochs) grid costs one run per lr. Memory does not grow with the
    number of steps. Hyperparameters are data: a sweep over 64 rates, or
    over rates x momenta (``lr=lrs[:, None]``, ``rules=optimizer(optax.sgd,
    momentum=jnp.array([0.0, 0.5, 0.9]))``), is one program.

    The time-based rule decays over ``max(epochs)`` steps, whatever epoch the
    grid reads.

    Args:
        fn: function or Surface (points of one array, no PyTrees here).
        starts: one start, or a batch with a leading axis (S, *point).
        lr: one learning rate or an array of them; None for rules that carry
            their own.
        steps: the number of steps, if ``epochs`` is not given.
        epochs: epoch counts to read the state at (>= 1, sorted, unique).
        rules: one rule, or a sequence of rules of one kind (named rules and
            gdjax schedules; or optimizer(...) of one factory) side by side.
        tol, target, bound: as in :func:`descend_final`.

    Returns:
        A :class:`Sweep`.
    """
    if epochs is None:
        if steps is None:
            raise ValueError("sweep needs steps=... or epochs=[...]")
        epochs = (_validate.check_count("steps", steps),)
    else:
        epochs = tuple(_validate.check_count("epochs", e) for e in epochs)
        if not epochs:
            raise ValueError("epochs must not be empty")
        if list(epochs) != sorted(set(epochs)):
            raise ValueError(f"epochs must be increasing with no repeats, got {epochs}")
        if steps is not None and steps != epochs[-1]:
            raise ValueError(f"steps={steps} disagrees with max(epochs)={epochs[-1]}")
    rules = (rules,) if _engine.is_single_rule(rules) else tuple(rules)
    if not rules:
        raise ValueError("rules must not be empty")
    _validate.check_positive("tol", tol)
    bound = _check_bound(bound)

    starts = _as_params(starts)
    if isinstance(fn, Surface):
        if starts.ndim == len(fn.shape):
            starts = starts[None]
        f = _resolve_fn(fn, starts[0])
    else:
        f = _resolve_fn(fn, None)
        if starts.ndim == 0:
            starts = starts[None]
    dtype = starts.dtype
    _engine.check_lr(lr, dtype)
    kw = dict(steps=epochs[-1], dtype=dtype, tol=tol, bound=bound)
    pairs = [_engine.resolve(r, lr, **kw) for r in rules]
    method, h = _engine.side_by_side(rules, pairs)  # h's leading axis: rule
    batch = _engine.batch_shape(h)[1:] or (1,)
    h = _engine.broadcast(h, (len(rules),) + batch)
    n_sets = int(np.prod(batch))
    flat = jax.tree.map(lambda a: a.reshape((len(rules), n_sets) + a.shape[1 + len(batch) :]), h)
    tgt = None if target is None else jnp.asarray(target, dtype)
    fin = _sweep(f, method, epochs, starts, flat, tgt)

    def unflat(a):  # (rule, start, H, ...) -> (rule, start, *batch, ...)
        return a.reshape(a.shape[:2] + batch + a.shape[3:])

    fin = jax.tree.map(unflat, fin)
    lrs = jnp.broadcast_to(jnp.asarray(1.0 if lr is None else lr, dtype), batch)
    return Sweep(
        rules=tuple(_rule_name(r) for r in rules),
        starts=starts,
        lr=lrs,
        settings={k: v[0] for k, v in h.opt.items()},
        epochs=epochs,
        tol=float(tol),
        target=tgt,
        value=fin.params,
        loss=fin.loss,
        grad_norm=fin.grad_norm,
        converged=fin.converged,
        diverged=fin.diverged,
        converged_step=fin.converged_step[..., -1],
    )
