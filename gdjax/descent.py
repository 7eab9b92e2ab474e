"""The descent engine: gradient descent with jax.grad, under jit and lax.scan.

``descend`` runs one descent and returns its whole :class:`Trajectory`;
``descend_final`` runs one and keeps only the end (memory independent of the
number of steps); ``sweep`` computes grids of outcomes over rules, starts,
learning rates and epoch counts in one vmapped call.

Rules (the ``rule`` argument):

* ``"fixed"``: ``x <- x - lr * grad``.
* ``"time"``: lesson D's time-based decay, ``lr_i = lr (1 - i / steps)``
  (:func:`gdjax.schedules.linear_decay`).
* ``"grad"``: lesson D's gradient-based rate, ``lr_i = lr * |grad_i|`` (the
  global norm): big steps far away on a steep slope, shrinking to zero at the
  bottom. ``lr`` is the scale; too large a scale makes the steps grow.
* a schedule ``count -> lr`` (for instance from :mod:`gdjax.schedules` or
  optax); ``lr`` must then be left out.
* an ``optax.GradientTransformation`` (momentum, Adam, ...), with its
  learning rate built in; ``lr`` must then be left out.
* ``gdjax.optimizer(optax.adam, b1=0.9)``: an optax factory that is given
  ``learning_rate=lr``, so ``lr`` can be swept and vmapped.

The three named rules share one compiled program (the rule is an integer
switch), so ``sweep`` can put them side by side on one axis.

Divergence: a step whose result is not finite (parameters, loss or gradient)
is not taken; the run freezes at its last finite point and is flagged. A run
whose largest parameter magnitude exceeds ``bound`` is flagged too, but keeps
going (so that lesson A's lr = 1 run reaches 1e70 in float64). A step that
is not taken records a rate of 0. No NaN or inf reaches a Trajectory: a
start that is not finite, or where ``fn`` or its gradient is not, is refused
with a ValueError, and so is a learning rate that the dtype turns into 0 or
inf (lr = 1e-50 in float32). Under ``jit`` or ``vmap`` the start cannot be
checked: such a run is flagged ``diverged`` at step 0 and keeps its start.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PyTree

from gdjax import schedules as _schedules
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

RULES: tuple[str, ...] = ("fixed", "time", "grad")
"""The named rules, in the order of their integer codes."""

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
        diverged: whether the run diverged (non-finite, or beyond ``bound``).
        diverged_step: the first step at which it did, -1 if it did not.
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
        return jax.tree.map(lambda p: p[-1], self.params)

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
        diverged: as in Trajectory.
        diverged_step: as in Trajectory.
        converged: whether the convergence criterion holds at the end (and
            the run did not diverge).
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
# Rules other than the named ones. They are static (hashable) arguments of the
# compiled programs.


@dataclasses.dataclass(frozen=True)
class _ScheduleRule:
    schedule: Callable[[Array], Array]


@dataclasses.dataclass(frozen=True)
class _OptaxRule:
    tx: optax.GradientTransformation

    def build(self, lr):
        del lr
        return self.tx


@dataclasses.dataclass(frozen=True)
class OptaxFactory:
    """An optax optimizer factory called with ``learning_rate=lr`` inside the
    compiled program (so the learning rate can be traced, swept and vmapped).
    Build it with :func:`optimizer`."""

    factory: Callable[..., optax.GradientTransformation]
    kwargs: tuple[tuple[str, Any], ...] = ()

    def build(self, lr):
        return self.factory(learning_rate=lr, **dict(self.kwargs))

    @property
    def name(self) -> str:
        return getattr(self.factory, "__name__", repr(self.factory))


def optimizer(factory: Callable[..., optax.GradientTransformation], **kwargs) -> OptaxFactory:
    """Wraps an optax factory as a descent rule whose learning rate is ``lr``.

    Args:
        factory: for instance ``optax.sgd``, ``optax.adam``; it must accept
            ``learning_rate``.
        **kwargs: its other arguments (hashable values, e.g. ``momentum=0.9``).

    Returns:
        A rule for ``descend``, ``descend_final`` and ``sweep``.

    Example:
        >>> rule = optimizer(optax.sgd, momentum=0.9)
        >>> traj = descend(lambda x: x**2, 1.0, steps=10, lr=0.1, rule=rule)
    """
    if not callable(factory):
        raise TypeError(f"optimizer() needs an optax factory such as optax.adam, got {factory!r}")
    return OptaxFactory(factory, tuple(sorted(kwargs.items())))


def _parse_rule(rule, lr) -> tuple[int, Any]:
    """Returns (named-rule code, static rule object or None), validating lr."""
    if isinstance(rule, str):
        if rule not in RULES:
            raise ValueError(
                f"unknown rule {rule!r}; named rules: {', '.join(RULES)}; or pass a schedule "
                "(count -> lr), an optax.GradientTransformation or gdjax.optimizer(...)"
            )
        _require_lr(lr, f"rule {rule!r}")
        return RULES.index(rule), None
    if isinstance(rule, optax.GradientTransformation):
        _forbid_lr(lr, "an optax.GradientTransformation (its learning rate is built in)")
        return 0, _OptaxRule(rule)
    if isinstance(rule, OptaxFactory):
        _require_lr(lr, "gdjax.optimizer(...)")
        return 0, rule
    if callable(rule):
        _forbid_lr(lr, "a schedule (it gives the learning rate)")
        return 0, _ScheduleRule(rule)
    raise ValueError(
        f"rule must be one of {', '.join(RULES)}, a schedule, an optax.GradientTransformation "
        f"or gdjax.optimizer(...); got {rule!r}"
    )


def _is_single_rule(rule) -> bool:
    # a GradientTransformation is a NamedTuple, hence a Sequence: test it first
    return isinstance(rule, str | optax.GradientTransformation) or not isinstance(rule, Sequence)


def _named_kinds(rules: Sequence[str], lr) -> Array:
    if not rules:
        raise ValueError("rules must not be empty")
    if not all(isinstance(r, str) for r in rules):
        raise ValueError("only the named rules (fixed, time, grad) can be run side by side")
    return jnp.asarray([_parse_rule(r, lr)[0] for r in rules], jnp.int32)


def _require_lr(lr, what: str) -> None:
    if lr is None:
        raise ValueError(f"{what} needs a learning rate: pass lr=...")
    _schedules.check_positive("lr", lr)


def _forbid_lr(lr, what: str) -> None:
    if lr is not None:
        raise ValueError(f"lr must be left out when the rule is {what}")


def _rule_name(rule) -> str:
    if isinstance(rule, str):
        return rule
    if isinstance(rule, OptaxFactory):
        return rule.name
    if isinstance(rule, optax.GradientTransformation):
        return "optax"
    return getattr(rule, "__name__", "schedule")


def _short_number(v) -> str:
    """3 significant digits, no float noise: 0.1 + 0.2 -> "0.3"."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    if math.isfinite(x) and x == int(x) and abs(x) < 1e6:
        return str(int(x))
    return f"{x:.3g}"


def describe_rule(rule, lr=None) -> str:
    """A descent rule (as given to :func:`descend`) in words, for titles and
    reports: ``"fixed lr 0.01"``, ``"optax sgd (momentum 0.9), lr 0.05"``,
    ``"cosine schedule (base_lr 0.05, max_steps 1000, final_lr 0.001)"``.
    Never a Python repr or a memory address."""
    rate = None if lr is None else _short_number(lr)

    def with_rate(words: str) -> str:
        return words if rate is None else f"{words}, lr {rate}"

    def args(pairs) -> str:
        text = ", ".join(
            f"{k} {_short_number(v) if isinstance(v, int | float) else v}" for k, v in pairs
        )
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
    if isinstance(rule, _schedules.Schedule):
        return f"{rule.name} schedule{args(rule.args)}"  # its base_lr is among the args
    return f"schedule {getattr(rule, '__name__', type(rule).__name__)}"


# --------------------------------------------------------------------------
# The stepper shared by every entry point.


class _State(NamedTuple):
    params: PyTree
    loss: Array
    grads: PyTree
    opt_state: PyTree
    stopped: Array  # frozen after a non-finite step
    diverged_step: Array  # -1 until the run diverges
    last_unconverged: Array  # last step at which the criterion was false


def _norm(tree) -> Array:
    return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


def _max_abs(tree) -> Array:
    return functools.reduce(jnp.maximum, [jnp.max(jnp.abs(x)) for x in jax.tree.leaves(tree)])


def _all_finite(*trees) -> Array:
    leaves = [x for t in trees for x in jax.tree.leaves(t)]
    return functools.reduce(jnp.logical_and, [jnp.all(jnp.isfinite(x)) for x in leaves])


def _optax_promotion():
    # optax mixes int32 counts with floats (b1 ** count in adam), which fails
    # under jax_numpy_dtype_promotion="strict"; optax code runs under the
    # standard rules whatever the caller chose.
    return jax.numpy_dtype_promotion("standard")


def _sub_scaled(params, lr, grads):
    return jax.tree.map(lambda p, g: p - lr.astype(g.dtype) * g, params, grads)


class _Stepper:
    """Closes over what fixes the program (function, rule, lengths); its
    methods are pure functions of traced arguments."""

    def __init__(self, fn, rule, steps: int, bound: float, target_tree):
        self.fn = fn
        self.rule = rule
        self.steps = steps
        self.bound = bound
        self.has_target = target_tree
        self.value_and_grad = jax.value_and_grad(fn)

    def criterion(self, params, grads, tol, target):
        if self.has_target:
            dist = _norm(jax.tree.map(jnp.subtract, params, target))
        else:
            dist = _norm(grads)
        return dist < tol

    def init(self, x0, lr, tol, target) -> _State:
        loss, grads = self.value_and_grad(x0)
        if self.rule is None or isinstance(self.rule, _ScheduleRule):
            opt_state = ()
        else:
            with _optax_promotion():
                opt_state = self.rule.build(lr).init(x0)
        finite = _all_finite(x0, loss, grads)
        bad = ~finite | (_max_abs(x0) > self.bound)
        ok = self.criterion(x0, grads, tol, target) & ~bad
        return _State(
            params=x0,
            loss=loss,
            grads=grads,
            opt_state=opt_state,
            stopped=~finite,
            diverged_step=jnp.where(bad, 0, -1).astype(jnp.int32),
            last_unconverged=jnp.where(ok, -1, 0).astype(jnp.int32),
        )

    def lr_at(self, kind, lr, count, grads):
        branches = [
            lambda: lr,
            lambda: _schedules.linear_decay(lr, self.steps)(count),
            lambda: lr * _norm(grads),
        ]
        return jax.lax.switch(kind, branches)

    def step(self, state: _State, count, lr, kind, tol, target) -> tuple[_State, Array]:
        grads = state.grads
        if self.rule is None:
            lr_used = self.lr_at(kind, lr, count, grads)
            new_params = _sub_scaled(state.params, lr_used, grads)
            new_opt_state = state.opt_state
        elif isinstance(self.rule, _ScheduleRule):
            lr_used = jnp.asarray(self.rule.schedule(count))
            new_params = _sub_scaled(state.params, lr_used, grads)
            new_opt_state = state.opt_state
        else:
            with _optax_promotion():
                tx = self.rule.build(lr)
                updates, new_opt_state = tx.update(grads, state.opt_state, state.params)
            new_params = optax.apply_updates(state.params, updates)
            gnorm = _norm(grads)
            lr_used = jnp.where(gnorm > 0, _norm(updates) / jnp.where(gnorm > 0, gnorm, 1), 0.0)
        new_loss, new_grads = self.value_and_grad(new_params)
        finite = _all_finite(new_params, new_loss, new_grads)
        stop = state.stopped | ~finite

        def keep(new, old):
            return jax.tree.map(lambda n, o: jnp.where(stop, o, n), new, old)

        params = keep(new_params, state.params)
        grads = keep(new_grads, state.grads)
        bad = ~finite | (_max_abs(new_params) > self.bound)
        step_no = (count + 1).astype(jnp.int32)
        diverged_step = jnp.where((state.diverged_step < 0) & bad, step_no, state.diverged_step)
        ok = self.criterion(params, grads, tol, target) & (diverged_step < 0)
        new_state = _State(
            params=params,
            loss=keep(new_loss, state.loss),
            grads=grads,
            opt_state=keep(new_opt_state, state.opt_state),
            stopped=stop,
            diverged_step=diverged_step,
            last_unconverged=jnp.where(ok, state.last_unconverged, step_no),
        )
        # a step that was not taken used no rate (and its rate may be NaN)
        lr_used = jnp.where(stop, 0.0, jnp.asarray(lr_used))
        return new_state, lr_used.astype(jnp.asarray(new_loss).dtype)

    def final(self, state: _State, at: int) -> Final:
        converged = state.last_unconverged < at
        return Final(
            params=state.params,
            loss=state.loss,
            grad_norm=_norm(state.grads),
            diverged=state.diverged_step >= 0,
            diverged_step=state.diverged_step,
            converged=converged,
            converged_step=jnp.where(converged, state.last_unconverged + 1, -1),
        )


def _scan_steps(stepper, state, start, length, lr, kind, tol, target, record, unroll=1):
    def body(state, count):
        state, lr_used = stepper.step(state, count, lr, kind, tol, target)
        out = (state.params, state.loss, state.grads, lr_used) if record else None
        return state, out

    counts = jnp.arange(start, start + length, dtype=jnp.int32)
    return jax.lax.scan(body, state, counts, unroll=unroll)


@functools.partial(jax.jit, static_argnames=("fn", "rule", "steps", "bound"))
def _descend(fn, rule, steps, bound, x0, lr, kind):
    stepper = _Stepper(fn, rule, steps, bound, False)
    tol = jnp.zeros((), jnp.result_type(float))
    state = stepper.init(x0, lr, tol, None)
    end, (params, loss, grads, lrs) = _scan_steps(
        stepper, state, 0, steps, lr, kind, tol, None, True
    )

    def stack(first, rest):
        return jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, rest)

    return Trajectory(
        params=stack(x0, params),
        loss=stack(state.loss, loss),
        grads=stack(state.grads, grads),
        lr=lrs,
        diverged=end.diverged_step >= 0,
        diverged_step=end.diverged_step,
    )


@functools.partial(jax.jit, static_argnames=("fn", "rule", "steps", "bound", "has_target"))
def _descend_final(fn, rule, steps, bound, has_target, x0, lr, kind, tol, target):
    stepper = _Stepper(fn, rule, steps, bound, has_target)
    state = stepper.init(x0, lr, tol, target)
    end, _ = _scan_steps(stepper, state, 0, steps, lr, kind, tol, target, False)
    return stepper.final(end, steps)


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


def _concrete(x) -> bool:
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(x))


def _as_lr(lr, x0) -> Array:
    """The learning rate in the parameters' dtype; a concrete rate that the
    dtype turns into 0 or inf (lr = 1e-50 in float32) is refused."""
    dtype = jax.tree.leaves(x0)[0].dtype
    if lr is not None and _concrete(lr):
        wanted = np.asarray(lr, np.float64)
        with np.errstate(over="ignore"):
            cast = wanted.astype(dtype)
        lost = (cast == 0) & (wanted != 0) | (np.isinf(cast) & np.isfinite(wanted))
        if np.any(lost):
            bad = float(wanted[lost][0]) if wanted.ndim else float(wanted)
            raise ValueError(
                f"lr {bad:g} is not representable in {np.dtype(dtype).name} (it would become "
                f"{float(cast[lost][0]) if cast.ndim else float(cast):g}); use float64 "
                "(jax.enable_x64) or another rate"
            )
    return jnp.asarray(1.0 if lr is None else lr, dtype=dtype)


def _check_start(x0) -> None:
    """A concrete start must be finite (under jit or vmap it cannot be checked:
    a non-finite start is then flagged diverged at step 0)."""
    if _concrete(x0) and not all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(x0)):
        raise ValueError("x0 has a NaN or inf: gradient descent needs a finite start")


def _check_defined_at_start(loss0, grads0) -> None:
    """A concrete run whose function (or gradient) is not finite at the start
    is refused after the fact: its trajectory would be NaN from step 0."""
    if not _concrete((loss0, grads0)):
        return
    if not (np.all(np.isfinite(np.asarray(loss0)))):
        raise ValueError(
            f"fn(x0) is {float(np.ravel(np.asarray(loss0))[0])}: gradient descent needs a start "
            "where the function is finite"
        )
    if not all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree.leaves(grads0)):
        raise ValueError("the gradient of fn at x0 is not finite: choose another start")


def _check_bound(bound) -> float:
    _schedules.check_positive("bound", bound)
    return float(bound)


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
    cached on ``(fn, rule, steps, bound)`` and the shapes: new values of
    ``x0`` and ``lr`` do not recompile. ``descend`` can be vmapped over
    ``x0`` and ``lr``.

    Args:
        fn: a scalar function of a scalar, an array or any PyTree, or a
            :class:`gdjax.surfaces.Surface` (then x0's shape is checked).
        x0: the start (integers are converted to floats).
        steps: number of updates (>= 1).
        lr: learning rate (> 0), or the scale of the ``"grad"`` rule; leave
            it out for schedule and GradientTransformation rules.
        rule: see the module docstring; or a sequence of named rules, run
            side by side in one vmapped call (``lr`` is then one value or one
            per rule).
        bound: a parameter magnitude above this counts as divergence.

    Returns:
        A :class:`Trajectory` with ``steps + 1`` points; with a sequence of
        rules every field gets a leading rule axis.

    Raises:
        ValueError: lr <= 0 or NaN, steps <= 0, an unknown rule, x0 of the
            wrong shape for a Surface.

    Example:
        >>> traj = descend(lambda x: 3 * x**2 - 3 * x + 4, 2.0, steps=50, lr=0.1)
        >>> round(float(traj.final), 4)
        0.5
    """
    steps = _schedules.check_count("steps", steps)
    bound = _check_bound(bound)
    f = _resolve_fn(fn, x0)
    x0 = _as_params(x0)
    _check_start(x0)
    if _is_single_rule(rule):
        kind, static_rule = _parse_rule(rule, lr)
        traj = _descend(f, static_rule, steps, bound, x0, _as_lr(lr, x0), kind)
        _check_defined_at_start(traj.loss[0], jax.tree.map(lambda g: g[0], traj.grads))
        return traj
    kinds = _named_kinds(rule, lr)
    if jnp.ndim(lr) not in (0, 1) or jnp.size(lr) not in (1, len(rule)):
        raise ValueError(f"lr must be one value or one per rule, got shape {jnp.shape(lr)}")
    lrs = jnp.broadcast_to(_as_lr(lr, x0).reshape(-1), kinds.shape)
    run = functools.partial(_descend, f, None, steps, bound)
    traj = jax.vmap(run, in_axes=(None, 0, 0))(x0, lrs, kinds)
    _check_defined_at_start(traj.loss[:, 0], jax.tree.map(lambda g: g[:, 0], traj.grads))
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

    Convergence at a step means: not diverged, and ``|x - target| < tol`` when
    ``target`` is given, else ``|grad f(x)| < tol``.

    Args:
        fn, x0, steps, lr, rule, bound: as in :func:`descend`.
        tol: convergence tolerance (> 0).
        target: optional point to converge to (same structure as x0).

    Returns:
        A :class:`Final`.
    """
    steps = _schedules.check_count("steps", steps)
    kind, static_rule = _parse_rule(rule, lr)
    _schedules.check_positive("tol", tol)
    f = _resolve_fn(fn, x0)
    x0 = _as_params(x0)
    _check_start(x0)
    dtype = jax.tree.leaves(x0)[0].dtype
    tgt = None if target is None else jax.tree.map(lambda t: jnp.asarray(t, dtype), target)
    fin = _descend_final(
        f,
        static_rule,
        steps,
        _check_bound(bound),
        target is not None,
        x0,
        _as_lr(lr, x0),
        kind,
        jnp.asarray(tol, dtype),
        tgt,
    )
    # steps that would leave the finite are not taken, so a non-finite loss
    # here is the start's own
    _check_defined_at_start(fin.loss, ())
    return fin


# --------------------------------------------------------------------------
# Sweeps.


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A grid of descent outcomes.

    Axes of every array: (rule, start, lr, epoch); ``value`` has the point's
    shape after them.

    Attributes:
        rules: names of the rules on axis 0.
        starts: the starts, shape (S, *point).
        lr: the learning rates (or scales) on axis 2.
        epochs: the epoch counts on axis 3.
        tol: convergence tolerance.
        target: convergence target, or None (then the gradient norm is used).
        value: parameters after each epoch count.
        loss: loss there.
        grad_norm: gradient norm there.
        converged: criterion holds there and not diverged.
        diverged: diverged at or before that epoch.
        converged_step: (rule, start, lr): the step from which the criterion
            held through the last epoch, -1 if never.
    """

    rules: tuple[str, ...]
    starts: Array
    lr: Array
    epochs: tuple[int, ...]
    tol: float
    target: Array | None
    value: Array
    loss: Array
    grad_norm: Array
    converged: Array
    diverged: Array
    converged_step: Array


@functools.partial(jax.jit, static_argnames=("fn", "rule", "epochs", "bound", "has_target"))
def _sweep(fn, rule, epochs, bound, has_target, x0s, lrs, kinds, tol, target):
    steps = epochs[-1]

    def one(x0, lr, kind):
        stepper = _Stepper(fn, rule, steps, bound, has_target)
        state = stepper.init(x0, lr, tol, target)
        finals = []
        done = 0
        for e in epochs:
            if e > done:
                state, _ = _scan_steps(stepper, state, done, e - done, lr, kind, tol, target, False)
                done = e
            finals.append(stepper.final(state, e))
        stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *finals)
        return stacked, finals[-1].converged_step

    over_lr = jax.vmap(one, in_axes=(None, 0, None))
    over_start = jax.vmap(over_lr, in_axes=(0, None, None))
    over_rule = jax.vmap(over_start, in_axes=(None, None, 0))
    return over_rule(x0s, lrs, kinds)


def sweep(
    fn: Callable[[Array], Array] | Surface,
    starts: ArrayLike,
    lr: ArrayLike | None,
    *,
    steps: int | None = None,
    epochs: Sequence[int] | None = None,
    rules: Sequence[str] | str | Callable | optax.GradientTransformation | OptaxFactory = "fixed",
    tol: float = 1e-3,
    target: ArrayLike | None = None,
    bound: float = DEFAULT_BOUND,
) -> Sweep:
    """Grids of descent outcomes over rules x starts x learning rates x epochs,
    in one compiled, vmapped call.

    Each (rule, start, lr) runs once for ``max(epochs)`` steps; the state is
    read off at every epoch count on the way, so an (lr x epochs) grid costs
    one run per lr. Memory does not grow with the number of steps.

    The time-based rule decays over ``max(epochs)`` steps, whatever epoch the
    grid reads.

    Args:
        fn: function or Surface (points of one array, no PyTrees here).
        starts: one start, or a batch with a leading axis (S, *point).
        lr: one learning rate or a 1-D array of them; None for rules that
            carry their own.
        steps: the number of steps, if ``epochs`` is not given.
        epochs: epoch counts to read the state at (>= 1, sorted, unique).
        rules: one rule, or a sequence of named rules (``"fixed"``,
            ``"time"``, ``"grad"``) run side by side.
        tol, target, bound: as in :func:`descend_final`.

    Returns:
        A :class:`Sweep`.
    """
    if epochs is None:
        if steps is None:
            raise ValueError("sweep needs steps=... or epochs=[...]")
        epochs = (_schedules.check_count("steps", steps),)
    else:
        epochs = tuple(_schedules.check_count("epochs", e) for e in epochs)
        if not epochs:
            raise ValueError("epochs must not be empty")
        if list(epochs) != sorted(set(epochs)):
            raise ValueError(f"epochs must be increasing with no repeats, got {epochs}")
        if steps is not None and steps != epochs[-1]:
            raise ValueError(f"steps={steps} disagrees with max(epochs)={epochs[-1]}")
    if _is_single_rule(rules):
        rules = (rules,)
    if len(rules) == 1:
        kind, static_rule = _parse_rule(rules[0], None if lr is None else 1.0)
        kinds = jnp.asarray([kind], jnp.int32)
    else:
        kinds, static_rule = _named_kinds(rules, lr), None
    if lr is not None:
        _schedules.check_positive("lr", lr)
    _schedules.check_positive("tol", tol)

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
    lrs = jnp.atleast_1d(jnp.asarray(1.0 if lr is None else lr, dtype))
    if lrs.ndim != 1:
        raise ValueError(f"lr must be a scalar or 1-D, got shape {lrs.shape}")
    tgt = None if target is None else jnp.asarray(target, dtype)
    finals, conv_step = _sweep(
        f,
        static_rule,
        epochs,
        _check_bound(bound),
        tgt is not None,
        starts,
        lrs,
        kinds,
        jnp.asarray(tol, dtype),
        tgt,
    )

    return Sweep(
        rules=tuple(_rule_name(r) for r in rules),
        starts=starts,
        lr=lrs,
        epochs=epochs,
        tol=float(tol),
        target=tgt,
        value=finals.params,
        loss=finals.loss,
        grad_norm=finals.grad_norm,
        converged=finals.converged,
        diverged=finals.diverged,
        converged_step=conv_step,
    )
